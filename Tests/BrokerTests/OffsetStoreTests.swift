@testable import Broker
import Foundation
import KafkaProtocol
import NIOCore
import XCTest

final class OffsetStoreTests: XCTestCase {
    var directory = ""
    var path: String { directory + "/" + OffsetStore.fileName }

    override func setUp() {
        directory = NSTemporaryDirectory() + "offsets-\(UUID().uuidString)"
    }

    override func tearDown() {
        try? FileManager.default.removeItem(atPath: directory)
    }

    private func key(_ topic: String, _ partition: Int32) -> TopicPartitionKey {
        TopicPartitionKey(topic: topic, partition: partition)
    }

    private func fileSize() throws -> Int {
        (try FileManager.default.attributesOfItem(atPath: path)[.size] as! NSNumber).intValue
    }

    func testCommitsPersistAcrossReopen() throws {
        do {
            let store = try OffsetStore(directory: directory)
            let sequence = try store.commit(group: "g1", offsets: [
                (key("t", 0), CommittedOffset(offset: 10, leaderEpoch: 3, metadata: "meta", commitTimestamp: 1000)),
                (key("t", 1), CommittedOffset(offset: 20, commitTimestamp: 1000, expireTimestamp: 5000)),
            ])
            try store.commit(group: "g2", offsets: [(key("u", 0), CommittedOffset(offset: 7, commitTimestamp: 2000))])
            try store.commit(group: "g1", offsets: [(key("t", 0), CommittedOffset(offset: 11, commitTimestamp: 3000))])
            try store.setMetadata(group: "g1", StoredGroupMetadata(protocolType: "consumer", emptySince: 2500))
            try store.flush(upTo: sequence)
            try store.flush()
        }
        let reopened = try OffsetStore(directory: directory)
        XCTAssertEqual(reopened.loadReport.records, 5)
        XCTAssertEqual(reopened.loadReport.truncatedBytes, 0)
        XCTAssertEqual(reopened.groupIds(), ["g1", "g2"])
        XCTAssertEqual(reopened.offset(group: "g1", topic: "t", partition: 0),
                       CommittedOffset(offset: 11, commitTimestamp: 3000), "the latest commit wins")
        XCTAssertEqual(reopened.offset(group: "g1", topic: "t", partition: 1),
                       CommittedOffset(offset: 20, commitTimestamp: 1000, expireTimestamp: 5000))
        XCTAssertEqual(reopened.offsets(group: "g2")[key("u", 0)]?.offset, 7)
        XCTAssertEqual(reopened.metadata(group: "g1"), StoredGroupMetadata(protocolType: "consumer", emptySince: 2500))
        XCTAssertNil(reopened.metadata(group: "g2"))
    }

    func testTornTailIsTruncatedAndAppendsContinueAfterIt() throws {
        do {
            let store = try OffsetStore(directory: directory)
            try store.commit(group: "g", offsets: [(key("t", 0), CommittedOffset(offset: 1, commitTimestamp: 1))])
            try store.commit(group: "g", offsets: [(key("t", 1), CommittedOffset(offset: 2, commitTimestamp: 1))])
            try store.flush()
        }
        let validSize = try fileSize()
        // A crash in the middle of writing a third record leaves half of it.
        var record = ByteBuffer()
        OffsetStore.writeRecord(.commit(group: "g", key: key("t", 2), CommittedOffset(offset: 3, commitTimestamp: 1)), into: &record)
        let handle = try XCTUnwrap(FileHandle(forWritingAtPath: path))
        handle.seekToEndOfFile()
        handle.write(Data(record.readableBytesView.prefix(record.readableBytes / 2)))
        handle.closeFile()

        do {
            let store = try OffsetStore(directory: directory)
            XCTAssertEqual(store.loadReport.records, 2)
            XCTAssertEqual(store.loadReport.truncatedBytes, record.readableBytes / 2)
            XCTAssertEqual(try fileSize(), validSize)
            XCTAssertNil(store.offset(group: "g", topic: "t", partition: 2))
            try store.commit(group: "g", offsets: [(key("t", 3), CommittedOffset(offset: 4, commitTimestamp: 1))])
            try store.flush()
        }
        let reopened = try OffsetStore(directory: directory)
        XCTAssertEqual(reopened.loadReport.truncatedBytes, 0)
        XCTAssertEqual(reopened.offsets(group: "g").keys.sorted(), [key("t", 0), key("t", 1), key("t", 3)])
    }

    func testCorruptRecordEndsReplay() throws {
        do {
            let store = try OffsetStore(directory: directory)
            try store.commit(group: "g", offsets: [(key("t", 0), CommittedOffset(offset: 1, commitTimestamp: 1))])
            try store.commit(group: "g", offsets: [(key("t", 0), CommittedOffset(offset: 2, commitTimestamp: 1))])
            try store.flush()
        }
        // Flip the last byte of the last record: its CRC no longer matches.
        var bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        bytes[bytes.count - 1] ^= 0xFF
        try bytes.write(to: URL(fileURLWithPath: path))
        let store = try OffsetStore(directory: directory)
        XCTAssertEqual(store.offset(group: "g", topic: "t", partition: 0)?.offset, 1)
        XCTAssertGreaterThan(store.loadReport.truncatedBytes, 0)
    }

    func testNewFileWithTornHeaderIsReinitialised() throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        _ = FileManager.default.createFile(atPath: path, contents: Data([0x54, 0x52]))
        let store = try OffsetStore(directory: directory)
        XCTAssertEqual(store.groupIds(), [])
        try store.commit(group: "g", offsets: [(key("t", 0), CommittedOffset(offset: 5, commitTimestamp: 1))])
        try store.flush()
        XCTAssertEqual(try OffsetStore(directory: directory).offset(group: "g", topic: "t", partition: 0)?.offset, 5)
    }

    func testForeignFileIsNotOverwritten() throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        _ = FileManager.default.createFile(atPath: path, contents: Data("something else entirely".utf8))
        XCTAssertThrowsError(try OffsetStore(directory: directory))
    }

    func testCompactionKeepsLatestOffsets() throws {
        var configuration = OffsetStore.Configuration()
        configuration.compactionMinRecords = 50
        configuration.compactionGarbageRatio = 2
        do {
            let store = try OffsetStore(directory: directory, configuration: configuration)
            for offset in 0..<100 {
                try store.commit(group: "g", offsets: [
                    (key("t", 0), CommittedOffset(offset: Int64(offset), commitTimestamp: Int64(offset))),
                    (key("t", 1), CommittedOffset(offset: Int64(offset * 2), commitTimestamp: Int64(offset))),
                ])
            }
            try store.commit(group: "gone", offsets: [(key("t", 0), CommittedOffset(offset: 1, commitTimestamp: 1))])
            try store.deleteGroup("gone")
            try store.setMetadata(group: "g", StoredGroupMetadata(protocolType: "consumer", emptySince: nil))
            try store.flush()
            let before = try fileSize()
            XCTAssertEqual(store.recordsInFile, 203)
            XCTAssertTrue(try store.compactIfNeeded())
            XCTAssertEqual(store.recordsInFile, 3)
            XCTAssertLessThan(try fileSize(), before / 20)
            XCTAssertFalse(try store.compactIfNeeded(), "nothing left to compact")
            // Appends after compaction go to the new file.
            try store.commit(group: "g", offsets: [(key("t", 2), CommittedOffset(offset: 9, commitTimestamp: 1))])
            try store.flush()
            XCTAssertFalse(FileManager.default.fileExists(atPath: path + ".compacting"))
        }
        let reopened = try OffsetStore(directory: directory, configuration: configuration)
        XCTAssertEqual(reopened.loadReport.records, 4)
        XCTAssertEqual(reopened.offset(group: "g", topic: "t", partition: 0)?.offset, 99)
        XCTAssertEqual(reopened.offset(group: "g", topic: "t", partition: 1)?.offset, 198)
        XCTAssertEqual(reopened.offset(group: "g", topic: "t", partition: 2)?.offset, 9)
        XCTAssertEqual(reopened.metadata(group: "g"), StoredGroupMetadata(protocolType: "consumer", emptySince: nil))
        XCTAssertEqual(reopened.groupIds(), ["g"])
    }

    func testLoadCompactsAFileThatIsMostlyGarbage() throws {
        var configuration = OffsetStore.Configuration()
        configuration.compactionMinRecords = 20
        configuration.compactionGarbageRatio = 4
        do {
            let store = try OffsetStore(directory: directory, configuration: configuration)
            for offset in 0..<30 {
                try store.commit(group: "g", offsets: [(key("t", 0), CommittedOffset(offset: Int64(offset), commitTimestamp: 1))])
            }
            try store.flush()
        }
        let reopened = try OffsetStore(directory: directory, configuration: configuration)
        XCTAssertTrue(reopened.loadReport.compacted)
        XCTAssertEqual(reopened.recordsInFile, 1)
        XCTAssertEqual(reopened.offset(group: "g", topic: "t", partition: 0)?.offset, 29)
    }

    func testExpiryFollowsTheGroupsPolicy() throws {
        let retention: Int64 = 1000
        let store = try OffsetStore(directory: directory)
        try store.commit(group: "simple", offsets: [(key("t", 0), CommittedOffset(offset: 1, commitTimestamp: 100))])
        try store.commit(group: "emptied", offsets: [(key("t", 0), CommittedOffset(offset: 1, commitTimestamp: 100))])
        try store.commit(group: "stable", offsets: [
            (key("in-use", 0), CommittedOffset(offset: 1, commitTimestamp: 100)),
            (key("dropped", 0), CommittedOffset(offset: 1, commitTimestamp: 100)),
        ])
        try store.commit(group: "rebalancing", offsets: [(key("t", 0), CommittedOffset(offset: 1, commitTimestamp: 100))])
        try store.commit(group: "explicit", offsets: [(key("t", 0), CommittedOffset(offset: 1, commitTimestamp: 100, expireTimestamp: 500))])
        let policies: [String: OffsetExpiryPolicy] = [
            "simple": .empty(since: nil),
            "emptied": .empty(since: 800),  // became empty long after its last commit
            "stable": .subscribed(["in-use"]),
            "rebalancing": .keep,
            "explicit": .empty(since: nil),
        ]
        XCTAssertEqual(try store.removeExpired(now: 499, retentionMs: retention, policies: policies), [:])
        XCTAssertEqual(try store.removeExpired(now: 500, retentionMs: retention, policies: policies), ["explicit": [key("t", 0)]])
        let expired = try store.removeExpired(now: 1100, retentionMs: retention, policies: policies)
        XCTAssertEqual(expired, ["simple": [key("t", 0)], "stable": [key("dropped", 0)]])
        XCTAssertEqual(try store.removeExpired(now: 1800, retentionMs: retention, policies: policies), ["emptied": [key("t", 0)]])
        XCTAssertEqual(try store.removeExpired(now: 1_000_000, retentionMs: retention, policies: policies), [:])
        XCTAssertEqual(store.groupIds(), ["rebalancing", "stable"])
        XCTAssertNotNil(store.offset(group: "stable", topic: "in-use", partition: 0))

        try store.flush()
        let reopened = try OffsetStore(directory: directory)
        XCTAssertEqual(reopened.groupIds(), ["rebalancing", "stable"], "expiry tombstones persist")
    }

    func testDeletingOffsetsAndGroupsPersists() throws {
        do {
            let store = try OffsetStore(directory: directory)
            try store.commit(group: "a", offsets: [
                (key("t", 0), CommittedOffset(offset: 1, commitTimestamp: 1)),
                (key("t", 1), CommittedOffset(offset: 2, commitTimestamp: 1)),
            ])
            try store.commit(group: "b", offsets: [(key("t", 0), CommittedOffset(offset: 3, commitTimestamp: 1))])
            try store.setMetadata(group: "b", StoredGroupMetadata(protocolType: "consumer", emptySince: 1))
            try store.deleteOffsets(group: "a", partitions: [key("t", 1), key("never", 0)])
            try store.deleteGroup("b")
            XCTAssertEqual(store.groupIds(), ["a"])
            try store.flush()
        }
        let reopened = try OffsetStore(directory: directory)
        XCTAssertEqual(reopened.offsets(group: "a").keys.sorted(), [key("t", 0)])
        XCTAssertEqual(reopened.groupIds(), ["a"])
        XCTAssertNil(reopened.metadata(group: "b"))
    }

    func testConcurrentCommitsShareFsyncs() async throws {
        let store = try OffsetStore(directory: directory)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for partition in 0..<64 {
                group.addTask {
                    let sequence = try store.commit(group: "g", offsets: [(TopicPartitionKey(topic: "t", partition: Int32(partition)),
                                                                           CommittedOffset(offset: Int64(partition), commitTimestamp: 1))])
                    try store.flush(upTo: sequence)
                }
            }
            try await group.waitForAll()
        }
        let reopened = try OffsetStore(directory: directory)
        XCTAssertEqual(reopened.offsets(group: "g").count, 64)
    }
}
