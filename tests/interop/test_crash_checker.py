"""The crash checker (tools/crash-checker): its analysis on hand-made histories, then
short runs against the real binary in both modes (SIGKILL; SIGKILL plus damaged
segment tails), which must find no anomaly."""

from __future__ import annotations

import copy
import importlib.util
import os
import signal
import subprocess
import sys

import pytest

from conftest import REPO

CHECKER = REPO / "tools" / "crash-checker" / "checker.py"


def load_checker():
    spec = importlib.util.spec_from_file_location("crash_checker", CHECKER)
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("crash_checker", module)
    spec.loader.exec_module(module)
    return module


checker = load_checker()


# --- the analysis, on synthetic histories ------------------------------------------

def clean_history():
    """Two partitions of five records each, acknowledged, polled in order by one
    consumer that committed everything, and read back the same way."""
    h = checker.History(partitions=2)
    names = {0: "a", 1: "b"}
    for p in (0, 1):
        for o in range(5):
            v = f"{names[p]}{o}"
            h.sent[v] = p
            h.acks.append((v, p, o, 1.0 + o / 10, "producer-0"))
    events = [("assign", 0.5, 0.6, {0: -1, 1: -1})]
    for p in (0, 1):
        events += [("poll", 2.0 + o / 10, p, o, f"{names[p]}{o}", 1) for o in range(5)]
    h.consumer_events = {"c0": events}
    h.commits = {"c0": [(3.0, 3.1, {0: 5, 1: 5}, {0: None, 1: None})]}
    h.monitor = [(0.1, 0.2, {}), (4.0, 4.1, {0: 5, 1: 5})]
    h.final = {p: [(o, f"{names[p]}{o}") for o in range(5)] for p in (0, 1)}
    h.final_hw = {0: 5, 1: 5}
    h.disk = copy.deepcopy(h.final)
    return h


def kinds(h):
    an, _ = checker.analyze(h)
    return {k: len(v) for k, v in an.by_kind.items()}


def test_a_clean_history_has_no_anomalies():
    an, stats = checker.analyze(clean_history())
    assert an.total == 0, dict(an.by_kind)
    assert stats["acked"] == 10 and stats["polls"] == 10 and stats["commits_ok"] == 2


def _lose_last(h):
    h.final[0].pop()
    h.disk[0].pop()
    h.final_hw[0] = 4
    for i, ev in enumerate(h.consumer_events["c0"]):
        if ev[0] == "poll" and ev[2] == 0 and ev[3] == 4:
            del h.consumer_events["c0"][i]
            break


def _move(h):  # the acknowledged a4 is at offset 5, something else at 4
    h.final[0][4] = (4, "a9")
    h.final[0].append((5, "a4"))
    h.sent["a9"] = 0
    h.final_hw[0] = 6
    h.disk = None


def _duplicate(h):
    h.final[1].append((5, "b2"))
    h.disk[1].append((5, "b2"))
    h.final_hw[1] = 6


def _maybe_written_twice(h):
    h.sent["x"] = 1
    h.unresolved.add("x")
    for src in (h.final, h.disk):
        src[1] += [(5, "x"), (6, "x")]
    h.final_hw[1] = 7


def _poll_disagrees(h):
    events = h.consumer_events["c0"]
    i = next(i for i, ev in enumerate(events) if ev[0] == "poll" and ev[2] == 1 and ev[3] == 2)
    events[i] = ("poll", events[i][1], 1, 2, "b7", 1)


def _poll_back(h):
    h.consumer_events["c0"].append(("poll", 9.0, 0, 3, "a3", 2))


def _poll_skip(h):
    events = h.consumer_events["c0"]
    i = next(i for i, ev in enumerate(events) if ev[0] == "poll" and ev[2] == 0 and ev[3] == 2)
    del events[i]


def _start_past_committed(h):
    h.commits["c0"] = [(3.0, 3.1, {0: 2, 1: 5}, {0: None, 1: None})]
    h.monitor[-1] = (4.0, 4.1, {0: 2, 1: 5})
    events = h.consumer_events["c0"]
    events += [("revoke", 5.0, [0, 1]), ("assign", 5.1, 5.2, {0: 2, 1: 5}), ("poll", 5.3, 0, 4, "a4", 3)]


def _commit_goes_back(h):
    h.monitor.append((6.0, 6.1, {0: 3, 1: 5}))


def _acknowledged_commit_lost(h):
    h.commits["c0"].append((7.0, 7.1, {0: 6}, {0: None}))
    h.monitor.append((8.0, 8.1, {0: 5, 1: 5}))


def _unexpected(h):
    for src in (h.final, h.disk):
        src[0].append((5, "garbage"))
    h.final_hw[0] = 6


def _hole(h):
    del h.final[1][2]
    h.disk[1] = list(h.final[1])


def _disk_differs(h):
    h.disk[0] = h.disk[0][:3]


@pytest.mark.parametrize("mutate, expected", [
    (_lose_last, {"lost-write"}),
    (_move, {"lost-write", "duplicate", "inconsistent-offset"}),
    (_duplicate, {"duplicate"}),
    (_maybe_written_twice, {"duplicate"}),
    (_poll_disagrees, {"inconsistent-offset"}),
    (_poll_back, {"nonmonotonic-poll"}),
    (_poll_skip, {"poll-skip"}),
    (_start_past_committed, {"poll-skip"}),
    (_commit_goes_back, {"commit-backwards"}),
    (_acknowledged_commit_lost, {"commit-backwards"}),
    (_unexpected, {"unexpected-value"}),
    (_hole, {"log-gap", "lost-write"}),
    (_disk_differs, {"disk-mismatch"}),
], ids=lambda x: getattr(x, "__name__", "")[1:] if callable(x) else "")
def test_the_analysis_finds(mutate, expected):
    h = clean_history()
    mutate(h)
    assert set(kinds(h)) == expected


def test_maybe_written_records_may_be_missing_and_rebalances_allow_rereads():
    h = clean_history()
    h.sent["lost-in-flight"] = 0
    h.failed["lost-in-flight"] = "_MSG_TIMED_OUT: timed out"
    h.unresolved.add("never-reported")
    h.sent["never-reported"] = 1
    h.commits["c0"] = [(3.0, 3.1, {0: 3, 1: 5}, {0: None, 1: None})]
    h.monitor[-1] = (4.0, 4.1, {0: 3, 1: 5})
    # After a rebalance the consumer starts again from the committed offset (3).
    h.consumer_events["c0"] += [("revoke", 5.0, [0, 1]), ("assign", 5.1, 5.2, {0: 3, 1: 5}),
                                ("poll", 5.3, 0, 3, "a3", 3), ("poll", 5.3, 0, 4, "a4", 3)]
    an, stats = checker.analyze(h)
    assert an.total == 0, dict(an.by_kind)
    assert stats["maybe_written_missing"] == 2


def test_segment_scan_stops_at_the_first_bad_batch():
    """The checker's own batch parser (used for the disk cross-check and to damage
    tails): a valid batch, then a copy with a flipped payload bit."""
    import struct
    records = bytes([0x0C, 0, 0, 0, 0, 0x04, ord("h"), ord("i"), 0])  # one record, value "hi"
    body = struct.pack(">hiqqqhii", 0, 0, 0, 0, -1, -1, -1, 1) + records
    crc = checker._crc32c(body)
    batch = struct.pack(">qiibI", 0, 9 + len(body), 0, 2, crc) + body
    bad = bytearray(batch)
    struct.pack_into(">q", bad, 0, 1)
    bad[-2] ^= 1
    batches, end, reason = checker.scan_batches(batch + bytes(bad))
    assert [b.base_offset for b in batches] == [0] and end == len(batch) and reason == "CRC mismatch"
    assert checker.batch_records(batch, batches[0]) == [(0, b"hi")]


# --- end to end, against the real binary -----------------------------------------

def run_checker(tributary_bin, tmp_path, *args, timeout=240):
    cmd = [sys.executable, str(CHECKER), "--binary", str(tributary_bin),
           "--work-dir", str(tmp_path / "work"), *args]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        # SIGTERM lets the checker stop its broker (by PID) before exiting.
        os.kill(proc.pid, signal.SIGTERM)
        try:
            out, _ = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
        pytest.fail(f"crash checker did not finish within {timeout}s:\n{out}", pytrace=False)
    return proc.returncode, out


@pytest.mark.timeout(300)
@pytest.mark.parametrize("mode", ["kill", "corrupt"])
def test_crash_checker_finds_no_anomaly(tributary_bin, tmp_path, mode):
    rc, out = run_checker(tributary_bin, tmp_path, "--mode", mode, "--duration", "15", "--crashes", "3",
                          "--partitions", "3", "--rate", "900")
    print(out)
    if rc != 0:
        broker_log = tmp_path / "work" / "broker.log"
        log_tail = "\n".join(broker_log.read_text(errors="replace").splitlines()[-60:]) if broker_log.exists() else ""
        pytest.fail(f"crash checker exited with {rc}:\n{out}\n--- broker log tail ---\n{log_tail}", pytrace=False)
    assert "anomalies: none" in out
    assert "crashes: 3 SIGKILLs" in out
    if mode == "corrupt":
        assert "segment tails damaged" in out


@pytest.mark.timeout(200)
def test_crash_checker_reports_destroyed_acknowledged_records(tributary_bin, tmp_path):
    """--sabotage cuts acknowledged records out of a segment while the broker is down:
    the checker must notice (exit 1, lost writes), or its green runs mean nothing."""
    rc, out = run_checker(tributary_bin, tmp_path, "--sabotage", "--duration", "6", "--crashes", "1",
                          "--partitions", "2", "--rate", "900", "--delivery-timeout", "20")
    print(out)
    assert rc == 1, out
    assert "lost-write:" in out and "result: ANOMALIES FOUND" in out
