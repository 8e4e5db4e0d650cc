import LogStore

/// A topic-level setting Kafka users know, how to validate it, and where it lands.
struct TopicConfigDefinition: Sendable {
    enum Kind: Sendable { case long, int, boolean, string, double, list }
    let name: String
    /// The broker setting that supplies the default (`log.retention.ms` for `retention.ms`).
    let brokerName: String
    let kind: Kind
    let minimum: Int64?
    let allowed: [String]?
    let documentation: String
    /// Reads the effective value from a LogConfig, for settings the log enforces.
    let read: (@Sendable (LogConfig) -> String)?
    /// Applies a validated value to a LogConfig.
    let apply: (@Sendable (inout LogConfig, String) -> Void)?
    /// A fixed default for settings stored but not enforced by the log itself.
    let fixedDefault: String?

    func validate(_ value: String) -> String? {
        switch kind {
        case .long, .int:
            guard let v = Int64(value.trimmingCharacters(in: .whitespaces)) else { return "\(name) must be an integer, got '\(value)'" }
            if kind == .int, v > Int64(Int32.max) { return "\(name) must fit in 32 bits, got \(v)" }
            if let minimum, v < minimum { return "\(name) must be at least \(minimum), got \(v)" }
        case .double:
            guard let v = Double(value), v >= 0, v <= 1 else { return "\(name) must be a number between 0 and 1, got '\(value)'" }
        case .boolean:
            guard ["true", "false"].contains(value.lowercased()) else { return "\(name) must be true or false, got '\(value)'" }
        case .string:
            if let allowed, !allowed.contains(value) { return "\(name) must be one of \(allowed.joined(separator: ", ")), got '\(value)'" }
        case .list:
            let items = value.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            if let allowed, items.isEmpty || !items.allSatisfy(allowed.contains) {
                return "\(name) must be a list of \(allowed.joined(separator: ", ")), got '\(value)'"
            }
        }
        return nil
    }

    func defaultValue(_ defaults: LogConfig) -> String {
        read?(defaults) ?? fixedDefault ?? ""
    }
}

private func long(_ name: String, _ broker: String, min: Int64, _ doc: String, _ key: WritableKeyPath<LogConfig, Int64> & Sendable) -> TopicConfigDefinition {
    TopicConfigDefinition(name: name, brokerName: broker, kind: .long, minimum: min, allowed: nil, documentation: doc,
                          read: { String($0[keyPath: key]) }, apply: { $0[keyPath: key] = Int64($1)! }, fixedDefault: nil)
}

private func int(_ name: String, _ broker: String, min: Int64, _ doc: String, _ key: WritableKeyPath<LogConfig, Int> & Sendable) -> TopicConfigDefinition {
    TopicConfigDefinition(name: name, brokerName: broker, kind: .int, minimum: min, allowed: nil, documentation: doc,
                          read: { String($0[keyPath: key]) }, apply: { $0[keyPath: key] = Int($1)! }, fixedDefault: nil)
}

private func stored(_ name: String, _ broker: String, _ kind: TopicConfigDefinition.Kind, _ def: String, min: Int64? = nil,
                    allowed: [String]? = nil, _ doc: String) -> TopicConfigDefinition {
    TopicConfigDefinition(name: name, brokerName: broker, kind: kind, minimum: min, allowed: allowed, documentation: doc,
                          read: nil, apply: nil, fixedDefault: def)
}

enum TopicConfigs {
    static let all: [TopicConfigDefinition] = [
        TopicConfigDefinition(name: "cleanup.policy", brokerName: "log.cleanup.policy", kind: .list, minimum: nil,
                              allowed: ["delete", "compact"],
                              documentation: "delete: drop old segments by retention; compact: keep the latest record per key.",
                              read: { [$0.deleteOldSegments ? "delete" : nil, $0.compact ? "compact" : nil].compactMap { $0 }.joined(separator: ",") },
                              apply: { config, value in
                                  let items = value.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
                                  config.deleteOldSegments = items.contains("delete")
                                  config.compact = items.contains("compact")
                              }, fixedDefault: nil),
        long("retention.ms", "log.retention.ms", min: -1, "Delete closed segments older than this; -1 keeps them forever.", \.retentionMs),
        long("retention.bytes", "log.retention.bytes", min: -1, "Delete the oldest closed segments while a partition is larger; -1: no limit.", \.retentionBytes),
        int("segment.bytes", "log.segment.bytes", min: 14, "Roll the active segment at this size.", \.segmentBytes),
        long("segment.ms", "log.roll.ms", min: 1, "Roll the active segment after this long.", \.segmentMs),
        int("max.message.bytes", "message.max.bytes", min: 0, "The largest record batch accepted.", \.maxMessageBytes),
        long("flush.messages", "log.flush.interval.messages", min: 1, "fsync after this many messages.", \.flushMessages),
        long("flush.ms", "log.flush.interval.ms", min: 0, "fsync data older than this.", \.flushMs),
        int("index.interval.bytes", "log.index.interval.bytes", min: 0, "Bytes between offset index entries.", \.indexIntervalBytes),
        TopicConfigDefinition(name: "message.timestamp.type", brokerName: "log.message.timestamp.type", kind: .string, minimum: nil,
                              allowed: ["CreateTime", "LogAppendTime"], documentation: "Whose clock stamps records.",
                              read: { $0.logAppendTime ? "LogAppendTime" : "CreateTime" },
                              apply: { $0.logAppendTime = $1 == "LogAppendTime" }, fixedDefault: nil),
        stored("min.insync.replicas", "min.insync.replicas", .int, "1", min: 1, "Accepted for compatibility; a single node is always in sync."),
        stored("compression.type", "compression.type", .string, "producer",
               allowed: ["producer", "uncompressed", "gzip", "snappy", "lz4", "zstd"],
               "Batches are stored as the producer compressed them (producer)."),
        long("delete.retention.ms", "log.cleaner.delete.retention.ms", min: 0, "How long tombstones stay on compacted topics.", \.deleteRetentionMs),
        TopicConfigDefinition(name: "min.cleanable.dirty.ratio", brokerName: "log.cleaner.min.cleanable.ratio", kind: .double, minimum: nil,
                              allowed: nil, documentation: "Dirty ratio that triggers compaction.",
                              read: { String($0.minCleanableDirtyRatio) }, apply: { $0.minCleanableDirtyRatio = Double($1)! }, fixedDefault: nil),
        long("min.compaction.lag.ms", "log.cleaner.min.compaction.lag.ms", min: 0, "Minimum age before a record may be compacted.", \.minCompactionLagMs),
        TopicConfigDefinition(name: "remote.storage.enable", brokerName: "remote.log.storage.system.enable", kind: .boolean, minimum: nil,
                              allowed: nil, documentation: "Tier closed segments to object storage (the broker's remote.storage.url).",
                              read: { String($0.remoteStorageEnable) }, apply: { $0.remoteStorageEnable = $1.lowercased() == "true" },
                              fixedDefault: nil),
        long("local.retention.ms", "log.local.retention.ms", min: -2, "Local retention when tiering; -2: same as retention.ms.", \.localRetentionMs),
        long("local.retention.bytes", "log.local.retention.bytes", min: -2, "Local retention when tiering; -2: same as retention.bytes.", \.localRetentionBytes),
    ]

    static let byName: [String: TopicConfigDefinition] = Dictionary(uniqueKeysWithValues: all.map { ($0.name, $0) })

    /// Validates a set of overrides; returns the first problem.
    static func validate(_ configs: [String: String]) -> String? {
        for (name, value) in configs.sorted(by: { $0.key < $1.key }) {
            guard let def = byName[name] else { return "unknown topic config '\(name)'" }
            if let problem = def.validate(value) { return problem }
        }
        // As in Kafka: compaction rewrites segments, which tiered copies cannot follow.
        if configs["remote.storage.enable"]?.lowercased() == "true",
           let policy = configs["cleanup.policy"], policy.contains("compact") {
            return "remote.storage.enable=true cannot be combined with cleanup.policy=\(policy)"
        }
        return nil
    }

    /// The log settings for a topic: broker defaults with the topic's overrides applied.
    static func logConfig(defaults: LogConfig, overrides: [String: String]) -> LogConfig {
        var config = defaults
        for (name, value) in overrides {
            byName[name]?.apply?(&config, value)
        }
        return config
    }
}
