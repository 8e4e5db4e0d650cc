"""Tiered storage with real clients (issue 7): history deleted from the broker's disk is
replayed from the object store, on a local directory and on S3 (moto, through a proxy that
injects 503s), and a broker killed during uploads leaves the store consistent."""
import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import boto3
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from kafka import KafkaConsumer, TopicPartition as KTopicPartition
from kafka.admin import KafkaAdminClient, NewTopic

from conftest import free_port, port_accepts

REPO = Path(__file__).resolve().parents[2]
FAULT_PROXY = REPO / "Tests" / "ObjectStoreTests" / "fault_proxy.py"
BASE_TS = 1_700_000_000_000
TOPIC = "readings"


def tier_props(tmp_path):
    props = tmp_path / "server.properties"
    props.write_text("remote.log.manager.task.interval.ms=100\n"
                     "log.retention.check.interval.ms=200\n")
    return str(props)


def create_tiered_topic(bootstrap, segment_bytes=262144):
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic(TOPIC, 1, 1, topic_configs={
        "remote.storage.enable": "true",
        "segment.bytes": str(segment_bytes),
        "local.retention.bytes": "1",
        "retention.ms": "-1",
    })])
    admin.close()


def produce(bootstrap, count):
    """`count` JSON records, record i stamped BASE_TS + i ms, acks=all (fsynced)."""
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5})
    for i in range(count):
        p.produce(TOPIC, json.dumps({"record_id": i, "temperature": round(i % 450 / 10 - 10, 1)}).encode(),
                  timestamp=BASE_TS + i)
        if i % 10000 == 0:
            p.poll(0)
    assert p.flush(60) == 0


def local_segments(broker):
    return sorted((broker.data_dir / f"{TOPIC}-0").glob("*.log"))


def wait_tiered(broker, manifest_reader, count, timeout=90):
    """Until the store's manifest covers everything but the active segment and the
    disk holds only that segment."""
    deadline = time.monotonic() + timeout
    manifest = None
    while time.monotonic() < deadline:
        manifest = manifest_reader()
        segs = local_segments(broker)
        if manifest and manifest["segments"] and len(segs) == 1 \
                and manifest["segments"][-1]["nextOffset"] == int(segs[0].stem):
            return manifest
        time.sleep(0.2)
    pytest.fail(f"tiering did not finish: local {[s.name for s in local_segments(broker)]}, "
                f"manifest {manifest and [(s['baseOffset'], s['nextOffset']) for s in manifest['segments']]}")


def check_manifest(manifest, count):
    segs = manifest["segments"]
    assert segs[0]["baseOffset"] == 0
    for a, b in zip(segs, segs[1:]):
        assert a["nextOffset"] == b["baseOffset"], "manifest segments must be contiguous"
    assert segs[-1]["nextOffset"] <= count


def read_kafka_python(bootstrap, count):
    c = KafkaConsumer(TOPIC, bootstrap_servers=bootstrap, group_id="kp-" + uuid.uuid4().hex[:6],
                      auto_offset_reset="earliest", consumer_timeout_ms=20000, enable_auto_commit=False)
    out = []
    for m in c:
        out.append((m.offset, json.loads(m.value)["record_id"], m.timestamp))
        if len(out) == count:
            break
    c.close()
    return out


def read_confluent(bootstrap, count):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "ck-" + uuid.uuid4().hex[:6],
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    c.subscribe([TOPIC])
    out, deadline = [], time.monotonic() + 60
    while len(out) < count and time.monotonic() < deadline:
        m = c.poll(0.5)
        if m is None or m.error():
            continue
        out.append((m.offset(), json.loads(m.value())["record_id"], m.timestamp()[1]))
    c.close()
    return out


def assert_full_replay(bootstrap, count):
    expected = [(i, i, BASE_TS + i) for i in range(count)]
    assert read_kafka_python(bootstrap, count) == expected
    assert read_confluent(bootstrap, count) == expected


def assert_time_lookup(bootstrap, target):
    """ListOffsets by timestamp on offsets that are only in the store."""
    c = KafkaConsumer(bootstrap_servers=bootstrap)
    tp = KTopicPartition(TOPIC, 0)
    found = c.offsets_for_times({tp: BASE_TS + target})[tp]
    c.close()
    assert found.offset == target and found.timestamp == BASE_TS + target


def test_replay_from_offset_zero_reads_tiered_history_from_a_local_directory(broker_factory, tmp_path):
    store = tmp_path / "lake"
    broker = broker_factory(extra_args=("--tier-to", f"file://{store}", "--config", tier_props(tmp_path)))
    create_tiered_topic(broker.bootstrap)
    count = 100_000
    produce(broker.bootstrap, count)

    def manifest():
        found = list(store.glob(f"{TOPIC}-*/0/manifest.json"))
        return json.loads(found[0].read_text()) if found else None

    m = wait_tiered(broker, manifest, count)
    check_manifest(m, count)
    assert m["segments"][-1]["nextOffset"] > count // 2, "most of the history should be tiered"
    assert int(local_segments(broker)[0].stem) > 0, "offset 0 must be gone from the disk"
    assert_full_replay(broker.bootstrap, count)
    assert_time_lookup(broker.bootstrap, 1234)

    # `topics describe` shows what is in the store and what waits for upload.
    out = subprocess.run([str(broker.binary), "topics", "describe", TOPIC, "--bootstrap-server", broker.bootstrap],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert "Tiered:" in out.stdout and f"segments={len(m['segments'])}" in out.stdout, out.stdout


@pytest.fixture
def s3_proxy(moto, tmp_path, monkeypatch):
    """moto behind the fault proxy; the broker's AWS settings point at the proxy."""
    upstream = int(moto.rsplit(":", 1)[1])
    port_file = tmp_path / "proxy.port"
    proc = subprocess.Popen([sys.executable, str(FAULT_PROXY), str(upstream), str(port_file)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 15
        while not (port_file.exists() and port_file.read_text().strip()):
            assert time.monotonic() < deadline, "fault proxy did not start"
            time.sleep(0.05)
        port = int(port_file.read_text())
        endpoint = f"http://127.0.0.1:{port}"
        for k, v in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                     "AWS_REGION": "us-east-1", "AWS_ENDPOINT_URL": endpoint}.items():
            monkeypatch.setenv(k, v)
        monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
        s3 = boto3.client("s3", endpoint_url=moto, region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
        s3.create_bucket(Bucket="lake")
        yield endpoint, s3
    finally:
        proc.kill()
        proc.wait()


def arm(endpoint, faults, match=None):
    import urllib.request
    body = json.dumps({"faults": faults, "match": match}).encode()
    urllib.request.urlopen(urllib.request.Request(endpoint + "/__faults__", data=body, method="POST"), timeout=5).read()


def faults_state(endpoint):
    import urllib.request
    return json.loads(urllib.request.urlopen(endpoint + "/__faults__", timeout=5).read())


def test_replay_from_s3_after_a_period_of_503s_during_upload(broker_factory, tmp_path, s3_proxy):
    endpoint, s3 = s3_proxy
    url = f"s3://lake/tiered?addressing=path"
    broker = broker_factory(extra_args=("--tier-to", url, "--config", tier_props(tmp_path)))
    create_tiered_topic(broker.bootstrap)
    # The first uploads meet a run of 503 SlowDown answers (more than one call's retry budget).
    arm(endpoint, ["503"] * 12, match="PUT")
    count = 100_000
    produce(broker.bootstrap, count)

    def manifest():
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket="lake", Prefix="tiered/").get("Contents", [])
                if o["Key"].endswith("/0/manifest.json")]
        return json.loads(s3.get_object(Bucket="lake", Key=keys[0])["Body"].read()) if keys else None

    m = wait_tiered(broker, manifest, count)
    assert faults_state(endpoint)["injected"] == 12
    check_manifest(m, count)
    # Every segment in the manifest is in the bucket whole.
    objects = {o["Key"]: o["Size"] for o in s3.list_objects_v2(Bucket="lake", Prefix="tiered/readings-").get("Contents", [])}
    for seg in m["segments"]:
        key = [k for k in objects if k.endswith(f"/0/{seg['baseOffset']:020d}.log")]
        assert len(key) == 1 and objects[key[0]] == seg["sizeInBytes"]
    assert_full_replay(broker.bootstrap, count)
    assert_time_lookup(broker.bootstrap, 777)


def test_sigkill_during_uploads_leaves_nothing_lost_or_duplicated(broker_factory, tmp_path):
    store = tmp_path / "lake"
    broker = broker_factory(extra_args=("--tier-to", f"file://{store}", "--config", tier_props(tmp_path)))
    create_tiered_topic(broker.bootstrap, segment_bytes=32768)
    count = 40_000
    produce(broker.bootstrap, count)
    rng = random.Random(7)
    # Kill it repeatedly while it uploads (each start resumes where the manifest ends).
    for _ in range(5):
        time.sleep(rng.uniform(0.05, 0.4))
        broker.kill()
        broker.start()

    def manifest():
        found = list(store.glob(f"{TOPIC}-*/0/manifest.json"))
        return json.loads(found[0].read_text()) if found else None

    m = wait_tiered(broker, manifest, count)
    check_manifest(m, count)
    # After a restart the store holds exactly the manifest's segments: no partial leftovers.
    broker.kill()
    broker.start()
    m = wait_tiered(broker, manifest, count)
    part = next(store.glob(f"{TOPIC}-*/0"))
    bases = sorted({p.name.split(".")[0] for p in part.iterdir() if p.name != "manifest.json"})
    assert bases == [f"{s['baseOffset']:020d}" for s in m["segments"]]
    for s in m["segments"]:
        assert (part / f"{s['baseOffset']:020d}.log").stat().st_size == s["sizeInBytes"]
    assert_full_replay(broker.bootstrap, count)


def test_a_broker_on_an_empty_data_dir_serves_the_tiered_history(broker_factory, tmp_path):
    store = tmp_path / "lake"
    first = broker_factory(name="first", extra_args=("--tier-to", f"file://{store}", "--config", tier_props(tmp_path)))
    create_tiered_topic(first.bootstrap, segment_bytes=65536)
    count = 20_000
    produce(first.bootstrap, count)

    def manifest():
        found = list(store.glob(f"{TOPIC}-*/0/manifest.json"))
        return json.loads(found[0].read_text()) if found else None

    m = wait_tiered(first, manifest, count)
    tiered = m["segments"][-1]["nextOffset"]
    first.stop()
    second = broker_factory(name="second", extra_args=("--tier-to", f"file://{store}", "--config", tier_props(tmp_path)))
    got = read_kafka_python(second.bootstrap, tiered)
    assert got == [(i, i, BASE_TS + i) for i in range(tiered)]
