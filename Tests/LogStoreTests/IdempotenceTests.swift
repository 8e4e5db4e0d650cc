import Foundation
import KafkaProtocol
import Logging
import LogStore
import NIOCore
import XCTest

final class IdempotenceTests: XCTestCase {
    var directory: String!

    override func setUp() {
        directory = NSTemporaryDirectory() + "idempotence-\(UUID().uuidString)"
    }

    override func tearDown() {
        try? FileManager.default.removeItem(atPath: directory)
    }

    func open() throws -> PartitionLog {
        try PartitionLog(directory: directory + "/t-0", topic: "t", partition: 0, config: LogConfig(), logger: Logger(label: "test"))
    }

    func batch(producer: Int64, epoch: Int16 = 0, sequence: Int32, count: Int = 2) -> ByteBuffer {
        var builder = RecordBatchBuilder(baseTimestamp: Int64(Date().timeIntervalSince1970 * 1000))
        builder.producerId = producer
        builder.producerEpoch = epoch
        builder.baseSequence = sequence
        for i in 0..<count { builder.append(key: nil, value: ByteBuffer(string: "p\(producer)-s\(sequence)-\(i)")) }
        return builder.build().buffer
    }

    func testRetriedBatchGetsItsOriginalOffsetsAndIsNotWrittenTwice() throws {
        let log = try open()
        let first = try log.append(batch(producer: 7, sequence: 0))
        _ = try log.append(batch(producer: 7, sequence: 2))
        let retry = try log.append(batch(producer: 7, sequence: 0))
        XCTAssertEqual(retry.firstOffset, first.firstOffset)
        XCTAssertEqual(retry.lastOffset, first.lastOffset)
        XCTAssertEqual(log.logEndOffset, 4, "nothing was written for the retry")
    }

    func testSequenceGapIsOutOfOrder() throws {
        let log = try open()
        _ = try log.append(batch(producer: 7, sequence: 0))
        XCTAssertThrowsError(try log.append(batch(producer: 7, sequence: 5))) {
            XCTAssertEqual(($0 as? LogStoreError)?.kind, .outOfOrderSequence)
        }
        XCTAssertThrowsError(try log.append(batch(producer: 8, sequence: 3)), "an unknown producer must start at 0") {
            XCTAssertEqual(($0 as? LogStoreError)?.kind, .outOfOrderSequence)
        }
        XCTAssertEqual(log.logEndOffset, 2)
    }

    func testStaleEpochIsRefusedAndANewEpochRestartsAtZero() throws {
        let log = try open()
        _ = try log.append(batch(producer: 7, epoch: 1, sequence: 0))
        XCTAssertThrowsError(try log.append(batch(producer: 7, epoch: 0, sequence: 2))) {
            XCTAssertEqual(($0 as? LogStoreError)?.kind, .invalidProducerEpoch)
        }
        XCTAssertThrowsError(try log.append(batch(producer: 7, epoch: 2, sequence: 2))) {
            XCTAssertEqual(($0 as? LogStoreError)?.kind, .outOfOrderSequence)
        }
        XCTAssertEqual(try log.append(batch(producer: 7, epoch: 2, sequence: 0)).firstOffset, 2)
    }

    func testOnlyTheLastFiveBatchesAreRemembered() throws {
        let log = try open()
        for i in 0..<7 { _ = try log.append(batch(producer: 7, sequence: Int32(i * 2))) }
        // Batch 6 (sequence 12) and batch 2 (sequence 4) are among the last five.
        XCTAssertEqual(try log.append(batch(producer: 7, sequence: 4)).firstOffset, 4)
        // Batch 0 is too old to be recognised: it is a sequence error, not a duplicate.
        XCTAssertThrowsError(try log.append(batch(producer: 7, sequence: 0)))
        XCTAssertEqual(log.logEndOffset, 14)
    }

    func testBatchesWithoutAProducerIdSkipSequenceChecks() throws {
        let log = try open()
        _ = try log.append(batch(producer: -1, epoch: -1, sequence: -1))
        _ = try log.append(batch(producer: -1, epoch: -1, sequence: -1))
        XCTAssertEqual(log.logEndOffset, 4)
    }

    func testStateSurvivesACleanRestartThroughTheSnapshot() throws {
        do {
            let log = try open()
            _ = try log.append(batch(producer: 7, sequence: 0))
            _ = try log.append(batch(producer: 7, sequence: 2))
            try log.close()
        }
        let log = try open()
        XCTAssertEqual(try log.append(batch(producer: 7, sequence: 2)).firstOffset, 2, "a retry after restart is still a duplicate")
        XCTAssertEqual(try log.append(batch(producer: 7, sequence: 4)).firstOffset, 4)
    }

    func testStateIsRebuiltFromTheLogAfterACrash() throws {
        do {
            let log = try open()
            _ = try log.append(batch(producer: 7, sequence: 0))
            try log.checkpoint()
            _ = try log.append(batch(producer: 7, sequence: 2))
            _ = try log.append(batch(producer: 9, sequence: 0))
            try log.flush()
            // No close: the snapshot is from before the last two batches.
        }
        let log = try open()
        XCTAssertEqual(try log.append(batch(producer: 7, sequence: 2)).firstOffset, 2)
        XCTAssertEqual(try log.append(batch(producer: 9, sequence: 0)).firstOffset, 4)
        XCTAssertEqual(log.logEndOffset, 6)
    }

    func testASnapshotPastALostTailIsIgnored() throws {
        do {
            let log = try open()
            _ = try log.append(batch(producer: 7, sequence: 0))
            _ = try log.append(batch(producer: 7, sequence: 2))
            try log.close()
        }
        // The last batch is lost (as if the disk dropped it): cut the file to the first batch.
        let path = directory + "/t-0/00000000000000000000.log"
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        let firstLength = Int(data[8]) << 24 | Int(data[9]) << 16 | Int(data[10]) << 8 | Int(data[11])
        try data.prefix(12 + firstLength).write(to: URL(fileURLWithPath: path))
        try FileManager.default.removeItem(atPath: directory + "/t-0/partition.checkpoint")
        let log = try open()
        XCTAssertEqual(log.logEndOffset, 2)
        // The lost batch must be accepted again, not answered as a duplicate of nothing.
        let again = try log.append(batch(producer: 7, sequence: 2))
        XCTAssertEqual(again.firstOffset, 2)
        XCTAssertEqual(log.logEndOffset, 4)
    }
}
