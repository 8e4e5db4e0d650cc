import Foundation
import KafkaCompression
import KafkaProtocol
import NIOCore
import XCTest

/// Batches compressed by real clients (kafka-python, and librdkafka through confluent-kafka
/// and kcat) decompress to exactly the records their sidecars list. The fixtures are the
/// KafkaProtocolTests captures; see Tests/KafkaProtocolTests/Fixtures/README.md.
final class ClientBatchFixtureTests: XCTestCase {
    struct Sidecar: Decodable {
        var recordCount: Int
        var compressionCodec: Int16
        var compressionFraming: String?
        var uncompressedRecordsLength: Int?
        var records: [Record]

        struct Record: Decodable {
            var attributes: Int8
            var timestampDelta: Int64
            var offsetDelta: Int32
            var keyHex: String?
            var valueHex: String?
            var headers: [Header]
        }

        struct Header: Decodable {
            var key: String
            var valueHex: String?
        }
    }

    struct Captured {
        var name: String
        var batch: RecordBatch
        var sidecar: Sidecar
    }

    private func compressedFixtures() throws -> [Captured] {
        let names = try FileManager.default.contentsOfDirectory(atPath: ClientFixtures.directory.path)
            .filter { $0.hasPrefix("batch-") && $0.hasSuffix(".bin") }
            .map { String($0.dropLast(4)) }
            .filter { name in ["gzip", "snappy", "lz4", "zstd"].contains { name.hasSuffix("-\($0)") } }
            .sorted()
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return try names.map { name in
            let bytes = try Data(contentsOf: ClientFixtures.directory.appendingPathComponent("\(name).bin"))
            let sidecar = try decoder.decode(Sidecar.self, from: Data(contentsOf: ClientFixtures.directory.appendingPathComponent("\(name).json")))
            return Captured(name: name, batch: try RecordBatch(validating: ByteBuffer(bytes: bytes)), sidecar: sidecar)
        }
    }

    func testEveryCodecHasFixturesFromBothClientFamilies() throws {
        let names = Set(try compressedFixtures().map(\.name))
        for codec in ["gzip", "snappy", "lz4", "zstd"] {
            XCTAssert(names.contains("batch-kafka-python-\(codec)"), "kafka-python \(codec) fixture missing")
            XCTAssert(names.contains("batch-confluent-kafka-\(codec)"), "librdkafka \(codec) fixture missing")
        }
    }

    func testClientBatchesDecompressToTheirSidecarRecords() throws {
        let codecs = testedCodecs()
        for fixture in try compressedFixtures() {
            let codec = try XCTUnwrap(fixture.batch.compression, fixture.name)
            XCTAssertEqual(codec.rawValue, fixture.sidecar.compressionCodec, fixture.name)
            guard codecs.contains(codec) else { continue }
            let payload = try CompressionCodecs.decompress(fixture.batch.recordsPayload, codec: codec, maximumSize: 1 << 20)
            if let expected = fixture.sidecar.uncompressedRecordsLength {
                XCTAssertEqual(payload.readableBytes, expected, fixture.name)
            }
            var iterator = RecordIterator(payload: payload, count: Int(fixture.batch.recordCount))
            let records = try iterator.all()
            XCTAssertEqual(records.count, fixture.sidecar.recordCount, fixture.name)
            XCTAssertEqual(records.count, fixture.sidecar.records.count, fixture.name)
            for (record, expected) in zip(records, fixture.sidecar.records) {
                XCTAssertEqual(record.attributes, expected.attributes, fixture.name)
                XCTAssertEqual(record.timestampDelta, expected.timestampDelta, fixture.name)
                XCTAssertEqual(record.offsetDelta, expected.offsetDelta, fixture.name)
                XCTAssertEqual(record.key.map(Self.hex), expected.keyHex, fixture.name)
                XCTAssertEqual(record.value.map(Self.hex), expected.valueHex, fixture.name)
                XCTAssertEqual(record.headers.map(\.key), expected.headers.map(\.key), fixture.name)
                XCTAssertEqual(record.headers.map { $0.value.map(Self.hex) }, expected.headers.map(\.valueHex), fixture.name)
            }
            // The convenience on RecordBatch reads the same records.
            var viaBatch = try fixture.batch.decompressedRecords(maximumSize: 1 << 20)
            XCTAssertEqual(try viaBatch.all(), records, fixture.name)
        }
    }

    func testSnappyFixturesCoverBothFramings() throws {
        // kafka-python writes xerial, librdkafka a raw block: both must have been read above.
        let framings = Dictionary(try compressedFixtures().filter { $0.batch.compression == .snappy }
            .map { ($0.name, $0.sidecar.compressionFraming ?? "?") }, uniquingKeysWith: { a, _ in a })
        XCTAssertEqual(framings["batch-kafka-python-snappy"], "xerial")
        XCTAssertEqual(framings["batch-confluent-kafka-snappy"], "raw")
    }

    func testClientPayloadsAreBoundedByMaximumSize() throws {
        let codecs = testedCodecs()
        for fixture in try compressedFixtures() {
            guard let codec = fixture.batch.compression, codecs.contains(codec) else { continue }
            let exact = try CompressionCodecs.decompress(fixture.batch.recordsPayload, codec: codec, maximumSize: 1 << 20).readableBytes
            XCTAssertEqual(try CompressionCodecs.decompress(fixture.batch.recordsPayload, codec: codec, maximumSize: exact).readableBytes, exact)
            assertCompressionError(.outputTooLarge, fixture.name) {
                try CompressionCodecs.decompress(fixture.batch.recordsPayload, codec: codec, maximumSize: exact - 1)
            }
        }
    }

    func testRecompressedClientRecordsRoundTripThroughEveryCodec() throws {
        let codecs = testedCodecs()
        guard let source = try compressedFixtures().first(where: { $0.batch.compression.map(codecs.contains) ?? false }) else {
            throw XCTSkip("no compressed fixture is readable here")
        }
        let payload = try CompressionCodecs.decompress(source.batch.recordsPayload, codec: source.batch.compression!, maximumSize: 1 << 20)
        for codec in codecs {
            let again = try CompressionCodecs.compress(payload, codec: codec)
            XCTAssertEqual(try CompressionCodecs.decompress(again, codec: codec, maximumSize: 1 << 20), payload, "\(codec)")
        }
    }

    static func hex(_ buffer: ByteBuffer) -> String {
        buffer.readableBytesView.map { String(format: "%02x", $0) }.joined()
    }
}
