import Foundation
import KafkaCompression
import KafkaProtocol
import Logging
import LogStore
import NIOCore
import XCTest

final class CompactionTests: XCTestCase {
    var directory: String!

    override func setUp() {
        directory = NSTemporaryDirectory() + "compaction-\(UUID().uuidString)"
    }

    override func tearDown() {
        try? FileManager.default.removeItem(atPath: directory)
    }

    func compactConfig() -> LogConfig {
        var c = LogConfig()
        c.compact = true
        c.deleteOldSegments = false
        c.segmentBytes = 600
        c.minCleanableDirtyRatio = 0.0
        return c
    }

    func open(_ config: LogConfig) throws -> PartitionLog {
        try PartitionLog(directory: directory + "/c-0", topic: "c", partition: 0, config: config, logger: Logger(label: "test"))
    }

    func batch(_ records: [(String?, String?)], timestamp: Int64 = Int64(Date().timeIntervalSince1970 * 1000),
               codec: CompressionCodec = .none) throws -> ByteBuffer {
        var builder = RecordBatchBuilder(baseTimestamp: timestamp)
        for (k, v) in records { builder.append(key: k.map { ByteBuffer(string: $0) }, value: v.map { ByteBuffer(string: $0) }) }
        return try builder.build(compression: codec).buffer
    }

    /// Every record in the log as (offset, key, value), reading batch after batch.
    func contents(_ log: PartitionLog) throws -> [(Int64, String, String?)] {
        var out: [(Int64, String, String?)] = []
        var offset = log.logStartOffset
        while offset < log.logEndOffset {
            var reader = RecordBatchReader(try log.read(from: offset, maxBytes: 1 << 20).records)
            var last = offset
            while let b = try reader.next() {
                var it = b.compression == CompressionCodec.none ? try b.records() : try b.decompressedRecords(maximumSize: 1 << 20)
                while let r = try it.next() {
                    let o = b.baseOffset + Int64(r.offsetDelta)
                    if o >= offset { out.append((o, String(buffer: r.key!), r.value.map { String(buffer: $0) })) }
                }
                last = b.nextOffset
            }
            guard last > offset else { break }
            offset = last
        }
        return out
    }

    func testKeepsTheLatestRecordPerKeyWithItsOriginalOffset() throws {
        let log = try open(compactConfig())
        for round in 0..<6 {
            for k in 0..<4 {
                _ = try log.append(batch([("k\(k)", "v\(k)-\(round)")]))
            }
        }
        let before = log.logEndOffset
        let result = try XCTUnwrap(try log.compact())
        XCTAssertGreaterThan(result.recordsRemoved, 0)
        XCTAssertEqual(log.logEndOffset, before, "offsets do not change")
        let records = try contents(log)
        // Per key, the survivors before the active segment are the latest of the cleaned part.
        let byKey = Dictionary(grouping: records, by: { $0.1 })
        for (key, rs) in byKey {
            XCTAssertEqual(rs.last?.2, "\(key.replacingOccurrences(of: "k", with: "v"))-5", "the newest value of \(key) survives")
        }
        XCTAssertEqual(records.map(\.0), records.map(\.0).sorted(), "offsets still increase")
        XCTAssertLessThan(records.count, 24)
        // The survivors carry their original offsets: k3's last value was written at offset 23.
        XCTAssertEqual(records.last?.0, 23)
    }

    func testReadingFromARemovedOffsetReturnsTheNextSurvivor() throws {
        let log = try open(compactConfig())
        for round in 0..<5 {
            for k in 0..<3 { _ = try log.append(batch([("k\(k)", "r\(round)")])) }
        }
        try log.compact()
        let first = try contents(log).first
        let fromZero = try RecordBatchReader(log.read(from: 0, maxBytes: 1 << 20).records)
        var r = fromZero
        let firstBatch = try XCTUnwrap(try r.next())
        XCTAssertEqual(firstBatch.baseOffset, first?.0)
    }

    func testTombstonesGoAfterDeleteRetention() throws {
        var config = compactConfig()
        config.deleteRetentionMs = 1000
        let log = try open(config)
        let old = Int64(Date().timeIntervalSince1970 * 1000) - 10_000
        _ = try log.append(batch([("a", "1"), ("b", "1")], timestamp: old))
        _ = try log.append(batch([("a", nil)], timestamp: old))  // tombstone, older than delete.retention.ms
        _ = try log.append(batch([("b", nil)]))  // fresh tombstone
        for i in 0..<20 { _ = try log.append(batch([("filler\(i)", String(repeating: "x", count: 40))])) }
        try log.compact()
        let keys = try contents(log).map(\.1)
        XCTAssertFalse(keys.contains("a"), "the old tombstone and the value it deleted are gone")
        XCTAssertTrue(keys.contains("b"), "a fresh tombstone stays so consumers can see the delete")
        XCTAssertEqual(try contents(log).first { $0.1 == "b" }?.2, nil)
    }

    func testCompressedBatchesAreCompactedToo() throws {
        let log = try open(compactConfig())
        for round in 0..<4 {
            _ = try log.append(batch((0..<5).map { ("k\($0)", "v\(round)") }, codec: .lz4))
        }
        for i in 0..<10 { _ = try log.append(batch([("pad\(i)", String(repeating: "y", count: 60))])) }
        let result = try XCTUnwrap(try log.compact())
        XCTAssertGreaterThanOrEqual(result.recordsRemoved, 15)
        let values = Dictionary(try contents(log).map { ($0.1, $0.2) }, uniquingKeysWith: { _, b in b })
        XCTAssertEqual(values["k0"], "v3")
    }

    func testRecordsWithoutAKeyAreRejectedOnCompactedTopics() throws {
        let log = try open(compactConfig())
        XCTAssertThrowsError(try log.append(batch([("k", "v"), (nil, "no key")]))) {
            XCTAssertEqual(($0 as? LogStoreError)?.kind, .invalidRecord)
        }
        XCTAssertThrowsError(try log.append(batch([(nil, "no key")], codec: .gzip)))
        XCTAssertEqual(log.logEndOffset, 0)
    }

    func testMinCompactionLagProtectsYoungRecordsAndRatioGatesCleaning() throws {
        var config = compactConfig()
        config.minCompactionLagMs = 3_600_000
        let log = try open(config)
        for round in 0..<5 { for k in 0..<3 { _ = try log.append(batch([("k\(k)", "r\(round)")])) } }
        XCTAssertNil(try log.compact(), "everything is younger than the lag")
        config.minCompactionLagMs = 0
        config.minCleanableDirtyRatio = 0.99
        log.config = config
        XCTAssertNotNil(try log.compact(), "all closed bytes are dirty the first time")
        XCTAssertNil(try log.compact(), "nothing new is dirty")
    }

    func testACrashMidCleanLeavesTheLogComplete() throws {
        do {
            let log = try open(compactConfig())
            for round in 0..<5 { for k in 0..<3 { _ = try log.append(batch([("k\(k)", "r\(round)")])) } }
            try log.close()
        }
        // A cleaning pass that died after writing its output but before the swap.
        let names = try FileManager.default.contentsOfDirectory(atPath: directory + "/c-0").filter { $0.hasSuffix(".log") }.sorted()
        try Data("half-written".utf8).write(to: URL(fileURLWithPath: directory + "/c-0/" + names[0] + ".cleaned"))
        let log = try open(compactConfig())
        XCTAssertEqual(try contents(log).count, 15, "nothing lost, leftover removed")
        XCTAssertFalse(FileManager.default.fileExists(atPath: directory + "/c-0/" + names[0] + ".cleaned"))
        // And after a real pass, a restart reads the cleaned segments.
        try log.compact()
        let survivors = try contents(log).count
        try log.close()
        XCTAssertEqual(try contents(try open(compactConfig())).count, survivors)
    }

    func testASegmentEmptiedByCompactionDoesNotMoveTheLogStart() throws {
        let log = try open(compactConfig())
        // The first segment holds only values that later ones overwrite.
        for round in 0..<8 { for k in 0..<3 { _ = try log.append(batch([("k\(k)", "r\(round)-" + String(repeating: "z", count: 30))])) } }
        try log.compact()
        try log.applyRetention()
        XCTAssertEqual(log.logStartOffset, 0)
        XCTAssertEqual(Set(try contents(log).map(\.1)), ["k0", "k1", "k2"])
    }

    func testCompactOnlyTopicsAreNotDeletedByRetention() throws {
        var config = compactConfig()
        config.retentionMs = 1
        let log = try open(config)
        for i in 0..<20 { _ = try log.append(batch([("k\(i)", "v")], timestamp: 1000)) }
        XCTAssertEqual(try log.applyRetention(now: Int64(Date().timeIntervalSince1970 * 1000)), 0)
        XCTAssertEqual(log.logStartOffset, 0)
    }
}
