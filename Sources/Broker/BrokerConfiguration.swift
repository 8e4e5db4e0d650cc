import LogStore

/// Everything the broker needs to start, with Kafka's defaults. The CLI and the
/// properties-file parser build one of these; nothing here reads files.
public struct BrokerConfiguration: Sendable {
    /// Where to listen (`listeners`). Default 127.0.0.1:9092.
    public var host: String = "127.0.0.1"
    public var port: Int = 9092
    /// What clients are told to connect to (`advertised.listeners`); defaults to the
    /// listen address (with the real port when `port` is 0).
    public var advertisedHost: String?
    public var advertisedPort: Int?
    /// `log.dirs`: the data directory. Default ./tributary-data.
    public var dataDirectory: String = "tributary-data"
    /// `node.id`.
    public var nodeId: Int32 = 0
    /// `num.partitions`: partitions of auto-created topics. Default 1.
    public var numPartitions: Int32 = 1
    /// `auto.create.topics.enable`. Default true.
    public var autoCreateTopics: Bool = true
    /// `socket.request.max.bytes`: the largest request frame accepted. Default 100 MiB.
    public var socketRequestMaxBytes: Int = 104_857_600
    /// `queued.max.request.bytes`: request bytes all connections together may have in
    /// flight (read, not yet answered); further reads wait. -1: no global limit (Kafka's default).
    public var queuedMaxRequestBytes: Int = -1
    /// Request bytes one connection may have in flight before its reads wait. Default 100 MiB.
    public var connectionMaxInFlightBytes: Int = 104_857_600
    /// `max.connections`: connections beyond this are closed at once, with a log line.
    public var maxConnections: Int = Int(Int32.max)
    /// `log.retention.check.interval.ms`: how often retention runs. Default 5 minutes.
    public var retentionCheckIntervalMs: Int64 = 300_000
    /// `log.cleaner.backoff.ms`: how often compacted topics are checked for cleaning. Default 15 s.
    public var cleanerBackoffMs: Int64 = 15_000
    /// `log.flush.scheduler.interval.ms`: how often the flush policy is checked. Default 1 s
    /// (Kafka's is Long.MAX; ours checks often because `flush.ms` is cheap to evaluate).
    public var flushCheckIntervalMs: Int64 = 1000
    /// `log.flush.offset.checkpoint.interval.ms`: how often recovery points are written. Default 60 s.
    public var checkpointIntervalMs: Int64 = 60_000
    /// Defaults for every topic (the `log.*` broker settings).
    public var logDefaults = LogConfig()
    /// `remote.storage.url`: where tiered segments go (`file:///path` or `s3://bucket/prefix`).
    /// nil: no tiering. Topics tier when `remote.storage.enable` is true for them (the
    /// broker default `remote.log.storage.system.enable` sets it for all).
    public var remoteStorageURL: String?
    /// `remote.cache.bytes`: memory for segment chunks read back from the store. Default 256 MiB.
    public var remoteCacheBytes: Int = 256 << 20
    /// `remote.log.manager.task.interval.ms`: how often closed segments are uploaded and
    /// retention applied in the store. Default 30 s, as Kafka.
    public var remoteTaskIntervalMs: Int64 = 30_000
    /// Consumer group coordinator settings (`group.*`, `offsets.*`).
    public var groups = GroupCoordinator.Configuration()

    public init() {}

    public var effectiveAdvertisedHost: String {
        if let advertisedHost { return advertisedHost }
        return host == "0.0.0.0" || host == "::" ? "127.0.0.1" : host
    }
}
