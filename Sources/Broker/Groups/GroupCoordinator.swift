import KafkaProtocol
import Logging
import LogStore
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import ServiceLifecycle

/// The group coordinator: every consumer group of this broker and their committed
/// offsets, answering FindCoordinator, JoinGroup, SyncGroup, Heartbeat, LeaveGroup,
/// OffsetCommit, OffsetFetch, ListGroups, DescribeGroups, DeleteGroups and OffsetDelete.
///
/// Each group is a `ConsumerGroup` state machine; this class feeds it requests and the
/// clock under one lock and answers the requests it parks (JoinGroup waits for the
/// rebalance, a follower's SyncGroup for the leader's assignment) by resuming their
/// continuations. Offset commits are answered after their fsync, which runs on the thread
/// pool and is shared between concurrent commits.
///
/// As a `Service` it ticks every `tickIntervalMs` to expire sessions and end rebalances,
/// and every `offsetsRetentionCheckIntervalMs` to expire offsets. When it stops, parked
/// requests are answered with COORDINATOR_NOT_AVAILABLE, so clients look for the
/// coordinator again instead of waiting out their rebalance timeout.
public final class GroupCoordinator: Service, Sendable {
    /// Group and offset settings, with Kafka's defaults and property names.
    public struct Configuration: Sendable, Hashable {
        /// `group.initial.rebalance.delay.ms`: how long the first rebalance of an empty
        /// group waits for more members to arrive. Default 3000.
        public var initialRebalanceDelayMs: Int64 = 3000
        /// `group.min.session.timeout.ms`. Default 6000.
        public var minSessionTimeoutMs: Int32 = 6000
        /// `group.max.session.timeout.ms`. Default 1800000 (30 minutes).
        public var maxSessionTimeoutMs: Int32 = 1_800_000
        /// `group.max.size`. Default unlimited.
        public var maxGroupSize: Int = .max
        /// `offsets.retention.minutes` in milliseconds: how long the offsets of a group
        /// without members are kept. Default 10080 minutes (7 days).
        public var offsetsRetentionMs: Int64 = 10080 * 60_000
        /// `offsets.retention.check.interval.ms`. Default 600000 (10 minutes).
        public var offsetsRetentionCheckIntervalMs: Int64 = 600_000
        /// `offset.metadata.max.bytes`: the longest metadata string a commit may carry.
        /// Default 4096.
        public var offsetMetadataMaxBytes: Int = 4096
        /// How often session and rebalance deadlines are checked; their precision.
        public var tickIntervalMs: Int64 = 100
        /// When the offset log is compacted.
        var offsetStore = OffsetStore.Configuration()

        public init() {}

        var group: ConsumerGroup.Configuration {
            var group = ConsumerGroup.Configuration()
            group.initialRebalanceDelayMs = initialRebalanceDelayMs
            group.minSessionTimeoutMs = minSessionTimeoutMs
            group.maxSessionTimeoutMs = maxSessionTimeoutMs
            group.maxSize = maxGroupSize
            return group
        }
    }

    private enum Waiter: Sendable {
        case join(CheckedContinuation<ConsumerGroup.JoinResult, Never>)
        case sync(CheckedContinuation<ConsumerGroup.SyncResult, Never>)
    }

    private struct State: Sendable {
        var groups: [String: ConsumerGroup] = [:]
        var waiters: [GroupRequestID: Waiter] = [:]
        /// Requests whose task was cancelled before they were parked.
        var cancelled: Set<GroupRequestID> = []
        var nextRequestID: GroupRequestID = 1
        var isShutDown = false

        mutating func allocateID() -> GroupRequestID {
            defer { nextRequestID += 1 }
            return nextRequestID
        }
    }

    /// A continuation to resume once the lock is released.
    private enum Resumption: Sendable {
        case join(CheckedContinuation<ConsumerGroup.JoinResult, Never>, ConsumerGroup.JoinResult)
        case sync(CheckedContinuation<ConsumerGroup.SyncResult, Never>, ConsumerGroup.SyncResult)

        func resume() {
            switch self {
            case .join(let continuation, let result): continuation.resume(returning: result)
            case .sync(let continuation, let result): continuation.resume(returning: result)
            }
        }
    }

    let configuration: Configuration
    let store: OffsetStore
    private let state: NIOLockedValueBox<State>
    private let threadPool: NIOThreadPool
    private let logger: Logger
    /// Whether a partition exists: commits and offset deletions for unknown partitions are
    /// refused, as Kafka refuses them.
    private let partitionExists: @Sendable (String, Int32) -> Bool
    /// Wall-clock milliseconds; injected so tests can move time.
    private let clock: @Sendable () -> Int64

    /// Opens the offset store in `dataDirectory` (replaying and repairing it) and recreates
    /// every group that has offsets, as an empty group: members rejoin after a restart.
    public convenience init(configuration: Configuration, dataDirectory: String, threadPool: NIOThreadPool, logger: Logger,
                            partitionExists: @escaping @Sendable (String, Int32) -> Bool) throws {
        try self.init(configuration: configuration, dataDirectory: dataDirectory, threadPool: threadPool, logger: logger,
                      partitionExists: partitionExists, clock: { currentTimeMillis() })
    }

    init(configuration: Configuration, dataDirectory: String, threadPool: NIOThreadPool, logger: Logger,
         partitionExists: @escaping @Sendable (String, Int32) -> Bool, clock: @escaping @Sendable () -> Int64) throws {
        self.configuration = configuration
        self.threadPool = threadPool
        self.logger = logger
        self.partitionExists = partitionExists
        self.clock = clock
        store = try OffsetStore(directory: dataDirectory, configuration: configuration.offsetStore)
        let report = store.loadReport
        if report.truncatedBytes > 0 {
            logger.warning("offset store had a torn or corrupt tail; truncated it",
                           metadata: ["path": "\(store.path)", "bytes": "\(report.truncatedBytes)"])
        }
        let now = clock()
        var initial = State()
        for groupId in store.groupIds() {
            let metadata = store.metadata(group: groupId)
            initial.groups[groupId] = ConsumerGroup(groupId: groupId, configuration: configuration.group,
                                                    now: metadata?.emptySince ?? now, protocolType: metadata?.protocolType)
        }
        state = NIOLockedValueBox(initial)
        logger.debug("offset store loaded", metadata: ["path": "\(store.path)", "records": "\(report.records)",
                                                       "groups": "\(initial.groups.count)", "compacted": "\(report.compacted)"])
        state.withLockedValue { state in
            for groupId in state.groups.keys { persistMetadata(groupId, state) }
        }
    }

    // MARK: Service

    public func run() async throws {
        var lastExpiry = clock()
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            do {
                try await Task.sleep(for: .milliseconds(max(configuration.tickIntervalMs, 1)))
            } catch {
                break
            }
            let now = clock()
            tick(now: now)
            if now - lastExpiry >= configuration.offsetsRetentionCheckIntervalMs {
                lastExpiry = now
                await expireOffsets(now: now)
            }
        }
        shutdown()
    }

    /// Answers every parked request with COORDINATOR_NOT_AVAILABLE, refuses new group
    /// requests, and flushes the offset store.
    public func shutdown() {
        let resumptions = state.withLockedValue { state -> [Resumption] in
            state.isShutDown = true
            let waiters = state.waiters
            state.waiters.removeAll()
            return waiters.values.map { waiter in
                switch waiter {
                case .join(let c): .join(c, .failure(.coordinatorNotAvailable, memberId: ""))
                case .sync(let c): .sync(c, .failure(.coordinatorNotAvailable))
                }
            }
        }
        resumptions.forEach { $0.resume() }
        do {
            try store.flush()
        } catch {
            logger.error("offset store flush failed at shutdown", metadata: ["error": "\(error)"])
        }
    }

    /// Runs every group's timers.
    func tick(now: Int64) {
        let resumptions = state.withLockedValue { state -> [Resumption] in
            var resumptions: [Resumption] = []
            for groupId in state.groups.keys {
                let before = state.groups[groupId]!.stateName
                let actions = state.groups[groupId]!.tick(now: now)
                resumptions += take(actions, &state)
                afterChange(groupId, from: before, &state)
            }
            return resumptions
        }
        resumptions.forEach { $0.resume() }
    }

    /// Expires offsets (Kafka's offset cleanup), forgets empty groups left without
    /// offsets, and compacts the offset log when it is mostly garbage.
    func expireOffsets(now: Int64) async {
        state.withLockedValue { state in
            var policies: [String: OffsetExpiryPolicy] = [:]
            for (groupId, group) in state.groups {
                policies[groupId] = Self.expiryPolicy(group)
            }
            do {
                let expired = try store.removeExpired(now: now, retentionMs: configuration.offsetsRetentionMs, policies: policies)
                for (groupId, keys) in expired {
                    logger.info("expired committed offsets", metadata: ["kafka.group": "\(groupId)", "partitions": "\(keys.count)"])
                }
            } catch {
                logger.error("offset expiry failed", metadata: ["error": "\(error)"])
            }
            for (groupId, group) in state.groups
            where group.stateName == .empty && !group.hasPendingMembers && !store.hasOffsets(group: groupId) {
                _ = state.groups[groupId]!.markDead(now: now)
                state.groups.removeValue(forKey: groupId)
                do {
                    try store.deleteGroup(groupId)
                } catch {
                    logger.error("offset store write failed", metadata: ["kafka.group": "\(groupId)", "error": "\(error)"])
                }
                logger.debug("removed empty group without offsets", metadata: ["kafka.group": "\(groupId)"])
            }
        }
        do {
            let store = self.store
            try await threadPool.runIfActive { _ = try store.compactIfNeeded() }
        } catch {
            logger.error("offset store compaction failed", metadata: ["error": "\(error)"])
        }
    }

    static func expiryPolicy(_ group: ConsumerGroup) -> OffsetExpiryPolicy {
        switch group.stateName {
        case .empty, .dead:
            // A group that never had members (only commits) ages by commit time alone.
            return .empty(since: group.protocolType == nil ? nil : group.stateTimestamp)
        case .stable:
            if group.protocolType == "consumer", let topics = group.subscribedTopics { return .subscribed(topics) }
            return .keep
        case .preparingRebalance, .completingRebalance:
            return .keep
        }
    }

    // MARK: Shared plumbing

    /// Turns actions into resumptions of the continuations they name.
    private func take(_ actions: [ConsumerGroup.Action], _ state: inout State) -> [Resumption] {
        actions.compactMap { action in
            switch action {
            case .completeJoin(let id, let result):
                guard case .join(let continuation) = state.waiters.removeValue(forKey: id) else { return nil }
                return .join(continuation, result)
            case .completeSync(let id, let result):
                guard case .sync(let continuation) = state.waiters.removeValue(forKey: id) else { return nil }
                return .sync(continuation, result)
            }
        }
    }

    /// Logs state changes and keeps the stored group metadata (protocol type, when the
    /// group became empty) current, under the lock so writes stay in order. The metadata
    /// only changes with the state, so a request that left the state alone costs nothing.
    private func afterChange(_ groupId: String, from before: ConsumerGroup.StateName?, _ state: inout State) {
        guard let group = state.groups[groupId] else { return }
        let after = group.stateName
        guard before != after else { return }
        if after == .completingRebalance {
            logger.info("group rebalanced", metadata: ["kafka.group": "\(groupId)", "kafka.generation": "\(group.generationId)",
                                                       "members": "\(group.memberCount)", "leader": "\(group.leaderId ?? "")"])
        } else {
            logger.debug("group state changed", metadata: ["kafka.group": "\(groupId)", "from": "\(before?.rawValue ?? "-")",
                                                           "to": "\(after.rawValue)", "kafka.generation": "\(group.generationId)"])
        }
        persistMetadata(groupId, state)
    }

    private func persistMetadata(_ groupId: String, _ state: State) {
        guard let group = state.groups[groupId] else { return }
        let metadata = StoredGroupMetadata(protocolType: group.protocolType,
                                           emptySince: group.stateName == .empty ? group.stateTimestamp : nil)
        do {
            try store.setMetadata(group: groupId, metadata)
        } catch {
            logger.error("offset store write failed", metadata: ["kafka.group": "\(groupId)", "error": "\(error)"])
        }
    }

    /// Parks the calling task under a new request id, runs `body` (which hands the id to
    /// the group) under the lock, and returns once some action answers the id: at once
    /// for most requests, after the rebalance for a JoinGroup.
    private func park<Result: Sendable>(
        groupId: String,
        wrap: (CheckedContinuation<Result, Never>) -> Waiter,
        unavailable: Result,
        _ body: (GroupRequestID, inout State) -> [ConsumerGroup.Action]
    ) async -> Result {
        let id = state.withLockedValue { $0.allocateID() }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Result, Never>) in
                let (resumptions, answerNow) = state.withLockedValue { state -> ([Resumption], Bool) in
                    if state.isShutDown || state.cancelled.remove(id) != nil { return ([], true) }
                    state.waiters[id] = wrap(continuation)
                    let before = state.groups[groupId]?.stateName
                    let actions = body(id, &state)
                    let resumptions = take(actions, &state)
                    afterChange(groupId, from: before, &state)
                    return (resumptions, false)
                }
                if answerNow { continuation.resume(returning: unavailable) }
                resumptions.forEach { $0.resume() }
            }
        } onCancel: {
            // The connection is gone; answer so the task can finish. The group still
            // counts the request until it answers it, as Kafka does for a client that
            // disconnects mid-rebalance.
            let waiter = state.withLockedValue { state -> Waiter? in
                if let waiter = state.waiters.removeValue(forKey: id) { return waiter }
                state.cancelled.insert(id)
                return nil
            }
            switch waiter {
            case .join(let c): c.resume(returning: .failure(.coordinatorNotAvailable, memberId: ""))
            case .sync(let c): c.resume(returning: .failure(.coordinatorNotAvailable))
            case nil: break
            }
        }
    }

    /// Runs a synchronous change on an existing group and answers whatever it completes.
    private func withGroup<T>(_ groupId: String, _ body: (inout ConsumerGroup) -> (T, [ConsumerGroup.Action]), missing: T) -> T {
        let (value, resumptions) = state.withLockedValue { state -> (T, [Resumption]) in
            guard let before = state.groups[groupId]?.stateName else { return (missing, []) }
            let (value, actions) = body(&state.groups[groupId]!)
            let resumptions = take(actions, &state)
            afterChange(groupId, from: before, &state)
            return (value, resumptions)
        }
        resumptions.forEach { $0.resume() }
        return value
    }

    /// Waits for the offset store's fsync covering `sequence`, on the thread pool.
    private func makeDurable(_ sequence: UInt64) async throws {
        let store = self.store
        try await threadPool.runIfActive { try store.flush(upTo: sequence) }
    }

    /// A member id as Kafka makes them: `clientId-UUID`, or `instanceId-UUID` for a
    /// static member.
    static func newMemberId(clientId: String, groupInstanceId: String?) -> String {
        let bytes = KafkaUUID.random().bytes
        let hex = bytes.map { byte in
            let digits = Array("0123456789abcdef")
            return String([digits[Int(byte >> 4)], digits[Int(byte & 0xF)]])
        }.joined()
        let h = Array(hex)
        let uuid = [0..<8, 8..<12, 12..<16, 16..<20, 20..<32].map { String(h[$0]) }.joined(separator: "-")
        return (groupInstanceId ?? clientId) + "-" + uuid
    }

    // MARK: FindCoordinator

    /// This broker coordinates every group. Transactions are not supported, so their
    /// coordinator is never available.
    func findCoordinator(_ request: FindCoordinatorRequest, version: Int16, nodeId: Int32, host: String, port: Int32) -> FindCoordinatorResponse {
        func answer(_ key: String, _ keyType: Int8) -> (KafkaErrorCode, String?) {
            switch keyType {
            case 0: return (.none, nil)
            case 1: return (.coordinatorNotAvailable, "transactions are not supported by this broker, so there is no transaction coordinator")
            default: return (.invalidRequest, "unknown coordinator key type \(keyType)")
            }
        }
        var response = FindCoordinatorResponse()
        if version >= 4 {
            response.coordinators = request.coordinatorKeys.map { key in
                let (error, message) = answer(key, request.keyType)
                return error == .none
                    ? .init(key: key, nodeId: nodeId, host: host, port: port, errorCode: 0, errorMessage: nil)
                    : .init(key: key, nodeId: -1, host: "", port: -1, errorCode: error.rawValue, errorMessage: message)
            }
        } else {
            let (error, message) = answer(request.key, version >= 1 ? request.keyType : 0)
            response.errorCode = error.rawValue
            if version >= 1 { response.errorMessage = message }
            if error == .none {
                (response.nodeId, response.host, response.port) = (nodeId, host, port)
            } else {
                (response.nodeId, response.host, response.port) = (-1, "", -1)
            }
        }
        return response
    }

    // MARK: JoinGroup

    /// Joins (or rejoins) a member; suspends until the rebalance it takes part in
    /// completes, up to the group's rebalance timeout.
    func joinGroup(_ request: JoinGroupRequest, version: Int16, clientId: String, clientHost: String) async -> JoinGroupResponse {
        let result = await join(request, version: version, clientId: clientId, clientHost: clientHost)
        return Self.joinResponse(result, version: version)
    }

    func join(_ request: JoinGroupRequest, version: Int16, clientId: String, clientHost: String) async -> ConsumerGroup.JoinResult {
        guard !request.groupId.isEmpty else { return .failure(.invalidGroupId, memberId: request.memberId) }
        let groupConfiguration = configuration.group
        guard request.sessionTimeoutMs >= groupConfiguration.minSessionTimeoutMs,
              request.sessionTimeoutMs <= groupConfiguration.maxSessionTimeoutMs else {
            return .failure(.invalidSessionTimeout, memberId: request.memberId)
        }
        // Version 0 has no rebalance timeout: the session timeout serves.
        let rebalanceTimeoutMs = version == 0 || request.rebalanceTimeoutMs < 0 ? request.sessionTimeoutMs : request.rebalanceTimeoutMs
        let joinRequest = ConsumerGroup.JoinRequest(
            memberId: request.memberId, groupInstanceId: version >= 5 ? request.groupInstanceId : nil,
            clientId: clientId, clientHost: clientHost,
            sessionTimeoutMs: request.sessionTimeoutMs, rebalanceTimeoutMs: rebalanceTimeoutMs,
            protocolType: request.protocolType,
            protocols: request.protocols.map { ConsumerGroup.GroupProtocol(name: $0.name, metadata: $0.metadata) },
            version: version,
            newMemberId: Self.newMemberId(clientId: clientId, groupInstanceId: version >= 5 ? request.groupInstanceId : nil))
        let now = clock()
        let groupId = request.groupId
        let configuration = groupConfiguration
        return await park(groupId: groupId, wrap: Waiter.join, unavailable: .failure(.coordinatorNotAvailable, memberId: request.memberId)) { id, state in
            if state.groups[groupId] == nil {
                // Only a member without an id may create a group; an id for a group we do
                // not know is stale (for instance from before a restart).
                guard joinRequest.memberId.isEmpty else {
                    return [.completeJoin(id, .failure(.unknownMemberId, memberId: joinRequest.memberId))]
                }
                state.groups[groupId] = ConsumerGroup(groupId: groupId, configuration: configuration, now: now)
            }
            var actions = state.groups[groupId]!.join(joinRequest, requestID: id, now: now)
            // Deadlines already due (an initial delay of 0) are handled at once rather
            // than at the next tick.
            actions += state.groups[groupId]!.tick(now: now)
            return actions
        }
    }

    static func joinResponse(_ result: ConsumerGroup.JoinResult, version: Int16) -> JoinGroupResponse {
        var protocolName = result.protocolName
        if version >= 7 {
            if protocolName?.isEmpty == true { protocolName = nil }
        } else if protocolName == nil {
            // Before v7 the protocol name is not nullable.
            protocolName = ""
        }
        return JoinGroupResponse(
            errorCode: result.error.rawValue, generationId: result.generationId,
            protocolType: version >= 7 ? result.protocolType : nil, protocolName: protocolName,
            leader: result.leader, skipAssignment: version >= 9 && result.skipAssignment, memberId: result.memberId,
            members: result.members.map {
                .init(memberId: $0.memberId, groupInstanceId: version >= 5 ? $0.groupInstanceId : nil, metadata: $0.metadata)
            })
    }

    // MARK: SyncGroup

    /// Delivers the leader's assignment; a follower's call suspends until the leader's.
    func syncGroup(_ request: SyncGroupRequest, version: Int16) async -> SyncGroupResponse {
        let result = await sync(request, version: version)
        return SyncGroupResponse(errorCode: result.error.rawValue,
                                 protocolType: version >= 5 ? result.protocolType : nil,
                                 protocolName: version >= 5 ? result.protocolName : nil,
                                 assignment: result.assignment)
    }

    func sync(_ request: SyncGroupRequest, version: Int16) async -> ConsumerGroup.SyncResult {
        guard !request.groupId.isEmpty else { return .failure(.invalidGroupId) }
        if version >= 5 && (request.protocolType == nil || request.protocolName == nil) {
            // From v5 the client must say which protocol it assigned for.
            return .failure(.inconsistentGroupProtocol)
        }
        let syncRequest = ConsumerGroup.SyncRequest(
            memberId: request.memberId, groupInstanceId: version >= 3 ? request.groupInstanceId : nil,
            generationId: request.generationId, protocolType: request.protocolType, protocolName: request.protocolName,
            assignments: request.assignments.map { ($0.memberId, $0.assignment) })
        let now = clock()
        let groupId = request.groupId
        return await park(groupId: groupId, wrap: Waiter.sync, unavailable: .failure(.coordinatorNotAvailable)) { id, state in
            guard state.groups[groupId] != nil else { return [.completeSync(id, .failure(.unknownMemberId))] }
            return state.groups[groupId]!.sync(syncRequest, requestID: id, now: now)
        }
    }

    // MARK: Heartbeat

    func heartbeat(_ request: HeartbeatRequest, version: Int16) async -> HeartbeatResponse {
        HeartbeatResponse(errorCode: heartbeatError(request, version: version).rawValue)
    }

    func heartbeatError(_ request: HeartbeatRequest, version: Int16) -> KafkaErrorCode {
        guard !request.groupId.isEmpty else { return .invalidGroupId }
        if state.withLockedValue({ $0.isShutDown }) { return .coordinatorNotAvailable }
        let now = clock()
        return withGroup(request.groupId, { group in
            (group.heartbeat(memberId: request.memberId, groupInstanceId: version >= 3 ? request.groupInstanceId : nil,
                             generationId: request.generationId, now: now), [])
        }, missing: .unknownMemberId)
    }

    // MARK: LeaveGroup

    /// Removes members; before v3 one member, by id, and only a top-level error.
    func leaveGroup(_ request: LeaveGroupRequest, version: Int16) async -> LeaveGroupResponse {
        let leaving = version >= 3
            ? request.members.map { ConsumerGroup.LeavingMember(memberId: $0.memberId, groupInstanceId: $0.groupInstanceId) }
            : [ConsumerGroup.LeavingMember(memberId: request.memberId, groupInstanceId: nil)]
        let result = leave(groupId: request.groupId, leaving)
        if version < 3 {
            let error = result.error != .none ? result.error : (result.members.first { $0.error != .none }?.error ?? .none)
            return LeaveGroupResponse(errorCode: error.rawValue)
        }
        return LeaveGroupResponse(errorCode: result.error.rawValue, members: result.members.map {
            .init(memberId: $0.memberId, groupInstanceId: $0.groupInstanceId, errorCode: $0.error.rawValue)
        })
    }

    func leave(groupId: String, _ leaving: [ConsumerGroup.LeavingMember]) -> ConsumerGroup.LeaveResult {
        guard !groupId.isEmpty else { return .init(error: .invalidGroupId, members: []) }
        if state.withLockedValue({ $0.isShutDown }) { return .init(error: .coordinatorNotAvailable, members: []) }
        let now = clock()
        return withGroup(groupId, { group in
            let (result, actions) = group.leave(leaving, now: now)
            return (result, actions)
        }, missing: .init(error: .unknownMemberId, members: []))
    }

    // MARK: OffsetCommit

    /// Validates the commit against the group's generation, appends it to the offset log
    /// and answers after the fsync: an acknowledged commit survives a crash.
    func offsetCommit(_ request: OffsetCommitRequest, version: Int16) async -> OffsetCommitResponse {
        let now = clock()
        var errors: [TopicPartitionKey: KafkaErrorCode] = [:]
        let allPartitions = request.topics.flatMap { topic in topic.partitions.map { TopicPartitionKey(topic: topic.name, partition: $0.partitionIndex) } }
        func response() -> OffsetCommitResponse {
            OffsetCommitResponse(topics: request.topics.map { topic in
                .init(name: topic.name, partitions: topic.partitions.map { partition in
                    let key = TopicPartitionKey(topic: topic.name, partition: partition.partitionIndex)
                    return .init(partitionIndex: partition.partitionIndex, errorCode: (errors[key] ?? .none).rawValue)
                })
            })
        }
        func failAll(_ error: KafkaErrorCode) -> OffsetCommitResponse {
            for key in allPartitions { errors[key] = error }
            return response()
        }
        guard !request.groupId.isEmpty else { return failAll(.invalidGroupId) }
        // v2-4 carry a retention time; -1 means the broker's.
        let expireTimestamp: Int64? = (2...4).contains(version) && request.retentionTimeMs >= 0 ? now + request.retentionTimeMs : nil
        var accepted: [(TopicPartitionKey, CommittedOffset)] = []
        for topic in request.topics {
            for partition in topic.partitions {
                let key = TopicPartitionKey(topic: topic.name, partition: partition.partitionIndex)
                let metadata = partition.committedMetadata ?? ""
                if !partitionExists(topic.name, partition.partitionIndex) {
                    errors[key] = .unknownTopicOrPartition
                } else if metadata.utf8.count > configuration.offsetMetadataMaxBytes {
                    errors[key] = .offsetMetadataTooLarge
                } else {
                    accepted.append((key, CommittedOffset(offset: partition.committedOffset,
                                                          leaderEpoch: version >= 6 ? partition.committedLeaderEpoch : -1,
                                                          metadata: metadata, commitTimestamp: now, expireTimestamp: expireTimestamp)))
                }
            }
        }
        let groupId = request.groupId
        let memberId = request.memberId
        let instanceId = version >= 7 ? request.groupInstanceId : nil
        let generation = version >= 1 ? request.generationIdOrMemberEpoch : -1
        let groupConfiguration = configuration.group
        enum Outcome { case rejected(KafkaErrorCode), written(UInt64?) }
        let outcome = state.withLockedValue { state -> Outcome in
            if state.isShutDown { return .rejected(.coordinatorNotAvailable) }
            let before = state.groups[groupId]?.stateName
            if let group = state.groups[groupId] {
                let error = group.validateOffsetCommit(memberId: memberId, groupInstanceId: instanceId, generationId: generation)
                if error != .none { return .rejected(error) }
            } else if generation < 0 {
                // A consumer that assigns its own partitions (or an admin tool): Kafka
                // creates an empty "simple" group to hold the offsets.
                state.groups[groupId] = ConsumerGroup(groupId: groupId, configuration: groupConfiguration, now: now)
            } else {
                // The group is gone (or never was) but the client believes in a generation.
                return .rejected(version >= 9 ? .groupIdNotFound : .illegalGeneration)
            }
            defer { afterChange(groupId, from: before, &state) }
            guard !accepted.isEmpty else { return .written(nil) }
            do {
                return .written(try store.commit(group: groupId, offsets: accepted))
            } catch {
                logger.error("offset commit write failed", metadata: ["kafka.group": "\(groupId)", "error": "\(error)"])
                return .rejected(.notCoordinator)
            }
        }
        switch outcome {
        case .rejected(let error):
            for (key, _) in accepted { errors[key] = error }
            for key in allPartitions where errors[key] == nil { errors[key] = error }
        case .written(let sequence):
            guard let sequence else { break }
            do {
                try await makeDurable(sequence)
            } catch {
                // Written but not known to be durable: the client must not count on it.
                logger.error("offset commit fsync failed", metadata: ["kafka.group": "\(groupId)", "error": "\(error)"])
                for (key, _) in accepted { errors[key] = .notCoordinator }
            }
        }
        return response()
    }

    // MARK: OffsetFetch

    /// Committed offsets: -1 for a partition without one. Before v8 one group (v2+: a
    /// null topic list means every committed partition); from v8 a list of groups.
    func offsetFetch(_ request: OffsetFetchRequest, version: Int16) async -> OffsetFetchResponse {
        if version >= 8 {
            return OffsetFetchResponse(groups: request.groups.map { group in
                let requested = group.topics.map { $0.map { ($0.name, $0.partitionIndexes) } }
                let (error, topics) = fetch(groupId: group.groupId, topics: requested)
                return .init(groupId: group.groupId, topics: topics.map { topic in
                    .init(name: topic.name, partitions: topic.partitions.map { index, committed in
                        .init(partitionIndex: index, committedOffset: committed?.offset ?? -1,
                              committedLeaderEpoch: committed?.leaderEpoch ?? -1, metadata: committed?.metadata ?? "", errorCode: 0)
                    })
                }, errorCode: error.rawValue)
            })
        }
        let requested = request.topics.map { $0.map { ($0.name, $0.partitionIndexes) } }
        let (error, topics) = fetch(groupId: request.groupId, topics: version >= 2 ? requested : (requested ?? []))
        return OffsetFetchResponse(topics: topics.map { topic in
            .init(name: topic.name, partitions: topic.partitions.map { index, committed in
                // v0-1 have no top-level error code: the group's error goes to each partition.
                .init(partitionIndex: index, committedOffset: committed?.offset ?? -1,
                      committedLeaderEpoch: committed?.leaderEpoch ?? -1, metadata: committed?.metadata ?? "",
                      errorCode: version < 2 ? error.rawValue : 0)
            })
        }, errorCode: version >= 2 ? error.rawValue : 0)
    }

    struct FetchedTopic {
        var name: String
        var partitions: [(Int32, CommittedOffset?)]
    }

    /// One group's committed offsets; nil topics means all of them.
    func fetch(groupId: String, topics: [(String, [Int32])]?) -> (KafkaErrorCode, [FetchedTopic]) {
        guard !groupId.isEmpty else {
            return (.invalidGroupId, (topics ?? []).map { FetchedTopic(name: $0.0, partitions: $0.1.map { ($0, nil) }) })
        }
        if state.withLockedValue({ $0.isShutDown }) {
            return (.coordinatorNotAvailable, (topics ?? []).map { FetchedTopic(name: $0.0, partitions: $0.1.map { ($0, nil) }) })
        }
        let committed = store.offsets(group: groupId)
        guard let topics else {
            var byTopic: [String: [(Int32, CommittedOffset?)]] = [:]
            for key in committed.keys.sorted() { byTopic[key.topic, default: []].append((key.partition, committed[key])) }
            return (.none, byTopic.keys.sorted().map { FetchedTopic(name: $0, partitions: byTopic[$0]!) })
        }
        return (.none, topics.map { name, partitions in
            FetchedTopic(name: name, partitions: partitions.map { ($0, committed[TopicPartitionKey(topic: name, partition: $0)]) })
        })
    }

    // MARK: ListGroups, DescribeGroups

    /// Every group (sorted by id) with its state; v4+ may filter by state and v5+ by type
    /// (all groups here are "classic"), both case-insensitively as Kafka does.
    func listGroups(_ request: ListGroupsRequest, version: Int16) async -> ListGroupsResponse {
        let states = Set((version >= 4 ? request.statesFilter : []).map { $0.lowercased() })
        let types = Set((version >= 5 ? request.typesFilter : []).map { $0.lowercased() })
        if !types.isEmpty && !types.contains("classic") { return ListGroupsResponse() }
        let groups = state.withLockedValue { state in
            state.groups.values.filter { $0.stateName != .dead && (states.isEmpty || states.contains($0.stateName.rawValue.lowercased())) }
                .sorted { $0.groupId < $1.groupId }
                .map { ListGroupsResponse.ListedGroup(groupId: $0.groupId, protocolType: $0.protocolType ?? "",
                                                      groupState: $0.stateName.rawValue, groupType: "classic") }
        }
        return ListGroupsResponse(groups: groups)
    }

    func describe(groupId: String) -> ConsumerGroup.Description? {
        state.withLockedValue { $0.groups[groupId]?.describe() }
    }

    /// Unknown groups are described as Dead with no error, as Kafka does before v6.
    func describeGroups(_ request: DescribeGroupsRequest, version: Int16) async -> DescribeGroupsResponse {
        DescribeGroupsResponse(groups: request.groups.map { groupId in
            guard let description = describe(groupId: groupId) else {
                return .init(errorCode: 0, groupId: groupId, groupState: ConsumerGroup.StateName.dead.rawValue,
                             protocolType: "", protocolData: "", members: [])
            }
            return .init(errorCode: 0, groupId: groupId, groupState: description.state.rawValue,
                         protocolType: description.protocolType, protocolData: description.protocolName,
                         members: description.members.map {
                             .init(memberId: $0.memberId, groupInstanceId: version >= 4 ? $0.groupInstanceId : nil,
                                   clientId: $0.clientId, clientHost: $0.clientHost,
                                   memberMetadata: $0.metadata, memberAssignment: $0.assignment)
                         })
        })
    }

    // MARK: DeleteGroups, OffsetDelete

    /// Deletes groups without members, with their offsets (durably, before answering).
    func deleteGroups(_ request: DeleteGroupsRequest, version: Int16) async -> DeleteGroupsResponse {
        let now = clock()
        var results: [(String, KafkaErrorCode)] = []
        var sequence: UInt64 = 0
        for groupId in request.groupsNames {
            let (error, written) = state.withLockedValue { state -> (KafkaErrorCode, UInt64?) in
                guard !groupId.isEmpty else { return (.invalidGroupId, nil) }
                if state.isShutDown { return (.coordinatorNotAvailable, nil) }
                guard let group = state.groups[groupId] else { return (.groupIdNotFound, nil) }
                let error = group.validateDelete()
                guard error == .none else { return (error, nil) }
                do {
                    let written = try store.deleteGroup(groupId)
                    _ = state.groups[groupId]!.markDead(now: now)
                    state.groups.removeValue(forKey: groupId)
                    return (.none, written)
                } catch {
                    logger.error("group deletion write failed", metadata: ["kafka.group": "\(groupId)", "error": "\(error)"])
                    return (.notCoordinator, nil)
                }
            }
            if let written { sequence = max(sequence, written) }
            results.append((groupId, error))
        }
        if sequence > 0 {
            do {
                try await makeDurable(sequence)
            } catch {
                logger.error("group deletion fsync failed", metadata: ["error": "\(error)"])
                results = results.map { ($0.0, $0.1 == .none ? .notCoordinator : $0.1) }
            }
        }
        return DeleteGroupsResponse(results: results.map { .init(groupId: $0.0, errorCode: $0.1.rawValue) })
    }

    /// Deletes committed offsets, refusing those of topics the group's members subscribe to.
    func offsetDelete(_ request: OffsetDeleteRequest, version: Int16) async -> OffsetDeleteResponse {
        let groupId = request.groupId
        let outcome = state.withLockedValue { state -> (KafkaErrorCode, [TopicPartitionKey: KafkaErrorCode], UInt64?) in
            guard !groupId.isEmpty else { return (.invalidGroupId, [:], nil) }
            if state.isShutDown { return (.coordinatorNotAvailable, [:], nil) }
            guard let group = state.groups[groupId] else { return (.groupIdNotFound, [:], nil) }
            let error = group.validateOffsetDelete()
            guard error == .none else { return (error, [:], nil) }
            var errors: [TopicPartitionKey: KafkaErrorCode] = [:]
            var deletable: [TopicPartitionKey] = []
            for topic in request.topics {
                for partition in topic.partitions {
                    let key = TopicPartitionKey(topic: topic.name, partition: partition.partitionIndex)
                    if !partitionExists(topic.name, partition.partitionIndex) {
                        errors[key] = .unknownTopicOrPartition
                    } else if group.stateName != .empty && group.isSubscribed(to: topic.name) {
                        errors[key] = .groupSubscribedToTopic
                    } else {
                        deletable.append(key)
                    }
                }
            }
            do {
                let sequence = try store.deleteOffsets(group: groupId, partitions: deletable)
                return (.none, errors, sequence)
            } catch {
                logger.error("offset deletion write failed", metadata: ["kafka.group": "\(groupId)", "error": "\(error)"])
                return (.notCoordinator, [:], nil)
            }
        }
        let (error, partitionErrors, sequence) = outcome
        if error != .none { return OffsetDeleteResponse(errorCode: error.rawValue) }
        if let sequence {
            do {
                try await makeDurable(sequence)
            } catch {
                logger.error("offset deletion fsync failed", metadata: ["kafka.group": "\(groupId)", "error": "\(error)"])
                return OffsetDeleteResponse(errorCode: KafkaErrorCode.notCoordinator.rawValue)
            }
        }
        return OffsetDeleteResponse(topics: request.topics.map { topic in
            .init(name: topic.name, partitions: topic.partitions.map { partition in
                .init(partitionIndex: partition.partitionIndex,
                      errorCode: (partitionErrors[TopicPartitionKey(topic: topic.name, partition: partition.partitionIndex)] ?? .none).rawValue)
            })
        })
    }
}
