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
        let tick = min(configuration.flushCheckIntervalMs, configuration.retentionCheckIntervalMs, configuration.checkpointIntervalMs)
        var lastRetention = currentTimeMillis()
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
            if runRetention { lastRetention = now }
            if runCheckpoint { lastCheckpoint = now }
            let logs = topics.allLogs()
            let logger = self.logger
            try? await threadPool.runIfActive {
                for log in logs {
                    do {
                        try log.flushIfDue(now: now)
                        if runRetention { try log.applyRetention(now: now) }
                        if runCheckpoint { try log.checkpoint() }
                    } catch {
                        logger.error("log maintenance failed", metadata: ["kafka.topic": "\(log.topic)", "kafka.partition": "\(log.partition)", "error": "\(error)"])
                    }
                }
            }
        }
    }
}
