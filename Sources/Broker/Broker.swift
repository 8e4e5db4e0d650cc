import KafkaProtocol
import Logging
import LogStore
import NIOCore
import NIOPosix
import ObjectStore
import ServiceLifecycle
import Tiering

/// The broker: topics and their logs, the request handler, and the services that run it
/// (the listener and log maintenance). Run its `services` in one `ServiceGroup`, then call
/// `shutdown()` to flush and checkpoint every log.
public final class Broker: Sendable {
    public let configuration: BrokerConfiguration
    public let topics: TopicManager
    let notifier: AppendNotifier
    let producerIds: ProducerIdManager
    let threadPool: NIOThreadPool
    let logger: Logger
    public let listener: KafkaListener
    public let maintenance: LogMaintenanceService
    public let groups: GroupCoordinator
    /// Tiered storage, when `remote.storage.url` is set.
    public let tiering: TieringService?

    public init(configuration: BrokerConfiguration, logger: Logger,
                eventLoopGroup: MultiThreadedEventLoopGroup = .singleton, threadPool: NIOThreadPool = .singleton) throws {
        self.configuration = configuration
        self.logger = logger
        self.threadPool = threadPool
        notifier = AppendNotifier()
        topics = try TopicManager(configuration: configuration, notifier: notifier, logger: logger)
        producerIds = try ProducerIdManager(dataDirectory: configuration.dataDirectory)
        listener = KafkaListener(configuration: configuration, eventLoopGroup: eventLoopGroup, logger: logger)
        maintenance = LogMaintenanceService(configuration: configuration, topics: topics, threadPool: threadPool, logger: logger)
        let topics = self.topics
        groups = try GroupCoordinator(configuration: configuration.groups, dataDirectory: configuration.dataDirectory,
                                      threadPool: threadPool, logger: logger, partitionExists: { topics.log($0, $1) != nil })
        if let url = configuration.remoteStorageURL {
            let store = try ObjectStoreURL(parsing: url).makeStore(logger: logger)
            let storage = RemoteLogStorage(store: store, cacheBytes: configuration.remoteCacheBytes, logger: logger)
            let tiering = TieringService(storage: storage, topics: topics, configuration: configuration, threadPool: threadPool, logger: logger)
            self.tiering = tiering
            listener.beforeBind = { try await tiering.restore() }
        } else {
            tiering = nil
        }
        let (notifier, producerIds, groups, tiering) = (self.notifier, self.producerIds, self.groups, self.tiering)
        listener.makeHandler = { port in
            RequestHandler(configuration: configuration, topics: topics, notifier: notifier, producerIds: producerIds,
                           groups: groups, tiering: tiering, threadPool: threadPool,
                           advertisedPort: configuration.advertisedPort ?? port, logger: logger)
        }
    }

    /// In start order; a ServiceGroup stops them in reverse, so tiering (whose store the
    /// request handlers read) stops after the listener.
    public var services: [any Service] { (tiering.map { [$0] } ?? []) + [listener, maintenance, groups] }

    /// Flushes and checkpoints every partition so the next start needs no recovery scan.
    public func shutdown() {
        groups.shutdown()
        topics.closeAll()
        logger.info("broker stopped; logs flushed and checkpointed")
    }
}
