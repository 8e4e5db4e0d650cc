import Logging
import LogStore
import NIOPosix
import ServiceLifecycle

/// Runs retention, the time-based flush policy and recovery-point checkpoints in the
/// background, on the blocking thread pool.
public final class LogMaintenanceService: Service, Sendable {
    let configuration: BrokerConfiguration
    let topics: TopicManager
    let threadPool: NIOThreadPool
    let logger: Logger

    init(configuration: BrokerConfiguration, topics: TopicManager, threadPool: NIOThreadPool, logger: Logger) {
        self.configuration = configuration
        self.topics = topics
        self.threadPool = threadPool
        self.logger = logger
    }

    public func run() async throws {
        let tick = min(configuration.flushCheckIntervalMs, configuration.retentionCheckIntervalMs,
                       configuration.checkpointIntervalMs, configuration.cleanerBackoffMs)
        var lastRetention = currentTimeMillis()
        var lastCleaning = currentTimeMillis()
        var lastCheckpoint = currentTimeMillis()
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            do {
                try await Task.sleep(for: .milliseconds(max(tick, 10)))
            } catch {
                return
            }
            let now = currentTimeMillis()
            let runRetention = now - lastRetention >= configuration.retentionCheckIntervalMs
            let runCheckpoint = now - lastCheckpoint >= configuration.checkpointIntervalMs
            let runCleaner = now - lastCleaning >= configuration.cleanerBackoffMs
            if runCleaner { lastCleaning = now }
            if runRetention { lastRetention = now }
            if runCheckpoint { lastCheckpoint = now }
            let logs = topics.allLogs()
            let logger = self.logger
            try? await threadPool.runIfActive {
                for log in logs {
                    do {
                        try log.flushIfDue(now: now)
                        if runRetention { try log.applyRetention(now: now) }
                        if runCleaner, let cleaned = try log.compact(now: now) {
                            logger.info("compacted partition", metadata: [
                                "kafka.topic": "\(log.topic)", "kafka.partition": "\(log.partition)",
                                "segments": "\(cleaned.segments)", "bytes.before": "\(cleaned.bytesBefore)",
                                "bytes.after": "\(cleaned.bytesAfter)", "records.removed": "\(cleaned.recordsRemoved)",
                            ])
                        }
                        if runCheckpoint { try log.checkpoint() }
                    } catch {
                        logger.error("log maintenance failed", metadata: ["kafka.topic": "\(log.topic)", "kafka.partition": "\(log.partition)", "error": "\(error)"])
                    }
                }
            }
        }
    }
}
