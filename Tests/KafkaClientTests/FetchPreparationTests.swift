import Foundation
@testable import KafkaClient
import KafkaProtocol
import NIOCore
import XCTest

/// How fetched bytes become records: control batches never surface, aborted
/// transactions are dropped under read_committed, batches before the fetch offset are
/// skipped, and the position moves past all of them.
final class FetchPreparationTests: XCTestCase {
    func batch(base: Int64, values: [String], producerId: Int64 = -1, transactional: Bool = false) -> ByteBuffer {
        var b = RecordBatchBuilder(baseTimestamp: 1_700_000_000_000)
        b.baseOffset = base
        b.producerId = producerId
        b.producerEpoch = producerId >= 0 ? 0 : -1
        b.baseSequence = producerId >= 0 ? 0 : -1
        b.isTransactional = transactional
        for v in values { b.append(key: nil, value: ByteBuffer(string: v)) }
        return b.build().buffer
    }

    /// A transaction marker: key = version 0, type (0 abort, 1 commit).
    func marker(base: Int64, producerId: Int64, commit: Bool) -> ByteBuffer {
        var b = RecordBatchBuilder(baseTimestamp: 1_700_000_000_000)
        b.baseOffset = base
        b.producerId = producerId
        b.producerEpoch = 0
        b.isTransactional = true
        b.isControl = true
        var key = ByteBuffer()
        key.writeInteger(0 as Int16)
        key.writeInteger(commit ? 1 as Int16 : 0)
        var value = ByteBuffer()
        value.writeInteger(0 as Int16)
        value.writeInteger(0 as Int32)
        b.append(key: key, value: value)
        return b.build().buffer
    }

    func values(_ result: PartitionFetchResult) throws -> (values: [String], next: Int64) {
        guard case .chunk(let chunk, _) = result else { XCTFail("expected records, got \(result)"); return ([], -1) }
        var out: [String] = []
        for var b in chunk.batches {
            while let r = try b.records.next() { out.append(String(buffer: r.value!)) }
        }
        return (out, chunk.nextOffset)
    }

    func testReadCommittedDropsAbortedTransactionsAndMarkers() throws {
        // offsets: 0-1 plain, 2-3 txn 7 (aborted), 4 abort marker 7, 5-6 txn 8, 7 commit marker 8, 8 plain
        var records = ByteBuffer()
        for var part in [batch(base: 0, values: ["a", "b"]),
                         batch(base: 2, values: ["x1", "x2"], producerId: 7, transactional: true),
                         marker(base: 4, producerId: 7, commit: false),
                         batch(base: 5, values: ["c", "d"], producerId: 8, transactional: true),
                         marker(base: 7, producerId: 8, commit: true),
                         batch(base: 8, values: ["e"])] {
            records.writeBuffer(&part)
        }
        let data = FetchResponse.PartitionData(partitionIndex: 0, highWatermark: 9, lastStableOffset: 9,
                                               abortedTransactions: [.init(producerId: 7, firstOffset: 2)], records: records)
        let tp = TopicPartition(topic: "t", partition: 0)
        let entry = FetchPlan.Entry(partition: tp, offset: 0, epoch: 1)
        let committed = try values(KafkaConsumer.prepare(data, entry, isolationLevel: .readCommitted, checkCRCs: true))
        XCTAssertEqual(committed.values, ["a", "b", "c", "d", "e"])
        XCTAssertEqual(committed.next, 9)
        let uncommitted = try values(KafkaConsumer.prepare(data, entry, isolationLevel: .readUncommitted, checkCRCs: true))
        XCTAssertEqual(uncommitted.values, ["a", "b", "x1", "x2", "c", "d", "e"], "markers are never records")
        // A fetch from offset 5 skips the batches that end before it.
        let later = try values(KafkaConsumer.prepare(data, .init(partition: tp, offset: 5, epoch: 1), isolationLevel: .readCommitted, checkCRCs: true))
        XCTAssertEqual(later.values, ["c", "d", "e"])
    }

    func testCorruptBatchIsReportedAfterTheGoodOnes() throws {
        var records = batch(base: 0, values: ["a", "b"])
        var bad = batch(base: 2, values: ["c"])
        bad.setInteger(UInt8(0xff), at: bad.writerIndex - 1)  // flip a byte the CRC covers
        records.writeBuffer(&bad)
        let data = FetchResponse.PartitionData(partitionIndex: 0, highWatermark: 3, records: records)
        let result = KafkaConsumer.prepare(data, .init(partition: TopicPartition(topic: "t", partition: 0), offset: 0, epoch: 1),
                                           isolationLevel: .readUncommitted, checkCRCs: true)
        guard case .chunk(let chunk, _) = result else { return XCTFail("expected a chunk") }
        XCTAssertEqual(chunk.batches.count, 1)
        XCTAssertEqual(chunk.nextOffset, 2)
        XCTAssertNotNil(chunk.error)
    }
}
