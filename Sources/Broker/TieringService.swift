import Logging
import LogStore
import NIOConcurrencyHelpers
import NIOPosix
import ObjectStore
import ServiceLifecycle
import Tiering

/// Tiered storage in the broker: copies closed segments of tiered topics to the object
/// store (`remote.storage.url`), applies total retention there, and serves reads below the
/// local log start from it.
///
/// Local retention (`local.retention.*`) stays with `LogMaintenanceService`; a segment can
/// only go from disk once this service has recorded it in the partition's manifest.
public final class TieringService: Service, Sendable {
    public let storage: RemoteLogStorage
    let topics: TopicManager
    let configuration: BrokerConfiguration
    let threadPool: NIOThreadPool
    let logger: Logger
    /// Partitions uploaded or checked at once.
    static let parallelPartitions = 4

    init(storage: RemoteLogStorage, topics: TopicManager, configuration: BrokerConfiguration, threadPool: NIOThreadPool, logger: Logger) {
        self.storage = storage
        self.topics = topics
        self.configuration = configuration
        self.threadPool = threadPool
        self.logger = logger
    }

    /// Where a partition's tiered data lives, or nil when the topic is gone.
    func key(for log: PartitionLog) -> RemotePartitionKey? {
        guard let info = topics.topic(log.topic) else { return nil }
        return RemotePartitionKey(topic: log.topic, topicId: info.id, partition: log.partition)
    }

    // MARK: start

    /// Brings the data directory in line with the store before clients connect: topics
    /// that exist only in the store are re-created (same id and configs), empty partitions
    /// continue at the end of their tiered history, and objects left by an interrupted
    /// upload are removed.
    public func restore() async throws {
        let remoteTopics = try await storage.listTopics()
        for topic in remoteTopics where topics.topic(topic.name) == nil {
            do {
                try topics.restoreTopic(topic)
                logger.info("restored topic from tiered storage", metadata: ["kafka.topic": "\(topic.name)", "partitions": "\(topic.partitions)"])
            } catch {
                logger.warning("cannot restore topic from tiered storage", metadata: ["kafka.topic": "\(topic.name)", "error": "\(error)"])
            }
        }
        for log in topics.allLogs() where log.config.isTiered {
            guard let key = key(for: log) else { continue }
            let manifest = try await storage.manifest(key, logStartOffset: log.logStartOffset)
            try await storage.removeOrphans(key)
            if !manifest.segments.isEmpty {
                try await blocking {
                    try log.restoreFromTieredStorage(logStartOffset: manifest.logStartOffset, endOffset: manifest.endOffset)
                    // Retention in the store ran after the last local checkpoint.
                    if manifest.logStartOffset > log.logStartOffset, manifest.logStartOffset <= log.logEndOffset {
                        _ = try log.deleteRecords(before: manifest.logStartOffset)
                    }
                }
            }
            log.tieredOffset = manifest.endOffset
        }
    }

    // MARK: the loop

    public func run() async throws {
        let interval = max(configuration.remoteTaskIntervalMs, 10)
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            await tierOnce()
            do {
                // Graceful shutdown ends the wait at once rather than after a whole interval.
                try await cancelWhenGracefulShutdown { try await Task.sleep(for: .milliseconds(interval)) }
            } catch {
                return
            }
        }
    }

    /// One pass: topics recorded in the store, deleted topics removed from it, then every
    /// tiered partition uploaded and retention applied. Errors are logged and retried on
    /// the next pass.
    public func tierOnce() async {
        await syncTopics()
        let logs = topics.allLogs().filter { $0.config.isTiered }
        await withTaskGroup(of: Void.self) { group in
            var running = 0
            for log in logs {
                if running >= Self.parallelPartitions {
                    await group.next()
                    running -= 1
                }
                running += 1
                group.addTask {
                    do {
                        try await self.tier(log)
                    } catch {
                        self.logger.warning("tiering failed; will retry", metadata: [
                            "kafka.topic": "\(log.topic)", "kafka.partition": "\(log.partition)", "error": "\(error)"])
                    }
                }
            }
        }
    }

    private func tier(_ log: PartitionLog) async throws {
        guard let key = key(for: log) else { return }
        var manifest = try await storage.manifest(key, logStartOffset: log.logStartOffset)
        if log.tieredOffset < 0 { log.tieredOffset = manifest.endOffset }
        var uploaded = 0
        for segment in log.closedSegments(from: log.tieredOffset) {
            let started = ContinuousClock.now
            manifest = try await storage.upload(segment, key: key, logStartOffset: log.logStartOffset)
            log.tieredOffset = manifest.endOffset
            uploaded += 1
            logger.debug("uploaded segment", metadata: [
                "kafka.topic": "\(key.topic)", "kafka.partition": "\(key.partition)", "base.offset": "\(segment.baseOffset)",
                "bytes": "\(segment.sizeInBytes)", "duration": "\(ContinuousClock.now - started)"])
        }
        let config = log.config
        if let newStart = try await storage.applyRetention(
            key: key, logStartOffset: log.logStartOffset,
            retentionMs: config.deleteOldSegments ? config.retentionMs : -1,
            retentionBytes: config.deleteOldSegments ? config.retentionBytes : -1,
            localOnlyBytes: log.untieredBytesAndSegments.bytes)
        {
            _ = try await blocking { try log.deleteRecords(before: newStart) }
        } else if uploaded > 0 {
            // Local retention may now drop what was just confirmed in the store.
            try await blocking { try log.applyRetention() }
        }
    }

    private func syncTopics() async {
        for info in topics.drainDeletedTopics() {
            do {
                for p in 0..<info.partitionCount {
                    try await storage.deletePartition(RemotePartitionKey(topic: info.name, topicId: info.id, partition: p))
                }
                try await storage.deleteTopic(RemoteTopicMetadata(name: info.name, id: info.id.description, partitions: info.partitionCount, configs: info.configs))
            } catch {
                logger.warning("cannot delete a deleted topic's tiered data", metadata: ["kafka.topic": "\(info.name)", "error": "\(error)"])
            }
        }
        for info in topics.allTopics() {
            guard let config = topics.effectiveLogConfig(info.name), config.isTiered else { continue }
            let metadata = RemoteTopicMetadata(name: info.name, id: info.id.description, partitions: info.partitionCount, configs: info.configs)
            guard topics.needsRemoteRecord(metadata) else { continue }
            do {
                try await storage.putTopic(metadata)
                topics.noteRemoteRecord(metadata)
            } catch {
                logger.warning("cannot record topic in tiered storage; will retry", metadata: ["kafka.topic": "\(info.name)", "error": "\(error)"])
            }
        }
    }

    /// What a partition still has to upload, and what the store holds of it.
    public func status(of log: PartitionLog) -> (tieredBytes: Int64, tieredSegments: Int, waitingBytes: Int64, waitingSegments: Int) {
        let waiting = log.untieredBytesAndSegments
        let manifest = key(for: log).flatMap { storage.cachedManifest($0) }
        return (manifest?.sizeInBytes ?? 0, manifest?.segments.count ?? 0, waiting.bytes, waiting.segments)
    }

    private func blocking<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await threadPool.runIfActive(body)
    }
}
