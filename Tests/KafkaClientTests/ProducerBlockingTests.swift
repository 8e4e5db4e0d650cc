import Foundation
@testable import KafkaClient
import NIOConcurrencyHelpers
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
