import Foundation
@testable import KafkaClient
import NIOConcurrencyHelpers
import KafkaProtocol
import NIOCore
import XCTest

final class ProducerBlockingTests: XCTestCase {
    func testSendFailsWhenBufferMemoryStaysFullForMaxBlockMs() async throws {
        let broker = try await TestBroker()
        try await broker.createTopic("full", partitions: 1)
        var config = KafkaProducer.Configuration(bootstrapServers: broker.bootstrap)
        config.bufferMemory = 2048
        config.maxBlockMs = 300
        config.lingerMs = 0
        let producer = try KafkaProducer(configuration: config)
        let value = ByteBuffer(repeating: 0x62, count: 900)
        // run() is not started: nothing drains, so the buffer stays full.
        var accepted = 0
        var failure: KafkaClientError?
        for _ in 0..<10 {
            do {
                try await producer.sendAndForget(topic: "full", value: value)
                accepted += 1
            } catch let error as KafkaClientError {
                failure = error
                break
            }
        }
        XCTAssertEqual(accepted, 2, "two records fit in 2048 bytes")
        XCTAssertEqual(failure?.code, .bufferMemoryTimedOut)
        XCTAssert(failure?.message.contains("maxBlockMs") ?? false, "\(String(describing: failure))")
        XCTAssertLessThanOrEqual(producer.bufferedBytes, 2048)

        // A waiter that gave up frees its place: once the sender runs, the buffered
        // records go out and later sends succeed.
        let runner = Task { try await producer.run() }
        let metadata = try await producer.send(topic: "full", value: "after")
        XCTAssertEqual(metadata.offset, 2)
        await producer.close()
        try await runner.value
        let written = try await fetchAll(broker, topic: "full", partition: 0)
        XCTAssertEqual(written.map(\.offset), [0, 1, 2])
        await broker.stop()
    }
}

final class ProducerSplitTests: XCTestCase {
    /// Sends 200 records of ~300 bytes lingering into large batches to a broker that takes
    /// batches of at most 4 KiB: every record must arrive once, in order.
    private func sendIntoSmallBatchLimit(acks: KafkaProducer.Acks, compression: CompressionCodec) async throws {
        let broker = try await TestBroker { $0.logDefaults.maxMessageBytes = 4096 }
        try await broker.createTopic("small", partitions: 1)
        var config = KafkaProducer.Configuration(bootstrapServers: broker.bootstrap)
        config.acks = acks
        config.compression = compression
        config.batchSize = 256 << 10
        config.lingerMs = 200
        let producer = try KafkaProducer(configuration: config)
        let runner = Task { try await producer.run() }
        let results = NIOLockedValueBox<[Int: Result<KafkaProducer.RecordMetadata, KafkaClientError>]>([:])
        // Random bytes: compression cannot bring a batch under the limit.
        var rng = SystemRandomNumberGenerator()
        for i in 0..<200 {
            let value = "\(i):" + String((0..<300).map { _ in Character(UnicodeScalar(UInt8.random(in: 97...122, using: &rng))) })
            try await producer.sendAndForget(topic: "small", key: "k\(i)", value: value) { result in
                results.withLockedValue { $0[i] = result }
            }
        }
        await producer.flush()
        let outcome = results.withLockedValue { $0 }
        XCTAssertEqual(outcome.count, 200)
        let offsets = (0..<200).compactMap { try? outcome[$0]?.get().offset }
        XCTAssertGreaterThan(producer.retriedBatches, 0, "batches were split")
        await producer.close()
        try await runner.value
        let written = try await fetchAll(broker, topic: "small", partition: 0)
        let expectedKeys = (0..<200).map { "k\($0)" }
        if config.isIdempotent {
            // Split halves take their batch's place in the sequence: order is kept.
            XCTAssertEqual(offsets, (0..<200).map(Int64.init))
            XCTAssertEqual(written.map(\.key), expectedKeys)
        } else {
            // Without idempotence, batches behind a split one may already be written, as
            // with any retry in the Java client (max.in.flight > 1): each record once, in
            // some order.
            XCTAssertEqual(offsets.count, 200, "every record delivered")
            XCTAssertEqual(Set(offsets), Set(0..<200))
            XCTAssertEqual(written.compactMap(\.key).sorted(), expectedKeys.sorted())
        }
        for w in written {
            XCTAssertEqual(w.key.map { String($0.dropFirst()) }, w.value?.split(separator: ":").first.map(String.init))
        }
        await broker.stop()
    }

    func testTooLargeBatchIsSplitAndDeliveredInOrderWithIdempotence() async throws {
        try await sendIntoSmallBatchLimit(acks: .all, compression: .none)
    }

    func testTooLargeBatchIsSplitWithAcksOneAndCompression() async throws {
        try await sendIntoSmallBatchLimit(acks: .one, compression: .lz4)
    }

    func testRecordLargerThanTheBrokerAcceptsFailsClearly() async throws {
        let broker = try await TestBroker { $0.logDefaults.maxMessageBytes = 4096 }
        try await broker.createTopic("small", partitions: 1)
        let config = KafkaProducer.Configuration(bootstrapServers: broker.bootstrap)
        try await withProducer(config) { producer in
            do {
                _ = try await producer.send(topic: "small", value: ByteBuffer(repeating: 0x78, count: 10_000))
                XCTFail("the broker takes at most 4096 bytes")
            } catch let error as KafkaClientError {
                XCTAssertEqual(error.code, .recordTooLarge)
                XCTAssert(error.message.contains("max.message.bytes"), error.message)
            }
            // The producer goes on working (with a new producer id after the gap).
            let ok = try await producer.send(topic: "small", value: "small enough")
            XCTAssertEqual(ok.offset, 0)
        }
        await broker.stop()
    }
}
