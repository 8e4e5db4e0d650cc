import Foundation

/// Parses a Kafka `server.properties` file into a `BrokerConfiguration`, accepting the
/// names Kafka users already have.
public enum ServerProperties {
    public struct ParseError: Error, CustomStringConvertible {
        public var description: String
    }

    /// Parses `text`; returns the configuration and warnings (unknown keys, ignored ones).
    public static func apply(_ text: String, to base: BrokerConfiguration) throws -> (BrokerConfiguration, [String]) {
        var config = base
        var warnings: [String] = []
        var entries: [(String, String)] = []
        for raw in text.split(separator: "\n", omittingEmptySubsequences: false) {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") || line.hasPrefix("!") { continue }
            guard let eq = line.firstIndex(where: { $0 == "=" || $0 == ":" }) else {
                throw ParseError(description: "server.properties: line '\(line)' is not key=value")
            }
            entries.append((line[..<eq].trimmingCharacters(in: .whitespaces), line[line.index(after: eq)...].trimmingCharacters(in: .whitespaces)))
        }
        func long(_ key: String, _ value: String, min: Int64 = Int64.min) throws -> Int64 {
            guard let v = Int64(value), v >= min else {
                throw ParseError(description: "\(key): expected an integer\(min > Int64.min ? " >= \(min)" : ""), got '\(value)'")
            }
            return v
        }
        func bool(_ key: String, _ value: String) throws -> Bool {
            switch value.lowercased() {
            case "true": return true
            case "false": return false
            default: throw ParseError(description: "\(key): expected true or false, got '\(value)'")
            }
        }
        // Kafka lets ms override minutes override hours; apply in that order.
        let precedence = ["log.retention.hours": 0, "log.retention.minutes": 1, "log.retention.ms": 2, "log.roll.hours": 0, "log.roll.ms": 2]
        entries.sort { (precedence[$0.0] ?? 0) < (precedence[$1.0] ?? 0) }
        for (key, value) in entries {
            switch key {
            case "log.dirs", "log.dir":
                let first = value.split(separator: ",").first.map(String.init) ?? value
                if value.contains(",") { warnings.append("log.dirs: only one directory is used; using \(first)") }
                config.dataDirectory = first
            case "listeners":
                let (host, port) = try listener(key, value)
                config.host = host
                config.port = port
            case "advertised.listeners":
                let (host, port) = try listener(key, value)
                config.advertisedHost = host
                config.advertisedPort = port
            case "node.id", "broker.id":
                config.nodeId = Int32(try long(key, value, min: 0))
            case "num.partitions":
                config.numPartitions = Int32(try long(key, value, min: 1))
            case "auto.create.topics.enable":
                config.autoCreateTopics = try bool(key, value)
            case "log.retention.hours":
                let v = try long(key, value, min: -1)
                config.logDefaults.retentionMs = v < 0 ? -1 : v * 3_600_000
            case "log.retention.minutes":
                let v = try long(key, value, min: -1)
                config.logDefaults.retentionMs = v < 0 ? -1 : v * 60_000
            case "log.retention.ms":
                config.logDefaults.retentionMs = try long(key, value, min: -1)
            case "log.retention.bytes":
                config.logDefaults.retentionBytes = try long(key, value, min: -1)
            case "log.segment.bytes":
                config.logDefaults.segmentBytes = Int(try long(key, value, min: 14))
            case "log.roll.hours":
                config.logDefaults.segmentMs = try long(key, value, min: 1) * 3_600_000
            case "log.roll.ms":
                config.logDefaults.segmentMs = try long(key, value, min: 1)
            case "log.flush.interval.messages":
                config.logDefaults.flushMessages = try long(key, value, min: 1)
            case "log.flush.interval.ms":
                config.logDefaults.flushMs = try long(key, value, min: 0)
            case "log.index.interval.bytes":
                config.logDefaults.indexIntervalBytes = Int(try long(key, value, min: 0))
            case "message.max.bytes":
                config.logDefaults.maxMessageBytes = Int(try long(key, value, min: 0))
            case "log.message.timestamp.type":
                guard value == "CreateTime" || value == "LogAppendTime" else {
                    throw ParseError(description: "\(key): expected CreateTime or LogAppendTime, got '\(value)'")
                }
                config.logDefaults.logAppendTime = value == "LogAppendTime"
            case "socket.request.max.bytes":
                config.socketRequestMaxBytes = Int(try long(key, value, min: 1))
            case "queued.max.request.bytes":
                config.queuedMaxRequestBytes = Int(try long(key, value, min: -1))
            case "max.connections":
                config.maxConnections = Int(try long(key, value, min: 1))
            case "connection.max.inflight.request.bytes":
                config.connectionMaxInFlightBytes = Int(try long(key, value, min: 1))
            case "log.cleaner.backoff.ms":
                config.cleanerBackoffMs = try long(key, value, min: 1)
            case "log.retention.check.interval.ms":
                config.retentionCheckIntervalMs = try long(key, value, min: 1)
            case "log.flush.offset.checkpoint.interval.ms":
                config.checkpointIntervalMs = try long(key, value, min: 1)
            case "group.initial.rebalance.delay.ms":
                config.groups.initialRebalanceDelayMs = try long(key, value, min: 0)
            case "group.min.session.timeout.ms":
                config.groups.minSessionTimeoutMs = Int32(try long(key, value, min: 1))
            case "group.max.session.timeout.ms":
                config.groups.maxSessionTimeoutMs = Int32(try long(key, value, min: 1))
            case "group.max.size":
                config.groups.maxGroupSize = Int(try long(key, value, min: 1))
            case "offsets.retention.minutes":
                config.groups.offsetsRetentionMs = try long(key, value, min: 1) * 60_000
            case "offsets.retention.check.interval.ms":
                config.groups.offsetsRetentionCheckIntervalMs = try long(key, value, min: 1)
            case "offset.metadata.max.bytes":
                config.groups.offsetMetadataMaxBytes = Int(try long(key, value, min: 0))
            case "remote.storage.url":
                config.remoteStorageURL = value
            case "remote.log.storage.system.enable":
                guard value == "true" || value == "false" else { throw ParseError(description: "\(key): expected true or false, got '\(value)'") }
                config.logDefaults.remoteStorageEnable = value == "true"
            case "remote.cache.bytes":
                config.remoteCacheBytes = Int(try long(key, value, min: 1 << 20))
            case "remote.log.manager.task.interval.ms":
                config.remoteTaskIntervalMs = try long(key, value, min: 1)
            case "log.local.retention.ms":
                config.logDefaults.localRetentionMs = try long(key, value, min: -2)
            case "log.local.retention.bytes":
                config.logDefaults.localRetentionBytes = try long(key, value, min: -2)
            case "log.flush.scheduler.interval.ms":
                config.flushCheckIntervalMs = try long(key, value, min: 1)
            default:
                warnings.append("unknown setting '\(key)' ignored")
            }
        }
        return (config, warnings)
    }

    /// Parses `PLAINTEXT://host:port` (the first listener) or `host:port`.
    public static func listener(_ key: String, _ value: String) throws -> (String, Int) {
        var v = value.split(separator: ",").first.map(String.init) ?? value
        if let scheme = v.range(of: "://") {
            let name = v[..<scheme.lowerBound]
            guard name == "PLAINTEXT" else {
                throw ParseError(description: "\(key): only PLAINTEXT listeners are supported, got '\(name)'")
            }
            v = String(v[scheme.upperBound...])
        }
        return try hostPort(key, v)
    }

    /// Parses `host:port`, `[v6]:port` or `:port` (all interfaces).
    public static func hostPort(_ key: String, _ value: String) throws -> (String, Int) {
        guard let colon = value.lastIndex(of: ":"), let port = Int(value[value.index(after: colon)...]), (0...65535).contains(port) else {
            throw ParseError(description: "\(key): expected HOST:PORT, got '\(value)'")
        }
        var host = String(value[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        if host.isEmpty { host = "0.0.0.0" }
        return (host, port)
    }
}
