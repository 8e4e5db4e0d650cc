import Foundation
@testable import KafkaClient
import KafkaProtocol
import NIOCore
import XCTest

final class KafkaConsumerTests: XCTestCase {
    func testProduceThenConsumeWithEveryAcksSetting() async throws {
        let broker = try await TestBroker()
        for acks in [KafkaProducer.Acks.zero, .one, .all] {
            let topic = "acks\(acks.rawValue)"
            try await broker.createTopic(topic, partitions: 3)
            var config = KafkaProducer.Configuration(bootstrapServers: broker.bootstrap)
            config.acks = acks
            let sent = try await withProducer(config) { producer in
                var sent: [KafkaProducer.RecordMetadata] = []
                for i in 0..<300 {
                    sent.append(try await producer.send(topic: topic, key: "key-\(i % 17)", value: "value-\(i)",
                                                        headers: [KafkaHeader(key: "i", value: ByteBuffer(string: "\(i)"))]))
                }
                return sent
            }
            if acks == .zero {
                XCTAssertTrue(sent.allSatisfy { $0.offset == -1 })
            } else {
                for p in 0..<3 {
                    let offsets = sent.filter { $0.partition == p }.map(\.offset)
                    XCTAssertEqual(offsets, Array(0..<Int64(offsets.count)), "acks \(acks) partition \(p)")
                }
            }
            var cc = KafkaConsumer.Configuration(bootstrapServers: broker.bootstrap)
            cc.autoOffsetReset = .earliest
            let consumer = try KafkaConsumer(configuration: cc)
            try consumer.assign(partitions: (0..<3).map { TopicPartition(topic: topic, partition: $0) })
            let records = try await withConsumer(consumer) { try await collect($0, count: 300) }
            XCTAssertEqual(Set(records.compactMap(\.valueString)), Set((0..<300).map { "value-\($0)" }), "acks \(acks)")
            for r in records {
                let i = Int(r.valueString!.dropFirst(6))!
                XCTAssertEqual(r.keyString, "key-\(i % 17)")
                XCTAssertEqual(r.headers, [KafkaHeader(key: "i", value: ByteBuffer(string: "\(i)"))])
                XCTAssertEqual(r.partition, KafkaPartitioner.partition(forKey: ByteBuffer(string: "key-\(i % 17)"), partitionCount: 3))
                if acks != .zero { XCTAssertEqual(sent[i].offset, r.offset) }
            }
        }
        await broker.stop()
    }
}
