import KafkaProtocol

/// Topic and config administration over the wire; works against any Kafka-compatible
/// cluster (changes go to the controller, as Kafka expects).
public struct KafkaAdmin: Sendable {
    public let cluster: KafkaCluster

    public init(cluster: KafkaCluster) {
        self.cluster = cluster
    }

    public init(bootstrapServers: [String], clientId: String = "tributary-admin") throws {
        self.cluster = try KafkaCluster(bootstrapServers: bootstrapServers, clientId: clientId)
    }

    public struct PartitionDescription: Sendable, Hashable {
        public var partition: Int32
        public var leader: Int32
        public var replicas: [Int32]
        public var isr: [Int32]
    }

    public struct TopicDescription: Sendable, Hashable {
        public var name: String
        public var topicId: KafkaUUID
        public var isInternal: Bool
        public var partitions: [PartitionDescription]
    }

    public struct ConfigEntry: Sendable, Hashable {
        public var name: String
        public var value: String?
        public var isDefault: Bool
        public var isReadOnly: Bool
        public var source: Int8
    }

    static func check(_ code: Int16, _ message: String?, _ what: String) throws {
        guard code != 0 else { return }
        let error = KafkaErrorCode(rawValue: code)
        throw KafkaClientError(.brokerError, "\(what): \(message ?? error.defaultMessage) (\(error.name))", kafkaCode: error)
    }

    /// Every topic (nil) or the named ones; unknown names are an error.
    public func describeTopics(_ names: [String]? = nil) async throws -> [TopicDescription] {
        let response = try await cluster.refreshMetadata(topics: names)
        return try response.topics.map { t in
            try Self.check(t.errorCode, nil, "topic '\(t.name ?? "?")'")
            return TopicDescription(name: t.name ?? "", topicId: t.topicId, isInternal: t.isInternal,
                                    partitions: t.partitions.map { .init(partition: $0.partitionIndex, leader: $0.leaderId, replicas: $0.replicaNodes, isr: $0.isrNodes) }
                                        .sorted { $0.partition < $1.partition })
        }.sorted { $0.name < $1.name }
    }

    public func listTopics() async throws -> [String] {
        try await describeTopics(nil).filter { !$0.isInternal }.map(\.name)
    }

    /// Creates a topic; -1 partitions or replication factor means the broker's default.
    public func createTopic(_ name: String, partitions: Int32 = -1, replicationFactor: Int16 = -1,
                            configs: [String: String] = [:], validateOnly: Bool = false) async throws {
        let c = try await cluster.controllerConnection()
        let request = CreateTopicsRequest(topics: [.init(name: name, numPartitions: partitions, replicationFactor: replicationFactor,
                                                         configs: configs.sorted { $0.key < $1.key }.map { .init(name: $0.key, value: $0.value) })],
                                          timeoutMs: 30_000, validateOnly: validateOnly)
        let response = try await c.send(request)
        for t in response.topics { try Self.check(t.errorCode, t.errorMessage, "cannot create topic '\(t.name)'") }
    }

    public func deleteTopics(_ names: [String]) async throws {
        let c = try await cluster.controllerConnection()
        let version = try c.version(for: DeleteTopicsRequest.self)
        let request = version >= 6
            ? DeleteTopicsRequest(topics: names.map { .init(name: $0) }, timeoutMs: 30_000)
            : DeleteTopicsRequest(topicNames: names, timeoutMs: 30_000)
        let response = try await c.send(request, version: version)
        for t in response.responses { try Self.check(t.errorCode, t.errorMessage, "cannot delete topic '\(t.name ?? "?")'") }
    }

    public func createPartitions(_ name: String, totalCount: Int32) async throws {
        let c = try await cluster.controllerConnection()
        let response = try await c.send(CreatePartitionsRequest(topics: [.init(name: name, count: totalCount)], timeoutMs: 30_000))
        for r in response.results { try Self.check(r.errorCode, r.errorMessage, "cannot add partitions to '\(r.name)'") }
    }

    /// A topic's configs (every setting, with whether it is a default).
    public func describeTopicConfigs(_ name: String) async throws -> [ConfigEntry] {
        let c = try await cluster.anyConnection()
        let response = try await c.send(DescribeConfigsRequest(resources: [.init(resourceType: 2, resourceName: name, configurationKeys: nil)]))
        guard let result = response.results.first else { return [] }
        try Self.check(result.errorCode, result.errorMessage, "cannot describe configs of '\(name)'")
        return result.configs.map {
            ConfigEntry(name: $0.name, value: $0.value, isDefault: $0.isDefault || $0.configSource == 5,
                        isReadOnly: $0.readOnly, source: $0.configSource)
        }
    }

    /// Sets and removes topic config overrides (IncrementalAlterConfigs).
    public func alterTopicConfigs(_ name: String, set: [String: String], delete: [String] = []) async throws {
        let c = try await cluster.controllerConnection()
        var configs = set.sorted { $0.key < $1.key }.map { IncrementalAlterConfigsRequest.AlterableConfig(name: $0.key, configOperation: 0, value: $0.value) }
        configs += delete.map { .init(name: $0, configOperation: 1, value: nil) }
        let response = try await c.send(IncrementalAlterConfigsRequest(resources: [.init(resourceType: 2, resourceName: name, configs: configs)]))
        for r in response.responses { try Self.check(r.errorCode, r.errorMessage, "cannot alter configs of '\(name)'") }
    }

    public func close() async {
        await cluster.close()
    }
}
