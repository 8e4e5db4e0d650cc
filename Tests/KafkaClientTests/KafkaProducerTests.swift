import Foundation
@testable import KafkaClient
import KafkaProtocol
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
