"""Runs tutorial_harness.main() with kafka-python's network replaced by fakes,
so the harness and the expected-output code can be checked without a broker
(test_harness_selfcheck.py).

    python3 fake_kafka_driver.py [harness args...]

Env: FAKE_VALUES: a JSON-lines file of {"value": "..."} the fake consumer
yields in order (then StopIteration). FAKE_ASSIGN_AFTER_POLLS: how many
poll() calls before the fake consumer reports an assignment (default 3).

The fake consumer's seek_to_beginning() raises like kafka-python's when no
partition is assigned yet, so the harness's wait-for-assignment is exercised.
"""

from __future__ import annotations

import json
import os
import sys
from collections import namedtuple

import kafka
from kafka import TopicPartition

Meta = namedtuple("Meta", "topic partition offset")
Msg = namedtuple("Msg", "topic partition offset key value headers")


def _bootstrap_from_argv() -> list:
    argv = sys.argv[1:]
    return [argv[argv.index("--bootstrap") + 1]]


EXPECTED_SERVERS = _bootstrap_from_argv()


class _Future:
    def __init__(self, md):
        self._md = md

    def get(self, timeout=None):
        return self._md


def _check_servers(kwargs):
    got = kwargs.get("bootstrap_servers")
    if got != EXPECTED_SERVERS:
        raise AssertionError(f"bootstrap_servers not redirected: {got!r} != {EXPECTED_SERVERS!r}")


# -- producer ------------------------------------------------------------------

def p_init(self, **kwargs):
    _check_servers(kwargs)
    self._fake_next_offset = 0


def p_send(self, topic, value=None, key=None, headers=None, partition=None, timestamp_ms=None):
    md = Meta(topic, 0, self._fake_next_offset)
    self._fake_next_offset += 1
    return _Future(md)


kafka.KafkaProducer.__init__ = p_init
kafka.KafkaProducer.send = p_send
kafka.KafkaProducer.flush = lambda self, timeout=None: None
kafka.KafkaProducer.close = lambda self, timeout=None, null_logger=False: None


# -- consumer ------------------------------------------------------------------

def _values():
    path = os.environ.get("FAKE_VALUES")
    if not path:
        return []
    with open(path, encoding="utf-8") as f:
        return [json.loads(l)["value"] for l in f if l.strip()]


def c_init(self, *topics, **kwargs):
    _check_servers(kwargs)
    self._fake_topic = topics[0] if topics else "weather"
    self._fake_values = _values()
    self._fake_polls = 0
    self._fake_assign_after = int(os.environ.get("FAKE_ASSIGN_AFTER_POLLS", "3"))
    self._fake_pos = 0


def c_assignment(self):
    if self._fake_polls >= self._fake_assign_after:
        return {TopicPartition(self._fake_topic, 0)}
    return set()


def c_poll(self, timeout_ms=0, max_records=None, update_offsets=True):
    self._fake_polls += 1
    return {}


def c_seek_to_beginning(self, *partitions):
    if not partitions and not c_assignment(self):
        raise ValueError("No partitions are currently assigned")
    self._fake_pos = 0


def c_next(self):
    if self._fake_pos >= len(self._fake_values):
        raise StopIteration()
    v = self._fake_values[self._fake_pos]
    msg = Msg(self._fake_topic, 0, self._fake_pos, None, v.encode(), [])
    self._fake_pos += 1
    return msg


kafka.KafkaConsumer.__init__ = c_init
kafka.KafkaConsumer.assignment = c_assignment
kafka.KafkaConsumer.poll = c_poll
kafka.KafkaConsumer.seek_to_beginning = c_seek_to_beginning
kafka.KafkaConsumer.__next__ = c_next
kafka.KafkaConsumer.close = lambda self, autocommit=True, timeout_ms=None: None

if __name__ == "__main__":
    import tutorial_harness
    sys.exit(tutorial_harness.main(sys.argv[1:]))
