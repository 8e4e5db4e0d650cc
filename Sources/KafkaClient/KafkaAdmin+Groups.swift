import KafkaProtocol

extension KafkaAdmin {
    public struct GroupListing: Sendable, Hashable {
        public var groupId: String
        public var protocolType: String
        /// Kafka's state name ("Stable", "Empty", ...), or "" from brokers before v4.
        public var state: String
    }

    public struct GroupMember: Sendable, Hashable {
        public var memberId: String
        public var groupInstanceId: String?
        public var clientId: String
        public var clientHost: String
        /// The partitions assigned to the member (consumer protocol only).
        public var assignment: [String: [Int32]]
    }

    public struct GroupDescription: Sendable, Hashable {
        public var groupId: String
        public var state: String
        public var protocolType: String
        public var protocolName: String
        public var members: [GroupMember]
    }

    public struct TopicPartition: Sendable, Hashable, Comparable {
        public var topic: String
        public var partition: Int32
        public init(topic: String, partition: Int32) {
            self.topic = topic
            self.partition = partition
        }
        public static func < (a: Self, b: Self) -> Bool { (a.topic, a.partition) < (b.topic, b.partition) }
    }

    /// The connection to the coordinator of `group` (FindCoordinator).
    func coordinator(for group: String) async throws -> KafkaConnection {
        let any = try await cluster.anyConnection()
        let version = try any.version(for: FindCoordinatorRequest.self)
        let request = version >= 4
            ? FindCoordinatorRequest(keyType: 0, coordinatorKeys: [group])
            : FindCoordinatorRequest(key: group, keyType: 0)
        let response = try await any.send(request, version: version)
        let (code, message, node) = version >= 4
            ? (response.coordinators.first?.errorCode ?? 0, response.coordinators.first?.errorMessage, response.coordinators.first?.nodeId ?? -1)
            : (response.errorCode, response.errorMessage, response.nodeId)
        try Self.check(code, message, "cannot find the coordinator of group '\(group)'")
        return try await cluster.connection(to: node)
    }

    public func listGroups() async throws -> [GroupListing] {
        // Groups live on their coordinators: ask every broker.
        _ = try await cluster.refreshMetadata(topics: [])
        var out: [GroupListing] = []
        for node in await cluster.brokers.keys.sorted() {
            let c = try await cluster.connection(to: node)
            let response = try await c.send(ListGroupsRequest())
            try Self.check(response.errorCode, nil, "cannot list groups on broker \(node)")
            out += response.groups.map { GroupListing(groupId: $0.groupId, protocolType: $0.protocolType, state: $0.groupState) }
        }
        return out.sorted { $0.groupId < $1.groupId }
    }

    public func describeGroup(_ group: String) async throws -> GroupDescription {
        let c = try await coordinator(for: group)
        let response = try await c.send(DescribeGroupsRequest(groups: [group]))
        guard let g = response.groups.first else { throw KafkaClientError(.malformedResponse, "no description of group '\(group)'") }
        try Self.check(g.errorCode, nil, "cannot describe group '\(group)'")
        return GroupDescription(
            groupId: g.groupId, state: g.groupState, protocolType: g.protocolType, protocolName: g.protocolData,
            members: g.members.map { m in
                var assignment: [String: [Int32]] = [:]
                if g.protocolType == "consumer", m.memberAssignment.readableBytes >= 2 {
                    var bytes = m.memberAssignment
                    let version = bytes.readInteger(as: Int16.self) ?? 0
                    if let decoded = try? ConsumerProtocolAssignment(from: &bytes, version: min(version, ConsumerProtocolAssignment.validVersions.upperBound)) {
                        for tp in decoded.assignedPartitions { assignment[tp.topic, default: []] += tp.partitions }
                    }
                }
                return GroupMember(memberId: m.memberId, groupInstanceId: m.groupInstanceId, clientId: m.clientId,
                                   clientHost: m.clientHost, assignment: assignment)
            })
    }

    public func deleteGroups(_ groups: [String]) async throws {
        for group in groups {
            let c = try await coordinator(for: group)
            let response = try await c.send(DeleteGroupsRequest(groupsNames: [group]))
            for r in response.results { try Self.check(r.errorCode, nil, "cannot delete group '\(r.groupId)'") }
        }
    }

    /// The group's committed offsets (all partitions it has committed).
    public func committedOffsets(_ group: String) async throws -> [TopicPartition: Int64] {
        let c = try await coordinator(for: group)
        let version = try c.version(for: OffsetFetchRequest.self)
        let response: OffsetFetchResponse
        if version >= 8 {
            response = try await c.send(OffsetFetchRequest(groups: [.init(groupId: group, topics: nil)]), version: version)
            guard let g = response.groups.first else { return [:] }
            try Self.check(g.errorCode, nil, "cannot fetch offsets of group '\(group)'")
            var out: [TopicPartition: Int64] = [:]
            for t in g.topics {
                for p in t.partitions where p.committedOffset >= 0 {
                    try Self.check(p.errorCode, nil, "offset of \(t.name)-\(p.partitionIndex)")
                    out[TopicPartition(topic: t.name, partition: p.partitionIndex)] = p.committedOffset
                }
            }
            return out
        }
        // Null topics ("all partitions") needs v2+.
        response = try await c.send(OffsetFetchRequest(groupId: group, topics: nil), version: max(version, 2))
        try Self.check(response.errorCode, nil, "cannot fetch offsets of group '\(group)'")
        var out: [TopicPartition: Int64] = [:]
        for t in response.topics {
            for p in t.partitions where p.committedOffset >= 0 {
                out[TopicPartition(topic: t.name, partition: p.partitionIndex)] = p.committedOffset
            }
        }
        return out
    }

    /// Commits `offsets` for a group that has no active members (as
    /// kafka-consumer-groups.sh --reset-offsets does): generation -1, no member id.
    public func alterCommittedOffsets(_ group: String, _ offsets: [TopicPartition: Int64]) async throws {
        let c = try await coordinator(for: group)
        let byTopic = Dictionary(grouping: offsets.keys.sorted(), by: \.topic)
        let request = OffsetCommitRequest(
            groupId: group, generationIdOrMemberEpoch: -1, memberId: "",
            topics: byTopic.keys.sorted().map { topic in
                .init(name: topic, partitions: byTopic[topic]!.map { .init(partitionIndex: $0.partition, committedOffset: offsets[$0]!, committedMetadata: "") })
            })
        let response = try await c.send(request)
        for t in response.topics {
            for p in t.partitions { try Self.check(p.errorCode, nil, "cannot commit \(t.name)-\(p.partitionIndex) for group '\(group)'") }
        }
    }

    /// ListOffsets for many partitions: -2 earliest, -1 latest, or a timestamp (ms), which
    /// gives the first offset at or after it (or the end of the log when none is).
    public func listOffsets(_ partitions: [TopicPartition], at spec: Int64) async throws -> [TopicPartition: Int64] {
        let metadata = try await cluster.refreshMetadata(topics: Array(Set(partitions.map(\.topic))).sorted())
        var leaders: [TopicPartition: Int32] = [:]
        for t in metadata.topics {
            try Self.check(t.errorCode, nil, "topic '\(t.name ?? "?")'")
            for p in t.partitions { leaders[TopicPartition(topic: t.name ?? "", partition: p.partitionIndex)] = p.leaderId }
        }
        var out: [TopicPartition: Int64] = [:]
        for (leader, group) in Dictionary(grouping: partitions, by: { leaders[$0] ?? -1 }) {
            guard leader >= 0 else { throw KafkaClientError(.brokerError, "no leader for \(group.map { "\($0.topic)-\($0.partition)" })") }
            let c = try await cluster.connection(to: leader)
            let byTopic = Dictionary(grouping: group, by: \.topic)
            let request = ListOffsetsRequest(replicaId: -1, topics: byTopic.keys.sorted().map { topic in
                .init(name: topic, partitions: byTopic[topic]!.map { .init(partitionIndex: $0.partition, timestamp: spec) })
            })
            let response = try await c.send(request, version: try c.version(for: ListOffsetsRequest.self, upTo: 7))
            for t in response.topics {
                for p in t.partitions {
                    try Self.check(p.errorCode, nil, "offset of \(t.name)-\(p.partitionIndex)")
                    out[TopicPartition(topic: t.name, partition: p.partitionIndex)] = p.offset
                }
            }
        }
        if spec >= 0 {
            // No record at or after the time: the end of the log, as Kafka's tools do.
            let missing = out.filter { $0.value < 0 }.map(\.key)
            if !missing.isEmpty {
                let ends = try await listOffsets(missing, at: -1)
                for (k, v) in ends { out[k] = v }
            }
        }
        return out
    }
}
