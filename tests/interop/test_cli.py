"""The tributary CLI as a user runs it: admin subcommands over the wire, and clear,
one-line errors with a non-zero exit for bad input."""
import subprocess

import pytest


def run(bin_path, *args, timeout=30):
    return subprocess.run([bin_path, *args], capture_output=True, text=True, timeout=timeout)


def test_topics_lifecycle(broker, tributary_bin):
    bs = ["--bootstrap-server", broker.bootstrap]
    r = run(tributary_bin, "topics", "create", "cli-weather", "--partitions", "3", "--config", "retention.ms=86400000", *bs)
    assert r.returncode == 0, r.stderr
    r = run(tributary_bin, "topics", "create", "cli-weather", *bs)
    assert r.returncode != 0
    assert "TOPIC_ALREADY_EXISTS" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert run(tributary_bin, "topics", "create", "cli-weather", "--if-not-exists", *bs).returncode == 0
    r = run(tributary_bin, "topics", "list", *bs)
    assert r.stdout.split() == ["cli-weather"]
    r = run(tributary_bin, "topics", "alter", "cli-weather", "--partitions", "5", "--config", "retention.bytes=1000000", *bs)
    assert r.returncode == 0, r.stderr
    r = run(tributary_bin, "topics", "describe", "cli-weather", *bs)
    assert "PartitionCount: 5" in r.stdout
    assert "retention.ms=86400000" in r.stdout and "retention.bytes=1000000" in r.stdout
    assert r.stdout.count("\tPartition: ") == 5
    r = run(tributary_bin, "topics", "delete", "cli-weather", *bs)
    assert r.returncode == 0, r.stderr
    assert run(tributary_bin, "topics", "list", *bs).stdout.strip() == ""


@pytest.mark.parametrize("args, needle", [
    (["topics", "create", "x", "--replication-factor", "3"], "single-node"),
    (["topics", "create", "x", "--config", "retention.ms=soon"], "retention.ms"),
    (["topics", "create", "bad/name"], "INVALID_TOPIC_EXCEPTION"),
    (["topics", "delete", "missing"], "UNKNOWN_TOPIC_OR_PARTITION"),
    (["topics", "alter", "x"], "nothing to alter"),
])
def test_admin_errors_are_one_line(broker, tributary_bin, args, needle):
    r = run(tributary_bin, *args, "--bootstrap-server", broker.bootstrap)
    assert r.returncode != 0
    assert needle in r.stderr, r.stderr


def test_unreachable_broker_is_a_clear_error(tributary_bin):
    r = run(tributary_bin, "topics", "list", "--bootstrap-server", "127.0.0.1:1")
    assert r.returncode != 0
    assert "127.0.0.1:1" in r.stderr


def test_serve_rejects_an_invalid_properties_value(tributary_bin, tmp_path):
    props = tmp_path / "server.properties"
    props.write_text("num.partitions=lots\n")
    r = run(tributary_bin, "serve", "--config", str(props), "--data-dir", str(tmp_path / "d"), "--listen", "127.0.0.1:0", timeout=15)
    assert r.returncode != 0
    assert "num.partitions" in r.stderr
    assert len([l for l in r.stderr.splitlines() if l.strip()]) <= 2


def test_serve_rejects_a_bad_listen_address(tributary_bin, tmp_path):
    r = run(tributary_bin, "serve", "--listen", "nowhere", "--data-dir", str(tmp_path / "d"), timeout=15)
    assert r.returncode != 0
    assert "HOST:PORT" in r.stderr
