"""Consumer groups and committed offsets with real clients: kafka-python,
confluent-kafka (librdkafka) and aiokafka against a real ``tributary serve``.

What is proved here (issue 4):
  * one member consumes a topic and commits; the broker, the CLI and the client's
    own ``committed()`` agree that the committed offsets are the log end;
  * three members split a 6-partition topic; one leaves cleanly, one is killed
    (SIGKILL of its process) and the survivor owns everything after the session
    timeout; every produced record is processed, and a record is processed again
    only when the processing that came before it was never committed;
  * the tutorial's promise: a killed consumer starts again exactly after its last
    commit while the producer keeps writing;
  * ``tributary groups reset-offsets`` (replay from 0, refused for an active group,
    --dry-run, --to-offset, --shift-by, --to-datetime), ``list``, ``describe`` (lag),
    ``delete``;
  * a broker restart under a stable group;
  * a consumer that assign()s with a group id commits without ever joining.

Group members that must be killed or must outlive a broker restart run as
separate processes: this file doubles as the worker script
(``python3 test_groups.py worker '<json>'``). A worker appends one JSON line per
event (assignment, revocation, each processed record, each commit and whether it
succeeded) to its events file; the test reads those files to check what happened.
A record line is written after the record is "processed" and before its commit
is attempted, so a SIGKILL leaves at most the uncommitted tail behind.

The broker runs with ``group.initial.rebalance.delay.ms=0``; members use a 6 s
session timeout and a 1 s heartbeat. Everything listens on 127.0.0.1, every wait
is bounded, and every process started here is stopped by its PID.

Timings (subscribe -> first record, rebalances, commits/s) are printed as
``PERF`` lines; run pytest with ``-s`` to see them.

Client behaviours that need care (all three use eager assignors by default):
  * aiokafka rebalances in a background task while the application processes a
    batch: without a lock that the (async) revocation callback waits on, a member
    keeps processing, and even commits, records of partitions that already moved
    (OffsetCommit checks only member id and generation, in Kafka as here); see
    ``_work_aiokafka``.
  * kafka-python 3.0.12 can lose the result of a join: ``subscribe()`` before the
    topic's metadata is known makes the leader assign nothing, and the metadata that
    arrives next makes it rejoin; if that JoinGroup/SyncGroup is still in flight when
    ``poll(timeout_ms)`` runs out, the next ``poll()`` finds ``need_rejoin()`` false
    (the leader's own assignment already updated its snapshot) and never applies the
    assignment it received: the consumer owns nothing, forever, in a Stable group.
    The kafka-python consumers here fetch the topic's metadata
    (``partitions_for_topic``) before subscribing, so the first join assigns.
  * kafka-python joins lazily inside ``poll()`` and rebalances only there, so a batch
    is processed and committed before its partitions are revoked; iterating the
    consumer (the tutorial's ``for message in consumer``) blocks forever unless
    ``consumer_timeout_ms`` is set. A commit refused after a rebalance or a broker
    restart raises ``CommitFailedError``; the records since the last commit are read
    again, which the accounting allows.
  * confluent-kafka: ``commit(asynchronous=False)`` reports per-partition errors in
    its result (checked), ``committed()`` answers -1001 for "none"; a Consumer needs a
    ``group.id`` even for assign().
  * After a broker restart Tributary recreates groups empty (Kafka reloads members and
    generation), so every member's next heartbeat or commit gets UNKNOWN_MEMBER_ID and
    the group rebalances once.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import pytest

# Every test here takes 1-15 s; this bounds the worst case (the pytest.ini backstop is
# 120 s). The signal method still runs fixture teardown, which stops every process.
pytestmark = pytest.mark.timeout(90)

SESSION_TIMEOUT_MS = 6000
HEARTBEAT_MS = 1000
CLIENT_NAMES = ["kafka-python", "confluent-kafka", "aiokafka"]
# Set TRIBUTARY_GROUPS_DEBUG=1 to have workers log librdkafka's `cgrp,protocol`
# debug output and kafka-python's/aiokafka's DEBUG logging to their .log files.
DEBUG = os.environ.get("TRIBUTARY_GROUPS_DEBUG") == "1"


def perf(what: str, value: float, unit: str) -> None:
    print(f"PERF {what}: {value:.3f} {unit}", flush=True)


def topic_name(*parts) -> str:
    return "-".join(str(p) for p in parts).replace("_", "-") + "-" + uuid.uuid4().hex[:6]


def wait_until(pred, timeout: float, what: str, diag=lambda: "", interval: float = 0.1):
    """Polls ``pred`` until it returns something truthy (returned) or fails the test."""
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}\n{diag()}")
        time.sleep(interval)


# =============================================================================
# broker and CLI
# =============================================================================

@pytest.fixture
def gbroker(broker_factory, tmp_path):
    """A broker whose first rebalance of an empty group is not delayed."""
    props = tmp_path / "server.properties"
    props.write_text("group.initial.rebalance.delay.ms=0\n")
    return broker_factory(extra_args=("--config", str(props)))


def cli(tributary_bin, *args, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run([str(tributary_bin), *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def cli_ok(tributary_bin, *args, timeout: float = 30) -> str:
    r = cli(tributary_bin, *args, timeout=timeout)
    assert r.returncode == 0, (f"tributary {' '.join(map(str, args))} exited {r.returncode}\n"
                               f"stdout: {r.stdout[-2000:]}\nstderr: {r.stderr[-2000:]}")
    return r.stdout


def create_topic(tributary_bin, broker, topic: str, partitions: int) -> None:
    cli_ok(tributary_bin, "topics", "create", topic, "--partitions", partitions,
           "--bootstrap-server", broker.bootstrap)


@dataclass
class GroupView:
    """``tributary groups describe`` parsed."""
    group: str
    state: str
    member_count: int
    rows: dict  # (topic, partition) -> {"current", "end", "lag", "consumer", "client"}
    text: str

    def committed(self, topic: str) -> dict[int, int | None]:
        return {p: r["current"] for (t, p), r in sorted(self.rows.items()) if t == topic}

    def owners(self, topic: str) -> dict[str, set[int]]:
        out: dict[str, set[int]] = defaultdict(set)
        for (t, p), r in self.rows.items():
            if t == topic and r["consumer"] != "-":
                out[r["consumer"]].add(p)
        return dict(out)


def _int_or_none(cell: str) -> int | None:
    return None if cell == "-" else int(cell)


def describe(tributary_bin, broker, group: str) -> GroupView:
    out = cli_ok(tributary_bin, "groups", "describe", "--group", group,
                 "--bootstrap-server", broker.bootstrap)
    lines = out.splitlines()
    m = re.fullmatch(r"Group (\S+) is (\S+) with (\d+) member\(s\)\.", lines[0].strip())
    assert m, f"unexpected describe output:\n{out}"
    header = lines[1].split()
    assert header == ["GROUP", "TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG",
                      "CONSUMER-ID", "HOST", "CLIENT-ID"], out
    rows = {}
    for line in lines[2:]:
        cells = line.split()
        assert len(cells) == 9, f"unexpected describe row {line!r} in\n{out}"
        rows[(cells[1], int(cells[2]))] = {
            "current": _int_or_none(cells[3]), "end": _int_or_none(cells[4]),
            "lag": _int_or_none(cells[5]), "consumer": cells[6], "client": cells[8]}
    return GroupView(m.group(1), m.group(2), int(m.group(3)), rows, out)


def list_groups(tributary_bin, broker, state: bool = False) -> list[str]:
    args = ["groups", "list", "--bootstrap-server", broker.bootstrap] + (["--state"] if state else [])
    return cli_ok(tributary_bin, *args).splitlines()


# =============================================================================
# producing
# =============================================================================

def produce(bootstrap: str, topic: str, n: int, partitions: int, tag: str,
            timestamps: list[int] | None = None,
            batch_per_record: bool = False) -> dict[tuple[int, int], str]:
    """``n`` records with unique values ``tag:i`` to partition ``i % partitions``
    (confluent-kafka, acks=all), optionally each in its own batch. Returns
    {(partition, offset): value}."""
    from confluent_kafka import Producer
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 2,
                  "message.timeout.ms": 20000, "socket.timeout.ms": 15000})
    placed: dict[tuple[int, int], str] = {}
    errors = []

    def done(err, msg):
        if err is not None:
            errors.append(err)
        else:
            placed[(msg.partition(), msg.offset())] = msg.value().decode()

    for i in range(n):
        kwargs = {"timestamp": timestamps[i]} if timestamps else {}
        p.produce(topic, value=f"{tag}:{i}".encode(), partition=i % partitions,
                  on_delivery=done, **kwargs)
        if batch_per_record:
            p.flush(10)
        p.poll(0)
    left = p.flush(30)
    assert left == 0 and not errors, f"{left} undelivered, errors: {errors[:5]}"
    assert len(placed) == n
    return placed


# =============================================================================
# in-process group consumers, one interface per client
# =============================================================================

@dataclass(frozen=True)
class Rec:
    partition: int
    offset: int
    value: str


class GroupClient:
    """What the client adapters share: `_poll` buffers records, `read` hands them out in
    order, and the assignment is the client's own view of it."""
    name = "consumer"
    buffer: list[Rec]

    def _poll(self, timeout_s):
        raise NotImplementedError

    def read(self, n, timeout=20.0) -> list[Rec]:
        deadline = time.monotonic() + timeout
        while len(self.buffer) < n and time.monotonic() < deadline:
            self._poll(0.2)
        out, self.buffer = self.buffer[:n], self.buffer[n:]
        return out

    def assignment(self) -> list[int]:
        return sorted(tp.partition for tp in self.c.assignment())

    def wait_assigned(self, timeout=20.0) -> list[int]:
        return wait_until(lambda: self._poll(0.1) or self.assignment(), timeout,
                          f"{self.name} consumer to be assigned partitions", interval=0)


class KafkaPythonGroup(GroupClient):
    """kafka-python: subscribe (or assign with a group id), read, commit."""
    name = "kafka-python"

    def __init__(self, bootstrap, group, topic, assign: list[int] | None = None):
        from kafka import KafkaConsumer, TopicPartition
        self.TP = TopicPartition
        self.topic = topic
        self.c = KafkaConsumer(bootstrap_servers=[bootstrap], group_id=group,
                               client_id=f"kp-{group}", enable_auto_commit=False,
                               auto_offset_reset="earliest",
                               session_timeout_ms=SESSION_TIMEOUT_MS,
                               heartbeat_interval_ms=HEARTBEAT_MS, fetch_max_wait_ms=100,
                               request_timeout_ms=15000)
        self.buffer: list[Rec] = []
        if assign is None:
            # kafka-python 3.0.12 can lose a join's assignment; see the module docstring
            assert self.c.partitions_for_topic(topic), f"no metadata for {topic}"
            self.t_start = time.monotonic()
            self.c.subscribe([topic])
        else:
            self.t_start = time.monotonic()
            self.c.assign([TopicPartition(topic, p) for p in assign])

    def _poll(self, timeout_s):
        for tp, recs in self.c.poll(timeout_ms=int(timeout_s * 1000)).items():
            self.buffer += [Rec(m.partition, m.offset, m.value.decode()) for m in recs]

    def commit(self, offsets: dict[int, int] | None = None):
        from kafka.structs import OffsetAndMetadata
        if offsets is None:
            self.c.commit()
        else:
            self.c.commit({self.TP(self.topic, p): OffsetAndMetadata(o, "", -1)
                           for p, o in offsets.items()})

    def committed(self, partitions) -> dict[int, int | None]:
        return {p: self.c.committed(self.TP(self.topic, p)) for p in partitions}

    def close(self):
        self.c.close(autocommit=False)


class ConfluentGroup(GroupClient):
    """confluent-kafka (librdkafka)."""
    name = "confluent-kafka"

    def __init__(self, bootstrap, group, topic, assign: list[int] | None = None):
        from confluent_kafka import Consumer, TopicPartition
        self.TP = TopicPartition
        self.topic = topic
        conf = {"bootstrap.servers": bootstrap, "group.id": group, "client.id": f"ck-{group}",
                "enable.auto.commit": False, "auto.offset.reset": "earliest",
                "session.timeout.ms": SESSION_TIMEOUT_MS,
                "heartbeat.interval.ms": HEARTBEAT_MS, "fetch.wait.max.ms": 100,
                "enable.partition.eof": False, "socket.timeout.ms": 15000}
        if DEBUG:
            conf["debug"] = "cgrp,protocol"
        self.c = Consumer(conf)
        self.buffer: list[Rec] = []
        self.t_start = time.monotonic()
        if assign is None:
            self.c.subscribe([topic])
        else:
            self.c.assign([TopicPartition(topic, p) for p in assign])

    def _poll(self, timeout_s):
        for m in self.c.consume(num_messages=500, timeout=timeout_s):
            if m.error():
                raise AssertionError(f"consumer error: {m.error()}")
            self.buffer.append(Rec(m.partition(), m.offset(), m.value().decode()))

    def commit(self, offsets: dict[int, int] | None = None):
        if offsets is None:
            res = self.c.commit(asynchronous=False)
        else:
            res = self.c.commit(offsets=[self.TP(self.topic, p, o) for p, o in offsets.items()],
                                asynchronous=False)
        bad = [tp for tp in res or [] if tp.error is not None]
        assert not bad, f"commit failed: {bad}"

    def committed(self, partitions) -> dict[int, int | None]:
        res = self.c.committed([self.TP(self.topic, p) for p in partitions], timeout=15)
        return {tp.partition: (tp.offset if tp.offset >= 0 else None) for tp in res}

    def close(self):
        self.c.close()


class AioKafkaGroup(GroupClient):
    """aiokafka, driven from a private event loop in a background thread, so the
    consumer keeps heartbeating between the test's calls."""
    name = "aiokafka"

    def __init__(self, bootstrap, group, topic, assign: list[int] | None = None):
        from aiokafka import AIOKafkaConsumer, TopicPartition
        self.TP = TopicPartition
        self.topic = topic
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.buffer: list[Rec] = []

        async def make():
            c = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group,
                                 client_id=f"aio-{group}", enable_auto_commit=False,
                                 auto_offset_reset="earliest",
                                 session_timeout_ms=SESSION_TIMEOUT_MS,
                                 heartbeat_interval_ms=HEARTBEAT_MS, fetch_max_wait_ms=100,
                                 request_timeout_ms=15000)
            await c.start()
            self.t_start = time.monotonic()
            if assign is None:
                c.subscribe([topic])
            else:
                c.assign([TopicPartition(topic, p) for p in assign])
            return c

        try:
            self.c = self._do(make())
        except BaseException:
            self._stop_loop()
            raise

    def _do(self, coro, timeout=30.0):
        return asyncio.run_coroutine_threadsafe(asyncio.wait_for(coro, timeout), self.loop) \
            .result(timeout + 5)

    def _poll(self, timeout_s):
        batches = self._do(self.c.getmany(timeout_ms=int(timeout_s * 1000)))
        for tp, recs in sorted(batches.items()):
            self.buffer += [Rec(m.partition, m.offset, m.value.decode()) for m in recs]

    def commit(self, offsets: dict[int, int] | None = None):
        if offsets is None:
            self._do(self.c.commit())
        else:
            self._do(self.c.commit({self.TP(self.topic, p): o for p, o in offsets.items()}))

    def committed(self, partitions) -> dict[int, int | None]:
        async def go():
            return {p: await self.c.committed(self.TP(self.topic, p)) for p in partitions}
        return self._do(go())

    def _stop_loop(self):
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()

    def close(self):
        try:
            self._do(self.c.stop())
        finally:
            self._stop_loop()


GROUP_CLIENTS = {c.name: c for c in (KafkaPythonGroup, ConfluentGroup, AioKafkaGroup)}


class Consumers:
    """Closes every in-process consumer a test opened."""

    def __init__(self):
        self.open: list = []

    def __call__(self, client: str, *args, **kwargs):
        c = GROUP_CLIENTS[client](*args, **kwargs)
        self.open.append(c)
        return c

    def close(self, c):
        if c in self.open:
            self.open.remove(c)
            c.close()

    def close_all(self):
        while self.open:
            c = self.open.pop()
            try:
                c.close()
            except Exception as exc:  # keep closing the others
                print(f"closing {c.name}: {exc!r}", file=sys.stderr)


@pytest.fixture
def consumers():
    cs = Consumers()
    yield cs
    cs.close_all()


# =============================================================================
# worker processes
# =============================================================================

class Member:
    """A group member in its own process (this file run as a script)."""

    def __init__(self, directory: Path, name: str, client: str, bootstrap: str, group: str,
                 topic: str, commit: str = "batch", batch: int = 20, delay_ms: float = 0,
                 style: str = "poll"):
        self.name = name
        self.events_path = directory / f"{name}.events"
        self.log_path = directory / f"{name}.log"
        cfg = {"name": name, "client": client, "bootstrap": bootstrap, "group": group,
               "topic": topic, "commit": commit, "batch": batch, "delay_ms": delay_ms,
               "style": style, "out": str(self.events_path),
               "session_timeout_ms": SESSION_TIMEOUT_MS, "heartbeat_ms": HEARTBEAT_MS,
               "max_life_s": 150, "debug": DEBUG}
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "worker",
                                          json.dumps(cfg)],
                                         stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, env=env,
                                         start_new_session=True)
        self.killed_at: float | None = None

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def events(self) -> list[dict]:
        try:
            text = self.events_path.read_text()
        except FileNotFoundError:
            return []
        out = []
        for line in text.splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:  # a line torn by SIGKILL
                pass
        return out

    def assignment(self) -> list[int] | None:
        """The partitions of the last "assigned" event, [] after a revocation
        that no assignment followed, None before the first assignment."""
        current = None
        for e in self.events():
            if e["ev"] == "assigned":
                current = e["parts"]
            elif e["ev"] == "revoked":
                current = []
        return current

    def last(self, ev: str) -> dict | None:
        found = [e for e in self.events() if e["ev"] == ev]
        return found[-1] if found else None

    def records(self) -> list[dict]:
        return [e for e in self.events() if e["ev"] == "rec"]

    def terminate(self, timeout: float = 20) -> int:
        """SIGTERM: the worker closes its consumer (LeaveGroup) and exits."""
        if self.alive:
            os.kill(self.proc.pid, signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"{self.name} did not close within {timeout}s of SIGTERM\n"
                                 f"{self.log_tail()}")

    def kill(self) -> None:
        if self.alive:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.killed_at = time.time()
        self.proc.wait(30)

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            text = ""
        return f"--- {self.name} log ---\n" + "\n".join(text.splitlines()[-lines:])

    def diag(self) -> str:
        evs = [e for e in self.events() if e["ev"] != "rec"]
        return (f"{self.name}: alive={self.alive} records={len(self.records())} "
                f"assignment={self.assignment()} last events={evs[-6:]}")


@pytest.fixture
def spawn(tmp_path, request):
    """``spawn(name, client, bootstrap, group, topic, **opts)`` starts a Member;
    every member still running at teardown is SIGKILLed."""
    made: list[Member] = []

    def start(name, *args, **kwargs) -> Member:
        m = Member(tmp_path, name, *args, **kwargs)
        made.append(m)
        return m

    yield start
    for m in made:
        if m.alive:
            os.kill(m.proc.pid, signal.SIGKILL)
            m.proc.wait(30)
    failed = any(getattr(request.node, "rep_" + w, None) is not None
                 and getattr(request.node, "rep_" + w).failed for w in ("setup", "call"))
    if failed:
        for m in made:
            print(m.diag(), file=sys.stderr)
            print(m.log_tail(), file=sys.stderr)


def wait_split(members: list[Member], partitions: int, each: int, timeout: float,
               tributary_bin=None, broker=None, group=None) -> float:
    """Waits until every member owns ``each`` partitions, together all of them, no
    two the same; when a broker is given, until ``describe`` agrees too. Returns
    the time of the last member's last assignment event."""
    def check():
        owned = [m.assignment() for m in members]
        if any(o is None or len(o) != each for o in owned):
            return False
        if sorted(p for o in owned for p in o) != list(range(partitions)):
            return False
        if broker is not None:
            view = describe(tributary_bin, broker, group)
            if view.state != "Stable" or view.member_count != len(members):
                return False
            owners = {frozenset(ps) for t in {k[0] for k in view.rows} for ps in view.owners(t).values()}
            if owners != {frozenset(o) for o in owned}:
                return False
        return True

    wait_until(check, timeout, f"{len(members)} members to own {each} partitions each",
               lambda: "\n".join(m.diag() for m in members))
    return max(m.last("assigned")["t"] for m in members)


# --- accounting ---------------------------------------------------------------

@dataclass
class Accounting:
    missing: list = field(default_factory=list)       # produced, never processed
    unexpected: list = field(default_factory=list)    # processed, never produced / wrong value
    duplicates: dict = field(default_factory=dict)    # (p, o) -> [(member, t, committed)]
    violations: dict = field(default_factory=dict)    # committed processing done again
    commit_failures: dict = field(default_factory=dict)

    def summary(self) -> str:
        dups = {k: [(m, c) for m, _, c in v] for k, v in sorted(self.duplicates.items())}
        return (f"missing={self.missing[:20]} ({len(self.missing)})\n"
                f"unexpected={self.unexpected[:20]} ({len(self.unexpected)})\n"
                f"violations={dict(list(self.violations.items())[:10])} ({len(self.violations)})\n"
                f"duplicates ({len(dups)}): {dict(list(dups.items())[:30])}\n"
                f"commit failures: {self.commit_failures}")


def account(produced: dict[tuple[int, int], str], members: list[Member]) -> Accounting:
    """Every produced record must be processed. A record may be processed more
    than once only when every processing but the last was never committed
    (processed by a member that was killed before committing it, or whose commit
    failed): processing that was committed must never be repeated.

    A processing counts as committed when the member's first commit attempt after
    it that covers its offset succeeded."""
    acc = Accounting()
    instances: dict[tuple[int, int], list] = defaultdict(list)
    for m in members:
        evs = m.events()
        attempts: dict[int, list[tuple[float, int, bool]]] = defaultdict(list)
        for e in evs:
            if e["ev"] in ("commit", "commit_failed"):
                for p, o in e["offsets"]:
                    attempts[p].append((e["t"], o, e["ev"] == "commit"))
            if e["ev"] == "commit_failed":
                acc.commit_failures[m.name] = acc.commit_failures.get(m.name, 0) + 1
        for e in evs:
            if e["ev"] != "rec":
                continue
            key = (e["p"], e["o"])
            covering = [ok for t, o, ok in attempts.get(e["p"], []) if t >= e["t"] and o > e["o"]]
            committed = bool(covering) and covering[0]
            instances[key].append((m.name, e["t"], committed))
            if produced.get(key) != e["v"]:
                acc.unexpected.append((key, e["v"], produced.get(key)))
    acc.missing = sorted(set(produced) - set(instances))
    for key, inst in instances.items():
        inst.sort(key=lambda x: x[1])
        if len(inst) > 1:
            acc.duplicates[key] = inst
            if any(committed for _, _, committed in inst[:-1]):
                acc.violations[key] = inst
    return acc


# =============================================================================
# 1. one member consumes everything and commits
# =============================================================================

@pytest.mark.parametrize("client", CLIENT_NAMES)
def test_single_member_consumes_all_and_commits_log_end(gbroker, tributary_bin, consumers, client):
    topic, group = topic_name("single", client), topic_name("g-single", client)
    create_topic(tributary_bin, gbroker, topic, 3)
    produced = produce(gbroker.bootstrap, topic, 30, 3, "single")

    c = consumers(client, gbroker.bootstrap, group, topic)
    first = c.read(1, timeout=15)
    t_first = time.monotonic() - c.t_start
    assert first, "no record within 15 s of subscribe"
    got = first + c.read(29, timeout=20)
    perf(f"{client}: subscribe -> first record (fresh group, initial delay 0)", t_first, "s")
    assert sorted((r.partition, r.offset) for r in got) == sorted(produced)
    assert all(produced[(r.partition, r.offset)] == r.value for r in got)
    assert c.assignment() == [0, 1, 2]
    # with the default 3 s initial delay the first record could not arrive this soon
    assert t_first < 2.5, f"first record took {t_first:.2f}s on a fresh group with delay 0"

    c.commit()
    assert c.committed([0, 1, 2]) == {0: 10, 1: 10, 2: 10}

    view = describe(tributary_bin, gbroker, group)
    assert (view.state, view.member_count) == ("Stable", 1), view.text
    assert view.committed(topic) == {0: 10, 1: 10, 2: 10}, view.text
    assert all(r["end"] == 10 and r["lag"] == 0 for r in view.rows.values()), view.text
    assert len(view.owners(topic)) == 1 and set().union(*view.owners(topic).values()) == {0, 1, 2}

    consumers.close(c)
    view = describe(tributary_bin, gbroker, group)
    assert (view.state, view.member_count) == ("Empty", 0), view.text
    assert view.committed(topic) == {0: 10, 1: 10, 2: 10}, view.text

    # a new member of the same group has nothing left to read
    c2 = consumers(client, gbroker.bootstrap, group, topic)
    c2.wait_assigned()
    assert c2.committed([0, 1, 2]) == {0: 10, 1: 10, 2: 10}
    assert c2.read(1, timeout=2) == []


# =============================================================================
# 2. three members split six partitions; one leaves, one is killed
# =============================================================================

@pytest.mark.parametrize("client", CLIENT_NAMES)
def test_three_members_split_then_leave_and_kill(gbroker, tributary_bin, spawn, client):
    topic, group = topic_name("split", client), topic_name("g-split", client)
    create_topic(tributary_bin, gbroker, topic, 6)
    bs = gbroker.bootstrap
    produced = produce(bs, topic, 240, 6, "phase1")

    opts = dict(commit="batch", batch=20, delay_ms=5)
    a, b, c = (spawn(n, client, bs, group, topic, **opts) for n in ("a", "b", "c"))
    members = [a, b, c]
    t_assigned = wait_split(members, 6, 2, 40, tributary_bin, gbroker, group)
    t_last_sub = max(wait_until(lambda: m.last("subscribed"), 5, "subscribed")["t"] for m in members)
    perf(f"{client}: 3 members, last subscribe -> all assigned 2 partitions", t_assigned - t_last_sub, "s")

    produced.update(produce(bs, topic, 240, 6, "phase2"))
    # wait until b and c are busy with phase 2, then a leaves cleanly
    wait_until(lambda: all(any(r["v"].startswith("phase2") for r in m.records()) for m in (b, c)),
               20, "b and c to process phase-2 records", lambda: "\n".join(m.diag() for m in members))
    t_leave = time.time()
    assert a.terminate() == 0, a.log_tail()
    assert a.last("closed") is not None, a.diag()
    t_assigned = wait_split([b, c], 6, 3, 25, tributary_bin, gbroker, group)
    perf(f"{client}: clean leave -> 2 survivors reassigned 3 partitions each", t_assigned - t_leave, "s")

    # c is killed in the middle of processing phase 3
    before = len(c.records())
    produced.update(produce(bs, topic, 240, 6, "phase3"))
    wait_until(lambda: len(c.records()) >= before + 25, 20, "c to process phase-3 records", c.diag)
    c.kill()
    view = describe(tributary_bin, gbroker, group)
    assert view.member_count == 2, f"the killed member left before its session expired\n{view.text}"
    t_assigned = wait_split([b], 6, 6, SESSION_TIMEOUT_MS / 1000 + 20, tributary_bin, gbroker, group)
    took = t_assigned - c.killed_at
    perf(f"{client}: SIGKILL of a member -> survivor owns all 6 (session timeout "
         f"{SESSION_TIMEOUT_MS} ms)", took, "s")
    assert took >= SESSION_TIMEOUT_MS / 1000 - HEARTBEAT_MS / 1000 - 1.5, \
        f"partitions moved {took:.1f}s after the kill, before the session could expire"

    produced.update(produce(bs, topic, 240, 6, "phase4"))

    def drained():
        view = describe(tributary_bin, gbroker, group)
        return all(r["lag"] == 0 for r in view.rows.values()) and len(view.rows) == 6
    wait_until(drained, 40, "every produced record to be committed",
               lambda: describe(tributary_bin, gbroker, group).text + b.diag(), interval=0.5)
    assert b.terminate() == 0, b.log_tail()

    view = describe(tributary_bin, gbroker, group)
    assert (view.state, view.member_count) == ("Empty", 0), view.text
    ends = {p: 1 + max(o for q, o in produced if q == p) for p in range(6)}
    assert view.committed(topic) == ends, view.text

    acc = account(produced, members)
    print(f"{client} accounting:\n{acc.summary()}")
    assert not acc.missing and not acc.unexpected, acc.summary()
    assert not acc.violations, "committed records were processed again:\n" + acc.summary()
    # duplicates: only records processed (and never committed) by the killed member,
    # or by a member whose commit failed in a rebalance
    for key, inst in acc.duplicates.items():
        for name, _, _ in inst[:-1]:
            assert name == "c" or acc.commit_failures.get(name), \
                f"{key} processed twice though {name} was neither killed nor failed a commit\n{acc.summary()}"
    # what b processed again after c was killed lies past c's last commit
    c_last = {}
    for e in c.events():
        if e["ev"] == "commit":
            for p, o in e["offsets"]:
                c_last[p] = max(c_last.get(p, 0), o)
    redone = {k for k, inst in acc.duplicates.items() if inst[0][0] == "c" and inst[-1][0] == "b"}
    assert all(o >= c_last.get(p, 0) for p, o in redone), (c_last, sorted(redone))


# =============================================================================
# 3. the tutorial's promise: start again exactly after the last commit
# =============================================================================

def test_killed_consumer_continues_after_its_last_commit(gbroker, tributary_bin, spawn):
    """The tutorial's consumer style (kafka-python, ``for message in consumer``), with a
    group, auto-commit off and a commit after every record."""
    from kafka import KafkaProducer
    topic, group = topic_name("weather"), topic_name("g-weather")
    create_topic(tributary_bin, gbroker, topic, 1)
    bs = gbroker.bootstrap
    produced = produce(bs, topic, 200, 1, "day")

    # the producer keeps writing, one record every 10 ms, through the kill and restart
    stop_producing = threading.Event()
    futures: list = []
    producer = KafkaProducer(bootstrap_servers=[bs], acks="all", linger_ms=0,
                             request_timeout_ms=15000, max_block_ms=15000)

    def keep_writing():
        i = 0
        while not stop_producing.is_set():
            futures.append((f"live:{i}", producer.send(topic, value=f"live:{i}".encode(), partition=0)))
            i += 1
            time.sleep(0.01)

    writer = threading.Thread(target=keep_writing, daemon=True)
    writer.start()
    try:
        first = spawn("first", "kafka-python", bs, group, topic, commit="record",
                      delay_ms=10, style="iter")
        wait_until(lambda: len(first.records()) >= 100, 30, "half the topic to be processed",
                   first.diag)
        first.kill()
        before_restart = describe(tributary_bin, gbroker, group)
        committed = before_restart.committed(topic)[0]
        recs = first.records()
        logged = max((o for e in first.events() if e["ev"] == "commit" for _, o in e["offsets"]),
                     default=None)
        # the log's last commit is the broker's, unless the kill fell between a
        # commit's answer and the line recording it
        assert committed == logged or (committed == recs[-1]["o"] + 1 == logged + 1), \
            (committed, logged, recs[-1])
        assert [r["o"] for r in recs] == list(range(len(recs))), "first run skipped records"
        time.sleep(1.0)  # the consumer is down; the producer is not

        second = spawn("second", "kafka-python", bs, group, topic, commit="record",
                       delay_ms=0, style="iter")
        wait_until(lambda: second.records(), SESSION_TIMEOUT_MS / 1000 + 20,
                   "the restarted consumer's first record", second.diag)
        t_first = second.records()[0]["t"] - first.killed_at
        perf("kafka-python: SIGKILL -> restarted member's first record "
             f"(old member expires after {SESSION_TIMEOUT_MS} ms)", t_first, "s")
        assert second.records()[0]["o"] == committed, \
            f"restarted at {second.records()[0]['o']}, last committed offset was {committed}"
        time.sleep(1.0)
    finally:
        stop_producing.set()
        writer.join(10)
        producer.flush(20)
        producer.close(10)
    for value, fut in futures:
        md = fut.get(timeout=10)
        produced[(md.partition, md.offset)] = value
    end = len(produced)
    assert sorted(produced) == [(0, o) for o in range(end)]
    wait_until(lambda: describe(tributary_bin, gbroker, group).committed(topic)[0] == end, 30,
               f"the restarted consumer to commit up to {end}", second.diag, interval=0.3)
    assert second.terminate() == 0

    acc = account(produced, [first, second])
    print(acc.summary())
    assert not acc.missing and not acc.unexpected and not acc.violations, acc.summary()
    # the only record processed twice is the one the first run processed but had not
    # committed when it was killed
    assert set(acc.duplicates) <= {(0, committed)}, acc.summary()
    assert [r["o"] for r in second.records()] == list(range(committed, end))


# =============================================================================
# 4. replay and reset-offsets
# =============================================================================

@pytest.mark.parametrize("client", CLIENT_NAMES)
def test_reset_to_earliest_replays_from_zero(gbroker, tributary_bin, consumers, client):
    topic, group = topic_name("replay", client), topic_name("g-replay", client)
    create_topic(tributary_bin, gbroker, topic, 3)
    produced = produce(gbroker.bootstrap, topic, 30, 3, "replay")
    c = consumers(client, gbroker.bootstrap, group, topic)
    assert len(c.read(30)) == 30
    c.commit()
    consumers.close(c)
    assert describe(tributary_bin, gbroker, group).committed(topic) == {0: 10, 1: 10, 2: 10}

    out = cli_ok(tributary_bin, "groups", "reset-offsets", "--group", group, "--topic", topic,
                 "--to-earliest", "--bootstrap-server", gbroker.bootstrap)
    assert "Committed new offsets" in out, out
    rows = [l.split() for l in out.splitlines() if l.startswith(group)]
    assert sorted((int(r[2]), int(r[3]), int(r[4])) for r in rows) == [(0, 10, 0), (1, 10, 0), (2, 10, 0)], out
    view = describe(tributary_bin, gbroker, group)
    assert view.committed(topic) == {0: 0, 1: 0, 2: 0} and all(r["lag"] == 10 for r in view.rows.values()), view.text

    c = consumers(client, gbroker.bootstrap, group, topic)
    again = c.read(30)
    assert sorted((r.partition, r.offset) for r in again) == sorted(produced)
    for p in range(3):
        assert [r.offset for r in again if r.partition == p] == list(range(10)), again
    assert c.read(1, timeout=1) == []


def test_reset_offsets_modes_and_refusals(gbroker, tributary_bin, consumers):
    bs = gbroker.bootstrap
    topic, group = topic_name("reset"), topic_name("g-reset")
    create_topic(tributary_bin, gbroker, topic, 1)
    base = (int(time.time()) - 3600) * 1000  # an hour ago, on a whole second
    # one batch per record: ListOffsets by time resolves only to a batch's base offset
    # (see test_reset_to_datetime_inside_a_batch)
    produce(bs, topic, 10, 1, "t", timestamps=[base + i * 1000 for i in range(10)],
            batch_per_record=True)

    def reset(*mode):
        return cli(tributary_bin, "groups", "reset-offsets", "--group", group, "--topic", topic,
                   *mode, "--bootstrap-server", bs)

    def committed():
        return describe(tributary_bin, gbroker, group).committed(topic)

    c = consumers("confluent-kafka", bs, group, topic)
    assert len(c.read(10)) == 10
    c.commit()
    assert committed() == {0: 10}

    # an active group is refused: one clear line, non-zero exit, nothing changed
    assert describe(tributary_bin, gbroker, group).state == "Stable"
    r = reset("--to-earliest")
    assert r.returncode != 0, r.stdout
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert len(lines) == 1 and "active" in lines[0] and group in lines[0], r.stderr
    assert committed() == {0: 10}
    consumers.close(c)

    # --dry-run shows the new offset and commits nothing
    r = reset("--to-earliest", "--dry-run")
    assert r.returncode == 0, r.stderr
    assert "Dry run" in r.stdout and re.search(rf"{group}\s+{topic}\s+0\s+10\s+0\b", r.stdout), r.stdout
    assert committed() == {0: 10}

    def expect(mode, offset):
        r = reset(*mode)
        assert r.returncode == 0, (mode, r.stderr)
        assert committed() == {0: offset}, (mode, r.stdout)

    expect(["--to-offset", "4"], 4)
    # `--shift-by=-3`: the CLI does not take a negative value as a separate argument
    # yet (see test_reset_shift_by_takes_a_negative_value_as_its_own_argument)
    expect(["--shift-by=-3"], 1)
    expect(["--shift-by=-5"], 0)          # clamped to the log start
    expect(["--shift-by", "7"], 7)
    expect(["--shift-by", "100"], 10)     # clamped to the log end
    expect(["--to-offset", "1000"], 10)
    expect(["--to-earliest"], 0)
    expect(["--to-latest"], 10)

    expect(["--to-datetime", iso(base + 4500)], 5)   # first record at or after the time
    expect(["--to-datetime", iso(base + 3000)], 3)
    expect(["--to-datetime", iso(base - 60_000)], 0)
    expect(["--to-datetime", iso(base + 2000)], 2)

    # and the group continues from there
    c = consumers("kafka-python", bs, group, topic)
    got = c.read(8)
    assert [r.offset for r in got] == list(range(2, 10)), got
    assert c.committed([0]) == {0: 2}


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def test_reset_to_datetime_inside_a_batch(gbroker, tributary_bin, consumers):
    bs = gbroker.bootstrap
    topic, group = topic_name("reset-batch"), topic_name("g-reset-batch")
    create_topic(tributary_bin, gbroker, topic, 1)
    base = (int(time.time()) - 3600) * 1000
    produce(bs, topic, 10, 1, "t", timestamps=[base + i * 1000 for i in range(10)])  # one batch
    c = consumers("kafka-python", bs, group, topic, assign=[0])
    c.commit({0: 10})
    consumers.close(c)
    out = cli_ok(tributary_bin, "groups", "reset-offsets", "--group", group, "--topic", topic,
                 "--to-datetime", iso(base + 4500), "--bootstrap-server", bs)
    assert re.search(rf"{group}\s+{topic}\s+0\s+10\s+5\b", out), out


def test_reset_shift_by_takes_a_negative_value_as_its_own_argument(gbroker, tributary_bin, consumers):
    bs = gbroker.bootstrap
    topic, group = topic_name("shift"), topic_name("g-shift")
    create_topic(tributary_bin, gbroker, topic, 1)
    produce(bs, topic, 5, 1, "s")
    c = consumers("kafka-python", bs, group, topic, assign=[0])
    c.commit({0: 4})
    consumers.close(c)
    out = cli_ok(tributary_bin, "groups", "reset-offsets", "--group", group, "--topic", topic,
                 "--shift-by", "-3", "--bootstrap-server", bs)
    assert "Committed new offsets" in out
    assert describe(tributary_bin, gbroker, group).committed(topic) == {0: 1}


def test_reset_to_datetime_after_the_last_record_goes_to_the_log_end(gbroker, tributary_bin, consumers):
    """kafka-consumer-groups.sh resets to the log end offset when no record is at or
    after the given time (ListOffsets answers -1)."""
    bs = gbroker.bootstrap
    topic, group = topic_name("reset-future"), topic_name("g-reset-future")
    create_topic(tributary_bin, gbroker, topic, 1)
    produce(bs, topic, 5, 1, "t")
    c = consumers("kafka-python", bs, group, topic, assign=[0])
    c.commit({0: 2})
    consumers.close(c)
    future = datetime.fromtimestamp(time.time() + 3600, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    r = cli(tributary_bin, "groups", "reset-offsets", "--group", group, "--topic", topic,
            "--to-datetime", future, "--dry-run", "--bootstrap-server", bs)
    assert r.returncode == 0, r.stderr
    assert re.search(rf"{group}\s+{topic}\s+0\s+2\s+5\b", r.stdout), r.stdout


# =============================================================================
# 5. broker restart during a stable group
# =============================================================================

@pytest.mark.parametrize("client", CLIENT_NAMES)
def test_broker_restart_under_a_stable_group(gbroker, tributary_bin, spawn, client):
    bs = gbroker.bootstrap
    topic, group = topic_name("restart", client), topic_name("g-restart", client)
    create_topic(tributary_bin, gbroker, topic, 6)
    produced = produce(bs, topic, 300, 6, "before")
    members = [spawn(n, client, bs, group, topic, commit="batch", batch=10, delay_ms=10)
               for n in ("x", "y")]
    wait_split(members, 6, 3, 40, tributary_bin, gbroker, group)
    wait_until(lambda: sum(len(m.records()) for m in members) >= 80, 30,
               "members to be part-way through the topic",
               lambda: "\n".join(m.diag() for m in members))

    committed_before = describe(tributary_bin, gbroker, group).committed(topic)
    status = gbroker.stop()
    assert status == 0, f"broker exited {status} on SIGTERM"
    t_stopped = time.time()
    time.sleep(1.0)
    gbroker.start()
    assert all(m.alive for m in members), "\n".join(m.diag() for m in members)
    # offsets committed before the stop survived it
    after = describe(tributary_bin, gbroker, group).committed(topic)
    assert all((after.get(p) or 0) >= (committed_before.get(p) or 0) for p in range(6)), \
        (committed_before, after)

    produced.update(produce(bs, topic, 300, 6, "after"))
    t_rejoined = wait_split(members, 6, 3, 40, tributary_bin, gbroker, group)
    perf(f"{client}: broker restart -> 2 members reassigned (from SIGTERM)", t_rejoined - t_stopped, "s")

    def drained():
        view = describe(tributary_bin, gbroker, group)
        return len(view.rows) == 6 and all(r["lag"] == 0 for r in view.rows.values())
    wait_until(drained, 45, "every record to be processed and committed",
               lambda: describe(tributary_bin, gbroker, group).text
               + "\n".join(m.diag() for m in members), interval=0.5)
    assert all(m.alive for m in members)
    for m in members:
        assert m.terminate() == 0, m.log_tail()

    acc = account(produced, members)
    print(f"{client} accounting:\n{acc.summary()}")
    assert not acc.missing and not acc.unexpected, acc.summary()
    assert not acc.violations, "committed records were processed again:\n" + acc.summary()


# =============================================================================
# 6. list, describe (lag), delete
# =============================================================================

def test_groups_list_describe_lag_and_delete(gbroker, tributary_bin, consumers):
    bs = gbroker.bootstrap
    topic, group = topic_name("admin"), topic_name("g-admin")
    create_topic(tributary_bin, gbroker, topic, 2)
    produce(bs, topic, 10, 2, "first")
    c = consumers("confluent-kafka", bs, group, topic)
    assert len(c.read(10)) == 10
    c.commit()

    assert group in list_groups(tributary_bin, gbroker)
    assert f"{group}\tStable" in list_groups(tributary_bin, gbroker, state=True)
    view = describe(tributary_bin, gbroker, group)
    assert (view.state, view.member_count) == ("Stable", 1), view.text
    assert {p: (r["current"], r["end"], r["lag"]) for (_, p), r in view.rows.items()} == \
        {0: (5, 5, 0), 1: (5, 5, 0)}, view.text
    (owner, parts), = view.owners(topic).items()
    assert parts == {0, 1} and all(r["client"] == f"ck-{group}" for r in view.rows.values()), view.text

    # more records, not consumed yet: the lag shows them
    produce(bs, topic, 7, 2, "second")  # 4 to partition 0, 3 to partition 1
    view = describe(tributary_bin, gbroker, group)
    assert {p: (r["current"], r["end"], r["lag"]) for (_, p), r in view.rows.items()} == \
        {0: (5, 9, 4), 1: (5, 8, 3)}, view.text

    # refused while a member is active
    r = cli(tributary_bin, "groups", "delete", "--group", group, "--bootstrap-server", bs)
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert r.returncode != 0 and len(lines) == 1, (r.stdout, r.stderr)
    assert "NON_EMPTY_GROUP" in lines[0] or "member" in lines[0].lower(), r.stderr
    assert describe(tributary_bin, gbroker, group).committed(topic) == {0: 5, 1: 5}

    # after the consumer has read the rest, the lag is 0 again
    assert len(c.read(7)) == 7
    c.commit()
    view = describe(tributary_bin, gbroker, group)
    assert all(r["lag"] == 0 for r in view.rows.values()) and view.committed(topic) == {0: 9, 1: 8}
    consumers.close(c)
    assert f"{group}\tEmpty" in list_groups(tributary_bin, gbroker, state=True)

    out = cli_ok(tributary_bin, "groups", "delete", "--group", group, "--bootstrap-server", bs)
    assert f"Deleted group {group}." in out
    assert group not in list_groups(tributary_bin, gbroker)
    view = describe(tributary_bin, gbroker, group)
    assert view.rows == {} and view.member_count == 0, view.text
    r = cli(tributary_bin, "groups", "delete", "--group", group, "--bootstrap-server", bs)
    assert r.returncode != 0 and "GROUP_ID_NOT_FOUND" in r.stderr, r.stderr
    # a new member of the deleted group starts from the beginning again
    c = consumers("kafka-python", bs, group, topic)
    assert len(c.read(17)) == 17


# =============================================================================
# 7. assign() with a group id: commits without joining
# =============================================================================

@pytest.mark.parametrize("client", CLIENT_NAMES)
def test_assign_with_group_id_commits_without_joining(gbroker, tributary_bin, consumers, client):
    bs = gbroker.bootstrap
    topic, group = topic_name("assign", client), topic_name("g-assign", client)
    create_topic(tributary_bin, gbroker, topic, 2)
    produce(bs, topic, 20, 2, "a")
    c = consumers(client, bs, group, topic, assign=[0, 1])
    got = c.read(20)
    assert sorted((r.partition, r.offset) for r in got) == [(p, o) for p in (0, 1) for o in range(10)]
    c.commit({0: 6, 1: 3})          # OffsetCommit with generation -1 and no member id
    assert c.committed([0, 1]) == {0: 6, 1: 3}
    view = describe(tributary_bin, gbroker, group)
    assert (view.member_count, view.committed(topic)) == (0, {0: 6, 1: 3}), view.text
    assert view.state == "Empty" and view.owners(topic) == {}, view.text
    c.commit({0: 10})
    consumers.close(c)

    # another assign()ing consumer of the group starts from the committed offsets
    c = consumers(client, bs, group, topic, assign=[0, 1])
    assert c.committed([0, 1]) == {0: 10, 1: 3}
    got = c.read(7)
    assert sorted((r.partition, r.offset) for r in got) == [(1, o) for o in range(3, 10)], got
    consumers.close(c)
    assert describe(tributary_bin, gbroker, group).committed(topic) == {0: 10, 1: 3}


def test_simple_commit_is_refused_while_the_group_has_members(gbroker, tributary_bin, consumers):
    """Kafka refuses a generation -1 commit to a group with members
    (UNKNOWN_MEMBER_ID): it could overwrite the members' progress."""
    from confluent_kafka import KafkaException
    bs = gbroker.bootstrap
    topic, group = topic_name("simple-vs-members"), topic_name("g-svm")
    create_topic(tributary_bin, gbroker, topic, 1)
    produce(bs, topic, 5, 1, "x")
    member = consumers("kafka-python", bs, group, topic)
    assert len(member.read(5)) == 5
    member.commit()
    outsider = consumers("confluent-kafka", bs, group, topic, assign=[0])
    with pytest.raises(KafkaException, match="UNKNOWN_MEMBER_ID"):
        outsider.commit({0: 1})
    assert describe(tributary_bin, gbroker, group).committed(topic) == {0: 5}


# =============================================================================
# performance: commits/s from one client
# =============================================================================

@pytest.mark.parametrize("client", CLIENT_NAMES)
def test_commit_throughput(gbroker, tributary_bin, consumers, client):
    bs = gbroker.bootstrap
    topic, group = topic_name("commits", client), topic_name("g-commits", client)
    create_topic(tributary_bin, gbroker, topic, 1)
    produce(bs, topic, 10, 1, "c")
    c = consumers(client, bs, group, topic)
    c.wait_assigned()
    n, t0 = 0, time.monotonic()
    while time.monotonic() - t0 < 2.0:
        c.commit({0: n % 10 + 1})
        n += 1
    rate = n / (time.monotonic() - t0)
    perf(f"{client}: synchronous commits from a group member", rate, "commits/s")
    assert c.committed([0]) == {0: (n - 1) % 10 + 1}
    assert rate > 20, f"only {rate:.0f} commits/s"


# =============================================================================
# the worker: a group member in its own process
# =============================================================================

class _Events:
    def __init__(self, path: str):
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def emit(self, ev: str, **kw) -> None:
        # one write per line, so a SIGKILL tears at most the line being written
        os.write(self.fd, (json.dumps({"t": time.time(), "ev": ev, **kw}) + "\n").encode())


def _worker_main(argv: list[str]) -> int:
    cfg = json.loads(argv[0])
    events = _Events(cfg["out"])
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    parent = os.getppid()
    deadline = time.monotonic() + cfg["max_life_s"]

    def should_stop() -> bool:
        # also stop if the test process went away or the worker outlived any test
        return stop.is_set() or os.getppid() != parent or time.monotonic() > deadline

    if cfg["debug"]:
        import logging
        logging.basicConfig(level=logging.DEBUG, stream=sys.stderr,
                            format="%(asctime)s %(name)s %(levelname)s %(message)s")
    events.emit("start", pid=os.getpid(), client=cfg["client"])
    run = {"kafka-python": _work_kafka_python, "confluent-kafka": _work_confluent,
           "aiokafka": _work_aiokafka}[cfg["client"]]
    run(cfg, events, should_stop)
    events.emit("closed")
    return 0


def _process(cfg, events, partition, offset, value):
    if cfg["delay_ms"]:
        time.sleep(cfg["delay_ms"] / 1000)
    events.emit("rec", p=partition, o=offset, v=value)


def _work_kafka_python(cfg, events, should_stop):
    from kafka import ConsumerRebalanceListener, KafkaConsumer, TopicPartition
    from kafka.errors import KafkaError
    from kafka.structs import OffsetAndMetadata

    class Listener(ConsumerRebalanceListener):
        def on_partitions_revoked(self, revoked):
            events.emit("revoked", parts=sorted(tp.partition for tp in revoked))

        def on_partitions_assigned(self, assigned):
            events.emit("assigned", parts=sorted(tp.partition for tp in assigned))
            reassigned.update(assigned)

    # kafka-python 3 keeps the fetch position of a partition that comes back to the same
    # member (SubscriptionState.assign_from_subscribed), even after the eager protocol
    # revoked it; the Java client and librdkafka resume from the committed offset. After a
    # broker restart a partition can go x -> y -> x while y commits progress, and x would
    # then re-read what y committed. So, as a careful kafka-python user does, records of
    # newly assigned partitions from the poll that assigned them are dropped unprocessed
    # and the partitions are moved to their committed offsets (committed() cannot be
    # called inside the rebalance callback): the tests judge the broker's offsets, not
    # that client's stale position.
    reassigned = set()

    def resume_from_committed(batch=None):
        batch = batch or {}
        for tp in list(reassigned):
            committed = c.committed(tp)
            if committed is not None:
                c.seek(tp, committed)
            elif batch.get(tp):
                c.seek(tp, batch[tp][0].offset)  # nothing committed: re-read what is dropped
        dropped = set(reassigned)
        reassigned.clear()
        return {tp: recs for tp, recs in batch.items() if tp not in dropped}

    c = KafkaConsumer(bootstrap_servers=[cfg["bootstrap"]], group_id=cfg["group"],
                      client_id=cfg["name"], enable_auto_commit=False,
                      auto_offset_reset="earliest", session_timeout_ms=cfg["session_timeout_ms"],
                      heartbeat_interval_ms=cfg["heartbeat_ms"], fetch_max_wait_ms=100,
                      max_poll_records=cfg["batch"], request_timeout_ms=15000,
                      consumer_timeout_ms=300)
    # kafka-python 3.0.12 can lose a join's assignment; see the module docstring
    assert c.partitions_for_topic(cfg["topic"]), "no topic metadata"
    c.subscribe([cfg["topic"]], listener=Listener())
    events.emit("subscribed")

    def commit(offsets: dict) -> bool:
        try:
            c.commit({tp: OffsetAndMetadata(o, "", -1) for tp, o in offsets.items()})
        except KafkaError as exc:
            events.emit("commit_failed", offsets=[[tp.partition, o] for tp, o in offsets.items()],
                        err=repr(exc))
            return False
        events.emit("commit", offsets=[[tp.partition, o] for tp, o in offsets.items()])
        return True

    while not should_stop():
        if cfg["style"] == "iter":
            # the tutorial's loop: `for message in consumer`, here with a commit per record
            for m in c:
                if reassigned:
                    tp = TopicPartition(m.topic, m.partition)
                    if not resume_from_committed({tp: [m]}):
                        break  # m's partition was just assigned: it resumes from its commit
                _process(cfg, events, m.partition, m.offset, m.value.decode())
                if not commit({TopicPartition(m.topic, m.partition): m.offset + 1}) or should_stop():
                    break
            continue
        batch = c.poll(timeout_ms=200)
        if reassigned:
            batch = resume_from_committed(batch)
        pending = {}
        failed = False
        for tp, recs in batch.items():
            for m in recs:
                _process(cfg, events, m.partition, m.offset, m.value.decode())
                if cfg["commit"] == "record":
                    if not commit({tp: m.offset + 1}):
                        failed = True  # a rebalance: poll again before going on
                        break
                else:
                    pending[tp] = m.offset + 1
            if failed:
                break
        if pending:
            commit(pending)
    events.emit("closing")
    c.close(autocommit=False)


def _work_confluent(cfg, events, should_stop):
    from confluent_kafka import Consumer, KafkaException, TopicPartition
    conf = {"bootstrap.servers": cfg["bootstrap"], "group.id": cfg["group"],
            "client.id": cfg["name"], "enable.auto.commit": False,
            "auto.offset.reset": "earliest", "session.timeout.ms": cfg["session_timeout_ms"],
            "heartbeat.interval.ms": cfg["heartbeat_ms"], "fetch.wait.max.ms": 100,
            "enable.partition.eof": False, "socket.timeout.ms": 15000}
    if cfg["debug"]:
        conf["debug"] = "cgrp,protocol"
    c = Consumer(conf)
    c.subscribe([cfg["topic"]],
                on_assign=lambda _, ps: events.emit("assigned", parts=sorted(p.partition for p in ps)),
                on_revoke=lambda _, ps: events.emit("revoked", parts=sorted(p.partition for p in ps)))
    events.emit("subscribed")

    def commit(offsets: dict) -> bool:
        pairs = [[p, o] for p, o in offsets.items()]
        try:
            res = c.commit(offsets=[TopicPartition(cfg["topic"], p, o) for p, o in offsets.items()],
                           asynchronous=False)
            bad = [tp for tp in res if tp.error is not None]
            if bad:
                raise KafkaException(bad[0].error)
        except KafkaException as exc:
            events.emit("commit_failed", offsets=pairs, err=str(exc))
            return False
        events.emit("commit", offsets=pairs)
        return True

    while not should_stop():
        pending = {}
        for m in c.consume(num_messages=cfg["batch"], timeout=0.2):
            if m.error():
                events.emit("error", err=str(m.error()))
                continue
            _process(cfg, events, m.partition(), m.offset(), m.value().decode())
            if cfg["commit"] == "record":
                if not commit({m.partition(): m.offset() + 1}):
                    break
            else:
                pending[m.partition()] = m.offset() + 1
        if pending:
            commit(pending)
    events.emit("closing")
    c.close()


def _work_aiokafka(cfg, events, should_stop):
    """aiokafka rebalances in a background task, concurrently with the processing
    loop: without care, a batch fetched before a revocation is processed (and even
    committed: the classic protocol checks only member id and generation) after the
    partition went to another member, which then reads it again. As aiokafka's docs
    advise, the (async) revocation callback waits for the batch in progress to be
    processed and committed, and a batch fetched across a revocation is not processed
    but read again (seek to its first offset) if the partition is still assigned."""
    from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener
    from aiokafka.errors import KafkaError

    processing = asyncio.Lock()
    epoch = [0]  # bumped at every revocation

    class Listener(ConsumerRebalanceListener):
        async def on_partitions_revoked(self, revoked):
            async with processing:
                epoch[0] += 1
                events.emit("revoked", parts=sorted(tp.partition for tp in revoked))

        async def on_partitions_assigned(self, assigned):
            events.emit("assigned", parts=sorted(tp.partition for tp in assigned))

    async def run():
        c = AIOKafkaConsumer(bootstrap_servers=cfg["bootstrap"], group_id=cfg["group"],
                             client_id=cfg["name"], enable_auto_commit=False,
                             auto_offset_reset="earliest",
                             session_timeout_ms=cfg["session_timeout_ms"],
                             heartbeat_interval_ms=cfg["heartbeat_ms"], fetch_max_wait_ms=100,
                             request_timeout_ms=15000)
        await c.start()
        c.subscribe([cfg["topic"]], listener=Listener())
        events.emit("subscribed")

        async def commit(offsets: dict) -> bool:
            pairs = [[tp.partition, o] for tp, o in offsets.items()]
            try:
                await c.commit(offsets)
            except KafkaError as exc:
                events.emit("commit_failed", offsets=pairs, err=repr(exc))
                return False
            events.emit("commit", offsets=pairs)
            return True

        try:
            while not should_stop():
                fetched_in = epoch[0]
                batch = await c.getmany(timeout_ms=200, max_records=cfg["batch"])
                async with processing:
                    if epoch[0] != fetched_in:
                        # maybe fetched under the old assignment: read it again from where
                        # it starts (the committed offset), if the partition is still ours
                        assigned = c.assignment()
                        for tp, recs in batch.items():
                            if recs and tp in assigned:
                                c.seek(tp, recs[0].offset)
                        if batch:
                            events.emit("batch_refetched", parts=sorted(tp.partition for tp in batch))
                        continue
                    pending = {}
                    failed = False
                    for tp, recs in batch.items():
                        if failed:
                            break
                        for m in recs:
                            if cfg["delay_ms"]:
                                await asyncio.sleep(cfg["delay_ms"] / 1000)
                            events.emit("rec", p=m.partition, o=m.offset, v=m.value.decode())
                            if cfg["commit"] == "record":
                                if not await commit({tp: m.offset + 1}):
                                    failed = True
                                    break
                            else:
                                pending[tp] = m.offset + 1
                    if pending:
                        await commit(pending)
        finally:
            events.emit("closing")
            await c.stop()

    asyncio.run(run())


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "worker":
        sys.exit(_worker_main(sys.argv[2:]))
    print(f"usage: {sys.argv[0]} worker JSON", file=sys.stderr)
    sys.exit(2)
