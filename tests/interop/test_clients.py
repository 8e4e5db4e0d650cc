"""Real Kafka clients against Tributary: kafka-python, confluent-kafka
(librdkafka), aiokafka and kcat.

Consumers here use no consumer group: they assign partition 0 and seek. (The
confluent-kafka Python binding refuses to build a Consumer without
``group.id``, so it gets a throwaway one that is never joined nor committed
to: assign() + explicit offsets + enable.auto.commit=false.)

Every wait is bounded; everything talks to 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import struct
import subprocess
import time
import uuid
from dataclasses import dataclass

import pytest

CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]
ACKS_MODES = [("0", False), ("1", False), ("all", False), ("all", True)]
ACKS_IDS = ["acks0", "acks1", "acksall", "acksall-idempotent"]
READ_TIMEOUT = 20.0


# --- records ------------------------------------------------------------------

@dataclass(frozen=True)
class Rec:
    key: bytes | None
    value: bytes | None
    headers: tuple = ()


@dataclass(frozen=True)
class Got:
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple
    timestamp: int

    def rec(self) -> Rec:
        return Rec(self.key, self.value, self.headers)


def make_records(n: int, tag: str) -> list[Rec]:
    """Keys (some null), binary/empty/null/large values, and headers (none,
    several, duplicate names, empty values, non-ASCII names)."""
    out = []
    for i in range(n):
        key = None if i % 5 == 0 else f"{tag}-key-{i}".encode()
        if i % 7 == 3:
            value = b""
        elif i % 11 == 4:
            key, value = f"{tag}-tombstone-{i}".encode(), None
        elif i % 13 == 6:
            value = (f"{tag} compressible payload {i} ".encode() * 3000)[:65000]
        elif i % 9 == 8:
            value = bytes(range(256)) + tag.encode()
        else:
            value = json.dumps({"tag": tag, "i": i, "pad": "x" * (i * 3)}).encode()
        if i % 3 == 0:
            headers = ()
        elif i % 3 == 1:
            headers = (("idx", str(i).encode()), ("empty", b""), ("dup", b"1"), ("dup", b"2"))
        else:
            headers = (("ключ-ü", "значение".encode()),)
        out.append(Rec(key, value, headers))
    return out


def topic_name(*parts) -> str:
    return "-".join(str(p) for p in parts).replace("_", "-") + "-" + uuid.uuid4().hex[:6]


def _headers(h) -> tuple:
    return tuple((k, bytes(v) if v is not None else None) for k, v in (h or ()))


def assert_records(got: list[Got], expected: list[Rec], first_offset: int = 0, t0_ms=None):
    assert len(got) == len(expected), f"got {len(got)} records, expected {len(expected)}"
    assert [g.offset for g in got] == list(range(first_offset, first_offset + len(expected)))
    for g, r in zip(got, expected):
        assert g.rec() == r, f"offset {g.offset}: got {g.rec()!r:.300}, expected {r!r:.300}"
    if t0_ms is not None:
        now = int(time.time() * 1000)
        bad = [g for g in got if not (t0_ms - 60_000 <= g.timestamp <= now + 60_000)]
        assert not bad, f"timestamps not near produce time: {[(g.offset, g.timestamp) for g in bad][:5]}"


def now_ms() -> int:
    return int(time.time() * 1000)


# --- kafka-python -------------------------------------------------------------

class KafkaPython:
    name = "kafka-python"

    @staticmethod
    def produce(bootstrap, topic, recs, acks="all", idempotent=True, codec="none", partition=0):
        from kafka import KafkaProducer
        p = KafkaProducer(bootstrap_servers=[bootstrap],
                          acks={"0": 0, "1": 1, "all": "all"}[acks],
                          enable_idempotence=idempotent,
                          compression_type=None if codec == "none" else codec,
                          linger_ms=5, request_timeout_ms=15000, max_block_ms=15000)
        try:
            futs = [p.send(topic, value=r.value, key=r.key, headers=list(r.headers),
                           partition=partition) for r in recs]
            p.flush(timeout=20)
            mds = [f.get(timeout=20) for f in futs]
        finally:
            p.close(timeout=10)
        return None if acks == "0" else [m.offset for m in mds]

    @staticmethod
    def _consumer(bootstrap):
        from kafka import KafkaConsumer
        return KafkaConsumer(bootstrap_servers=[bootstrap], group_id=None,
                             enable_auto_commit=False, auto_offset_reset="earliest",
                             fetch_max_wait_ms=200, request_timeout_ms=15000)

    @staticmethod
    def _got(m) -> Got:
        return Got(m.offset, m.key, m.value, _headers(m.headers), m.timestamp)

    @classmethod
    def read(cls, bootstrap, topic, n, partition=0, timeout=READ_TIMEOUT) -> list[Got]:
        from kafka import TopicPartition
        c = cls._consumer(bootstrap)
        try:
            tp = TopicPartition(topic, partition)
            c.assign([tp])
            c.seek_to_beginning(tp)
            return cls._drain(c, n, timeout)
        finally:
            c.close()

    @classmethod
    def _drain(cls, c, n, timeout):
        out = []
        deadline = time.monotonic() + timeout
        while len(out) < n and time.monotonic() < deadline:
            for recs in c.poll(timeout_ms=300).values():
                out.extend(cls._got(m) for m in recs)
        return out

    class Tail:
        def __init__(self, bootstrap, topic):
            from kafka import TopicPartition
            self.c = KafkaPython._consumer(bootstrap)
            self.tp = TopicPartition(topic, 0)
            self.c.assign([self.tp])
            self.c.seek_to_end(self.tp)

        def wait_at(self, end):
            assert self.c.position(self.tp, timeout_ms=15000) == end

        def read(self, n, timeout=READ_TIMEOUT):
            return KafkaPython._drain(self.c, n, timeout)

        def close(self):
            self.c.close()


# --- confluent-kafka ------------------------------------------------------------

class Confluent:
    name = "confluent-kafka"

    @staticmethod
    def produce(bootstrap, topic, recs, acks="all", idempotent=True, codec="none", partition=0):
        from confluent_kafka import Producer
        p = Producer({"bootstrap.servers": bootstrap, "acks": acks,
                      "enable.idempotence": idempotent, "compression.type": codec,
                      "linger.ms": 5, "message.timeout.ms": 20000,
                      "socket.timeout.ms": 15000})
        results: list = [None] * len(recs)

        def cb(i):
            def done(err, msg):
                results[i] = (err, msg.offset() if err is None else None)
            return done

        for i, r in enumerate(recs):
            p.produce(topic, value=r.value, key=r.key, headers=list(r.headers) or None,
                      partition=partition, on_delivery=cb(i))
            p.poll(0)
        left = p.flush(30)
        assert left == 0, f"{left} messages still undelivered after 30s"
        errors = [(i, res[0]) for i, res in enumerate(results) if res is None or res[0] is not None]
        assert not errors, f"delivery errors: {errors[:5]}"
        return None if acks == "0" else [res[1] for res in results]

    @staticmethod
    def _consumer(bootstrap):
        from confluent_kafka import Consumer
        return Consumer({"bootstrap.servers": bootstrap,
                         "group.id": "tributary-interop-unused-" + uuid.uuid4().hex[:8],
                         "enable.auto.commit": False, "enable.auto.offset.store": False,
                         "enable.partition.eof": False, "fetch.wait.max.ms": 200,
                         "socket.timeout.ms": 15000})

    @staticmethod
    def _got(m) -> Got:
        return Got(m.offset(), m.key(), m.value(), _headers(m.headers()), m.timestamp()[1])

    @classmethod
    def read(cls, bootstrap, topic, n, partition=0, timeout=READ_TIMEOUT) -> list[Got]:
        from confluent_kafka import OFFSET_BEGINNING, TopicPartition
        c = cls._consumer(bootstrap)
        try:
            c.assign([TopicPartition(topic, partition, OFFSET_BEGINNING)])
            return cls._drain(c, n, timeout)
        finally:
            c.close()

    @classmethod
    def _drain(cls, c, n, timeout):
        out = []
        deadline = time.monotonic() + timeout
        while len(out) < n and time.monotonic() < deadline:
            m = c.poll(0.3)
            if m is None:
                continue
            if m.error():
                raise AssertionError(f"consumer error: {m.error()}")
            out.append(cls._got(m))
        return out

    class Tail:
        def __init__(self, bootstrap, topic):
            from confluent_kafka import OFFSET_END, Consumer, TopicPartition
            self.topic = topic
            self.stats: dict = {}
            # librdkafka resolves OFFSET_END asynchronously and position()
            # stays invalid until a message is consumed; its statistics show
            # the partition's fetch state and next fetch offset instead.
            self.c = Consumer({"bootstrap.servers": bootstrap,
                               "group.id": "tributary-interop-unused-" + uuid.uuid4().hex[:8],
                               "enable.auto.commit": False, "enable.auto.offset.store": False,
                               "enable.partition.eof": False, "fetch.wait.max.ms": 200,
                               "socket.timeout.ms": 15000, "statistics.interval.ms": 100,
                               "stats_cb": self._on_stats})
            self.c.assign([TopicPartition(topic, 0, OFFSET_END)])

        def _on_stats(self, text):
            part = json.loads(text).get("topics", {}).get(self.topic, {}) \
                .get("partitions", {}).get("0")
            if part:
                self.stats = {"fetch_state": part.get("fetch_state"),
                              "next_offset": part.get("next_offset")}

        def wait_at(self, end):
            early: list[Got] = []
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                early += Confluent._drain(self.c, 1, 0.1)
                # librdkafka can report "active" one statistics tick before it
                # reports the resolved fetch offset; wait for both.
                if self.stats.get("fetch_state") == "active" and self.stats.get("next_offset") == end:
                    break
            assert not early, f"records seen before any new produce: {early[:3]}"
            assert self.stats.get("fetch_state") == "active", f"offset never resolved: {self.stats}"
            assert self.stats.get("next_offset") == end, self.stats

        def read(self, n, timeout=READ_TIMEOUT):
            return Confluent._drain(self.c, n, timeout)

        def close(self):
            self.c.close()


# --- aiokafka -----------------------------------------------------------------

def _run(coro, timeout=45):
    return asyncio.run(asyncio.wait_for(coro, timeout))


class AioKafka:
    name = "aiokafka"

    @staticmethod
    def produce(bootstrap, topic, recs, acks="all", idempotent=True, codec="none", partition=0):
        from aiokafka import AIOKafkaProducer

        async def go():
            p = AIOKafkaProducer(bootstrap_servers=bootstrap,
                                 acks={"0": 0, "1": 1, "all": "all"}[acks],
                                 enable_idempotence=idempotent,
                                 compression_type=None if codec == "none" else codec,
                                 linger_ms=5, request_timeout_ms=15000)
            await p.start()
            try:
                futs = [await p.send(topic, value=r.value, key=r.key,
                                     headers=list(r.headers) or None, partition=partition)
                        for r in recs]
                await p.flush()
                return [await f for f in futs]
            finally:
                await p.stop()

        mds = _run(go())
        return None if acks == "0" else [m.offset for m in mds]

    @staticmethod
    def _consumer(bootstrap):
        from aiokafka import AIOKafkaConsumer
        return AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None,
                                enable_auto_commit=False, auto_offset_reset="earliest",
                                fetch_max_wait_ms=200, request_timeout_ms=15000)

    @staticmethod
    def _got(m) -> Got:
        return Got(m.offset, m.key, m.value, _headers(m.headers), m.timestamp)

    @staticmethod
    async def _drain(c, tp, n, timeout):
        out = []
        deadline = time.monotonic() + timeout
        while len(out) < n and time.monotonic() < deadline:
            batch = await c.getmany(tp, timeout_ms=300)
            out.extend(AioKafka._got(m) for m in batch.get(tp, []))
        return out

    @classmethod
    def read(cls, bootstrap, topic, n, partition=0, timeout=READ_TIMEOUT) -> list[Got]:
        from aiokafka import TopicPartition

        async def go():
            c = cls._consumer(bootstrap)
            await c.start()
            try:
                tp = TopicPartition(topic, partition)
                c.assign([tp])
                await c.seek_to_beginning(tp)
                return await cls._drain(c, tp, n, timeout)
            finally:
                await c.stop()

        return _run(go(), timeout + 20)

    class Tail:
        def __init__(self, bootstrap, topic):
            from aiokafka import TopicPartition
            self.loop = asyncio.new_event_loop()
            self.tp = TopicPartition(topic, 0)

            async def go():
                c = AioKafka._consumer(bootstrap)
                await c.start()
                c.assign([self.tp])
                await c.seek_to_end(self.tp)
                return c

            self.c = self._do(go())

        def _do(self, coro, timeout=40):
            return self.loop.run_until_complete(asyncio.wait_for(coro, timeout))

        def wait_at(self, end):
            assert self._do(self.c.position(self.tp)) == end

        def read(self, n, timeout=READ_TIMEOUT):
            return self._do(AioKafka._drain(self.c, self.tp, n, timeout), timeout + 20)

        def close(self):
            try:
                self._do(self.c.stop())
            finally:
                self.loop.close()


CLIENTS = [KafkaPython, Confluent, AioKafka]
CLIENT_IDS = [c.name for c in CLIENTS]


# --- kcat ---------------------------------------------------------------------

def kcat(*args, input: str | None = None, timeout: float = 30) -> subprocess.CompletedProcess:
    proc = subprocess.run(["kcat", *args], input=input, capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, (f"kcat {' '.join(args)} exited {proc.returncode}\n"
                                  f"stdout: {proc.stdout[-2000:]}\nstderr: {proc.stderr[-3000:]}")
    return proc


# =============================================================================
# produce / consume matrix
# =============================================================================

@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("acks,idempotent", ACKS_MODES, ids=ACKS_IDS)
@pytest.mark.parametrize("client", CLIENTS, ids=CLIENT_IDS)
def test_produce_then_consume_from_beginning(broker, client, acks, idempotent, codec):
    topic = topic_name(client.name, acks, "idem" if idempotent else "plain", codec)
    first, second = make_records(20, "a"), make_records(12, "b")
    t0 = now_ms()
    # two producer sessions: the second appends after the first's batches
    off1 = client.produce(broker.bootstrap, topic, first, acks, idempotent, codec)
    off2 = client.produce(broker.bootstrap, topic, second, acks, idempotent, codec)
    if acks != "0":
        assert off1 == list(range(0, 20)) and off2 == list(range(20, 32)), (off1, off2)
    got = client.read(broker.bootstrap, topic, 32)
    assert_records(got, first + second, 0, t0)


@pytest.mark.parametrize("client", CLIENTS, ids=CLIENT_IDS)
def test_consume_from_end_sees_only_new_records(broker, client):
    topic = topic_name(client.name, "tail")
    old, new = make_records(15, "old"), make_records(7, "new")
    client.produce(broker.bootstrap, topic, old)
    tail = client.Tail(broker.bootstrap, topic)
    try:
        tail.wait_at(15)
        client.produce(broker.bootstrap, topic, new)
        got = tail.read(7)
        assert_records(got, new, first_offset=15)
        extra = tail.read(1, timeout=1.0)
        assert extra == [], f"unexpected extra records: {extra}"
    finally:
        tail.close()


def test_same_topic_written_by_every_client_reads_the_same_everywhere(broker):
    topic = topic_name("mixed")
    expected: list[Rec] = []
    for client, codec in ((KafkaPython, "gzip"), (Confluent, "lz4"), (AioKafka, "zstd"),
                          (Confluent, "snappy")):
        recs = make_records(10, f"{client.name}-{codec}")
        client.produce(broker.bootstrap, topic, recs, codec=codec)
        expected += recs
    lines = [f"kcat-line-{i}" for i in range(10)]
    kcat("-b", broker.bootstrap, "-P", "-t", topic, "-p", "0", "-z", "gzip", "-K", ":",
         input="".join(f"k{i}:{v}\n" for i, v in enumerate(lines)))
    expected += [Rec(f"k{i}".encode(), v.encode(), ()) for i, v in enumerate(lines)]

    for client in CLIENTS:
        got = client.read(broker.bootstrap, topic, len(expected))
        assert_records(got, expected), client.name
    out = kcat("-b", broker.bootstrap, "-C", "-t", topic, "-p", "0", "-o", "beginning", "-e",
               "-q", "-f", "%o|%k|%S\n").stdout.splitlines()
    assert len(out) == len(expected)
    assert [int(l.split("|")[0]) for l in out] == list(range(len(expected)))
    assert out[-10:] == [f"{40 + i}|k{i}|{len(v)}" for i, v in enumerate(lines)]


# =============================================================================
# admin
# =============================================================================

def _wait_until(pred, timeout=15.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def test_admin_kafka_python_create_describe_delete(broker):
    from kafka.admin import KafkaAdminClient
    from kafka.errors import TopicAlreadyExistsError
    name = topic_name("admin-kp")
    admin = KafkaAdminClient(bootstrap_servers=[broker.bootstrap], request_timeout_ms=15000)
    try:
        admin.create_topics({name: {"num_partitions": 3, "replication_factor": 1}},
                            wait_for_metadata=True)
        assert name in admin.list_topics()
        (desc,) = admin.describe_topics([name])
        assert desc["name"] == name and desc["error_code"] == 0, desc
        parts = sorted(desc["partitions"], key=lambda p: p["partition_index"])
        assert [p["partition_index"] for p in parts] == [0, 1, 2], desc
        assert all(p["error_code"] == 0 and p["leader_id"] >= 0 for p in parts), desc

        with pytest.raises(TopicAlreadyExistsError):
            admin.create_topics({name: {"num_partitions": 1, "replication_factor": 1}})

        # every created partition is usable on its own
        for part in (0, 2):
            recs = make_records(3, f"p{part}")
            assert KafkaPython.produce(broker.bootstrap, name, recs, partition=part) == [0, 1, 2]
            assert [g.rec() for g in KafkaPython.read(broker.bootstrap, name, 3, part)] == recs

        admin.delete_topics([name])
        _wait_until(lambda: name not in admin.list_topics(), what=f"{name} to disappear")
    finally:
        admin.close()


def test_admin_confluent_create_describe_delete(broker):
    from confluent_kafka import KafkaError, KafkaException, TopicCollection
    from confluent_kafka.admin import AdminClient, NewTopic
    name = topic_name("admin-ck")
    admin = AdminClient({"bootstrap.servers": broker.bootstrap, "socket.timeout.ms": 15000})

    admin.create_topics([NewTopic(name, num_partitions=3, replication_factor=1)],
                        operation_timeout=10)[name].result(timeout=20)
    _wait_until(lambda: name in admin.list_topics(timeout=10).topics, what=f"{name} in metadata")
    md = admin.list_topics(timeout=10)
    assert sorted(md.topics[name].partitions) == [0, 1, 2]
    assert all(p.leader >= 0 for p in md.topics[name].partitions.values())
    assert md.brokers and all(b.host == "127.0.0.1" and b.port == broker.port
                              for b in md.brokers.values()), md.brokers

    desc = admin.describe_topics(TopicCollection([name]))[name].result(timeout=20)
    assert desc.name == name
    assert sorted(p.id for p in desc.partitions) == [0, 1, 2]

    with pytest.raises(KafkaException) as ei:
        admin.create_topics([NewTopic(name, num_partitions=1, replication_factor=1)],
                            operation_timeout=10)[name].result(timeout=20)
    assert ei.value.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS

    admin.delete_topics([name], operation_timeout=10)[name].result(timeout=20)
    _wait_until(lambda: name not in admin.list_topics(timeout=10).topics,
                what=f"{name} to disappear")


# =============================================================================
# kcat
# =============================================================================

def test_kcat_produce_consume_and_metadata(broker):
    topic = topic_name("kcat")
    lines = [f"line {i} " + "x" * i for i in range(50)]
    kcat("-b", broker.bootstrap, "-P", "-t", topic, input="\n".join(lines) + "\n")
    out = kcat("-b", broker.bootstrap, "-C", "-t", topic, "-o", "beginning", "-e", "-q")
    assert out.stdout.splitlines() == lines

    text = kcat("-b", broker.bootstrap, "-L", "-t", topic).stdout
    assert f'topic "{topic}" with 1 partitions' in text, text
    assert f"127.0.0.1:{broker.port}" in text, text

    meta = json.loads(kcat("-b", broker.bootstrap, "-L", "-J").stdout)
    assert [b["name"] for b in meta["brokers"]] == [f"127.0.0.1:{broker.port}"], meta["brokers"]
    (t,) = [t for t in meta["topics"] if t["topic"] == topic]
    assert [p["partition"] for p in t["partitions"]] == [0]
    assert t["partitions"][0]["leader"] == meta["brokers"][0]["id"]


@pytest.mark.parametrize("codec", CODECS)
def test_kcat_keys_headers_compression(broker, codec):
    topic = topic_name("kcat", codec)
    pairs = [(f"key{i}", f"value {i} " + "y" * (i * 10)) for i in range(30)]
    kcat("-b", broker.bootstrap, "-P", "-t", topic, "-p", "0", "-K", "\t", "-z", codec,
         "-H", "source=kcat", "-H", "codec=" + codec,
         input="".join(f"{k}\t{v}\n" for k, v in pairs))
    got = KafkaPython.read(broker.bootstrap, topic, len(pairs))
    assert [(g.key.decode(), g.value.decode()) for g in got] == pairs
    assert all(g.headers == (("source", b"kcat"), ("codec", codec.encode())) for g in got), \
        got[0].headers
    out = kcat("-b", broker.bootstrap, "-C", "-t", topic, "-o", "beginning", "-e", "-q",
               "-f", "%o %k %h\n").stdout.splitlines()
    assert out == [f"{i} {k} source=kcat,codec={codec}" for i, (k, _) in enumerate(pairs)]


# =============================================================================
# durability
# =============================================================================

def test_acknowledged_records_survive_sigkill(broker):
    from confluent_kafka import Producer
    topic = topic_name("durable")
    n = 1000
    p = Producer({"bootstrap.servers": broker.bootstrap, "acks": "all",
                  "enable.idempotence": True, "linger.ms": 2, "message.timeout.ms": 20000})
    acked: dict[int, bytes] = {}
    failed = []

    def cb(err, msg):
        if err is None:
            acked[msg.offset()] = msg.value()
        else:
            failed.append(err)

    for i in range(n):
        p.produce(topic, value=f"durable-{i:05d}-".encode() + os.urandom(16).hex().encode(),
                  key=str(i).encode(), partition=0, on_delivery=cb)
        p.poll(0)
    assert p.flush(30) == 0
    del p
    assert not failed, failed[:5]
    assert sorted(acked) == list(range(n))

    broker.kill()
    broker.start()

    got = Confluent.read(broker.bootstrap, topic, n)
    by_offset = {g.offset: g.value for g in got}
    missing = [o for o in sorted(acked) if by_offset.get(o) != acked[o]]
    assert not missing, f"{len(missing)} acknowledged records lost or changed, first offsets {missing[:10]}"
    assert len(got) == n

    # the restarted broker goes on appending after the recovered log
    more = make_records(5, "after")
    assert Confluent.produce(broker.bootstrap, topic, more) == list(range(n, n + 5))


def _garbage(kind: str, log_bytes: bytes, next_offset: int) -> bytes:
    if kind == "zeros":
        return b"\0" * 4096
    if kind == "random":
        return random.Random(1234).randbytes(777)
    # a torn write: a plausible batch header (baseOffset, batchLength, the
    # first batch's own header fields) promising far more bytes than follow
    return struct.pack(">qi", next_offset, 5000) + log_bytes[12:61]


@pytest.mark.parametrize("kind", ["zeros", "random", "partial-batch"])
def test_torn_log_tail_is_dropped_on_restart(broker, kind):
    topic = topic_name("torn", kind)
    recs = make_records(100, "torn")
    assert Confluent.produce(broker.bootstrap, topic, recs) == list(range(100))
    broker.stop()

    pdir = broker.data_dir / f"{topic}-0"
    logs = sorted(pdir.glob("*.log")) if pdir.is_dir() else []
    assert logs, ("expected <data_dir>/<topic>-0/*.log; data dir holds: " +
                  ", ".join(str(p.relative_to(broker.data_dir))
                            for p in sorted(broker.data_dir.rglob("*")))[:2000])
    newest = max(logs, key=lambda p: (p.stat().st_mtime_ns, p.name))
    data = logs[0].read_bytes()
    with open(newest, "ab") as f:
        f.write(_garbage(kind, data, 100))

    broker.start()
    got = KafkaPython.read(broker.bootstrap, topic, 101, timeout=8)
    assert_records(got, recs)  # all 100, nothing made of the garbage

    more = make_records(10, "after-torn")
    assert KafkaPython.produce(broker.bootstrap, topic, more) == list(range(100, 110))
    assert_records(Confluent.read(broker.bootstrap, topic, 110), recs + more)
