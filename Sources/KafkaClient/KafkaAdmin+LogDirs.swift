import KafkaProtocol

extension KafkaAdmin {
    /// One partition's replica in one log dir, as DescribeLogDirs reports it.
    public struct LogDirPartition: Sendable, Hashable {
        public var broker: Int32
        /// The directory, or `remote:<url>` for a Tributary broker's tiered storage.
        public var logDir: String
        public var topic: String
        public var partition: Int32
        /// Bytes in this dir (for the remote dir: bytes in the store).
        public var sizeInBytes: Int64
        /// Kafka's offset lag; for a Tributary remote dir, the bytes waiting for upload.
        public var offsetLag: Int64
        /// Tributary remote dirs only: segments waiting for upload and segments in the store.
        public var segmentsWaiting: Int32?
        public var segmentsTiered: Int32?

        public var isRemote: Bool { logDir.hasPrefix("remote:") }
    }

    /// The tagged field a Tributary broker puts on remote log dir partitions.
    static let tieringStatusTag: UInt32 = 9000

    /// The log dirs of the brokers leading `topics`' partitions (DescribeLogDirs), with
    /// every partition of those topics found there.
    public func describeLogDirs(topics: [String]) async throws -> [LogDirPartition] {
        let metadata = try await describeTopics(topics)
        var brokers: Set<Int32> = []
        for t in metadata { for p in t.partitions where p.leader >= 0 { brokers.insert(p.leader) } }
        let request = DescribeLogDirsRequest(topics: metadata.map { .init(topic: $0.name, partitions: $0.partitions.map(\.partition)) })
        var out: [LogDirPartition] = []
        for broker in brokers.sorted() {
            let c = try await cluster.connection(to: broker)
            let response = try await c.send(request)
            try Self.check(response.errorCode, nil, "DescribeLogDirs on broker \(broker)")
            for dir in response.results {
                try Self.check(dir.errorCode, nil, "log dir \(dir.logDir) on broker \(broker)")
                for t in dir.topics {
                    for p in t.partitions {
                        var entry = LogDirPartition(broker: broker, logDir: dir.logDir, topic: t.name, partition: p.partitionIndex,
                                                    sizeInBytes: p.partitionSize, offsetLag: p.offsetLag)
                        if var details = p.unknownTaggedFields.first(where: { $0.tag == Self.tieringStatusTag })?.data,
                           let _ = details.readInteger(as: Int64.self),
                           let waiting = details.readInteger(as: Int32.self), let tiered = details.readInteger(as: Int32.self) {
                            entry.segmentsWaiting = waiting
                            entry.segmentsTiered = tiered
                        }
                        out.append(entry)
                    }
                }
            }
        }
        return out
    }
}
