#!/usr/bin/env python3
"""Lake export throughput (issue 8): `tributary lake export` to Parquet and CSV, with
pyarrow writing the same rows from Python as a reference for the Parquet writer.

Starts `tributary serve` (release build) on a free loopback port with a fresh data
directory, produces N weather records as the tutorial's producer shapes them (confluent-kafka,
one partition), then for each format runs one export from the beginning into a fresh local
directory and reports:
  * records/s and MB/s (input: the records' JSON value bytes; output: bytes written),
  * the exporter's peak RSS (VmHWM from /proc, sampled every 20 ms until it exits),
  * output size.
The reference builds an Arrow table of the same columns from the same records (json.loads
per record, as an export has to parse them) and writes it with pyarrow (snappy and zstd),
timing table building and writing separately.

Then the writers alone on the same records: `lake-benchmarks` (the Swift ParquetWriter, built
beside the binary: `swift build -c release --product lake-benchmarks`) and pyarrow's write_table.

Usage: benchmarks/lake_export.py [--records 1000000] [--binary .build/release/tributary]
"""
import argparse, json, os, random, shutil, signal, socket, subprocess, sys, tempfile, time

import pyarrow as pa
import pyarrow.parquet as pq
from confluent_kafka import Producer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from broker_throughput import REPO, free_port, start_broker  # noqa: E402  (one broker launcher for all benchmarks)


def weather_values(n, seed=7):
    rnd = random.Random(seed)
    t, h, co = round(rnd.uniform(-10, 35), 1), rnd.randint(1, 100), rnd.randint(50, 1500)
    for i in range(1, n + 1):
        t = round(rnd.uniform(max(-10, t - 5), min(35, t + 5)), 1)
        h = rnd.randint(max(1, h - 20), min(100, h + 20))
        co = rnd.randint(max(50, co - 100), min(1500, co + 100))
        yield json.dumps({"record_id": i, "temperature": t, "CO_concentration": co, "humidity": h}).encode()


def export(binary, bootstrap, out, fmt, extra):
    start = time.monotonic()
    proc = subprocess.Popen([binary, "lake", "export", "weather", "--to", f"file://{out}", "--format", fmt,
                             "--bootstrap-server", bootstrap, "--from-beginning", "--quiet", *extra])
    # VmHWM of the exporter's own address space, polled: wait4's ru_maxrss would include
    # this (large) Python process, whose high-water mark a forked child inherits at exec.
    peak_kb = 0
    while proc.poll() is None:
        try:
            with open(f"/proc/{proc.pid}/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        peak_kb = max(peak_kb, int(line.split()[1]))
        except OSError:
            pass
        time.sleep(0.02)
    status = proc.returncode
    elapsed = time.monotonic() - start
    if status != 0:
        sys.exit(f"export to {fmt} failed with status {status}")
    size = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(out) for f in fs if f.startswith("part-"))
    return elapsed, peak_kb / 1024, size


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--binary", default=os.path.join(REPO, ".build", "release", "tributary"))
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="lake-bench-")
    broker, bootstrap = start_broker(args.binary, work)
    try:
        values = list(weather_values(args.records))
        in_bytes = sum(len(v) for v in values)
        p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20, "batch.size": 1_000_000, "acks": 1})
        for v in values:
            while True:
                try:
                    p.produce("weather", v, partition=0); break
                except BufferError:
                    p.poll(0.05)
        p.flush(120)
        print(f"{args.records} records, {in_bytes / 1e6:.1f} MB of JSON values")
        print(f"{'export':28} {'seconds':>8} {'records/s':>11} {'in MB/s':>8} {'out MB':>8} {'peak RSS MB':>12}")
        for name, fmt, extra in [("parquet (snappy)", "parquet", []), ("parquet (zstd)", "parquet", ["--compression", "zstd"]),
                                 ("parquet (uncompressed)", "parquet", ["--compression", "none"]), ("csv", "csv", []),
                                 ("jsonl", "jsonl", [])]:
            out = os.path.join(work, "out-" + name.replace(" ", "").replace("(", "-").replace(")", ""))
            elapsed, rss, size = export(args.binary, bootstrap, out, fmt, extra)
            print(f"{'tributary ' + name:28} {elapsed:8.2f} {args.records / elapsed:11,.0f} {in_bytes / 1e6 / elapsed:8.1f} "
                  f"{size / 1e6:8.1f} {rss:12.1f}")

        # pyarrow: the same columns from the same records.
        start = time.monotonic()
        rows = [json.loads(v) for v in values]
        now_ms = int(time.time() * 1000)
        table = pa.table({
            "_topic": pa.array(["weather"] * len(rows), pa.string()),
            "_partition": pa.array([0] * len(rows), pa.int64()),
            "_offset": pa.array(range(len(rows)), pa.int64()),
            "_timestamp": pa.array([now_ms] * len(rows), pa.timestamp("ms", tz="UTC")),
            "_key": pa.nulls(len(rows), pa.string()),
            "record_id": pa.array([r["record_id"] for r in rows], pa.int64()),
            "temperature": pa.array([r["temperature"] for r in rows], pa.float64()),
            "CO_concentration": pa.array([r["CO_concentration"] for r in rows], pa.int64()),
            "humidity": pa.array([r["humidity"] for r in rows], pa.int64()),
        })
        build = time.monotonic() - start
        for codec in ("snappy", "zstd"):
            path = os.path.join(work, f"pyarrow-{codec}.parquet")
            start = time.monotonic()
            pq.write_table(table, path, compression=codec)
            write = time.monotonic() - start
            print(f"{'pyarrow ' + codec:28} {build + write:8.2f} {args.records / (build + write):11,.0f} "
                  f"{in_bytes / 1e6 / (build + write):8.1f} {os.path.getsize(path) / 1e6:8.1f} {'-':>12}"
                  f"   (json.loads + table {build:.2f} s, write_table {write:.2f} s = {args.records / write:,.0f} rows/s)")
        # The writers alone on the same records: lake-benchmarks (Swift) and pyarrow.
        bench = os.path.join(os.path.dirname(args.binary), "lake-benchmarks")
        if os.path.exists(bench):
            values_path = os.path.join(work, "values.jsonl")
            with open(values_path, "wb") as f:
                f.write(b"\n".join(values))
            out = subprocess.run([bench, values_path], check=True, capture_output=True, text=True).stdout
            print(f"\nwriters alone, same {args.records} rows (9 columns):")
            for line in out.splitlines():
                m = json.loads(line)
                size = f"{m['bytes'] / 1e6:8.1f} MB" if m["bytes"] else ""
                print(f"  swift {m['name']:28} {m['seconds']:6.2f} s {m['rowsPerSecond']:13,.0f} rows/s {size}")
            for codec in ("none", "snappy", "zstd"):
                path = os.path.join(work, f"pyarrow-alone-{codec}.parquet")
                start = time.monotonic()
                pq.write_table(table, path, compression=codec)
                write = time.monotonic() - start
                print(f"  pyarrow write_table {codec:18} {write:6.2f} s {args.records / write:13,.0f} rows/s "
                      f"{os.path.getsize(path) / 1e6:8.1f} MB")
        else:
            print(f"(build lake-benchmarks for the writer-only comparison: {bench} is missing)")
    finally:
        broker.send_signal(signal.SIGTERM)
        broker.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
