"""`tributary weather` and `tributary demo` against the tutorial's own scripts.

The Swift aggregation must write, byte for byte, what consumer_monthly.py and
consumer_weekly.py write for the same records (the scripts run unmodified under
tutorial_harness.py against the same broker); it must survive SIGKILL mid-stream
without losing or repeating a row; and --reprocess must leave the old output
untouched until it swaps the new one in.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

from test_tutorial import (BUCKET, CSV_KEY, aws_env, expected_monthly_text, expected_weekly_csv,
                           read_topic_kafka_python, s3_client)
from tutorial_harness import run_script

TOPIC = "weather"


def tributary(bin_path, *args, env=None, timeout=120, cwd=None) -> subprocess.CompletedProcess:
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    proc = subprocess.run([str(bin_path), *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=full_env, cwd=cwd, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, f"tributary {' '.join(map(str, args))} exited {proc.returncode}\n" \
                                 f"--- stdout ---\n{proc.stdout[-3000:]}\n--- stderr ---\n{proc.stderr[-3000:]}"
    return proc


def simulate(bin_path, broker, count, seed=7, *extra):
    return tributary(bin_path, "weather", "simulate", "--bootstrap-server", broker.bootstrap,
                     "--topic", TOPIC, "--count", count, "--seed", seed, *extra)


def aggregate(bin_path, broker, window, *extra, env=None, timeout=180):
    return tributary(bin_path, "weather", "aggregate", "--bootstrap-server", broker.bootstrap,
                     "--topic", TOPIC, "--window", window, *extra, env=env, timeout=timeout)


def topic_values(broker, n):
    got = read_topic_kafka_python(broker.bootstrap, TOPIC, n, timeout=60)
    assert len(got) == n, f"read {len(got)} of {n} records"
    return [m.value.decode() for m in got]


def test_simulated_readings_are_the_tutorials_json(broker, tributary_bin):
    simulate(tributary_bin, broker, 500)
    values = topic_values(broker, 500)
    rows = [json.loads(v) for v in values]
    # Exactly what json.dumps of the tutorial's dict gives (separators, float repr).
    assert [json.dumps(r) for r in rows] == values
    assert [r["record_id"] for r in rows] == list(range(1, 501))
    for a, b in zip(rows, rows[1:]):
        assert list(b) == ["record_id", "temperature", "CO_concentration", "humidity"]
        assert -10 <= b["temperature"] <= 35 and round(b["temperature"], 1) == b["temperature"]
        assert abs(b["temperature"] - a["temperature"]) <= 5.05
        assert 1 <= b["humidity"] <= 100 and abs(b["humidity"] - a["humidity"]) <= 20
        assert 50 <= b["CO_concentration"] <= 1500 and abs(b["CO_concentration"] - a["CO_concentration"]) <= 100
    # The same seed gives the same readings.
    simulate(tributary_bin, broker, 500)
    assert topic_values(broker, 1000)[500:] == values


def test_devices_add_key_and_event_timestamp(broker, tributary_bin, tmp_path):
    simulate(tributary_bin, broker, 120, 3, "--devices", 3)
    from kafka import KafkaConsumer, TopicPartition
    c = KafkaConsumer(bootstrap_servers=[broker.bootstrap], auto_offset_reset="earliest",
                      enable_auto_commit=False, consumer_timeout_ms=2000)
    c.assign([TopicPartition(TOPIC, 0)])
    msgs = list(c)
    c.close()
    assert len(msgs) == 120
    rows = [json.loads(m.value) for m in msgs]
    assert [m.key.decode() for m in msgs] == [r["device_id"] for r in rows]
    assert {r["device_id"] for r in rows} == {"station-1", "station-2", "station-3"}
    day = 86_400_000
    assert [r["timestamp"] for r in rows] == [1_767_225_600_000 + (i // 3) * day for i in range(120)]
    # Event-time weeks per device: 40 days from Thursday 2026-01-01, Monday-based weeks.
    out = tmp_path / "event.csv"
    aggregate(tributary_bin, broker, "weekly", "--event-time", "--stop-at-end", "--output", out)
    lines = out.read_text().splitlines()
    assert lines[0] == "week_id,avg_temp,avg_co,avg_humidity"
    ids = [l.split(",")[0] for l in lines[1:]]
    # Windows close one day (the allowed lateness) after their end: the last open week stays open.
    assert ids[:3] == ["station-1/2025-12-29", "station-2/2025-12-29", "station-3/2025-12-29"]
    assert len(ids) == 3 * 5


def test_aggregate_equals_the_tutorial_consumers_byte_for_byte(broker, tributary_bin, seed_dir, moto, tmp_path):
    n = 2100  # 70 months, 300 weeks
    simulate(tributary_bin, broker, n, 11)
    values = topic_values(broker, n)

    monthly = run_script(seed_dir / "consumer_monthly.py", broker.bootstrap, n, tmp_path / "py-monthly", timeout=90)
    assert monthly.returncode == 0, monthly.describe()
    s3 = s3_client(moto)
    s3.create_bucket(Bucket=BUCKET)
    s3.create_bucket(Bucket="weather-lake")
    env = aws_env(tmp_path, moto)
    weekly = run_script(seed_dir / "consumer_weekly.py", broker.bootstrap, n, tmp_path / "py-weekly",
                        env=env, timeout=120)
    assert weekly.returncode == 0, weekly.describe()
    py_txt = (tmp_path / "py-monthly" / "weather_aggregation.txt").read_bytes()
    py_csv = (tmp_path / "py-weekly" / "weather_aggregation.csv").read_bytes()
    # The scripts themselves agree with Python's rules applied to the records.
    assert py_txt.decode() == expected_monthly_text(values)
    assert py_csv.decode() == expected_weekly_csv(values)

    swift_dir = tmp_path / "swift"
    swift_dir.mkdir()
    # The tutorial's default names in the working directory.
    tributary(tributary_bin, "weather", "aggregate", "--bootstrap-server", broker.bootstrap,
              "--window", "monthly", "--stop-at-end", cwd=swift_dir)
    tributary(tributary_bin, "weather", "aggregate", "--bootstrap-server", broker.bootstrap,
              "--window", "weekly", "--stop-at-end", cwd=swift_dir)
    assert (swift_dir / "weather_aggregation.txt").read_bytes() == py_txt
    assert (swift_dir / "weather_aggregation.csv").read_bytes() == py_csv

    # The weekly CSV to S3 (the script's PUT target is another bucket; same bytes).
    aggregate(tributary_bin, broker, "weekly", "--stop-at-end", "--group", "weekly-s3",
              "--output", "s3://weather-lake/agg/weather_aggregation.csv", env=env)
    ours = s3.get_object(Bucket="weather-lake", Key="agg/weather_aggregation.csv")["Body"].read()
    theirs = s3.get_object(Bucket=BUCKET, Key=CSV_KEY)["Body"].read()
    assert ours == theirs == py_csv
    checkpoint = json.loads(s3.get_object(Bucket="weather-lake", Key="agg/weather_aggregation.csv.checkpoint.json")["Body"].read())
    assert checkpoint["offsets"] == {"0": n} and checkpoint["output_length"] == len(py_csv)

    # The position is committed to the group for lag tools.
    groups = tributary(tributary_bin, "groups", "describe", "--bootstrap-server", broker.bootstrap,
                       "--group", "weather-weekly").stdout
    assert str(n) in groups


def test_sigkill_mid_stream_then_resume_equals_an_uninterrupted_run(broker, tributary_bin, tmp_path):
    n = 30_000
    simulate(tributary_bin, broker, n, 5)
    values = topic_values(broker, n)
    out = tmp_path / "weekly.csv"
    cmd = [str(tributary_bin), "weather", "aggregate", "--bootstrap-server", broker.bootstrap,
           "--topic", TOPIC, "--window", "weekly", "--output", str(out), "--stop-at-end",
           "--commit-interval-ms", "0"]
    kills = 0
    sizes = []
    for extra in (0.0, 0.05, 0.01, 0.1, 0.03):
        before = out.stat().st_size if out.exists() else 0
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
        try:
            # Kill once the run has written something, at a varying moment after that.
            deadline = time.monotonic() + 30
            while proc.poll() is None and time.monotonic() < deadline:
                if out.exists() and out.stat().st_size > before:
                    break
                time.sleep(0.002)
            time.sleep(extra)
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
                kills += 1
        finally:
            proc.communicate(timeout=30)
        sizes.append(out.stat().st_size if out.exists() else 0)
    assert kills >= 3, f"the aggregate finished before it could be killed ({kills} kills, sizes {sizes})"
    assert sizes == sorted(sizes) and sizes[-1] > 0
    aggregate(tributary_bin, broker, "weekly", "--output", out, "--stop-at-end")
    assert out.read_text() == expected_weekly_csv(values)

    reference = tmp_path / "reference.csv"
    aggregate(tributary_bin, broker, "weekly", "--output", reference, "--stop-at-end", "--group", "ref")
    assert out.read_bytes() == reference.read_bytes()


def test_reprocess_while_the_station_produces(broker, tributary_bin, tmp_path):
    first = 20_000
    simulate(tributary_bin, broker, first, 21)
    out = tmp_path / "weekly.csv"
    # The old business logic: weekly, but in Celsius.
    aggregate(tributary_bin, broker, "weekly", "--unit", "celsius", "--output", out, "--stop-at-end")
    old = out.read_bytes()
    assert old.startswith(b"week_id,")

    more = 3000
    station = subprocess.Popen([str(tributary_bin), "weather", "simulate", "--bootstrap-server", broker.bootstrap,
                                "--topic", TOPIC, "--count", str(more), "--seed", "22", "--rate", "1500/s"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    reprocess = subprocess.Popen([str(tributary_bin), "weather", "aggregate", "--bootstrap-server", broker.bootstrap,
                                  "--topic", TOPIC, "--window", "weekly", "--output", str(out), "--reprocess",
                                  "--stop-at-end", "--commit-interval-ms", "0"],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    seen_old = 0
    try:
        while reprocess.poll() is None:
            data = out.read_bytes()
            if data == old:
                seen_old += 1
            else:
                assert data.decode().splitlines()[0] == "week_id,avg_temp,avg_co,avg_humidity"
                assert data != old
            time.sleep(0.01)
        _, err = reprocess.communicate(timeout=30)
        assert reprocess.returncode == 0, err.decode()[-3000:]
        _, serr = station.communicate(timeout=60)
        assert station.returncode == 0, serr.decode()[-3000:]
    finally:
        for p in (station, reprocess):
            if p.poll() is None:
                os.kill(p.pid, signal.SIGKILL)
                p.wait()
    assert seen_old > 0, "the old output was never observed during the reprocess"
    assert not (tmp_path / "weekly.csv.reprocess").exists()
    values = topic_values(broker, first + more)
    after_swap = out.read_text()
    # The new output covers every record up to where the reprocess stopped ...
    weeks = len(after_swap.splitlines()) - 1
    assert weeks >= first // 7
    assert after_swap == expected_weekly_csv(values[:weeks * 7])
    # ... and resuming covers the rest.
    aggregate(tributary_bin, broker, "weekly", "--output", out, "--stop-at-end")
    assert out.read_text() == expected_weekly_csv(values)


def test_demo_end_to_end(tributary_bin, tmp_path):
    data = tmp_path / "demo"
    proc = tributary(tributary_bin, "demo", "--data-dir", data, "--days", 400, timeout=180)
    out = proc.stdout
    monthly = (data / "weather_aggregation.txt").read_text()
    weekly = (data / "lake" / "weather_aggregation.csv").read_text()
    assert monthly.count(",") == 4 * (400 // 30)
    lines = weekly.splitlines()
    assert lines[0] == "week_id,avg_temp,avg_co,avg_humidity" and len(lines) == 1 + 400 // 7
    assert [l.split(",")[0] for l in lines[1:]] == [str(i) for i in range(1, 58)]
    assert str(data / "weather_aggregation.txt") in out
    assert f"file://{data}/lake/weather_aggregation.csv" in out
    assert "Weekly average temperature" in out and "█" in out
    # Not a terminal: no progress bars (no carriage returns) in the output.
    assert "\r" not in out
    # The checkpoints say what the outputs cover.
    cp = json.loads((data / "lake" / "weather_aggregation.csv.checkpoint.json").read_text())
    assert cp["offsets"] == {"0": 400} and cp["windows_emitted"] == 57
    # Running it again starts over in the same directory.
    tributary(tributary_bin, "demo", "--data-dir", data, "--days", 70, timeout=180)
    assert len((data / "lake" / "weather_aggregation.csv").read_text().splitlines()) == 1 + 10


def test_reprocess_reads_history_that_is_only_in_tiered_storage(broker_factory, tributary_bin, tmp_path):
    """The early history is gone from the broker's disk (tiered to a local store); a
    --reprocess from offset 0 still covers every record."""
    import test_tiering as tiering
    store = tmp_path / "tier"
    broker = broker_factory(extra_args=("--tier-to", f"file://{store}", "--config", tiering.tier_props(tmp_path)))
    tiering.create_tiered_topic(broker.bootstrap, segment_bytes=65536)
    n = 20_000
    tributary(tributary_bin, "weather", "simulate", "--bootstrap-server", broker.bootstrap,
              "--topic", tiering.TOPIC, "--count", n, "--seed", 3)

    def manifest():
        found = list(store.glob(f"{tiering.TOPIC}-*/0/manifest.json"))
        return json.loads(found[0].read_text()) if found else None

    m = tiering.wait_tiered(broker, manifest, n)
    assert int(tiering.local_segments(broker)[0].stem) > n // 2, "most of the history should be off the disk"
    assert m["segments"][0]["baseOffset"] == 0

    out = tmp_path / "weekly.csv"
    tributary(tributary_bin, "weather", "aggregate", "--bootstrap-server", broker.bootstrap, "--topic", tiering.TOPIC,
              "--window", "weekly", "--output", out, "--reprocess", "--stop-at-end")
    from kafka import KafkaConsumer, TopicPartition
    c = KafkaConsumer(bootstrap_servers=[broker.bootstrap], auto_offset_reset="earliest",
                      enable_auto_commit=False, consumer_timeout_ms=5000)
    c.assign([TopicPartition(tiering.TOPIC, 0)])
    values = [msg.value.decode() for msg in c]
    c.close()
    assert len(values) == n
    assert out.read_text() == expected_weekly_csv(values)


def test_weekly_parquet_parts_read_by_pyarrow(broker, tributary_bin, tmp_path):
    import pyarrow.parquet as pq
    n = 700
    simulate(tributary_bin, broker, n, 13)
    values = topic_values(broker, n)
    csv = tmp_path / "weekly.csv"
    aggregate(tributary_bin, broker, "weekly", "--output", csv, "--stop-at-end", "--group", "csv")
    lake = tmp_path / "lake"
    # Checkpoint after every window for a while, then SIGKILL: parts so far stay, the rest follow.
    proc = subprocess.Popen([str(tributary_bin), "weather", "aggregate", "--bootstrap-server", broker.bootstrap,
                             "--window", "weekly", "--format", "parquet", "--output", f"file://{lake}/weekly",
                             "--stop-at-end", "--commit-interval-ms", "0"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    time.sleep(0.3)
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    aggregate(tributary_bin, broker, "weekly", "--format", "parquet", "--output", f"file://{lake}/weekly", "--stop-at-end")
    parts = sorted((lake / "weekly").glob("part-*.parquet"))
    assert parts
    rows = [r for p in parts for r in pq.read_table(p).to_pylist()]
    assert [r["week_id"] for r in rows] == list(range(1, n // 7 + 1))
    expected = [l.split(",") for l in csv.read_text().splitlines()[1:]]
    assert [[str(r["week_id"]), repr(r["avg_temp"]), str(r["avg_co"]), str(r["avg_humidity"])] for r in rows] == expected
    assert csv.read_text() == expected_weekly_csv(values)


def test_demo_with_an_s3_lake(tributary_bin, moto, tmp_path):
    s3 = s3_client(moto)
    s3.create_bucket(Bucket="weather-lake")
    data = tmp_path / "demo"
    proc = tributary(tributary_bin, "demo", "--data-dir", data, "--days", 140, "--lake", "s3://weather-lake/tutorial",
                     env=aws_env(tmp_path, moto), timeout=180)
    body = s3.get_object(Bucket="weather-lake", Key="tutorial/weather_aggregation.csv")["Body"].read().decode()
    lines = body.splitlines()
    assert lines[0] == "week_id,avg_temp,avg_co,avg_humidity" and len(lines) == 1 + 20
    assert "s3://weather-lake/tutorial/weather_aggregation.csv" in proc.stdout
    cp = json.loads(s3.get_object(Bucket="weather-lake", Key="tutorial/weather_aggregation.csv.checkpoint.json")["Body"].read())
    assert cp["offsets"] == {"0": 140} and cp["output_length"] == len(body.encode())
    # No reprocess leftovers in the lake.
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="weather-lake")["Contents"]]
    assert sorted(keys) == ["tutorial/weather_aggregation.csv", "tutorial/weather_aggregation.csv.checkpoint.json"]
