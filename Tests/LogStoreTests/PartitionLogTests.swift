import Foundation
import KafkaProtocol
import Logging
import LogStore
import NIOCore
import XCTest

final class PartitionLogTests: XCTestCase {
    var directory: String!

    override func setUp() {
        directory = NSTemporaryDirectory() + "logstore-\(UUID().uuidString)"
    }

    override func tearDown() {
        try? FileManager.default.removeItem(atPath: directory)
    }

    func open(_ config: LogConfig = LogConfig()) throws -> PartitionLog {
        try PartitionLog(directory: directory + "/t-0", topic: "t", partition: 0, config: config, logger: Logger(label: "test"))
    }

    /// A batch of `count` records "v<first+i>", stamped `timestamp`.
    func batch(_ count: Int, first: Int = 0, timestamp: Int64 = 1_000, valueSize: Int = 0) -> ByteBuffer {
        var builder = RecordBatchBuilder(baseTimestamp: timestamp)
        for i in 0..<count {
            let text = "v\(first + i)" + String(repeating: "x", count: valueSize)
            builder.append(key: nil, value: ByteBuffer(string: text), timestamp: timestamp)
        }
        return builder.build().buffer
    }

    func values(_ buffer: ByteBuffer) throws -> [(Int64, String)] {
        var reader = RecordBatchReader(buffer)
        var out: [(Int64, String)] = []
        while let b = try reader.next() {
            var it = try b.records()
            while let r = try it.next() {
                out.append((b.baseOffset + Int64(r.offsetDelta), String(buffer: r.value!)))
            }
        }
        return out
    }

    func testAppendAssignsContiguousOffsets() throws {
        let log = try open()
        let a = try log.append(batch(3))
        let b = try log.append(batch(2, first: 3))
        XCTAssertEqual(a.firstOffset, 0)
        XCTAssertEqual(a.lastOffset, 2)
        XCTAssertEqual(b.firstOffset, 3)
        XCTAssertEqual(log.logEndOffset, 5)
        XCTAssertEqual(log.highWatermark, 5)
        let read = try log.read(from: 0, maxBytes: 1 << 20)
        XCTAssertEqual(try values(read.records).map(\.0), [0, 1, 2, 3, 4])
        XCTAssertEqual(try values(read.records).map(\.1), ["v0", "v1", "v2", "v3", "v4"])
    }

    func testBatchesAreStoredExactlyAsReceivedExceptTheBaseOffset() throws {
        let log = try open()
        _ = try log.append(batch(1))
        let original = batch(2, first: 1)
        _ = try log.append(original)
        var stored = try log.read(from: 1, maxBytes: 1 << 20).records
        XCTAssertEqual(stored.readInteger(as: Int64.self), 1)
        var rest = original
        rest.moveReaderIndex(forwardBy: 8)
        // Leader epoch (bytes 12..<16) is rewritten too; everything the CRC covers is identical.
        XCTAssertEqual(Array(stored.readableBytesView.dropFirst(9)), Array(rest.readableBytesView.dropFirst(9)))
    }

    func testFetchFromMidBatchReturnsWholeBatch() throws {
        let log = try open()
        _ = try log.append(batch(5))
        _ = try log.append(batch(5, first: 5))
        let read = try log.read(from: 7, maxBytes: 1 << 20)
        XCTAssertEqual(try values(read.records).first?.0, 5, "the batch holding offset 7 starts at 5")
    }

    func testReadStopsAtWholeBatchesWithinMaxBytesButReturnsAtLeastOne() throws {
        let log = try open()
        for i in 0..<10 { _ = try log.append(batch(1, first: i, valueSize: 100)) }
        let one = try log.read(from: 0, maxBytes: 10)
        XCTAssertEqual(try values(one.records).count, 1, "first batch comes back whole even when larger than maxBytes")
        let some = try log.read(from: 0, maxBytes: 400)
        XCTAssertGreaterThan(try values(some.records).count, 1)
        XCTAssertLessThan(try values(some.records).count, 10)
        XCTAssertLessThanOrEqual(try some.records.readableBytes, 400)
        XCTAssertEqual(some.byteCount, try some.records.readableBytes)
    }

    func testReadOutsideTheLogIsOffsetOutOfRange() throws {
        let log = try open()
        _ = try log.append(batch(2))
        XCTAssertEqual(try log.read(from: 2, maxBytes: 100).records.readableBytes, 0)
        XCTAssertThrowsError(try log.read(from: 3, maxBytes: 100)) { XCTAssertEqual(($0 as? LogStoreError)?.kind, .offsetOutOfRange) }
        XCTAssertThrowsError(try log.read(from: -1, maxBytes: 100))
    }

    func testRejectsCorruptAndLegacyAndOversizedBatchesWithoutWriting() throws {
        var config = LogConfig()
        config.maxMessageBytes = 200
        let log = try open(config)
        var corrupt = batch(2)
        corrupt.setInteger(UInt8(0xFF), at: corrupt.writerIndex - 1)
        XCTAssertThrowsError(try log.append(corrupt)) { XCTAssertEqual(($0 as? LogStoreError)?.kind, .corrupt) }
        var legacy = batch(1)
        legacy.setInteger(Int8(1), at: 16)
        XCTAssertThrowsError(try log.append(legacy)) { XCTAssertEqual(($0 as? LogStoreError)?.kind, .unsupportedFormat) }
        XCTAssertThrowsError(try log.append(batch(1, valueSize: 500))) { XCTAssertEqual(($0 as? LogStoreError)?.kind, .recordTooLarge) }
        // A valid batch followed by a torn one: nothing is written.
        var mixed = batch(1)
        var torn = batch(1)
        torn.moveWriterIndex(to: torn.writerIndex - 3)
        mixed.writeBuffer(&torn)
        XCTAssertThrowsError(try log.append(mixed))
        XCTAssertEqual(log.logEndOffset, 0)
    }

    func testRollsSegmentsBySizeAndReadsAcrossThem() throws {
        var config = LogConfig()
        config.segmentBytes = 500
        let log = try open(config)
        for i in 0..<20 { _ = try log.append(batch(1, first: i, valueSize: 50)) }
        XCTAssertGreaterThan(log.segmentCount, 3)
        var offset: Int64 = 0
        var seen: [String] = []
        while offset < log.logEndOffset {
            let r = try values(log.read(from: offset, maxBytes: 1 << 20).records)
            seen += r.map(\.1)
            offset = r.last!.0 + 1
        }
        XCTAssertEqual(seen, (0..<20).map { "v\($0)" + String(repeating: "x", count: 50) })
        let names = try FileManager.default.contentsOfDirectory(atPath: directory + "/t-0").filter { $0.hasSuffix(".log") }.sorted()
        XCTAssertEqual(names.first, "00000000000000000000.log")
    }

    func testRecoveryTruncatesATornTailAndKeepsEverythingBefore() throws {
        do {
            let log = try open()
            for i in 0..<5 { _ = try log.append(batch(2, first: i * 2)) }
            try log.flush()
            // No close(): as after a crash, the recovery point is behind.
        }
        let path = directory + "/t-0/00000000000000000000.log"
        let handle = FileHandle(forWritingAtPath: path)!
        handle.seekToEndOfFile()
        handle.write(Data(batch(3, first: 10).readableBytesView.prefix(40)))  // a torn batch
        handle.closeFile()
        let log = try open()
        XCTAssertEqual(log.logEndOffset, 10)
        XCTAssertEqual(try values(log.read(from: 0, maxBytes: 1 << 20).records).count, 10)
        XCTAssertEqual(try log.append(batch(1, first: 10)).firstOffset, 10)
    }

    func testRecoveryTruncatesGarbageAfterValidBatchesAfterACleanShutdown() throws {
        do {
            let log = try open()
            for i in 0..<3 { _ = try log.append(batch(2, first: i * 2)) }
            try log.close()
        }
        let path = directory + "/t-0/00000000000000000000.log"
        let handle = FileHandle(forWritingAtPath: path)!
        handle.seekToEndOfFile()
        handle.write(Data(repeating: 0, count: 100))
        handle.closeFile()
        let log = try open()
        XCTAssertEqual(log.logEndOffset, 6)
        XCTAssertEqual(try values(log.read(from: 0, maxBytes: 1 << 20).records).count, 6)
    }

    func testRecoveryTruncatesAtACorruptBatch() throws {
        do {
            let log = try open()
            for i in 0..<3 { _ = try log.append(batch(1, first: i)) }
        }
        let path = directory + "/t-0/00000000000000000000.log"
        var bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        bytes[bytes.count - 2] ^= 0xFF  // inside the last batch: its CRC no longer matches
        try bytes.write(to: URL(fileURLWithPath: path))
        let log = try open()
        XCTAssertEqual(log.logEndOffset, 2)
    }

    func testMissingIndexesAreRebuilt() throws {
        var config = LogConfig()
        config.indexIntervalBytes = 100
        do {
            let log = try open(config)
            for i in 0..<50 { _ = try log.append(batch(1, first: i, valueSize: 30)) }
            try log.close()
        }
        try FileManager.default.removeItem(atPath: directory + "/t-0/00000000000000000000.index")
        try FileManager.default.removeItem(atPath: directory + "/t-0/00000000000000000000.timeindex")
        let log = try open(config)
        XCTAssertEqual(log.logEndOffset, 50)
        XCTAssertEqual(try values(log.read(from: 37, maxBytes: 1 << 20).records).first?.0, 37)
        let indexSize = try FileManager.default.attributesOfItem(atPath: directory + "/t-0/00000000000000000000.index")[.size] as! Int
        XCTAssertGreaterThan(indexSize, 0)
    }

    func testCleanShutdownSurvivesRestartWithSameOffsets() throws {
        do {
            let log = try open()
            for i in 0..<4 { _ = try log.append(batch(3, first: i * 3)) }
            try log.close()
        }
        let log = try open()
        XCTAssertEqual(log.logEndOffset, 12)
        XCTAssertEqual(try values(log.read(from: 0, maxBytes: 1 << 20).records).map(\.1), (0..<12).map { "v\($0)" })
    }

    func testRetentionByTimeDeletesOldClosedSegmentsAndMovesTheStart() throws {
        var config = LogConfig()
        config.segmentBytes = 300
        config.retentionMs = 10_000
        let log = try open(config)
        for i in 0..<10 { _ = try log.append(batch(1, first: i, timestamp: 1_000, valueSize: 50)) }
        for i in 10..<20 { _ = try log.append(batch(1, first: i, timestamp: 100_000, valueSize: 50)) }
        let deleted = try log.applyRetention(now: 105_000)
        XCTAssertGreaterThan(deleted, 0)
        XCTAssertGreaterThan(log.logStartOffset, 0)
        XCTAssertLessThanOrEqual(log.logStartOffset, 10)
        XCTAssertThrowsError(try log.read(from: 0, maxBytes: 100))
        XCTAssertEqual(try values(log.read(from: 10, maxBytes: 1 << 20).records).first?.0, 10)
    }

    func testRetentionBySizeKeepsTheNewestBytes() throws {
        var config = LogConfig()
        config.segmentBytes = 300
        config.retentionBytes = 600
        config.retentionMs = -1
        let log = try open(config)
        for i in 0..<30 { _ = try log.append(batch(1, first: i, valueSize: 50)) }
        try log.applyRetention()
        XCTAssertLessThanOrEqual(log.sizeInBytes, 600 + 300)
        XCTAssertGreaterThan(log.logStartOffset, 0)
        XCTAssertEqual(log.logEndOffset, 30)
    }

    func testDeleteRecordsMovesTheLogStartOffsetDurably() throws {
        do {
            let log = try open()
            // Recent timestamps, so time retention (7 days) does not also delete the segment.
            _ = try log.append(batch(10, timestamp: currentTimeMillis()))
            XCTAssertEqual(try log.deleteRecords(before: 4), 4)
            XCTAssertThrowsError(try log.deleteRecords(before: 11))
        }
        let log = try open()
        XCTAssertEqual(log.logStartOffset, 4)
    }

    func testOffsetForTimestamp() throws {
        let log = try open()
        _ = try log.append(batch(2, timestamp: 1_000))
        _ = try log.append(batch(2, first: 2, timestamp: 2_000))
        _ = try log.append(batch(2, first: 4, timestamp: 3_000))
        XCTAssertEqual(try log.offset(forTimestamp: 1_500)?.offset, 2)
        XCTAssertEqual(try log.offset(forTimestamp: 500)?.offset, 0)
        XCTAssertNil(try log.offset(forTimestamp: 3_001))
        XCTAssertEqual(log.maxTimestampOffset()?.timestamp, 3_000)
    }

    func testOffsetForTimestampLooksInsideTheBatch() throws {
        let log = try open()
        var builder = RecordBatchBuilder(baseTimestamp: 10_000)
        for i in 0..<10 { builder.append(key: nil, value: ByteBuffer(string: "v\(i)"), timestamp: 10_000 + Int64(i) * 1000) }
        _ = try log.append(builder.build().buffer)
        XCTAssertEqual(try log.offset(forTimestamp: 14_500)?.offset, 5)
        XCTAssertEqual(try log.offset(forTimestamp: 14_500)?.timestamp, 15_000)
        XCTAssertEqual(try log.offset(forTimestamp: 10_000)?.offset, 0)
    }

    func testFlushAdvancesTheFlushedOffset() throws {
        let log = try open()
        _ = try log.append(batch(3))
        try log.flush(upTo: 3)
        XCTAssertEqual(log.flushedOffset, 3)
    }
}
