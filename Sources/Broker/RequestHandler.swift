import KafkaProtocol
import Logging
import LogStore
import NIOCore
import NIOPosix

/// Turns one request frame into its response frame. One instance serves every
/// connection; per-connection ordering is the caller's (requests of a connection are
/// handled one after another, as Kafka does).
public final class RequestHandler: Sendable {
    let configuration: BrokerConfiguration
    let topics: TopicManager
    let notifier: AppendNotifier
    let producerIds: ProducerIdManager
    let groups: GroupCoordinator
    let tiering: TieringService?
    let threadPool: NIOThreadPool
    let logger: Logger
    /// The port clients should be told about (the real one when bound to port 0).
    let advertisedPort: Int

    /// The versions we implement and advertise in ApiVersions. Produce below 3 and Fetch
    /// below 4 carry the legacy message formats (magic 0/1), which Tributary does not
    /// store or convert.
    static let supportedVersions: [APIKey: ClosedRange<Int16>] = [
        .produce: 3...11,
        .fetch: 4...17,
        .listOffsets: 1...9,
        .metadata: 0...12,
        .apiVersions: 0...4,
        .createTopics: 0...7,
        .deleteTopics: 0...6,
        .initProducerId: 0...5,
        .createPartitions: 0...3,
        .describeConfigs: 0...4,
        .alterConfigs: 0...2,
        .incrementalAlterConfigs: 0...1,
        .deleteRecords: 0...2,
        .describeCluster: 0...1,
        .describeLogDirs: 0...4,
        .findCoordinator: 0...6,
        .joinGroup: 0...9,
        .syncGroup: 0...5,
        .heartbeat: 0...4,
        .leaveGroup: 0...5,
        .offsetCommit: 0...9,
        .offsetFetch: 0...9,
        .listGroups: 0...5,
        .describeGroups: 0...5,
        .deleteGroups: 0...2,
        .offsetDelete: 0...0,
    ]

    init(configuration: BrokerConfiguration, topics: TopicManager, notifier: AppendNotifier,
         producerIds: ProducerIdManager, groups: GroupCoordinator, tiering: TieringService?, threadPool: NIOThreadPool,
         advertisedPort: Int, logger: Logger) {
        self.tiering = tiering
        self.configuration = configuration
        self.topics = topics
        self.notifier = notifier
        self.producerIds = producerIds
        self.groups = groups
        self.threadPool = threadPool
        self.advertisedPort = advertisedPort
        self.logger = logger
    }

    var advertisedHost: String { configuration.effectiveAdvertisedHost }

    /// Handles one frame (without its size prefix). What must happen in request order
    /// (decoding, appending) happens before this returns; what may wait (fsync for
    /// acks=all, a long-polling fetch) is left in the returned `PendingResponse`, so the
    /// connection can read and append the next pipelined request meanwhile. Throws for a
    /// request the connection cannot survive (undecodable, unknown API).
    public func handle(frame: ByteBuffer, clientHost: String = "") async throws -> PendingResponse {
        let request = try KafkaRequestFrame(frame: frame)
        let header = request.header
        guard let apiKey = header.apiKey else {
            throw RequestError("unknown API key \(header.requestApiKey)")
        }
        let version = header.requestApiVersion
        guard let supported = Self.supportedVersions[apiKey] else {
            throw RequestError("API \(apiKey.name) is not supported")
        }
        guard supported.contains(version) else {
            if apiKey == .apiVersions {
                // KIP-511: answer an unknown ApiVersions version with a v0 response that
                // carries our ranges, so the client can retry with one we know.
                return .ready(ResponseFrame(try encode(apiVersionsResponse(error: .unsupportedVersion), version: 0, header: header)))
            }
            throw RequestError("\(apiKey.name) v\(version) is not supported (supported: \(supported.lowerBound)-\(supported.upperBound))")
        }
        logger.trace("request", metadata: ["kafka.api": "\(apiKey.name)", "kafka.api.version": "\(version)",
                                           "kafka.correlation.id": "\(header.correlationId)"])
        var body = request.body
        if logger.logLevel <= .trace {
            var copy = body
            if let decoded = try? AnyKafkaRequest(apiKey: apiKey, version: version, from: &copy) {
                logger.trace("request body", metadata: ["kafka.request": "\(decoded)"])
            }
        }
        if apiKey == .produce {
            let produce = try ProduceRequest(from: &body, version: version)
            let (response, pending) = self.produce(produce, version: version)
            if produce.acks == 0 { return .ready(nil) }
            if pending.isEmpty { return .ready(ResponseFrame(try encode(response, version: version, header: header))) }
            return .deferred {
                ResponseFrame(try self.encode(await self.makeDurable(response, pending), version: version, header: header))
            }
        }
        if apiKey == .fetch {
            let fetch = try FetchRequest(from: &body, version: version)
            return .deferred {
                let (response, slices) = try await self.fetch(fetch, version: version)
                return try ResponseFrame.encode(response, version: version, correlationId: header.correlationId, slices: slices) { r, records in
                    var i = 0
                    for t in r.responses.indices {
                        for p in r.responses[t].partitions.indices {
                            // nil: no file slice; the records already set (from tiered storage) stay.
                            if let marker = records[i] { r.responses[t].partitions[p].records = marker }
                            i += 1
                        }
                    }
                }
            }
        }
        // Group requests that wait on other members or on an fsync answer later.
        switch apiKey {
        case .joinGroup:
            let request = try JoinGroupRequest(from: &body, version: version)
            return deferred(header) { await self.groups.joinGroup(request, version: version, clientId: header.clientId ?? "", clientHost: clientHost) }
        case .syncGroup:
            let request = try SyncGroupRequest(from: &body, version: version)
            return deferred(header) { await self.groups.syncGroup(request, version: version) }
        case .offsetCommit:
            let request = try OffsetCommitRequest(from: &body, version: version)
            return deferred(header) { await self.groups.offsetCommit(request, version: version) }
        case .deleteGroups:
            let request = try DeleteGroupsRequest(from: &body, version: version)
            return deferred(header) { await self.groups.deleteGroups(request, version: version) }
        case .offsetDelete:
            let request = try OffsetDeleteRequest(from: &body, version: version)
            return deferred(header) { await self.groups.offsetDelete(request, version: version) }
        default:
            return .ready(ResponseFrame(try await respond(apiKey, version: version, header: header, body: &body)))
        }
    }

    private func deferred<R: KafkaResponse>(_ header: RequestHeader, _ body: @escaping @Sendable () async throws -> R) -> PendingResponse {
        .deferred {
            ResponseFrame(try self.encode(try await body(), version: header.requestApiVersion, header: header))
        }
    }

    private func respond(_ apiKey: APIKey, version: Int16, header: RequestHeader, body: inout ByteBuffer) async throws -> ByteBuffer {
        switch apiKey {
        case .apiVersions:
            _ = try ApiVersionsRequest(from: &body, version: version)
            return try encode(apiVersionsResponse(error: .none), version: version, header: header)
        case .metadata:
            return try encode(metadata(try MetadataRequest(from: &body, version: version), version: version), version: version, header: header)
        case .listOffsets:
            return try encode(await listOffsets(try ListOffsetsRequest(from: &body, version: version), version: version), version: version, header: header)
        case .createTopics:
            return try encode(createTopics(try CreateTopicsRequest(from: &body, version: version), version: version), version: version, header: header)
        case .deleteTopics:
            return try encode(deleteTopics(try DeleteTopicsRequest(from: &body, version: version), version: version), version: version, header: header)
        case .createPartitions:
            return try encode(createPartitions(try CreatePartitionsRequest(from: &body, version: version)), version: version, header: header)
        case .describeConfigs:
            return try encode(describeConfigs(try DescribeConfigsRequest(from: &body, version: version), version: version), version: version, header: header)
        case .alterConfigs:
            return try encode(alterConfigs(try AlterConfigsRequest(from: &body, version: version)), version: version, header: header)
        case .incrementalAlterConfigs:
            return try encode(incrementalAlterConfigs(try IncrementalAlterConfigsRequest(from: &body, version: version)), version: version, header: header)
        case .deleteRecords:
            return try encode(await deleteRecords(try DeleteRecordsRequest(from: &body, version: version)), version: version, header: header)
        case .describeCluster:
            return try encode(describeCluster(try DescribeClusterRequest(from: &body, version: version)), version: version, header: header)
        case .describeLogDirs:
            return try encode(describeLogDirs(try DescribeLogDirsRequest(from: &body, version: version)), version: version, header: header)
        case .initProducerId:
            return try encode(initProducerId(try InitProducerIdRequest(from: &body, version: version)), version: version, header: header)
        case .findCoordinator:
            let request = try FindCoordinatorRequest(from: &body, version: version)
            return try encode(groups.findCoordinator(request, version: version, nodeId: configuration.nodeId, host: advertisedHost, port: Int32(advertisedPort)),
                              version: version, header: header)
        case .heartbeat:
            return try encode(await groups.heartbeat(try HeartbeatRequest(from: &body, version: version), version: version), version: version, header: header)
        case .leaveGroup:
            return try encode(await groups.leaveGroup(try LeaveGroupRequest(from: &body, version: version), version: version), version: version, header: header)
        case .offsetFetch:
            return try encode(await groups.offsetFetch(try OffsetFetchRequest(from: &body, version: version), version: version), version: version, header: header)
        case .listGroups:
            return try encode(await groups.listGroups(try ListGroupsRequest(from: &body, version: version), version: version), version: version, header: header)
        case .describeGroups:
            return try encode(await groups.describeGroups(try DescribeGroupsRequest(from: &body, version: version), version: version), version: version, header: header)
        default:
            throw RequestError("API \(apiKey.name) is not supported")
        }
    }

    private func encode<R: KafkaResponse>(_ response: R, version: Int16, header: RequestHeader) throws -> ByteBuffer {
        var out = ByteBufferAllocator().buffer(capacity: 256)
        try encodeResponseFrame(response, version: version, correlationId: header.correlationId, into: &out)
        return out
    }

    func apiVersionsResponse(error: KafkaErrorCode) -> ApiVersionsResponse {
        let keys = Self.supportedVersions.sorted { $0.key.rawValue < $1.key.rawValue }.map {
            ApiVersionsResponse.ApiVersion(apiKey: $0.key.rawValue, minVersion: $0.value.lowerBound, maxVersion: $0.value.upperBound)
        }
        return ApiVersionsResponse(errorCode: error.rawValue, apiKeys: keys)
    }

    /// Runs blocking file work (fsync) off the event loops and the cooperative pool.
    func blocking<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await threadPool.runIfActive(body)
    }
}

/// A response that may still be waiting on something (fsync, new data).
public enum PendingResponse: Sendable {
    /// The response frame, or nil when the request expects none.
    case ready(ResponseFrame?)
    case deferred(@Sendable () async throws -> ResponseFrame?)

    public func resolve() async throws -> ResponseFrame? {
        switch self {
        case .ready(let r): return r
        case .deferred(let body): return try await body()
        }
    }
}

/// A request the connection cannot continue after; the message is logged.
struct RequestError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

extension KafkaErrorCode {
    /// The wire code for a log error.
    init(_ error: LogStoreError) {
        switch error.kind {
        case .corrupt: self = .corruptMessage
        case .recordTooLarge: self = .messageTooLarge
        case .invalidRecord: self = .invalidRecord
        case .offsetOutOfRange: self = .offsetOutOfRange
        case .unsupportedFormat: self = .unsupportedForMessageFormat
        case .notFound: self = .unknownTopicOrPartition
        case .io: self = .kafkaStorageError
        case .outOfOrderSequence: self = .outOfOrderSequenceNumber
        case .invalidProducerEpoch: self = .invalidProducerEpoch
        case .offsetTiered: self = .offsetMovedToTieredStorage
        }
    }
}
