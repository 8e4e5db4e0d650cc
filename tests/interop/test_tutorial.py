"""The tutorial's own scripts (../shared/seed), run unmodified against Tributary.

Each script runs in a subprocess under tutorial_harness.py (which redirects
bootstrap_servers, stubs the script's time.sleep and stops after N records).
Expected outputs are computed here from the values the producer actually sent,
following the README's rules and Python's own semantics; the scripts are never
imported.
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import boto3

from tutorial_harness import run_script

N = 210  # 7 "months" of 30 records, 30 "weeks" of 7
TOPIC = "weather"
BUCKET = "s3-bucket_name"
CSV_KEY = "weather_aggregation.csv"


# --- expected outputs, computed independently of the scripts ------------------

def _rows(values):
    return [json.loads(v) for v in values]


def _avg(xs):
    # Python's sum over floats, in record order, divided by the count: what
    # the tutorial's consumers compute.
    return sum(xs) / len(xs)


def expected_monthly_text(values, per: int = 30) -> str:
    """weather_aggregation.txt: 'month_id,avg_temp,avg_co,avg_humidity,' per
    complete month, all on one line, comma-terminated, no newline."""
    rows = _rows(values)
    out = []
    for m in range(len(rows) // per):
        chunk = rows[m * per:(m + 1) * per]
        avg_temp = round(_avg([r["temperature"] for r in chunk]), 1)
        avg_co = round(_avg([r["CO_concentration"] for r in chunk]))
        avg_hum = round(_avg([r["humidity"] for r in chunk]))
        out.append(f"{m + 1},{avg_temp},{avg_co},{avg_hum},")
    return "".join(out)


def expected_weekly_csv(values, per: int = 7) -> str:
    """weather_aggregation.csv: header, then one row per complete week with the
    temperature in Fahrenheit as round(avg * 1.8, 1) + 32."""
    rows = _rows(values)
    weeks = len(rows) // per
    if weeks == 0:
        return ""
    lines = ["week_id,avg_temp,avg_co,avg_humidity"]
    for w in range(weeks):
        chunk = rows[w * per:(w + 1) * per]
        avg_temp = round(_avg([r["temperature"] for r in chunk]) * 1.8, 1) + 32
        avg_co = round(_avg([r["CO_concentration"] for r in chunk]))
        avg_hum = round(_avg([r["humidity"] for r in chunk]))
        lines.append(f"{w + 1},{avg_temp},{avg_co},{avg_hum}")
    return "\n".join(lines) + "\n"


def check_weather_walk(values, n: int) -> None:
    """The producer's values: record_id 1..n, bounded random walks."""
    rows = _rows(values)
    assert [r["record_id"] for r in rows] == list(range(1, n + 1))
    for r in rows:
        assert set(r) == {"record_id", "temperature", "CO_concentration", "humidity"}, r
        assert -10 <= r["temperature"] <= 35 and round(r["temperature"], 1) == r["temperature"], r
        assert isinstance(r["humidity"], int) and 1 <= r["humidity"] <= 100, r
        assert isinstance(r["CO_concentration"], int) and 50 <= r["CO_concentration"] <= 1500, r
    for a, b in zip(rows, rows[1:]):
        assert abs(b["temperature"] - a["temperature"]) <= 5.05 + 1e-9, (a, b)
        assert abs(b["humidity"] - a["humidity"]) <= 20, (a, b)
        assert abs(b["CO_concentration"] - a["CO_concentration"]) <= 100, (a, b)


# --- helpers -----------------------------------------------------------------

def produce_with_tutorial(seed_dir: Path, broker, workdir: Path, n: int = N):
    res = run_script(seed_dir / "producer.py", broker.bootstrap, n, workdir / "producer",
                     timeout=45)
    assert res.returncode == 0, res.describe()
    produced = [r for r in res.records if r["kind"] == "produced"]
    assert len(produced) == n, res.describe()
    assert {r["topic"] for r in produced} == {TOPIC}
    assert {r["partition"] for r in produced} == {0}, (
        "the tutorial assumes topic 'weather' is auto-created with one partition")
    assert [r["offset"] for r in produced] == list(range(n)), [r["offset"] for r in produced][:20]
    # the script's own one-second sleeps were stubbed (none after the last flush)
    assert res.summary.get("script_sleeps") == n - 1, res.describe()
    return [r["value"] for r in produced]


def read_topic_kafka_python(bootstrap: str, topic: str, expected: int, timeout: float = 20.0):
    """All records of partition 0 from the beginning, no group."""
    from kafka import KafkaConsumer, TopicPartition
    c = KafkaConsumer(bootstrap_servers=[bootstrap], group_id=None, enable_auto_commit=False,
                      auto_offset_reset="earliest", consumer_timeout_ms=1000)
    try:
        tp = TopicPartition(topic, 0)
        c.assign([tp])
        c.seek_to_beginning(tp)
        out = []
        deadline = time.monotonic() + timeout
        while len(out) < expected and time.monotonic() < deadline:
            for recs in c.poll(timeout_ms=500).values():
                out.extend(recs)
        return out
    finally:
        c.close()


def aws_env(tmp_path: Path, endpoint: str) -> dict:
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
    }


def s3_client(endpoint: str):
    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")


# --- tests -------------------------------------------------------------------

def test_producer_script_writes_weather(broker, seed_dir, tmp_path):
    values = produce_with_tutorial(seed_dir, broker, tmp_path)
    check_weather_walk(values, N)
    # What the broker stores is what the script sent, at the offsets it was told.
    got = read_topic_kafka_python(broker.bootstrap, TOPIC, N)
    assert [m.offset for m in got] == list(range(N))
    assert [m.value.decode() for m in got] == values
    assert all(m.key is None for m in got)


def test_monthly_consumer_script(broker, seed_dir, tmp_path):
    values = produce_with_tutorial(seed_dir, broker, tmp_path)
    work = tmp_path / "monthly"
    res = run_script(seed_dir / "consumer_monthly.py", broker.bootstrap, N, work, timeout=45)
    assert res.returncode == 0, res.describe()
    assert res.values("consumed") == values, res.describe()
    text = (work / "weather_aggregation.txt").read_text()
    expected = expected_monthly_text(values)
    assert text.count(",") == 4 * (N // 30)
    assert text == expected


def test_monthly_consumer_runs_alongside_producer(broker, seed_dir, tmp_path):
    """The tutorial's setup: the consumer waits on the topic while the station
    produces (the consumer starts before the topic exists)."""
    n = 60
    with ThreadPoolExecutor(max_workers=1) as ex:
        fut = ex.submit(lambda: run_script(seed_dir / "consumer_monthly.py", broker.bootstrap,
                                           n, tmp_path / "monthly", timeout=45))
        time.sleep(1.5)
        values = produce_with_tutorial(seed_dir, broker, tmp_path, n)
        res = fut.result(timeout=60)
    assert res.returncode == 0, res.describe()
    assert res.values("consumed") == values, res.describe()
    assert (tmp_path / "monthly" / "weather_aggregation.txt").read_text() == \
        expected_monthly_text(values)


def test_weekly_consumer_replays_from_beginning_to_s3(broker, seed_dir, moto, tmp_path):
    """The changed business logic: after the monthly consumer has read the whole
    topic, the weekly consumer seeks to the beginning and rebuilds everything,
    writing a CSV and putting it to S3 after each row."""
    values = produce_with_tutorial(seed_dir, broker, tmp_path)

    monthly = run_script(seed_dir / "consumer_monthly.py", broker.bootstrap, N,
                         tmp_path / "monthly", timeout=45)
    assert monthly.returncode == 0, monthly.describe()

    s3 = s3_client(moto)
    s3.create_bucket(Bucket=BUCKET)  # moto accepts the tutorial's underscore name

    work = tmp_path / "weekly"
    res = run_script(seed_dir / "consumer_weekly.py", broker.bootstrap, N, work,
                     env=aws_env(tmp_path, moto), timeout=50)
    assert res.returncode == 0, res.describe()
    assert res.values("consumed") == values, res.describe()

    csv_text = (work / "weather_aggregation.csv").read_text()
    expected = expected_weekly_csv(values)
    assert len(csv_text.splitlines()) == 1 + N // 7
    assert csv_text == expected

    body = s3.get_object(Bucket=BUCKET, Key=CSV_KEY)["Body"].read()
    assert body == (work / "weather_aggregation.csv").read_bytes()
