"""Runs one of the tutorial's scripts (../shared/seed/*.py) unmodified against a
test broker, and stops it after N records.

Used as a program, in a subprocess whose cwd is a scratch dir (the scripts
write their output files to the cwd):

    python3 tutorial_harness.py --script PATH --bootstrap 127.0.0.1:PORT \
        --count N --records OUT.jsonl [--timeout SECONDS]

What it changes around the script, never in it:
  * ``time.sleep`` is a no-op when called from the script itself (the
    producer sleeps one second per record); kafka-python's own sleeps are left
    alone.
  * ``KafkaProducer.__init__`` / ``KafkaConsumer.__init__`` get
    ``bootstrap_servers`` replaced by the test broker (the scripts hard-code
    localhost:9092).
  * Producer: ``send`` is wrapped to keep each future, ``flush`` to check
    every future succeeded and write the record (topic, partition, offset,
    value) to the records file; after the N-th successful send+flush the run
    stops cleanly.
  * Consumer: ``__next__`` is wrapped to write each consumed record to the
    records file and stop when the script asks for record N+1, i.e. after the
    script has processed N records.
  * ``seek_to_beginning()`` with no argument first polls until the consumer
    has an assignment (kafka-python raises otherwise; see the seed README).

The last line on stdout is ``HARNESS-SUMMARY {json}``. Exit status 0 means the
script processed exactly N records; 2 means it ended early; 3 means the
watchdog timeout fired; anything else is an error in the script or client.

``run_script()`` is the test-side helper that starts this in a subprocess.
"""

from __future__ import annotations

import argparse
import json
import os
import runpy
import subprocess
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
SUMMARY_PREFIX = "HARNESS-SUMMARY "


class HarnessStop(BaseException):
    """Raised inside the script to end its infinite loop after N records."""


@dataclass
class State:
    count: int
    records_path: Path
    produced: int = 0
    consumed: int = 0
    script_sleeps: int = 0
    assignment_polls: int = 0
    pending: list = field(default_factory=list)
    producers: list = field(default_factory=list)
    consumers: list = field(default_factory=list)
    _out: object = None

    def write(self, obj: dict) -> None:
        if self._out is None:
            self._out = open(self.records_path, "a", encoding="utf-8")
        self._out.write(json.dumps(obj) + "\n")
        self._out.flush()

    def close(self) -> None:
        if self._out is not None:
            self._out.close()
            self._out = None

    def summary(self) -> dict:
        return {"count": self.count, "produced": self.produced, "consumed": self.consumed,
                "script_sleeps": self.script_sleeps,
                "assignment_polls": self.assignment_polls}


def _decode(v):
    if v is None:
        return None
    if isinstance(v, (bytes, bytearray, memoryview)):
        return bytes(v).decode("utf-8", errors="surrogateescape")
    return str(v)


def install(state: State, script_path: str, bootstrap: str) -> None:
    """Patch time.sleep and kafka-python's classes as described above."""
    import kafka

    # -- time.sleep: no-op for the script's own calls only --------------------
    real_sleep = time.sleep
    script_files = {script_path, os.path.realpath(script_path)}

    def sleep(secs):
        caller = sys._getframe(1).f_code.co_filename
        if caller in script_files:
            state.script_sleeps += 1
            return None
        return real_sleep(secs)

    time.sleep = sleep

    servers = [bootstrap]

    # -- producer ---------------------------------------------------------------
    P = kafka.KafkaProducer
    p_init, p_send, p_flush = P.__init__, P.send, P.flush

    def producer_init(self, *args, **kwargs):
        kwargs["bootstrap_servers"] = servers
        p_init(self, *args, **kwargs)
        state.producers.append(self)

    def producer_send(self, topic, *args, **kwargs):
        if state.produced >= state.count:
            raise HarnessStop()
        value = kwargs["value"] if "value" in kwargs else (args[0] if args else None)
        fut = p_send(self, topic, *args, **kwargs)
        state.pending.append((fut, value))
        return fut

    def producer_flush(self, *args, **kwargs):
        r = p_flush(self, *args, **kwargs)
        pending, state.pending = state.pending, []
        for fut, value in pending:
            md = fut.get(timeout=30)  # raises if the broker refused the record
            state.produced += 1
            state.write({"kind": "produced", "topic": md.topic, "partition": md.partition,
                         "offset": md.offset, "value": _decode(value)})
        # KafkaProducer.close() flushes too; only the script's own flush stops the run.
        if state.produced >= state.count and not getattr(state, "closing", False):
            raise HarnessStop()
        return r

    P.__init__, P.send, P.flush = producer_init, producer_send, producer_flush

    # -- consumer ---------------------------------------------------------------
    C = kafka.KafkaConsumer
    c_init, c_next, c_seek_begin = C.__init__, C.__next__, C.seek_to_beginning

    def consumer_init(self, *args, **kwargs):
        kwargs["bootstrap_servers"] = servers
        c_init(self, *args, **kwargs)
        state.consumers.append(self)

    def consumer_next(self):
        if state.consumed >= state.count:
            raise HarnessStop()
        msg = c_next(self)
        state.consumed += 1
        state.write({"kind": "consumed", "topic": msg.topic, "partition": msg.partition,
                     "offset": msg.offset, "value": _decode(msg.value)})
        return msg

    def consumer_seek_to_beginning(self, *partitions):
        if not partitions:
            deadline = time.monotonic() + 30
            while not self.assignment():
                if time.monotonic() > deadline:
                    raise RuntimeError("harness: consumer got no partition assignment within 30s")
                state.assignment_polls += 1
                # Records this poll may return are dropped on purpose: the
                # seek below moves the position back to the beginning.
                self.poll(timeout_ms=100)
        return c_seek_begin(self, *partitions)

    C.__init__, C.__next__, C.seek_to_beginning = (
        consumer_init, consumer_next, consumer_seek_to_beginning)


def _close_clients(state: State) -> None:
    state.closing = True
    for p in state.producers:
        try:
            p.close(timeout=10)
        except Exception:
            traceback.print_exc()
    for c in state.consumers:
        try:
            c.close()
        except Exception:
            traceback.print_exc()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--script", required=True)
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--records", required=True)
    ap.add_argument("--timeout", type=float, default=50.0)
    args = ap.parse_args(argv)

    import logging
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    state = State(count=args.count, records_path=Path(args.records))

    def on_timeout():
        sys.stderr.write(f"harness: watchdog fired after {args.timeout}s: "
                         f"{json.dumps(state.summary())}\n")
        sys.stdout.write(SUMMARY_PREFIX + json.dumps({**state.summary(), "timeout": True}) + "\n")
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(3)

    watchdog = threading.Timer(args.timeout, on_timeout)
    watchdog.daemon = True
    watchdog.start()

    install(state, args.script, args.bootstrap)
    sys.argv = [args.script]
    rc = 0
    try:
        runpy.run_path(args.script, run_name="__main__")
        sys.stderr.write("harness: the script returned before processing N records\n")
        rc = 2
    except HarnessStop:
        rc = 0
    except SystemExit as e:
        sys.stderr.write(f"harness: the script called exit({e.code}) early\n")
        rc = 2
    except BaseException:
        traceback.print_exc()
        rc = 1
    finally:
        _close_clients(state)
        state.close()
        watchdog.cancel()
    sys.stdout.write(SUMMARY_PREFIX + json.dumps(state.summary()) + "\n")
    sys.stdout.flush()
    return rc


# --- test-side helper ---------------------------------------------------------

@dataclass
class RunResult:
    returncode: int
    stdout: str
    stderr: str
    summary: dict
    records: list
    cwd: Path

    def values(self, kind: str) -> list:
        return [r["value"] for r in self.records if r["kind"] == kind]

    def describe(self) -> str:
        return (f"harness exit {self.returncode}, summary {self.summary}\n"
                f"--- stdout ---\n{self.stdout[-3000:]}\n--- stderr ---\n{self.stderr[-6000:]}")


def run_script(script: Path, bootstrap: str, count: int, cwd: Path,
               records: Path | None = None, env: dict | None = None,
               timeout: float = 50.0, python: str | None = None,
               preamble: list[str] | None = None) -> RunResult:
    """Run ``script`` under the harness in a subprocess with cwd ``cwd``.

    ``preamble``: optional argv prefix replacing ``[python, tutorial_harness.py]``
    (the self-check uses it to install fake clients first)."""
    cwd = Path(cwd)
    cwd.mkdir(parents=True, exist_ok=True)
    records = Path(records) if records else cwd / f"harness-{Path(script).stem}.jsonl"
    cmd = (preamble or [python or sys.executable, str(HERE / "tutorial_harness.py")]) + [
        "--script", str(script), "--bootstrap", bootstrap, "--count", str(count),
        "--records", str(records), "--timeout", str(timeout)]
    full_env = dict(os.environ)
    full_env["PYTHONPATH"] = os.pathsep.join(
        [str(HERE)] + ([full_env["PYTHONPATH"]] if full_env.get("PYTHONPATH") else []))
    full_env["PYTHONUNBUFFERED"] = "1"
    if env:
        full_env.update(env)
    try:
        proc = subprocess.run(cmd, cwd=str(cwd), env=full_env, stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=timeout + 15)
        rc, out, err = proc.returncode, proc.stdout, proc.stderr
    except subprocess.TimeoutExpired as e:
        rc = -9
        out = (e.stdout or b"").decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
        err = (e.stderr or b"").decode(errors="replace") if isinstance(e.stderr, bytes) else (e.stderr or "")
    summary = {}
    for line in out.splitlines():
        if line.startswith(SUMMARY_PREFIX):
            summary = json.loads(line[len(SUMMARY_PREFIX):])
    recs = []
    if records.exists():
        recs = [json.loads(l) for l in records.read_text(encoding="utf-8").splitlines() if l.strip()]
    return RunResult(rc, out, err, summary, recs, cwd)


if __name__ == "__main__":
    sys.exit(main())
