import KafkaProtocol
import NIOCore

extension KafkaConsumer {
    /// Where to start in a partition that has no committed offset (Kafka's `auto.offset.reset`).
    public enum AutoOffsetReset: Sendable, Hashable {
        /// The first offset still in the log.
        case earliest
        /// The end of the log: only records written from now on. Java's default.
        case latest
        /// No reset: the consumer fails with `.noOffset` (Java's `none`).
        case none
    }

    /// Which records of transactions are visible (Kafka's `isolation.level`).
    public enum IsolationLevel: Int8, Sendable, Hashable {
        /// Every record, including those of open and aborted transactions. Java's default.
        case readUncommitted = 0
        /// Only committed transactional records, up to the last stable offset.
        case readCommitted = 1
    }

    /// The consumer's settings. Names and defaults follow the Java client's.
    public struct Configuration: Sendable {
        /// `bootstrap.servers`: `host:port` of one or more brokers to learn the cluster from.
        public var bootstrapServers: [String]
        /// `group.id`: needed for `subscribe` and for committing offsets; nil for a
        /// consumer that only uses `assign` and keeps its positions itself.
        public var groupId: String?
        /// `group.instance.id`: a static member keeps its assignment across restarts
        /// within the session timeout, and does not leave the group on close.
        public var groupInstanceId: String?
        /// `client.id`, sent with every request.
        public var clientId = "tributary-consumer"
        /// `auto.offset.reset`. Default `.latest`, as in Java.
        public var autoOffsetReset: AutoOffsetReset = .latest
        /// `enable.auto.commit`: commit the positions of returned records every
        /// `autoCommitIntervalMs`, before a rebalance and on close. Default true. A record
        /// counts as processed once the next one is asked for (at-least-once).
        public var enableAutoCommit = true
        /// `auto.commit.interval.ms`. Default 5000.
        public var autoCommitIntervalMs = 5000
        /// `session.timeout.ms`: the group evicts a member it has not heard from this
        /// long. Default 45000 (Kafka 3.0+).
        public var sessionTimeoutMs = 45_000
        /// `heartbeat.interval.ms`. Default 3000.
        public var heartbeatIntervalMs = 3000
        /// `max.poll.interval.ms`, sent as the rebalance timeout: how long the group waits
        /// for members to rejoin. Default 300000.
        public var maxPollIntervalMs = 300_000
        /// `max.poll.records`: the most records one `poll(timeout:)` returns. Default 500.
        /// (`records` hands them out one at a time and does not use it.)
        public var maxPollRecords = 500
        /// `fetch.min.bytes`: the broker answers a fetch once this much data is ready.
        /// Default 1.
        public var fetchMinBytes = 1
        /// `fetch.max.wait.ms`: or once this time passed. Default 500.
        public var fetchMaxWaitMs = 500
        /// `fetch.max.bytes`: the most data one fetch response carries (the first batch
        /// comes back whole even when larger). Default 52428800.
        public var fetchMaxBytes = 52_428_800
        /// `max.partition.fetch.bytes`: the most data per partition and fetch. Default 1048576.
        public var maxPartitionFetchBytes = 1_048_576
        /// `isolation.level`. Default `.readUncommitted`.
        public var isolationLevel: IsolationLevel = .readUncommitted
        /// `partition.assignment.strategy`, in order of preference; the group uses one
        /// every member supports. Default `[.range, .cooperativeSticky]`, as Java's: groups
        /// use range until every member also lists cooperative-sticky and the range entry
        /// is dropped, the upgrade path KIP-429 describes.
        public var partitionAssignmentStrategy: [PartitionAssignmentStrategy] = [.range, .cooperativeSticky]
        /// `request.timeout.ms`. Default 30000.
        public var requestTimeoutMs = 30_000
        /// `retry.backoff.ms`: the pause after a failed request. Default 100.
        public var retryBackoffMs = 100
        /// `reconnect.backoff.ms`: the pause before reconnecting to a broker whose last
        /// connection attempt failed; doubles with each further failure. Default 50.
        public var reconnectBackoffMs = 50
        /// `reconnect.backoff.max.ms`: the cap of that pause (jittered ±20%). Default 1000.
        public var reconnectBackoffMaxMs = 1000
        /// `metadata.max.age.ms`: metadata is refreshed at least this often, which is how
        /// the group leader notices new partitions. Default 300000.
        public var metadataMaxAgeMs = 300_000
        /// `allow.auto.create.topics`: whether subscribing may create topics on brokers
        /// that allow it. Default true.
        public var allowAutoCreateTopics = true
        /// `check.crcs`: verify every fetched batch's CRC32C. Default true.
        public var checkCRCs = true

        public init(bootstrapServers: [String], groupId: String? = nil) {
            self.bootstrapServers = bootstrapServers
            self.groupId = groupId
        }

        func validate() throws {
            func check(_ ok: Bool, _ what: String) throws {
                if !ok { throw KafkaClientError(.invalidArgument, what) }
            }
            try check(!bootstrapServers.isEmpty, "bootstrapServers is empty")
            try check(groupId.map { !$0.isEmpty } ?? true, "groupId must not be empty (use nil for no group)")
            try check(heartbeatIntervalMs > 0 && heartbeatIntervalMs < sessionTimeoutMs, "heartbeatIntervalMs must be positive and below sessionTimeoutMs")
            try check(autoCommitIntervalMs > 0, "autoCommitIntervalMs must be positive")
            try check(maxPollRecords > 0, "maxPollRecords must be positive")
            try check(fetchMaxWaitMs >= 0 && fetchMinBytes >= 0, "fetchMaxWaitMs and fetchMinBytes must not be negative")
            try check(fetchMaxBytes > 0 && maxPartitionFetchBytes > 0, "fetchMaxBytes and maxPartitionFetchBytes must be positive")
            try check(!partitionAssignmentStrategy.isEmpty, "partitionAssignmentStrategy is empty")
            try check(requestTimeoutMs > 0, "requestTimeoutMs must be positive")
            try check(reconnectBackoffMs >= 0 && reconnectBackoffMaxMs >= 0, "reconnectBackoffMs and reconnectBackoffMaxMs must not be negative")
        }
    }

    /// Called around rebalances; the group waits for these before it continues, so keep
    /// them short (commit, flush state, seek).
    public struct RebalanceListener: Sendable {
        /// Before partitions are taken away (before every rejoin: the eager protocol gives
        /// up the whole assignment). Positions can still be committed here.
        public var onPartitionsRevoked: @Sendable ([TopicPartition]) async -> Void
        /// After the new assignment arrived; seeks here take effect before any fetch.
        public var onPartitionsAssigned: @Sendable ([TopicPartition]) async -> Void
        /// When the partitions were already given to others (the member was evicted);
        /// committing is no longer possible. Calls `onPartitionsRevoked` by default, as Java does.
        public var onPartitionsLost: (@Sendable ([TopicPartition]) async -> Void)?

        public init(onPartitionsRevoked: @escaping @Sendable ([TopicPartition]) async -> Void = { _ in },
                    onPartitionsAssigned: @escaping @Sendable ([TopicPartition]) async -> Void = { _ in },
                    onPartitionsLost: (@Sendable ([TopicPartition]) async -> Void)? = nil) {
            self.onPartitionsRevoked = onPartitionsRevoked
            self.onPartitionsAssigned = onPartitionsAssigned
            self.onPartitionsLost = onPartitionsLost
        }
    }
}

/// A record as the consumer returns it. Key, value and header values are slices of the
/// fetched bytes, not copies.
public struct ConsumerRecord: Sendable, Hashable {
    public enum TimestampType: Sendable, Hashable {
        /// Set by the producer.
        case createTime
        /// Set by the broker when it appended the record.
        case logAppendTime
    }

    public var topic: String
    public var partition: Int32
    public var offset: Int64
    /// Milliseconds since the epoch.
    public var timestamp: Int64
    public var timestampType: TimestampType
    public var key: ByteBuffer?
    public var value: ByteBuffer?
    public var headers: [KafkaHeader]

    public var topicPartition: TopicPartition { TopicPartition(topic: topic, partition: partition) }

    /// The value as UTF-8 text (nil for a null value).
    public var valueString: String? { value.map { String(buffer: $0) } }
    /// The key as UTF-8 text (nil for a null key).
    public var keyString: String? { key.map { String(buffer: $0) } }
}
