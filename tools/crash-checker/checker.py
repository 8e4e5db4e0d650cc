#!/usr/bin/env python3
"""Tributary crash checker: Jepsen-style history checking across broker crashes.

Starts the real `tributary` binary on a free loopback port with its own data
directory, runs idempotent acks=all producers and a consumer group against it,
kills the broker with SIGKILL at random moments (in `--mode corrupt` also damages
the tail of active segments while it is down), restarts it on the same port and
data directory, and at the end checks the recorded history:

  lost-write          an acknowledged record is missing from the final log, or sits
                      at another offset than the one acknowledged
  duplicate           one value at two (partition, offset) positions
  inconsistent-offset two different values reported at one offset (by acks, polls,
                      the final read or the segment files on disk)
  nonmonotonic-poll   a consumer polled an offset at or below one it polled before,
                      without a rebalance in between
  poll-skip           a consumer skipped offsets that exist in the log (without a
                      rebalance in between; after an assignment, it must start at the
                      committed offset)
  commit-backwards    a committed offset observed (fetched, or acknowledged to a
                      commit) is lower than one observed strictly before it

and a few consistency checks that need no history: unexpected-value (a value no
producer sent), log-gap (a hole in a partition's offsets), disk-mismatch (the
segment files, parsed independently after a clean stop, differ from what Fetch
returned, or keep bytes that are not valid batches), producer-fatal (the broker
broke the idempotent producer protocol hard enough for librdkafka to give up) and
ack-partition (a delivery report for another partition than the one asked for).

Exit status: 0 no anomaly, 1 anomalies found, 2 the run itself failed (the broker
did not start or restart, clients never became ready, the final read was
incomplete). See README.md beside this file.
"""
from __future__ import annotations

import argparse
import collections
import json
import logging
import os
import random
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from confluent_kafka import (OFFSET_BEGINNING, Consumer, KafkaError, KafkaException,
                             Producer, TopicPartition)
from confluent_kafka.admin import AdminClient, NewTopic

REPO = Path(__file__).resolve().parents[2]
DEFAULT_BIN = REPO / ".build" / "release" / "tributary"
T0 = time.monotonic()


def now() -> float:
    """Seconds since the checker started (monotonic; shared by every thread)."""
    return time.monotonic() - T0


def log(msg: str) -> None:
    print(f"[{now():7.1f}s] {msg}", flush=True)


class RunError(Exception):
    """The run could not be carried out (exit status 2), as opposed to an anomaly."""


# --------------------------------------------------------------------------------------
# CRC32C (Castagnoli), for reading segment files. The `crc32c` package is in the interop
# requirements; the table fallback keeps the tool usable without it.

try:
    from crc32c import crc32c as _crc32c  # type: ignore
except ImportError:  # pragma: no cover - exercised only without the package
    _TABLE = []
    for _i in range(256):
        _c = _i
        for _ in range(8):
            _c = (_c >> 1) ^ 0x82F63B78 if _c & 1 else _c >> 1
        _TABLE.append(_c)

    def _crc32c(data: bytes) -> int:
        c = 0xFFFFFFFF
        for b in data:
            c = _TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
        return c ^ 0xFFFFFFFF


# --------------------------------------------------------------------------------------
# Segment files: Kafka record batches (magic 2), parsed without the broker.

BATCH_HEADER = 61  # baseOffset .. recordsCount
LOG_OVERHEAD = 12  # baseOffset + batchLength


@dataclass
class Batch:
    position: int
    size: int
    base_offset: int
    last_offset_delta: int
    attributes: int
    producer_id: int
    producer_epoch: int
    base_sequence: int
    record_count: int

    @property
    def last_offset(self) -> int:
        return self.base_offset + self.last_offset_delta

    @property
    def next_offset(self) -> int:
        return self.last_offset + 1


def scan_batches(data: bytes, expect_from: int | None = None):
    """Valid batches from the start of `data`, the end of the valid prefix, and why
    the scan stopped before the end (None when every byte is a valid batch). Checks
    framing, magic, CRC32C and increasing offsets, as the broker's recovery does."""
    batches: list[Batch] = []
    pos = 0
    expected = expect_from
    n = len(data)
    while pos < n:
        if pos + BATCH_HEADER > n:
            return batches, pos, f"{n - pos} trailing bytes (shorter than a batch header)"
        base, length, _leader_epoch, magic, crc, attrs, delta = struct.unpack_from(">qiibIhi", data, pos)
        size = LOG_OVERHEAD + length
        if length < BATCH_HEADER - LOG_OVERHEAD:
            return batches, pos, f"batch length {length} too small"
        if pos + size > n:
            return batches, pos, f"torn batch: claims {size} bytes, {n - pos} present"
        if magic != 2:
            return batches, pos, f"magic {magic}"
        if _crc32c(data[pos + 21:pos + size]) != crc:
            return batches, pos, "CRC mismatch"
        if expected is not None and base < expected:
            return batches, pos, f"offset {base} does not follow {expected - 1}"
        pid, pepoch, bseq, count = struct.unpack_from(">qhii", data, pos + 43)
        b = Batch(pos, size, base, delta, attrs, pid, pepoch, bseq, count)
        batches.append(b)
        expected = b.next_offset
        pos += size
    return batches, pos, None


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    shift = 0
    result = 0
    while True:
        b = data[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            break
        shift += 7
    return (result >> 1) ^ -(result & 1), pos


def batch_records(data: bytes, batch: Batch) -> list[tuple[int, bytes | None]]:
    """(offset, value) of every record in an uncompressed, non-control batch."""
    if batch.attributes & 0x20:
        return []
    if batch.attributes & 0x07:
        raise ValueError(f"compressed batch at {batch.position} (codec {batch.attributes & 7})")
    out = []
    pos = batch.position + BATCH_HEADER
    for _ in range(batch.record_count):
        length, pos = _varint(data, pos)
        end = pos + length
        pos += 1  # attributes
        _, pos = _varint(data, pos)  # timestamp delta
        offset_delta, pos = _varint(data, pos)
        klen, pos = _varint(data, pos)
        if klen > 0:
            pos += klen
        vlen, pos = _varint(data, pos)
        value = None
        if vlen >= 0:
            value = data[pos:pos + vlen]
        out.append((batch.base_offset + offset_delta, value))
        pos = end
    return out


def segment_files(partition_dir: Path) -> list[Path]:
    files = []
    for f in partition_dir.glob("*.log"):
        if len(f.name) == 24 and f.name[:20].isdigit():
            files.append(f)
    return sorted(files, key=lambda f: int(f.name[:20]))


# --------------------------------------------------------------------------------------
# The broker process


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return ""


class BrokerProcess:
    """The tributary binary on a fixed loopback port and data dir; restartable.
    Only ever signals the PID it started."""

    def __init__(self, binary: Path, data_dir: Path, log_path: Path, port: int, config: Path):
        self.binary, self.data_dir, self.log_path = binary, data_dir, log_path
        self.port, self.config = port, config
        self.proc: subprocess.Popen | None = None
        self.starts = 0
        self.start_times: list[float] = []

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def spawn(self) -> None:
        """Starts the process without waiting for it."""
        assert self.proc is None or self.proc.poll() is not None
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.starts += 1
        cmd = [str(self.binary), "serve", "--listen", self.bootstrap, "--data-dir", str(self.data_dir),
               "--config", str(self.config), "--log-level", "info"]
        with open(self.log_path, "ab") as f:
            f.write(f"\n===== start #{self.starts} at {now():.1f}s: {' '.join(cmd)}\n".encode())
            f.flush()
            self.spawned_at = time.monotonic()
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.STDOUT,
                                         start_new_session=True)

    def start(self, timeout: float = 120.0) -> float:
        """Starts the broker; returns seconds until it accepted a TCP connection."""
        self.spawn()
        t = self.spawned_at
        deadline = t + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                rc = self.proc.returncode
                self.proc = None
                raise RunError(f"broker exited with status {rc} during start #{self.starts}\n"
                               f"--- {self.log_path} ---\n{tail(self.log_path)}")
            if port_accepts(self.port):
                elapsed = time.monotonic() - t
                self.start_times.append(elapsed)
                return elapsed
            time.sleep(0.005)
        self.kill()
        raise RunError(f"broker did not accept connections within {timeout:.0f}s (start #{self.starts})\n"
                       f"--- {self.log_path} ---\n{tail(self.log_path)}")

    def kill(self) -> None:
        """SIGKILL, and reap."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            try:
                os.kill(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        proc.wait(timeout=30)

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM (clean shutdown: flush and checkpoint), SIGKILL after `timeout`."""
        proc, self.proc = self.proc, None
        if proc is None:
            return None
        if proc.poll() is None:
            try:
                os.kill(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(timeout=30)
        return proc.returncode

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None


# --------------------------------------------------------------------------------------
# Clients. Each records into its own lists (delivery reports and rebalance callbacks run
# on the thread that calls poll/consume), merged after the threads have stopped.

CLIENT_LOG = logging.getLogger("librdkafka")


def err_text(err) -> str:
    try:
        return f"{err.name()}: {err.str()}"
    except AttributeError:
        return str(err)


def base_conf(bootstrap: str, client_id: str) -> dict:
    return {
        "bootstrap.servers": bootstrap,
        "client.id": client_id,
        "broker.address.family": "v4",
        "reconnect.backoff.ms": 50,
        "reconnect.backoff.max.ms": 500,
        "socket.connection.setup.timeout.ms": 5000,
        "topic.metadata.refresh.interval.ms": 5000,
        "log.connection.close": False,
        "logger": CLIENT_LOG,
    }


class ProducerWorker(threading.Thread):
    """An idempotent acks=all producer writing unique values `p<i>-<n>` to random
    partitions at a fixed rate, recording sends, acknowledgements and failures."""

    def __init__(self, index: int, ctx: "Run"):
        super().__init__(name=f"producer-{index}", daemon=True)
        self.index, self.ctx = index, ctx
        self.rng = random.Random(ctx.args.seed * 1000 + index)
        self.sent: dict[str, tuple[int, float]] = {}           # value -> (partition, t)
        self.acked: list[tuple[str, int, int, float]] = []     # value, partition, offset, t
        self.failed: dict[str, tuple[str, float]] = {}         # value -> (error, t)
        self.errors: list[tuple[float, str, bool]] = []        # t, error, fatal
        self.fatal: list[tuple[float, str]] = []
        self.instances = 0
        self.unresolved: list[str] = []
        self.crashed: str | None = None
        self._fatal_flag = False

    def _on_error(self, err: KafkaError) -> None:
        fatal = err.fatal()
        self.errors.append((now(), err_text(err), fatal))
        if fatal:
            self.fatal.append((now(), err_text(err)))
            self._fatal_flag = True

    def _on_delivery(self, err, msg) -> None:
        value = msg.value().decode()
        if err is None:
            self.acked.append((value, msg.partition(), msg.offset(), now()))
        else:
            self.failed[value] = (err_text(err), now())

    def _fatal(self, exc: Exception) -> None:
        """A producer in a fatal state raises from produce/poll/flush (the error callback
        has recorded the error); anything else is the checker's problem. While a fatal
        error is pending, confluent-kafka can also surface it as a SystemError from the
        next Python callback it runs (a delivery report): unwrapped here."""
        if isinstance(exc, SystemError):
            cause = exc.__cause__ or exc.__context__
            if not isinstance(cause, KafkaException):
                raise exc
            exc = cause
        err = exc.args[0]
        if not (err.fatal() or err.code() == KafkaError._FATAL):
            raise exc
        text = err_text(err)
        if not any(t == text for _, t in self.fatal[self.fatal_mark:]):
            self.fatal.append((now(), text))
        self._fatal_flag = True

    def _quietly(self, call, timeout):
        for _ in range(100):
            try:
                return call(timeout)
            except (KafkaException, SystemError) as exc:
                self._fatal(exc)
        return 0

    def _make(self) -> Producer:
        self.fatal_mark = len(self.fatal)  # fatal errors are recorded once per instance
        self.instances += 1
        a = self.ctx.args
        conf = base_conf(self.ctx.broker.bootstrap, f"checker-p{self.index}-{self.instances}")
        conf.update({
            "enable.idempotence": True,
            "acks": "all",
            "max.in.flight.requests.per.connection": 5,
            "message.timeout.ms": int(a.delivery_timeout * 1000),
            "request.timeout.ms": 15000,
            "linger.ms": 5,
            "compression.type": "none",
            "retry.backoff.ms": 50,
            "retry.backoff.max.ms": 500,
            "queue.buffering.max.messages": 200000,
            "error_cb": self._on_error,
        })
        return Producer(conf)

    def run(self) -> None:
        try:
            self._run()
        except Exception as exc:  # recorded; the run reports it
            import traceback
            self.crashed = f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"

    def _run(self) -> None:
        a, ctx = self.ctx.args, self.ctx
        producer = self._make()
        tick = 0.02
        per_tick = max(a.rate / a.producers * tick, 0.0)
        carry = 0.0
        n = 0
        next_tick = time.monotonic()
        retired: list[Producer] = []
        while not ctx.stop_producing.is_set():
            carry += per_tick
            while carry >= 1.0:
                value = f"p{self.index}-{n}"
                partition = self.rng.randrange(a.partitions)
                try:
                    producer.produce(a.topic, value=value.encode(), partition=partition,
                                     on_delivery=self._on_delivery)
                except BufferError:
                    producer.poll(0.05)
                    break
                except (KafkaException, SystemError) as exc:
                    self._fatal(exc)
                    break
                self.sent[value] = (partition, now())
                n += 1
                carry -= 1.0
            try:
                producer.poll(0)
            except (KafkaException, SystemError) as exc:
                self._fatal(exc)
            if self._fatal_flag:
                # librdkafka gave up on this producer id: its outstanding messages fail
                # with _FATAL (maybe written). Carry on with a fresh producer.
                self._fatal_flag = False
                self._quietly(producer.flush, 5)
                retired.append(producer)
                producer = self._make()
            next_tick += tick
            delay = next_tick - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            else:
                next_tick = time.monotonic()
        remaining = self._quietly(producer.flush, a.delivery_timeout + 10)
        for p in retired:
            self._quietly(p.flush, 1)
        reported = set(self.failed)
        reported.update(v for v, *_ in self.acked)
        self.unresolved = [v for v in self.sent if v not in reported]
        if remaining and not self.unresolved:
            self.unresolved = ["?"] * remaining


class ConsumerWorker(threading.Thread):
    """A group member: polls, records each record in order, commits what it processed
    (synchronously, only for partitions it owns), records assignments and commits."""

    def __init__(self, index: int, ctx: "Run"):
        super().__init__(name=f"consumer-{index}", daemon=True)
        self.index, self.ctx = index, ctx
        self.cid = f"c{index}"
        # ("assign", t0, t1, {p: committed or None}) | ("revoke"|"lost", t, [p]) |
        # ("poll", t, p, offset, value, batch_no)
        self.events: list[tuple] = []
        self.commits: list[tuple[float, float, dict[int, int], dict[int, str | None]]] = []
        self.errors: list[tuple[float, str]] = []
        self.assigned: set[int] = set()
        self.polled_max: dict[int, int] = {}
        self.crashed: str | None = None
        self.consumer: Consumer | None = None

    def _committed(self, consumer: Consumer, parts: list[int], timeout: float) -> dict[int, int | None]:
        out: dict[int, int | None] = {p: None for p in parts}
        try:
            res = consumer.committed([TopicPartition(self.ctx.args.topic, p) for p in parts], timeout=timeout)
        except KafkaException:
            return out
        for tp in res:
            if tp.error is None:
                out[tp.partition] = tp.offset if tp.offset >= 0 else -1
        return out

    def _on_assign(self, consumer, partitions) -> None:
        parts = sorted(tp.partition for tp in partitions)
        t0 = now()
        committed = self._committed(consumer, parts, 10)
        self.events.append(("assign", t0, now(), committed))
        self.assigned.update(parts)

    def _on_revoke(self, consumer, partitions) -> None:
        parts = sorted(tp.partition for tp in partitions)
        self.events.append(("revoke", now(), parts))
        self.assigned.difference_update(parts)

    def _on_lost(self, consumer, partitions) -> None:
        parts = sorted(tp.partition for tp in partitions)
        self.events.append(("lost", now(), parts))
        self.assigned.difference_update(parts)

    def _on_error(self, err: KafkaError) -> None:
        self.errors.append((now(), err_text(err)))

    def run(self) -> None:
        try:
            self._run()
        except Exception as exc:
            self.crashed = f"{type(exc).__name__}: {exc}"

    def _run(self) -> None:
        a, ctx = self.ctx.args, self.ctx
        conf = base_conf(ctx.broker.bootstrap, f"checker-{self.cid}")
        conf.update({
            "group.id": ctx.group,
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest",
            "partition.assignment.strategy": "range",
            "session.timeout.ms": 10000,
            "heartbeat.interval.ms": 1000,
            "max.poll.interval.ms": 300000,
            "fetch.wait.max.ms": 100,
            "error_cb": self._on_error,
        })
        consumer = Consumer(conf)
        self.consumer = consumer
        consumer.subscribe([a.topic], on_assign=self._on_assign, on_revoke=self._on_revoke,
                           on_lost=self._on_lost)
        batch_no = 0
        try:
            while not ctx.stop_consuming.is_set():
                msgs = consumer.consume(num_messages=500, timeout=0.2)
                if not msgs:
                    continue
                batch_no += 1
                highest: dict[int, int] = {}
                for m in msgs:
                    if m.error():
                        self.errors.append((now(), err_text(m.error())))
                        continue
                    p, o = m.partition(), m.offset()
                    v = m.value().decode() if m.value() is not None else None
                    self.events.append(("poll", now(), p, o, v, batch_no))
                    if o > highest.get(p, -1):
                        highest[p] = o
                    if o > self.polled_max.get(p, -1):
                        self.polled_max[p] = o
                # "Process", then commit what was processed, for partitions still owned.
                offsets = {p: o + 1 for p, o in highest.items() if p in self.assigned}
                if not offsets:
                    continue
                t0 = now()
                errs: dict[int, str | None] = {p: None for p in offsets}
                try:
                    res = consumer.commit(offsets=[TopicPartition(a.topic, p, o) for p, o in offsets.items()],
                                          asynchronous=False)
                    for tp in res or []:
                        if tp.error is not None:
                            errs[tp.partition] = err_text(tp.error)
                except KafkaException as exc:
                    errs = {p: str(exc) for p in offsets}
                self.commits.append((t0, now(), offsets, errs))
        finally:
            try:
                consumer.close()
            except Exception as exc:
                self.errors.append((now(), f"close: {exc}"))


class CommitMonitor(threading.Thread):
    """Fetches the group's committed offsets every `interval` seconds (a consumer with
    the group's id that never subscribes, so it does not join)."""

    def __init__(self, ctx: "Run", interval: float = 0.25):
        super().__init__(name="commit-monitor", daemon=True)
        self.ctx, self.interval = ctx, interval
        self.observations: list[tuple[float, float, dict[int, int]]] = []
        self.failures = 0
        self.crashed: str | None = None
        self.stop_event = threading.Event()

    def run(self) -> None:
        try:
            a = self.ctx.args
            conf = base_conf(self.ctx.broker.bootstrap, "checker-monitor")
            conf.update({"group.id": self.ctx.group, "enable.auto.commit": False})
            c = Consumer(conf)
            tps = [TopicPartition(a.topic, p) for p in range(a.partitions)]
            try:
                while not self.stop_event.is_set():
                    self.fetch_once(c, tps)
                    self.stop_event.wait(self.interval)
                self.fetch_once(c, tps)
            finally:
                c.close()
        except Exception as exc:
            self.crashed = f"{type(exc).__name__}: {exc}"

    def fetch_once(self, c: Consumer, tps) -> None:
        t0 = now()
        try:
            res = c.committed(tps, timeout=5)
        except KafkaException:
            self.failures += 1
            return
        t1 = now()
        values = {tp.partition: tp.offset for tp in res if tp.error is None and tp.offset >= 0}
        self.observations.append((t0, t1, values))


# --------------------------------------------------------------------------------------
# Corrupt mode: damage the tail of active segments while the broker is down, without
# touching any byte of a valid batch (so no record, acknowledged or not, is destroyed
# and every check keeps its full strength): whatever is appended must be recognised as
# a torn or corrupt tail and truncated by recovery.

DAMAGE_KINDS = ("garbage", "zeros", "torn", "bad-crc", "bad-crc+valid", "stale-offset", "bad-magic")


def damage_partition(partition_dir: Path, rng: random.Random, kind: str | None = None) -> dict:
    files = segment_files(partition_dir)
    if not files:
        return {"kind": "none", "reason": "no segment"}
    active = files[-1]
    data = active.read_bytes()
    batches, valid_end, reason = scan_batches(data)
    template_data, template = data, (batches[-1] if batches else None)
    if template is None and len(files) > 1:
        prev = files[-2].read_bytes()
        pb, _, _ = scan_batches(prev)
        if pb:
            template_data, template = prev, pb[-1]
    kind = kind or rng.choice(DAMAGE_KINDS)
    if template is None and kind not in ("garbage", "zeros"):
        kind = "garbage"
    next_offset = template.next_offset if template else int(active.name[:20])

    def copy_with_base(base: int) -> bytearray:
        raw = bytearray(template_data[template.position:template.position + template.size])
        struct.pack_into(">q", raw, 0, base)  # the CRC does not cover the base offset
        return raw

    if kind == "garbage":
        junk = bytes(rng.randrange(256) for _ in range(rng.randint(1, 4096)))
    elif kind == "zeros":
        junk = bytes(rng.randint(1, 4096))
    elif kind == "torn":
        raw = copy_with_base(next_offset)
        junk = bytes(raw[:rng.randint(1, len(raw) - 1)])
    elif kind in ("bad-crc", "bad-crc+valid"):
        raw = copy_with_base(next_offset)
        i = rng.randrange(BATCH_HEADER, len(raw)) if len(raw) > BATCH_HEADER else rng.randrange(21, len(raw))
        raw[i] ^= 1 << rng.randrange(8)
        junk = bytes(raw)
        if kind == "bad-crc+valid":
            # A well-formed batch after the corrupt one: recovery must stop at the first
            # bad batch, not resynchronise (keeping it would duplicate its values).
            junk += bytes(copy_with_base(next_offset + template.last_offset_delta + 1))
    elif kind == "stale-offset":
        # A well-formed copy of the last batch at its own (already used) offsets.
        junk = bytes(copy_with_base(template.base_offset))
    elif kind == "bad-magic":
        raw = copy_with_base(next_offset)
        raw[16] = 1
        junk = bytes(raw)
    else:
        raise ValueError(kind)
    with open(active, "ab") as f:
        f.write(junk)
    return {"kind": kind, "segment": active.name, "valid_end": valid_end, "file_size": len(data),
            "appended": len(junk), "pre_existing_invalid_tail": reason}


def sabotage_partition(partition_dir: Path, highest_acked: int) -> dict | None:
    """For --sabotage only (checking the checker): cuts the active segment at the batch
    holding the highest acknowledged offset, destroying acknowledged records. Returns
    None when that batch is not in the active segment."""
    files = segment_files(partition_dir)
    if not files:
        return None
    active = files[-1]
    data = active.read_bytes()
    batches, _, _ = scan_batches(data)
    hit = next((b for b in batches if b.base_offset <= highest_acked <= b.last_offset), None)
    if hit is None:
        return None
    with open(active, "r+b") as f:
        f.truncate(hit.position)
    return {"kind": "SABOTAGE", "segment": active.name, "appended": 0, "cut_at": hit.position,
            "destroyed_offsets": f"{hit.base_offset}..{batches[-1].last_offset}"}


# --------------------------------------------------------------------------------------
# The run


@dataclass
class Anomalies:
    by_kind: dict[str, list[str]] = field(default_factory=lambda: collections.defaultdict(list))

    def add(self, kind: str, text: str) -> None:
        self.by_kind[kind].append(text)

    @property
    def total(self) -> int:
        return sum(len(v) for v in self.by_kind.values())


class Run:
    def __init__(self, args):
        self.args = args
        self.work = Path(args.work_dir) if args.work_dir else Path(tempfile.mkdtemp(prefix="tributary-crash-"))
        self.work.mkdir(parents=True, exist_ok=True)
        self.data_dir = self.work / "data"
        config = self.work / "server.properties"
        config.write_text(
            f"log.segment.bytes={args.segment_bytes}\n"
            "log.index.interval.bytes=4096\n"
            f"log.flush.offset.checkpoint.interval.ms={args.checkpoint_ms}\n"
            "group.initial.rebalance.delay.ms=0\n"
            "auto.create.topics.enable=false\n")
        self.broker = BrokerProcess(Path(args.binary), self.data_dir, self.work / "broker.log",
                                    free_port(), config)
        self.group = f"checker-{uuid.uuid4().hex[:8]}"
        self.stop_producing = threading.Event()
        self.stop_consuming = threading.Event()
        self.rng = random.Random(args.seed)
        self.producers: list[ProducerWorker] = []
        self.consumers: list[ConsumerWorker] = []
        self.monitor: CommitMonitor | None = None
        self.crashes: list[dict] = []
        self.final: dict[int, list[tuple[int, str | None]]] = {}
        self.disk: dict[int, list[tuple[int, str | None]]] = {}
        self.disk_problems: list[str] = []
        self.phase_times: dict[str, float] = {}
        handler = logging.FileHandler(self.work / "clients.log")
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
        CLIENT_LOG.handlers[:] = [handler]
        CLIENT_LOG.setLevel(logging.INFO)
        CLIENT_LOG.propagate = False

    # -- phases ---------------------------------------------------------------------
    def execute(self) -> Anomalies:
        a = self.args
        log(f"work dir {self.work}; broker {a.binary} on {self.broker.bootstrap}")
        self.broker.start()
        self.create_topic()
        self.monitor = CommitMonitor(self)
        self.monitor.start()
        self.consumers = [ConsumerWorker(i, self) for i in range(a.consumers)]
        for c in self.consumers:
            c.start()
        self.producers = [ProducerWorker(i, self) for i in range(a.producers)]
        for p in self.producers:
            p.start()
        self.wait_ready()
        t_chaos = now()
        self.chaos()
        self.phase_times["chaos"] = now() - t_chaos
        t_settle = now()
        self.settle()
        self.phase_times["settle"] = now() - t_settle
        self.final_read()
        self.broker.stop()
        self.read_disk()
        return self.check()

    def create_topic(self) -> None:
        a = self.args
        admin = AdminClient({"bootstrap.servers": self.broker.bootstrap, "broker.address.family": "v4",
                             "logger": CLIENT_LOG})
        fut = admin.create_topics([NewTopic(a.topic, num_partitions=a.partitions, replication_factor=1)],
                                  operation_timeout=30, request_timeout=30)[a.topic]
        try:
            fut.result(timeout=60)
        except Exception as exc:
            raise RunError(f"could not create topic {a.topic}: {exc}")

    def alive_check(self) -> None:
        for w in [*self.producers, *self.consumers, self.monitor]:
            if w is not None and w.crashed:
                raise RunError(f"{w.name} failed: {w.crashed}")

    def wait_ready(self, timeout: float = 60.0) -> None:
        a = self.args
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.alive_check()
            assigned = sum(len(c.assigned) for c in self.consumers)
            acked = all(p.acked for p in self.producers)
            polled = any(c.polled_max for c in self.consumers)
            if assigned == a.partitions and acked and polled:
                log(f"clients ready: {a.producers} producers acknowledged, {a.consumers} consumers own "
                    f"{a.partitions} partitions")
                return
            time.sleep(0.1)
        raise RunError("clients not ready within 60s (no acknowledgement, assignment or poll); "
                       f"see {self.work / 'clients.log'}")

    def acked_count(self) -> int:
        return sum(len(p.acked) for p in self.producers)

    def chaos(self) -> None:
        a = self.args
        start = time.monotonic()
        end = start + a.duration
        for k in range(a.crashes):
            # Spread the crashes over what is left of the duration, jittered; one in five
            # comes right after a restart, while clients reconnect and retry.
            left = max(end - time.monotonic(), 0.0)
            if self.rng.random() < 0.2:
                wait = self.rng.uniform(0.02, 1.0)
            else:
                wait = self.rng.uniform(0.3, 1.7) * left / (a.crashes - k + 1)
            target = time.monotonic() + min(wait, left)
            while time.monotonic() < target:
                self.alive_check()
                time.sleep(min(0.05, max(0.0, target - time.monotonic())))
            crash = {"n": k + 1, "t": round(now(), 3), "pid": self.broker.pid}
            self.broker.kill()
            down = self.rng.uniform(a.min_down, a.max_down)
            t_down = time.monotonic()
            if a.mode == "corrupt":
                damage = {}
                parts = [p for p in range(a.partitions) if self.rng.random() < 0.5] or \
                    [self.rng.randrange(a.partitions)]
                for p in parts:
                    damage[p] = damage_partition(self.data_dir / f"{a.topic}-{p}", self.rng)
                crash["damage"] = damage
            if a.sabotage:
                highest: dict[int, int] = {}
                for w in self.producers:
                    for _, p, o, _ in list(w.acked):
                        highest[p] = max(highest.get(p, -1), o)
                for p in sorted(highest, key=lambda _: self.rng.random()):
                    d = sabotage_partition(self.data_dir / f"{a.topic}-{p}", highest[p])
                    if d:
                        crash.setdefault("damage", {})[p] = d
                        break
            rest = down - (time.monotonic() - t_down)
            if rest > 0:
                time.sleep(rest)
            if self.rng.random() < 0.1:
                # Crash during startup, while recovery may be truncating tails and
                # rebuilding indexes and producer state.
                self.broker.spawn()
                time.sleep(self.rng.uniform(0.0, 0.05))
                self.broker.kill()
                crash["killed_during_startup"] = True
            crash["down_s"] = round(time.monotonic() - t_down, 3)
            crash["restart_s"] = round(self.broker.start(), 3)
            self.crashes.append(crash)
            dmg = ""
            if "damage" in crash:
                dmg = "; damaged " + ", ".join(f"p{p} {d['kind']}(+{d.get('appended', 0)}B)"
                                              for p, d in crash["damage"].items())
            if crash.get("killed_during_startup"):
                dmg += "; killed again during startup"
            log(f"crash {k + 1}/{a.crashes}: SIGKILL pid {crash['pid']}, down {crash['down_s']:.2f}s{dmg}; "
                f"accepting again after {crash['restart_s']:.3f}s; acked so far {self.acked_count()}")
        # Let the clients run against the last incarnation for the rest of the duration.
        while time.monotonic() < end:
            self.alive_check()
            time.sleep(0.05)

    def high_watermarks(self, timeout: float = 30.0) -> dict[int, int]:
        a = self.args
        conf = base_conf(self.broker.bootstrap, "checker-watermarks")
        conf.update({"group.id": f"checker-reader-{uuid.uuid4().hex[:8]}", "enable.auto.commit": False})
        c = Consumer(conf)
        try:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    return {p: c.get_watermark_offsets(TopicPartition(a.topic, p), timeout=10)[1]
                            for p in range(a.partitions)}
                except KafkaException:
                    if time.monotonic() > deadline:
                        raise RunError("could not read the high watermarks")
                    time.sleep(0.5)
        finally:
            c.close()

    def settle(self) -> None:
        a = self.args
        log("chaos over; stopping producers (flushing outstanding sends)")
        self.stop_producing.set()
        for p in self.producers:
            p.join(a.delivery_timeout + 60)
            if p.is_alive():
                raise RunError(f"{p.name} did not finish flushing")
        self.alive_check()
        hw = self.high_watermarks()
        log(f"producers done; high watermarks {hw}; letting consumers catch up")
        deadline = time.monotonic() + a.drain_timeout
        while time.monotonic() < deadline:
            self.alive_check()
            reached = all(max((c.polled_max.get(p, -1) for c in self.consumers), default=-1) >= hw[p] - 1
                          for p in hw)
            if reached:
                break
            time.sleep(0.2)
        else:
            log(f"warning: consumers did not reach the high watermarks within {a.drain_timeout:.0f}s")
        self.caught_up = all(max((c.polled_max.get(p, -1) for c in self.consumers), default=-1) >= hw[p] - 1
                             for p in hw)
        # One last commit round trip has happened for everything polled (commits are
        # synchronous); stop the consumers, then take a final committed-offset reading.
        self.stop_consuming.set()
        for c in self.consumers:
            c.join(60)
            if c.is_alive():
                raise RunError(f"{c.name} did not stop")
        self.monitor.stop_event.set()
        self.monitor.join(30)
        self.alive_check()

    def final_read(self) -> None:
        a = self.args
        hw = self.high_watermarks()
        conf = base_conf(self.broker.bootstrap, "checker-final-reader")
        conf.update({"group.id": f"checker-reader-{uuid.uuid4().hex[:8]}", "enable.auto.commit": False,
                     "enable.partition.eof": False, "fetch.wait.max.ms": 100})
        c = Consumer(conf)
        out: dict[int, list[tuple[int, str | None]]] = {p: [] for p in range(a.partitions)}
        try:
            c.assign([TopicPartition(a.topic, p, OFFSET_BEGINNING) for p in range(a.partitions)])
            pending = {p for p in range(a.partitions) if hw[p] > 0}
            last = {p: -1 for p in range(a.partitions)}
            deadline = time.monotonic() + a.final_read_timeout
            while pending and time.monotonic() < deadline:
                for m in c.consume(num_messages=1000, timeout=0.5):
                    if m.error():
                        continue
                    p, o = m.partition(), m.offset()
                    out[p].append((o, m.value().decode() if m.value() is not None else None))
                    last[p] = max(last[p], o)
                    if last[p] >= hw[p] - 1:
                        pending.discard(p)
            if pending:
                raise RunError(f"final read incomplete: partitions {sorted(pending)} stopped at "
                               f"{ {p: last[p] for p in pending} } of high watermarks { {p: hw[p] for p in pending} }")
        finally:
            c.close()
        self.final = out
        self.final_hw = hw
        log(f"final read: {sum(len(v) for v in out.values())} records in {a.partitions} partitions")

    def read_disk(self) -> None:
        """After a clean stop, parse every segment of the topic directly."""
        a = self.args
        for p in range(a.partitions):
            records: list[tuple[int, str | None]] = []
            expected = None
            for seg in segment_files(self.data_dir / f"{a.topic}-{p}"):
                data = seg.read_bytes()
                batches, end, reason = scan_batches(data, expected)
                if reason is not None:
                    self.disk_problems.append(f"p{p} {seg.name}: invalid bytes from position {end} of "
                                              f"{len(data)} after a clean stop ({reason})")
                for b in batches:
                    try:
                        records.extend((o, v.decode() if v is not None else None)
                                       for o, v in batch_records(data, b))
                    except ValueError as exc:
                        self.disk_problems.append(f"p{p} {seg.name}: {exc}")
                    expected = b.next_offset
            self.disk[p] = records

    # -- analysis -------------------------------------------------------------------
    def history(self) -> "History":
        h = History(partitions=self.args.partitions)
        for w in self.producers:
            h.sent.update({v: p for v, (p, _) in w.sent.items()})
            h.acks.extend((v, p, o, t, w.name) for v, p, o, t in w.acked)
            h.failed.update({v: e for v, (e, _) in w.failed.items()})
            h.unresolved.update(w.unresolved)
            h.fatal.extend((w.name, t, err) for t, err in w.fatal)
        for c in self.consumers:
            h.consumer_events[c.cid] = list(c.events)
            h.commits[c.cid] = list(c.commits)
        h.monitor = list(self.monitor.observations)
        h.final = self.final
        h.final_hw = self.final_hw
        h.disk = self.disk
        h.disk_problems = list(self.disk_problems)
        return h

    def check(self) -> Anomalies:
        an, stats = analyze(self.history())
        stats.update({
            "committed_fetch_failures": self.monitor.failures,
            "producer_errors": sum(len(w.errors) for w in self.producers),
            "producer_instances": sum(w.instances for w in self.producers),
            "consumer_errors": sum(len(c.errors) for c in self.consumers),
            "common_client_errors": collections.Counter(
                _error_kind(e) for w in self.producers for _, e, _ in w.errors).most_common(3) +
                collections.Counter(_error_kind(e) for c in self.consumers for _, e in c.errors).most_common(3),
        })
        self.stats = stats
        return an


@dataclass
class History:
    """Everything a run observed, in plain data (so the analysis can be tested alone).

    Times are seconds on one monotonic clock. Consumer events, in the order the
    consumer saw them: ("assign", t0, t1, {partition: committed offset, -1 none, None
    unknown}), ("revoke" | "lost", t, [partitions]), ("poll", t, partition, offset,
    value, consume-call number). Commits: (t0, t1, {partition: offset}, {partition:
    error or None}). Monitor: (t0, t1, {partition: committed offset})."""
    partitions: int
    sent: dict = field(default_factory=dict)             # value -> partition asked for
    acks: list = field(default_factory=list)             # (value, partition, offset, t, producer)
    failed: dict = field(default_factory=dict)           # value -> error (outcome unknown)
    unresolved: set = field(default_factory=set)         # never reported (outcome unknown)
    fatal: list = field(default_factory=list)            # (producer, t, error)
    consumer_events: dict = field(default_factory=dict)  # consumer -> [event]
    commits: dict = field(default_factory=dict)          # consumer -> [commit]
    monitor: list = field(default_factory=list)
    final: dict = field(default_factory=dict)            # partition -> [(offset, value)]
    final_hw: dict = field(default_factory=dict)         # partition -> high watermark
    disk: dict | None = None                             # partition -> [(offset, value)]
    disk_problems: list = field(default_factory=list)


def _observations(h: History):
    """Every (value, partition, offset, source) the history holds."""
    for p, recs in h.final.items():
        for o, v in recs:
            yield v, p, o, "final"
    for p, recs in (h.disk or {}).items():
        for o, v in recs:
            yield v, p, o, "disk"
    for v, p, o, t, who in h.acks:
        yield v, p, o, f"ack:{who}"
    for cid, events in h.consumer_events.items():
        for ev in events:
            if ev[0] == "poll":
                yield ev[4], ev[2], ev[3], f"poll:{cid}"


def analyze(h: History) -> tuple[Anomalies, dict]:
    """Checks a history; returns the anomalies and operation counts."""
    an = Anomalies()
    for who, t, err in h.fatal:
        an.add("producer-fatal", f"{who} at {t:.1f}s: {err}")

    # Where each value was seen and what each position held, compactly (a long run has
    # millions of observations): the first position/value, plus any others. Which
    # sources reported what is recovered afterwards, only for the anomalies.
    first_pos: dict = {}
    extra_pos: dict = collections.defaultdict(set)
    first_val: dict = {}
    extra_val: dict = collections.defaultdict(set)

    def note(v, p, o, src):
        key = (p, o)
        fp = first_pos.setdefault(v, key)
        if fp != key:
            extra_pos[v].add(key)
        fv = first_val.setdefault(key, v)
        if fv != v:
            extra_val[key].add(v)

    final_at: dict[int, dict[int, str | None]] = {}
    for p, recs in sorted(h.final.items()):
        final_at[p] = {}
        prev = None
        for o, v in recs:
            if o in final_at[p]:
                if final_at[p][o] != v:
                    an.add("inconsistent-offset", f"final read returned p{p}/{o} twice: {final_at[p][o]!r} and {v!r}")
                continue
            final_at[p][o] = v
            note(v, p, o, "final")
            if prev is not None and o != prev + 1:
                an.add("log-gap", f"p{p}: offsets {prev + 1}..{o - 1} missing from the final read")
            prev = o
            if v not in h.sent:
                an.add("unexpected-value", f"p{p}/{o} holds {v!r}, which no producer sent")
        if recs and recs[0][0] != 0:
            an.add("log-gap", f"p{p}: the final read starts at offset {recs[0][0]}, not 0")
        hw = h.final_hw.get(p)
        if hw is not None and (max(final_at[p]) + 1 if final_at[p] else 0) != hw:
            an.add("log-gap", f"p{p}: the final read ends at {max(final_at[p], default=-1)}, "
                   f"the high watermark is {hw}")

    if h.disk is not None:
        for p, recs in sorted(h.disk.items()):
            for o, v in recs:
                note(v, p, o, "disk")
            fin = h.final.get(p, [])
            if recs != fin:
                i = next((i for i, (x, y) in enumerate(zip(recs, fin)) if x != y), min(len(recs), len(fin)))
                an.add("disk-mismatch", f"p{p}: segment files hold {len(recs)} records, Fetch returned {len(fin)}; "
                       f"first difference at index {i}: disk {recs[i] if i < len(recs) else None} "
                       f"vs fetch {fin[i] if i < len(fin) else None}")
    for text in h.disk_problems:
        an.add("disk-mismatch", text)

    for v, p, o, t, who in h.acks:
        note(v, p, o, f"ack:{who}")
        intended = h.sent.get(v)
        if intended is not None and intended != p:
            an.add("ack-partition", f"{v} sent to p{intended}, acknowledged for p{p}/{o}")
    polls_total = 0
    for cid, events in sorted(h.consumer_events.items()):
        for ev in events:
            if ev[0] == "poll":
                _, t, p, o, v, _ = ev
                polls_total += 1
                note(v, p, o, f"poll:{cid}")

    # lost writes: every acknowledged (value, partition, offset) is in the final log there.
    final_pos = {v: (p, o) for p, recs in final_at.items() for o, v in recs.items()}
    for v, p, o, t, who in h.acks:
        got = final_at.get(p, {}).get(o, "<missing>")
        if got != v:
            elsewhere = [f"p{pp}/{oo}" for (pp, oo) in sorted({first_pos[v], *extra_pos.get(v, ())})
                         if final_at.get(pp, {}).get(oo, object()) == v]
            an.add("lost-write", f"{v} acknowledged at p{p}/{o} ({who}, t={t:.1f}s); the final log has "
                   f"{got!r} there; " + (f"{v} is at {', '.join(elsewhere)}" if elsewhere else
                                         f"{v} is nowhere in the final log"))

    # duplicates: a value at more than one position (any source). A value whose send
    # failed or was never reported may be missing, but not at two offsets.
    # inconsistent offsets: two values at one position (any source).
    dup_values = sorted(extra_pos)
    bad_positions = sorted(extra_val)
    if dup_values or bad_positions:
        want_v, want_k = set(dup_values), set(bad_positions)
        by_value: dict = collections.defaultdict(lambda: collections.defaultdict(set))
        by_pos: dict = collections.defaultdict(lambda: collections.defaultdict(set))
        for v, p, o, src in _observations(h):
            if v in want_v:
                by_value[v][(p, o)].add(src)
            if (p, o) in want_k:
                by_pos[(p, o)][v].add(src)
        for v in dup_values:
            where = by_value[v]
            desc = "; ".join(f"p{p}/{o} ({', '.join(sorted(src))})" for (p, o), src in sorted(where.items()))
            an.add("duplicate", f"{v} at {len(where)} positions: {desc}")
        for (p, o) in bad_positions:
            vals = by_pos[(p, o)]
            desc = "; ".join(f"{v!r} ({', '.join(sorted(src))})" for v, src in sorted(vals.items(), key=str))
            an.add("inconsistent-offset", f"p{p}/{o}: {desc}")

    # polls: per consumer and partition, increasing and without skips between
    # rebalances; the first poll after an assignment is at the committed offset.
    assignments = 0
    for cid, events in sorted(h.consumer_events.items()):
        state: dict[int, dict] = {}
        for ev in events:
            kind = ev[0]
            if kind == "assign":
                assignments += 1
                for p, committed in ev[3].items():
                    state[p] = {"last": None, "start": committed, "t": ev[1], "batch": None}
            elif kind in ("revoke", "lost"):
                for p in ev[2]:
                    state.pop(p, None)
            else:
                _, t, p, o, v, batch = ev
                st = state.get(p)
                if st is None:
                    an.add("nonmonotonic-poll", f"{cid} polled p{p}/{o} at {t:.1f}s without owning p{p}")
                    state[p] = st = {"last": None, "start": None, "t": t, "batch": None}
                last = st["last"]
                if last is None:
                    start = st["start"]
                    if start is not None:
                        start = max(start, 0)
                        skipped = [x for x in range(start, o) if x in final_at.get(p, {})]
                        if skipped:
                            an.add("poll-skip", f"{cid} was assigned p{p} at {st['t']:.1f}s with committed offset "
                                   f"{start}, but its first poll was offset {o} ({len(skipped)} offsets of the log "
                                   f"skipped)")
                elif o <= last:
                    an.add("nonmonotonic-poll", f"{cid} p{p}: polled {o} after {last} at {t:.1f}s "
                           f"({'within one consume() call' if batch == st['batch'] else 'across consume() calls'}), "
                           f"no rebalance in between")
                elif o > last + 1:
                    skipped = [x for x in range(last + 1, o) if x in final_at.get(p, {})]
                    if skipped:
                        an.add("poll-skip", f"{cid} p{p}: polled {o} right after {last} at {t:.1f}s, skipping "
                               f"{len(skipped)} offsets present in the log")
                st["last"] = o
                st["batch"] = batch

    # committed offsets: an observation (monitor fetch, fetch at assignment, or an
    # acknowledged commit) must not be lower than one that completed before it began.
    obs: dict[int, list] = collections.defaultdict(list)
    commits_ok = commits_failed = 0
    for t0, t1, values in h.monitor:
        for p, off in values.items():
            obs[p].append((t0, t1, off, "fetched"))
    for cid, events in sorted(h.consumer_events.items()):
        for ev in events:
            if ev[0] == "assign":
                for p, off in ev[3].items():
                    if off is not None and off >= 0:
                        obs[p].append((ev[1], ev[2], off, f"fetched by {cid} on assignment"))
    for cid, commits in sorted(h.commits.items()):
        for t0, t1, offsets, errs in commits:
            for p, off in offsets.items():
                if errs.get(p) is None:
                    commits_ok += 1
                    obs[p].append((t0, t1, off, f"commit acknowledged to {cid}"))
                else:
                    commits_failed += 1
    for p, items in sorted(obs.items()):
        by_end = sorted(items, key=lambda x: x[1])
        i = 0
        best = None
        for item in sorted(items, key=lambda x: x[0]):
            while i < len(by_end) and by_end[i][1] < item[0]:
                if best is None or by_end[i][2] > best[2]:
                    best = by_end[i]
                i += 1
            if best is not None and item[2] < best[2]:
                an.add("commit-backwards", f"p{p}: committed offset {best[2]} ({best[3]}, done at {best[1]:.2f}s), "
                       f"then {item[2]} ({item[3]}, started at {item[0]:.2f}s)")
                best = None  # report each regression once, not every later observation
                while i < len(by_end) and by_end[i][1] < item[0]:
                    i += 1

    maybe = (set(h.failed) | h.unresolved) & set(h.sent)
    stats = {
        "sent": len(h.sent), "acked": len(h.acks), "failed": len(h.failed), "unresolved": len(h.unresolved),
        "maybe_written_missing": sum(1 for v in maybe if v not in final_pos),
        "polls": polls_total, "rebalances": assignments,
        "commits_ok": commits_ok, "commits_failed": commits_failed,
        "committed_fetches": len(h.monitor),
        "final_records": sum(len(v) for v in h.final.values()),
        "final_per_partition": {p: len(v) for p, v in sorted(h.final.items())},
    }
    return an, stats


def _error_kind(text: str) -> str:
    """An error message without the parts that vary (addresses, counts, times)."""
    import re
    return re.sub(r"\d+", "N", text)[:100]


# --------------------------------------------------------------------------------------

def summarize(run: Run, an: Anomalies, elapsed: float, examples: int) -> str:
    a, s = run.args, run.stats
    lines = [
        "",
        "=" * 78,
        f"tributary crash checker: mode={a.mode} seed={a.seed} duration={a.duration:g}s crashes={a.crashes} "
        f"partitions={a.partitions} producers={a.producers} consumers={a.consumers}",
        f"elapsed {elapsed:.1f}s (chaos {run.phase_times.get('chaos', 0):.1f}s, settle "
        f"{run.phase_times.get('settle', 0):.1f}s); work dir {run.work}",
        "operations:",
        f"  produce: sent {s['sent']}, acknowledged {s['acked']}, failed {s['failed']}, unresolved "
        f"{s['unresolved']} (failed/unresolved missing from the log: {s['maybe_written_missing']}); "
        f"producer instances {s['producer_instances']}, client errors {s['producer_errors']}",
        f"  consume: polled {s['polls']} records, {s['rebalances']} assignments, commits "
        f"{s['commits_ok']} acknowledged / {s['commits_failed']} failed (per partition), consumer errors "
        f"{s['consumer_errors']}; caught up at the end: {'yes' if getattr(run, 'caught_up', False) else 'NO'}",
        f"  most common client errors: {'; '.join(f'{n}x {e}' for e, n in s['common_client_errors']) or 'none'}",
        f"  committed-offset fetches: {s['committed_fetches']} ({s['committed_fetch_failures']} failed)",
        f"  final log: {s['final_records']} records "
        f"({', '.join(f'p{p}: {n}' for p, n in s['final_per_partition'].items())})",
    ]
    restarts = [c["restart_s"] for c in run.crashes]
    if restarts:
        during = sum(1 for c in run.crashes if c.get("killed_during_startup"))
        lines.append(f"crashes: {len(run.crashes)} SIGKILLs (+{during} more during startup); down {min(c['down_s'] for c in run.crashes):.2f}-"
                     f"{max(c['down_s'] for c in run.crashes):.2f}s; restart to accepting connections: median "
                     f"{statistics.median(restarts) * 1000:.0f} ms, max {max(restarts) * 1000:.0f} ms")
    else:
        lines.append("crashes: 0")
    if a.mode == "corrupt" or a.sabotage:
        kinds = collections.Counter(d["kind"] for c in run.crashes for d in c.get("damage", {}).values())
        truncations = 0
        try:
            truncations = run.broker.log_path.read_text(errors="replace").count("truncated a corrupt or torn tail")
        except FileNotFoundError:
            pass
        lines.append(f"corruptions: {sum(kinds.values())} segment tails damaged ({', '.join(f'{k} {n}' for k, n in sorted(kinds.items()))}); "
                     f"broker reported {truncations} truncations")
    if an.total == 0:
        lines.append("anomalies: none")
    else:
        lines.append(f"anomalies: {an.total}")
        for kind, items in sorted(an.by_kind.items()):
            lines.append(f"  {kind}: {len(items)}")
            for text in items[:examples]:
                lines.append(f"    - {text}")
            if len(items) > examples:
                lines.append(f"    ... {len(items) - examples} more")
    lines.append(f"result: {'OK' if an.total == 0 else 'ANOMALIES FOUND'}")
    return "\n".join(lines)


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--duration", type=float, default=60.0, help="seconds of chaos (crashes are spread over it)")
    ap.add_argument("--crashes", type=int, default=5, help="number of SIGKILL + restart cycles")
    ap.add_argument("--mode", choices=("kill", "corrupt"), default="kill",
                    help="kill: SIGKILL only; corrupt: also damage active segment tails while down")
    ap.add_argument("--seed", type=int, default=None, help="random seed (default: random, printed)")
    ap.add_argument("--binary", default=os.environ.get("TRIBUTARY_BIN") or str(DEFAULT_BIN),
                    help="tributary binary (env TRIBUTARY_BIN)")
    ap.add_argument("--partitions", type=int, default=4)
    ap.add_argument("--producers", type=int, default=3)
    ap.add_argument("--consumers", type=int, default=2)
    ap.add_argument("--rate", type=float, default=1500.0, help="records per second, all producers together")
    ap.add_argument("--topic", default="crash-check")
    ap.add_argument("--min-down", type=float, default=0.1, help="shortest time the broker stays down (s)")
    ap.add_argument("--max-down", type=float, default=1.5, help="longest time the broker stays down (s)")
    ap.add_argument("--segment-bytes", type=int, default=1 << 20, help="log.segment.bytes (small: segments roll)")
    ap.add_argument("--checkpoint-ms", type=int, default=3000,
                    help="log.flush.offset.checkpoint.interval.ms (recovery point + producer snapshot)")
    ap.add_argument("--delivery-timeout", type=float, default=60.0, help="producer message.timeout.ms, in s")
    ap.add_argument("--drain-timeout", type=float, default=60.0, help="max wait for consumers to catch up (s)")
    ap.add_argument("--final-read-timeout", type=float, default=120.0)
    ap.add_argument("--work-dir", help="directory for data, logs (default: a new temp dir)")
    ap.add_argument("--keep-data", action="store_true", help="keep the work dir even when the run is clean")
    ap.add_argument("--report", help="write the summary, statistics, crashes and anomalies as JSON here")
    ap.add_argument("--examples", type=int, default=5, help="examples printed per anomaly kind")
    ap.add_argument("--sabotage", action="store_true",
                    help="check the checker: while the broker is down, destroy acknowledged records "
                         "(cut the active segment of one partition at its highest acknowledged offset); "
                         "the run must then report lost writes")
    args = ap.parse_args(argv)
    if args.seed is None:
        args.seed = random.SystemRandom().randrange(1 << 31)
    if args.crashes < 0 or args.partitions < 1 or args.producers < 1 or args.consumers < 1:
        ap.error("counts must be positive")
    if args.min_down > args.max_down:
        ap.error("--min-down exceeds --max-down")
    if not (Path(args.binary).is_file() and os.access(args.binary, os.X_OK)):
        ap.error(f"tributary binary not found or not executable: {args.binary} "
                 "(build it, pass --binary or set TRIBUTARY_BIN)")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    # SIGTERM/SIGHUP end the run like Ctrl-C: the finally block stops the broker.
    def interrupted(signum, frame):
        raise KeyboardInterrupt()
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, interrupted)
    run = Run(args)
    started = time.monotonic()
    status = 2
    keep = args.keep_data
    try:
        an = run.execute()
        elapsed = time.monotonic() - started
        print(summarize(run, an, elapsed, args.examples), flush=True)
        status = 1 if an.total else 0
        keep = keep or bool(an.total)
        if args.report:
            Path(args.report).write_text(json.dumps({
                "args": vars(args), "elapsed_s": round(elapsed, 1), "phases": run.phase_times,
                "stats": run.stats, "crashes": run.crashes, "caught_up": getattr(run, "caught_up", None),
                "anomalies": {k: v for k, v in an.by_kind.items()},
            }, indent=2, default=str))
    except RunError as exc:
        print(f"\ncrash checker: run failed: {exc}", file=sys.stderr, flush=True)
        keep = True
    except KeyboardInterrupt:
        print("\ncrash checker: interrupted", file=sys.stderr, flush=True)
        keep = True
        status = 130
    finally:
        run.stop_producing.set()
        run.stop_consuming.set()
        if run.monitor:
            run.monitor.stop_event.set()
        run.broker.kill()  # no-op when already stopped cleanly
        for w in [*run.producers, *run.consumers, *([run.monitor] if run.monitor else [])]:
            w.join(5)
        if keep:
            print(f"crash checker: data and logs kept in {run.work}", file=sys.stderr, flush=True)
        else:
            shutil.rmtree(run.work, ignore_errors=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
