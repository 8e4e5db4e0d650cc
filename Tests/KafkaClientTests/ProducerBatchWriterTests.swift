import Foundation
@testable import KafkaClient
import KafkaCompression
import KafkaProtocol
import NIOCore
import XCTest

final class ProducerBatchWriterTests: XCTestCase {
    /// The producer's writer and KafkaProtocol's RecordBatchBuilder write the same bytes.
    func testWriterMatchesRecordBatchBuilderByteForByte() throws {
        let base: Int64 = 1_700_000_000_000
        var records: [(ByteBuffer?, ByteBuffer?, Int64, [KafkaHeader])] = [
            (nil, ByteBuffer(string: "v"), base, []),
            (ByteBuffer(string: "key"), nil, base + 5, []),
            (ByteBuffer(), ByteBuffer(), base - 3, [KafkaHeader(key: "h", value: nil)]),
            (ByteBuffer(string: "k"), ByteBuffer(repeating: 7, count: 300), base + 100_000_000,
             [KafkaHeader(key: "a", value: ByteBuffer(string: "1")), KafkaHeader(key: "ünï", value: ByteBuffer(repeating: 1, count: 200))]),
        ]
        for i in 0..<200 { records.append((ByteBuffer(string: "k\(i)"), ByteBuffer(repeating: UInt8(i & 0xff), count: i * 7), base + Int64(i * i), [])) }
        for (producerId, epoch, sequence) in [(Int64(-1), Int16(-1), Int32(-1)), (42, 3, 1000)] {
            var builder = RecordBatchBuilder(baseTimestamp: base)
            builder.producerId = producerId
            builder.producerEpoch = epoch
            builder.baseSequence = sequence
            var writer = ProducerBatchWriter(baseTimestamp: base, capacity: 64)
            for (k, v, t, h) in records {
                builder.append(key: k, value: v, timestamp: t, headers: h)
                writer.append(key: k, value: v, timestamp: t, headers: h)
            }
            XCTAssertEqual(writer.size, builder.estimatedSize)
            let expected = builder.build()
            let actual = try writer.build(producerId: producerId, producerEpoch: epoch, baseSequence: sequence, compression: .none, level: nil)
            XCTAssertEqual(actual.buffer, expected.buffer)
            XCTAssertEqual(actual.computeCRC(), actual.crc)
        }
        for codec in [CompressionCodec.gzip, .snappy, .lz4, .zstd] where CompressionCodecs.isAvailable(codec) {
            var writer = ProducerBatchWriter(baseTimestamp: base, capacity: 64)
            for (k, v, t, h) in records { writer.append(key: k, value: v, timestamp: t, headers: h) }
            let batch = try writer.build(producerId: 1, producerEpoch: 0, baseSequence: 0, compression: codec, level: nil)
            XCTAssertEqual(batch.compression, codec)
            XCTAssertEqual(batch.computeCRC(), batch.crc)
            var iterator = try batch.decompressedRecords(maximumSize: 1 << 24)
            let decoded = try iterator.all()
            XCTAssertEqual(decoded.map(\.value), records.map(\.1))
            XCTAssertEqual(decoded.map(\.headers), records.map(\.3))
        }
    }
}
