import Broker
import Foundation
import KafkaClient
import KafkaProtocol
import LogStore
import NIOCore
import Tiering
import TributaryTestSupport
import XCTest

/// Tiered storage end to end on a local-directory store: upload, local deletion, reads and
/// timestamp lookups from the store, retention there, and a restart on an empty data dir.
final class TieringTests: XCTestCase {
    var storeDirectory = ""

    override func setUp() {
        storeDirectory = NSTemporaryDirectory() + "tier-store-\(UUID().uuidString)"
    }

    override func tearDown() {
        try? FileManager.default.removeItem(atPath: storeDirectory)
    }

    func tieredBroker(directory: String? = nil) async throws -> TestBroker {
        let store = storeDirectory
        return try await TestBroker(directory: directory) { config in
            config.remoteStorageURL = "file://" + store
            // The test drives the uploader itself.
            config.remoteTaskIntervalMs = 3_600_000
        }
    }

    /// 200 batches of 10 records, 1 s apart in record time, into small segments.
    func fill(_ c: KafkaConnection, topic: String) async throws -> [String] {
        var expected: [String] = []
        for b in 0..<200 {
            var builder = RecordBatchBuilder(baseTimestamp: 1_000_000 + Int64(b) * 1000)
            for r in 0..<10 {
                let value = "record-\(b * 10 + r)"
                builder.append(key: nil, value: ByteBuffer(string: value))
                expected.append(value)
            }
            let response = try await c.send(ProduceRequest(acks: -1, timeoutMs: 5000, topicData: [
                .init(name: topic, partitionData: [.init(index: 0, records: builder.build().buffer)]),
            ]))
            XCTAssertEqual(response.responses[0].partitionResponses[0].errorCode, 0)
        }
        return expected
    }

    func readAll(_ c: KafkaConnection, topic: String, from start: Int64 = 0) async throws -> [String] {
        var offset = start
        var out: [String] = []
        while true {
            let data = try await fetch(c, topic: topic, offset: offset)
            XCTAssertEqual(data.errorCode, 0, "fetch at \(offset)")
            guard data.errorCode == 0 else { return out }
            let got = try values(data.records)
            if got.isEmpty { return out }
            // A fetch returns whole batches, which may begin before the offset asked for.
            var reader = RecordBatchReader(data.records ?? ByteBuffer())
            var records: [(Int64, String)] = []
            while let b = try reader.next() {
                var it = try b.records()
                while let r = try it.next() { records.append((b.baseOffset + Int64(r.offsetDelta), String(buffer: r.value!))) }
            }
            for (o, v) in records where o >= offset { out.append(v) }
            offset = records.last!.0 + 1
        }
    }

    func listOffset(_ c: KafkaConnection, topic: String, _ timestamp: Int64) async throws -> (Int64, Int64) {
        let r = try await c.send(ListOffsetsRequest(replicaId: -1, topics: [.init(name: topic, partitions: [.init(partitionIndex: 0, timestamp: timestamp)])]))
        let p = r.topics[0].partitions[0]
        XCTAssertEqual(p.errorCode, 0)
        return (p.offset, p.timestamp)
    }

    func testHistoryIsReadFromTheStoreAfterLocalRetentionDeletesIt() async throws {
        let broker = try await tieredBroker()
        defer { broker.removeData() }
        let c = try await broker.connect()
        let created = try await c.send(CreateTopicsRequest(topics: [.init(name: "tiered", numPartitions: 1, replicationFactor: 1, configs: [
            .init(name: "remote.storage.enable", value: "true"),
            .init(name: "segment.bytes", value: "4096"),
            .init(name: "local.retention.bytes", value: "1"),
            .init(name: "retention.ms", value: "-1"),
        ])]))
        XCTAssertEqual(created.topics[0].errorCode, 0, created.topics[0].errorMessage ?? "")
        let expected = try await fill(c, topic: "tiered")
        let log = try XCTUnwrap(broker.broker.topics.log("tiered", 0))
        let segmentsBefore = log.segmentCount
        XCTAssertGreaterThan(segmentsBefore, 10)

        await broker.broker.tiering!.tierOnce()

        // Everything closed went to the store and left the disk; the log still starts at 0.
        XCTAssertEqual(log.segmentCount, 1, "only the active segment stays local")
        XCTAssertEqual(log.logStartOffset, 0)
        XCTAssertGreaterThan(log.localLogStartOffset, 0)
        XCTAssertEqual(log.tieredOffset, log.localLogStartOffset)
        let manifestPath = storeDirectory + "/tiered-\(created.topics[0].topicId)/0/manifest.json"
        let manifest = try JSONDecoder().decode(PartitionManifest.self, from: Data(contentsOf: URL(fileURLWithPath: manifestPath)))
        XCTAssertEqual(manifest.segments.count, segmentsBefore - 1)
        XCTAssertEqual(manifest.segments.first?.baseOffset, 0)
        for (a, b) in zip(manifest.segments, manifest.segments.dropFirst()) { XCTAssertEqual(a.nextOffset, b.baseOffset) }

        // A replay from 0 reads the store, then the disk, in order.
        let replayed = try await readAll(c, topic: "tiered")
        XCTAssertTrue(replayed == expected, "replayed \(replayed.count) records of \(expected.count)")
        // Starting in the middle of a tiered segment returns the records from there on.
        let middle = try await readAll(c, topic: "tiered", from: 1234)
        XCTAssertTrue(middle == Array(expected[1234...]), "read \(middle.count) records from 1234")

        // ListOffsets: earliest is the tiered start, earliest-local the disk's; by time looks in the store.
        let earliest = try await listOffset(c, topic: "tiered", -2)
        XCTAssertEqual(earliest.0, 0)
        let earliestLocal = try await listOffset(c, topic: "tiered", -4)
        XCTAssertEqual(earliestLocal.0, log.localLogStartOffset)
        let byTime = try await listOffset(c, topic: "tiered", 1_000_000 + 37 * 1000)
        XCTAssertEqual(byTime.0, 370)
        XCTAssertEqual(byTime.1, 1_037_000)
        let pastEnd = try await listOffset(c, topic: "tiered", 9_000_000)
        XCTAssertEqual(pastEnd.0, -1)

        // The store appears as a second log dir with the tiered bytes and no upload lag.
        let dirs = try await c.send(DescribeLogDirsRequest(topics: nil))
        let remote = try XCTUnwrap(dirs.results.first { $0.logDir.hasPrefix("remote:") })
        XCTAssertEqual(remote.topics.first?.partitions.first?.partitionSize, manifest.sizeInBytes)
        XCTAssertEqual(remote.topics.first?.partitions.first?.offsetLag, try XCTUnwrap(log.untieredBytesAndSegments.bytes))

        // Total retention in the store: retention.bytes drops the oldest tiered segments and moves the log start.
        let altered = try await c.send(IncrementalAlterConfigsRequest(resources: [.init(resourceType: 2, resourceName: "tiered", configs: [
            .init(name: "retention.bytes", configOperation: 0, value: "20000"),
        ])]))
        XCTAssertEqual(altered.responses[0].errorCode, 0)
        await broker.broker.tiering!.tierOnce()
        XCTAssertGreaterThan(log.logStartOffset, 0)
        let after = try JSONDecoder().decode(PartitionManifest.self, from: Data(contentsOf: URL(fileURLWithPath: manifestPath)))
        XCTAssertEqual(after.segments.first?.baseOffset, log.logStartOffset)
        XCTAssertFalse(FileManager.default.fileExists(atPath: storeDirectory + "/tiered-\(created.topics[0].topicId)/0/00000000000000000000.log"))
        let fromStart = try await readAll(c, topic: "tiered", from: log.logStartOffset)
        XCTAssertTrue(fromStart == Array(expected[Int(log.logStartOffset)...]), "read \(fromStart.count) records from the new start")
        c.close()
        await broker.stop()
    }

    func testAnEmptyBrokerServesTheTieredHistoryAndContinuesItsOffsets() async throws {
        let first = try await tieredBroker()
        defer { first.removeData() }
        var c = try await first.connect()
        _ = try await c.send(CreateTopicsRequest(topics: [.init(name: "history", numPartitions: 1, replicationFactor: 1, configs: [
            .init(name: "remote.storage.enable", value: "true"),
            .init(name: "segment.bytes", value: "4096"),
            .init(name: "local.retention.ms", value: "0"),
            .init(name: "retention.ms", value: "-1"),  // the records are stamped in 1970
        ])]))
        let expected = try await fill(c, topic: "history")
        // Roll the active segment so all of it can be tiered.
        let log = try XCTUnwrap(first.broker.topics.log("history", 0))
        try log.roll()
        await first.broker.tiering!.tierOnce()
        XCTAssertEqual(log.tieredOffset, 2000)
        // A leftover of an interrupted upload: the next start removes it.
        let id = try XCTUnwrap(first.broker.topics.topic("history")?.id)
        let orphan = storeDirectory + "/history-\(id)/0/00000000000000099999.log"
        try Data("partial".utf8).write(to: URL(fileURLWithPath: orphan))
        c.close()
        await first.stop()

        // Same store, empty data directory.
        let second = try await tieredBroker()
        defer { second.removeData() }
        c = try await second.connect()
        XCTAssertEqual(second.broker.topics.topic("history")?.id, id)
        XCTAssertFalse(FileManager.default.fileExists(atPath: orphan))
        let restored = try XCTUnwrap(second.broker.topics.log("history", 0))
        XCTAssertEqual([restored.logStartOffset, restored.localLogStartOffset, restored.logEndOffset, restored.tieredOffset], [0, 2000, 2000, 2000])
        let replayed = try await readAll(c, topic: "history")
        XCTAssertTrue(replayed == expected, "replayed \(replayed.count) records of \(expected.count)")
        let next = try await produce(c, topic: "history", ["after-restore"])
        XCTAssertEqual(next.baseOffset, 2000)
        let tail = try await readAll(c, topic: "history", from: 1999)
        XCTAssertEqual(tail, ["record-1999", "after-restore"])
        c.close()
        await second.stop()
    }

    func testDeletingATopicRemovesItsTieredData() async throws {
        let broker = try await tieredBroker()
        defer { broker.removeData() }
        let c = try await broker.connect()
        _ = try await c.send(CreateTopicsRequest(topics: [.init(name: "gone", numPartitions: 2, replicationFactor: 1, configs: [
            .init(name: "remote.storage.enable", value: "true"), .init(name: "segment.bytes", value: "4096"),
            .init(name: "retention.ms", value: "-1"),
        ])]))
        _ = try await fill(c, topic: "gone")
        await broker.broker.tiering!.tierOnce()
        let id = try XCTUnwrap(broker.broker.topics.topic("gone")?.id)
        XCTAssertTrue(FileManager.default.fileExists(atPath: storeDirectory + "/gone-\(id)/0/manifest.json"))
        XCTAssertTrue(FileManager.default.fileExists(atPath: storeDirectory + "/_topics/gone-\(id).json"))
        let deleted = try await c.send(DeleteTopicsRequest(topicNames: ["gone"], timeoutMs: 5000), version: 5)
        XCTAssertEqual(deleted.responses.first?.errorCode, 0)
        await broker.broker.tiering!.tierOnce()
        let left = (try? FileManager.default.subpathsOfDirectory(atPath: storeDirectory + "/gone-\(id)"))?.filter { !$0.hasSuffix("/") && $0.contains(".") } ?? []
        XCTAssertEqual(left, [])
        XCTAssertFalse(FileManager.default.fileExists(atPath: storeDirectory + "/_topics/gone-\(id).json"))
        c.close()
        await broker.stop()
    }

    func testTieringNeedsAStoreAndCannotBeCombinedWithCompaction() async throws {
        let plain = try await TestBroker()
        defer { plain.removeData() }
        var c = try await plain.connect()
        var r = try await c.send(CreateTopicsRequest(topics: [.init(name: "t", numPartitions: 1, replicationFactor: 1, configs: [
            .init(name: "remote.storage.enable", value: "true"),
        ])]))
        XCTAssertEqual(r.topics[0].errorCode, KafkaErrorCode.invalidConfig.rawValue)
        XCTAssertTrue(r.topics[0].errorMessage?.contains("remote.storage.url") ?? false)
        c.close()
        await plain.stop()

        let tiered = try await tieredBroker()
        defer { tiered.removeData() }
        c = try await tiered.connect()
        r = try await c.send(CreateTopicsRequest(topics: [.init(name: "t", numPartitions: 1, replicationFactor: 1, configs: [
            .init(name: "remote.storage.enable", value: "true"), .init(name: "cleanup.policy", value: "compact"),
        ])]))
        XCTAssertEqual(r.topics[0].errorCode, KafkaErrorCode.invalidConfig.rawValue)
        c.close()
        await tiered.stop()
    }
}
