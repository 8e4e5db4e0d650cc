import Foundation
import KafkaProtocol
import Logging
import LogStore
import NIOConcurrencyHelpers
import Tiering

/// A topic as the broker knows it.
public struct TopicInfo: Sendable {
    public var name: String
    public var id: KafkaUUID
    public var partitionCount: Int32
    /// Topic-level overrides (`retention.ms`, ...), as set by CreateTopics/AlterConfigs.
    public var configs: [String: String]
}

/// Why a topic operation failed, as a Kafka error code and a message for the wire.
public struct TopicError: Error, Sendable {
    public var code: KafkaErrorCode
    public var message: String
    public init(_ code: KafkaErrorCode, _ message: String) {
        self.code = code
        self.message = message
    }
}

/// Owns topics, their partition logs and their configs, persisted in the data directory
/// (`topics.json`, written atomically) so they survive restarts.
public final class TopicManager: @unchecked Sendable {
    // @unchecked: all mutable state is behind `lock`.
    private struct Topic {
        var info: TopicInfo
        var logs: [PartitionLog]
    }

    private struct PersistedTopic: Codable {
        var name: String
        var id: String
        var partitions: Int32
        var configs: [String: String]
    }

    private let lock = NIOLock()
    private var topics: [String: Topic] = [:]
    /// Deleted topics whose tiered data the tiering service still has to remove.
    private var deletedTiered: [TopicInfo] = []
    /// Topic records already written to the store, so unchanged topics are not rewritten.
    private var remoteRecords: Set<RemoteTopicMetadata> = []
    private let configuration: BrokerConfiguration
    private let logger: Logger
    private let notifier: AppendNotifier
    public let clusterId: String

    private var metadataPath: String { configuration.dataDirectory + "/topics.json" }

    init(configuration: BrokerConfiguration, notifier: AppendNotifier, logger: Logger) throws {
        self.configuration = configuration
        self.logger = logger
        self.notifier = notifier
        try FileSystem.createDirectory(configuration.dataDirectory)
        clusterId = try Self.loadOrCreateClusterId(configuration.dataDirectory)
        if let bytes = try FileSystem.readFile(metadataPath) {
            let persisted: [PersistedTopic]
            do {
                persisted = try JSONDecoder().decode([PersistedTopic].self, from: Data(bytes))
            } catch {
                throw TopicError(.unknownServerError, "cannot read \(metadataPath): \(error)")
            }
            for p in persisted {
                guard let id = KafkaUUID(p.id) else { throw TopicError(.unknownServerError, "bad topic id for \(p.name) in \(metadataPath)") }
                let info = TopicInfo(name: p.name, id: id, partitionCount: p.partitions, configs: p.configs)
                topics[p.name] = Topic(info: info, logs: try openLogs(info, from: 0, to: p.partitions))
            }
        }
    }

    private static func loadOrCreateClusterId(_ dir: String) throws -> String {
        let path = dir + "/meta.properties"
        if let bytes = try FileSystem.readFile(path) {
            for line in String(decoding: bytes, as: UTF8.self).split(separator: "\n") where line.hasPrefix("cluster.id=") {
                return String(line.dropFirst("cluster.id=".count))
            }
        }
        let id = KafkaUUID.random().description
        try FileSystem.writeAtomically(path, Array("version=1\ncluster.id=\(id)\nnode.id=0\n".utf8))
        return id
    }

    private func openLogs(_ info: TopicInfo, from: Int32, to: Int32) throws -> [PartitionLog] {
        let config = TopicConfigs.logConfig(defaults: configuration.logDefaults, overrides: info.configs)
        var logs: [PartitionLog] = []
        for p in from..<to {
            let log = try PartitionLog(directory: configuration.dataDirectory + "/\(info.name)-\(p)", topic: info.name,
                                       partition: p, config: config, logger: logger)
            let notifier = self.notifier
            log.addAppendListener { notifier.notifyAll() }
            logs.append(log)
        }
        return logs
    }

    private func persistLocked() throws {
        let persisted = topics.values.map {
            PersistedTopic(name: $0.info.name, id: $0.info.id.description, partitions: $0.info.partitionCount, configs: $0.info.configs)
        }.sorted { $0.name < $1.name }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try FileSystem.writeAtomically(metadataPath, Array(try encoder.encode(persisted)))
    }

    // MARK: queries

    public func topic(_ name: String) -> TopicInfo? { lock.withLock { topics[name]?.info } }

    public func topic(id: KafkaUUID) -> TopicInfo? { lock.withLock { topics.values.first { $0.info.id == id }?.info } }

    public func allTopics() -> [TopicInfo] { lock.withLock { topics.values.map(\.info).sorted { $0.name < $1.name } } }

    public func log(_ topic: String, _ partition: Int32) -> PartitionLog? {
        lock.withLock {
            guard let t = topics[topic], partition >= 0, Int(partition) < t.logs.count else { return nil }
            return t.logs[Int(partition)]
        }
    }

    public func allLogs() -> [PartitionLog] { lock.withLock { topics.values.flatMap(\.logs) } }

    public func effectiveLogConfig(_ topic: String) -> LogConfig? {
        lock.withLock { topics[topic].map { TopicConfigs.logConfig(defaults: configuration.logDefaults, overrides: $0.info.configs) } }
    }

    // MARK: changes

    /// Kafka's topic name rules: 1-249 of [a-zA-Z0-9._-], not "." or "..".
    static func validateName(_ name: String) -> String? {
        if name.isEmpty { return "topic name is empty" }
        if name == "." || name == ".." { return "topic name cannot be '.' or '..'" }
        if name.utf8.count > 249 { return "topic name is longer than 249 characters" }
        let ok = name.utf8.allSatisfy { c in
            (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || (c >= 48 && c <= 57) || c == 46 || c == 95 || c == 45
        }
        return ok ? nil : "topic name '\(name)' has characters other than ASCII letters, digits, '.', '_' and '-'"
    }

    @discardableResult
    public func createTopic(name: String, partitions: Int32, replicationFactor: Int16, configs: [String: String],
                            validateOnly: Bool = false) throws -> TopicInfo {
        if let problem = Self.validateName(name) { throw TopicError(.invalidTopicException, problem) }
        let count = partitions == -1 ? configuration.numPartitions : partitions
        guard count > 0, count <= 10_000 else { throw TopicError(.invalidPartitions, "number of partitions must be between 1 and 10000, got \(partitions)") }
        guard replicationFactor == -1 || replicationFactor == 1 else {
            throw TopicError(.invalidReplicationFactor,
                             "replication factor \(replicationFactor) is not possible: Tributary is a single-node broker, so the only replication factor is 1")
        }
        if let problem = validate(configs) { throw TopicError(.invalidConfig, problem) }
        return try lock.withLock {
            if topics[name] != nil { throw TopicError(.topicAlreadyExists, "topic '\(name)' already exists") }
            // Kafka refuses names that collide once '.' and '_' are treated alike (metrics names).
            let normalized = name.replacingOccurrences(of: ".", with: "_")
            if let clash = topics.keys.first(where: { $0.replacingOccurrences(of: ".", with: "_") == normalized }) {
                throw TopicError(.invalidTopicException, "topic '\(name)' collides with existing topic '\(clash)'")
            }
            let info = TopicInfo(name: name, id: KafkaUUID.random(), partitionCount: count, configs: configs)
            if validateOnly { return info }
            let logs = try openLogs(info, from: 0, to: count)
            topics[name] = Topic(info: info, logs: logs)
            try persistLocked()
            logger.info("created topic", metadata: ["kafka.topic": "\(name)", "partitions": "\(count)"])
            return info
        }
    }

    public func deleteTopic(_ name: String) throws {
        let logs = try lock.withLock { () throws -> [PartitionLog] in
            guard let t = topics.removeValue(forKey: name) else {
                throw TopicError(.unknownTopicOrPartition, "topic '\(name)' does not exist")
            }
            try persistLocked()
            if configuration.remoteStorageURL != nil { deletedTiered.append(t.info) }
            return t.logs
        }
        for log in logs { try log.delete() }
        logger.info("deleted topic", metadata: ["kafka.topic": "\(name)"])
    }

    public func createPartitions(_ name: String, totalCount: Int32, validateOnly: Bool) throws {
        try lock.withLock {
            guard var t = topics[name] else { throw TopicError(.unknownTopicOrPartition, "topic '\(name)' does not exist") }
            guard totalCount > t.info.partitionCount else {
                throw TopicError(.invalidPartitions, "topic '\(name)' has \(t.info.partitionCount) partitions; the new count must be larger, got \(totalCount)")
            }
            guard totalCount <= 10_000 else { throw TopicError(.invalidPartitions, "at most 10000 partitions") }
            if validateOnly { return }
            t.logs += try openLogs(t.info, from: t.info.partitionCount, to: totalCount)
            t.info.partitionCount = totalCount
            topics[name] = t
            try persistLocked()
        }
    }

    /// Replaces (AlterConfigs) or edits (IncrementalAlterConfigs) a topic's overrides.
    public func updateConfigs(_ name: String, validateOnly: Bool, _ change: (inout [String: String]) throws -> Void) throws {
        try lock.withLock {
            guard var t = topics[name] else { throw TopicError(.unknownTopicOrPartition, "topic '\(name)' does not exist") }
            var configs = t.info.configs
            try change(&configs)
            if let problem = validate(configs) { throw TopicError(.invalidConfig, problem) }
            if validateOnly { return }
            t.info.configs = configs
            topics[name] = t
            let logConfig = TopicConfigs.logConfig(defaults: configuration.logDefaults, overrides: configs)
            for log in t.logs { log.config = logConfig }
            try persistLocked()
        }
    }

    /// Topic configs valid for this broker: tiering needs a store to tier to.
    private func validate(_ configs: [String: String]) -> String? {
        if let problem = TopicConfigs.validate(configs) { return problem }
        if configs["remote.storage.enable"]?.lowercased() == "true", configuration.remoteStorageURL == nil {
            return "remote.storage.enable=true needs the broker's remote.storage.url (serve --tier-to URL)"
        }
        return nil
    }

    // MARK: tiering

    /// Re-creates a topic found in tiered storage, with its id and configs.
    func restoreTopic(_ remote: RemoteTopicMetadata) throws {
        guard let id = KafkaUUID(remote.id) else { throw TopicError(.invalidTopicException, "bad topic id '\(remote.id)' in the store") }
        if let problem = Self.validateName(remote.name) { throw TopicError(.invalidTopicException, problem) }
        try lock.withLock {
            guard topics[remote.name] == nil else { return }
            let info = TopicInfo(name: remote.name, id: id, partitionCount: remote.partitions, configs: remote.configs)
            topics[remote.name] = Topic(info: info, logs: try openLogs(info, from: 0, to: remote.partitions))
            remoteRecords.insert(remote)
            try persistLocked()
        }
    }

    func drainDeletedTopics() -> [TopicInfo] {
        lock.withLock {
            defer { deletedTiered.removeAll() }
            return deletedTiered
        }
    }

    func needsRemoteRecord(_ record: RemoteTopicMetadata) -> Bool { lock.withLock { !remoteRecords.contains(record) } }
    func noteRemoteRecord(_ record: RemoteTopicMetadata) { _ = lock.withLock { remoteRecords.insert(record) } }

    /// Flushes and checkpoints every log (clean shutdown).
    public func closeAll() {
        for log in allLogs() {
            do {
                try log.close()
            } catch {
                logger.error("closing partition failed", metadata: ["kafka.topic": "\(log.topic)", "kafka.partition": "\(log.partition)", "error": "\(error)"])
            }
        }
    }
}
