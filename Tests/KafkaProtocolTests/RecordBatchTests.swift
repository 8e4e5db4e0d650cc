import Foundation
import KafkaProtocol
import NIOCore
import XCTest

/// Magic-2 record batches: the captured client batches parse and agree with their sidecars,
/// the builder's output parses back, offsets are assigned without breaking the CRC, and
/// malformed batches are refused with `.corruptRecordBatch` (or `.legacyMessageFormat`)
/// instead of trapping or yielding garbage.
final class RecordBatchTests: XCTestCase {
    private struct Captured {
        var name: String
        var bytes: [UInt8]
        var sidecar: JSON
    }

    private func captured() throws -> [Captured] {
        try Fixture.names(kind: "batch").map { Captured(name: $0, bytes: try Fixture.bytes($0), sidecar: try Fixture.sidecar($0)) }
    }

    private func uncompressedFixture() throws -> [UInt8] {
        try Fixture.bytes("batch-kafka-python-none")
    }

    // MARK: - Captured batches

    func testEveryCapturedBatchParsesWholeWithAValidCRC() throws {
        let all = try captured()
        XCTAssertGreaterThanOrEqual(all.count, 18)
        for c in all {
            var buffer = ByteBuffer(bytes: c.bytes)
            let batch = try XCTUnwrap(try RecordBatch.read(from: &buffer), c.name)
            XCTAssertEqual(buffer.readableBytes, 0, "\(c.name): read consumed the whole batch")
            XCTAssertEqual(batch, try RecordBatch(validating: ByteBuffer(bytes: c.bytes)), c.name)
            XCTAssertEqual(batch.sizeInBytes, c.bytes.count, c.name)
            XCTAssertEqual(c.sidecar["crc_valid"].bool, true, c.name)
            XCTAssertEqual(Int64(batch.crc), c.sidecar["crc"].int, c.name)
            XCTAssertEqual(batch.computeCRC(), batch.crc, c.name)
        }
    }

    func testCapturedBatchHeadersMatchTheirSidecars() throws {
        for c in try captured() {
            let batch = try RecordBatch(validating: ByteBuffer(bytes: c.bytes))
            let s = c.sidecar
            XCTAssertEqual(batch.baseOffset, s["base_offset"].int, c.name)
            XCTAssertEqual(Int64(batch.batchLength), s["batch_length"].int, c.name)
            XCTAssertEqual(Int64(batch.partitionLeaderEpoch), s["partition_leader_epoch"].int, c.name)
            XCTAssertEqual(Int64(batch.magic), s["magic"].int, c.name)
            XCTAssertEqual(Int64(batch.attributes), s["attributes"].int, c.name)
            XCTAssertEqual(Int64(batch.lastOffsetDelta), s["last_offset_delta"].int, c.name)
            XCTAssertEqual(batch.baseTimestamp, s["first_timestamp"].int, c.name)
            XCTAssertEqual(batch.maxTimestamp, s["max_timestamp"].int, c.name)
            XCTAssertEqual(batch.producerId, s["producer_id"].int, c.name)
            XCTAssertEqual(Int64(batch.producerEpoch), s["producer_epoch"].int, c.name)
            XCTAssertEqual(Int64(batch.baseSequence), s["base_sequence"].int, c.name)
            XCTAssertEqual(Int64(batch.recordCount), s["record_count"].int, c.name)
            XCTAssertEqual(batch.compression.map { Int64($0.rawValue) }, s["compression_codec"].int, c.name)
            XCTAssertEqual(batch.compression.map { "\($0)" }, s["compression_name"].string, c.name)
            XCTAssertEqual(batch.isLogAppendTime, s["timestamp_type"].int == 1, c.name)
            XCTAssertEqual(batch.isTransactional, s["is_transactional"].bool, c.name)
            XCTAssertEqual(batch.isControl, s["is_control"].bool, c.name)
            XCTAssertEqual(batch.hasDeleteHorizon, s["has_delete_horizon"].bool, c.name)
            XCTAssertEqual(batch.hasProducerId, (s["producer_id"].int ?? -1) >= 0, c.name)
            XCTAssertEqual(batch.lastOffset, batch.baseOffset + Int64(batch.lastOffsetDelta), c.name)
        }
    }

    func testUncompressedBatchesYieldTheSidecarsRecords() throws {
        var checked = 0
        for c in try captured() where c.sidecar["compression_codec"].int == 0 {
            let batch = try RecordBatch(validating: ByteBuffer(bytes: c.bytes))
            var iterator = try batch.records()
            let records = try iterator.all()
            let expected = c.sidecar["records"].arrayValue
            XCTAssertEqual(records.count, expected.count, c.name)
            XCTAssertEqual(Int64(batch.recordsPayload.readableBytes), c.sidecar["uncompressed_records_length"].int, c.name)
            for (i, (record, e)) in zip(records, expected).enumerated() {
                let at = "\(c.name) record \(i)"
                XCTAssertEqual(Int64(record.attributes), e["attributes"].int, at)
                XCTAssertEqual(record.timestampDelta, e["timestamp_delta"].int, at)
                XCTAssertEqual(Int64(record.offsetDelta), e["offset_delta"].int, at)
                XCTAssertEqual(record.key.map { Array($0.readableBytesView) }, e["key_hex"].hexBytes, at)
                XCTAssertEqual(record.value.map { Array($0.readableBytesView) }, e["value_hex"].hexBytes, at)
                let headers = e["headers"].arrayValue
                XCTAssertEqual(record.headers.map(\.key), headers.map { $0["key"].string ?? "?" }, at)
                XCTAssertEqual(record.headers.map { $0.value.map { Array($0.readableBytesView) } }, headers.map { $0["value_hex"].hexBytes }, at)
            }
            checked += 1
        }
        XCTAssertGreaterThanOrEqual(checked, 8)
    }

    func testCompressedBatchesReportTheirCodecAndRefuseToIterateRecords() throws {
        var seen = Set<CompressionCodec>()
        for c in try captured() where c.sidecar["compression_codec"].int != 0 {
            let batch = try RecordBatch(validating: ByteBuffer(bytes: c.bytes))
            let codec = try XCTUnwrap(batch.compression, c.name)
            seen.insert(codec)
            XCTAssertEqual(Int64(codec.rawValue), c.sidecar["compression_codec"].int, c.name)
            XCTAssertEqual(Int64(batch.recordsPayload.readableBytes), c.sidecar["compressed_payload_length"].int, c.name)
            XCTAssertThrowsError(try batch.records(), c.name) { error in
                XCTAssertEqual((error as? KafkaProtocolError)?.code, .corruptRecordBatch, c.name)
                XCTAssertTrue("\(error)".contains("compressed"), "\(c.name): \(error)")
            }
        }
        XCTAssertEqual(seen, [.gzip, .snappy, .lz4, .zstd])
    }

    func testControlBatchCarriesTheCommitMarker() throws {
        let batch = try RecordBatch(validating: Fixture.buffer("batch-synthetic-none-control"))
        XCTAssertTrue(batch.isControl)
        XCTAssertTrue(batch.isTransactional)
        XCTAssertEqual(batch.baseOffset, 3)
        XCTAssertEqual(batch.producerId, 4242)
        XCTAssertEqual(batch.producerEpoch, 7)
        var iterator = try batch.records()
        let marker = try XCTUnwrap(try iterator.next())
        XCTAssertNil(try iterator.next())
        //                                              version     type 1 (COMMIT)
        XCTAssertEqual(marker.key, ByteBuffer(bytes: [0x00, 0x00, 0x00, 0x01]))
        //                                                version     coordinator epoch 5
        XCTAssertEqual(marker.value, ByteBuffer(bytes: [0x00, 0x00, 0x00, 0x00, 0x00, 0x05]))
    }

    func testIdempotentBatchesNumberTheirRecordsFromSequenceZero() throws {
        for name in ["batch-kafka-python-none-idempotent", "batch-confluent-kafka-none-idempotent",
                     "batch-kafka-python-none-transactional", "batch-confluent-kafka-none-transactional"] {
            let batch = try RecordBatch(validating: Fixture.buffer(name))
            XCTAssertTrue(batch.hasProducerId, name)
            XCTAssertEqual(batch.baseSequence, 0, name)
            XCTAssertEqual(batch.lastSequence, 2, name)
        }
        XCTAssertEqual(try RecordBatch(validating: Fixture.buffer("batch-kafka-python-none")).lastSequence, -1)
    }

    func testReaderWalksConsecutiveBatchesAndLeavesAPartialOne() throws {
        let names = ["batch-kafka-python-none", "batch-confluent-kafka-zstd", "batch-synthetic-none-control"]
        var stream = ByteBuffer()
        for name in names { stream.writeBytes(try Fixture.bytes(name)) }
        let partial = try uncompressedFixture().prefix(100)
        stream.writeBytes(partial)
        var reader = RecordBatchReader(stream)
        var sizes: [Int] = []
        while let batch = try reader.next() { sizes.append(batch.sizeInBytes) }
        XCTAssertEqual(sizes, try names.map { try Fixture.bytes($0).count })
        XCTAssertEqual(reader.remainingBytes, partial.count)
    }

    // MARK: - Builder

    func testBuilderOutputParsesAndItsRecordsRoundTrip() throws {
        var builder = RecordBatchBuilder(baseTimestamp: 1_700_000_000_000)
        let records = [
            Record(timestampDelta: 0, offsetDelta: 0, key: ByteBuffer(string: "k0"), value: ByteBuffer(string: "v0"),
                   headers: [.init(key: "h", value: ByteBuffer(string: "x")), .init(key: "null-value", value: nil)]),
            Record(timestampDelta: 250, offsetDelta: 1, key: nil, value: ByteBuffer(string: String(repeating: "long ", count: 100))),
            Record(timestampDelta: -5, offsetDelta: 2, key: ByteBuffer(), value: nil),
            Record(timestampDelta: 10, offsetDelta: 3, key: ByteBuffer(string: "ключ"), value: ByteBuffer(bytes: [0, 0xFF, 0x80])),
        ]
        for r in records {
            builder.append(key: r.key, value: r.value, timestamp: 1_700_000_000_000 + r.timestampDelta, headers: r.headers)
        }
        let built = builder.build()
        XCTAssertEqual(built.sizeInBytes, builder.estimatedSize)

        var bytes = built.buffer
        let batch = try XCTUnwrap(try RecordBatch.read(from: &bytes))
        XCTAssertEqual(bytes.readableBytes, 0)
        XCTAssertEqual(batch.computeCRC(), batch.crc)
        XCTAssertEqual(batch.recordCount, 4)
        XCTAssertEqual(batch.lastOffsetDelta, 3)
        XCTAssertEqual(batch.baseTimestamp, 1_700_000_000_000)
        XCTAssertEqual(batch.maxTimestamp, 1_700_000_000_250)
        XCTAssertEqual(batch.compression, CompressionCodec.none)
        XCTAssertEqual(batch.producerId, -1)
        XCTAssertEqual(batch.baseSequence, -1)
        XCTAssertEqual(batch.partitionLeaderEpoch, -1)
        var iterator = try batch.records()
        XCTAssertEqual(try iterator.all(), records)
    }

    func testBuilderFlagsAndProducerFieldsSurviveParsing() throws {
        var builder = RecordBatchBuilder(baseTimestamp: 42)
        builder.baseOffset = 1000
        builder.partitionLeaderEpoch = 3
        builder.producerId = 4242
        builder.producerEpoch = 7
        builder.baseSequence = 10
        builder.isTransactional = true
        builder.isLogAppendTime = true
        builder.append(key: nil, value: ByteBuffer(string: "a"))
        builder.append(key: nil, value: ByteBuffer(string: "b"))
        let batch = try RecordBatch(validating: builder.build().buffer)
        XCTAssertEqual(batch.baseOffset, 1000)
        XCTAssertEqual(batch.lastOffset, 1001)
        XCTAssertEqual(batch.nextOffset, 1002)
        XCTAssertEqual(batch.partitionLeaderEpoch, 3)
        XCTAssertEqual(batch.producerId, 4242)
        XCTAssertEqual(batch.producerEpoch, 7)
        XCTAssertEqual(batch.baseSequence, 10)
        XCTAssertEqual(batch.lastSequence, 11)
        XCTAssertTrue(batch.isTransactional)
        XCTAssertTrue(batch.isLogAppendTime)
        XCTAssertFalse(batch.isControl)
    }

    func testBuilderWithACompressedPayloadNamesTheCodecAndKeepsThePayload() throws {
        var builder = RecordBatchBuilder(baseTimestamp: 0)
        builder.append(key: nil, value: ByteBuffer(string: "x"))
        let opaque = ByteBuffer(bytes: [0x1F, 0x8B, 0x08, 0x00, 0xDE, 0xAD])  // stands in for gzip output
        let batch = try RecordBatch(validating: builder.build(compressedPayload: opaque, codec: .gzip).buffer)
        XCTAssertEqual(batch.compression, .gzip)
        XCTAssertEqual(batch.recordsPayload, opaque)
        XCTAssertEqual(batch.recordCount, 1)
        XCTAssertThrowsError(try batch.records())
    }

    func testEmptyBuilderMakesAValidBatchWithNoRecords() throws {
        let batch = try RecordBatch(validating: RecordBatchBuilder(baseTimestamp: 0).build().buffer)
        XCTAssertEqual(batch.sizeInBytes, RecordBatch.headerSize)
        XCTAssertEqual(batch.recordCount, 0)
        var iterator = try batch.records()
        XCTAssertNil(try iterator.next())
    }

    // MARK: - Rewriting in place

    func testSettingBaseOffsetAndLeaderEpochKeepsTheCRCValid() throws {
        for name in ["batch-kafka-python-none", "batch-confluent-kafka-lz4", "batch-synthetic-none-control"] {
            var batch = try RecordBatch(validating: Fixture.buffer(name))
            let crc = batch.crc
            batch.setBaseOffset(1_000_000)
            batch.setPartitionLeaderEpoch(17)
            XCTAssertEqual(batch.baseOffset, 1_000_000, name)
            XCTAssertEqual(batch.partitionLeaderEpoch, 17, name)
            XCTAssertEqual(batch.lastOffset, 1_000_000 + Int64(batch.lastOffsetDelta), name)
            XCTAssertEqual(batch.crc, crc, "\(name): the stored CRC is untouched")
            // Re-validating with the CRC check proves the rewritten fields are outside it.
            let again = try RecordBatch(validating: batch.buffer)
            XCTAssertEqual(again.baseOffset, 1_000_000, name)
        }
    }

    func testStampingLogAppendTimeRewritesTheCRC() throws {
        var batch = try RecordBatch(validating: Fixture.buffer("batch-kafka-python-none"))
        let crc = batch.crc
        batch.setLogAppendTime(1_800_000_000_000)
        XCTAssertTrue(batch.isLogAppendTime)
        XCTAssertEqual(batch.maxTimestamp, 1_800_000_000_000)
        XCTAssertNotEqual(batch.crc, crc)
        XCTAssertNoThrow(try RecordBatch(validating: batch.buffer))
    }

    // MARK: - Rejections

    func testAFlippedPayloadByteFailsTheCRC() throws {
        let bytes = try uncompressedFixture()
        for offset in RecordBatch.headerSize..<bytes.count {
            var corrupted = bytes
            corrupted[offset] ^= 0x01
            var buffer = ByteBuffer(bytes: corrupted)
            assertCorrupt(try RecordBatch.read(from: &buffer), mentioning: "CRC", "byte \(offset)")
            XCTAssertEqual(buffer.readableBytes, corrupted.count, "byte \(offset): reader index moved on a failed read")
            // Without the check the same bytes frame fine: the CRC is what caught it.
            XCTAssertNoThrow(try RecordBatch(validating: ByteBuffer(bytes: corrupted), verifyCRC: false), "byte \(offset)")
        }
    }

    func testAFlippedByteInsideTheCRCCoveredHeaderIsCaught() throws {
        let bytes = try uncompressedFixture()
        // attributes .. record count: every flip is caught, by the CRC or by an earlier check.
        for offset in 21..<RecordBatch.headerSize {
            var corrupted = bytes
            corrupted[offset] ^= 0x80
            assertCorrupt(try RecordBatch(validating: ByteBuffer(bytes: corrupted)), "byte \(offset)")
        }
        // A flipped stored CRC is caught too.
        for offset in 17..<21 {
            var corrupted = bytes
            corrupted[offset] ^= 0x01
            assertCorrupt(try RecordBatch(validating: ByteBuffer(bytes: corrupted)), mentioning: "CRC", "byte \(offset)")
        }
    }

    func testATruncatedBatchIsIncompleteToReadAndCorruptToValidate() throws {
        let bytes = try uncompressedFixture()
        for length in 0..<bytes.count {
            var buffer = ByteBuffer(bytes: bytes.prefix(length))
            XCTAssertNil(try RecordBatch.read(from: &buffer), "\(length) bytes")
            XCTAssertEqual(buffer.readableBytes, length, "\(length) bytes: reader index moved")
            assertCorrupt(try RecordBatch(validating: ByteBuffer(bytes: bytes.prefix(length))), "\(length) bytes")
        }
    }

    func testABatchLengthThatIsNegativeOrShorterThanTheHeaderIsRejected() throws {
        let bytes = try uncompressedFixture()
        for length: Int32 in [-1, Int32.min, 0, 1, 48] {
            var buffer = patched(bytes, at: 8, length)
            assertCorrupt(try RecordBatch.read(from: &buffer), mentioning: "batch length", "length \(length)")
            assertCorrupt(try RecordBatch(validating: patched(bytes, at: 8, length)), "length \(length)")
        }
    }

    func testABatchLengthBeyondTheBytesIsIncompleteToReadAndCorruptToValidate() throws {
        let bytes = try uncompressedFixture()
        for length: Int32 in [317, 100_000, Int32.max] {
            var buffer = patched(bytes, at: 8, length)
            XCTAssertNil(try RecordBatch.read(from: &buffer), "length \(length)")
            assertCorrupt(try RecordBatch(validating: patched(bytes, at: 8, length)), "length \(length)")
        }
    }

    func testANegativeRecordCountIsRejected() throws {
        let bytes = try uncompressedFixture()
        for count: Int32 in [-1, Int32.min] {
            // The CRC is recomputed, so only the count is wrong.
            var buffer = patched(bytes, at: 57, count)
            assertCorrupt(try RecordBatch.read(from: &buffer), mentioning: "record count", "count \(count)")
        }
    }

    func testAnAbsurdRecordCountIsRejectedBeforeIteratingAnUncompressedBatch() throws {
        let bytes = try uncompressedFixture()
        for count: Int32 in [Int32.max, 1 << 20, 39] {  // 267 payload bytes hold at most 38 seven-byte records
            assertCorrupt(try RecordBatch(validating: patched(bytes, at: 57, count)), mentioning: "record count", "count \(count)")
        }
        // A compressed batch cannot be judged before decompression; iterating it still refuses.
        let compressed = patched(try Fixture.bytes("batch-kafka-python-gzip"), at: 57, Int32.max)
        let batch = try RecordBatch(validating: compressed)
        XCTAssertThrowsError(try batch.records())
    }

    func testMoreDeclaredRecordsThanPresentFailsWhenIterating() throws {
        let batch = try RecordBatch(validating: patched(try uncompressedFixture(), at: 57, 5 as Int32))
        var iterator = try batch.records()
        for _ in 0..<3 { XCTAssertNotNil(try iterator.next()) }
        assertCorrupt(try iterator.next())
    }

    /// Kafka rejects a batch whose records run past the declared count ("Incorrect declared
    /// batch size, records still remaining in file"); bytes after the last record are not
    /// silently dropped.
    func testBytesAfterTheDeclaredRecordsFailWhenIterating() throws {
        let batch = try RecordBatch(validating: patched(try uncompressedFixture(), at: 57, 2 as Int32))
        var iterator = try batch.records()
        for _ in 0..<2 { XCTAssertNotNil(try iterator.next()) }
        assertCorrupt(try iterator.next(), mentioning: "after the last")
    }

    func testANegativeLastOffsetDeltaIsRejected() throws {
        assertCorrupt(try RecordBatch(validating: patched(try uncompressedFixture(), at: 23, -1 as Int32)), mentioning: "last offset delta")
    }

    /// The CRC does not cover the base offset, so a corrupted segment can hold any value
    /// there; one whose last offset cannot be represented must be refused, not trap later.
    func testABaseOffsetWhoseLastOffsetOverflowsIsRejected() throws {
        let bytes = try uncompressedFixture()  // last offset delta 2
        for base in [Int64.max, Int64.max - 2] {
            var buffer = patched(bytes, at: 0, base)
            assertCorrupt(try RecordBatch.read(from: &buffer), mentioning: "offset", "base \(base)")
        }
        let highest = try RecordBatch(validating: patched(bytes, at: 0, Int64.max - 3))
        XCTAssertEqual(highest.lastOffset, Int64.max - 1)
        XCTAssertEqual(highest.nextOffset, Int64.max)
    }

    func testMalformedRecordFieldsFailWhenIterating() throws {
        // One record: length, attributes, timestamp delta, offset delta, key "k", value "v", no headers.
        var builder = RecordBatchBuilder(baseTimestamp: 0)
        builder.append(key: ByteBuffer(string: "k"), value: ByteBuffer(string: "v"))
        let bytes = Array(builder.build().buffer.readableBytesView)
        let record = RecordBatch.headerSize
        XCTAssertEqual(Array(bytes[record...]), [
            0x10,  // record length 8
            0x00,  // attributes
            0x00,  // timestamp delta 0
            0x00,  // offset delta 0
            0x02,  // key length 1
            0x6b,  // "k"
            0x02,  // value length 1
            0x76,  // "v"
            0x00,  // 0 headers
        ])
        let cases: [(offset: Int, byte: UInt8, why: String)] = [
            (record + 4, 0x03, "key length -2"),
            (record + 4, 0x09, "key length -5"),
            (record + 4, 0x0c, "key length 6, more than the bytes left"),
            (record + 4, 0x7e, "key length 63, more than the bytes left"),
            (record + 6, 0x03, "value length -2"),
            (record + 6, 0x06, "value length 3, more than the bytes left"),
            (record + 8, 0x01, "header count -1"),
            (record + 8, 0x02, "one header but no bytes for it"),
            (record + 0, 0x01, "record length -1"),
            (record + 0, 0x12, "record length 9, more than the payload"),
            (record + 0, 0x0a, "record length 5, cutting the record short"),
        ]
        for c in cases {
            var corrupted = bytes
            corrupted[c.offset] = c.byte
            let batch = try RecordBatch(validating: fixingCRC(corrupted))
            var iterator = try batch.records()
            assertCorrupt(try iterator.next(), c.why)
        }
        // A record length longer than its fields leaves bytes unread inside the record...
        var padded = bytes
        padded[record] = 0x12  // record length 9
        padded.append(0x00)    // one stray byte after "0 headers"
        var iterator = try RecordBatch(validating: fixingCRC(padded, lengthDelta: 1)).records()
        assertCorrupt(try iterator.next(), mentioning: "left inside a record")
        // ...and a varint that never ends is malformed, not an out-of-bounds read.
        var endless = bytes
        for i in (record + 4)..<endless.count { endless[i] = 0xFF }
        iterator = try RecordBatch(validating: fixingCRC(endless)).records()
        assertCorrupt(try iterator.next())
    }

    func testALegacyMessageSetIsRejectedAsTheOldFormat() throws {
        for magic: UInt8 in [0, 1] {
            for value in [Array("hello".utf8), Array(repeating: UInt8(ascii: "x"), count: 100)] {
                let message = legacyMessageSet(magic: magic, value: value)
                var buffer = ByteBuffer(bytes: message)
                XCTAssertThrowsError(try RecordBatch.read(from: &buffer), "magic \(magic)") { error in
                    XCTAssertEqual((error as? KafkaProtocolError)?.code, .legacyMessageFormat, "magic \(magic): \(error)")
                }
                XCTAssertThrowsError(try RecordBatch(validating: ByteBuffer(bytes: message)), "magic \(magic), \(message.count) bytes") { error in
                    XCTAssertEqual((error as? KafkaProtocolError)?.code, .legacyMessageFormat, "magic \(magic), \(message.count) bytes: \(error)")
                }
            }
        }
    }

    func testAnUnknownMagicIsCorruptNotLegacy() throws {
        for magic: UInt8 in [3, 0x7F, 0x80, 0xFF] {  // 0x80 and 0xFF are negative as Kafka's signed byte
            var bytes = try uncompressedFixture()
            bytes[16] = magic
            var buffer = ByteBuffer(bytes: bytes)
            assertCorrupt(try RecordBatch.read(from: &buffer), mentioning: "magic", "magic \(magic)")
            assertCorrupt(try RecordBatch(validating: ByteBuffer(bytes: bytes)), mentioning: "magic", "magic \(magic)")
        }
    }

    // MARK: - CRC32C

    func testCRC32CKnownVectors() {
        let vectors: [(bytes: [UInt8], crc: UInt32, what: String)] = [
            ([], 0, "empty"),
            (Array("123456789".utf8), 0xE306_9283, "the check string"),
            // RFC 3720 (iSCSI), appendix B.4.
            ([UInt8](repeating: 0x00, count: 32), 0x8A91_36AA, "32 zero bytes"),
            ([UInt8](repeating: 0xFF, count: 32), 0x62A8_AB43, "32 0xFF bytes"),
            ((0..<32).map { UInt8($0) }, 0x46DD_794E, "32 ascending bytes"),
            ((0..<32).reversed().map { UInt8($0) }, 0x113F_DB5C, "32 descending bytes"),
        ]
        for v in vectors {
            XCTAssertEqual(CRC32C.checksum(v.bytes), v.crc, v.what)
            XCTAssertEqual(v.bytes.withUnsafeBytes { CRC32C.portableChecksum($0) }, v.crc, "portable, \(v.what)")
            XCTAssertEqual(CRC32C.checksum(ByteBuffer(bytes: v.bytes)), v.crc, "ByteBuffer, \(v.what)")
        }
    }

    func testHardwareAndPortableCRC32CAgreeOnRandomBuffers() {
        var rng = SplitMix64(seed: 0xC0FFEE)
        let pool = (0..<10_016).map { _ in UInt8.random(in: 0...255, using: &rng) }
        // Every size up to 300, then sizes around and past the 3 KiB three-stream block.
        var sizes = Array(0...300)
        sizes += [1023, 1024, 1025, 2047, 2048, 3071, 3072, 3073, 3079, 3080, 4096, 6143, 6144, 6145, 9215, 9216, 9217, 10_000]
        sizes += (0..<40).map { _ in Int.random(in: 301...10_000, using: &rng) }
        pool.withUnsafeBytes { all in
            for size in sizes {
                let start = Int.random(in: 0...(all.count - size), using: &rng)  // unaligned starts too
                let slice = UnsafeRawBufferPointer(rebasing: all[start..<(start + size)])
                let seed = UInt32.random(in: 0...UInt32.max, using: &rng)
                XCTAssertEqual(CRC32C.checksum(slice), CRC32C.portableChecksum(slice),
                               "size \(size) at \(start) (hardware: \(CRC32C.isHardwareAccelerated))")
                XCTAssertEqual(CRC32C.checksum(slice, extending: seed), CRC32C.portableChecksum(slice, extending: seed),
                               "size \(size), extending \(seed)")
            }
        }
    }

    func testCRC32CExtendedPiecewiseEqualsOneShot() {
        var rng = SplitMix64(seed: 7)
        let bytes = (0..<9000).map { _ in UInt8.random(in: 0...255, using: &rng) }
        let whole = CRC32C.checksum(bytes)
        for split in [0, 1, 7, 8, 3072, 4000, 8999, 9000] {
            let first = CRC32C.checksum(bytes[..<split])
            XCTAssertEqual(CRC32C.checksum(bytes[split...], extending: first), whole, "split at \(split)")
            let portableFirst = bytes[..<split].withUnsafeBytes { CRC32C.portableChecksum($0) }
            XCTAssertEqual(bytes[split...].withUnsafeBytes { CRC32C.portableChecksum($0, extending: portableFirst) }, whole, "portable, split at \(split)")
        }
    }

    // MARK: - Helpers

    /// `bytes` with `value` written big-endian at `offset` and the CRC recomputed, so the
    /// field under test is the only thing wrong.
    private func patched<T: FixedWidthInteger>(_ bytes: [UInt8], at offset: Int, _ value: T) -> ByteBuffer {
        var buffer = ByteBuffer(bytes: bytes)
        buffer.setInteger(value, at: offset)
        return fixingCRC(Array(buffer.readableBytesView))
    }

    /// `bytes` with the CRC recomputed (and the batch length grown by `lengthDelta`).
    private func fixingCRC(_ bytes: [UInt8], lengthDelta: Int32 = 0) -> ByteBuffer {
        var buffer = ByteBuffer(bytes: bytes)
        if lengthDelta != 0 {
            buffer.setInteger(buffer.getInteger(at: 8, as: Int32.self)! + lengthDelta, at: 8)
        }
        if bytes.count > 21 {
            buffer.setInteger(CRC32C.checksum(bytes[21...]), at: 17)
        }
        return buffer
    }

    /// A one-message legacy message set (magic 0 or 1), as pre-0.11 producers wrote.
    private func legacyMessageSet(magic: UInt8, value: [UInt8]) -> [UInt8] {
        var message = ByteBuffer()
        message.writeInteger(0 as UInt32)  // CRC-32 of the rest; never reached, so left zero
        message.writeInteger(magic)
        message.writeInteger(0 as UInt8)  // attributes
        if magic == 1 { message.writeInteger(1_700_000_000_000 as Int64) }  // timestamp
        message.writeInteger(-1 as Int32)  // null key
        message.writeInteger(Int32(value.count))
        message.writeBytes(value)
        var set = ByteBuffer()
        set.writeInteger(0 as Int64)  // offset
        set.writeInteger(Int32(message.readableBytes))  // message size
        set.writeBuffer(&message)
        return Array(set.readableBytesView)
    }

    private func assertCorrupt<T>(
        _ expression: @autoclosure () throws -> T, mentioning text: String? = nil, _ message: String = "",
        file: StaticString = #filePath, line: UInt = #line
    ) {
        XCTAssertThrowsError(try expression(), message, file: file, line: line) { error in
            guard let e = error as? KafkaProtocolError else {
                return XCTFail("\(message): \(error) is not a KafkaProtocolError", file: file, line: line)
            }
            XCTAssertEqual(e.code, .corruptRecordBatch, "\(message): \(e)", file: file, line: line)
            if let text {
                XCTAssertTrue(e.description.contains(text), "\(message): \"\(e)\" does not mention \(text)", file: file, line: line)
            }
        }
    }
}
