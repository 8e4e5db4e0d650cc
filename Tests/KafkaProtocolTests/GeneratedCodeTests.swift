import Foundation
import KafkaCodegen
import KafkaProtocol
import NIOCore
import XCTest

/// The generated codecs: current with the definitions, and lossless at every version.
final class GeneratedCodeTests: XCTestCase {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let definitions = repository.deletingLastPathComponent().appendingPathComponent("shared/kafka-protocol")

    func testCommittedCodeMatchesTheGenerator() throws {
        guard FileManager.default.fileExists(atPath: Self.definitions.path) else {
            throw XCTSkip("\(Self.definitions.path) is absent: cannot check the generated code is current")
        }
        let generator = Generator(definitions: Self.definitions)
        let files = try generator.generate()
        let directory = Self.repository.appendingPathComponent("Sources/KafkaProtocol/Generated")
        let committed = Set(try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasSuffix(".swift") })
        XCTAssertEqual(committed, Set(files.keys), "generated file set differs: run scripts/generate-protocol")
        for (name, text) in files {
            let onDisk = try String(contentsOf: directory.appendingPathComponent(name), encoding: .utf8)
            XCTAssertTrue(onDisk == text, "\(name) is not what the generator writes: run scripts/generate-protocol")
        }
        let samples = try String(contentsOf: Self.repository.appendingPathComponent("Tests/KafkaProtocolTests/GeneratedSamples.swift"), encoding: .utf8)
        XCTAssertTrue(samples == (try generator.generateSamples()), "GeneratedSamples.swift is stale: run scripts/generate-protocol")
    }

    func testEveryMessageRoundTripsAtEveryVersion() throws {
        var checked = 0
        for type in allMessageSamples {
            for version in type.validVersions {
                try roundTrip(type, version: version)
                checked += 1
            }
        }
        XCTAssertGreaterThan(checked, 400)
    }

    private func roundTrip<M: SampledMessage>(_ type: M.Type, version: Int16) throws {
        let sample = M.sample(version)
        var buffer = ByteBuffer()
        try sample.encode(into: &buffer, version: version)
        let bytes = buffer
        let decoded = try M(from: &buffer, version: version)
        XCTAssertEqual(buffer.readableBytes, 0, "\(M.self) v\(version) left bytes")
        XCTAssertEqual(decoded, sample, "\(M.self) v\(version) did not round-trip")
        var again = ByteBuffer()
        try decoded.encode(into: &again, version: version)
        XCTAssertEqual(again, bytes, "\(M.self) v\(version) re-encoded differently")
    }

    func testUnknownTaggedFieldsAreKeptByteForByte() throws {
        var request = ApiVersionsRequest(clientSoftwareName: "x", clientSoftwareVersion: "1")
        request.unknownTaggedFields = [UnknownTaggedField(tag: 7, data: ByteBuffer(bytes: [0xDE, 0xAD]))]
        var buffer = ByteBuffer()
        try request.encode(into: &buffer, version: 3)
        let bytes = buffer
        let decoded = try ApiVersionsRequest(from: &buffer, version: 3)
        XCTAssertEqual(decoded.unknownTaggedFields, request.unknownTaggedFields)
        var again = ByteBuffer()
        try decoded.encode(into: &again, version: 3)
        XCTAssertEqual(again, bytes)
    }

    func testTaggedFieldsAtTheirDefaultAreOmitted() throws {
        // FinalizedFeaturesEpoch (tag 1) defaults to -1; SupportedFeatures (tag 0) to [].
        let response = ApiVersionsResponse(errorCode: 0, apiKeys: [])
        var buffer = ByteBuffer()
        try response.encode(into: &buffer, version: 3)
        //                    error code  apiKeys (compact, 0 items)  throttle            tagged count
        XCTAssertEqual(Array(buffer.readableBytesView), [0, 0, 1, 0, 0, 0, 0, 0])
    }

    func testNonDefaultFieldAtAnOldVersionIsAnError() {
        // ProduceRequest.TransactionalId exists from v3 and is not ignorable.
        let request = ProduceRequest(transactionalId: "txn", acks: 1, timeoutMs: 1000)
        var buffer = ByteBuffer()
        XCTAssertThrowsError(try request.encode(into: &buffer, version: 2)) { error in
            XCTAssertEqual((error as? KafkaProtocolError)?.code, .unsupportedField)
            XCTAssertEqual((error as? KafkaProtocolError)?.field, "ProduceRequest.TransactionalId")
        }
    }

    func testNullWhereTheVersionForbidsItIsAnError() {
        // MetadataRequest.Topics is nullable only from v1.
        let request = MetadataRequest(topics: nil)
        var buffer = ByteBuffer()
        XCTAssertThrowsError(try request.encode(into: &buffer, version: 0))
        XCTAssertNoThrow(try request.encode(into: &buffer, version: 1))
    }

    func testDecodeErrorsNameApiVersionAndField() {
        var buffer = ByteBuffer(bytes: [0, 1, 0, 0])  // acks, then a truncated timeout
        XCTAssertThrowsError(try ProduceRequest(from: &buffer, version: 3)) { error in
            let e = error as? KafkaProtocolError
            XCTAssertEqual(e?.api, "ProduceRequest")
            XCTAssertEqual(e?.version, 3)
            XCTAssertNotNil(e?.field)
        }
    }

    func testAbsurdArrayCountIsRejectedBeforeAllocating() {
        // Metadata v1: topics array with count 2^31-1 and no bytes after it.
        var buffer = ByteBuffer(bytes: [0x7F, 0xFF, 0xFF, 0xFF])
        XCTAssertThrowsError(try MetadataRequest(from: &buffer, version: 1)) { error in
            XCTAssertEqual((error as? KafkaProtocolError)?.code, .invalidLength)
        }
    }

    func testApiVersionsHeaderExceptions() throws {
        XCTAssertEqual(APIKey.apiVersions.responseHeaderVersion(apiVersion: 3), 0)
        XCTAssertEqual(APIKey.metadata.responseHeaderVersion(apiVersion: 9), 1)
        XCTAssertEqual(APIKey.metadata.requestHeaderVersion(apiVersion: 9), 2)
        XCTAssertEqual(APIKey.metadata.requestHeaderVersion(apiVersion: 8), 1)
        // The client id keeps its 2-byte length in a flexible (v2) header.
        let header = RequestHeader(requestApiKey: 18, requestApiVersion: 3, correlationId: 5, clientId: "ab")
        var buffer = ByteBuffer()
        try header.encode(into: &buffer, version: 2)
        //                    key     version  correlation id  client id (int16 len) "a" "b"  tagged
        XCTAssertEqual(Array(buffer.readableBytesView), [0, 18, 0, 3, 0, 0, 0, 5, 0, 2, 97, 98, 0])
    }
}
