import KafkaProtocol
import NIOCore

/// How the group leader divides partitions among members (the consumer protocol's
/// assignors). The names on the wire are Kafka's, so a group may mix this client with
/// Java, librdkafka and kafka-python members: whoever leads uses the same algorithm.
public enum PartitionAssignmentStrategy: String, Sendable, Hashable, CaseIterable {
    /// Java's `RangeAssignor` ("range"): per topic, members sorted by id get consecutive
    /// ranges, the first `partitions % members` one extra. Co-partitioned topics land
    /// together, which joins rely on.
    case range
    /// Java's `RoundRobinAssignor` ("roundrobin"): every partition of every topic, in
    /// order, dealt to members in turn (skipping members not subscribed to the topic).
    case roundRobin = "roundrobin"
    /// Java's `CooperativeStickyAssignor` ("cooperative-sticky"), with the incremental
    /// protocol (KIP-429): members keep reading their partitions through a rebalance and
    /// give up only those that move. A partition that moves is withheld for one round:
    /// its old owner revokes it and rejoins at once, and the next round hands it over, so
    /// no partition ever has two owners. The leader's algorithm keeps what members own,
    /// gives unowned partitions to the least loaded, then moves partitions from the most
    /// to the least loaded until counts differ by at most one; its result can differ from
    /// Java's in which partitions move, not in balance or stickiness.
    case cooperativeSticky = "cooperative-sticky"

    /// Whether the group uses the incremental protocol when this assignor is chosen.
    var isCooperative: Bool { self == .cooperativeSticky }

    /// The protocol name in JoinGroup.
    public var protocolName: String { rawValue }

    init?(protocolName: String) {
        self.init(rawValue: protocolName)
    }
}

/// A member's subscription as the leader sees it.
struct MemberSubscription: Sendable, Hashable {
    var memberId: String
    var groupInstanceId: String?
    var topics: [String]
    /// What the member holds now (cooperative and sticky assignors use it).
    var owned: [TopicPartition] = []
    /// The generation in which it got them (-1 unknown): a stale claim loses to a newer one.
    var generation: Int32 = -1

    /// Java's `MemberInfo` order: static members (by instance id) first, then the others
    /// by member id.
    static func javaOrder(_ a: MemberSubscription, _ b: MemberSubscription) -> Bool {
        switch (a.groupInstanceId, b.groupInstanceId) {
        case let (x?, y?): return x < y
        case (.some, nil): return true
        case (nil, .some): return false
        case (nil, nil): return a.memberId < b.memberId
        }
    }
}

enum PartitionAssignor {
    /// Assigns every partition of the subscribed topics that exist in
    /// `partitionCounts`; every member appears in the result, maybe with nothing.
    static func assign(_ strategy: PartitionAssignmentStrategy, members: [MemberSubscription],
                       partitionCounts: [String: Int32]) -> [String: [TopicPartition]] {
        var result = Dictionary(uniqueKeysWithValues: members.map { ($0.memberId, [TopicPartition]()) })
        switch strategy {
        case .range:
            var byTopic: [String: [MemberSubscription]] = [:]
            for m in members {
                for t in Set(m.topics) where partitionCounts[t] != nil { byTopic[t, default: []].append(m) }
            }
            for topic in byTopic.keys.sorted() {
                let consumers = byTopic[topic]!.sorted(by: MemberSubscription.javaOrder)
                let count = Int(partitionCounts[topic]!)
                let per = count / consumers.count
                let extra = count % consumers.count
                for (i, c) in consumers.enumerated() {
                    let start = per * i + min(i, extra)
                    let length = per + (i < extra ? 1 : 0)
                    for p in start..<(start + length) {
                        result[c.memberId]!.append(TopicPartition(topic: topic, partition: Int32(p)))
                    }
                }
            }
        case .roundRobin:
            let consumers = members.sorted(by: MemberSubscription.javaOrder)
            guard !consumers.isEmpty else { return result }
            let topics = Set(members.flatMap(\.topics)).filter { partitionCounts[$0] != nil }.sorted()
            let subscriptions = consumers.map { Set($0.topics) }
            var next = 0
            for topic in topics {
                for p in 0..<partitionCounts[topic]! {
                    // The next member in the circle that subscribes to the topic.
                    while !subscriptions[next % consumers.count].contains(topic) { next += 1 }
                    result[consumers[next % consumers.count].memberId]!.append(TopicPartition(topic: topic, partition: p))
                    next += 1
                }
            }
        case .cooperativeSticky:
            result = cooperativeSticky(members: members, partitionCounts: partitionCounts)
        }
        return result
    }

    /// Sticky and balanced, then without the partitions that change owner this round:
    /// a partition another member still claims is revoked by it first and handed over in
    /// the next round, so no partition ever has two owners.
    static func cooperativeSticky(members: [MemberSubscription], partitionCounts: [String: Int32]) -> [String: [TopicPartition]] {
        let sticky = stickyAssignment(members: members, partitionCounts: partitionCounts)
        var claimants: [TopicPartition: Set<String>] = [:]
        for m in members {
            for tp in m.owned { claimants[tp, default: []].insert(m.memberId) }
        }
        var out: [String: [TopicPartition]] = [:]
        for (member, tps) in sticky {
            out[member] = tps.filter { claimants[$0, default: []].subtracting([member]).isEmpty }
        }
        return out
    }

    /// Keeps owned partitions (the newest claim wins a conflict), gives the rest to the
    /// least loaded eligible member, then evens counts out moving as few as possible.
    static func stickyAssignment(members: [MemberSubscription], partitionCounts: [String: Int32]) -> [String: [TopicPartition]] {
        let ordered = members.sorted(by: MemberSubscription.javaOrder)
        let subscriptions = Dictionary(uniqueKeysWithValues: ordered.map { ($0.memberId, Set($0.topics)) })
        var all: [TopicPartition] = []
        for topic in Set(members.flatMap(\.topics)).sorted() {
            guard let n = partitionCounts[topic] else { continue }
            for p in 0..<n { all.append(TopicPartition(topic: topic, partition: p)) }
        }
        let valid = Set(all)
        var claim: [TopicPartition: (member: String, generation: Int32)] = [:]
        for m in ordered {
            for tp in m.owned where valid.contains(tp) && subscriptions[m.memberId]!.contains(tp.topic) {
                if let other = claim[tp], other.generation >= m.generation { continue }
                claim[tp] = (m.memberId, m.generation)
            }
        }
        var assignment = Dictionary(uniqueKeysWithValues: ordered.map { ($0.memberId, Set<TopicPartition>()) })
        for (tp, c) in claim { assignment[c.member]!.insert(tp) }
        // Members owning more than a fair share give up the excess first, so unowned
        // partitions and excess go to the least loaded together.
        let eligible = { (tp: TopicPartition) in ordered.filter { subscriptions[$0.memberId]!.contains(tp.topic) }.map(\.memberId) }
        for tp in all where claim[tp] == nil {
            let candidates = eligible(tp)
            guard let target = candidates.min(by: { assignment[$0]!.count < assignment[$1]!.count }) else { continue }
            assignment[target]!.insert(tp)
        }
        // Balance: move from the most to the least loaded member that can take it.
        var moved = true
        while moved {
            moved = false
            let byLoad = ordered.map(\.memberId).sorted { (assignment[$0]!.count, $0) > (assignment[$1]!.count, $1) }
            outer: for donor in byLoad {
                for receiver in byLoad.reversed() where assignment[donor]!.count - assignment[receiver]!.count > 1 {
                    // The donor's last partitions (in order) that the receiver can read.
                    if let tp = assignment[donor]!.sorted().last(where: { subscriptions[receiver]!.contains($0.topic) }) {
                        assignment[donor]!.remove(tp)
                        assignment[receiver]!.insert(tp)
                        moved = true
                        break outer
                    }
                }
            }
        }
        return assignment.mapValues { $0.sorted() }
    }
}

extension ConsumerProtocolSubscription {
    /// The version this client writes; Java writes the same, and every client reads
    /// newer versions with the fields it knows.
    static let clientVersion: Int16 = 3

    func encoded() throws -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeInteger(Self.clientVersion)
        try encode(into: &buffer, version: Self.clientVersion)
        return buffer
    }

    static func decode(_ bytes: ByteBuffer) throws -> ConsumerProtocolSubscription {
        var bytes = bytes
        guard let version = bytes.readInteger(as: Int16.self), version >= 0 else {
            throw KafkaClientError(.malformedResponse, "a member's subscription has no version")
        }
        return try ConsumerProtocolSubscription(from: &bytes, version: min(version, validVersions.upperBound))
    }
}

extension ConsumerProtocolAssignment {
    static let clientVersion: Int16 = 3

    init(_ partitions: [KafkaAdmin.TopicPartition]) {
        let byTopic = Dictionary(grouping: partitions, by: \.topic)
        self.init(assignedPartitions: byTopic.keys.sorted().map { t in
            .init(topic: t, partitions: byTopic[t]!.map(\.partition).sorted())
        })
    }

    func encoded() throws -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeInteger(Self.clientVersion)
        try encode(into: &buffer, version: Self.clientVersion)
        return buffer
    }

    /// The partitions in an assignment; an empty buffer (no assignment) is none.
    static func decodePartitions(_ bytes: ByteBuffer) throws -> [KafkaAdmin.TopicPartition] {
        var bytes = bytes
        guard bytes.readableBytes > 0 else { return [] }
        guard let version = bytes.readInteger(as: Int16.self), version >= 0 else {
            throw KafkaClientError(.malformedResponse, "an assignment has no version")
        }
        let assignment = try ConsumerProtocolAssignment(from: &bytes, version: min(version, validVersions.upperBound))
        return assignment.assignedPartitions.flatMap { t in t.partitions.map { KafkaAdmin.TopicPartition(topic: t.topic, partition: $0) } }
    }
}
