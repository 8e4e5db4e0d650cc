#!/usr/bin/env python3
"""Reprocessing the weather history into the weekly CSV (issue 9): Tributary vs the tutorial.

Starts `tributary serve` (release build) on a free loopback port with a fresh data
directory, sends N readings with `tributary weather simulate --count N`, then measures,
over the same records in the same run:

  * swift: `tributary weather aggregate --window weekly --stop-at-end` into a local CSV
    (whole process: start, connect, read N records, write and checkpoint the CSV);
  * python: the tutorial's own consumer_weekly.py (../shared/seed, unmodified, with
    kafka-python), run with runpy in this process under a small harness that points it at
    the broker, replaces boto3's S3 with a stand-in whose put() reads the file it is
    given (the script still reopens and rewrites its CSV per row; only the network PUT is
    gone, which would otherwise dominate), and stops it once it asks for record N+1.
    Timed from the script's start to that point;
  * python+moto (optional, --moto-records M): the same script with its real boto3 PUT to
    a local moto server after every row, over the first M records, to show what the
    tutorial's consumer costs as written.

Both outputs are compared byte for byte. Prints records/s and the ratio.

The machine's load moves both figures (the Python one more): run it on a quiet machine.

Usage: benchmarks/weather_reprocess.py [--records 1000000] [--moto-records 20000] [--swift-runs 5] [--keep]
"""
import argparse, os, runpy, shutil, signal, socket, subprocess, sys, tempfile, time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SEED = os.path.join(os.path.dirname(REPO), "shared", "seed")


def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p


def wait_port(port, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close(); return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


class Stop(BaseException):
    pass


def run_tutorial_weekly(bootstrap, n, cwd, fake_s3):
    """consumer_weekly.py until it has processed n records; returns seconds taken."""
    import kafka, boto3
    script = os.path.join(SEED, "consumer_weekly.py")
    C = kafka.KafkaConsumer
    c_init, c_next, c_seek = C.__init__, C.__next__, C.seek_to_beginning
    state = {"n": 0}

    def init(self, *a, **kw):
        kw["bootstrap_servers"] = [bootstrap]
        c_init(self, *a, **kw)

    def nxt(self):
        if state["n"] >= n:
            raise Stop()
        state["n"] += 1
        return c_next(self)

    def seek(self, *parts):
        # kafka-python needs an assignment before seek_to_beginning() (see the seed README).
        while not parts and not self.assignment():
            self.poll(timeout_ms=100)
        return c_seek(self, *parts)

    C.__init__, C.__next__, C.seek_to_beginning = init, nxt, seek
    real_resource = boto3.resource
    if fake_s3:
        class Obj:
            def __init__(self, bucket, key): pass
            def put(self, Body):
                Body.read(); Body.close()
        class S3:
            def Object(self, bucket, key): return Obj(bucket, key)
        boto3.resource = lambda *a, **kw: S3()
    old = os.getcwd()
    os.chdir(cwd)
    start = time.perf_counter()
    try:
        runpy.run_path(script, run_name="__main__")
        raise RuntimeError("the script ended early")
    except Stop:
        elapsed = time.perf_counter() - start
    finally:
        os.chdir(old)
        C.__init__, C.__next__, C.seek_to_beginning = c_init, c_next, c_seek
        boto3.resource = real_resource
    return elapsed


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--moto-records", type=int, default=20_000, help="0 skips the run with a real S3 PUT per row")
    ap.add_argument("--binary", default=os.path.join(REPO, ".build", "release", "tributary"))
    ap.add_argument("--swift-runs", type=int, default=5)
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    n = args.records - args.records % 7
    work = tempfile.mkdtemp(prefix="weather-bench-")
    procs = []
    try:
        port = free_port()
        log = open(os.path.join(work, "broker.log"), "w")
        broker = subprocess.Popen([args.binary, "serve", "--listen", f"127.0.0.1:{port}",
                                   "--data-dir", os.path.join(work, "data"), "--log-level", "warning"],
                                  stdout=log, stderr=log)
        procs.append(broker)
        wait_port(port)
        bootstrap = f"127.0.0.1:{port}"

        t = time.perf_counter()
        subprocess.run([args.binary, "weather", "simulate", "--bootstrap-server", bootstrap, "--topic", "weather",
                        "--count", str(n), "--seed", "1"], check=True, stdout=subprocess.DEVNULL)
        produce_s = time.perf_counter() - t
        print(f"simulate: {n} readings in {produce_s:.2f} s ({n / produce_s:,.0f} records/s)")

        # Each Swift run rebuilds the CSV from offset 0 (--from-beginning); the median counts.
        swift_dir = os.path.join(work, "swift"); os.makedirs(swift_dir)
        times = []
        for _ in range(args.swift_runs):
            t = time.perf_counter()
            subprocess.run([args.binary, "weather", "aggregate", "--bootstrap-server", bootstrap, "--topic", "weather",
                            "--window", "weekly", "--stop-at-end", "--from-beginning"], check=True, cwd=swift_dir,
                           stdout=subprocess.DEVNULL)
            times.append(time.perf_counter() - t)
        swift_s = sorted(times)[len(times) // 2]
        swift_rate = n / swift_s
        print(f"swift:  tributary weather aggregate --window weekly: median {swift_s:.2f} s of {len(times)} "
              f"(best {min(times):.2f} s), {swift_rate:,.0f} records/s")

        py_dir = os.path.join(work, "python"); os.makedirs(py_dir)
        py_s = run_tutorial_weekly(bootstrap, n, py_dir, fake_s3=True)
        py_rate = n / py_s
        print(f"python: consumer_weekly.py (kafka-python, S3 PUT stubbed): {py_s:.2f} s, {py_rate:,.0f} records/s")
        same = open(os.path.join(swift_dir, "weather_aggregation.csv"), "rb").read() == \
            open(os.path.join(py_dir, "weather_aggregation.csv"), "rb").read()
        print(f"outputs identical: {same}")
        print(f"ratio: {swift_rate / py_rate:.1f}x the Python consumer")

        if args.moto_records:
            m = args.moto_records - args.moto_records % 7
            mport = free_port()
            moto = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(mport)],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            procs.append(moto)
            wait_port(mport)
            os.environ.update({"AWS_ENDPOINT_URL": f"http://127.0.0.1:{mport}", "AWS_DEFAULT_REGION": "us-east-1",
                               "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x"})
            import boto3
            boto3.client("s3").create_bucket(Bucket="s3-bucket_name")
            moto_dir = os.path.join(work, "python-moto"); os.makedirs(moto_dir)
            moto_s = run_tutorial_weekly(bootstrap, m, moto_dir, fake_s3=False)
            print(f"python: consumer_weekly.py with its S3 PUT per row (moto), first {m} records: "
                  f"{moto_s:.2f} s, {m / moto_s:,.0f} records/s")
        return 0 if same else 1
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    p.kill(); p.wait()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
