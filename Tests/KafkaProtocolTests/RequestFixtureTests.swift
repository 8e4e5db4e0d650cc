import Foundation
import KafkaProtocol
import NIOCore
import XCTest

/// Every request frame captured from kafka-python, confluent-kafka (librdkafka), aiokafka and
/// kcat: its header and body decode, agree with the sidecar written by an independent
/// decoder (kafka-python's schemas), and encode back to the very bytes the client sent.
final class RequestFixtureTests: XCTestCase {
    /// One captured request: the frame as sent (no size prefix), its sidecar, and what we make of it.
    struct Captured {
        var name: String
        var bytes: [UInt8]
        var sidecar: JSON
        var frame: KafkaRequestFrame
        var apiKey: APIKey
        var version: Int16 { frame.header.requestApiVersion }
        /// False for a version newer than the definitions (Kafka 3.9) describe.
        var isSupported: Bool { apiKey.validVersions.contains(version) }
    }

    private static func loadAll() throws -> [Captured] {
        try Fixture.names(kind: "request").map { name in
            let bytes = try Fixture.bytes(name)
            let frame = try KafkaRequestFrame(frame: ByteBuffer(bytes: bytes))
            guard let apiKey = frame.header.apiKey else {
                throw KafkaProtocolError(.unknownAPIKey, "\(name): api key \(frame.header.requestApiKey)")
            }
            return Captured(name: name, bytes: bytes, sidecar: try Fixture.sidecar(name), frame: frame, apiKey: apiKey)
        }
    }

    private static func decodeBody(_ c: Captured) throws -> (request: AnyKafkaRequest, bytesLeft: Int) {
        var body = c.frame.body
        let request = try AnyKafkaRequest(apiKey: c.apiKey, version: c.version, from: &body)
        return (request, body.readableBytes)
    }

    /// The supported captures of one API, decoded; fails when there are none, so a renamed
    /// fixture cannot make an API's checks pass vacuously.
    private func decoded(_ api: APIKey, file: StaticString = #filePath, line: UInt = #line) throws -> [(Captured, AnyKafkaRequest)] {
        let all = try Self.loadAll().filter { $0.apiKey == api && $0.isSupported }
        XCTAssertFalse(all.isEmpty, "no \(api.name) fixture at a supported version", file: file, line: line)
        return try all.map { ($0, try Self.decodeBody($0).request) }
    }

    // MARK: - Every fixture

    func testManifestListsEveryRequestFixtureWithItsSize() throws {
        let files = try Fixture.manifest()["files"].arrayValue.filter { $0["kind"].string == "request" }
        XCTAssertGreaterThanOrEqual(files.count, 80)
        for entry in files {
            let name = String(entry["file"].string!.dropLast(4))
            let bytes = try Fixture.bytes(name)
            XCTAssertEqual(Int64(bytes.count), entry["size"].int, name)
            XCTAssertEqual(Int64(bytes.count), try Fixture.sidecar(name)["size"].int, name)
        }
    }

    func testHeaderOfEveryRequestMatchesItsSidecar() throws {
        for c in try Self.loadAll() {
            let header = c.frame.header
            let sidecar = c.sidecar
            XCTAssertEqual(Int64(header.requestApiKey), sidecar["api_key"].int, c.name)
            XCTAssertEqual(c.apiKey.name, sidecar["api_name"].string, c.name)
            XCTAssertEqual(Int64(header.requestApiVersion), sidecar["api_version"].int, c.name)
            XCTAssertEqual(Int64(header.correlationId), sidecar["correlation_id"].int, c.name)
            XCTAssertEqual(header.clientId, sidecar["client_id"].string, c.name)
            XCTAssertEqual(Int64(c.bytes.count - c.frame.body.readableBytes), sidecar["header_length"].int, "\(c.name): header length")
            XCTAssertEqual(Int64(c.apiKey.requestHeaderVersion(apiVersion: c.version)), sidecar["request_header_version"].int, c.name)
            XCTAssertEqual(header.unknownTaggedFields, [], c.name)
        }
    }

    func testEveryRequestBodyDecodesToTheLastByte() throws {
        var decodedCount = 0
        for c in try Self.loadAll() where c.isSupported {
            XCTAssertEqual(c.sidecar["schema_roundtrip_ok"].bool, true, "\(c.name): the capture tool could not re-encode it")
            do {
                let (_, left) = try Self.decodeBody(c)
                XCTAssertEqual(left, 0, "\(c.name): \(left) bytes left after the body")
                decodedCount += 1
            } catch {
                XCTFail("\(c.name): \(error)")
            }
        }
        XCTAssertGreaterThanOrEqual(decodedCount, 80)
    }

    func testEveryRequestReencodesToTheCapturedBytes() throws {
        for c in try Self.loadAll() where c.isSupported {
            let request = try Self.decodeBody(c).request.message
            var out = ByteBuffer()
            try encodeRequestFrame(request, version: c.version, correlationId: c.frame.header.correlationId,
                                   clientId: c.frame.header.clientId, into: &out)
            XCTAssertEqual(out.readInteger(as: Int32.self), Int32(c.bytes.count), "\(c.name): size prefix")
            assertBytesEqual(Array(out.readableBytesView), c.bytes, c.name)
        }
    }

    /// The sidecar's `body` is the whole request as kafka-python decoded it; every field it
    /// names must be the field we decoded, compared structurally by name.
    func testEveryDecodedFieldMatchesTheIndependentDecoder() throws {
        var fieldsCompared = 0
        for c in try Self.loadAll() where c.isSupported {
            let message = try Self.decodeBody(c).request.message
            XCTAssertTrue(c.sidecar.has("body"), c.name)
            fieldsCompared += compare(message, with: c.sidecar["body"], path: c.name)
        }
        XCTAssertGreaterThanOrEqual(fieldsCompared, 400)
    }

    /// Kafka 4 clients send Metadata v13 and ListOffsets v11, newer than our definitions. The
    /// header must still parse (to answer UNSUPPORTED_VERSION with the right correlation id),
    /// and the body must be refused rather than read with the wrong layout.
    func testRequestsNewerThanTheDefinitionsAreRefusedNotMisread() throws {
        let newer = try Self.loadAll().filter { !$0.isSupported }
        XCTAssertEqual(Set(newer.map(\.name)), [
            "request-metadata-v13-confluent-kafka", "request-metadata-v13-kafka-python", "request-listoffsets-v11-kafka-python",
        ])
        for c in newer {
            XCTAssertGreaterThan(c.version, c.apiKey.validVersions.upperBound, c.name)
            XCTAssertEqual(c.apiKey.requestHeaderVersion(apiVersion: c.version), 2, "\(c.name): read as flexible")
            XCTAssertThrowsError(try Self.decodeBody(c), c.name) { error in
                XCTAssertEqual((error as? KafkaProtocolError)?.code, .unsupportedVersion, c.name)
            }
        }
    }

    // MARK: - Key fields per API

    func testProduceRequestsCarryAcksTimeoutAndTheCapturedRecordBatches() throws {
        for (c, request) in try decoded(.produce) {
            guard case .produce(let r) = request else { return XCTFail(c.name) }
            let expected = c.sidecar["key_fields"]
            XCTAssertEqual(r.transactionalId, expected["transactional_id"].string, c.name)
            XCTAssertEqual(Int64(r.acks), expected["acks"].int, c.name)
            XCTAssertEqual(Int64(r.timeoutMs), expected["timeout_ms"].int, c.name)
            XCTAssertEqual(r.topicData.map { Optional($0.name) }, expected["topics"].arrayValue.map { $0["name"].string }, c.name)
            for (topic, expectedTopic) in zip(r.topicData, expected["topics"].arrayValue) {
                XCTAssertEqual(topic.partitionData.count, expectedTopic["partitions"].arrayValue.count, c.name)
                for (partition, e) in zip(topic.partitionData, expectedTopic["partitions"].arrayValue) {
                    XCTAssertEqual(Int64(partition.index), e["index"].int, c.name)
                    guard let records = partition.records, let offset = e["records_offset"].int, let length = e["records_length"].int else {
                        XCTFail("\(c.name): records missing"); continue
                    }
                    XCTAssertEqual(Int64(records.readableBytes), length, c.name)
                    // The records field is the client's bytes, untouched.
                    XCTAssertEqual(Array(records.readableBytesView), Array(c.bytes[Int(offset)..<Int(offset + length)]), c.name)
                    var reader = RecordBatchReader(records)
                    var batches = 0
                    var recordCount: Int64 = 0
                    while let batch = try reader.next() {
                        batches += 1
                        recordCount += Int64(batch.recordCount)
                    }
                    XCTAssertEqual(reader.remainingBytes, 0, c.name)
                    XCTAssertEqual(Int64(batches), e["batch_count"].int, c.name)
                    XCTAssertEqual(recordCount, e["record_count"].int, c.name)
                }
            }
        }
    }

    func testMetadataRequestsAskForTheFixturesTopicAndAllowAutoCreation() throws {
        for (c, request) in try decoded(.metadata) {
            guard case .metadata(let r) = request else { return XCTFail(c.name) }
            let expected = c.sidecar["key_fields"]
            XCTAssertEqual(r.topics?.map(\.name), expected["topics"].arrayValue.map(\.string), c.name)
            XCTAssertEqual(r.allowAutoTopicCreation, expected["allow_auto_topic_creation"].bool, c.name)
            if expected.has("include_cluster_authorized_operations") {
                XCTAssertEqual(r.includeClusterAuthorizedOperations, expected["include_cluster_authorized_operations"].bool, c.name)
            }
            if expected.has("include_topic_authorized_operations") {
                XCTAssertEqual(r.includeTopicAuthorizedOperations, expected["include_topic_authorized_operations"].bool, c.name)
            }
        }
    }

    func testFetchRequestsCarryWaitTimeSizesAndPartitionOffsets() throws {
        for (c, request) in try decoded(.fetch) {
            guard case .fetch(let r) = request else { return XCTFail(c.name) }
            let expected = c.sidecar["key_fields"]
            if expected.has("replica_id") { XCTAssertEqual(Int64(r.replicaId), expected["replica_id"].int, c.name) }
            XCTAssertEqual(Int64(r.maxWaitMs), expected["max_wait_ms"].int, c.name)
            XCTAssertEqual(Int64(r.minBytes), expected["min_bytes"].int, c.name)
            XCTAssertEqual(Int64(r.maxBytes), expected["max_bytes"].int, c.name)
            XCTAssertEqual(Int64(r.isolationLevel), expected["isolation_level"].int, c.name)
            if expected.has("session_id") {
                XCTAssertEqual(Int64(r.sessionId), expected["session_id"].int, c.name)
                XCTAssertEqual(Int64(r.sessionEpoch), expected["session_epoch"].int, c.name)
            }
            if expected.has("rack_id") { XCTAssertEqual(r.rackId, expected["rack_id"].string, c.name) }
            XCTAssertEqual(Int64(r.forgottenTopicsData.count), expected["forgotten_topics_count"].int, c.name)
            XCTAssertEqual(r.topics.count, expected["topics"].arrayValue.count, c.name)
            for (topic, e) in zip(r.topics, expected["topics"].arrayValue) {
                if let name = e["topic"].string { XCTAssertEqual(topic.topic, name, c.name) }
                if let id = e["topic_id"].string { XCTAssertEqual(topic.topicId, KafkaUUID(canonical: id), c.name) }
                XCTAssertEqual(topic.partitions.count, e["partitions"].arrayValue.count, c.name)
                for (p, ep) in zip(topic.partitions, e["partitions"].arrayValue) {
                    XCTAssertEqual(Int64(p.partition), ep["partition"].int, c.name)
                    XCTAssertEqual(p.fetchOffset, ep["fetch_offset"].int, c.name)
                    XCTAssertEqual(p.logStartOffset, ep["log_start_offset"].int, c.name)
                    XCTAssertEqual(Int64(p.partitionMaxBytes), ep["partition_max_bytes"].int, c.name)
                    if ep.has("current_leader_epoch") { XCTAssertEqual(Int64(p.currentLeaderEpoch), ep["current_leader_epoch"].int, c.name) }
                    if ep.has("last_fetched_epoch") { XCTAssertEqual(Int64(p.lastFetchedEpoch), ep["last_fetched_epoch"].int, c.name) }
                }
            }
        }
    }

    func testJoinGroupRequestsCarryGroupTimeoutsAndConsumerProtocols() throws {
        for (c, request) in try decoded(.joinGroup) {
            guard case .joinGroup(let r) = request else { return XCTFail(c.name) }
            let expected = c.sidecar["key_fields"]
            XCTAssertEqual(r.groupId, expected["group_id"].string, c.name)
            XCTAssertEqual(Int64(r.sessionTimeoutMs), expected["session_timeout_ms"].int, c.name)
            XCTAssertEqual(Int64(r.rebalanceTimeoutMs), expected["rebalance_timeout_ms"].int, c.name)
            XCTAssertEqual(r.memberId, expected["member_id"].string, c.name)
            if expected.has("group_instance_id") { XCTAssertEqual(r.groupInstanceId, expected["group_instance_id"].string, c.name) }
            XCTAssertEqual(r.protocolType, expected["protocol_type"].string, c.name)
            XCTAssertEqual(r.protocols.map { Optional($0.name) }, expected["protocol_names"].arrayValue.map(\.string), c.name)
            XCTAssertEqual(r.protocols.map { Optional(Int64($0.metadata.readableBytes)) }, expected["protocol_metadata_lengths"].arrayValue.map(\.int), c.name)
            // Each protocol's metadata is a consumer subscription naming the one topic.
            for p in r.protocols {
                var metadata = p.metadata
                // The version prefix sits outside the versioned struct, as in Kafka's ConsumerProtocol.
                let version = try XCTUnwrap(metadata.readInteger(as: Int16.self))
                let subscription = try ConsumerProtocolSubscription(from: &metadata, version: version)
                XCTAssertEqual(subscription.topics, ["fixtures"], "\(c.name) \(p.name)")
                XCTAssertEqual(metadata.readableBytes, 0, "\(c.name) \(p.name)")
            }
        }
    }

    func testOffsetCommitRequestsCommitOffsetThreeForTheGroupMember() throws {
        for (c, request) in try decoded(.offsetCommit) {
            guard case .offsetCommit(let r) = request else { return XCTFail(c.name) }
            let expected = c.sidecar["key_fields"]
            XCTAssertEqual(r.groupId, expected["group_id"].string, c.name)
            XCTAssertEqual(Int64(r.generationIdOrMemberEpoch), expected["generation_id"].int, c.name)
            XCTAssertEqual(r.memberId, expected["member_id"].string, c.name)
            if expected.has("retention_time_ms") { XCTAssertEqual(r.retentionTimeMs, expected["retention_time_ms"].int, c.name) }
            if expected.has("group_instance_id") { XCTAssertEqual(r.groupInstanceId, expected["group_instance_id"].string, c.name) }
            XCTAssertEqual(r.topics.map { Optional($0.name) }, expected["topics"].arrayValue.map { $0["name"].string }, c.name)
            for (topic, e) in zip(r.topics, expected["topics"].arrayValue) {
                XCTAssertEqual(topic.partitions.count, e["partitions"].arrayValue.count, c.name)
                for (p, ep) in zip(topic.partitions, e["partitions"].arrayValue) {
                    XCTAssertEqual(Int64(p.partitionIndex), ep["partition_index"].int, c.name)
                    XCTAssertEqual(p.committedOffset, ep["committed_offset"].int, c.name)
                    XCTAssertEqual(p.committedOffset, 3, c.name)
                    XCTAssertEqual(p.committedMetadata, ep["committed_metadata"].string, c.name)
                    if ep.has("committed_leader_epoch") { XCTAssertEqual(Int64(p.committedLeaderEpoch), ep["committed_leader_epoch"].int, c.name) }
                }
            }
        }
    }

    func testApiVersionsRequestsNameTheClientSoftwareFromV3() throws {
        for (c, request) in try decoded(.apiVersions) {
            guard case .apiVersions(let r) = request else { return XCTFail(c.name) }
            let expected = c.sidecar["key_fields"]
            if c.version >= 3 {
                XCTAssertEqual(r.clientSoftwareName, expected["client_software_name"].string, c.name)
                XCTAssertEqual(r.clientSoftwareVersion, expected["client_software_version"].string, c.name)
            } else {
                XCTAssertEqual(c.frame.body.readableBytes, 0, "\(c.name): ApiVersions v0-2 has an empty body")
            }
        }
    }

    func testGroupMembershipRequestsNameGroupGenerationAndMember() throws {
        var checked = 0
        for api in [APIKey.heartbeat, .syncGroup, .leaveGroup] {
            for (c, request) in try decoded(api) {
                let expected = c.sidecar["key_fields"]
                let body = c.sidecar["body"]
                switch request {
                case .heartbeat(let r):
                    XCTAssertEqual(r.groupId, expected["group_id"].string, c.name)
                    XCTAssertEqual(Int64(r.generationId), expected["generation_id"].int, c.name)
                    XCTAssertEqual(r.memberId, expected["member_id"].string, c.name)
                    XCTAssertEqual(r.groupInstanceId, nil, c.name)
                case .syncGroup(let r):
                    XCTAssertEqual(r.groupId, expected["group_id"].string, c.name)
                    XCTAssertEqual(Int64(r.generationId), expected["generation_id"].int, c.name)
                    XCTAssertEqual(r.memberId, expected["member_id"].string, c.name)
                    if expected.has("protocol_type") {
                        XCTAssertEqual(r.protocolType, expected["protocol_type"].string, c.name)
                        XCTAssertEqual(r.protocolName, expected["protocol_name"].string, c.name)
                    }
                    // The leader sends its own assignment, as the consumer protocol bytes.
                    XCTAssertEqual(r.assignments.map(\.memberId), body["assignments"].arrayValue.map { $0["member_id"].string! }, c.name)
                    XCTAssertEqual(r.assignments.map { Array($0.assignment.readableBytesView) },
                                   body["assignments"].arrayValue.map { $0["assignment"].hexBytes! }, c.name)
                case .leaveGroup(let r):
                    XCTAssertEqual(r.groupId, expected["group_id"].string, c.name)
                    if c.version < 3 {
                        XCTAssertEqual(r.memberId, expected["member_id"].string, c.name)
                    } else {
                        XCTAssertEqual(r.members.map(\.memberId), body["members"].arrayValue.map { $0["member_id"].string! }, c.name)
                    }
                default:
                    XCTFail("\(c.name): decoded as \(request)")
                }
                checked += 1
            }
        }
        XCTAssertGreaterThanOrEqual(checked, 15)
    }

    func testFindCoordinatorRequestsAskForTheGroupsCoordinator() throws {
        for (c, request) in try decoded(.findCoordinator) {
            guard case .findCoordinator(let r) = request else { return XCTFail(c.name) }
            let expected = c.sidecar["key_fields"]
            XCTAssertEqual(Int64(r.keyType), expected["key_type"].int, c.name)
            if c.version < 4 {
                XCTAssertEqual(r.key, expected["key"].string, c.name)
            } else {
                // v4+ batches the keys.
                XCTAssertEqual(r.coordinatorKeys, c.sidecar["body"]["coordinator_keys"].arrayValue.map { $0.string! }, c.name)
                XCTAssertEqual(r.coordinatorKeys, ["tributary-fixtures-group"], c.name)
            }
        }
    }

    func testListOffsetsAndOffsetFetchRequestsNameReplicaIsolationAndGroup() throws {
        for (c, request) in try decoded(.listOffsets) {
            guard case .listOffsets(let r) = request else { return XCTFail(c.name) }
            let expected = c.sidecar["key_fields"]
            XCTAssertEqual(Int64(r.replicaId), expected["replica_id"].int, c.name)
            XCTAssertEqual(Int64(r.isolationLevel), expected["isolation_level"].int, c.name)
            XCTAssertEqual(r.topics.map(\.name), ["fixtures"], c.name)
        }
        for (c, request) in try decoded(.offsetFetch) {
            guard case .offsetFetch(let r) = request else { return XCTFail(c.name) }
            let expected = c.sidecar["key_fields"]
            if c.version < 8 {
                XCTAssertEqual(r.groupId, expected["group_id"].string, c.name)
                XCTAssertEqual(r.topics?.map(\.name), ["fixtures"], c.name)
            } else {
                XCTAssertEqual(r.groups.map(\.groupId), expected["groups"].arrayValue.map { $0["group_id"].string! }, c.name)
                XCTAssertEqual(r.groups.first?.topics?.first?.partitionIndexes, [0], c.name)
                XCTAssertEqual(r.requireStable, expected["require_stable"].bool, c.name)
            }
        }
    }

    func testTransactionRequestsCarryTransactionalIdAndProducerIdentity() throws {
        for (c, request) in try decoded(.initProducerId) {
            guard case .initProducerId(let r) = request else { return XCTFail(c.name) }
            let expected = c.sidecar["key_fields"]
            XCTAssertEqual(r.transactionalId, expected["transactional_id"].string, c.name)
            XCTAssertEqual(Int64(r.transactionTimeoutMs), expected["transaction_timeout_ms"].int, c.name)
            XCTAssertEqual(r.producerId, expected["producer_id"].int, c.name)
            XCTAssertEqual(Int64(r.producerEpoch), expected["producer_epoch"].int, c.name)
        }
        for (c, request) in try decoded(.addPartitionsToTxn) {
            guard case .addPartitionsToTxn(let r) = request else { return XCTFail(c.name) }
            let expected = c.sidecar["key_fields"]
            XCTAssertEqual(r.v3AndBelowTransactionalId, expected["v3_and_below_transactional_id"].string, c.name)
            XCTAssertEqual(r.v3AndBelowProducerId, expected["v3_and_below_producer_id"].int, c.name)
            XCTAssertEqual(Int64(r.v3AndBelowProducerEpoch), expected["v3_and_below_producer_epoch"].int, c.name)
            XCTAssertEqual(r.v3AndBelowTopics.map(\.name), ["fixtures"], c.name)
            XCTAssertEqual(r.v3AndBelowTopics.first?.partitions, [0], c.name)
        }
        for (c, request) in try decoded(.endTxn) {
            guard case .endTxn(let r) = request else { return XCTFail(c.name) }
            let expected = c.sidecar["key_fields"]
            XCTAssertEqual(r.transactionalId, expected["transactional_id"].string, c.name)
            XCTAssertEqual(r.producerId, expected["producer_id"].int, c.name)
            XCTAssertEqual(Int64(r.producerEpoch), expected["producer_epoch"].int, c.name)
            XCTAssertEqual(r.committed, expected["committed"].bool, c.name)
        }
    }

    // MARK: - Structural comparison with the sidecar body

    /// Compares `value` with the sidecar's JSON for it, field by field, and returns how many
    /// leaf fields it compared. Struct properties are found by the camel-cased JSON name.
    private func compare(_ value: Any, with json: JSON, path: String, file: StaticString = #filePath, line: UInt = #line) -> Int {
        // Unwrap optionals; a nil must be a JSON null.
        let mirror = Mirror(reflecting: value)
        if mirror.displayStyle == .optional {
            guard let wrapped = mirror.children.first?.value else {
                XCTAssertTrue(json.isNull, "\(path): nil, sidecar has \(json)", file: file, line: line)
                return 1
            }
            return compare(wrapped, with: json, path: path, file: file, line: line)
        }
        switch value {
        case let bytes as ByteBuffer:
            XCTAssertEqual(Array(bytes.readableBytesView), json.hexBytes, path, file: file, line: line)
            XCTAssertEqual(Int64(bytes.readableBytes), json["length"].int, path, file: file, line: line)
            return 1
        case let uuid as KafkaUUID:
            // kafka-python shows the all-zero "no topic id" UUID as null.
            let expected = json.string.flatMap(KafkaUUID.init(canonical:)) ?? (json.isNull ? KafkaUUID.zero : nil)
            XCTAssertEqual(uuid, expected, path, file: file, line: line)
            return 1
        case let string as String:
            XCTAssertEqual(string, json.string, path, file: file, line: line)
            return 1
        case let bool as Bool:
            XCTAssertEqual(bool, json.bool, path, file: file, line: line)
            return 1
        case let integer as any BinaryInteger:
            XCTAssertEqual(Int64(integer), json.int, path, file: file, line: line)
            return 1
        default:
            break
        }
        switch mirror.displayStyle {
        case .collection:
            let elements = Array(mirror.children)
            guard case .array(let items) = json, items.count == elements.count else {
                XCTFail("\(path): \(elements.count) elements, sidecar has \(json)", file: file, line: line)
                return 0
            }
            return zip(elements, items).enumerated().reduce(0) { total, pair in
                total + compare(pair.element.0.value, with: pair.element.1, path: "\(path)[\(pair.offset)]", file: file, line: line)
            }
        case .struct:
            if json.isNull {
                // An absent tagged struct (Fetch's ReplicaState) keeps its defaults.
                XCTAssertTrue(path.hasSuffix(".replica_state"), "\(path): sidecar has null for a struct", file: file, line: line)
                return 1
            }
            let fields = Dictionary(mirror.children.compactMap { child in child.label.map { ($0, child.value) } }, uniquingKeysWith: { a, _ in a })
            var total = 0
            for (key, item) in json.objectValue {
                guard let field = fields[Self.camelCase(key)] else {
                    XCTFail("\(path): no field for sidecar key \(key)", file: file, line: line)
                    continue
                }
                total += compare(field, with: item, path: "\(path).\(key)", file: file, line: line)
            }
            return total
        default:
            XCTFail("\(path): cannot compare \(type(of: value)) with \(json)", file: file, line: line)
            return 0
        }
    }

    private static func camelCase(_ snake: String) -> String {
        let parts = snake.split(separator: "_")
        guard let first = parts.first else { return snake }
        return String(first) + parts.dropFirst().map { $0.prefix(1).uppercased() + $0.dropFirst() }.joined()
    }
}
