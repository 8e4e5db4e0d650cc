import KafkaProtocol
import NIOCore
import XCTest

/// Request frames written out byte by byte, one comment per field, in the manner of
/// swift-nio-http2's `HTTP2FrameParserTests`. Each literal is first checked against the
/// captured fixture it transcribes, so the annotations describe what a real client sent,
/// not what we think it sends; then decoding must give the expected request and encoding
/// the expected request must give the literal back.
///
/// Frames are shown without the int32 size prefix, as the fixtures store them. Strings are
/// int16-length-prefixed (or, in flexible versions, unsigned-varint length + 1); records
/// use zigzag varints, and the comments give their decoded values. If the fixtures are
/// re-captured, correlation ids, timestamps and CRCs change and these literals with them.
final class AnnotatedFixtureTests: XCTestCase {
    private let kafkaPython = "tributary-fixtures-kafka-python"
    private let group = "tributary-fixtures-group"
    private let member = "tributary-fixtures-kafka-python-member-1"

    // MARK: - ApiVersions

    func testApiVersionsV2IsAHeaderWithAnEmptyBody() throws {
        let frame: [UInt8] = [
            0x00, 0x12,  // api key 18 (ApiVersions)
            0x00, 0x02,  // api version 2
            0x00, 0x00, 0x00, 0x02,  // correlation id 2
            0x00, 0x1f,  // client id length 31
            0x74, 0x72, 0x69, 0x62, 0x75, 0x74, 0x61, 0x72, 0x79, 0x2d, 0x66, 0x69, 0x78, 0x74, 0x75, 0x72,  // client id "tributary-fixtures-kafka-python"
            0x65, 0x73, 0x2d, 0x6b, 0x61, 0x66, 0x6b, 0x61, 0x2d, 0x70, 0x79, 0x74, 0x68, 0x6f, 0x6e,
        ]
        try assertAnnotated(
            frame, transcribes: "request-apiversions-v2-kafka-python",
            header: RequestHeader(requestApiKey: 18, requestApiVersion: 2, correlationId: 2, clientId: kafkaPython),
            body: ApiVersionsRequest()
        )
    }

    func testApiVersionsV4UsesHeaderV2AndCompactClientSoftwareStrings() throws {
        let frame: [UInt8] = [
            0x00, 0x12,  // api key 18 (ApiVersions)
            0x00, 0x04,  // api version 4
            0x00, 0x00, 0x00, 0x01,  // correlation id 1
            0x00, 0x1f,  // client id length 31
            0x74, 0x72, 0x69, 0x62, 0x75, 0x74, 0x61, 0x72, 0x79, 0x2d, 0x66, 0x69, 0x78, 0x74, 0x75, 0x72,  // client id "tributary-fixtures-kafka-python"
            0x65, 0x73, 0x2d, 0x6b, 0x61, 0x66, 0x6b, 0x61, 0x2d, 0x70, 0x79, 0x74, 0x68, 0x6f, 0x6e,
            0x00,  // header: 0 tagged fields
            0x0d,  // client software name length 12 (compact 13)
            0x6b, 0x61, 0x66, 0x6b, 0x61, 0x2d, 0x70, 0x79, 0x74, 0x68, 0x6f, 0x6e,  // client software name "kafka-python"
            0x07,  // client software version length 6 (compact 7)
            0x33, 0x2e, 0x30, 0x2e, 0x31, 0x32,  // client software version "3.0.12"
            0x00,  // body: 0 tagged fields
        ]
        try assertAnnotated(
            frame, transcribes: "request-apiversions-v4-kafka-python",
            header: RequestHeader(requestApiKey: 18, requestApiVersion: 4, correlationId: 1, clientId: kafkaPython),
            body: ApiVersionsRequest(clientSoftwareName: "kafka-python", clientSoftwareVersion: "3.0.12")
        )
    }

    // MARK: - Metadata

    func testMetadataV8NamesTopicsAndAuthorizedOperationFlags() throws {
        let frame: [UInt8] = [
            0x00, 0x03,  // api key 3 (Metadata)
            0x00, 0x08,  // api version 8
            0x00, 0x00, 0x00, 0x02,  // correlation id 2
            0x00, 0x1f,  // client id length 31
            0x74, 0x72, 0x69, 0x62, 0x75, 0x74, 0x61, 0x72, 0x79, 0x2d, 0x66, 0x69, 0x78, 0x74, 0x75, 0x72,  // client id "tributary-fixtures-kafka-python"
            0x65, 0x73, 0x2d, 0x6b, 0x61, 0x66, 0x6b, 0x61, 0x2d, 0x70, 0x79, 0x74, 0x68, 0x6f, 0x6e,
            0x00, 0x00, 0x00, 0x01,  // topics: 1 item
            0x00, 0x08,  // topic name length 8
            0x66, 0x69, 0x78, 0x74, 0x75, 0x72, 0x65, 0x73,  // topic name "fixtures"
            0x01,  // allow auto topic creation true
            0x00,  // include cluster authorized operations false
            0x00,  // include topic authorized operations false
        ]
        try assertAnnotated(
            frame, transcribes: "request-metadata-v8-kafka-python",
            header: RequestHeader(requestApiKey: 3, requestApiVersion: 8, correlationId: 2, clientId: kafkaPython),
            body: MetadataRequest(
                topics: [.init(name: "fixtures")],
                allowAutoTopicCreation: true,
                includeClusterAuthorizedOperations: false,
                includeTopicAuthorizedOperations: false
            )
        )
    }

    /// Metadata v13 (Kafka 4.0) changed only the response; the request is v12's layout. Our
    /// definitions stop at v12, so the body is read and written at v12 here, and the decoder
    /// proper refuses v13 rather than guess.
    func testMetadataV13SendsV12sBodyWithTopicIdsAndCompactNames() throws {
        let frame: [UInt8] = [
            0x00, 0x03,  // api key 3 (Metadata)
            0x00, 0x0d,  // api version 13
            0x00, 0x00, 0x00, 0x02,  // correlation id 2
            0x00, 0x1f,  // client id length 31
            0x74, 0x72, 0x69, 0x62, 0x75, 0x74, 0x61, 0x72, 0x79, 0x2d, 0x66, 0x69, 0x78, 0x74, 0x75, 0x72,  // client id "tributary-fixtures-kafka-python"
            0x65, 0x73, 0x2d, 0x6b, 0x61, 0x66, 0x6b, 0x61, 0x2d, 0x70, 0x79, 0x74, 0x68, 0x6f, 0x6e,
            0x00,  // header: 0 tagged fields
            0x02,  // topics: 1 item (compact 2)
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // topic id 00000000-0000-0000-0000-000000000000
            0x09,  // topic name length 8 (compact 9)
            0x66, 0x69, 0x78, 0x74, 0x75, 0x72, 0x65, 0x73,  // topic name "fixtures"
            0x00,  // topic: 0 tagged fields
            0x01,  // allow auto topic creation true
            0x00,  // include topic authorized operations false
            0x00,  // body: 0 tagged fields
        ]
        try assertAnnotated(
            frame, transcribes: "request-metadata-v13-kafka-python",
            header: RequestHeader(requestApiKey: 3, requestApiVersion: 13, correlationId: 2, clientId: kafkaPython),
            body: MetadataRequest(
                topics: [.init(topicId: .zero, name: "fixtures")],
                allowAutoTopicCreation: true,
                includeTopicAuthorizedOperations: false
            ),
            bodyVersion: 12
        )
        var body = try KafkaRequestFrame(frame: ByteBuffer(bytes: frame)).body
        XCTAssertThrowsError(try AnyKafkaRequest(apiKey: .metadata, version: 13, from: &body)) { error in
            XCTAssertEqual((error as? KafkaProtocolError)?.code, .unsupportedVersion)
        }
    }

    // MARK: - Produce

    func testProduceV8CarriesTheRecordBatchAsInt32LengthBytes() throws {
        let frame: [UInt8] = [
            0x00, 0x00,  // api key 0 (Produce)
            0x00, 0x08,  // api version 8
            0x00, 0x00, 0x00, 0x03,  // correlation id 3
            0x00, 0x1f,  // client id length 31
            0x74, 0x72, 0x69, 0x62, 0x75, 0x74, 0x61, 0x72, 0x79, 0x2d, 0x66, 0x69, 0x78, 0x74, 0x75, 0x72,  // client id "tributary-fixtures-kafka-python"
            0x65, 0x73, 0x2d, 0x6b, 0x61, 0x66, 0x6b, 0x61, 0x2d, 0x70, 0x79, 0x74, 0x68, 0x6f, 0x6e,
            0xff, 0xff,  // transactional id: null (length -1)
            0x00, 0x01,  // acks 1
            0x00, 0x00, 0x27, 0x10,  // timeout ms 10000
            0x00, 0x00, 0x00, 0x01,  // topic data: 1 item
            0x00, 0x08,  // topic name length 8
            0x66, 0x69, 0x78, 0x74, 0x75, 0x72, 0x65, 0x73,  // topic name "fixtures"
            0x00, 0x00, 0x00, 0x01,  // partition data: 1 item
            0x00, 0x00, 0x00, 0x00,  // partition index 0
            0x00, 0x00, 0x01, 0x48,  // records length 328
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // batch: base offset 0
            0x00, 0x00, 0x01, 0x3c,  // batch length 316 (bytes after this field)
            0x00, 0x00, 0x00, 0x00,  // partition leader epoch 0
            0x02,  // magic 2
            0xce, 0x5e, 0x7e, 0x73,  // CRC-32C 0xce5e7e73 (attributes..end)
            0x00, 0x00,  // attributes 0x0000 (no compression, CreateTime)
            0x00, 0x00, 0x00, 0x02,  // last offset delta 2
            0x00, 0x00, 0x01, 0xa2, 0x14, 0x59, 0xdc, 0x36,  // base timestamp 1795637763126
            0x00, 0x00, 0x01, 0xa2, 0x14, 0x59, 0xdc, 0x36,  // max timestamp 1795637763126
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,  // producer id -1
            0xff, 0xff,  // producer epoch -1
            0xff, 0xff, 0xff, 0xff,  // base sequence -1
            0x00, 0x00, 0x00, 0x03,  // record count 3
            0xb8, 0x01,  // record 0: length 92
            0x00,  // record 0: attributes 0
            0x00,  // record 0: timestamp delta 0
            0x00,  // record 0: offset delta 0
            0x0a,  // record 0: key length 5
            0x6b, 0x65, 0x79, 0x2d, 0x30,  // record 0: key "key-0"
            0x80, 0x01,  // record 0: value length 64
            0x68, 0x65, 0x6c, 0x6c, 0x6f, 0x20, 0x74, 0x72, 0x69, 0x62, 0x75, 0x74, 0x61, 0x72, 0x79, 0x20,  // record 0: value "hello tributary hello tributary hello tributary hello tributary "
            0x68, 0x65, 0x6c, 0x6c, 0x6f, 0x20, 0x74, 0x72, 0x69, 0x62, 0x75, 0x74, 0x61, 0x72, 0x79, 0x20,
            0x68, 0x65, 0x6c, 0x6c, 0x6f, 0x20, 0x74, 0x72, 0x69, 0x62, 0x75, 0x74, 0x61, 0x72, 0x79, 0x20,
            0x68, 0x65, 0x6c, 0x6c, 0x6f, 0x20, 0x74, 0x72, 0x69, 0x62, 0x75, 0x74, 0x61, 0x72, 0x79, 0x20,
            0x02,  // record 0: 1 header
            0x10,  // record 0: header key length 8
            0x74, 0x72, 0x61, 0x63, 0x65, 0x2d, 0x69, 0x64,  // record 0: header key "trace-id"
            0x0c,  // record 0: header value length 6
            0x61, 0x62, 0x63, 0x31, 0x32, 0x33,  // record 0: header value "abc123"
            0x92, 0x01,  // record 1: length 73
            0x00,  // record 1: attributes 0
            0x00,  // record 1: timestamp delta 0
            0x02,  // record 1: offset delta 1
            0x01,  // record 1: key length -1 (null)
            0x84, 0x01,  // record 1: value length 66
            0x72, 0x65, 0x63, 0x6f, 0x72, 0x64, 0x20, 0x77, 0x69, 0x74, 0x68, 0x6f, 0x75, 0x74, 0x20, 0x61,  // record 1: value "record without a key, record without a key, record without a key, "
            0x20, 0x6b, 0x65, 0x79, 0x2c, 0x20, 0x72, 0x65, 0x63, 0x6f, 0x72, 0x64, 0x20, 0x77, 0x69, 0x74,
            0x68, 0x6f, 0x75, 0x74, 0x20, 0x61, 0x20, 0x6b, 0x65, 0x79, 0x2c, 0x20, 0x72, 0x65, 0x63, 0x6f,
            0x72, 0x64, 0x20, 0x77, 0x69, 0x74, 0x68, 0x6f, 0x75, 0x74, 0x20, 0x61, 0x20, 0x6b, 0x65, 0x79,
            0x2c, 0x20,
            0x00,  // record 1: 0 headers
            0xc0, 0x01,  // record 2: length 96
            0x00,  // record 2: attributes 0
            0x00,  // record 2: timestamp delta 0
            0x04,  // record 2: offset delta 2
            0x0a,  // record 2: key length 5
            0x6b, 0x65, 0x79, 0x2d, 0x32,  // record 2: key "key-2"
            0x8e, 0x01,  // record 2: value length 71
            0x7b, 0x22, 0x6e, 0x22, 0x3a, 0x32, 0x2c, 0x22, 0x74, 0x65, 0x78, 0x74, 0x22, 0x3a, 0x22, 0x74,  // record 2: value "{"n":2,"text":"third","pad":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}"
            0x68, 0x69, 0x72, 0x64, 0x22, 0x2c, 0x22, 0x70, 0x61, 0x64, 0x22, 0x3a, 0x22, 0x78, 0x78, 0x78,
            0x78, 0x78, 0x78, 0x78, 0x78, 0x78, 0x78, 0x78, 0x78, 0x78, 0x78, 0x78, 0x78, 0x78, 0x78, 0x78,
            0x78, 0x78, 0x78, 0x78, 0x78, 0x78, 0x78, 0x78, 0x78, 0x78, 0x78, 0x78, 0x78, 0x78, 0x78, 0x78,
            0x78, 0x78, 0x78, 0x78, 0x78, 0x22, 0x7d,
            0x04,  // record 2: 2 headers
            0x04,  // record 2: header key length 2
            0x68, 0x31,  // record 2: header key "h1"
            0x04,  // record 2: header value length 2
            0x76, 0x31,  // record 2: header value "v1"
            0x0a,  // record 2: header key length 5
            0x65, 0x6d, 0x70, 0x74, 0x79,  // record 2: header key "empty"
            0x00,  // record 2: header value length 0
        ]
        // The records field: the batch annotated above, from its base offset to the end.
        let batchBytes = Array(frame[75...])
        try assertAnnotated(
            frame, transcribes: "request-produce-v8-kafka-python",
            header: RequestHeader(requestApiKey: 0, requestApiVersion: 8, correlationId: 3, clientId: kafkaPython),
            body: ProduceRequest(
                transactionalId: nil, acks: 1, timeoutMs: 10000,
                topicData: [.init(name: "fixtures", partitionData: [.init(index: 0, records: ByteBuffer(bytes: batchBytes))])]
            )
        )
        try assertProducedBatch(batchBytes, crc: 0xce5e_7e73, timestamp: 1_795_637_763_126)
    }

    func testProduceV9CarriesTheRecordBatchAsCompactBytesWithTaggedFields() throws {
        let frame: [UInt8] = [
            0x00, 0x00,  // api key 0 (Produce)
            0x00, 0x09,  // api version 9
            0x00, 0x00, 0x00, 0x03,  // correlation id 3
            0x00, 0x1f,  // client id length 31
            0x74, 0x72, 0x69, 0x62, 0x75, 0x74, 0x61, 0x72, 0x79, 0x2d, 0x66, 0x69, 0x78, 0x74, 0x75, 0x72,  // client id "tributary-fixtures-kafka-python"
            0x65, 0x73, 0x2d, 0x6b, 0x61, 0x66, 0x6b, 0x61, 0x2d, 0x70, 0x79, 0x74, 0x68, 0x6f, 0x6e,
            0x00,  // header: 0 tagged fields
            0x00,  // transactional id: null (compact length 0)
            0x00, 0x01,  // acks 1
            0x00, 0x00, 0x27, 0x10,  // timeout ms 10000
            0x02,  // topic data: 1 item (compact 2)
            0x09,  // topic name length 8 (compact 9)
            0x66, 0x69, 0x78, 0x74, 0x75, 0x72, 0x65, 0x73,  // topic name "fixtures"
            0x02,  // partition data: 1 item (compact 2)
            0x00, 0x00, 0x00, 0x00,  // partition index 0
            0xc9, 0x02,  // records length 328 (compact 329)
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // batch: base offset 0
            0x00, 0x00, 0x01, 0x3c,  // batch length 316 (bytes after this field)
            0x00, 0x00, 0x00, 0x00,  // partition leader epoch 0
            0x02,  // magic 2
            0xb5, 0x04, 0x3f, 0x23,  // CRC-32C 0xb5043f23 (attributes..end)
            0x00, 0x00,  // attributes 0x0000 (no compression, CreateTime)
            0x00, 0x00, 0x00, 0x02,  // last offset delta 2
            0x00, 0x00, 0x01, 0xa2, 0x14, 0x59, 0xd0, 0xf9,  // base timestamp 1795637760249
            0x00, 0x00, 0x01, 0xa2, 0x14, 0x59, 0xd0, 0xf9,  // max timestamp 1795637760249
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,  // producer id -1
            0xff, 0xff,  // producer epoch -1
            0xff, 0xff, 0xff, 0xff,  // base sequence -1
            0x00, 0x00, 0x00, 0x03,  // record count 3
            0xb8, 0x01,  // record 0: length 92
            0x00,  // record 0: attributes 0
            0x00,  // record 0: timestamp delta 0
            0x00,  // record 0: offset delta 0
            0x0a,  // record 0: key length 5
            0x6b, 0x65, 0x79, 0x2d, 0x30,  // record 0: key "key-0"
            0x80, 0x01,  // record 0: value length 64
            0x68, 0x65, 0x6c, 0x6c, 0x6f, 0x20, 0x74, 0x72, 0x69, 0x62, 0x75, 0x74, 0x61, 0x72, 0x79, 0x20,  // record 0: value "hello tributary hello tributary hello tributary hello tributary "
            0x68, 0x65, 0x6c, 0x6c, 0x6f, 0x20, 0x74, 0x72, 0x69, 0x62, 0x75, 0x74, 0x61, 0x72, 0x79, 0x20,
            0x68, 0x65, 0x6c, 0x6c, 0x6f, 0x20, 0x74, 0x72, 0x69, 0x62, 0x75, 0x74, 0x61, 0x72, 0x79, 0x20,
            0x68, 0x65, 0x6c, 0x6c, 0x6f, 0x20, 0x74, 0x72, 0x69, 0x62, 0x75, 0x74, 0x61, 0x72, 0x79, 0x20,
            0x02,  // record 0: 1 header
            0x10,  // record 0: header key length 8
            0x74, 0x72, 0x61, 0x63, 0x65, 0x2d, 0x69, 0x64,  // record 0: header key "trace-id"
            0x0c,  // record 0: header value length 6
            0x61, 0x62, 0x63, 0x31, 0x32, 0x33,  // record 0: header value "abc123"
            0x92, 0x01,  // record 1: length 73
            0x00,  // record 1: attributes 0
            0x00,  // record 1: timestamp delta 0
            0x02,  // record 1: offset delta 1
            0x01,  // record 1: key length -1 (null)
            0x84, 0x01,  // record 1: value length 66
            0x72, 0x65, 0x63, 0x6f, 0x72, 0x64, 0x20, 0x77, 0x69, 0x74, 0x68, 0x6f, 0x75, 0x74, 0x20, 0x61,  // record 1: value "record without a key, record without a key, record without a key, "
            0x20, 0x6b, 0x65, 0x79, 0x2c, 0x20, 0x72, 0x65, 0x63, 0x6f, 0x72, 0x64, 0x20, 0x77, 0x69, 0x74,
            0x68, 0x6f, 0x75, 0x74, 0x20, 0x61, 0x20, 0x6b, 0x65, 0x79, 0x2c, 0x20, 0x72, 0x65, 0x63, 0x6f,
            0x72, 0x64, 0x20, 0x77, 0x69, 0x74, 0x68, 0x6f, 0x75, 0x74, 0x20, 0x61, 0x20, 0x6b, 0x65, 0x79,
            0x2c, 0x20,
            0x00,  // record 1: 0 headers
            0xc0, 0x01,  // record 2: length 96
            0x00,  // record 2: attributes 0
            0x00,  // record 2: timestamp delta 0
            0x04,  // record 2: offset delta 2
            0x0a,  // record 2: key length 5
            0x6b, 0x65, 0x79, 0x2d, 0x32,  // record 2: key "key-2"
            0x8e, 0x01,  // record 2: value length 71
            0x7b, 0x22, 0x6e, 0x22, 0x3a, 0x32, 0x2c, 0x22, 0x74, 0x65, 0x78, 0x74, 0x22, 0x3a, 0x22, 0x74,  // record 2: value "{"n":2,"text":"third","pad":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}"
            0x68, 0x69, 0x72, 0x64, 0x22, 0x2c, 0x22, 0x70, 0x61, 0x64, 0x22, 0x3a, 0x22, 0x78, 0x78, 0x78,
            0x78, 0x78, 0x78, 0x78, 0x78, 0x78, 0x78, 0x78, 0x78, 0x78, 0x78, 0x78, 0x78, 0x78, 0x78, 0x78,
            0x78, 0x78, 0x78, 0x78, 0x78, 0x78, 0x78, 0x78, 0x78, 0x78, 0x78, 0x78, 0x78, 0x78, 0x78, 0x78,
            0x78, 0x78, 0x78, 0x78, 0x78, 0x22, 0x7d,
            0x04,  // record 2: 2 headers
            0x04,  // record 2: header key length 2
            0x68, 0x31,  // record 2: header key "h1"
            0x04,  // record 2: header value length 2
            0x76, 0x31,  // record 2: header value "v1"
            0x0a,  // record 2: header key length 5
            0x65, 0x6d, 0x70, 0x74, 0x79,  // record 2: header key "empty"
            0x00,  // record 2: header value length 0
            0x00,  // partition: 0 tagged fields
            0x00,  // topic: 0 tagged fields
            0x00,  // body: 0 tagged fields
        ]
        // The records field: the batch annotated above, up to the three tagged-field counts.
        let batchBytes = Array(frame[66..<(frame.count - 3)])
        try assertAnnotated(
            frame, transcribes: "request-produce-v9-kafka-python",
            header: RequestHeader(requestApiKey: 0, requestApiVersion: 9, correlationId: 3, clientId: kafkaPython),
            body: ProduceRequest(
                transactionalId: nil, acks: 1, timeoutMs: 10000,
                topicData: [.init(name: "fixtures", partitionData: [.init(index: 0, records: ByteBuffer(bytes: batchBytes))])]
            )
        )
        try assertProducedBatch(batchBytes, crc: 0xb504_3f23, timestamp: 1_795_637_760_249)
    }

    /// The batch fields annotated in the produce frames, read back through `RecordBatch`.
    private func assertProducedBatch(_ bytes: [UInt8], crc: UInt32, timestamp: Int64, file: StaticString = #filePath, line: UInt = #line) throws {
        let batch = try RecordBatch(validating: ByteBuffer(bytes: bytes))
        XCTAssertEqual(batch.baseOffset, 0, file: file, line: line)
        XCTAssertEqual(batch.batchLength, 316, file: file, line: line)
        XCTAssertEqual(batch.partitionLeaderEpoch, 0, file: file, line: line)
        XCTAssertEqual(batch.magic, 2, file: file, line: line)
        XCTAssertEqual(batch.crc, crc, file: file, line: line)
        XCTAssertEqual(batch.computeCRC(), crc, file: file, line: line)
        XCTAssertEqual(batch.compression, CompressionCodec.none, file: file, line: line)
        XCTAssertEqual(batch.lastOffsetDelta, 2, file: file, line: line)
        XCTAssertEqual(batch.baseTimestamp, timestamp, file: file, line: line)
        XCTAssertEqual(batch.maxTimestamp, timestamp, file: file, line: line)
        XCTAssertEqual(batch.producerId, -1, file: file, line: line)
        XCTAssertEqual(batch.producerEpoch, -1, file: file, line: line)
        XCTAssertEqual(batch.baseSequence, -1, file: file, line: line)
        XCTAssertEqual(batch.recordCount, 3, file: file, line: line)
        var records = try batch.records()
        XCTAssertEqual(try records.all(), [
            Record(offsetDelta: 0, key: ByteBuffer(string: "key-0"),
                   value: ByteBuffer(string: String(repeating: "hello tributary ", count: 4)),
                   headers: [.init(key: "trace-id", value: ByteBuffer(string: "abc123"))]),
            Record(offsetDelta: 1, key: nil,
                   value: ByteBuffer(string: String(repeating: "record without a key, ", count: 3))),
            Record(offsetDelta: 2, key: ByteBuffer(string: "key-2"),
                   value: ByteBuffer(string: #"{"n":2,"text":"third","pad":"\#(String(repeating: "x", count: 40))"}"#),
                   headers: [.init(key: "h1", value: ByteBuffer(string: "v1")), .init(key: "empty", value: ByteBuffer())]),
        ], file: file, line: line)
    }

    // MARK: - Fetch

    func testFetchV11NamesTopicsWithPartitionOffsetsAndLimits() throws {
        let frame: [UInt8] = [
            0x00, 0x01,  // api key 1 (Fetch)
            0x00, 0x0b,  // api version 11
            0x00, 0x00, 0x00, 0x05,  // correlation id 5
            0x00, 0x1f,  // client id length 31
            0x74, 0x72, 0x69, 0x62, 0x75, 0x74, 0x61, 0x72, 0x79, 0x2d, 0x66, 0x69, 0x78, 0x74, 0x75, 0x72,  // client id "tributary-fixtures-kafka-python"
            0x65, 0x73, 0x2d, 0x6b, 0x61, 0x66, 0x6b, 0x61, 0x2d, 0x70, 0x79, 0x74, 0x68, 0x6f, 0x6e,
            0xff, 0xff, 0xff, 0xff,  // replica id -1
            0x00, 0x00, 0x00, 0xc8,  // max wait ms 200
            0x00, 0x00, 0x00, 0x01,  // min bytes 1
            0x03, 0x20, 0x00, 0x00,  // max bytes 52428800
            0x00,  // isolation level 0
            0x00, 0x00, 0x00, 0x00,  // session id 0
            0x00, 0x00, 0x00, 0x00,  // session epoch 0
            0x00, 0x00, 0x00, 0x01,  // topics: 1 item
            0x00, 0x08,  // topic length 8
            0x66, 0x69, 0x78, 0x74, 0x75, 0x72, 0x65, 0x73,  // topic "fixtures"
            0x00, 0x00, 0x00, 0x01,  // partitions: 1 item
            0x00, 0x00, 0x00, 0x00,  // partition 0
            0xff, 0xff, 0xff, 0xff,  // current leader epoch -1
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // fetch offset 0
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,  // log start offset -1
            0x00, 0x10, 0x00, 0x00,  // partition max bytes 1048576
            0x00, 0x00, 0x00, 0x00,  // forgotten topics: 0 items
            0x00, 0x00,  // rack id length 0
        ]
        try assertAnnotated(
            frame, transcribes: "request-fetch-v11-kafka-python",
            header: RequestHeader(requestApiKey: 1, requestApiVersion: 11, correlationId: 5, clientId: kafkaPython),
            body: FetchRequest(
                replicaId: -1, maxWaitMs: 200, minBytes: 1, maxBytes: 52_428_800, isolationLevel: 0,
                sessionId: 0, sessionEpoch: 0,
                topics: [.init(topic: "fixtures", partitions: [
                    .init(partition: 0, currentLeaderEpoch: -1, fetchOffset: 0, logStartOffset: -1, partitionMaxBytes: 1_048_576),
                ])],
                forgottenTopicsData: [], rackId: ""
            )
        )
    }

    func testFetchV16IdentifiesTopicsByIdAndDropsTheReplicaId() throws {
        let frame: [UInt8] = [
            0x00, 0x01,  // api key 1 (Fetch)
            0x00, 0x10,  // api version 16
            0x00, 0x00, 0x00, 0x07,  // correlation id 7
            0x00, 0x22,  // client id length 34
            0x74, 0x72, 0x69, 0x62, 0x75, 0x74, 0x61, 0x72, 0x79, 0x2d, 0x66, 0x69, 0x78, 0x74, 0x75, 0x72,  // client id "tributary-fixtures-confluent-kafka"
            0x65, 0x73, 0x2d, 0x63, 0x6f, 0x6e, 0x66, 0x6c, 0x75, 0x65, 0x6e, 0x74, 0x2d, 0x6b, 0x61, 0x66,
            0x6b, 0x61,
            0x00,  // header: 0 tagged fields
            0x00, 0x00, 0x00, 0xc8,  // max wait ms 200
            0x00, 0x00, 0x00, 0x01,  // min bytes 1
            0x03, 0x20, 0x00, 0x00,  // max bytes 52428800
            0x01,  // isolation level 1
            0x00, 0x00, 0x00, 0x00,  // session id 0
            0xff, 0xff, 0xff, 0xff,  // session epoch -1
            0x02,  // topics: 1 item (compact 2)
            0x5f, 0x1e, 0x7d, 0x1c, 0x3b, 0x6a, 0x4c, 0x2e, 0x9a, 0x8b, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab,  // topic id 5f1e7d1c-3b6a-4c2e-9a8b-0123456789ab
            0x02,  // partitions: 1 item (compact 2)
            0x00, 0x00, 0x00, 0x00,  // partition 0
            0x00, 0x00, 0x00, 0x00,  // current leader epoch 0
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // fetch offset 0
            0xff, 0xff, 0xff, 0xff,  // last fetched epoch -1
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,  // log start offset -1
            0x00, 0x10, 0x00, 0x00,  // partition max bytes 1048576
            0x00,  // partition: 0 tagged fields
            0x00,  // topic: 0 tagged fields
            0x01,  // forgotten topics: 0 items (compact 1)
            0x01,  // rack id length 0 (compact 1)
            0x00,  // body: 0 tagged fields
        ]
        try assertAnnotated(
            frame, transcribes: "request-fetch-v16-confluent-kafka",
            header: RequestHeader(requestApiKey: 1, requestApiVersion: 16, correlationId: 7, clientId: "tributary-fixtures-confluent-kafka"),
            body: FetchRequest(
                maxWaitMs: 200, minBytes: 1, maxBytes: 52_428_800, isolationLevel: 1,
                sessionId: 0, sessionEpoch: -1,
                topics: [.init(topicId: KafkaUUID(high: 0x5f1e_7d1c_3b6a_4c2e, low: 0x9a8b_0123_4567_89ab), partitions: [
                    .init(partition: 0, currentLeaderEpoch: 0, fetchOffset: 0, lastFetchedEpoch: -1, logStartOffset: -1, partitionMaxBytes: 1_048_576),
                ])],
                forgottenTopicsData: [], rackId: ""
            )
        )
    }

    // MARK: - JoinGroup

    func testJoinGroupV5OffersRangeAndRoundRobinWithConsumerSubscriptions() throws {
        let frame: [UInt8] = [
            0x00, 0x0b,  // api key 11 (JoinGroup)
            0x00, 0x05,  // api version 5
            0x00, 0x00, 0x00, 0x04,  // correlation id 4
            0x00, 0x1f,  // client id length 31
            0x74, 0x72, 0x69, 0x62, 0x75, 0x74, 0x61, 0x72, 0x79, 0x2d, 0x66, 0x69, 0x78, 0x74, 0x75, 0x72,  // client id "tributary-fixtures-kafka-python"
            0x65, 0x73, 0x2d, 0x6b, 0x61, 0x66, 0x6b, 0x61, 0x2d, 0x70, 0x79, 0x74, 0x68, 0x6f, 0x6e,
            0x00, 0x18,  // group id length 24
            0x74, 0x72, 0x69, 0x62, 0x75, 0x74, 0x61, 0x72, 0x79, 0x2d, 0x66, 0x69, 0x78, 0x74, 0x75, 0x72,  // group id "tributary-fixtures-group"
            0x65, 0x73, 0x2d, 0x67, 0x72, 0x6f, 0x75, 0x70,
            0x00, 0x00, 0x27, 0x10,  // session timeout ms 10000
            0x00, 0x04, 0x93, 0xe0,  // rebalance timeout ms 300000
            0x00, 0x28,  // member id length 40
            0x74, 0x72, 0x69, 0x62, 0x75, 0x74, 0x61, 0x72, 0x79, 0x2d, 0x66, 0x69, 0x78, 0x74, 0x75, 0x72,  // member id "tributary-fixtures-kafka-python-member-1"
            0x65, 0x73, 0x2d, 0x6b, 0x61, 0x66, 0x6b, 0x61, 0x2d, 0x70, 0x79, 0x74, 0x68, 0x6f, 0x6e, 0x2d,
            0x6d, 0x65, 0x6d, 0x62, 0x65, 0x72, 0x2d, 0x31,
            0xff, 0xff,  // group instance id: null (length -1)
            0x00, 0x08,  // protocol type length 8
            0x63, 0x6f, 0x6e, 0x73, 0x75, 0x6d, 0x65, 0x72,  // protocol type "consumer"
            0x00, 0x00, 0x00, 0x02,  // protocols: 2 items
            0x00, 0x05,  // protocol name length 5
            0x72, 0x61, 0x6e, 0x67, 0x65,  // protocol name "range"
            0x00, 0x00, 0x00, 0x14,  // range metadata length 20
            0x00, 0x00,  // range: subscription version 0
            0x00, 0x00, 0x00, 0x01,  // range: 1 topic
            0x00, 0x08,  // range: topic length 8
            0x66, 0x69, 0x78, 0x74, 0x75, 0x72, 0x65, 0x73,  // range: topic "fixtures"
            0x00, 0x00, 0x00, 0x00,  // range: user data length 0
            0x00, 0x0a,  // protocol name length 10
            0x72, 0x6f, 0x75, 0x6e, 0x64, 0x72, 0x6f, 0x62, 0x69, 0x6e,  // protocol name "roundrobin"
            0x00, 0x00, 0x00, 0x14,  // roundrobin metadata length 20
            0x00, 0x00,  // roundrobin: subscription version 0
            0x00, 0x00, 0x00, 0x01,  // roundrobin: 1 topic
            0x00, 0x08,  // roundrobin: topic length 8
            0x66, 0x69, 0x78, 0x74, 0x75, 0x72, 0x65, 0x73,  // roundrobin: topic "fixtures"
            0x00, 0x00, 0x00, 0x00,  // roundrobin: user data length 0
        ]
        let subscription = try consumerSubscriptionV0(topics: ["fixtures"])
        try assertAnnotated(
            frame, transcribes: "request-joingroup-v5-kafka-python",
            header: RequestHeader(requestApiKey: 11, requestApiVersion: 5, correlationId: 4, clientId: kafkaPython),
            body: JoinGroupRequest(
                groupId: group, sessionTimeoutMs: 10000, rebalanceTimeoutMs: 300_000, memberId: member,
                groupInstanceId: nil, protocolType: "consumer",
                protocols: [.init(name: "range", metadata: subscription), .init(name: "roundrobin", metadata: subscription)]
            )
        )
    }

    func testJoinGroupV7UsesCompactStringsAndBytesAroundTheSameSubscriptions() throws {
        let frame: [UInt8] = [
            0x00, 0x0b,  // api key 11 (JoinGroup)
            0x00, 0x07,  // api version 7
            0x00, 0x00, 0x00, 0x04,  // correlation id 4
            0x00, 0x1f,  // client id length 31
            0x74, 0x72, 0x69, 0x62, 0x75, 0x74, 0x61, 0x72, 0x79, 0x2d, 0x66, 0x69, 0x78, 0x74, 0x75, 0x72,  // client id "tributary-fixtures-kafka-python"
            0x65, 0x73, 0x2d, 0x6b, 0x61, 0x66, 0x6b, 0x61, 0x2d, 0x70, 0x79, 0x74, 0x68, 0x6f, 0x6e,
            0x00,  // header: 0 tagged fields
            0x19,  // group id length 24 (compact 25)
            0x74, 0x72, 0x69, 0x62, 0x75, 0x74, 0x61, 0x72, 0x79, 0x2d, 0x66, 0x69, 0x78, 0x74, 0x75, 0x72,  // group id "tributary-fixtures-group"
            0x65, 0x73, 0x2d, 0x67, 0x72, 0x6f, 0x75, 0x70,
            0x00, 0x00, 0x27, 0x10,  // session timeout ms 10000
            0x00, 0x04, 0x93, 0xe0,  // rebalance timeout ms 300000
            0x29,  // member id length 40 (compact 41)
            0x74, 0x72, 0x69, 0x62, 0x75, 0x74, 0x61, 0x72, 0x79, 0x2d, 0x66, 0x69, 0x78, 0x74, 0x75, 0x72,  // member id "tributary-fixtures-kafka-python-member-1"
            0x65, 0x73, 0x2d, 0x6b, 0x61, 0x66, 0x6b, 0x61, 0x2d, 0x70, 0x79, 0x74, 0x68, 0x6f, 0x6e, 0x2d,
            0x6d, 0x65, 0x6d, 0x62, 0x65, 0x72, 0x2d, 0x31,
            0x00,  // group instance id: null (compact length 0)
            0x09,  // protocol type length 8 (compact 9)
            0x63, 0x6f, 0x6e, 0x73, 0x75, 0x6d, 0x65, 0x72,  // protocol type "consumer"
            0x03,  // protocols: 2 items (compact 3)
            0x06,  // protocol name length 5 (compact 6)
            0x72, 0x61, 0x6e, 0x67, 0x65,  // protocol name "range"
            0x15,  // range metadata length 20 (compact 21)
            0x00, 0x00,  // range: subscription version 0
            0x00, 0x00, 0x00, 0x01,  // range: 1 topic
            0x00, 0x08,  // range: topic length 8
            0x66, 0x69, 0x78, 0x74, 0x75, 0x72, 0x65, 0x73,  // range: topic "fixtures"
            0x00, 0x00, 0x00, 0x00,  // range: user data length 0
            0x00,  // protocol: 0 tagged fields
            0x0b,  // protocol name length 10 (compact 11)
            0x72, 0x6f, 0x75, 0x6e, 0x64, 0x72, 0x6f, 0x62, 0x69, 0x6e,  // protocol name "roundrobin"
            0x15,  // roundrobin metadata length 20 (compact 21)
            0x00, 0x00,  // roundrobin: subscription version 0
            0x00, 0x00, 0x00, 0x01,  // roundrobin: 1 topic
            0x00, 0x08,  // roundrobin: topic length 8
            0x66, 0x69, 0x78, 0x74, 0x75, 0x72, 0x65, 0x73,  // roundrobin: topic "fixtures"
            0x00, 0x00, 0x00, 0x00,  // roundrobin: user data length 0
            0x00,  // protocol: 0 tagged fields
            0x00,  // body: 0 tagged fields
        ]
        let subscription = try consumerSubscriptionV0(topics: ["fixtures"])
        try assertAnnotated(
            frame, transcribes: "request-joingroup-v7-kafka-python",
            header: RequestHeader(requestApiKey: 11, requestApiVersion: 7, correlationId: 4, clientId: kafkaPython),
            body: JoinGroupRequest(
                groupId: group, sessionTimeoutMs: 10000, rebalanceTimeoutMs: 300_000, memberId: member,
                groupInstanceId: nil, protocolType: "consumer",
                protocols: [.init(name: "range", metadata: subscription), .init(name: "roundrobin", metadata: subscription)]
            )
        )
    }

    /// A consumer-protocol subscription as the Java consumer frames it: an int16 version,
    /// then the versioned struct. Encoding it ourselves checks it matches kafka-python's.
    private func consumerSubscriptionV0(topics: [String]) throws -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeInteger(0 as Int16)
        try ConsumerProtocolSubscription(topics: topics, userData: ByteBuffer()).encode(into: &buffer, version: 0)
        return buffer
    }

    // MARK: - OffsetCommit

    func testOffsetCommitV7CommitsAnOffsetWithLeaderEpochAndMetadata() throws {
        let frame: [UInt8] = [
            0x00, 0x08,  // api key 8 (OffsetCommit)
            0x00, 0x07,  // api version 7
            0x00, 0x00, 0x00, 0x07,  // correlation id 7
            0x00, 0x1f,  // client id length 31
            0x74, 0x72, 0x69, 0x62, 0x75, 0x74, 0x61, 0x72, 0x79, 0x2d, 0x66, 0x69, 0x78, 0x74, 0x75, 0x72,  // client id "tributary-fixtures-kafka-python"
            0x65, 0x73, 0x2d, 0x6b, 0x61, 0x66, 0x6b, 0x61, 0x2d, 0x70, 0x79, 0x74, 0x68, 0x6f, 0x6e,
            0x00, 0x18,  // group id length 24
            0x74, 0x72, 0x69, 0x62, 0x75, 0x74, 0x61, 0x72, 0x79, 0x2d, 0x66, 0x69, 0x78, 0x74, 0x75, 0x72,  // group id "tributary-fixtures-group"
            0x65, 0x73, 0x2d, 0x67, 0x72, 0x6f, 0x75, 0x70,
            0x00, 0x00, 0x00, 0x01,  // generation id 1
            0x00, 0x28,  // member id length 40
            0x74, 0x72, 0x69, 0x62, 0x75, 0x74, 0x61, 0x72, 0x79, 0x2d, 0x66, 0x69, 0x78, 0x74, 0x75, 0x72,  // member id "tributary-fixtures-kafka-python-member-1"
            0x65, 0x73, 0x2d, 0x6b, 0x61, 0x66, 0x6b, 0x61, 0x2d, 0x70, 0x79, 0x74, 0x68, 0x6f, 0x6e, 0x2d,
            0x6d, 0x65, 0x6d, 0x62, 0x65, 0x72, 0x2d, 0x31,
            0xff, 0xff,  // group instance id: null (length -1)
            0x00, 0x00, 0x00, 0x01,  // topics: 1 item
            0x00, 0x08,  // topic name length 8
            0x66, 0x69, 0x78, 0x74, 0x75, 0x72, 0x65, 0x73,  // topic name "fixtures"
            0x00, 0x00, 0x00, 0x01,  // partitions: 1 item
            0x00, 0x00, 0x00, 0x00,  // partition index 0
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03,  // committed offset 3
            0x00, 0x00, 0x00, 0x00,  // committed leader epoch 0
            0x00, 0x00,  // committed metadata length 0
        ]
        try assertAnnotated(
            frame, transcribes: "request-offsetcommit-v7-kafka-python",
            header: RequestHeader(requestApiKey: 8, requestApiVersion: 7, correlationId: 7, clientId: kafkaPython),
            body: OffsetCommitRequest(
                groupId: group, generationIdOrMemberEpoch: 1, memberId: member, groupInstanceId: nil,
                topics: [.init(name: "fixtures", partitions: [
                    .init(partitionIndex: 0, committedOffset: 3, committedLeaderEpoch: 0, committedMetadata: ""),
                ])]
            )
        )
    }

    func testOffsetCommitV8IsTheFlexibleFormOfV7() throws {
        let frame: [UInt8] = [
            0x00, 0x08,  // api key 8 (OffsetCommit)
            0x00, 0x08,  // api version 8
            0x00, 0x00, 0x00, 0x07,  // correlation id 7
            0x00, 0x1f,  // client id length 31
            0x74, 0x72, 0x69, 0x62, 0x75, 0x74, 0x61, 0x72, 0x79, 0x2d, 0x66, 0x69, 0x78, 0x74, 0x75, 0x72,  // client id "tributary-fixtures-kafka-python"
            0x65, 0x73, 0x2d, 0x6b, 0x61, 0x66, 0x6b, 0x61, 0x2d, 0x70, 0x79, 0x74, 0x68, 0x6f, 0x6e,
            0x00,  // header: 0 tagged fields
            0x19,  // group id length 24 (compact 25)
            0x74, 0x72, 0x69, 0x62, 0x75, 0x74, 0x61, 0x72, 0x79, 0x2d, 0x66, 0x69, 0x78, 0x74, 0x75, 0x72,  // group id "tributary-fixtures-group"
            0x65, 0x73, 0x2d, 0x67, 0x72, 0x6f, 0x75, 0x70,
            0x00, 0x00, 0x00, 0x01,  // generation id 1
            0x29,  // member id length 40 (compact 41)
            0x74, 0x72, 0x69, 0x62, 0x75, 0x74, 0x61, 0x72, 0x79, 0x2d, 0x66, 0x69, 0x78, 0x74, 0x75, 0x72,  // member id "tributary-fixtures-kafka-python-member-1"
            0x65, 0x73, 0x2d, 0x6b, 0x61, 0x66, 0x6b, 0x61, 0x2d, 0x70, 0x79, 0x74, 0x68, 0x6f, 0x6e, 0x2d,
            0x6d, 0x65, 0x6d, 0x62, 0x65, 0x72, 0x2d, 0x31,
            0x00,  // group instance id: null (compact length 0)
            0x02,  // topics: 1 item (compact 2)
            0x09,  // topic name length 8 (compact 9)
            0x66, 0x69, 0x78, 0x74, 0x75, 0x72, 0x65, 0x73,  // topic name "fixtures"
            0x02,  // partitions: 1 item (compact 2)
            0x00, 0x00, 0x00, 0x00,  // partition index 0
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03,  // committed offset 3
            0x00, 0x00, 0x00, 0x00,  // committed leader epoch 0
            0x01,  // committed metadata length 0 (compact 1)
            0x00,  // partition: 0 tagged fields
            0x00,  // topic: 0 tagged fields
            0x00,  // body: 0 tagged fields
        ]
        try assertAnnotated(
            frame, transcribes: "request-offsetcommit-v8-kafka-python",
            header: RequestHeader(requestApiKey: 8, requestApiVersion: 8, correlationId: 7, clientId: kafkaPython),
            body: OffsetCommitRequest(
                groupId: group, generationIdOrMemberEpoch: 1, memberId: member, groupInstanceId: nil,
                topics: [.init(name: "fixtures", partitions: [
                    .init(partitionIndex: 0, committedOffset: 3, committedLeaderEpoch: 0, committedMetadata: ""),
                ])]
            )
        )
    }

    // MARK: - Helpers

    /// Checks `frame` is the fixture's bytes, decodes to `header` and `body`, and that encoding
    /// `header` and `body` gives `frame` back. `bodyVersion` overrides the header's API version
    /// for the body, for a version whose request layout equals an older one.
    private func assertAnnotated<R: KafkaRequest>(
        _ frame: [UInt8], transcribes fixture: String,
        header: RequestHeader, body expected: R, bodyVersion: Int16? = nil,
        file: StaticString = #filePath, line: UInt = #line
    ) throws {
        assertBytesEqual(frame, try Fixture.bytes(fixture), "annotated literal vs \(fixture).bin", file: file, line: line)

        let parsed = try KafkaRequestFrame(frame: ByteBuffer(bytes: frame))
        XCTAssertEqual(parsed.header, header, "header", file: file, line: line)
        XCTAssertEqual(parsed.header.apiKey, R.apiKey, file: file, line: line)
        let version = bodyVersion ?? header.requestApiVersion
        var body = parsed.body
        XCTAssertEqual(try R(from: &body, version: version), expected, "decoded body", file: file, line: line)
        XCTAssertEqual(body.readableBytes, 0, "bytes left after the body", file: file, line: line)
        if bodyVersion == nil {
            var again = parsed.body
            let any = try AnyKafkaRequest(apiKey: R.apiKey, version: version, from: &again)
            XCTAssertEqual(any.message as? R, expected, "AnyKafkaRequest", file: file, line: line)
        }

        var out = ByteBuffer()
        try header.encode(into: &out, version: R.apiKey.requestHeaderVersion(apiVersion: header.requestApiVersion))
        try expected.encode(into: &out, version: version)
        assertBytesEqual(Array(out.readableBytesView), frame, "encoding the expected request", file: file, line: line)
    }
}
