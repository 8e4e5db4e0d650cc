import Broker
import Foundation
import KafkaClient
import KafkaProtocol
import Logging
import NIOCore
import TributaryTestSupport
import XCTest

typealias TestBroker = InProcessBroker

/// Runs `body` with a producer whose `run()` is going, then closes it and waits for run.
func withProducer<T: Sendable>(_ configuration: KafkaProducer.Configuration,
                               _ body: @Sendable (KafkaProducer) async throws -> T) async throws -> T {
    let producer = try KafkaProducer(configuration: configuration)
    let runner = Task { try await producer.run() }
    do {
        let result = try await body(producer)
        await producer.close()
        try await runner.value
        return result
    } catch {
        runner.cancel()
        _ = try? await runner.value
        throw error
    }
}

/// Every record of a partition, read with plain Fetch requests: an independent check of
/// what the producer wrote.
func fetchAll(_ broker: TestBroker, topic: String, partition: Int32) async throws -> [(offset: Int64, key: String?, value: String?)] {
    let connection = try await KafkaConnection.connect(host: "127.0.0.1", port: broker.port)
    defer { connection.close() }
    var offset: Int64 = 0
    var out: [(Int64, String?, String?)] = []
    while true {
        let response = try await connection.send(FetchRequest(maxBytes: 1 << 24, topics: [
            .init(topic: topic, partitions: [.init(partition: partition, fetchOffset: offset, partitionMaxBytes: 1 << 24)]),
        ]), version: 12)
        let data = response.responses[0].partitions[0]
        XCTAssertEqual(data.errorCode, 0)
        var reader = RecordBatchReader(data.records ?? ByteBuffer())
        var any = false
        while let batch = try reader.next() {
            any = true
            var records = try batch.decompressedRecords(maximumSize: 1 << 26)
            while let r = try records.next() {
                let o = batch.baseOffset + Int64(r.offsetDelta)
                guard o >= offset else { continue }
                out.append((o, r.key.map { String(buffer: $0) }, r.value.map { String(buffer: $0) }))
            }
            offset = batch.nextOffset
        }
        if !any { return out }
    }
}

/// Runs a consumer's `run()` for the duration of `body`, then closes it.
func withConsumer<T: Sendable>(_ consumer: KafkaConsumer, _ body: @Sendable (KafkaConsumer) async throws -> T) async throws -> T {
    let runner = Task { try await consumer.run() }
    do {
        let result = try await body(consumer)
        await consumer.close()
        try await runner.value
        return result
    } catch {
        await consumer.close()
        _ = try? await runner.value
        throw error
    }
}

struct Timeout: Error, CustomStringConvertible {
    var description: String
}

/// Reads `count` records, failing after `seconds`.
func collect(_ consumer: KafkaConsumer, count: Int, seconds: Double = 20) async throws -> [ConsumerRecord] {
    try await withThrowingTaskGroup(of: [ConsumerRecord]?.self) { group in
        group.addTask {
            var out: [ConsumerRecord] = []
            out.reserveCapacity(count)
            guard count > 0 else { return out }
            for try await r in consumer.records {
                out.append(r)
                if out.count == count { break }
            }
            return out
        }
        group.addTask {
            try await Task.sleep(for: .seconds(seconds))
            return nil
        }
        guard let first = try await group.next(), let records = first else {
            group.cancelAll()
            throw Timeout(description: "fewer than \(count) records within \(seconds) s")
        }
        group.cancelAll()
        return records
    }
}

/// Waits until `condition` holds, checking every 50 ms.
func eventually(_ what: String, seconds: Double = 20, _ condition: @Sendable () async throws -> Bool) async throws {
    let deadline = ContinuousClock.now + .seconds(seconds)
    while ContinuousClock.now < deadline {
        if try await condition() { return }
        try await Task.sleep(for: .milliseconds(50))
    }
    throw Timeout(description: "\(what) did not happen within \(seconds) s")
}
