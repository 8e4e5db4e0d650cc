#!/usr/bin/env python3
"""Capture real Kafka client wire bytes as test fixtures for Tributary.

Usage:
    python3 scripts/capture-fixtures/capture.py Tests/KafkaProtocolTests/Fixtures

What it does
------------
* Starts a tiny fake Kafka broker on 127.0.0.1 (a free port, one fresh broker per
  scenario) that logs every raw request frame (without the 4-byte size prefix) and
  answers just enough for real clients to make progress: ApiVersions, Metadata,
  Produce, Fetch, ListOffsets, FindCoordinator, JoinGroup, SyncGroup, Heartbeat,
  LeaveGroup, OffsetCommit, OffsetFetch, InitProducerId, AddPartitionsToTxn, EndTxn.
* Which request versions the clients use is steered by what the fake advertises in
  its ApiVersions response ("profiles" below).
* Runs real clients against it, each in its own subprocess with a hard timeout:
  kafka-python, confluent-kafka (librdkafka) and kcat (Debian's, librdkafka 2.0.2).
* Writes request fixtures  request-<api>-v<version>-<client>.bin (+ .json sidecar)
  and record batch fixtures batch-<client>-<codec>[-<variant>].bin (+ .json sidecar),
  plus manifest.json and README.md describing how every file was made.

Requirements (capture time only, nothing is vendored into the repo):
    pip install kafka-python==3.0.12 confluent-kafka aiokafka python-snappy lz4 zstandard
    apt-get install -y kcat        # optional; kcat fixtures are skipped without it

kafka-python's protocol *schema* classes (kafka.protocol) are used by the fake broker to
decode requests and encode responses; the sidecar JSON of every request is the
schema-decoded request, and each capture is checked by re-encoding the decoded request
and comparing it byte for byte with what the client sent.  Record batches are parsed by
the hand-written parser in this file (and cross-checked against kafka-python's reader).

Only loopback addresses are used.  Every client runs with bounded timeouts and is killed
(its whole process group) if it overruns; the fake broker is shut down after each
scenario.
"""

import argparse
import datetime
import gzip
import json
import os
import platform
import shutil
import signal
import socket
import socketserver
import struct
import subprocess
import sys
import threading
import time
import traceback
import uuid

HOST = '127.0.0.1'
TOPIC = 'fixtures'
TOPIC_ID = uuid.UUID('5f1e7d1c-3b6a-4c2e-9a8b-0123456789ab')
CLUSTER_ID = 'tributary-fixtures'
GROUP_ID = 'tributary-fixtures-group'
TXN_ID = 'tributary-fixtures-txn'
PRODUCER_ID = 4242
PRODUCER_EPOCH = 7
CLIENT_TIMEOUT_S = 60          # hard limit for one client subprocess
KCAT_TIMEOUT_S = 30

# The records every producer scenario sends (all to partition 0 of TOPIC):
# key/value None means null; headers are (str, bytes) pairs.
# Values are repetitive on purpose: both kafka-python and librdkafka silently send a batch
# uncompressed when compressing it would not make it smaller.
RECORDS = [
    {'key': b'key-0', 'value': b'hello tributary ' * 4, 'headers': [('trace-id', b'abc123')]},
    {'key': None, 'value': b'record without a key, ' * 3, 'headers': []},
    {'key': b'key-2', 'value': b'{"n":2,"text":"third","pad":"' + b'x' * 40 + b'"}',
     'headers': [('h1', b'v1'), ('empty', b'')]},
]
# kcat reads "key:value" lines from stdin; it cannot send headers per line.
KCAT_LINES = b'kcat-key-0:kcat value 0\nkcat-key-1:kcat value 1\nkcat-key-2:kcat value 2\n'

API_NAMES = {
    0: 'produce', 1: 'fetch', 2: 'listoffsets', 3: 'metadata', 8: 'offsetcommit',
    9: 'offsetfetch', 10: 'findcoordinator', 11: 'joingroup', 12: 'heartbeat',
    13: 'leavegroup', 14: 'syncgroup', 18: 'apiversions', 22: 'initproducerid',
    24: 'addpartitionstotxn', 26: 'endtxn',
}
REQUIRED_APIS = [18, 3, 0, 1, 11, 8]   # must be captured at an old and a flexible version

# ApiVersions advertised by the fake broker, per profile: {api_key: max_version}.
# "legacy": the table of an Apache Kafka 0.11.0 broker (first release with magic-2 batches).
# "old":    the highest NON-flexible version of every API.
# "flexible": the highest version kafka-python's schemas know (clients then use their max).
PROFILES = {
    'legacy': {0: 3, 1: 5, 2: 2, 3: 4, 8: 3, 9: 3, 10: 1, 11: 2, 12: 1, 13: 1, 14: 1,
               18: 1, 22: 0, 24: 0, 26: 0},
    'old': {0: 8, 1: 11, 2: 5, 3: 8, 8: 7, 9: 5, 10: 2, 11: 5, 12: 3, 13: 3, 14: 3,
            18: 2, 22: 1, 24: 2, 26: 2},
    'flexible': None,  # filled in from the schemas at runtime
}

CODEC_IDS = {'none': 0, 'gzip': 1, 'snappy': 2, 'lz4': 3, 'zstd': 4}
CODEC_NAMES = {v: k for k, v in CODEC_IDS.items()}


# --------------------------------------------------------------------------------------
# kafka-python protocol schema classes
# --------------------------------------------------------------------------------------

def _protocol_classes():
    import kafka.protocol.metadata  # noqa: F401
    import kafka.protocol.producer  # noqa: F401
    import kafka.protocol.consumer  # noqa: F401
    import kafka.protocol.admin  # noqa: F401
    from kafka.protocol.api_message import ApiMessage

    def subclasses(c):
        for s in c.__subclasses__():
            yield s
            yield from subclasses(s)

    reqs, resps = {}, {}
    for s in subclasses(ApiMessage):
        if s._class_version is not None or getattr(s, '_json', None) is None:
            continue
        (reqs if s.type == 'request' else resps)[s.API_KEY] = s
    return reqs, resps


def build(dc_cls, values):
    """Build a kafka-python DataContainer from nested dicts/lists."""
    kwargs = {}
    for name, val in values.items():
        field = dc_cls.fields[name]
        if field.is_struct_array():
            val = None if val is None else [build(field.data_class, v) for v in val]
        elif field.is_struct():
            val = None if val is None else build(field.data_class, val)
        kwargs[name] = val
    return dc_cls(**kwargs)


def jsonable(obj):
    """Convert a kafka-python to_dict(json=False) result into plain JSON values."""
    if isinstance(obj, dict):
        return {k: jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, memoryview):
        obj = obj.tobytes()
    if isinstance(obj, (bytes, bytearray)):
        return {'length': len(obj), 'hex': bytes(obj).hex()}
    if isinstance(obj, uuid.UUID):
        return str(obj)
    if isinstance(obj, set):
        return sorted(obj)
    return obj


# --------------------------------------------------------------------------------------
# Record batch helpers (hand-written; independent from the clients under test)
# --------------------------------------------------------------------------------------

def _crc32c_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC32C = _crc32c_table()


def crc32c(data):
    c = 0xFFFFFFFF
    for b in data:
        c = _CRC32C[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def zigzag_encode(n):
    return (n << 1) ^ (n >> 63)


def write_varint(n):
    n = zigzag_encode(n) & 0xFFFFFFFFFFFFFFFF
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def read_varint(buf, pos):
    shift = 0
    result = 0
    while True:
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            break
    return (result >> 1) ^ -(result & 1), pos


BATCH_HEADER = struct.Struct('>qiibIhiqqqhii')  # 61 bytes


def parse_batch_header(b):
    (base_offset, batch_length, leader_epoch, magic, crc, attributes, last_offset_delta,
     first_ts, max_ts, producer_id, producer_epoch, base_sequence,
     count) = BATCH_HEADER.unpack_from(b, 0)
    return {
        'base_offset': base_offset, 'batch_length': batch_length,
        'partition_leader_epoch': leader_epoch, 'magic': magic, 'crc': crc,
        'attributes': attributes, 'last_offset_delta': last_offset_delta,
        'first_timestamp': first_ts, 'max_timestamp': max_ts,
        'producer_id': producer_id, 'producer_epoch': producer_epoch,
        'base_sequence': base_sequence, 'record_count': count,
    }


def decompress(codec, payload):
    if codec == 0:
        return payload, None
    if codec == 1:
        return gzip.decompress(payload), None
    if codec == 2:
        import snappy
        if payload[:8] == b'\x82SNAPPY\x00':   # xerial (snappy-java) framing
            out = bytearray()
            pos = 16
            while pos < len(payload):
                (n,) = struct.unpack_from('>i', payload, pos)
                out += snappy.decompress(payload[pos + 4:pos + 4 + n])
                pos += 4 + n
            return bytes(out), 'xerial'
        return snappy.decompress(payload), 'raw'
    if codec == 3:
        import lz4.frame
        return lz4.frame.decompress(payload), 'lz4-frame'
    if codec == 4:
        import zstandard
        return zstandard.ZstdDecompressor().decompressobj().decompress(payload), None
    raise ValueError('unknown codec %d' % codec)


def _bytes_json(prefix, v):
    if v is None:
        return {prefix: None, prefix + '_hex': None}
    try:
        s = v.decode('utf-8')
        if not s.isprintable():
            s = None
    except UnicodeDecodeError:
        s = None
    return {prefix: s, prefix + '_hex': v.hex()}


def parse_records(data, count):
    records = []
    pos = 0
    for _ in range(count):
        length, pos = read_varint(data, pos)
        end = pos + length
        attributes = data[pos]
        pos += 1
        ts_delta, pos = read_varint(data, pos)
        off_delta, pos = read_varint(data, pos)
        klen, pos = read_varint(data, pos)
        key = None if klen < 0 else bytes(data[pos:pos + klen])
        pos += max(klen, 0)
        vlen, pos = read_varint(data, pos)
        value = None if vlen < 0 else bytes(data[pos:pos + vlen])
        pos += max(vlen, 0)
        nh, pos = read_varint(data, pos)
        headers = []
        for _ in range(nh):
            hk_len, pos = read_varint(data, pos)
            hk = bytes(data[pos:pos + hk_len]).decode('utf-8')
            pos += hk_len
            hv_len, pos = read_varint(data, pos)
            hv = None if hv_len < 0 else bytes(data[pos:pos + hv_len])
            pos += max(hv_len, 0)
            h = {'key': hk}
            h.update(_bytes_json('value', hv))
            headers.append(h)
        assert pos == end, 'record length mismatch'
        rec = {'length': length, 'attributes': attributes, 'timestamp_delta': ts_delta,
               'offset_delta': off_delta}
        rec.update(_bytes_json('key', key))
        rec.update(_bytes_json('value', value))
        rec['headers'] = headers
        records.append(rec)
    assert pos == len(data), 'trailing bytes after records'
    return records


def describe_batch(batch):
    """Sidecar JSON for one magic-2 record batch (raw bytes starting at baseOffset)."""
    h = parse_batch_header(batch)
    assert h['magic'] == 2, 'not a magic-2 batch'
    assert h['batch_length'] + 12 == len(batch), 'batch length mismatch'
    attrs = h['attributes']
    codec = attrs & 0x07
    payload = batch[BATCH_HEADER.size:]
    data, framing = decompress(codec, payload)
    records = parse_records(data, h['record_count'])
    crc_ok = crc32c(batch[21:]) == h['crc']
    # Cross-check with kafka-python's independent reader.
    from kafka.record.default_records import DefaultRecordBatch
    kb = DefaultRecordBatch(bytearray(batch))
    assert kb.validate_crc(), 'kafka-python says CRC is invalid'
    if not (attrs & 0x20):
        kp = [(r.key, r.value, [(k, v) for k, v in r.headers]) for r in kb]
        mine = [(None if r['key_hex'] is None else bytes.fromhex(r['key_hex']),
                 None if r['value_hex'] is None else bytes.fromhex(r['value_hex']),
                 [(x['key'], None if x['value_hex'] is None else bytes.fromhex(x['value_hex']))
                  for x in r['headers']]) for r in records]
        assert kp == mine, 'record mismatch vs kafka-python reader: %r != %r' % (kp, mine)
    out = dict(h)
    out.update({
        'size': len(batch),
        'crc_valid': crc_ok,
        'compression_codec': codec,
        'compression_name': CODEC_NAMES[codec],
        'timestamp_type': (attrs >> 3) & 1,
        'is_transactional': bool(attrs & 0x10),
        'is_control': bool(attrs & 0x20),
        'has_delete_horizon': bool(attrs & 0x40),
        'compressed_payload_length': len(payload) if codec else None,
        'uncompressed_records_length': len(data),
    })
    if framing:
        out['compression_framing'] = framing
    out['records'] = records
    if attrs & 0x20:
        for r in records:
            kb_ = bytes.fromhex(r['key_hex'])
            vb_ = bytes.fromhex(r['value_hex'])
            ver, typ = struct.unpack('>hh', kb_)
            r['control'] = {'version': ver, 'type': typ,
                            'type_name': {0: 'abort', 1: 'commit'}.get(typ)}
            if len(vb_) == 6:
                mver, coord_epoch = struct.unpack('>hi', vb_)
                r['control'].update({'marker_version': mver, 'coordinator_epoch': coord_epoch})
    return out


def split_batches(records_bytes):
    out = []
    pos = 0
    while pos + 12 <= len(records_bytes):
        (length,) = struct.unpack_from('>i', records_bytes, pos + 8)
        out.append(bytes(records_bytes[pos:pos + 12 + length]))
        pos += 12 + length
    return out


def build_batch(base_offset, records, attributes, producer_id, producer_epoch, base_sequence,
                first_timestamp, partition_leader_epoch=0):
    """Hand-build an uncompressed magic-2 batch (used only for the control batch)."""
    body = bytearray()
    for i, (key, value) in enumerate(records):
        rec = bytearray()
        rec.append(0)                       # record attributes
        rec += write_varint(0)              # timestamp delta
        rec += write_varint(i)              # offset delta
        rec += write_varint(-1 if key is None else len(key)) + (key or b'')
        rec += write_varint(-1 if value is None else len(value)) + (value or b'')
        rec += write_varint(0)              # headers count
        body += write_varint(len(rec)) + rec
    n = len(records)
    after_crc = struct.pack('>hiqqqhii', attributes, n - 1, first_timestamp, first_timestamp,
                            producer_id, producer_epoch, base_sequence, n) + bytes(body)
    crc = crc32c(after_crc)
    batch_length = 4 + 1 + 4 + len(after_crc)      # leader epoch + magic + crc + rest
    return struct.pack('>qiibI', base_offset, batch_length, partition_leader_epoch, 2, crc) + after_crc


def fetch_batch():
    """The batch the fake broker serves to consumers (offsets 0..2)."""
    from kafka.record.default_records import DefaultRecordBatchBuilder
    b = DefaultRecordBatchBuilder(magic=2, compression_type=0, is_transactional=False,
                                  producer_id=-1, producer_epoch=-1, base_sequence=-1,
                                  batch_size=1 << 20)
    ts = 1700000000000
    for i, r in enumerate(RECORDS):
        b.append(i, timestamp=ts + i, key=r['key'], value=r['value'], headers=r['headers'])
    return bytes(b.build())


# --------------------------------------------------------------------------------------
# Fake broker
# --------------------------------------------------------------------------------------

class FakeBroker:
    def __init__(self, profile):
        self.reqs, self.resps = _protocol_classes()
        self.profile = profile
        self.advertised = dict(PROFILES[profile])
        self.frames = []        # (seq, conn_id, bytes)
        self.errors = []
        self.lock = threading.Lock()
        self.conn_seq = 0
        self.next_offset = {}
        self.fetch_records = fetch_batch()
        self.sockets = set()
        self.stopping = False
        broker = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self):
                broker._serve(self.request)

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.server = Server((HOST, 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={'poll_interval': 0.1}, daemon=True)

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.stopping = True
        self.server.shutdown()
        self.server.server_close()
        with self.lock:
            socks = list(self.sockets)
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            try:
                s.close()
            except OSError:
                pass
        self.thread.join(timeout=5)

    # -- connection loop --------------------------------------------------------------
    def _serve(self, sock):
        with self.lock:
            self.conn_seq += 1
            conn_id = self.conn_seq
            self.sockets.add(sock)
        sock.settimeout(1.0)
        try:
            while not self.stopping:
                size_b = self._recv_exact(sock, 4)
                if size_b is None:
                    return
                (size,) = struct.unpack('>i', size_b)
                frame = self._recv_exact(sock, size)
                if frame is None:
                    return
                with self.lock:
                    self.frames.append((len(self.frames), conn_id, frame))
                try:
                    resp = self.respond(frame)
                except Exception:  # keep going; the capture check reports gaps
                    self.errors.append('%s: %s' % (frame[:4].hex(), traceback.format_exc()))
                    return
                if resp is None:
                    continue
                sock.sendall(struct.pack('>i', len(resp)) + resp)
        except OSError:
            return
        finally:
            with self.lock:
                self.sockets.discard(sock)

    def _recv_exact(self, sock, n):
        buf = bytearray()
        while len(buf) < n:
            if self.stopping:
                return None
            try:
                chunk = sock.recv(n - len(buf))
            except socket.timeout:
                continue
            if not chunk:
                return None
            buf += chunk
        return bytes(buf)

    # -- request dispatch -------------------------------------------------------------
    def respond(self, frame):
        api_key, api_version, corr = struct.unpack_from('>hhi', frame, 0)
        resp_cls = self.resps[api_key]
        if api_key == 18:
            maxv = self.advertised[18]
            if api_version > maxv:
                # UNSUPPORTED_VERSION with a v0 body naming our ApiVersions range.
                r = build(resp_cls, {'error_code': 35, 'api_keys': [
                    {'api_key': 18, 'min_version': 0, 'max_version': maxv}]})
                r.API_VERSION = 0
                r.with_header(correlation_id=corr)
                return r.encode(header=True)
        if api_key not in self.advertised or api_version > self.advertised[api_key]:
            raise RuntimeError('request for unadvertised api %d v%d' % (api_key, api_version))
        req = self.reqs[api_key].decode(frame, version=api_version, header=True)
        handler = getattr(self, 'h_' + API_NAMES[api_key])
        body = handler(req, api_version)
        if body is None:
            return None
        r = build(resp_cls, body)
        r.API_VERSION = api_version
        r.with_header(correlation_id=corr)
        return r.encode(header=True)

    # -- handlers (return response body as nested dicts) ------------------------------
    def h_apiversions(self, req, v):
        return {'error_code': 0, 'throttle_time_ms': 0, 'api_keys': [
            {'api_key': k, 'min_version': 0, 'max_version': m}
            for k, m in sorted(self.advertised.items())]}

    def _topic_entry(self, name):
        return {'error_code': 0, 'name': name, 'topic_id': TOPIC_ID, 'is_internal': False,
                'partitions': [{'error_code': 0, 'partition_index': 0, 'leader_id': 0,
                                'leader_epoch': 0, 'replica_nodes': [0], 'isr_nodes': [0],
                                'offline_replicas': []}]}

    def h_metadata(self, req, v):
        names = [TOPIC] if req.topics is None else [t.name for t in req.topics if t.name]
        if req.topics is not None and not req.topics:
            names = []
        return {'throttle_time_ms': 0, 'cluster_id': CLUSTER_ID, 'controller_id': 0,
                'brokers': [{'node_id': 0, 'host': HOST, 'port': self.port, 'rack': None}],
                'topics': [self._topic_entry(n) for n in names], 'error_code': 0}

    def h_produce(self, req, v):
        responses = []
        for t in req.topic_data:
            parts = []
            for p in t.partition_data:
                key = (t.name, t.topic_id, p.index)
                count = 0
                for b in split_batches(bytes(p.records or b'')):
                    count += struct.unpack_from('>i', b, 57)[0]
                with self.lock:
                    base = self.next_offset.get(key, 0)
                    self.next_offset[key] = base + count
                parts.append({'index': p.index, 'error_code': 0, 'base_offset': base,
                              'log_append_time_ms': -1, 'log_start_offset': 0,
                              'record_errors': [], 'error_message': None})
            responses.append({'name': t.name, 'topic_id': t.topic_id,
                              'partition_responses': parts})
        if req.acks == 0:
            return None
        return {'responses': responses, 'throttle_time_ms': 0}

    def h_fetch(self, req, v):
        n_records = len(RECORDS)
        responses = []
        have_data = False
        for t in req.topics:
            parts = []
            for p in t.partitions:
                records = b''
                if p.fetch_offset < n_records:
                    records = self.fetch_records
                    have_data = True
                parts.append({'partition_index': p.partition, 'error_code': 0,
                              'high_watermark': n_records, 'last_stable_offset': n_records,
                              'log_start_offset': 0, 'aborted_transactions': [],
                              'preferred_read_replica': -1, 'records': records})
            responses.append({'topic': t.topic, 'topic_id': t.topic_id, 'partitions': parts})
        if not have_data:
            time.sleep(min(max(req.max_wait_ms, 0), 300) / 1000.0)
        return {'throttle_time_ms': 0, 'error_code': 0, 'session_id': 0,
                'responses': responses}

    def h_listoffsets(self, req, v):
        topics = []
        for t in req.topics:
            parts = []
            for p in t.partitions:
                off = 0 if p.timestamp == -2 else len(RECORDS)
                parts.append({'partition_index': p.partition_index, 'error_code': 0,
                              'old_style_offsets': [off], 'timestamp': -1, 'offset': off,
                              'leader_epoch': 0})
            topics.append({'name': t.name, 'partitions': parts})
        return {'throttle_time_ms': 0, 'topics': topics}

    def h_findcoordinator(self, req, v):
        if v >= 4:
            return {'throttle_time_ms': 0, 'coordinators': [
                {'key': k, 'node_id': 0, 'host': HOST, 'port': self.port, 'error_code': 0,
                 'error_message': None} for k in req.coordinator_keys]}
        return {'throttle_time_ms': 0, 'error_code': 0, 'error_message': None,
                'node_id': 0, 'host': HOST, 'port': self.port}

    def h_joingroup(self, req, v):
        member_id = req.member_id or ('%s-member-1' % (req.header.client_id or 'client'))
        proto = req.protocols[0]
        return {'throttle_time_ms': 0, 'error_code': 0, 'generation_id': 1,
                'protocol_type': req.protocol_type, 'protocol_name': proto.name,
                'leader': member_id, 'skip_assignment': False, 'member_id': member_id,
                'members': [{'member_id': member_id, 'group_instance_id': req.group_instance_id,
                             'metadata': bytes(proto.metadata)}]}

    def h_syncgroup(self, req, v):
        assignment = b''
        for a in req.assignments or []:
            if a.member_id == req.member_id:
                assignment = bytes(a.assignment)
        return {'throttle_time_ms': 0, 'error_code': 0, 'protocol_type': req.protocol_type,
                'protocol_name': req.protocol_name, 'assignment': assignment}

    def h_heartbeat(self, req, v):
        return {'throttle_time_ms': 0, 'error_code': 0}

    def h_leavegroup(self, req, v):
        members = [{'member_id': m.member_id, 'group_instance_id': m.group_instance_id,
                    'error_code': 0} for m in (req.members or [])]
        return {'throttle_time_ms': 0, 'error_code': 0, 'members': members}

    def h_offsetcommit(self, req, v):
        return {'throttle_time_ms': 0, 'topics': [
            {'name': t.name, 'topic_id': t.topic_id, 'partitions': [
                {'partition_index': p.partition_index, 'error_code': 0} for p in t.partitions]}
            for t in req.topics]}

    def h_offsetfetch(self, req, v):
        def parts(idxs):
            return [{'partition_index': i, 'committed_offset': -1, 'committed_leader_epoch': -1,
                     'metadata': '', 'error_code': 0} for i in idxs]
        if v >= 8:
            return {'throttle_time_ms': 0, 'groups': [
                {'group_id': g.group_id, 'error_code': 0, 'topics': [
                    {'name': t.name, 'topic_id': t.topic_id,
                     'partitions': parts(t.partition_indexes)} for t in (g.topics or [])]}
                for g in req.groups]}
        return {'throttle_time_ms': 0, 'error_code': 0, 'topics': [
            {'name': t.name, 'partitions': parts(t.partition_indexes)}
            for t in (req.topics or [])]}

    def h_initproducerid(self, req, v):
        return {'throttle_time_ms': 0, 'error_code': 0, 'producer_id': PRODUCER_ID,
                'producer_epoch': PRODUCER_EPOCH}

    def h_addpartitionstotxn(self, req, v):
        def topic_results(topics):
            return [{'name': t.name, 'results_by_partition': [
                {'partition_index': p, 'partition_error_code': 0} for p in t.partitions]}
                for t in topics]
        if v >= 4:
            return {'throttle_time_ms': 0, 'error_code': 0, 'results_by_transaction': [
                {'transactional_id': x.transactional_id, 'topic_results': topic_results(x.topics)}
                for x in req.transactions]}
        return {'throttle_time_ms': 0,
                'results_by_topic_v3_and_below': topic_results(req.v3_and_below_topics)}

    def h_endtxn(self, req, v):
        return {'throttle_time_ms': 0, 'error_code': 0, 'producer_id': req.producer_id,
                'producer_epoch': req.producer_epoch}


def flexible_profile():
    reqs, resps = _protocol_classes()
    return {k: min(reqs[k].max_version, resps[k].max_version) for k in API_NAMES}


# --------------------------------------------------------------------------------------
# Client scenarios (each runs in its own subprocess: `capture.py --client SPEC`)
# --------------------------------------------------------------------------------------

def client_kafka_python(spec):
    from kafka import KafkaProducer, KafkaConsumer
    bs = '%s:%d' % (HOST, spec['port'])
    cid = 'tributary-fixtures-kafka-python'
    out = {}
    if spec.get('produce'):
        cfg = dict(bootstrap_servers=bs, client_id=cid, linger_ms=200, acks=1,
                   enable_idempotence=False, request_timeout_ms=10000, max_block_ms=10000,
                   retries=0, metadata_max_age_ms=60000)
        if spec.get('codec', 'none') != 'none':
            cfg['compression_type'] = spec['codec']
        if spec.get('idempotent'):
            cfg.update(enable_idempotence=True, acks='all', retries=3)
        if spec.get('transactional'):
            cfg.update(enable_idempotence=True, acks='all', retries=3,
                       transactional_id=TXN_ID)
        p = KafkaProducer(**cfg)
        if spec.get('transactional'):
            p.init_transactions()
            p.begin_transaction()
        futs = [p.send(TOPIC, key=r['key'], value=r['value'], headers=r['headers'], partition=0)
                for r in RECORDS]
        p.flush(timeout=15)
        out['offsets'] = [f.get(timeout=1).offset for f in futs]
        if spec.get('transactional'):
            p.commit_transaction()
        p.close(timeout=5)
    if spec.get('consume'):
        c = KafkaConsumer(TOPIC, bootstrap_servers=bs, client_id=cid, group_id=GROUP_ID,
                          auto_offset_reset='earliest', enable_auto_commit=False,
                          fetch_max_wait_ms=200, session_timeout_ms=10000,
                          heartbeat_interval_ms=300, request_timeout_ms=15000)
        got = []
        deadline = time.time() + 30
        while len(got) < len(RECORDS) and time.time() < deadline:
            for msgs in c.poll(timeout_ms=500).values():
                got.extend(msgs)
        out['consumed'] = len(got)
        c.commit()
        time.sleep(1.0)    # let a heartbeat go out
        c.close()
    return out


def client_confluent(spec):
    from confluent_kafka import Producer, Consumer, TopicPartition
    bs = '%s:%d' % (HOST, spec['port'])
    cid = 'tributary-fixtures-confluent-kafka'
    common = {'bootstrap.servers': bs, 'client.id': cid, 'broker.address.family': 'v4',
              'socket.timeout.ms': 10000}
    out = {}
    if spec.get('produce'):
        cfg = dict(common, **{'linger.ms': 200, 'acks': 1, 'enable.idempotence': False,
                              'message.timeout.ms': 15000,
                              'compression.codec': spec.get('codec', 'none')})
        if spec.get('idempotent'):
            cfg.update({'enable.idempotence': True, 'acks': 'all'})
        if spec.get('transactional'):
            cfg.update({'transactional.id': TXN_ID, 'acks': 'all'})
            del cfg['enable.idempotence']
        p = Producer(cfg)
        if spec.get('transactional'):
            p.init_transactions(15)
            p.begin_transaction()
        delivered = []

        def cb(err, msg):
            delivered.append(None if err else msg.offset())
        for r in RECORDS:
            p.produce(TOPIC, key=r['key'], value=r['value'], headers=r['headers'] or None,
                      partition=0, on_delivery=cb)
        p.flush(15)
        if spec.get('transactional'):
            p.commit_transaction(15)
        out['offsets'] = delivered
    if spec.get('consume'):
        c = Consumer(dict(common, **{'group.id': GROUP_ID, 'auto.offset.reset': 'earliest',
                                     'enable.auto.commit': False, 'fetch.wait.max.ms': 200,
                                     'session.timeout.ms': 10000,
                                     'heartbeat.interval.ms': 300}))
        c.subscribe([TOPIC])
        got = []
        deadline = time.time() + 30
        while len(got) < len(RECORDS) and time.time() < deadline:
            m = c.poll(0.5)
            if m is not None and not m.error():
                got.append(m)
        out['consumed'] = len(got)
        if got:
            c.commit(offsets=[TopicPartition(TOPIC, 0, got[-1].offset() + 1)],
                     asynchronous=False)
        time.sleep(1.0)
        c.close()
    return out


def client_aiokafka(spec):
    import asyncio
    from aiokafka import AIOKafkaProducer, AIOKafkaConsumer
    bs = '%s:%d' % (HOST, spec['port'])
    cid = 'tributary-fixtures-aiokafka'

    async def run():
        out = {}
        p = AIOKafkaProducer(bootstrap_servers=bs, client_id=cid, linger_ms=200, acks=1,
                             request_timeout_ms=10000)
        await p.start()
        try:
            futs = [await p.send(TOPIC, key=r['key'], value=r['value'],
                                 headers=r['headers'] or None, partition=0) for r in RECORDS]
            await p.flush()
            out['offsets'] = [(await f).offset for f in futs]
        finally:
            await p.stop()
        c = AIOKafkaConsumer(TOPIC, bootstrap_servers=bs, client_id=cid, group_id=GROUP_ID,
                             auto_offset_reset='earliest', enable_auto_commit=False,
                             fetch_max_wait_ms=200, session_timeout_ms=10000,
                             heartbeat_interval_ms=300, request_timeout_ms=15000)
        await c.start()
        try:
            got = []
            deadline = time.time() + 30
            while len(got) < len(RECORDS) and time.time() < deadline:
                for msgs in (await c.getmany(timeout_ms=500)).values():
                    got.extend(msgs)
            out['consumed'] = len(got)
            await c.commit()
            await asyncio.sleep(1.0)
        finally:
            await c.stop()
        return out
    return asyncio.run(asyncio.wait_for(run(), CLIENT_TIMEOUT_S - 10))


def describe_spec(client, spec):
    """Human-readable description of what a client subprocess did (for README/manifest)."""
    steps = []
    codec = spec.get('codec', 'none')
    if client == 'kafka-python':
        if spec.get('produce'):
            cfg = "linger_ms=200, acks=1, enable_idempotence=False"
            if spec.get('idempotent'):
                cfg = "linger_ms=200, enable_idempotence=True, acks='all'"
            if spec.get('transactional'):
                cfg = "linger_ms=200, transactional_id='%s', acks='all'" % TXN_ID
            if codec != 'none':
                cfg += ", compression_type='%s'" % codec
            txn = (' inside init_transactions()/begin_transaction()/commit_transaction()'
                   if spec.get('transactional') else '')
            steps.append('KafkaProducer(%s).send() x%d to %s/0, flush()%s' % (
                cfg, len(RECORDS), TOPIC, txn))
        if spec.get('consume'):
            steps.append("KafkaConsumer('%s', group_id='%s', auto_offset_reset='earliest', "
                         "enable_auto_commit=False).poll() until %d records, commit(), close()"
                         % (TOPIC, GROUP_ID, len(RECORDS)))
    elif client == 'confluent-kafka':
        if spec.get('produce'):
            cfg = "'linger.ms': 200, 'acks': 1, 'enable.idempotence': False"
            if spec.get('idempotent'):
                cfg = "'linger.ms': 200, 'enable.idempotence': True, 'acks': 'all'"
            if spec.get('transactional'):
                cfg = "'linger.ms': 200, 'transactional.id': '%s', 'acks': 'all'" % TXN_ID
            cfg += ", 'compression.codec': '%s'" % codec
            txn = (' inside init_transactions()/begin_transaction()/commit_transaction()'
                   if spec.get('transactional') else '')
            steps.append('Producer({%s}).produce() x%d to %s/0, flush()%s' % (
                cfg, len(RECORDS), TOPIC, txn))
        if spec.get('consume'):
            steps.append("Consumer({'group.id': '%s', 'auto.offset.reset': 'earliest', "
                         "'enable.auto.commit': False}).subscribe(['%s']), poll() until %d "
                         "records, commit(asynchronous=False), close()"
                         % (GROUP_ID, TOPIC, len(RECORDS)))
    elif client == 'aiokafka':
        steps.append('AIOKafkaProducer(linger_ms=200, acks=1).send() x%d to %s/0, flush(); '
                     "then AIOKafkaConsumer('%s', group_id='%s', auto_offset_reset='earliest', "
                     'enable_auto_commit=False).getmany() until %d records, commit(), stop()'
                     % (len(RECORDS), TOPIC, TOPIC, GROUP_ID, len(RECORDS)))
    return '; then '.join(steps)


def client_main(spec_json):
    spec = json.loads(spec_json)
    fn = {'kafka-python': client_kafka_python, 'confluent-kafka': client_confluent,
          'aiokafka': client_aiokafka}[spec['client']]
    out = fn(spec)
    print('CLIENT-RESULT ' + json.dumps(out), flush=True)


# --------------------------------------------------------------------------------------
# Orchestration
# --------------------------------------------------------------------------------------

def run_bounded(cmd, timeout, stdin=None):
    """Run cmd in its own process group; kill the whole group if it overruns."""
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        out, err = proc.communicate(stdin, timeout=timeout)
        timed_out = False
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        timed_out = True
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return proc.returncode, out.decode(errors='replace'), err.decode(errors='replace'), timed_out


class Capture:
    def __init__(self, outdir, verbose=False):
        self.outdir = outdir
        self.verbose = verbose
        self.manifest = []
        self.requests_seen = {}    # (client, api, version) -> fixture name
        self.versions_used = {}    # client -> profile -> api -> sorted versions
        self.problems = []
        self.scenarios = {}        # scenario id -> profile, client, command
        self.versions = tool_versions()

    def scenario(self, name, profile, client, spec=None, kcat_args=None, stdin=None):
        broker = FakeBroker(profile).start()
        try:
            if client == 'kcat':
                cmd = ['kcat', '-P', '-b', '%s:%d' % (HOST, broker.port)] + kcat_args
                rc, out, err, to = run_bounded(cmd, KCAT_TIMEOUT_S, stdin=stdin)
                command = ' '.join(cmd[:1] + ['-P', '-b', '127.0.0.1:<port>'] + kcat_args)
            else:
                spec = dict(spec, client=client, port=broker.port)
                cmd = [sys.executable, os.path.abspath(__file__), '--client', json.dumps(spec)]
                rc, out, err, to = run_bounded(cmd, CLIENT_TIMEOUT_S)
                command = describe_spec(client, spec)
        finally:
            broker.stop()
        status = 'ok' if rc == 0 and not to else ('TIMEOUT' if to else 'rc=%s' % rc)
        result = [l for l in out.splitlines() if l.startswith('CLIENT-RESULT')]
        print('[%s] profile=%s client=%s: %s %s (frames=%d, port=%d)' % (
            name, profile, client, status, result[0][14:] if result else '', len(broker.frames),
            broker.port))
        if status != 'ok' or broker.errors or self.verbose:
            if broker.errors:
                print('  broker errors:\n    ' + '\n    '.join(broker.errors)[:4000])
            print('  client stderr (tail):\n    ' + '\n    '.join(err.splitlines()[-25:]))
            if status != 'ok':
                self.problems.append('%s: client %s' % (name, status))
        sid = '%s/%s' % (name, client)
        self.scenarios[sid] = {'profile': profile, 'client': self.client_label(client),
                               'command': command, 'status': status}
        return broker.frames, {'scenario': sid, 'profile': profile, 'client': client,
                               'spec': spec, 'command': command}

    # -- writing ------------------------------------------------------------------------
    def write(self, name, data, meta):
        with open(os.path.join(self.outdir, name), 'wb') as f:
            f.write(data)
        with open(os.path.join(self.outdir, name[:-4] + '.json'), 'w') as f:
            json.dump(meta, f, indent=2, sort_keys=False)
            f.write('\n')

    def client_label(self, client):
        return {'kafka-python': 'kafka-python %s' % self.versions['kafka-python'],
                'confluent-kafka': 'confluent-kafka %s (librdkafka %s)' % (
                    self.versions['confluent-kafka'], self.versions['librdkafka']),
                'aiokafka': 'aiokafka %s' % self.versions['aiokafka'],
                'kcat': 'kcat %s (%s)' % (self.versions['kcat'], self.versions['kcat-librdkafka']),
                'synthetic': 'capture.py hand-built'}[client]

    def save_requests(self, frames, ctx, apis=None):
        reqs, _ = _protocol_classes()
        client = ctx['client']
        # Per (api, version) keep the largest frame of this scenario (the first of equal
        # size): e.g. a Metadata request naming a topic rather than the bootstrap one with
        # no topics, or a JoinGroup re-join that carries the member id.
        chosen = {}
        for seq, conn_id, frame in frames:
            api_key, api_version, corr = struct.unpack_from('>hhi', frame, 0)
            if api_key not in API_NAMES or (apis is not None and api_key not in apis):
                continue
            self.versions_used.setdefault(client, {}).setdefault(ctx['profile'], {}) \
                .setdefault(API_NAMES[api_key], set()).add(api_version)
            key = (client, api_key, api_version)
            if key not in chosen or len(frame) > len(chosen[key][2]):
                chosen[key] = (seq, conn_id, frame)
        for key, (seq, conn_id, frame) in sorted(chosen.items(), key=lambda kv: kv[1][0]):
            api_key, api_version, corr = struct.unpack_from('>hhi', frame, 0)
            if key in self.requests_seen:
                continue
            cls = reqs[api_key]
            if api_version > cls.max_version:
                continue
            name = 'request-%s-v%d-%s.bin' % (API_NAMES[api_key], api_version, client)
            self.requests_seen[key] = name
            self.write(name, frame, self.request_sidecar(cls, frame, ctx, seq))
            self.manifest.append({'file': name, 'kind': 'request', 'client': client,
                                  'scenario': ctx['scenario'], 'size': len(frame)})

    def request_sidecar(self, cls, frame, ctx, seq):
        api_key, api_version, corr = struct.unpack_from('>hhi', frame, 0)
        (cid_len,) = struct.unpack_from('>h', frame, 8)
        client_id = None if cid_len < 0 else frame[10:10 + cid_len].decode()
        flexible = cls.flexible_version_q(api_version)
        pos = 10 + max(cid_len, 0)
        if flexible:
            # request header v2: tagged fields follow client_id
            ntags, pos2 = read_uvarint(frame, pos)
            assert ntags == 0, 'unexpected tagged fields in request header'
            pos = pos2
        req = cls.decode(frame, version=api_version, header=True)
        # Byte-for-byte round trip through the schema proves the decode is complete.
        req.with_header(correlation_id=corr, client_id=client_id)
        reencoded = req.encode(header=True)
        roundtrip = bytes(reencoded) == bytes(frame)
        if not roundtrip:
            self.problems.append('round-trip mismatch for %s v%d (%s)' % (
                API_NAMES[api_key], api_version, ctx['client']))
        body = jsonable(req.to_dict(json=False))
        meta = {
            'description': 'Raw request frame (size prefix stripped) as sent by %s' %
                           self.client_label(ctx['client']),
            'client': self.client_label(ctx['client']),
            'scenario': ctx['scenario'],
            'profile': ctx['profile'],
            'api_key': api_key,
            'api_name': cls.name.replace('Request', ''),
            'api_version': api_version,
            'flexible': flexible,
            'request_header_version': 2 if flexible else 1,
            'correlation_id': corr,
            'client_id': client_id,
            'header_length': pos,
            'size': len(frame),
            'sequence_in_capture': seq,
            'schema_roundtrip_ok': roundtrip,
            'key_fields': key_fields(api_key, req, frame),
            'body': body,
        }
        return meta

    def save_batches(self, frames, ctx, stem, expect_records=None, expect_codec='none'):
        reqs, _ = _protocol_classes()
        saved = 0
        for seq, conn_id, frame in frames:
            api_key, api_version = struct.unpack_from('>hh', frame, 0)
            if api_key != 0:
                continue
            req = reqs[0].decode(frame, version=api_version, header=True)
            for t in req.topic_data:
                for p in t.partition_data:
                    for b in split_batches(bytes(p.records or b'')):
                        name = 'batch-%s%s.bin' % (stem, '' if saved == 0 else '-%d' % saved)
                        meta = describe_batch(b)
                        meta = dict({'description': 'Record batch (magic 2) taken from the '
                                     'records field of a Produce v%d request sent by %s' % (
                                         api_version, self.client_label(ctx['client'])),
                                     'client': self.client_label(ctx['client']),
                                     'scenario': ctx['scenario'],
                                     'produce_request_version': api_version}, **meta)
                        self.write(name, b, meta)
                        self.manifest.append({'file': name, 'kind': 'batch',
                                              'client': ctx['client'],
                                              'scenario': ctx['scenario'], 'size': len(b)})
                        saved += 1
                        if meta['compression_name'] != expect_codec:
                            self.problems.append('%s is %s, expected %s' % (
                                name, meta['compression_name'], expect_codec))
                        if expect_records is not None and meta['record_count'] != expect_records:
                            self.problems.append('%s has %d records, expected %d' % (
                                name, meta['record_count'], expect_records))
        if saved == 0:
            self.problems.append('no batch captured for %s' % stem)
        elif saved > 1:
            self.problems.append('%s: records were split over %d batches' % (stem, saved))
        return saved


def read_uvarint(buf, pos):
    shift = 0
    result = 0
    while True:
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return result, pos


def _pick(d, *names, **renamed):
    """Copy the fields that exist at this request version (to_dict omits the others)."""
    out = {n: d[n] for n in names if n in d}
    out.update({new: d[old] for new, old in renamed.items() if old in d})
    return out


def key_fields(api_key, req, frame):
    """A few decoded fields per API, flattened for easy assertions in tests.
    Fields that do not exist at the captured version are left out."""
    d = req.to_dict(json=False)

    def uid(u):
        return str(u) if u else None
    if api_key == 18:
        return _pick(d, 'client_software_name', 'client_software_version')
    if api_key == 3:
        out = {'topics': None if d['topics'] is None else [t['name'] for t in d['topics']]}
        if d['topics'] is not None and d['topics'] and 'topic_id' in d['topics'][0]:
            out['topic_ids'] = [uid(t['topic_id']) for t in d['topics']]
        out.update(_pick(d, 'allow_auto_topic_creation', 'include_cluster_authorized_operations',
                         'include_topic_authorized_operations'))
        return out
    if api_key == 0:
        topics = []
        for t in d['topic_data']:
            parts = []
            for p in t['partition_data']:
                rb = bytes(p['records'] or b'')
                batches = split_batches(rb)
                parts.append({'index': p['index'], 'records_length': len(rb),
                              'records_offset': bytes(frame).find(rb) if rb else None,
                              'batch_count': len(batches),
                              'record_count': sum(struct.unpack_from('>i', b, 57)[0]
                                                  for b in batches)})
            topic = _pick(t, 'name')
            if 'topic_id' in t:
                topic['topic_id'] = uid(t['topic_id'])
            topic['partitions'] = parts
            topics.append(topic)
        out = _pick(d, 'transactional_id', 'acks', 'timeout_ms')
        out['topics'] = topics
        return out
    if api_key == 1:
        out = _pick(d, 'replica_id', 'max_wait_ms', 'min_bytes', 'max_bytes', 'isolation_level',
                    'session_id', 'session_epoch', 'rack_id')
        topics = []
        for t in d['topics']:
            topic = _pick(t, 'topic')
            if 'topic_id' in t:
                topic['topic_id'] = uid(t['topic_id'])
            topic['partitions'] = [_pick(p, 'partition', 'current_leader_epoch', 'fetch_offset',
                                         'last_fetched_epoch', 'log_start_offset',
                                         'partition_max_bytes') for p in t['partitions']]
            topics.append(topic)
        out['topics'] = topics
        out['forgotten_topics_count'] = len(d.get('forgotten_topics_data') or [])
        return out
    if api_key == 11:
        out = _pick(d, 'group_id', 'session_timeout_ms', 'rebalance_timeout_ms', 'member_id',
                    'group_instance_id', 'protocol_type')
        out['protocol_names'] = [p['name'] for p in d['protocols']]
        out['protocol_metadata_lengths'] = [len(bytes(p['metadata'])) for p in d['protocols']]
        out.update(_pick(d, 'reason'))
        return out
    if api_key == 9 and 'groups' in d:
        return {'groups': [dict(_pick(g, 'group_id', 'member_id', 'member_epoch'), topics=None
                                if g['topics'] is None else
                                [dict(_pick(t, 'name'), partition_indexes=t['partition_indexes'])
                                 for t in g['topics']]) for g in d['groups']],
                'require_stable': d.get('require_stable')}
    if api_key == 8:
        out = _pick(d, 'group_id', 'member_id', 'group_instance_id', 'retention_time_ms',
                    generation_id='generation_id_or_member_epoch')
        out['topics'] = [dict(_pick(t, 'name'), partitions=[
            _pick(p, 'partition_index', 'committed_offset', 'committed_leader_epoch',
                  'commit_timestamp', 'committed_metadata') for p in t['partitions']])
            for t in d['topics']]
        return out
    # Other APIs: the top-level scalar fields (the full decode is in "body").
    return {k: v for k, v in d.items() if not isinstance(v, (list, dict, bytes, memoryview))}


def tool_versions():
    v = {'python': platform.python_version()}
    try:
        import kafka
        v['kafka-python'] = kafka.__version__
    except ImportError:
        v['kafka-python'] = None
    try:
        import aiokafka
        v['aiokafka'] = aiokafka.__version__
    except ImportError:
        v['aiokafka'] = None
    try:
        import confluent_kafka
        v['confluent-kafka'] = confluent_kafka.__version__
        v['librdkafka'] = confluent_kafka.libversion()[0]
    except ImportError:
        v['confluent-kafka'] = v['librdkafka'] = None
    v['kcat'] = v['kcat-librdkafka'] = None
    if shutil.which('kcat'):
        out = subprocess.run(['kcat', '-V'], capture_output=True, text=True, timeout=10).stdout
        for line in out.splitlines():
            if line.startswith('Version'):
                parts = line.split()
                v['kcat'] = parts[1]
                if 'librdkafka' in parts:
                    v['kcat-librdkafka'] = 'librdkafka ' + parts[parts.index('librdkafka') + 1]
    return v


def control_batch():
    """A COMMIT marker as a broker's transaction coordinator would write it after the
    transactional batch (offsets 0..2): base offset 3, transactional+control attributes."""
    key = struct.pack('>hh', 0, 1)          # ControlRecordKey: version 0, type 1 = COMMIT
    value = struct.pack('>hi', 0, 5)        # EndTxnMarker: version 0, coordinator epoch 5
    return build_batch(base_offset=3, records=[(key, value)], attributes=0x30,
                       producer_id=PRODUCER_ID, producer_epoch=PRODUCER_EPOCH, base_sequence=-1,
                       first_timestamp=1700000000123, partition_leader_epoch=0)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('outdir', nargs='?')
    ap.add_argument('--client', help=argparse.SUPPRESS)
    ap.add_argument('--verbose', action='store_true')
    args = ap.parse_args()
    if args.client:
        return client_main(args.client)
    if not args.outdir:
        ap.error('outdir is required')
    os.makedirs(args.outdir, exist_ok=True)
    PROFILES['flexible'] = flexible_profile()
    # Remove previously generated files so stale fixtures cannot linger.
    for f in os.listdir(args.outdir):
        if (f.startswith('request-') or f.startswith('batch-')) and f.endswith(('.bin', '.json')):
            os.remove(os.path.join(args.outdir, f))
    cap = Capture(args.outdir, verbose=args.verbose)
    t0 = time.time()

    # 1. Request fixtures: producer + consumer-group flow per profile and client.
    for profile in ('flexible', 'old', 'legacy'):
        for client in ('kafka-python', 'confluent-kafka'):
            frames, ctx = cap.scenario('requests-%s' % profile, profile, client,
                                       {'produce': True, 'consume': True})
            cap.save_requests(frames, ctx)
            if profile == 'flexible':
                cap.save_batches(frames, ctx, '%s-none' % client, expect_records=len(RECORDS))

    # aiokafka picks its request versions itself (all non-flexible), so one run suffices.
    frames, ctx = cap.scenario('requests-flexible', 'flexible', 'aiokafka',
                               {'produce': True, 'consume': True})
    cap.save_requests(frames, ctx)
    cap.save_batches(frames, ctx, 'aiokafka-none', expect_records=len(RECORDS))

    # 2. Record batches with every compression codec.
    for client in ('kafka-python', 'confluent-kafka'):
        for codec in ('gzip', 'snappy', 'lz4', 'zstd'):
            frames, ctx = cap.scenario('batch-%s' % codec, 'flexible', client,
                                       {'produce': True, 'codec': codec})
            cap.save_batches(frames, ctx, '%s-%s' % (client, codec), expect_records=len(RECORDS),
                             expect_codec=codec)
        # Transactional first, so request-initproducerid-* carries a transactional id.
        frames, ctx = cap.scenario('batch-transactional', 'flexible', client,
                                   {'produce': True, 'transactional': True})
        cap.save_batches(frames, ctx, '%s-none-transactional' % client,
                         expect_records=len(RECORDS))
        cap.save_requests(frames, ctx, apis={10, 22, 24, 26})
        frames, ctx = cap.scenario('batch-idempotent', 'flexible', client,
                                   {'produce': True, 'idempotent': True})
        cap.save_batches(frames, ctx, '%s-none-idempotent' % client, expect_records=len(RECORDS))
        cap.save_requests(frames, ctx, apis={22})

    # 3. kcat (Debian's kcat with its own, older librdkafka).
    if shutil.which('kcat'):
        for codec in ('none', 'gzip'):
            kargs = ['-t', TOPIC, '-p', '0', '-K', ':', '-z', codec,
                     '-X', 'linger.ms=200', '-X', 'broker.address.family=v4',
                     '-X', 'client.id=tributary-fixtures-kcat']
            frames, ctx = cap.scenario('kcat-%s' % codec, 'flexible', 'kcat', kcat_args=kargs,
                                       stdin=KCAT_LINES)
            cap.save_batches(frames, ctx, 'kcat-%s' % codec, expect_records=3, expect_codec=codec)
            cap.save_requests(frames, ctx, apis={18, 3, 0})
    else:
        cap.problems.append('kcat not installed: kcat fixtures skipped')

    # 4. Control batch (COMMIT marker): only brokers write these, so it is hand-built.
    b = control_batch()
    meta = dict({'description': 'Hand-built by capture.py (no client ever sends control '
                 'batches): the COMMIT marker a transaction coordinator appends after the '
                 'transactional batch; base offset 3, producer id/epoch as in '
                 'batch-confluent-kafka-none-transactional.bin.',
                 'client': cap.client_label('synthetic'), 'scenario': 'synthetic'},
                **describe_batch(b))
    cap.write('batch-synthetic-none-control.bin', b, meta)
    cap.manifest.append({'file': 'batch-synthetic-none-control.bin', 'kind': 'batch',
                         'client': 'synthetic', 'scenario': 'synthetic', 'size': len(b)})
    cap.scenarios['synthetic'] = {'profile': None, 'client': cap.client_label('synthetic'),
                                  'command': 'control_batch() in capture.py: hand-built COMMIT '
                                  'marker (see notes)', 'status': 'ok'}

    # 5. Check that each required API has an old and a flexible capture per client.
    reqs, _ = _protocol_classes()
    for client in ('kafka-python', 'confluent-kafka'):
        for api in REQUIRED_APIS:
            vs = [v for (c, a, v) in cap.requests_seen if c == client and a == api]
            flex = [v for v in vs if reqs[api].flexible_version_q(v)]
            old = [v for v in vs if not reqs[api].flexible_version_q(v)]
            if not old:
                cap.problems.append('%s: no non-flexible %s captured' % (client, API_NAMES[api]))
            if not flex:
                cap.problems.append('%s: no flexible %s captured (client max is v%s)' % (
                    client, API_NAMES[api], max(vs) if vs else '?'))

    write_manifest(cap, args.outdir)
    write_readme(cap, args.outdir)
    total = sum(os.path.getsize(os.path.join(args.outdir, f)) for f in os.listdir(args.outdir))
    print('\nwrote %d fixture files (%d bytes incl. sidecars) in %.0fs' % (
        len(cap.manifest), total, time.time() - t0))
    print('versions used per client/profile:')
    for client, profiles in sorted(cap.versions_used.items()):
        for profile, apis in profiles.items():
            print('  %-16s %-9s %s' % (client, profile, ', '.join(
                '%s=%s' % (a, '/'.join(map(str, sorted(v)))) for a, v in sorted(apis.items()))))
    if cap.problems:
        print('\nNOTES / PROBLEMS:')
        for p in cap.problems:
            print('  - ' + p)
    return 0


def write_manifest(cap, outdir):
    used = {c: {p: {a: sorted(v) for a, v in apis.items()} for p, apis in profiles.items()}
            for c, profiles in cap.versions_used.items()}
    manifest = {
        'generated_by': 'scripts/capture-fixtures/capture.py',
        'generated_at': datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ'),
        'tool_versions': cap.versions,
        'advertised_api_versions': {p: {API_NAMES[k]: v for k, v in sorted(t.items())}
                                    for p, t in PROFILES.items()},
        'request_versions_used': used,
        'scenarios': cap.scenarios,
        'notes': cap.problems,
        'files': sorted(cap.manifest, key=lambda m: m['file']),
    }
    with open(os.path.join(outdir, 'manifest.json'), 'w') as f:
        json.dump(manifest, f, indent=2)
        f.write('\n')


README_HEAD = """\
# Kafka wire fixtures

Real bytes sent by real Kafka clients, for Tributary's protocol tests. **Generated** by
`scripts/capture-fixtures/capture.py`; do not edit by hand. To regenerate (about 15 s,
loopback only, every client subprocess has a hard timeout and is killed if it overruns):

```sh
pip install kafka-python==3.0.12 confluent-kafka aiokafka python-snappy lz4 zstandard
apt-get install -y kcat            # optional: kcat fixtures are skipped without it
python3 scripts/capture-fixtures/capture.py Tests/KafkaProtocolTests/Fixtures
```

Re-running changes timestamps (record batches carry the producer's wall clock), CRCs and
possibly correlation ids, so tests should compare against the `.json` sidecars rather than
hard-coding values that are not in them.

Clients used for this capture:

{clients}

## How the bytes were captured

`capture.py` runs a tiny fake Kafka broker on `127.0.0.1` (a fresh one on a free port for
every scenario). It logs every request frame exactly as received and answers just enough
for the clients to progress: one broker (node 0 = itself), topic `{topic}` (topic id
`{topic_id}`) with one partition led by node 0; Produce always succeeds; InitProducerId
hands out producer id {pid}, epoch {epoch}; the group coordinator is the broker itself,
JoinGroup makes the joining member the leader (member id `<client.id>-member-1`,
generation 1), SyncGroup echoes the leader's assignment, OffsetFetch reports no committed
offset, ListOffsets says 0 (earliest) / 3 (latest), and Fetch serves one uncompressed batch
of the same three records at offsets 0..2 (then empty responses).

Which request versions a client uses is steered by the ApiVersions response of the fake
(the client takes min(own max, advertised max)). Three *profiles* were used:

* `flexible`: the highest version of each API that kafka-python's schemas know, so
  each client uses its own maximum (as against a current Kafka 4.x broker);
* `old`: the highest **non-flexible** version of each API (Kafka 2.3-era);
* `legacy`: the table of an Apache Kafka 0.11.0 broker (first release with magic-2
  record batches).

When a client's first ApiVersions request is newer than the profile allows, the fake
answers `UNSUPPORTED_VERSION` (35) with a v0 body that lists ApiVersions' supported range,
as real brokers do; kafka-python then retries at the advertised max, librdkafka retries at
v0. That is why e.g. `request-apiversions-v0-confluent-kafka.bin` exists.

Per scenario a client subprocess: produced the three records below to `{topic}`/0 (one
batch, thanks to a 200 ms linger) and, in the `requests-*` scenarios, joined consumer
group `{group}`, consumed the three records and committed offset 3 synchronously.

Records produced by the Python clients (values are deliberately repetitive: both clients
silently send a batch uncompressed when compression would not shrink it):

{records}

kcat read `key:value` lines from stdin (`-K :`, no headers):
`{kcat_lines}`.

Each `request-<api>-v<version>-<client>.bin` is the first capture of that
(api, version, client) in the order of the scenarios below, choosing within a scenario the
largest frame (e.g. the Metadata request naming a topic rather than the bootstrap one
with no topics; the JoinGroup re-join that already carries the member id).

## File formats

* `request-<api>-v<N>-<client>.bin`: one request frame **without** the int32 size
  prefix: request header (api_key int16, api_version int16, correlation_id int32,
  client_id int16-length string; for flexible versions, header v2, followed by the header's
  tagged-field section, here always the single byte `00`), then the body.
* `request-*.json`: `api_key`, `api_name`, `api_version`, `flexible`,
  `request_header_version` (1 or 2), `correlation_id`, `client_id`, `header_length` (offset
  of the body), `size`, `key_fields` (a few decoded fields, only those that exist at that
  version; Produce adds `records_offset`/`records_length` of each partition's records
  inside the `.bin`), and `body` (the complete decoded request; bytes as
  `{{"length", "hex"}}`, UUIDs as strings, fields absent at that version omitted).
  Decoding used kafka-python's schema classes; `schema_roundtrip_ok: true` means
  re-encoding the decoded request reproduced the captured bytes exactly.
* `batch-<client>-<codec>[-idempotent|-transactional|-control].bin`: exactly one magic-2
  record batch, starting at baseOffset, copied verbatim from the `records` field of the
  client's Produce request (so baseOffset is 0 as the producer sent it).
* `batch-*.json`: every batch header field (`base_offset`, `batch_length`,
  `partition_leader_epoch`, `magic`, `crc`, `attributes`, `last_offset_delta`,
  `first_timestamp`, `max_timestamp`, `producer_id`, `producer_epoch`, `base_sequence`,
  `record_count`), derived flags (`compression_codec` 0..4 / `compression_name`,
  `timestamp_type`, `is_transactional`, `is_control`), `crc_valid` (CRC-32C checked),
  `compression_framing` (snappy: `xerial` = snappy-java block framing, `raw` = a plain
  snappy block; lz4: `lz4-frame`), `uncompressed_records_length`, and `records` (decoded,
  decompressed for compressed batches): `attributes`, `timestamp_delta`, `offset_delta`,
  `key`/`value` (UTF-8 text or null when null or not printable) with `key_hex`/`value_hex`
  (null for a null key/value), `headers` (`key`, `value`, `value_hex`). Control records also
  get `control` (`type` 0 = abort / 1 = commit, `coordinator_epoch`). Parsed by a
  hand-written parser in `capture.py` and cross-checked against kafka-python's reader.
* `manifest.json`: machine-readable list of everything below, tool versions, the
  advertised version tables and the versions each client used.

"""


def _md_table(header, rows):
    out = ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
    out += ['| ' + ' | '.join(str(c) for c in r) + ' |' for r in rows]
    return '\n'.join(out)


def write_readme(cap, outdir):
    v = cap.versions
    clients = '\n'.join([
        '* kafka-python %s (pure Python; `pip install kafka-python==%s`)' % (
            v['kafka-python'], v['kafka-python']),
        '* confluent-kafka %s, i.e. librdkafka %s (bundled in the wheel; files named '
        '`...-confluent-kafka`)' % (v['confluent-kafka'], v['librdkafka']),
        '* aiokafka %s (pure Python asyncio client; chooses its own, all non-flexible, '
        'request versions, so it ran once)' % v['aiokafka'],
        '* kcat %s with %s (Debian package `kcat`)' % (v['kcat'], v['kcat-librdkafka'])
        if v['kcat'] else '* kcat: not installed, no kcat fixtures',
        '* Python %s; snappy/lz4/zstd via python-snappy, lz4, zstandard' % v['python'],
    ])
    recs = []
    for i, r in enumerate(RECORDS):
        recs.append('%d. key %s, value %s, headers %s' % (
            i, 'null' if r['key'] is None else '`%s`' % r['key'].decode(),
            '`%s`' % r['value'].decode(),
            ', '.join('`%s`=`%s`' % (k, hv.decode()) for k, hv in r['headers']) or 'none'))
    text = README_HEAD.format(
        clients=clients, topic=TOPIC, topic_id=TOPIC_ID, pid=PRODUCER_ID,
        epoch=PRODUCER_EPOCH, group=GROUP_ID, records='\n'.join(recs),
        kcat_lines=KCAT_LINES.decode().strip().replace('\n', '\\n'))

    parts = [text, '## Advertised versions per profile\n',
             _md_table(['API (key)'] + list(PROFILES),
                       [['%s (%d)' % (API_NAMES[k], k)] + [PROFILES[p][k] for p in PROFILES]
                        for k in sorted(API_NAMES)]),
             '\n\n## Versions the clients actually sent\n',
             'Per client and profile (`a/b` = more than one version, e.g. the rejected first '
             'ApiVersions attempt). The transactional/idempotent/compression scenarios ran '
             'with the `flexible` profile and are folded into its column.\n']
    cols = [(c, p) for c in ('kafka-python', 'confluent-kafka', 'aiokafka', 'kcat')
            for p in ('flexible', 'old', 'legacy') if p in cap.versions_used.get(c, {})]
    rows = []
    for k in sorted(API_NAMES):
        row = ['%s (%d)' % (API_NAMES[k], k)]
        for c, p in cols:
            vs = cap.versions_used[c][p].get(API_NAMES[k])
            row.append('/'.join(map(str, sorted(vs))) if vs else '-')
        rows.append(row)
    parts.append(_md_table(['API'] + ['%s %s' % cp for cp in cols], rows))

    parts.append('\n\n## Scenarios\n')
    parts.append('Run in this order; each against a fresh fake broker. Client ids: '
                 '`tributary-fixtures-kafka-python`, `tributary-fixtures-confluent-kafka`, '
                 '`tributary-fixtures-aiokafka`, `tributary-fixtures-kcat`.\n')
    rows = [['`%s`' % sid, sc['profile'] or '-', sc['client'],
             (sc['command'] or '').replace('|', '\\|')] for sid, sc in cap.scenarios.items()]
    parts.append(_md_table(['scenario', 'profile', 'client', 'what it ran'], rows))
    parts.append('\n\n## Files\n')
    rows = [['`%s`' % m['file'], m['size'], m['client'], '`%s`' % m['scenario']]
            for m in sorted(cap.manifest, key=lambda m: (m['kind'], m['file']))]
    parts.append(_md_table(['file (+ .json sidecar)', 'bytes', 'client', 'scenario'], rows))

    notes = [
        '`batch-synthetic-none-control.bin` is **not** client output: control batches are '
        'written by a broker\'s transaction coordinator, never sent by a client. capture.py '
        'hand-builds it (struct + its own CRC-32C; kafka-python\'s '
        '`DefaultRecordBatchBuilder` cannot set the control flag): a COMMIT marker '
        '(ControlRecordKey version 0, type 1; EndTxnMarker version 0, coordinator epoch 5) '
        'at base offset 3 with attributes 0x30 (transactional + control), producer id %d, '
        'epoch %d, base sequence -1, i.e. the marker that would follow the transactional '
        'batches. Its CRC is verified by kafka-python\'s reader.' % (PRODUCER_ID, PRODUCER_EPOCH),
        'The transactional batches are real client output: both producers ran a full '
        'init_transactions/begin/produce/commit cycle against the fake (FindCoordinator key '
        'type 1, InitProducerId with a transactional id, AddPartitionsToTxn, Produce, EndTxn).',
        'librdkafka (confluent-kafka %s) supports JoinGroup only up to v5, SyncGroup/Heartbeat '
        'up to v3, LeaveGroup v1 and FindCoordinator v2, so there is no flexible JoinGroup '
        '(or SyncGroup/Heartbeat/LeaveGroup/FindCoordinator) capture from it; kafka-python '
        'provides flexible ones.' % v['confluent-kafka'],
        'Snappy framing differs between clients: kafka-python writes xerial (snappy-java) '
        'framing, librdkafka a raw snappy block. lz4 is the LZ4 frame format in both.',
        'aiokafka (%s) writes base_sequence 0 (not -1) in its non-idempotent batch, with '
        'producer id and epoch -1; `batch-aiokafka-none.json` records that as captured.'
        % v['aiokafka'],
        'kafka-python sends Fetch with topic names up to v12; librdkafka uses Fetch v16, '
        'which identifies topics by topic id (the id from the Metadata response).',
    ]
    notes += ['capture run note: ' + p for p in cap.problems]
    parts.append('\n\n## Notes\n')
    parts.append('\n'.join('* ' + n for n in notes))
    with open(os.path.join(outdir, 'README.md'), 'w') as f:
        f.write('\n'.join(parts) + '\n')


if __name__ == '__main__':
    sys.exit(main())
