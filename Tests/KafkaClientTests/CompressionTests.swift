import Foundation
@testable import KafkaClient
import KafkaCompression
import KafkaProtocol
import NIOCore
import XCTest

final class CompressionTests: XCTestCase {
    /// Batches the Swift producer compresses are read back by the Swift consumer and by
    /// kafka-python (every codec it can decode here), with keys and headers intact.
    func testCompressedBatchesAreReadBySwiftConsumerAndKafkaPython() async throws {
        let broker = try await TestBroker()
        let python = pythonHas("kafka")
        let count = 3000
        for codec in [CompressionCodec.gzip, .snappy, .lz4, .zstd] {
            guard CompressionCodecs.isAvailable(codec) else {
                print("skipping \(codec): \(CompressionCodecs.availabilityError(codec).map { "\($0)" } ?? "")")
                continue
            }
            let topic = "compressed-\(codec)"
            try await broker.createTopic(topic, partitions: 1)
            var config = KafkaProducer.Configuration(bootstrapServers: broker.bootstrap)
            config.compression = codec
            config.batchSize = 65536
            try await withProducer(config) { producer in
                for i in 0..<count {
                    try await producer.sendAndForget(topic: topic, key: "station-\(i % 13)", value: "reading \(i): \(Double(i) * 0.25) degrees",
                                                     headers: [KafkaHeader(key: "seq", value: ByteBuffer(string: "\(i)"))])
                }
                await producer.flush()
            }
            let codecs = try await batchCodecs(broker, topic: topic)
            XCTAssertFalse(codecs.isEmpty)
            XCTAssertTrue(codecs.allSatisfy { $0 == codec }, "\(codec): batches are compressed with \(codecs)")

            var cc = KafkaConsumer.Configuration(bootstrapServers: broker.bootstrap)
            cc.autoOffsetReset = .earliest
            let consumer = try KafkaConsumer(configuration: cc)
            try consumer.assign(partitions: [TopicPartition(topic: topic, partition: 0)])
            let records = try await withConsumer(consumer) { try await collect($0, count: count) }
            XCTAssertEqual(records.map(\.offset), Array(0..<Int64(count)), "\(codec)")
            for (i, r) in records.enumerated() {
                XCTAssertEqual(r.valueString, "reading \(i): \(Double(i) * 0.25) degrees")
                XCTAssertEqual(r.keyString, "station-\(i % 13)")
                XCTAssertEqual(r.headers.first?.value.map { String(buffer: $0) }, "\(i)")
            }

            if python {
                let script = """
                import sys, json
                from kafka import KafkaConsumer, TopicPartition
                c = KafkaConsumer(bootstrap_servers=sys.argv[1], enable_auto_commit=False, auto_offset_reset="earliest")
                tp = TopicPartition(sys.argv[2], 0)
                c.assign([tp]); c.seek_to_beginning(tp)
                out = []
                while len(out) < int(sys.argv[3]):
                    polled = c.poll(timeout_ms=10000)
                    if not polled: break
                    for recs in polled.values():
                        out += [[r.offset, r.key.decode(), r.value.decode(), [[k, v.decode()] for k, v in r.headers]] for r in recs]
                print(json.dumps(out))
                """
                let output = try runPython(script, arguments: ["127.0.0.1:\(broker.port)", topic, "\(count)"], input: Data())
                let read = try JSONSerialization.jsonObject(with: output) as! [[Any]]
                XCTAssertEqual(read.count, count, "kafka-python reads every \(codec) record")
                for (i, r) in read.enumerated() {
                    XCTAssertEqual(r[0] as? Int, i)
                    XCTAssertEqual(r[1] as? String, "station-\(i % 13)")
                    XCTAssertEqual(r[2] as? String, "reading \(i): \(Double(i) * 0.25) degrees")
                    XCTAssertEqual((r[3] as? [[String]])?.first, ["seq", "\(i)"])
                }
            }
        }
        if !python { print("kafka-python is not installed: only the Swift consumer was checked") }
        await broker.stop()
    }

    /// The codec of every batch in the partition, from plain Fetch responses.
    func batchCodecs(_ broker: TestBroker, topic: String) async throws -> [CompressionCodec?] {
        let connection = try await KafkaConnection.connect(host: "127.0.0.1", port: broker.port)
        defer { connection.close() }
        let response = try await connection.send(FetchRequest(maxBytes: 1 << 26, topics: [
            .init(topic: topic, partitions: [.init(partition: 0, fetchOffset: 0, partitionMaxBytes: 1 << 26)]),
        ]), version: 12)
        var reader = RecordBatchReader(response.responses[0].partitions[0].records ?? ByteBuffer())
        var out: [CompressionCodec?] = []
        while let batch = try reader.next() { out.append(batch.compression) }
        return out
    }
}
