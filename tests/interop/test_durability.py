"""Idempotent producers and compaction, with real clients (issue 6)."""
import json
import subprocess
import time
import uuid

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from kafka import KafkaProducer


def read_all(bootstrap, topic, partitions=1, timeout=20):
    """Every record of the topic from offset 0, as (partition, offset, key, value)."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "reader-" + uuid.uuid4().hex[:6],
                  "enable.auto.commit": False, "enable.partition.eof": True})
    c.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    out, eof, deadline = [], set(), time.monotonic() + timeout
    while len(eof) < partitions and time.monotonic() < deadline:
        m = c.poll(0.5)
        if m is None:
            continue
        if m.error():
            if m.error().code() == -191:  # _PARTITION_EOF
                eof.add(m.partition())
            continue
        out.append((m.partition(), m.offset(), m.key(), m.value()))
    c.close()
    return out


@pytest.fixture
def compact_broker(broker_factory, tmp_path):
    props = tmp_path / "server.properties"
    props.write_text("log.cleaner.backoff.ms=300\nlog.retention.check.interval.ms=300\n")
    return broker_factory(extra_args=("--config", str(props)))


def test_kafka_python_idempotent_retries_after_a_broker_kill_do_not_duplicate(broker):
    """kafka-python 3 is idempotent by default: sends in flight when the broker dies are
    retried after it restarts, with the same sequences, and each record lands once."""
    p = KafkaProducer(bootstrap_servers=[broker.bootstrap], retries=20, retry_backoff_ms=200,
                      request_timeout_ms=5000, max_in_flight_requests_per_connection=5)
    futures = [p.send("idem", value=json.dumps({"i": i}).encode()) for i in range(2000)]
    broker.kill()
    time.sleep(0.5)
    broker.start()
    futures += [p.send("idem", value=json.dumps({"i": i}).encode()) for i in range(2000, 3000)]
    p.flush(60)
    acked = [f.get(timeout=30) for f in futures]
    p.close()
    records = read_all(broker.bootstrap, "idem")
    values = [json.loads(v)["i"] for _, _, _, v in records]
    assert len(values) == len(set(values)), "a value was written twice"
    assert set(values) == set(range(3000))
    # Each acknowledged record is at the offset its acknowledgement named.
    by_offset = {o: json.loads(v)["i"] for _, o, _, v in records}
    for i, md in enumerate(acked):
        assert by_offset[md.offset] == i


def test_confluent_idempotent_producer_survives_broker_restarts(broker):
    p = Producer({"bootstrap.servers": broker.bootstrap, "enable.idempotence": True, "linger.ms": 5,
                  "message.timeout.ms": 60000, "retry.backoff.ms": 100})
    delivered = {}

    def report(err, msg):
        assert err is None, err
        delivered[int(msg.value())] = msg.offset()

    for round_ in range(3):
        for i in range(round_ * 1000, (round_ + 1) * 1000):
            p.produce("cidem", str(i).encode(), on_delivery=report)
            p.poll(0)
        broker.kill()
        time.sleep(0.3)
        broker.start()
    assert p.flush(60) == 0
    records = read_all(broker.bootstrap, "cidem")
    values = [int(v) for _, _, _, v in records]
    assert len(values) == len(set(values)) == 3000
    by_offset = {o: int(v) for _, o, _, v in records}
    assert all(by_offset[o] == i for i, o in delivered.items())


def test_compacted_topic_keeps_the_latest_value_per_key(compact_broker):
    b = compact_broker
    admin = AdminClient({"bootstrap.servers": b.bootstrap})
    admin.create_topics([NewTopic("compacted", 1, 1, config={
        "cleanup.policy": "compact", "segment.bytes": "2048", "min.cleanable.dirty.ratio": "0.01",
        "delete.retention.ms": "100"})])["compacted"].result()
    p = Producer({"bootstrap.servers": b.bootstrap, "enable.idempotence": True, "linger.ms": 0})
    for round_ in range(20):
        for k in range(10):
            p.produce("compacted", key=f"k{k}".encode(), value=f"v{k}-{round_}".encode())
        p.flush()
    p.produce("compacted", key=b"k0", value=None)  # tombstone
    for i in range(30):  # roll a few more segments past the tombstone
        p.produce("compacted", key=f"pad{i}".encode(), value=b"x" * 100)
    p.flush()
    deadline = time.monotonic() + 30
    while True:
        records = read_all(b.bootstrap, "compacted")
        keys = [k for _, _, k, _ in records]
        if len(records) < 100 and keys.count(b"k5") == 1:
            break
        assert time.monotonic() < deadline, f"not compacted: {len(records)} records"
        time.sleep(0.5)
    latest = {k: v for _, _, k, v in records}
    for k in range(1, 10):
        assert latest[f"k{k}".encode()] == f"v{k}-19".encode()
    offsets = [o for _, o, _, _ in records]
    assert offsets == sorted(offsets) and len(offsets) == len(set(offsets))
    # The tombstone itself goes in a cleaning pass after delete.retention.ms (a pass runs
    # when new dirty data arrives, as in Kafka), together with k0's values.
    time.sleep(0.5)
    for i in range(30):
        p.produce("compacted", key=f"pad{i}".encode(), value=b"y" * 100)
    p.flush()
    deadline = time.monotonic() + 30
    while b"k0" in [k for _, _, k, _ in read_all(b.bootstrap, "compacted")]:
        assert time.monotonic() < deadline, "the tombstone for k0 was never removed"
        time.sleep(0.5)


def test_keyless_record_on_a_compacted_topic_is_rejected(compact_broker):
    admin = AdminClient({"bootstrap.servers": compact_broker.bootstrap})
    admin.create_topics([NewTopic("strict", 1, 1, config={"cleanup.policy": "compact"})])["strict"].result()
    p = Producer({"bootstrap.servers": compact_broker.bootstrap, "enable.idempotence": False, "retries": 0})
    errors = []
    p.produce("strict", value=b"no key", on_delivery=lambda e, m: errors.append(e))
    p.flush(10)
    assert errors and errors[0] is not None and errors[0].name() == "INVALID_RECORD", errors


@pytest.fixture
def small_disk(tmp_path):
    """A 3 MiB tmpfs for the data directory, so the disk really fills up."""
    mnt = tmp_path / "small-disk"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mnt)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({r.stderr.strip()}); the disk-full test needs root")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def test_full_disk_fails_produces_with_storage_error_and_recovers(broker_factory, small_disk):
    # The later --data-dir wins: the broker's data lives on the 3 MiB disk.
    b = broker_factory(extra_args=("--data-dir", str(small_disk / "data")))
    p = Producer({"bootstrap.servers": b.bootstrap, "acks": "all", "enable.idempotence": False,
                  "retries": 0, "linger.ms": 0, "message.timeout.ms": 10000})
    acked, failed = {}, []

    def report(err, msg):
        if err is None:
            acked[msg.value()] = msg.offset()
        else:
            failed.append(err)

    i = 0
    while not failed and i < 2000:
        p.produce("full", value=b"%06d" % i + b"." * 4000, on_delivery=report)
        p.flush(10)
        i += 1
    assert failed, "the 3 MiB disk never filled up"
    assert failed[0].name() == "KAFKA_STORAGE_ERROR", failed[0]
    # Everything acknowledged before the disk filled is intact, at its offset.
    records = read_all(b.bootstrap, "full")
    assert {v: o for _, o, _, v in records} == acked
    # Space returns and producing resumes without a restart.
    subprocess.run(["mount", "-o", "remount,size=8m", str(small_disk)], check=True)
    failed.clear()
    p.produce("full", value=b"after", on_delivery=report)
    p.flush(10)
    assert not failed and b"after" in acked
    records = read_all(b.bootstrap, "full")
    assert records[-1][3] == b"after"
    assert {v: o for _, o, _, v in records} == acked
