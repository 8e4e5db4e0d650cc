import Foundation
import KafkaProtocol
import LogStore
import NIOCore

/// Kafka's resource types in config requests.
enum ConfigResourceType: Int8 {
    case topic = 2
    case broker = 4
}

/// Kafka's ConfigSource values.
enum ConfigSource: Int8 {
    case topicConfig = 1
    case staticBrokerConfig = 4
    case defaultConfig = 5
}

extension RequestHandler {
    // MARK: topics

    func createTopics(_ request: CreateTopicsRequest, version: Int16) throws -> CreateTopicsResponse {
        var response = CreateTopicsResponse()
        var seen = Set<String>()
        for topic in request.topics {
            var result = CreateTopicsResponse.CreatableTopicResult(name: topic.name, numPartitions: -1, replicationFactor: -1)
            do {
                guard seen.insert(topic.name).inserted else {
                    throw TopicError(.invalidRequest, "topic '\(topic.name)' appears more than once in the request")
                }
                var partitions = topic.numPartitions
                var replication = topic.replicationFactor
                if !topic.assignments.isEmpty {
                    guard topic.numPartitions == -1, topic.replicationFactor == -1 else {
                        throw TopicError(.invalidRequest, "give either partitions and replication factor or replica assignments, not both")
                    }
                    guard topic.assignments.allSatisfy({ $0.brokerIds == [configuration.nodeId] }) else {
                        throw TopicError(.invalidReplicaAssignment, "replica assignments must name only broker \(configuration.nodeId): this is a single-node broker")
                    }
                    partitions = Int32(topic.assignments.count)
                    replication = 1
                }
                var configs: [String: String] = [:]
                for c in topic.configs {
                    guard let value = c.value else { continue }
                    configs[c.name] = value
                }
                let info = try topics.createTopic(name: topic.name, partitions: partitions, replicationFactor: replication,
                                                  configs: configs, validateOnly: request.validateOnly)
                result.topicId = request.validateOnly ? .zero : info.id
                result.numPartitions = info.partitionCount
                result.replicationFactor = 1
                if version >= 5 {
                    result.configs = configEntries(topic: info.configs).map {
                        .init(name: $0.name, value: $0.value, readOnly: false, configSource: $0.source.rawValue, isSensitive: false)
                    }
                }
            } catch let error as TopicError {
                result.errorCode = error.code.rawValue
                result.errorMessage = error.message
            }
            response.topics.append(result)
        }
        return response
    }

    func deleteTopics(_ request: DeleteTopicsRequest, version: Int16) throws -> DeleteTopicsResponse {
        var response = DeleteTopicsResponse()
        let targets: [(name: String?, id: KafkaUUID)] = version >= 6
            ? request.topics.map { ($0.name, $0.topicId) }
            : request.topicNames.map { ($0, .zero) }
        for target in targets {
            var result = DeleteTopicsResponse.DeletableTopicResult(name: target.name, topicId: target.id)
            let name = target.name ?? topics.topic(id: target.id)?.name
            do {
                guard let name else { throw TopicError(.unknownTopicId, "no topic has id \(target.id)") }
                result.name = name
                result.topicId = topics.topic(name)?.id ?? target.id
                try topics.deleteTopic(name)
            } catch let error as TopicError {
                result.errorCode = error.code.rawValue
                result.errorMessage = error.message
            } catch {
                result.errorCode = KafkaErrorCode.kafkaStorageError.rawValue
                result.errorMessage = "\(error)"
            }
            response.responses.append(result)
        }
        return response
    }

    func createPartitions(_ request: CreatePartitionsRequest) throws -> CreatePartitionsResponse {
        var response = CreatePartitionsResponse()
        for topic in request.topics {
            var result = CreatePartitionsResponse.CreatePartitionsTopicResult(name: topic.name)
            do {
                if let assignments = topic.assignments, !assignments.allSatisfy({ $0.brokerIds == [configuration.nodeId] }) {
                    throw TopicError(.invalidReplicaAssignment, "replica assignments must name only broker \(configuration.nodeId)")
                }
                try topics.createPartitions(topic.name, totalCount: topic.count, validateOnly: request.validateOnly)
            } catch let error as TopicError {
                result.errorCode = error.code.rawValue
                result.errorMessage = error.message
            }
            response.results.append(result)
        }
        return response
    }

    func deleteRecords(_ request: DeleteRecordsRequest) async throws -> DeleteRecordsResponse {
        var response = DeleteRecordsResponse()
        for topic in request.topics {
            var t = DeleteRecordsResponse.DeleteRecordsTopicResult(name: topic.name)
            for p in topic.partitions {
                var r = DeleteRecordsResponse.DeleteRecordsPartitionResult(partitionIndex: p.partitionIndex, lowWatermark: -1)
                if let log = topics.log(topic.name, p.partitionIndex) {
                    do {
                        r.lowWatermark = try await blocking { try log.deleteRecords(before: p.offset) }
                    } catch let error as LogStoreError {
                        r.errorCode = KafkaErrorCode(error).rawValue
                    }
                } else {
                    r.errorCode = KafkaErrorCode.unknownTopicOrPartition.rawValue
                }
                t.partitions.append(r)
            }
            response.topics.append(t)
        }
        return response
    }

    // MARK: configs

    struct ConfigEntry {
        var name: String
        var value: String
        var source: ConfigSource
        var readOnly: Bool
        var type: Int8
        var documentation: String
    }

    private static func configType(_ kind: TopicConfigDefinition.Kind) -> Int8 {
        switch kind {
        case .boolean: return 1
        case .string: return 2
        case .int: return 3
        case .long: return 5
        case .double: return 6
        case .list: return 7
        }
    }

    func configEntries(topic overrides: [String: String]) -> [ConfigEntry] {
        TopicConfigs.all.map { def in
            if let v = overrides[def.name] {
                return ConfigEntry(name: def.name, value: v, source: .topicConfig, readOnly: false,
                                   type: Self.configType(def.kind), documentation: def.documentation)
            }
            return ConfigEntry(name: def.name, value: def.defaultValue(configuration.logDefaults), source: .defaultConfig,
                               readOnly: false, type: Self.configType(def.kind), documentation: def.documentation)
        }
    }

    func brokerConfigEntries() -> [ConfigEntry] {
        let c = configuration
        let advertised = "PLAINTEXT://\(advertisedHost):\(advertisedPort)"
        var entries: [(String, String, Int8, String)] = [
            ("node.id", String(c.nodeId), 3, "This broker's id."),
            ("broker.id", String(c.nodeId), 3, "This broker's id."),
            ("log.dirs", c.dataDirectory, 2, "The data directory."),
            ("listeners", "PLAINTEXT://\(c.host):\(c.port)", 7, "Where the broker listens."),
            ("advertised.listeners", advertised, 7, "What clients are told to connect to."),
            ("num.partitions", String(c.numPartitions), 3, "Partitions of auto-created topics."),
            ("auto.create.topics.enable", String(c.autoCreateTopics), 1, "Create topics on first metadata request."),
            ("socket.request.max.bytes", String(c.socketRequestMaxBytes), 3, "The largest request accepted."),
            ("log.retention.check.interval.ms", String(c.retentionCheckIntervalMs), 5, "How often retention runs."),
        ]
        for def in TopicConfigs.all {
            entries.append((def.brokerName, def.defaultValue(c.logDefaults), Self.configType(def.kind), def.documentation))
        }
        return entries.map {
            ConfigEntry(name: $0.0, value: $0.1, source: .staticBrokerConfig, readOnly: true, type: $0.2, documentation: $0.3)
        }
    }

    func describeConfigs(_ request: DescribeConfigsRequest, version: Int16) throws -> DescribeConfigsResponse {
        var response = DescribeConfigsResponse()
        for resource in request.resources {
            var result = DescribeConfigsResponse.DescribeConfigsResult(resourceType: resource.resourceType, resourceName: resource.resourceName)
            var entries: [ConfigEntry] = []
            switch ConfigResourceType(rawValue: resource.resourceType) {
            case .topic:
                if let info = topics.topic(resource.resourceName) {
                    entries = configEntries(topic: info.configs)
                } else {
                    result.errorCode = KafkaErrorCode.unknownTopicOrPartition.rawValue
                    result.errorMessage = "topic '\(resource.resourceName)' does not exist"
                }
            case .broker:
                if resource.resourceName.isEmpty || resource.resourceName == String(configuration.nodeId) {
                    entries = brokerConfigEntries()
                } else {
                    result.errorCode = KafkaErrorCode.invalidRequest.rawValue
                    result.errorMessage = "no broker \(resource.resourceName); this broker is \(configuration.nodeId)"
                }
            case nil:
                result.errorCode = KafkaErrorCode.invalidRequest.rawValue
                result.errorMessage = "resource type \(resource.resourceType) has no configs here"
            }
            if let keys = resource.configurationKeys, !keys.isEmpty {
                entries = entries.filter { keys.contains($0.name) }
            }
            result.configs = entries.map {
                .init(name: $0.name, value: $0.value, readOnly: $0.readOnly, isDefault: version == 0 && $0.source == .defaultConfig,
                      configSource: $0.source.rawValue, isSensitive: false,
                      synonyms: request.includeSynonyms ? [.init(name: $0.name, value: $0.value, source: $0.source.rawValue)] : [],
                      configType: $0.type, documentation: request.includeDocumentation ? $0.documentation : nil)
            }
            response.results.append(result)
        }
        return response
    }

    private func alter(_ type: Int8, _ name: String, validateOnly: Bool, _ change: (inout [String: String]) throws -> Void) -> (Int16, String?) {
        switch ConfigResourceType(rawValue: type) {
        case .topic:
            do {
                try topics.updateConfigs(name, validateOnly: validateOnly, change)
                return (0, nil)
            } catch let error as TopicError {
                return (error.code.rawValue, error.message)
            } catch {
                return (KafkaErrorCode.kafkaStorageError.rawValue, "\(error)")
            }
        case .broker:
            return (KafkaErrorCode.policyViolation.rawValue,
                    "broker configs are static in Tributary: set them in server.properties or on the command line and restart")
        case nil:
            return (KafkaErrorCode.invalidRequest.rawValue, "resource type \(type) has no configs here")
        }
    }

    func alterConfigs(_ request: AlterConfigsRequest) throws -> AlterConfigsResponse {
        var response = AlterConfigsResponse()
        for resource in request.resources {
            let (code, message) = alter(resource.resourceType, resource.resourceName, validateOnly: request.validateOnly) { configs in
                // AlterConfigs replaces the whole set of overrides.
                configs = [:]
                for c in resource.configs {
                    if let v = c.value { configs[c.name] = v }
                }
            }
            response.responses.append(.init(errorCode: code, errorMessage: message, resourceType: resource.resourceType, resourceName: resource.resourceName))
        }
        return response
    }

    func incrementalAlterConfigs(_ request: IncrementalAlterConfigsRequest) throws -> IncrementalAlterConfigsResponse {
        var response = IncrementalAlterConfigsResponse()
        for resource in request.resources {
            let (code, message) = alter(resource.resourceType, resource.resourceName, validateOnly: request.validateOnly) { configs in
                for c in resource.configs {
                    switch c.configOperation {
                    case 0:  // SET
                        guard let v = c.value else { throw TopicError(.invalidRequest, "SET of \(c.name) without a value") }
                        configs[c.name] = v
                    case 1:  // DELETE
                        configs[c.name] = nil
                    case 2, 3:  // APPEND, SUBTRACT: list configs only
                        guard TopicConfigs.byName[c.name]?.kind == .list, let v = c.value else {
                            throw TopicError(.invalidConfig, "APPEND/SUBTRACT apply to list configs only (\(c.name))")
                        }
                        let current = configs[c.name] ?? TopicConfigs.byName[c.name]!.defaultValue(configuration.logDefaults)
                        var items = current.split(separator: ",").map(String.init)
                        let change = v.split(separator: ",").map(String.init)
                        if c.configOperation == 2 {
                            for item in change where !items.contains(item) { items.append(item) }
                        } else {
                            items.removeAll { change.contains($0) }
                        }
                        configs[c.name] = items.joined(separator: ",")
                    default:
                        throw TopicError(.invalidRequest, "unknown config operation \(c.configOperation)")
                    }
                }
            }
            response.responses.append(.init(errorCode: code, errorMessage: message, resourceType: resource.resourceType, resourceName: resource.resourceName))
        }
        return response
    }

    // MARK: cluster

    func describeCluster(_ request: DescribeClusterRequest) throws -> DescribeClusterResponse {
        DescribeClusterResponse(
            endpointType: request.endpointType, clusterId: topics.clusterId, controllerId: configuration.nodeId,
            brokers: [.init(brokerId: configuration.nodeId, host: advertisedHost, port: Int32(advertisedPort), rack: nil)]
        )
    }

    func describeLogDirs(_ request: DescribeLogDirsRequest) throws -> DescribeLogDirsResponse {
        let wanted: [String: Set<Int32>]? = request.topics.map {
            Dictionary($0.map { ($0.topic, Set($0.partitions)) }, uniquingKeysWith: { $0.union($1) })
        }
        var byTopic: [String: [DescribeLogDirsResponse.DescribeLogDirsPartition]] = [:]
        for log in topics.allLogs() {
            if let wanted, !(wanted[log.topic]?.contains(log.partition) ?? false) { continue }
            byTopic[log.topic, default: []].append(.init(partitionIndex: log.partition, partitionSize: log.sizeInBytes, offsetLag: 0, isFutureKey: false))
        }
        var result = DescribeLogDirsResponse.DescribeLogDirsResult(logDir: absoluteDataDirectory, totalBytes: -1, usableBytes: -1)
        result.topics = byTopic.sorted { $0.key < $1.key }.map { .init(name: $0.key, partitions: $0.value.sorted { $0.partitionIndex < $1.partitionIndex }) }
        if let attrs = try? FileManager.default.attributesOfFileSystem(forPath: configuration.dataDirectory) {
            result.totalBytes = (attrs[.systemSize] as? NSNumber)?.int64Value ?? -1
            result.usableBytes = (attrs[.systemFreeSize] as? NSNumber)?.int64Value ?? -1
        }
        var results = [result]
        if let tiering, let url = configuration.remoteStorageURL {
            results.append(remoteLogDir(tiering, url: url, wanted: wanted))
        }
        return DescribeLogDirsResponse(results: results)
    }

    /// Tag of the tiering details on a remote log dir's partitions: bytes waiting (int64),
    /// segments waiting (int32), segments in the store (int32). Clients that do not know it
    /// skip it, as they skip every unknown tagged field.
    static let tieringStatusTag: UInt32 = 9000

    /// The store as a second log dir, `remote:<url>`: per tiered partition, the bytes in
    /// the store (`partitionSize`) and the upload lag in bytes (`offsetLag`), with segment
    /// counts in a tagged field for clients that read it (`tributary topics describe`).
    private func remoteLogDir(_ tiering: TieringService, url: String, wanted: [String: Set<Int32>]?) -> DescribeLogDirsResponse.DescribeLogDirsResult {
        var byTopic: [String: [DescribeLogDirsResponse.DescribeLogDirsPartition]] = [:]
        for log in topics.allLogs() where log.config.isTiered {
            if let wanted, !(wanted[log.topic]?.contains(log.partition) ?? false) { continue }
            let status = tiering.status(of: log)
            var details = ByteBuffer()
            details.writeInteger(status.waitingBytes)
            details.writeInteger(Int32(clamping: status.waitingSegments))
            details.writeInteger(Int32(clamping: status.tieredSegments))
            var partition = DescribeLogDirsResponse.DescribeLogDirsPartition(partitionIndex: log.partition, partitionSize: status.tieredBytes,
                                                                             offsetLag: status.waitingBytes, isFutureKey: false)
            partition.unknownTaggedFields = [UnknownTaggedField(tag: Self.tieringStatusTag, data: details)]
            byTopic[log.topic, default: []].append(partition)
        }
        var result = DescribeLogDirsResponse.DescribeLogDirsResult(logDir: "remote:" + url, totalBytes: -1, usableBytes: -1)
        result.topics = byTopic.sorted { $0.key < $1.key }.map { .init(name: $0.key, partitions: $0.value.sorted { $0.partitionIndex < $1.partitionIndex }) }
        return result
    }

    var absoluteDataDirectory: String {
        configuration.dataDirectory.hasPrefix("/") ? configuration.dataDirectory
            : FileManager.default.currentDirectoryPath + "/" + configuration.dataDirectory
    }

    // MARK: producers

    func initProducerId(_ request: InitProducerIdRequest) throws -> InitProducerIdResponse {
        if request.transactionalId != nil {
            return InitProducerIdResponse(errorCode: KafkaErrorCode.transactionalIdAuthorizationFailed.rawValue, producerId: -1, producerEpoch: -1)
        }
        do {
            return InitProducerIdResponse(producerId: try producerIds.nextProducerId(), producerEpoch: 0)
        } catch {
            logger.error("cannot allocate a producer id", metadata: ["error": "\(error)"])
            return InitProducerIdResponse(errorCode: KafkaErrorCode.kafkaStorageError.rawValue, producerId: -1, producerEpoch: -1)
        }
    }
}
