/// Per-partition log settings, with Kafka's names and defaults.
public struct LogConfig: Sendable, Hashable {
    /// `segment.bytes`: roll the active segment when it would grow past this. Default 1 GiB.
    public var segmentBytes: Int = 1 << 30
    /// `segment.ms`: roll a non-empty active segment this long after its first batch. Default 7 days.
    public var segmentMs: Int64 = 7 * 24 * 3_600_000
    /// `retention.ms`: delete closed segments whose newest record is older. -1: forever. Default 7 days.
    public var retentionMs: Int64 = 7 * 24 * 3_600_000
    /// `retention.bytes`: delete the oldest closed segments while the log is larger. -1: no limit.
    public var retentionBytes: Int64 = -1
    /// `flush.messages`: fsync after this many messages (acks=all always fsyncs). Default: never by count.
    public var flushMessages: Int64 = Int64.max
    /// `flush.ms`: fsync data older than this in the background. Default: never by time.
    public var flushMs: Int64 = Int64.max
    /// `index.interval.bytes`: add an offset/time index entry every this many bytes. Default 4096.
    public var indexIntervalBytes: Int = 4096
    /// `max.message.bytes`: the largest record batch accepted. Default 1 MiB + 12 bytes, as Kafka.
    public var maxMessageBytes: Int = 1_048_588
    /// `message.timestamp.type`: CreateTime (false) or LogAppendTime (true).
    public var logAppendTime: Bool = false
    /// `cleanup.policy` contains `delete`: retention by time and size applies.
    public var deleteOldSegments: Bool = true
    /// `cleanup.policy` contains `compact`: the cleaner keeps the latest record per key.
    public var compact: Bool = false
    /// `delete.retention.ms`: how long tombstones survive cleaning. Default 1 day.
    public var deleteRetentionMs: Int64 = 86_400_000
    /// `min.cleanable.dirty.ratio`: clean once this share of closed bytes is uncleaned. Default 0.5.
    public var minCleanableDirtyRatio: Double = 0.5
    /// `min.compaction.lag.ms`: records younger than this are never compacted. Default 0.
    public var minCompactionLagMs: Int64 = 0

    /// `remote.storage.enable`: closed segments are copied to object storage, and local
    /// retention (`local.retention.*`) then decides how long they also stay on disk.
    public var remoteStorageEnable: Bool = false
    /// `local.retention.ms`: with tiering, how long closed, uploaded segments stay on disk.
    /// -2 (the default): the same as `retention.ms`.
    public var localRetentionMs: Int64 = -2
    /// `local.retention.bytes`: with tiering, how large the local part may grow.
    /// -2 (the default): the same as `retention.bytes`.
    public var localRetentionBytes: Int64 = -2

    /// Whether this log tiers: compacted topics never do (their segments are rewritten).
    public var isTiered: Bool { remoteStorageEnable && !compact }

    /// The local retention in force: `local.retention.*`, or `retention.*` for -2.
    public var effectiveLocalRetentionMs: Int64 { localRetentionMs == -2 ? retentionMs : localRetentionMs }
    public var effectiveLocalRetentionBytes: Int64 { localRetentionBytes == -2 ? retentionBytes : localRetentionBytes }

    public init() {}
}
