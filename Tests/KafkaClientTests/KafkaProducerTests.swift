import Foundation
@testable import KafkaClient
import KafkaProtocol
import NIOConcurrencyHelpers
import NIOCore
import XCTest

final class KafkaProducerTests: XCTestCase {
    func testSendReturnsOffsetsInOrder() async throws {
        let broker = try await TestBroker()
        defer { Task { await broker.stop() } }
        try await broker.createTopic("t", partitions: 1)
        var config = KafkaProducer.Configuration(bootstrapServers: broker.bootstrap)
        config.lingerMs = 1
        let offsets = try await withProducer(config) { producer in
            var offsets: [Int64] = []
            for i in 0..<10 {
                let m = try await producer.send(topic: "t", key: "k\(i)", value: "v\(i)")
                XCTAssertEqual(m.partition, 0)
                offsets.append(m.offset)
            }
            return offsets
        }
        XCTAssertEqual(offsets, Array(0..<10))
        let records = try await fetchAll(broker, topic: "t", partition: 0)
        XCTAssertEqual(records.map(\.value), (0..<10).map { "v\($0)" })
    }
}

final class KafkaProducerDeliveryTests: XCTestCase {
    /// Connections closed under the producer while batches are on the wire: retries
    /// resend the same batches with the same sequences, the broker recognises the ones
    /// it already wrote, and the log holds every record exactly once, in order.
    func testIdempotentRetriesAfterConnectionLossDoNotDuplicate() async throws {
        let broker = try await TestBroker()
        try await broker.createTopic("idem", partitions: 2)
        var config = KafkaProducer.Configuration(bootstrapServers: broker.bootstrap)
        config.lingerMs = 1
        config.batchSize = 2048
        config.retryBackoffMs = 10
        let count = 20_000
        let outcomes = NIOLockedValueBox<(ok: Int, failed: [String])>((0, []))
        let (closes, retries) = try await withProducer(config) { producer in
            let done = NIOLockedValueBox(false)
            let closer = Task {
                var closes = 0
                while !done.withLockedValue({ $0 }) {
                    try await Task.sleep(for: .milliseconds(Int.random(in: 2...8)))
                    if let c = try? await producer.cluster.connection(to: 0) {
                        c.close()
                        closes += 1
                    }
                }
                return closes
            }
            for i in 0..<count {
                try await producer.sendAndForget(topic: "idem", key: nil, value: ByteBuffer(string: "\(i)"), partition: Int32(i % 2)) { result in
                    outcomes.withLockedValue {
                        switch result {
                        case .success: $0.ok += 1
                        case .failure(let e): $0.failed.append("\(e)")
                        }
                    }
                }
            }
            done.withLockedValue { $0 = true }
            let closes = try await closer.value
            await producer.flush()
            return (closes, producer.retriedBatches)
        }
        XCTAssertEqual(outcomes.withLockedValue { $0.failed }, [])
        XCTAssertEqual(outcomes.withLockedValue { $0.ok }, count)
        XCTAssertGreaterThan(closes, 0)
        XCTAssertGreaterThan(retries, 0, "the test must actually make the producer retry")
        for p in 0..<2 {
            let records = try await fetchAll(broker, topic: "idem", partition: Int32(p))
            XCTAssertEqual(records.map(\.value), stride(from: p, to: count, by: 2).map { "\($0)" }, "partition \(p): every record once, in order")
            XCTAssertEqual(records.map(\.offset), Array(0..<Int64(count / 2)))
        }
        print("idempotence: \(closes) connections closed, \(retries) batches retried, no duplicates")
        await broker.stop()
    }

    func testSendSuspendsWhileBufferMemoryIsFull() async throws {
        let broker = try await TestBroker()
        try await broker.createTopic("bp", partitions: 1)
        var config = KafkaProducer.Configuration(bootstrapServers: broker.bootstrap)
        config.bufferMemory = 8192
        config.lingerMs = 0
        let producer = try KafkaProducer(configuration: config)
        let sent = NIOLockedValueBox(0)
        let value = ByteBuffer(repeating: 0x61, count: 500)
        // run() is not started yet: nothing drains, so the buffer fills and sends wait.
        let sender = Task {
            for _ in 0..<100 {
                try await producer.sendAndForget(topic: "bp", value: value)
                sent.withLockedValue { $0 += 1 }
            }
        }
        try await eventually("the buffer fills") { sent.withLockedValue { $0 } > 0 }
        try await Task.sleep(for: .milliseconds(300))
        let beforeRun = sent.withLockedValue { $0 }
        XCTAssertLessThan(beforeRun, 20, "sends beyond bufferMemory suspend")
        XCTAssertLessThanOrEqual(producer.bufferedBytes, 8192)
        let runner = Task { try await producer.run() }
        try await sender.value
        XCTAssertEqual(sent.withLockedValue { $0 }, 100)
        await producer.close()
        try await runner.value
        let written = try await fetchAll(broker, topic: "bp", partition: 0)
        XCTAssertEqual(written.count, 100)
        await broker.stop()
    }

    func testFlushSendsLingeringBatchesAtOnce() async throws {
        let broker = try await TestBroker()
        try await broker.createTopic("flush", partitions: 3)
        var config = KafkaProducer.Configuration(bootstrapServers: broker.bootstrap)
        config.lingerMs = 60_000
        config.deliveryReports = true
        try await withProducer(config) { producer in
            var ids: [UInt64] = []
            for i in 0..<30 { ids.append(try await producer.sendAndForget(topic: "flush", key: "k\(i)", value: "v\(i)")) }
            let start = ContinuousClock.now
            await producer.flush()
            XCTAssertLessThan(ContinuousClock.now - start, .seconds(10))
            var reported: [UInt64: KafkaProducer.DeliveryReport] = [:]
            for await report in producer.deliveryReports {
                reported[report.id] = report
                if reported.count == ids.count { break }
            }
            XCTAssertEqual(Set(reported.keys), Set(ids))
            XCTAssertTrue(reported.values.allSatisfy { (try? $0.result.get()) != nil })
        }
        var total = 0
        for p in 0..<3 { total += try await fetchAll(broker, topic: "flush", partition: Int32(p)).count }
        XCTAssertEqual(total, 30)
        await broker.stop()
    }

    func testSendToUnknownPartitionAndClosedProducerFail() async throws {
        let broker = try await TestBroker()
        try await broker.createTopic("small", partitions: 1)
        let config = KafkaProducer.Configuration(bootstrapServers: broker.bootstrap)
        let producer = try KafkaProducer(configuration: config)
        let runner = Task { try await producer.run() }
        do {
            _ = try await producer.send(topic: "small", value: "x", partition: 5)
            XCTFail("partition 5 does not exist")
        } catch let error as KafkaClientError {
            XCTAssertEqual(error.code, .invalidArgument)
        }
        await producer.close()
        try await runner.value
        do {
            _ = try await producer.send(topic: "small", value: "x")
            XCTFail("a closed producer refuses records")
        } catch let error as KafkaClientError {
            XCTAssertEqual(error.code, .closed)
        }
        await broker.stop()
    }

    /// A topic that does not exist yet: send waits for its metadata (the broker creates it
    /// on the metadata request); without auto-creation it fails after maxBlockMs.
    func testSendWaitsForNewTopicsAndTimesOutWithoutThem() async throws {
        let broker = try await TestBroker()
        let config = KafkaProducer.Configuration(bootstrapServers: broker.bootstrap)
        let metadata = try await withProducer(config) { try await $0.send(topic: "created-on-demand", value: "x") }
        XCTAssertEqual(metadata.offset, 0)
        await broker.stop()

        let strict = try await TestBroker { $0.autoCreateTopics = false }
        var short = KafkaProducer.Configuration(bootstrapServers: strict.bootstrap)
        short.maxBlockMs = 500
        let producer = try KafkaProducer(configuration: short)
        let runner = Task { try await producer.run() }
        let start = ContinuousClock.now
        do {
            _ = try await producer.send(topic: "missing", value: "x")
            XCTFail("the topic does not exist")
        } catch let error as KafkaClientError {
            XCTAssertEqual(error.code, .metadataTimedOut)
        }
        XCTAssertLessThan(ContinuousClock.now - start, .seconds(5))
        await producer.close()
        try await runner.value
        await strict.stop()
    }
}
