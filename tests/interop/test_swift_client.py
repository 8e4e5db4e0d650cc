"""The Swift client (through ``tributary produce`` / ``tributary consume``, separate
processes) against kafka-python and confluent-kafka on the same broker:

- what the Swift producer writes with every codec, keys and headers, other clients
  read back exactly, in order; and what they write with every codec they support,
  ``tributary consume --format json`` reads back exactly (binary bytes base64);
- one consumer group of three Swift consumers and a kafka-python consumer shares an
  8-partition topic: every record is consumed once, by exactly one member, with no
  gaps, and the kafka-python member gets partitions.

Every process started here is stopped by its PID; every wait is bounded.
"""

from __future__ import annotations

import base64
import json
import subprocess
import threading
import time
import uuid
from collections import Counter, defaultdict

import pytest

from conftest import stop_process

CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]
READ_TIMEOUT = 30.0


def topic_name(*parts) -> str:
    return "-".join(str(p) for p in parts).replace("_", "-") + "-" + uuid.uuid4().hex[:6]


def cli(tributary_bin, *args, input: str | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([str(tributary_bin), *map(str, args)], capture_output=True, text=True,
                          input=input, timeout=timeout,
                          stdin=None if input is not None else subprocess.DEVNULL)


def cli_ok(tributary_bin, *args, input: str | None = None, timeout: float = 60) -> str:
    r = cli(tributary_bin, *args, input=input, timeout=timeout)
    assert r.returncode == 0, (f"tributary {' '.join(map(str, args))} exited {r.returncode}\n"
                               f"stdout: {r.stdout[-2000:]}\nstderr: {r.stderr[-2000:]}")
    return r.stdout


def create_topic(tributary_bin, broker, topic: str, partitions: int) -> None:
    cli_ok(tributary_bin, "topics", "create", topic, "--partitions", partitions,
           "--bootstrap-server", broker.bootstrap)


# =============================================================================
# Swift producer -> kafka-python / confluent-kafka consumers
# =============================================================================

# The same headers go on every record of one `tributary produce`: duplicate names,
# an empty value and non-ASCII text included.
HEADER_ARGS = ["trace=abc-123", "dup=1", "dup=2", "empty=", "ключ-ü=значение", "eq=a=b"]
EXPECTED_HEADERS = (("trace", b"abc-123"), ("dup", b"1"), ("dup", b"2"), ("empty", b""),
                    ("ключ-ü", "значение".encode()), ("eq", b"a=b"))


def swift_lines(n: int, tag: str) -> list[tuple[str, str]]:
    """(key, value) text pairs: empty keys and values, non-ASCII, long compressible values."""
    out = []
    for i in range(n):
        key = "" if i % 10 == 0 else f"{tag}-key-{i % 37}"
        if i % 7 == 3:
            value = ""
        elif i % 13 == 6:
            value = (f"{tag} compressible payload {i} " * 600)[:20000]
        elif i % 5 == 2:
            value = f"Ünïcödé {i} — {tag} ✓"
        else:
            value = json.dumps({"tag": tag, "i": i, "pad": "x" * (i % 50)})
        out.append((key, value))
    return out


def read_kafka_python(bootstrap, topic, n, timeout=READ_TIMEOUT):
    from kafka import KafkaConsumer, TopicPartition
    c = KafkaConsumer(bootstrap_servers=[bootstrap], group_id=None, enable_auto_commit=False,
                      auto_offset_reset="earliest", fetch_max_wait_ms=200, request_timeout_ms=15000)
    try:
        tp = TopicPartition(topic, 0)
        c.assign([tp])
        c.seek_to_beginning(tp)
        out = []
        deadline = time.monotonic() + timeout
        while len(out) < n and time.monotonic() < deadline:
            for recs in c.poll(timeout_ms=300).values():
                out.extend((m.offset, m.key, m.value, tuple((k, bytes(v)) for k, v in m.headers)) for m in recs)
        return out
    finally:
        c.close()


def read_confluent(bootstrap, topic, n, timeout=READ_TIMEOUT):
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "unused-" + uuid.uuid4().hex[:8],
                  "enable.auto.commit": False, "enable.partition.eof": False, "fetch.wait.max.ms": 200})
    try:
        c.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        out = []
        deadline = time.monotonic() + timeout
        while len(out) < n and time.monotonic() < deadline:
            m = c.poll(0.3)
            if m is None:
                continue
            assert not m.error(), f"consumer error: {m.error()}"
            out.append((m.offset(), m.key(), m.value(), tuple((k, bytes(v)) for k, v in (m.headers() or ()))))
        return out
    finally:
        c.close()


@pytest.mark.parametrize("codec", CODECS)
def test_swift_producer_is_read_by_kafka_python_and_confluent(broker, tributary_bin, codec):
    topic = topic_name("swift-produce", codec)
    create_topic(tributary_bin, broker, topic, 1)
    pairs = swift_lines(600, codec)
    stdin = "".join(f"{k}\t{v}\n" for k, v in pairs)
    headers = [a for h in HEADER_ARGS for a in ("--header", h)]
    cli_ok(tributary_bin, "produce", topic, "--bootstrap-server", broker.bootstrap, "--compression", codec,
           "--acks", "all", "--key-separator", "\t", *headers, input=stdin)
    expected = [(i, k.encode(), v.encode(), EXPECTED_HEADERS) for i, (k, v) in enumerate(pairs)]
    for name, read in [("kafka-python", read_kafka_python), ("confluent-kafka", read_confluent)]:
        got = read(broker.bootstrap, topic, len(expected))
        assert len(got) == len(expected), f"{name} read {len(got)} of {len(expected)} records"
        for g, e in zip(got, expected):
            assert g == e, f"{name}, offset {e[0]}: got {g!r:.300}, expected {e!r:.300}"
    if codec != "none":
        # The batches on the broker really are compressed with the codec: the log is
        # smaller than the payload of the long values alone.
        payload = sum(len(v.encode()) for _, v in pairs)
        log_bytes = sum(f.stat().st_size for f in broker.data_dir.rglob(f"{topic}-0/*.log"))
        assert 0 < log_bytes < payload / 2, f"{codec}: log {log_bytes} bytes for {payload} bytes of values"


def test_swift_producer_acks_and_lines_without_key(broker, tributary_bin):
    topic = topic_name("swift-produce-acks")
    create_topic(tributary_bin, broker, topic, 1)
    values = [f"plain line {i}" for i in range(50)] + [""]
    for acks in ["0", "1", "all"]:
        cli_ok(tributary_bin, "produce", topic, "--bootstrap-server", broker.bootstrap, "--acks", acks,
               input="".join(v + "\n" for v in values))
    got = read_kafka_python(broker.bootstrap, topic, 3 * len(values))
    assert [(g[1], g[2], g[3]) for g in got] == [(None, v.encode(), ()) for v in values] * 3


def test_swift_producer_input_errors_are_one_line(broker, tributary_bin):
    topic = topic_name("swift-produce-errors")
    create_topic(tributary_bin, broker, topic, 1)
    r = cli(tributary_bin, "produce", topic, "--bootstrap-server", broker.bootstrap, "--key-separator", ":",
            input="a:1\nno separator here\nb:2\n")
    assert r.returncode != 0
    assert "line 2 has no key separator ':'" in r.stderr, r.stderr
    # The lines before the bad one were delivered; nothing after it.
    assert [(g[1], g[2]) for g in read_kafka_python(broker.bootstrap, topic, 1)] == [(b"a", b"1")]
    for args, needle in [(["--compression", "brotli"], "compression"), (["--acks", "2"], "acks"),
                         (["--header", "novalue"], "KEY=VALUE")]:
        r = cli(tributary_bin, "produce", topic, "--bootstrap-server", broker.bootstrap, *args, input="x\n")
        assert r.returncode != 0 and needle in r.stderr, r.stderr
    r = cli(tributary_bin, "produce", topic, "--bootstrap-server", "127.0.0.1:1", "--max-block-ms", 2000, input="x\n")
    assert r.returncode != 0 and "127.0.0.1:1" in r.stderr, r.stderr


# =============================================================================
# kafka-python / confluent-kafka producers -> Swift consumer
# =============================================================================

def other_client_records(n: int, tag: str) -> list[tuple]:
    """(key, value, headers): null and binary keys, null (tombstone), empty, binary
    and large values, headers with duplicate names, empty and binary values."""
    out = []
    for i in range(n):
        key = None if i % 5 == 0 else (bytes([0xff, 0xfe, i % 256]) if i % 6 == 1 else f"{tag}-k{i}".encode())
        if i % 7 == 3:
            value = b""
        elif i % 11 == 4:
            value = None
            key = key or f"{tag}-tombstone-{i}".encode()  # Kafka clients refuse a record with neither
        elif i % 13 == 6:
            value = (f"{tag} compressible {i} ".encode() * 3000)[:60000]
        elif i % 9 == 8:
            value = bytes(range(256))
        else:
            value = json.dumps({"tag": tag, "i": i, "text": "Grüße \"quoted\"\n\ttab"}).encode()
        if i % 3 == 0:
            headers = ()
        elif i % 3 == 1:
            headers = (("idx", str(i).encode()), ("empty", b""), ("dup", b"1"), ("dup", b"2"))
        else:
            headers = (("ключ-ü", "значение".encode()), ("bin", b"\x00\x80\xff"))
        out.append((key, value, headers))
    return out


def produce_kafka_python(bootstrap, topic, recs, codec):
    from kafka import KafkaProducer
    p = KafkaProducer(bootstrap_servers=[bootstrap], acks="all", linger_ms=5,
                      compression_type=None if codec == "none" else codec, max_block_ms=15000)
    try:
        futs = [p.send(topic, key=k, value=v, headers=list(h), partition=0) for k, v, h in recs]
        p.flush(timeout=30)
        for f in futs:
            f.get(timeout=30)
    finally:
        p.close(timeout=10)


def produce_confluent(bootstrap, topic, recs, codec):
    from confluent_kafka import Producer
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "compression.type": codec, "linger.ms": 5})
    errors = []
    for k, v, h in recs:
        p.produce(topic, key=k, value=v, headers=list(h) or None, partition=0,
                  on_delivery=lambda err, msg: errors.append(err) if err else None)
        p.poll(0)
    assert p.flush(30) == 0
    assert not errors, errors[:3]


def decode_bytes(obj: dict, name: str) -> bytes | None:
    if obj[name] is None:
        return None
    if obj.get(name + "_encoding") == "base64":
        return base64.b64decode(obj[name])
    return obj[name].encode()


def parse_json_records(stdout: str) -> list[tuple]:
    out = []
    for line in stdout.splitlines():
        obj = json.loads(line)
        headers = tuple((h["key"], decode_bytes(h, "value")) for h in obj["headers"])
        out.append((obj["partition"], obj["offset"], decode_bytes(obj, "key"), decode_bytes(obj, "value"), headers,
                    obj["timestamp"]))
    return out


@pytest.mark.parametrize("producer", ["kafka-python", "confluent-kafka"])
@pytest.mark.parametrize("codec", CODECS)
def test_swift_consumer_reads_other_clients(broker, tributary_bin, producer, codec):
    topic = topic_name("swift-consume", producer, codec)
    create_topic(tributary_bin, broker, topic, 1)
    recs = other_client_records(300, f"{producer}-{codec}")
    t0 = int(time.time() * 1000)
    {"kafka-python": produce_kafka_python, "confluent-kafka": produce_confluent}[producer](
        broker.bootstrap, topic, recs, codec)
    out = cli_ok(tributary_bin, "consume", topic, "--bootstrap-server", broker.bootstrap, "--from-beginning",
                 "--format", "json", "--max-messages", len(recs), "--timeout-ms", 20000)
    got = parse_json_records(out)
    assert len(got) == len(recs), f"read {len(got)} of {len(recs)} records"
    now = int(time.time() * 1000)
    for i, (g, (k, v, h)) in enumerate(zip(got, recs)):
        assert g[:5] == (0, i, k, v, h), f"offset {i}: got {g!r:.300}, expected {(k, v, h)!r:.300}"
        assert t0 - 60_000 <= g[5] <= now + 60_000


def test_swift_consumer_text_format_and_max_messages_commit(broker, tributary_bin):
    topic = topic_name("swift-consume-text")
    create_topic(tributary_bin, broker, topic, 1)
    recs = [(f"k{i}".encode(), f"v{i}".encode(), ()) for i in range(20)] + [(b"tomb", None, ())]
    produce_confluent(broker.bootstrap, topic, recs, "none")
    group = "text-" + uuid.uuid4().hex[:6]
    common = [topic, "--bootstrap-server", broker.bootstrap, "--group", group, "--from-beginning"]
    # Two runs of 7 then the rest: the group's committed offset is exactly what was printed.
    first = cli_ok(tributary_bin, "consume", *common, "--max-messages", 7, "--print-key", "--timeout-ms", 20000)
    assert first.splitlines() == [f"k{i}\tv{i}" for i in range(7)]
    rest = cli_ok(tributary_bin, "consume", *common, "--timeout-ms", 10000)
    assert rest.splitlines() == [f"v{i}" for i in range(7, 20)] + ["null"]


def test_swift_consumer_errors_are_one_line(broker, tributary_bin):
    r = cli(tributary_bin, "consume", "no-such-topic", "--bootstrap-server", broker.bootstrap, "--timeout-ms", 1000)
    assert r.returncode != 0 and "no-such-topic" in r.stderr, r.stderr
    for group in [[], ["--group", "g"]]:
        r = cli(tributary_bin, "consume", "t", "--bootstrap-server", "127.0.0.1:1", *group)
        assert r.returncode != 0 and "127.0.0.1:1" in r.stderr and "refused" in r.stderr, r.stderr
    r = cli(tributary_bin, "consume", "t", "--group", "g", "--assignment-strategy", "sticky,range")
    assert r.returncode != 0 and "sticky" in r.stderr, r.stderr
    r = cli(tributary_bin, "consume", "t", "--format", "xml")
    assert r.returncode != 0 and "format" in r.stderr, r.stderr


# =============================================================================
# one group: three Swift consumers and a kafka-python consumer
# =============================================================================

@pytest.fixture
def gbroker(broker_factory, tmp_path):
    """A broker whose first rebalance of an empty group is not delayed."""
    props = tmp_path / "server.properties"
    props.write_text("group.initial.rebalance.delay.ms=0\n")
    return broker_factory(extra_args=("--config", str(props)))


class SwiftMember:
    """A `tributary consume --group ... --format json` process whose records are read as
    they are printed."""

    def __init__(self, tributary_bin, bootstrap, topic, group, extra=()):
        self.proc = subprocess.Popen(
            [str(tributary_bin), "consume", topic, "--bootstrap-server", bootstrap, "--group", group,
             "--from-beginning", "--format", "json", *extra],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            start_new_session=True)
        self.records: list[tuple] = []
        self.lock = threading.Lock()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stdout:
            rec = parse_json_records(line)[0]
            with self.lock:
                self.records.append(rec)

    def count(self) -> int:
        with self.lock:
            return len(self.records)

    def stop(self) -> str:
        stop_process(self.proc, timeout=15)  # graceful: commit, leave the group
        self.reader.join(timeout=10)
        return self.proc.stderr.read()


class KafkaPythonMember:
    """A kafka-python group member (range and roundrobin assignors, its defaults)
    polling on a thread of its own."""

    def __init__(self, bootstrap, topic, group):
        from kafka import KafkaConsumer
        self.consumer = KafkaConsumer(topic, bootstrap_servers=[bootstrap], group_id=group,
                                      auto_offset_reset="earliest", enable_auto_commit=True,
                                      fetch_max_wait_ms=200, session_timeout_ms=30000,
                                      heartbeat_interval_ms=1000)
        self.records: list[tuple] = []
        self.assignment: set = set()
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._poll, daemon=True)
        self.thread.start()

    def _poll(self):
        try:
            while not self.stopping.is_set():
                batches = self.consumer.poll(timeout_ms=200)
                with self.lock:
                    self.assignment = {tp.partition for tp in self.consumer.assignment()}
                    for recs in batches.values():
                        self.records.extend((m.partition, m.offset, m.key, m.value) for m in recs)
            self.consumer.close()  # commits and leaves the group
        except BaseException as e:  # reported by the test
            self.error = e

    def count(self) -> int:
        with self.lock:
            return len(self.records)

    def stop(self):
        self.stopping.set()
        self.thread.join(timeout=30)


def group_members(tributary_bin, bootstrap, group) -> dict[str, set[int]]:
    """client id/member id -> assigned partitions of a Stable group (`tributary groups describe`)."""
    out = cli_ok(tributary_bin, "groups", "describe", "--group", group, "--bootstrap-server", bootstrap)
    lines = out.splitlines()
    if not lines[0].startswith(f"Group {group} is Stable "):
        return {}
    members: dict[str, set[int]] = defaultdict(set)
    for line in lines[2:]:
        cells = line.split()
        if len(cells) == 9 and cells[6] != "-":
            members[f"{cells[8]}/{cells[6]}"].add(int(cells[2]))
    return dict(members)


# kafka-python offers range and roundrobin; the Swift default [range, cooperative-sticky]
# meets it at range, and a Swift member preferring roundrobin at roundrobin.
@pytest.mark.parametrize("strategy", [None, "roundrobin"], ids=["default", "roundrobin"])
def test_group_of_three_swift_consumers_and_kafka_python_consumes_each_record_once(gbroker, tributary_bin, strategy):
    topic = topic_name("swift-group")
    group = "mixed-" + uuid.uuid4().hex[:6]
    create_topic(tributary_bin, gbroker, topic, 8)
    extra = ("--assignment-strategy", strategy) if strategy else ()
    swift = []
    kp = None
    try:
        swift = [SwiftMember(tributary_bin, gbroker.bootstrap, topic, group, extra) for _ in range(3)]
        kp = KafkaPythonMember(gbroker.bootstrap, topic, group)
        # All four members in one stable generation, each with two partitions.
        deadline = time.monotonic() + 60
        members: dict = {}
        while time.monotonic() < deadline:
            members = group_members(tributary_bin, gbroker.bootstrap, group)
            with kp.lock:
                kp_assignment = set(kp.assignment)
            if (len(members) == 4 and all(len(p) == 2 for p in members.values())
                    and set().union(*members.values()) == set(range(8)) and len(kp_assignment) == 2):
                break
            time.sleep(0.3)
        else:
            pytest.fail(f"the group never settled on four members with two partitions each: {members}, "
                        f"kafka-python has {kp.assignment}")
        assert sum(1 for m in members if m.startswith("tributary-console-consumer/")) == 3, members
        assert sum(1 for m in members if m.startswith("kafka-python")) == 1, members
        # The chosen assignor shows in the shape: range deals consecutive pairs, roundrobin
        # every fourth partition.
        low, high = sorted(kp_assignment)
        assert high - low == (4 if strategy == "roundrobin" else 1), (strategy, members)

        n = 4000
        from confluent_kafka import Producer
        p = Producer({"bootstrap.servers": gbroker.bootstrap, "acks": "all", "linger.ms": 5})
        for i in range(n):
            p.produce(topic, key=f"key-{i % 101}".encode(), value=f"value-{i}".encode(), partition=i % 8)
            if i % 500 == 0:
                p.poll(0)
        assert p.flush(30) == 0

        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and sum(m.count() for m in swift) + kp.count() < n:
            time.sleep(0.2)
        time.sleep(2)  # room for any duplicate to show up
    finally:
        stderrs = [m.stop() for m in swift]
        if kp is not None:
            kp.stop()
    assert kp.error is None, repr(kp.error)

    consumed: dict[tuple[int, int], list[str]] = defaultdict(list)
    values = {}
    for i, m in enumerate(swift):
        assert m.proc.returncode == 0, f"swift member {i} exited {m.proc.returncode}: {stderrs[i][-2000:]}"
        for part, offset, key, value, headers, ts in m.records:
            consumed[(part, offset)].append(f"swift-{i}")
            values[(part, offset)] = value
    for part, offset, key, value in kp.records:
        consumed[(part, offset)].append("kafka-python")
        values[(part, offset)] = value
    dupes = {k: v for k, v in consumed.items() if len(v) > 1}
    assert not dupes, f"{len(dupes)} records consumed more than once, e.g. {list(dupes.items())[:5]}"
    per_partition = Counter(p for p, _ in consumed)
    for part in range(8):
        assert sorted(o for p, o in consumed if p == part) == list(range(n // 8)), \
            f"partition {part}: gaps or extra offsets ({per_partition[part]} records)"
    assert sorted(values.values()) == sorted(f"value-{i}".encode() for i in range(n))
    by_member = Counter(who for owners in consumed.values() for who in owners)
    assert set(by_member) == {"swift-0", "swift-1", "swift-2", "kafka-python"}, by_member
    assert by_member["kafka-python"] == 2 * n // 8, by_member
