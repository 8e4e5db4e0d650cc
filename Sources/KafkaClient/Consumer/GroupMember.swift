import KafkaProtocol
import Logging
import NIOCore

/// This consumer's membership in its group, spoken with the group coordinator over the
/// classic consumer protocol: FindCoordinator, JoinGroup, SyncGroup, Heartbeat,
/// LeaveGroup, OffsetCommit and OffsetFetch.
///
/// The coordinator gets its own connection, as the Java client gives it: brokers answer a
/// connection's requests in order, and a JoinGroup that waits out a rebalance must not
/// hold up fetches (nor a long-polling fetch delay heartbeats).
actor GroupMember {
    struct Assignment: Sendable {
        var generationId: Int32
        var partitions: [TopicPartition]
        /// The assignor the group chose; decides between the eager and incremental protocols.
        var strategy: PartitionAssignmentStrategy?
    }

    /// Why the member must (re)join.
    enum RejoinReason: Sendable {
        /// The group is rebalancing; the assignment is revoked and the member rejoins.
        case rebalance
        /// The member lost its generation: its partitions may already be someone else's.
        case lost
    }

    let groupId: String
    private let configuration: KafkaConsumer.Configuration
    private let cluster: KafkaCluster
    private let logger: Logger
    private var coordinator: KafkaConnection?
    private(set) var memberId = ""
    private(set) var generationId: Int32 = -1
    private var protocolName: String?

    init(groupId: String, configuration: KafkaConsumer.Configuration, cluster: KafkaCluster, logger: Logger) {
        self.groupId = groupId
        self.configuration = configuration
        self.cluster = cluster
        var logger = logger
        logger[metadataKey: LogKey.group] = "\(groupId)"
        self.logger = logger
    }

    var isStable: Bool { generationId >= 0 && !memberId.isEmpty }

    // MARK: coordinator

    /// The coordinator's connection, found with FindCoordinator when unknown or broken.
    func coordinatorConnection() async throws -> KafkaConnection {
        if let c = coordinator, c.isActive { return c }
        coordinator = nil
        let any = try await cluster.anyConnection()
        let version = try any.version(for: FindCoordinatorRequest.self)
        let request = version >= 4
            ? FindCoordinatorRequest(keyType: 0, coordinatorKeys: [groupId])
            : FindCoordinatorRequest(key: groupId, keyType: 0)
        let response = try await any.send(request, version: version)
        let (code, message, host, port): (Int16, String?, String, Int32)
        if version >= 4 {
            guard let c = response.coordinators.first else { throw KafkaClientError(.malformedResponse, "FindCoordinator: no coordinator") }
            (code, message, host, port) = (c.errorCode, c.errorMessage, c.host, c.port)
        } else {
            (code, message, host, port) = (response.errorCode, response.errorMessage, response.host, response.port)
        }
        guard code == 0 else { throw KafkaClientError.broker(KafkaErrorCode(rawValue: code), "find the coordinator of '\(groupId)'", message: message) }
        let connection = try await KafkaConnection.connect(host: host, port: Int(port), clientId: configuration.clientId,
                                                           requestTimeout: .milliseconds(configuration.requestTimeoutMs))
        coordinator = connection
        logger.debug("group coordinator", metadata: ["kafka.coordinator": "\(host):\(port)"])
        return connection
    }

    /// Forgets the coordinator after NOT_COORDINATOR and the like.
    func coordinatorLost() {
        coordinator?.close()
        coordinator = nil
    }

    private static func isCoordinatorError(_ code: KafkaErrorCode) -> Bool {
        code == .notCoordinator || code == .coordinatorNotAvailable
    }

    // MARK: join and sync

    /// Joins the group and returns this member's assignment; leads the assignment when the
    /// coordinator picks this member. Throws `KafkaClientError` for errors to back off
    /// from (retriable ones) or give up on.
    func join(topics: Set<String>, owned: [TopicPartition]) async throws -> Assignment {
        while true {
            let c = try await coordinatorConnection()
            let byTopic = Dictionary(grouping: owned, by: \.topic)
            let subscription = try ConsumerProtocolSubscription(
                topics: topics.sorted(),
                ownedPartitions: byTopic.keys.sorted().map { .init(topic: $0, partitions: byTopic[$0]!.map(\.partition).sorted()) },
                generationId: generationId).encoded()
            let request = JoinGroupRequest(
                groupId: groupId, sessionTimeoutMs: Int32(configuration.sessionTimeoutMs),
                rebalanceTimeoutMs: Int32(configuration.maxPollIntervalMs), memberId: memberId,
                groupInstanceId: configuration.groupInstanceId, protocolType: "consumer",
                protocols: configuration.partitionAssignmentStrategy.map { .init(name: $0.protocolName, metadata: subscription) })
            let version = try c.version(for: JoinGroupRequest.self)
            // JoinGroup waits for every member to rejoin, up to the rebalance timeout.
            let timeout = Duration.milliseconds(configuration.maxPollIntervalMs + 5000)
            let response: JoinGroupResponse
            do {
                response = try await c.send(request, version: version, timeout: timeout)
            } catch let error as KafkaClientError where error.isRetriable {
                coordinatorLost()
                throw error
            }
            let code = KafkaErrorCode(rawValue: response.errorCode)
            switch code {
            case .none:
                break
            case .memberIdRequired:
                // KIP-394: the coordinator hands out the id first; join again with it.
                memberId = response.memberId
                continue
            case .unknownMemberId:
                memberId = ""
                continue
            case .rebalanceInProgress:
                continue
            case _ where Self.isCoordinatorError(code):
                coordinatorLost()
                throw KafkaClientError.broker(code, "join group '\(groupId)'")
            default:
                throw KafkaClientError.broker(code, "join group '\(groupId)'")
            }
            memberId = response.memberId
            generationId = response.generationId
            protocolName = response.protocolName
            logger.debug("joined group", metadata: [LogKey.member: "\(memberId)", LogKey.generation: "\(generationId)",
                                                    "kafka.leader": "\(response.leader == memberId)", "kafka.protocol": "\(response.protocolName ?? "?")"])
            var assignments: [SyncGroupRequest.SyncGroupRequestAssignment] = []
            if response.leader == response.memberId {
                assignments = try await lead(response)
            }
            let sync = SyncGroupRequest(groupId: groupId, generationId: generationId, memberId: memberId,
                                        groupInstanceId: configuration.groupInstanceId, protocolType: "consumer",
                                        protocolName: response.protocolName, assignments: assignments)
            let syncResponse: SyncGroupResponse
            do {
                syncResponse = try await c.send(sync, version: try c.version(for: SyncGroupRequest.self), timeout: timeout)
            } catch let error as KafkaClientError where error.isRetriable {
                coordinatorLost()
                throw error
            }
            let syncCode = KafkaErrorCode(rawValue: syncResponse.errorCode)
            switch syncCode {
            case .none:
                let partitions = try ConsumerProtocolAssignment.decodePartitions(syncResponse.assignment)
                return Assignment(generationId: generationId, partitions: partitions,
                                  strategy: (syncResponse.protocolName ?? response.protocolName).flatMap(PartitionAssignmentStrategy.init(protocolName:)))
            case .rebalanceInProgress:
                continue
            case .unknownMemberId:
                memberId = ""
                generationId = -1
                continue
            case .illegalGeneration:
                generationId = -1
                continue
            case _ where Self.isCoordinatorError(syncCode):
                coordinatorLost()
                throw KafkaClientError.broker(syncCode, "sync group '\(groupId)'")
            default:
                throw KafkaClientError.broker(syncCode, "sync group '\(groupId)'")
            }
        }
    }

    /// The leader's part: every member's subscription, the partition counts of their
    /// topics, the chosen assignor's result.
    private func lead(_ response: JoinGroupResponse) async throws -> [SyncGroupRequest.SyncGroupRequestAssignment] {
        guard let name = response.protocolName, let strategy = PartitionAssignmentStrategy(protocolName: name) else {
            throw KafkaClientError(.groupFailed, "the group chose assignor '\(response.protocolName ?? "")', which this client does not have")
        }
        let members = try response.members.map { m in
            let subscription = try ConsumerProtocolSubscription.decode(m.metadata)
            return MemberSubscription(memberId: m.memberId, groupInstanceId: m.groupInstanceId, topics: subscription.topics,
                                      owned: subscription.ownedPartitions.flatMap { t in t.partitions.map { TopicPartition(topic: t.topic, partition: $0) } },
                                      generation: subscription.generationId)
        }
        let topics = Set(members.flatMap(\.topics)).sorted()
        var counts: [String: Int32] = [:]
        if !topics.isEmpty {
            let metadata = try await cluster.refreshMetadata(topics: topics, allowAutoCreate: configuration.allowAutoCreateTopics)
            for t in metadata.topics where t.errorCode == 0 && !t.partitions.isEmpty {
                if let n = t.name { counts[n] = Int32(t.partitions.count) }
            }
        }
        let result = PartitionAssignor.assign(strategy, members: members, partitionCounts: counts)
        logger.debug("assigned partitions", metadata: ["kafka.assignor": "\(name)", "kafka.members": "\(members.count)",
                                                       "kafka.partitions": "\(counts.values.reduce(0, +))"])
        return try members.map { m in
            .init(memberId: m.memberId, assignment: try ConsumerProtocolAssignment(result[m.memberId] ?? []).encoded())
        }
    }

    // MARK: heartbeat and leave

    /// One heartbeat; nil while the member is in good standing, else why it must rejoin.
    func heartbeat() async throws -> RejoinReason? {
        let c = try await coordinatorConnection()
        let response: HeartbeatResponse
        do {
            response = try await c.send(HeartbeatRequest(groupId: groupId, generationId: generationId, memberId: memberId,
                                                         groupInstanceId: configuration.groupInstanceId))
        } catch let error as KafkaClientError where error.isRetriable {
            coordinatorLost()
            throw error
        }
        let code = KafkaErrorCode(rawValue: response.errorCode)
        switch code {
        case .none: return nil
        case .rebalanceInProgress: return .rebalance
        case .illegalGeneration:
            generationId = -1
            return .lost
        case .unknownMemberId:
            memberId = ""
            generationId = -1
            return .lost
        case _ where Self.isCoordinatorError(code):
            coordinatorLost()
            throw KafkaClientError.broker(code, "heartbeat to group '\(groupId)'")
        default:
            throw KafkaClientError.broker(code, "heartbeat to group '\(groupId)'")
        }
    }

    /// Leaves the group so it rebalances at once rather than after the session timeout.
    /// Static members stay: their partitions wait for them to come back.
    func leave() async {
        defer {
            memberId = ""
            generationId = -1
            coordinator?.close()
            coordinator = nil
        }
        guard !memberId.isEmpty, configuration.groupInstanceId == nil, let c = coordinator, c.isActive else { return }
        do {
            let version = try c.version(for: LeaveGroupRequest.self)
            let request = version >= 3
                ? LeaveGroupRequest(groupId: groupId, members: [.init(memberId: memberId, groupInstanceId: nil, reason: "the consumer is closing")])
                : LeaveGroupRequest(groupId: groupId, memberId: memberId)
            let response = try await c.send(request, version: version)
            if response.errorCode != 0 {
                logger.debug("leave group failed", metadata: [LogKey.error: "\(KafkaErrorCode(rawValue: response.errorCode))"])
            }
        } catch {
            logger.debug("leave group failed", metadata: [LogKey.error: "\(error)"])
        }
    }

    /// Forgets the generation after the assignment was given up (not the member id, which
    /// the rejoin reuses).
    func resetGeneration() {
        generationId = -1
    }

    // MARK: offsets

    /// Commits offsets; while a member, with the generation, so a member that was
    /// replaced cannot overwrite its successor's commits.
    func commit(_ offsets: [TopicPartition: Int64], asMember: Bool) async throws {
        guard !offsets.isEmpty else { return }
        let c = try await coordinatorConnection()
        let byTopic = Dictionary(grouping: offsets.keys, by: \.topic)
        let request = OffsetCommitRequest(
            groupId: groupId, generationIdOrMemberEpoch: asMember ? generationId : -1, memberId: asMember ? memberId : "",
            groupInstanceId: asMember ? configuration.groupInstanceId : nil,
            topics: byTopic.keys.sorted().map { topic in
                .init(name: topic, partitions: byTopic[topic]!.sorted().map {
                    .init(partitionIndex: $0.partition, committedOffset: offsets[$0]!, committedLeaderEpoch: -1, committedMetadata: "")
                })
            })
        let response: OffsetCommitResponse
        do {
            response = try await c.send(request, version: try c.version(for: OffsetCommitRequest.self, upTo: 8))
        } catch let error as KafkaClientError where error.isRetriable {
            coordinatorLost()
            throw error
        }
        for t in response.topics {
            for p in t.partitions where p.errorCode != 0 {
                let code = KafkaErrorCode(rawValue: p.errorCode)
                switch code {
                case .illegalGeneration, .unknownMemberId, .rebalanceInProgress, .fencedInstanceId:
                    throw KafkaClientError(.commitFailed, "commit to group '\(groupId)' refused: \(code.name); the group rebalanced "
                                           + "and the partitions may belong to another member", kafkaCode: code)
                case _ where Self.isCoordinatorError(code):
                    coordinatorLost()
                    throw KafkaClientError.broker(code, "commit \(t.name)-\(p.partitionIndex)")
                default:
                    throw KafkaClientError.broker(code, "commit \(t.name)-\(p.partitionIndex)")
                }
            }
        }
    }

    /// The committed offsets of `partitions`; partitions without one are missing.
    func committed(_ partitions: [TopicPartition]) async throws -> [TopicPartition: Int64] {
        guard !partitions.isEmpty else { return [:] }
        let c = try await coordinatorConnection()
        let byTopic = Dictionary(grouping: partitions, by: \.topic)
        let request = OffsetFetchRequest(groupId: groupId, topics: byTopic.keys.sorted().map { t in
            .init(name: t, partitionIndexes: byTopic[t]!.map(\.partition).sorted())
        }, requireStable: true)
        let response: OffsetFetchResponse
        do {
            response = try await c.send(request, version: try c.version(for: OffsetFetchRequest.self, upTo: 7))
        } catch let error as KafkaClientError where error.isRetriable {
            coordinatorLost()
            throw error
        }
        let code = KafkaErrorCode(rawValue: response.errorCode)
        if code != .none {
            if Self.isCoordinatorError(code) { coordinatorLost() }
            throw KafkaClientError.broker(code, "fetch committed offsets of group '\(groupId)'")
        }
        var out: [TopicPartition: Int64] = [:]
        for t in response.topics {
            for p in t.partitions {
                if p.errorCode != 0 {
                    throw KafkaClientError.broker(KafkaErrorCode(rawValue: p.errorCode), "committed offset of \(t.name)-\(p.partitionIndex)")
                }
                if p.committedOffset >= 0 { out[TopicPartition(topic: t.name, partition: p.partitionIndex)] = p.committedOffset }
            }
        }
        return out
    }
}
