#!/usr/bin/env python3
"""Tiered storage throughput (issue 7), in one run on this machine:

  * upload: N records of SIZE bytes are written to a tiered topic while the uploader is
    idle; the broker is restarted with the uploader on, and the time until the manifest
    covers every closed segment gives the upload rate. The same segment files are then
    uploaded with boto3 alone (upload_file, its default multipart and threads) to the same
    store, as the reference. The store is moto_server on loopback (`--store s3`, default)
    or a local directory (`--store file`, reference: shutil.copyfile).
  * replay: a consumer reads the tiered topic from offset 0 (everything below the active
    segment comes from the store) and the same records in an untiered topic (local disk),
    records/s and MB/s for each.

Produce and consume use benchmarks/rdkafka_perf.c (librdkafka), as broker_throughput.py.

Usage: benchmarks/tiering_throughput.py [--records 1000000] [--size 100] [--store s3|file]
"""
import argparse, glob, json, os, shutil, signal, subprocess, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from broker_throughput import REPO, free_port, build_driver  # noqa: E402

from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402


def start(binary, work, store_url, interval_ms, port):
    props = os.path.join(work, "server.properties")
    with open(props, "w") as f:
        f.write(f"remote.log.manager.task.interval.ms={interval_ms}\nlog.retention.check.interval.ms=1000\n")
    log = open(os.path.join(work, "broker.log"), "a")
    proc = subprocess.Popen([binary, "serve", "--listen", f"127.0.0.1:{port}", "--data-dir", os.path.join(work, "data"),
                             "--tier-to", store_url, "--config", props, "--log-level", "warning"], stdout=log, stderr=log)
    import socket
    for _ in range(600):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            return proc
        except OSError:
            time.sleep(0.05)
    raise SystemExit("broker did not start")


def stop(proc):
    proc.send_signal(signal.SIGTERM)
    proc.wait(30)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--size", type=int, default=100)
    ap.add_argument("--segment-bytes", type=int, default=16 << 20)
    ap.add_argument("--store", choices=["s3", "file"], default="s3")
    ap.add_argument("--binary", default=os.path.join(REPO, ".build/release/tributary"))
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="tributary-tier-bench-")
    driver = build_driver(work)
    moto = None
    env_backup = dict(os.environ)
    try:
        if args.store == "s3":
            import boto3
            mport = free_port()
            moto = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(mport)],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            endpoint = f"http://127.0.0.1:{mport}"
            os.environ.update({"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_REGION": "us-east-1",
                               "AWS_ENDPOINT_URL": endpoint})
            s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
            for _ in range(100):
                try:
                    s3.create_bucket(Bucket="bench"); break
                except Exception:
                    time.sleep(0.1)
            store_url = "s3://bench/tiered?addressing=path"

            def manifest():
                keys = [o["Key"] for o in s3.list_objects_v2(Bucket="bench", Prefix="tiered/").get("Contents", [])
                        if o["Key"].endswith("/0/manifest.json")]
                return json.loads(s3.get_object(Bucket="bench", Key=keys[0])["Body"].read()) if keys else None
        else:
            store_dir = os.path.join(work, "lake")
            store_url = "file://" + store_dir

            def manifest():
                found = glob.glob(os.path.join(store_dir, "tiered-*/0/manifest.json"))
                return json.load(open(found[0])) if found else None

        port = free_port()
        bootstrap = f"127.0.0.1:{port}"
        proc = start(args.binary, work, store_url, 3_600_000, port)  # uploader idle after its first pass
        admin = AdminClient({"bootstrap.servers": bootstrap})
        for f in admin.create_topics([
            NewTopic("tiered", 1, 1, config={"remote.storage.enable": "true", "segment.bytes": str(args.segment_bytes),
                                             "local.retention.bytes": "1", "retention.ms": "-1"}),
            NewTopic("local", 1, 1, config={"remote.storage.enable": "false", "segment.bytes": str(args.segment_bytes),
                                            "retention.ms": "-1"}),
        ]).values():
            f.result()
        for topic in ["tiered", "local"]:
            subprocess.run([driver, "produce", bootstrap, topic, str(args.records), str(args.size), "all"], check=True,
                           capture_output=True)
        stop(proc)
        segments = sorted(glob.glob(os.path.join(work, "data", "tiered-0", "*.log")))[:-1]
        files = [p for s in segments for p in (s, s[:-4] + ".index", s[:-4] + ".timeindex")]
        total = sum(os.path.getsize(p) for p in files)
        copies = os.path.join(work, "copies")
        shutil.copytree(os.path.join(work, "data", "tiered-0"), copies)

        # Upload: restart with the uploader on; time until the manifest covers every closed segment.
        t0 = time.perf_counter()
        proc = start(args.binary, work, store_url, 100, port)
        want = int(os.path.basename(segments[-1])[:-4]) if segments else 0
        while True:
            m = manifest()
            if m and m["segments"] and m["segments"][-1]["baseOffset"] == want:
                break
            if time.perf_counter() - t0 > 600:
                raise SystemExit("upload did not finish")
            time.sleep(0.02)
        upload_s = time.perf_counter() - t0
        print(f"upload (tributary): {len(segments)} segments, {total / 1e6:.1f} MB in {upload_s:.2f} s = {total / 1e6 / upload_s:.1f} MB/s")

        # Reference: the same files with boto3 (or a plain file copy for the directory store).
        t0 = time.perf_counter()
        for p in files:
            rel = os.path.relpath(p, os.path.join(work, "data"))
            src = os.path.join(copies, os.path.basename(p))
            if args.store == "s3":
                s3.upload_file(src, "bench", "reference/" + rel)
            else:
                os.makedirs(os.path.join(work, "reference"), exist_ok=True)
                shutil.copyfile(src, os.path.join(work, "reference", os.path.basename(p)))
        ref_s = time.perf_counter() - t0
        ref = "boto3 upload_file" if args.store == "s3" else "shutil.copyfile"
        print(f"upload ({ref}): {total / 1e6:.1f} MB in {ref_s:.2f} s = {total / 1e6 / ref_s:.1f} MB/s")

        # Wait for local retention to drop the uploaded segments, then replay both topics.
        t0 = time.perf_counter()
        while len(glob.glob(os.path.join(work, "data", "tiered-0", "*.log"))) > 1 and time.perf_counter() - t0 < 60:
            time.sleep(0.1)
        local_left = len(glob.glob(os.path.join(work, "data", "tiered-0", "*.log")))
        print(f"local segments of the tiered topic after upload: {local_left}")
        mb = args.records * args.size / 1e6
        for topic, label in [("tiered", "replay from the store"), ("local", "replay from local disk")]:
            out = subprocess.run([driver, "consume", bootstrap, topic, str(args.records)], check=True, capture_output=True, text=True)
            dt = float(out.stdout.strip())
            print(f"{label}: {args.records} records in {dt:.2f} s = {args.records / dt / 1e6:.2f} M records/s, {mb / dt:.0f} MB/s (payload)")
        stop(proc)
    finally:
        if moto:
            moto.kill()
            moto.wait()
        os.environ.clear()
        os.environ.update(env_backup)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
