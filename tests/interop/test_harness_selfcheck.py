"""Checks the tutorial harness and the expected-output code without a broker:
the unmodified scripts run under tutorial_harness with kafka-python's network
replaced by fakes (fake_kafka_driver.py), and what they write must equal what
test_tutorial.py computes. Needs moto (for the weekly script's S3 PUT) but no
Tributary binary.
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

import pytest

from test_tutorial import (BUCKET, CSV_KEY, N, aws_env, check_weather_walk,
                           expected_monthly_text, expected_weekly_csv, s3_client)
from tutorial_harness import run_script

HERE = Path(__file__).resolve().parent
FAKE = [sys.executable, str(HERE / "fake_kafka_driver.py")]
FAKE_BOOTSTRAP = "127.0.0.1:1"  # never connected to: the driver checks the redirect only


def write_values(path: Path, values) -> Path:
    path.write_text("".join(json.dumps({"value": v}) + "\n" for v in values))
    return path


def fabricated_values(n: int, seed: int = 7) -> list[str]:
    """Weather JSON with awkward averages: exact .5 halves (round half to even),
    negative temperatures, float sums that are not exact in binary."""
    rnd = random.Random(seed)
    out = []
    for i in range(1, n + 1):
        t = round(rnd.uniform(-10, 35), 1)
        hum = rnd.randint(1, 100)
        co = rnd.randint(50, 1500)
        if i <= 30:  # month 1: humidity sum 75 -> 2.5 -> 2; CO sum 30*60+15 -> 60.5 -> 60
            hum = 2 if i <= 15 else 3
            co = 60 if i <= 15 else 61
            t = -0.1 if i % 2 else 0.05 * 2
        out.append(json.dumps({"record_id": i, "temperature": t,
                               "CO_concentration": co, "humidity": hum}))
    return out


def test_producer_under_harness(seed_dir, tmp_path):
    res = run_script(seed_dir / "producer.py", FAKE_BOOTSTRAP, N, tmp_path / "p",
                     preamble=FAKE, timeout=30)
    assert res.returncode == 0, res.describe()
    assert res.summary["produced"] == N and res.summary["script_sleeps"] == N - 1
    produced = [r for r in res.records if r["kind"] == "produced"]
    assert [r["offset"] for r in produced] == list(range(N))
    check_weather_walk([r["value"] for r in produced], N)


@pytest.mark.parametrize("source", ["producer-script", "fabricated"])
def test_monthly_expected_matches_script(seed_dir, tmp_path, source):
    if source == "producer-script":
        p = run_script(seed_dir / "producer.py", FAKE_BOOTSTRAP, N, tmp_path / "p",
                       preamble=FAKE, timeout=30)
        assert p.returncode == 0, p.describe()
        values = p.values("produced")
    else:
        values = fabricated_values(N + 5)  # 5 extra: only N are consumed
    vals = write_values(tmp_path / "values.jsonl", values)
    work = tmp_path / "monthly"
    res = run_script(seed_dir / "consumer_monthly.py", FAKE_BOOTSTRAP, N, work,
                     preamble=FAKE, env={"FAKE_VALUES": str(vals)}, timeout=30)
    assert res.returncode == 0, res.describe()
    assert res.values("consumed") == values[:N]
    text = (work / "weather_aggregation.txt").read_text()
    assert text == expected_monthly_text(values[:N])
    if source == "fabricated":
        assert text.startswith("1,0.0,60,2,")


def test_monthly_script_ending_early_is_reported(seed_dir, tmp_path):
    vals = write_values(tmp_path / "values.jsonl", fabricated_values(40))
    res = run_script(seed_dir / "consumer_monthly.py", FAKE_BOOTSTRAP, 50, tmp_path / "m",
                     preamble=FAKE, env={"FAKE_VALUES": str(vals)}, timeout=30)
    assert res.returncode == 2, res.describe()
    assert res.summary["consumed"] == 40


@pytest.mark.parametrize("source", ["producer-script", "fabricated"])
def test_weekly_expected_matches_script_and_s3(seed_dir, moto, tmp_path, source):
    if source == "producer-script":
        p = run_script(seed_dir / "producer.py", FAKE_BOOTSTRAP, N, tmp_path / "p",
                       preamble=FAKE, timeout=30)
        assert p.returncode == 0, p.describe()
        values = p.values("produced")
    else:
        values = fabricated_values(N)
    vals = write_values(tmp_path / "values.jsonl", values)
    s3 = s3_client(moto)
    s3.create_bucket(Bucket=BUCKET)
    work = tmp_path / "weekly"
    res = run_script(seed_dir / "consumer_weekly.py", FAKE_BOOTSTRAP, N, work, preamble=FAKE,
                     env={"FAKE_VALUES": str(vals), **aws_env(tmp_path, moto)}, timeout=45)
    assert res.returncode == 0, res.describe()
    # the harness had to poll before seek_to_beginning() could work
    assert res.summary["assignment_polls"] == 3, res.describe()
    assert res.values("consumed") == values
    csv_text = (work / "weather_aggregation.csv").read_text()
    assert csv_text == expected_weekly_csv(values)
    assert len(csv_text.splitlines()) == 1 + N // 7
    assert s3.get_object(Bucket=BUCKET, Key=CSV_KEY)["Body"].read() == csv_text.encode()
