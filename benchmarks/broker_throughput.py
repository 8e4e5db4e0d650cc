#!/usr/bin/env python3
"""Broker throughput and latency benchmark (issue 3), driven by librdkafka (confluent-kafka).

Starts `tributary serve` (release build) on a free loopback port with a fresh data
directory, then measures:
  * ingest: N records of SIZE bytes from one producer (acks=1, linger 5 ms, batch 1 MB,
    one partition): records/s, MB/s, broker CPU seconds (utime+stime from /proc);
  * fetch: one consumer reading them all back from offset 0 (same figures);
  * produce latency p50/p99 at a steady RATE records/s with linger 0, acks=1 and acks=all.

The ingest and fetch phases use benchmarks/rdkafka_perf.c (librdkafka's C API, compiled
here with `cc -O2 ... -lrdkafka`; Debian package librdkafka-dev), so the client is not the
bottleneck the way a Python loop over 1M records is. Latency uses confluent-kafka.

Usage: benchmarks/broker_throughput.py [--records 1000000] [--size 100] [--rate 2000] [--latency-seconds 10]
"""
import argparse, os, shutil, signal, socket, subprocess, sys, tempfile, time

from confluent_kafka import Producer, Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def start_broker(binary, data_dir):
    port = free_port()
    log = open(os.path.join(data_dir, "broker.log"), "w")
    proc = subprocess.Popen([binary, "serve", "--listen", f"127.0.0.1:{port}", "--data-dir", os.path.join(data_dir, "data"),
                             "--log-level", "warning"], stdout=log, stderr=log)
    for _ in range(300):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close(); break
        except OSError:
            time.sleep(0.05)
    return proc, f"127.0.0.1:{port}"


def build_driver(work):
    """Compiles the C driver; installs librdkafka-dev when its headers are missing."""
    if not os.path.exists("/usr/include/librdkafka/rdkafka.h"):
        subprocess.run(["apt-get", "install", "-y", "-qq", "librdkafka-dev"], check=True, stdout=subprocess.DEVNULL)
    out = os.path.join(work, "rdkafka_perf")
    subprocess.run(["cc", "-O2", "-o", out, os.path.join(REPO, "benchmarks", "rdkafka_perf.c"), "-lrdkafka"], check=True)
    return out


def run_driver(driver, args, pid):
    cpu0 = cpu_seconds(pid)
    out = subprocess.run([driver] + [str(a) for a in args], check=True, capture_output=True, text=True)
    return float(out.stdout.strip()), cpu_seconds(pid) - cpu0


def ingest_python(bootstrap, topic, records, size, pid):
    p = Producer({"bootstrap.servers": bootstrap, "acks": 1, "linger.ms": 5, "batch.size": 1_000_000,
                  "queue.buffering.max.messages": 2_000_000, "queue.buffering.max.kbytes": 2_000_000,
                  "enable.idempotence": False, "compression.type": "none"})
    payload = b"x" * size
    errors = []
    cb = lambda e, m: errors.append(e) if e else None
    cpu0, t0 = cpu_seconds(pid), time.perf_counter()
    for i in range(records):
        while True:
            try:
                p.produce(topic, payload, partition=0, on_delivery=cb); break
            except BufferError:
                p.poll(0.001)
        if i % 10000 == 0:
            p.poll(0)
    p.flush(120)
    dt, cpu = time.perf_counter() - t0, cpu_seconds(pid) - cpu0
    assert not errors, errors[:3]
    return dt, cpu


def fetch_python(bootstrap, topic, records, pid):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "bench", "enable.auto.commit": False,
                  "fetch.max.bytes": 52_428_800, "max.partition.fetch.bytes": 10_485_760,
                  "queued.max.messages.kbytes": 1_000_000})
    c.assign([TopicPartition(topic, 0, 0)])
    n = 0
    cpu0, t0 = cpu_seconds(pid), time.perf_counter()
    while n < records:
        msgs = c.consume(num_messages=100_000, timeout=5)
        if not msgs:
            raise SystemExit(f"fetch stalled at {n} records")
        n += len(msgs)
    dt, cpu = time.perf_counter() - t0, cpu_seconds(pid) - cpu0
    c.close()
    return dt, cpu


def latency(bootstrap, topic, rate, seconds, acks):
    p = Producer({"bootstrap.servers": bootstrap, "acks": acks, "linger.ms": 0, "enable.idempotence": False})
    lat = []
    def cb(err, msg, sent):
        if err is None:
            lat.append(time.perf_counter() - sent)
    interval = 1.0 / rate
    start = time.perf_counter()
    n = int(rate * seconds)
    for i in range(n):
        target = start + i * interval
        while True:
            now = time.perf_counter()
            if now >= target:
                break
            p.poll(max(0, min(target - now, 0.0005)))
        sent = time.perf_counter()
        p.produce(topic, b"y" * 100, partition=0, on_delivery=lambda e, m, s=sent: cb(e, m, s))
        p.poll(0)
    p.flush(30)
    lat.sort()
    warm = lat[len(lat) // 10:]  # drop the first 10% (connection warm-up)
    return warm[len(warm) // 2] * 1000, warm[int(len(warm) * 0.99)] * 1000, len(lat)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--size", type=int, default=100)
    ap.add_argument("--rate", type=int, default=2000)
    ap.add_argument("--latency-seconds", type=float, default=10)
    ap.add_argument("--binary", default=os.path.join(REPO, ".build/release/tributary"))
    ap.add_argument("--python-driver", action="store_true", help="drive ingest/fetch from confluent-kafka instead of C")
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="tributary-bench-")
    proc, bootstrap = start_broker(args.binary, work)
    try:
        admin = AdminClient({"bootstrap.servers": bootstrap})
        for t in ["bench", "lat1", "latall"]:
            admin.create_topics([NewTopic(t, 1, 1)])[t].result()
        mb = args.records * args.size / 1e6
        if args.python_driver:
            dt, cpu = ingest_python(bootstrap, "bench", args.records, args.size, proc.pid)
        else:
            driver = build_driver(work)
            dt, cpu = run_driver(driver, ["produce", bootstrap, "bench", args.records, args.size], proc.pid)
        print(f"ingest: {args.records} x {args.size} B in {dt:.2f} s = {args.records/dt:,.0f} records/s, {mb/dt:.1f} MB/s; "
              f"broker CPU {cpu:.2f} s = {cpu/(mb/1000):.2f} CPU-s/GB")
        if not args.python_driver:
            admin.create_topics([NewTopic("bench-all", 1, 1)])["bench-all"].result()
            dt_all, cpu_all = run_driver(driver, ["produce", bootstrap, "bench-all", args.records, args.size, "all"], proc.pid)
            print(f"ingest acks=all (fsync, group commit): {args.records/dt_all:,.0f} records/s, {mb/dt_all:.1f} MB/s; "
                  f"broker CPU {cpu_all:.2f} s (acks=1 above: {args.records/dt:,.0f} records/s)")
        if args.python_driver:
            dt, cpu = fetch_python(bootstrap, "bench", args.records, proc.pid)
        else:
            dt, cpu = run_driver(driver, ["consume", bootstrap, "bench", args.records], proc.pid)
        print(f"fetch:  {args.records} records in {dt:.2f} s = {args.records/dt:,.0f} records/s, {mb/dt:.1f} MB/s; "
              f"broker CPU {cpu:.2f} s = {cpu/(mb/1000):.2f} CPU-s/GB")
        for acks, topic in [(1, "lat1"), ("all", "latall")]:
            p50, p99, n = latency(bootstrap, topic, args.rate, args.latency_seconds, acks)
            print(f"latency acks={acks} at {args.rate}/s, linger 0: p50 {p50:.3f} ms, p99 {p99:.3f} ms ({n} records)")
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
