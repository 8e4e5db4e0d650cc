"""`tributary lake export`: topics to Parquet, CSV and JSON lines, read by DuckDB and pyarrow.

The weather records are made as the tutorial's producer (../shared/seed/producer.py) makes
them, sent with kafka-python; exports go to a local directory and to moto's S3. Every
exporter process is stopped by its PID.
"""

from __future__ import annotations

import glob
import json
import os
import random
import signal
import subprocess
import time
from pathlib import Path

import boto3
import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from kafka import KafkaConsumer, KafkaProducer

N_WEATHER = 100_000


def weather_records(n: int, seed: int = 7) -> list[dict]:
    """The tutorial producer's random walk, without its one-per-second sleep."""
    rnd = random.Random(seed)
    prev_temp = round(rnd.uniform(-10, 35), 1)
    prev_humidity = rnd.randint(1, 100)
    prev_co = rnd.randint(50, 1500)
    out = []
    for i in range(1, n + 1):
        temperature = round(rnd.uniform(max(-10, prev_temp - 5), min(35, prev_temp + 5)), 1)
        humidity = rnd.randint(max(1, prev_humidity - 20), min(100, prev_humidity + 20))
        co = rnd.randint(max(50, prev_co - 100), min(1500, prev_co + 100))
        out.append({"record_id": i, "temperature": temperature, "CO_concentration": co, "humidity": humidity})
        prev_temp, prev_humidity, prev_co = temperature, humidity, co
    return out


def produce(bootstrap: str, topic: str, values: list, partition: int | None = None, keys: bool = False) -> None:
    p = KafkaProducer(bootstrap_servers=[bootstrap], linger_ms=20, batch_size=256 * 1024, acks="all")
    for i, v in enumerate(values):
        body = v if isinstance(v, bytes) else json.dumps(v).encode()
        p.send(topic, value=body, partition=partition, key=(f"k{i}".encode() if keys else None))
    p.flush(timeout=120)
    p.close()


def create_topic(tributary_bin, bootstrap: str, topic: str, partitions: int = 1) -> None:
    r = subprocess.run([str(tributary_bin), "topics", "create", topic, "--partitions", str(partitions),
                        "--bootstrap-server", bootstrap], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr


def export(tributary_bin, bootstrap: str, topic: str, to: str, *args: str, env=None, timeout=300) -> subprocess.CompletedProcess:
    r = subprocess.run([str(tributary_bin), "lake", "export", topic, "--to", to, "--bootstrap-server", bootstrap, *args],
                       capture_output=True, text=True, timeout=timeout, env=env)
    assert r.returncode == 0, f"exit {r.returncode}\nstdout:\n{r.stdout}\nstderr:\n{r.stderr}"
    return r


def weekly_expected(records: list[dict]) -> list[tuple]:
    """Averages of each complete group of 7 records, in record order (consumer_weekly.py's weeks)."""
    out = []
    for w in range(len(records) // 7):
        week = records[w * 7:(w + 1) * 7]
        out.append((w, sum(r["temperature"] for r in week) / 7, sum(r["CO_concentration"] for r in week) / 7,
                    sum(r["humidity"] for r in week) / 7))
    return out


def check_weather_parquet(root: Path, records: list[dict]) -> None:
    files = sorted(glob.glob(str(root / "weather" / "**" / "*.parquet"), recursive=True))
    assert files, f"no parquet files under {root}"
    con = duckdb.connect()
    rows = con.execute(f"""
        SELECT _offset // 7 AS week, avg(temperature), avg(CO_concentration), avg(humidity)
        FROM read_parquet({files!r}) GROUP BY week HAVING count(*) = 7 ORDER BY week""").fetchall()
    expected = weekly_expected(records)
    assert len(rows) == len(expected)
    for got, want in zip(rows, expected):
        assert got[0] == want[0]
        for g, w in zip(got[1:], want[1:]):
            assert abs(g - w) < 1e-9, (got, want)
    # pyarrow: types and null counts of every column, over every file.
    tables = [pq.read_table(f) for f in files]
    schema = {f.name: str(f.type) for f in tables[0].schema}
    assert schema == {"_topic": "string", "_partition": "int64", "_offset": "int64", "_timestamp": "timestamp[ms, tz=UTC]",
                      "_key": "string", "record_id": "int64", "temperature": "double", "CO_concentration": "int64",
                      "humidity": "int64"}, schema
    t = pa.concat_tables(tables)
    assert t.num_rows == len(records)
    nulls = {name: t.column(name).null_count for name in t.column_names}
    assert nulls == {name: (len(records) if name == "_key" else 0) for name in t.column_names}, nulls
    for f in files:
        md = pq.ParquetFile(f).metadata
        for g in range(md.num_row_groups):
            for c in range(md.num_columns):
                s = md.row_group(g).column(c).statistics
                assert s is not None and s.has_null_count
    assert sorted(t.column("_offset").to_pylist()) == list(range(len(records)))
    assert t.sort_by("_offset").column("temperature").to_pylist() == [r["temperature"] for r in records]


def check_weather_csv_jsonl(root: Path, records: list[dict]) -> None:
    con = duckdb.connect()
    want_sum = sum(r["temperature"] for r in records)
    for fmt, reader in (("csv", "read_csv"), ("jsonl", "read_json")):
        files = sorted(glob.glob(str(root / "weather" / "**" / f"*.{fmt}"), recursive=True))
        assert files, f"no {fmt} files"
        n, s, co, first = con.execute(f"""SELECT count(*), sum(temperature), sum(CO_concentration), min(record_id)
                                          FROM {reader}({files!r})""").fetchone()
        assert n == len(records) and first == 1
        assert abs(s - want_sum) < 1e-6
        assert co == sum(r["CO_concentration"] for r in records)


@pytest.fixture
def s3_env(moto, tmp_path):
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1",
           "AWS_ENDPOINT_URL": moto, "AWS_CONFIG_FILE": str(tmp_path / "no-config"),
           "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-credentials")}
    env.pop("AWS_SESSION_TOKEN", None)
    s3 = boto3.client("s3", endpoint_url=moto, region_name="us-east-1", aws_access_key_id="testing",
                      aws_secret_access_key="testing")
    s3.create_bucket(Bucket="lake")
    return env, s3


def download(s3, bucket: str, prefix: str, into: Path) -> list[str]:
    keys = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for o in page.get("Contents", []):
            keys.append(o["Key"])
            path = into / o["Key"][len(prefix):].lstrip("/")
            path.parent.mkdir(parents=True, exist_ok=True)
            s3.download_file(bucket, o["Key"], str(path))
    return keys


def test_weather_topic_to_parquet_csv_jsonl_locally_and_on_s3(tributary_bin, broker, s3_env, tmp_path):
    env, s3 = s3_env
    records = weather_records(N_WEATHER)
    create_topic(tributary_bin, broker.bootstrap, "weather")
    produce(broker.bootstrap, "weather", records)

    local = tmp_path / "lake"
    for fmt in ("parquet", "csv", "jsonl"):
        r = export(tributary_bin, broker.bootstrap, "weather", f"file://{local}", "--format", fmt, "--from-beginning",
                   "--max-rows", "30000")
        assert f"exported {N_WEATHER} records of weather to 4 file(s)" in r.stdout, r.stdout
        manifest = json.loads((local / "weather" / f"_manifest.{fmt}.json").read_text())
        assert manifest["nextOffsets"] == {"0": N_WEATHER}
        assert [(o["firstOffset"], o["lastOffset"]) for o in manifest["objects"]] == \
            [(0, 29999), (30000, 59999), (60000, 89999), (90000, 99999)]
        assert sorted(p.name for p in (local / "weather").glob(f"*.{fmt}")) == \
            sorted(f"part-0-{a}-{b}.{fmt}" for a, b in [(0, 29999), (30000, 59999), (60000, 89999), (90000, 99999)])
    check_weather_parquet(local, records)
    check_weather_csv_jsonl(local, records)

    for fmt in ("parquet", "csv", "jsonl"):
        export(tributary_bin, broker.bootstrap, "weather", "s3://lake/exports?addressing=path", "--format", fmt,
               "--from-beginning", "--compression", "zstd", "--quiet", env=env)
    fetched = tmp_path / "from-s3"
    keys = download(s3, "lake", "exports", fetched)
    assert "exports/weather/_manifest.parquet.json" in keys
    assert "exports/weather/part-0-0-99999.parquet" in keys
    check_weather_parquet(fetched, records)
    check_weather_csv_jsonl(fetched, records)


def test_sigkill_mid_export_and_restart_loses_and_duplicates_nothing(tributary_bin, broker, tmp_path):
    create_topic(tributary_bin, broker.bootstrap, "crashy", partitions=3)
    produce(broker.bootstrap, "crashy", weather_records(N_WEATHER), keys=True)
    out = tmp_path / "lake"
    args = [str(tributary_bin), "lake", "export", "crashy", "--to", f"file://{out}", "--bootstrap-server", broker.bootstrap,
            "--group", "lake-crash", "--from-beginning", "--max-rows", "1500"]
    # The exporter's temporary files go to $TMPDIR: a killed run leaves some, the next removes them.
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    env = {**os.environ, "TMPDIR": str(scratch)}
    kills = 0
    for wanted_files in (4, 20):
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
        try:
            deadline = time.monotonic() + 120
            while len(list(out.glob("crashy/*.parquet"))) < wanted_files and proc.poll() is None:
                assert time.monotonic() < deadline, "the exporter wrote no files"
                time.sleep(0.01)
        finally:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
                kills += 1
            proc.wait(timeout=30)
    assert kills >= 1, "the export finished before it could be killed: use more records"
    r = subprocess.run(args + ["--quiet"], capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stderr
    assert list(scratch.glob("tributary-lake-*")) == [], "temporary files of killed runs remain"

    files = sorted(out.glob("crashy/*.parquet"))
    t = pa.concat_tables([pq.read_table(f) for f in files])
    pairs = sorted(zip(t.column("_partition").to_pylist(), t.column("_offset").to_pylist()))
    assert len(pairs) == len(set(pairs)), "duplicate rows"
    assert len(pairs) == N_WEATHER, f"{N_WEATHER - len(pairs)} records missing"
    for p in range(3):
        offsets = [o for q, o in pairs if q == p]
        assert offsets == list(range(len(offsets))), f"gap in partition {p}"
    # Every file on disk is in the manifest, and the group committed the ends.
    manifest = json.loads((out / "crashy" / "_manifest.parquet.json").read_text())
    assert sorted(o["key"] for o in manifest["objects"]) == sorted(f"crashy/{f.name}" for f in files)
    c = KafkaConsumer(bootstrap_servers=[broker.bootstrap], group_id="lake-crash", enable_auto_commit=False)
    from kafka import TopicPartition
    ends = c.end_offsets([TopicPartition("crashy", p) for p in range(3)])
    for tp, end in ends.items():
        assert c.committed(tp) == end
    c.close()


def test_follow_rolls_a_file_after_idle_roll_on_a_quiet_topic(tributary_bin, broker, tmp_path):
    create_topic(tributary_bin, broker.bootstrap, "quiet")
    produce(broker.bootstrap, "quiet", [{"n": i} for i in range(10)])
    out = tmp_path / "lake"
    proc = subprocess.Popen([str(tributary_bin), "lake", "export", "quiet", "--to", f"file://{out}", "--bootstrap-server",
                             broker.bootstrap, "--from-beginning", "--follow", "--idle-roll", "1s", "--format", "jsonl"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        def wait_for(name: str) -> None:
            start = time.monotonic()
            while not (out / "quiet" / name).exists():
                assert proc.poll() is None, proc.stderr.read()
                assert time.monotonic() - start < 60, f"{name} never appeared"
                time.sleep(0.05)

        # Nothing rolls these files but the idle timeout: max rows and bytes are far away.
        wait_for("part-0-0-9.jsonl")
        produce(broker.bootstrap, "quiet", [{"n": i} for i in range(10, 15)])
        wait_for("part-0-10-14.jsonl")
        assert sorted(p.name for p in (out / "quiet").glob("*.jsonl")) == ["part-0-0-9.jsonl", "part-0-10-14.jsonl"]
        lines = (out / "quiet" / "part-0-10-14.jsonl").read_text().splitlines()
        assert [json.loads(line)["n"] for line in lines] == list(range(10, 15))
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0, stderr
    assert "exported 15 records of quiet to 2 file(s)" in stdout, stdout


def test_schema_widening_and_values_that_are_not_json(tributary_bin, broker, tmp_path):
    create_topic(tributary_bin, broker.bootstrap, "drifty")
    values = [{"n": i, "tag": "a"} for i in range(50)]          # n: int64
    values += [{"n": i + 0.5, "flag": True} for i in range(50)]  # n widens to double; a new column
    values += [b"not json at all", b"[1,2,3]"]
    values += [{"n": "many", "nested": {"x": [1, {"y": None}]}}]  # n widens to string; nested as JSON text
    produce(broker.bootstrap, "drifty", values)
    out = tmp_path / "lake"
    export(tributary_bin, broker.bootstrap, "drifty", f"file://{out}", "--from-beginning", "--max-rows", "40", "--quiet")
    files = sorted(glob.glob(str(out / "drifty" / "*.parquet")))
    con = duckdb.connect()
    rows = con.execute(f"""SELECT _offset, n::VARCHAR, flag, tag, nested, _value FROM read_parquet({files!r}, union_by_name=true)
                           ORDER BY _offset""").fetchall()
    assert [r[0] for r in rows] == list(range(len(values)))
    assert rows[0][1:4] == ("0", None, "a")
    assert float(rows[60][1]) == 10.5 and rows[60][2] is True
    assert rows[100][5] == b"not json at all" and rows[101][5] == b"[1,2,3]"
    assert rows[102][1] == "many" and json.loads(rows[102][4]) == {"x": [1, {"y": None}]}
    # The last file has the widened types; pyarrow reads each file with its own.
    types = {f.name: str(f.type) for f in pq.read_schema(files[-1])}
    assert types["n"] == "string" and types["nested"] == "string" and types["_value"] == "binary"
    assert str(pq.read_schema(files[0]).field("n").type) == "int64"

    # With --dead-letter the odd values go to a topic, with the reason in a header.
    out2 = tmp_path / "lake2"
    r = export(tributary_bin, broker.bootstrap, "drifty", f"file://{out2}", "--from-beginning", "--dead-letter", "drifty-dlq")
    assert "2 value(s) were not JSON objects: sent to drifty-dlq" in r.stdout, r.stdout
    t = pa.concat_tables([pq.read_table(f) for f in glob.glob(str(out2 / "drifty" / "*.parquet"))], promote_options="permissive")
    assert t.num_rows == len(values) - 2 and "_value" not in t.column_names
    c = KafkaConsumer("drifty-dlq", bootstrap_servers=[broker.bootstrap], auto_offset_reset="earliest", consumer_timeout_ms=10000)
    dead = [m for _, m in zip(range(2), c)]
    c.close()
    assert [m.value for m in dead] == [b"not json at all", b"[1,2,3]"]
    headers = dict(dead[0].headers)
    assert headers["tributary.lake.error"].startswith(b"value is not a JSON object")
    assert headers["tributary.lake.source"] == b"drifty/0/100"


def test_bad_arguments_and_missing_topics_fail_with_a_clear_message(tributary_bin, broker, tmp_path):
    def run(*args):
        return subprocess.run([str(tributary_bin), "lake", "export", *args, "--bootstrap-server", broker.bootstrap],
                              capture_output=True, text=True, timeout=60)
    r = run("t", "--to", f"file://{tmp_path}", "--format", "xml")
    assert r.returncode != 0 and "--format must be parquet, csv or jsonl" in r.stderr
    r = run("t", "--to", "ftp://host/x")
    assert r.returncode != 0 and "unsupported scheme 'ftp'" in r.stderr
    r = run("t", "--to", f"file://{tmp_path}", "--idle-roll", "soon")
    assert r.returncode != 0 and "'soon' is not a positive duration" in r.stderr
    r = run("no-such-topic", "--to", f"file://{tmp_path}", "--from-beginning")
    assert r.returncode == 1 and "no-such-topic" in r.stderr, r.stderr
    assert not (tmp_path / "no-such-topic").exists()
