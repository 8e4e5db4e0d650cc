import KafkaProtocol
import NIOCore

/// Names a JoinGroup or SyncGroup request that a group has parked. The state machine
/// only stores the id; the coordinator maps it to the caller waiting for the answer.
typealias GroupRequestID = UInt64

/// One classic-protocol consumer group (JoinGroup/SyncGroup/Heartbeat/LeaveGroup), as
/// Kafka's `ClassicGroup` and its group metadata manager run it.
///
/// A value type with no clock, logger or I/O: each input is a `mutating` function that
/// takes the current time in milliseconds and returns the `Action`s the caller performs
/// (answering parked requests). Requests that cannot be answered yet stay parked under
/// their `GroupRequestID` until a later input or `tick(now:)` answers them; every parked
/// id is answered exactly once, even when its member is removed, so no caller waits
/// forever.
struct ConsumerGroup: Sendable {
    /// The broker settings a group enforces, with Kafka's defaults.
    struct Configuration: Sendable, Hashable {
        /// `group.initial.rebalance.delay.ms`: how long the first rebalance of an empty
        /// group waits for more members, extended while members keep arriving. Default 3 s.
        var initialRebalanceDelayMs: Int64 = 3000
        /// `group.min.session.timeout.ms`. Default 6 s.
        var minSessionTimeoutMs: Int32 = 6000
        /// `group.max.session.timeout.ms`. Default 30 minutes.
        var maxSessionTimeoutMs: Int32 = 1_800_000
        /// `group.max.size`. Default unlimited.
        var maxSize: Int = .max
        /// How long a new member's parked JoinGroup may wait before it is dropped. New
        /// members cannot heartbeat (they have no id yet), so without this a client that
        /// gave up and retried would leave a defunct member in every rebalance. Kafka's
        /// internal constant, 5 minutes.
        var newMemberJoinTimeoutMs: Int64 = 300_000

        init() {}
    }

    /// The group states, spelled as Kafka spells them in DescribeGroups and ListGroups.
    enum StateName: String, Sendable, Hashable, CaseIterable {
        case empty = "Empty"
        case preparingRebalance = "PreparingRebalance"
        case completingRebalance = "CompletingRebalance"
        case stable = "Stable"
        case dead = "Dead"
    }

    /// One protocol a member supports (for consumers: an assignor name and a
    /// ConsumerProtocolSubscription).
    struct GroupProtocol: Sendable, Hashable {
        var name: String
        var metadata: ByteBuffer
    }

    /// A JoinGroup request, with the version-dependent parts already resolved.
    struct JoinRequest: Sendable, Hashable {
        var memberId: String
        var groupInstanceId: String?
        var clientId: String
        var clientHost: String
        var sessionTimeoutMs: Int32
        /// For version 0, which has no rebalance timeout, the session timeout.
        var rebalanceTimeoutMs: Int32
        var protocolType: String
        var protocols: [GroupProtocol]
        /// v4+ makes a dynamic member fetch an id first (MEMBER_ID_REQUIRED); v9+ lets a
        /// replaced static leader skip the assignment.
        var version: Int16
        /// The id this member gets if it is new. The caller generates it (Kafka:
        /// `clientId-UUID`, or `groupInstanceId-UUID` for static members) so the state
        /// machine stays deterministic.
        var newMemberId: String
    }

    /// A JoinGroup response before version-specific shaping.
    struct JoinResult: Sendable, Hashable {
        var error: KafkaErrorCode
        var generationId: Int32 = -1
        var protocolType: String?
        var protocolName: String?
        var leader: String = ""
        var skipAssignment = false
        var memberId: String
        /// Every member's metadata for the chosen protocol; only the leader gets it.
        var members: [JoinedMember] = []

        static func failure(_ error: KafkaErrorCode, memberId: String) -> JoinResult {
            JoinResult(error: error, memberId: memberId)
        }
    }

    struct JoinedMember: Sendable, Hashable {
        var memberId: String
        var groupInstanceId: String?
        var metadata: ByteBuffer
    }

    struct SyncRequest: Sendable {
        var memberId: String
        var groupInstanceId: String?
        var generationId: Int32
        var protocolType: String?
        var protocolName: String?
        /// Sent by the leader only: each member's assignment.
        var assignments: [(memberId: String, assignment: ByteBuffer)]
    }

    struct SyncResult: Sendable, Hashable {
        var error: KafkaErrorCode
        var protocolType: String?
        var protocolName: String?
        var assignment = ByteBuffer()

        static func failure(_ error: KafkaErrorCode) -> SyncResult {
            SyncResult(error: error)
        }
    }

    /// What the caller must do: answer a parked request.
    enum Action: Sendable, Hashable {
        case completeJoin(GroupRequestID, JoinResult)
        case completeSync(GroupRequestID, SyncResult)
    }

    struct LeavingMember: Sendable, Hashable {
        var memberId: String
        var groupInstanceId: String?
    }

    struct LeaveResult: Sendable, Hashable {
        struct Member: Sendable, Hashable {
            var memberId: String
            var groupInstanceId: String?
            var error: KafkaErrorCode
        }
        var error: KafkaErrorCode
        var members: [Member]
    }

    struct MemberDescription: Sendable, Hashable {
        var memberId: String
        var groupInstanceId: String?
        var clientId: String
        var clientHost: String
        /// The member's metadata for the chosen protocol; empty unless the group is Stable,
        /// as Kafka describes it.
        var metadata: ByteBuffer
        var assignment: ByteBuffer
    }

    struct Description: Sendable, Hashable {
        var groupId: String
        var state: StateName
        var protocolType: String
        /// The chosen protocol while Stable, otherwise empty (Kafka's `protocolData`).
        var protocolName: String
        var members: [MemberDescription]
    }

    // MARK: State

    private struct InitialDelay: Sendable, Hashable {
        var delayMs: Int64
        var remainingMs: Int64
    }

    /// A rebalance's join phase.
    private struct JoinPhase: Sendable, Hashable {
        /// When the join phase ends (or, during the initial delay, is re-examined).
        var deadline: Int64
        /// Kafka's `previousState == EMPTY`: such a rebalance is never completed early,
        /// even when everyone has joined, because more members are expected.
        var fromEmpty: Bool
        /// Set while `group.initial.rebalance.delay.ms` governs the deadline.
        var initialDelay: InitialDelay?
        /// A member joined during this round of the initial delay, so wait another round.
        var newMemberAdded = false
    }

    private enum State: Sendable, Hashable {
        case empty
        case preparingRebalance(JoinPhase)
        case completingRebalance
        case stable
        case dead
    }

    private struct Member: Sendable, Hashable {
        var memberId: String
        let groupInstanceId: String?
        var clientId: String
        var clientHost: String
        var sessionTimeoutMs: Int32
        var rebalanceTimeoutMs: Int32
        let protocolType: String
        var protocols: [GroupProtocol]
        var assignment = ByteBuffer()
        /// A parked JoinGroup: the member counts as rejoined in this rebalance.
        var pendingJoin: GroupRequestID?
        /// A parked SyncGroup (a follower waiting for the leader's assignment).
        var pendingSync: GroupRequestID?
        /// Joined in the current rebalance for the first time. Such a member's parked
        /// JoinGroup does not keep it alive (see `newMemberJoinTimeoutMs`).
        var isNew: Bool
        var heartbeatDeadline: Int64

        func metadata(for protocolName: String) -> ByteBuffer? {
            protocols.first { $0.name == protocolName }?.metadata
        }

        /// Same protocols with the same metadata, in the same order.
        func matches(_ other: [GroupProtocol]) -> Bool {
            protocols == other
        }

        /// Kafka's `hasSatisfiedHeartbeat` when the session deadline passes: a member
        /// waiting in a rebalance is alive by definition, unless it is new.
        var isKeptAliveByRebalance: Bool {
            !isNew && (pendingJoin != nil || pendingSync != nil)
        }
    }

    let groupId: String
    let configuration: Configuration
    private var state: State
    private(set) var generationId: Int32 = 0
    /// Set by the first member to join and kept after everyone leaves, as Kafka does
    /// (an empty group that had consumers still lists as "consumer"). Nil for a group
    /// that only ever had offsets committed to it.
    private(set) var protocolType: String?
    private(set) var protocolName: String?
    private(set) var leaderId: String?
    private var members: [String: Member] = [:]
    /// Members in the order they joined: the leader's member list, leader re-election and
    /// protocol tie-breaks follow it, so results do not depend on hashing.
    private var memberOrder: [String] = []
    /// group.instance.id -> member id.
    private var staticMembers: [String: String] = [:]
    /// Member ids handed out with MEMBER_ID_REQUIRED, waiting for the second JoinGroup,
    /// with the deadline (their session timeout) after which they are forgotten.
    private var pendingMembers: [String: Int64] = [:]
    /// Members that got this generation's JoinGroup answer but have not sent SyncGroup.
    private var pendingSyncMembers: Set<String> = []
    private var syncDeadline: Int64?
    /// The topics the members subscribe to, when the group uses the consumer protocol and
    /// every subscription parses; nil when unknown. Offsets of these topics are neither
    /// expired nor deletable.
    private(set) var subscribedTopics: Set<String>? = []
    /// When the group entered its current state (Kafka's `currentStateTimestamp`).
    private(set) var stateTimestamp: Int64

    init(groupId: String, configuration: Configuration = Configuration(), now: Int64, protocolType: String? = nil) {
        self.groupId = groupId
        self.configuration = configuration
        self.state = .empty
        self.stateTimestamp = now
        self.protocolType = protocolType
    }

    // MARK: Queries

    var stateName: StateName {
        switch state {
        case .empty: .empty
        case .preparingRebalance: .preparingRebalance
        case .completingRebalance: .completingRebalance
        case .stable: .stable
        case .dead: .dead
        }
    }

    var memberCount: Int { members.count }

    var memberIds: [String] { memberOrder }

    /// True while a member holds a MEMBER_ID_REQUIRED id it has not used yet; such a group
    /// must not be garbage-collected or the member's second JoinGroup would fail.
    var hasPendingMembers: Bool { !pendingMembers.isEmpty }

    /// The group's rebalance timeout: the largest of its members'.
    var rebalanceTimeoutMs: Int64 {
        Int64(members.values.map(\.rebalanceTimeoutMs).max() ?? 0)
    }

    func describe() -> Description {
        let stable = stateName == .stable
        let chosen = protocolName ?? ""
        return Description(
            groupId: groupId,
            state: stateName,
            protocolType: protocolType ?? "",
            protocolName: stable ? chosen : "",
            members: memberOrder.compactMap { members[$0] }.map { member in
                MemberDescription(
                    memberId: member.memberId, groupInstanceId: member.groupInstanceId,
                    clientId: member.clientId, clientHost: member.clientHost,
                    metadata: stable ? (member.metadata(for: chosen) ?? ByteBuffer()) : ByteBuffer(),
                    assignment: stable ? member.assignment : ByteBuffer())
            })
    }

    /// Whether committed offsets of `topic` belong to the current members' subscriptions
    /// (Kafka's `isSubscribedToTopic`): when the subscriptions are unknown, assume so.
    func isSubscribed(to topic: String) -> Bool {
        subscribedTopics?.contains(topic) ?? true
    }

    // MARK: JoinGroup

    mutating func join(_ request: JoinRequest, requestID: GroupRequestID, now: Int64) -> [Action] {
        var actions: [Action] = []
        join(request, requestID, now, &actions)
        return actions
    }

    func isValidSessionTimeout(_ timeoutMs: Int32) -> Bool {
        timeoutMs >= configuration.minSessionTimeoutMs && timeoutMs <= configuration.maxSessionTimeoutMs
    }

    private mutating func join(_ request: JoinRequest, _ id: GroupRequestID, _ now: Int64, _ actions: inout [Action]) {
        guard isValidSessionTimeout(request.sessionTimeoutMs) else {
            actions.append(.completeJoin(id, .failure(.invalidSessionTimeout, memberId: request.memberId)))
            return
        }
        guard acceptsJoiningMember(request.memberId) else {
            // Shed a member of an oversized group so it stops counting against the limit.
            removeMember(request.memberId, now, &actions)
            actions.append(.completeJoin(id, .failure(.groupMaxSizeReached, memberId: "")))
            return
        }
        if request.memberId.isEmpty {
            joinNewMember(request, id, now, &actions)
        } else {
            joinExistingMember(request, id, now, &actions)
        }
    }

    private func acceptsJoiningMember(_ memberId: String) -> Bool {
        switch state {
        case .empty, .dead:
            return true
        case .preparingRebalance:
            // Counting members that have rejoined (not all members) lets a shrunk limit
            // push out the last members to rejoin.
            let awaiting = members.values.filter { $0.pendingJoin != nil }.count
            return members[memberId]?.pendingJoin != nil || awaiting < configuration.maxSize
        case .completingRebalance, .stable:
            return members[memberId] != nil || members.count < configuration.maxSize
        }
    }

    private func supportsProtocols(type: String, _ protocols: [GroupProtocol]) -> Bool {
        if case .empty = state {
            return !type.isEmpty && !protocols.isEmpty
        }
        guard protocolType == type else { return false }
        return protocols.contains { proto in
            members.values.allSatisfy { member in member.protocols.contains { $0.name == proto.name } }
        }
    }

    private mutating func joinNewMember(_ request: JoinRequest, _ id: GroupRequestID, _ now: Int64, _ actions: inout [Action]) {
        if case .dead = state {
            // The group was deleted under the member; it should look the coordinator up again.
            actions.append(.completeJoin(id, .failure(.coordinatorNotAvailable, memberId: "")))
            return
        }
        guard supportsProtocols(type: request.protocolType, request.protocols) else {
            actions.append(.completeJoin(id, .failure(.inconsistentGroupProtocol, memberId: "")))
            return
        }
        let newMemberId = request.newMemberId
        if let instanceId = request.groupInstanceId {
            if let existing = staticMembers[instanceId] {
                replaceStaticMemberThenRebalanceOrCompleteJoin(request, instanceId: instanceId, oldMemberId: existing,
                                                               newMemberId: newMemberId, id, now, &actions)
            } else {
                addMemberThenRebalanceOrCompleteJoin(request, memberId: newMemberId, id, now, &actions)
            }
        } else if request.version >= 4 {
            // KIP-394: hand out the id first, so a client that times out and retries its
            // JoinGroup rejoins as the same member instead of adding a ghost one.
            pendingMembers[newMemberId] = now + Int64(request.sessionTimeoutMs)
            actions.append(.completeJoin(id, .failure(.memberIdRequired, memberId: newMemberId)))
        } else {
            addMemberThenRebalanceOrCompleteJoin(request, memberId: newMemberId, id, now, &actions)
        }
    }

    private mutating func joinExistingMember(_ request: JoinRequest, _ id: GroupRequestID, _ now: Int64, _ actions: inout [Action]) {
        let memberId = request.memberId
        if case .dead = state {
            actions.append(.completeJoin(id, .failure(.coordinatorNotAvailable, memberId: memberId)))
            return
        }
        guard supportsProtocols(type: request.protocolType, request.protocols) else {
            actions.append(.completeJoin(id, .failure(.inconsistentGroupProtocol, memberId: memberId)))
            return
        }
        if pendingMembers[memberId] != nil {
            addMemberThenRebalanceOrCompleteJoin(request, memberId: memberId, id, now, &actions)
            return
        }
        if let error = validateMember(memberId, request.groupInstanceId) {
            actions.append(.completeJoin(id, .failure(error, memberId: memberId)))
            return
        }
        let member = members[memberId]!
        switch state {
        case .preparingRebalance:
            updateMember(memberId, request, id, &actions)
            maybePrepareRebalanceOrCompleteJoin(now, &actions)
        case .completingRebalance:
            if member.matches(request.protocols) {
                // The member lost our JoinGroup answer and asks again: same answer.
                actions.append(.completeJoin(id, currentJoinResult(for: memberId, includeMembers: memberId == leaderId)))
            } else {
                updateMember(memberId, request, id, &actions)
                maybePrepareRebalanceOrCompleteJoin(now, &actions)
            }
        case .stable:
            if memberId == leaderId || !member.matches(request.protocols) {
                // A leader's JoinGroup means it wants a new assignment (for instance
                // because topic metadata changed), even with unchanged metadata.
                updateMember(memberId, request, id, &actions)
                maybePrepareRebalanceOrCompleteJoin(now, &actions)
            } else {
                actions.append(.completeJoin(id, currentJoinResult(for: memberId, includeMembers: false)))
            }
        case .empty, .dead:
            actions.append(.completeJoin(id, .failure(.unknownMemberId, memberId: memberId)))
        }
    }

    private func currentJoinResult(for memberId: String, includeMembers: Bool) -> JoinResult {
        JoinResult(error: .none, generationId: generationId, protocolType: protocolType, protocolName: protocolName,
                   leader: leaderId ?? "", skipAssignment: false, memberId: memberId,
                   members: includeMembers ? currentMembers() : [])
    }

    private func currentMembers() -> [JoinedMember] {
        let chosen = protocolName ?? ""
        return memberOrder.compactMap { members[$0] }.map {
            JoinedMember(memberId: $0.memberId, groupInstanceId: $0.groupInstanceId, metadata: $0.metadata(for: chosen) ?? ByteBuffer())
        }
    }

    /// Kafka's `validateMember`: a static member is identified by its instance id, and an
    /// old member id presented with it has been replaced (fenced).
    private func validateMember(_ memberId: String, _ groupInstanceId: String?) -> KafkaErrorCode? {
        if let groupInstanceId {
            guard let current = staticMembers[groupInstanceId] else { return .unknownMemberId }
            return current == memberId ? nil : .fencedInstanceId
        }
        return members[memberId] == nil ? .unknownMemberId : nil
    }

    private mutating func addMemberThenRebalanceOrCompleteJoin(_ request: JoinRequest, memberId: String, _ id: GroupRequestID,
                                                              _ now: Int64, _ actions: inout [Action]) {
        let member = Member(
            memberId: memberId, groupInstanceId: request.groupInstanceId, clientId: request.clientId, clientHost: request.clientHost,
            sessionTimeoutMs: request.sessionTimeoutMs, rebalanceTimeoutMs: request.rebalanceTimeoutMs,
            protocolType: request.protocolType, protocols: request.protocols, pendingJoin: id, isNew: true,
            heartbeatDeadline: now + configuration.newMemberJoinTimeoutMs)
        if case .preparingRebalance(var phase) = state, phase.fromEmpty {
            phase.newMemberAdded = true
            state = .preparingRebalance(phase)
        }
        if members.isEmpty { protocolType = request.protocolType }
        members[memberId] = member
        memberOrder.append(memberId)
        if let instanceId = request.groupInstanceId { staticMembers[instanceId] = memberId }
        if leaderId == nil { leaderId = memberId }
        pendingMembers.removeValue(forKey: memberId)
        maybePrepareRebalanceOrCompleteJoin(now, &actions)
    }

    /// Records a member's new JoinGroup. A JoinGroup it sent earlier and that is still
    /// parked is answered now: the client has given up on it (it only ever has one in
    /// flight), and leaving it parked would leave its caller waiting forever.
    private mutating func updateMember(_ memberId: String, _ request: JoinRequest, _ id: GroupRequestID, _ actions: inout [Action]) {
        if let previous = members[memberId]!.pendingJoin, previous != id {
            actions.append(.completeJoin(previous, .failure(.rebalanceInProgress, memberId: memberId)))
        }
        members[memberId]!.protocols = request.protocols
        members[memberId]!.rebalanceTimeoutMs = request.rebalanceTimeoutMs
        members[memberId]!.sessionTimeoutMs = request.sessionTimeoutMs
        members[memberId]!.pendingJoin = id
    }

    /// A static member restarted: it joins with no member id and its instance id. It takes
    /// over the old member's place and assignment; a Stable group whose protocol choice
    /// does not change is not rebalanced (KIP-345).
    private mutating func replaceStaticMemberThenRebalanceOrCompleteJoin(
        _ request: JoinRequest, instanceId: String, oldMemberId: String, newMemberId: String,
        _ id: GroupRequestID, _ now: Int64, _ actions: inout [Action]
    ) {
        let currentLeader = leaderId
        replaceStaticMember(instanceId: instanceId, oldMemberId: oldMemberId, newMemberId: newMemberId, &actions)
        members[newMemberId]!.heartbeatDeadline = now + Int64(members[newMemberId]!.sessionTimeoutMs)
        updateMember(newMemberId, request, id, &actions)
        switch state {
        case .stable:
            guard protocolName == selectProtocol() else {
                maybePrepareRebalanceOrCompleteJoin(now, &actions)
                return
            }
            var result = JoinResult(error: .none, generationId: generationId, protocolType: protocolType,
                                    protocolName: protocolName, memberId: newMemberId)
            if request.version >= 9 {
                // KIP-814: a replaced leader learns it leads but must not reassign, since a
                // Stable group would not pass a new assignment on to the others.
                let isLeader = leaderId == newMemberId
                result.leader = leaderId ?? ""
                result.members = isLeader ? currentMembers() : []
                result.skipAssignment = isLeader
            } else {
                // Older clients cannot be told to skip the assignment, so name the old
                // leader id: the new member does not match it and will not assign.
                result.leader = currentLeader ?? ""
            }
            members[newMemberId]!.pendingJoin = nil
            actions.append(.completeJoin(id, result))
        case .completingRebalance:
            // The leader may already be computing an assignment for the old member id,
            // which the new id would not get: start over.
            prepareRebalance(now, &actions)
        case .preparingRebalance:
            maybeCompleteJoinPhase(now, &actions)
        case .empty, .dead:
            // Unreachable: a static member exists only in a group with members.
            members[newMemberId]!.pendingJoin = nil
            actions.append(.completeJoin(id, .failure(.unknownMemberId, memberId: "")))
        }
    }

    private mutating func replaceStaticMember(instanceId: String, oldMemberId: String, newMemberId: String, _ actions: inout [Action]) {
        guard var member = members.removeValue(forKey: oldMemberId) else { return }
        // Whoever still waits under the old id is a duplicate instance: fence it now.
        if let pending = member.pendingJoin {
            actions.append(.completeJoin(pending, .failure(.fencedInstanceId, memberId: oldMemberId)))
            member.pendingJoin = nil
        }
        if let pending = member.pendingSync {
            actions.append(.completeSync(pending, .failure(.fencedInstanceId)))
            member.pendingSync = nil
        }
        member.memberId = newMemberId
        member.isNew = false
        members[newMemberId] = member
        if let index = memberOrder.firstIndex(of: oldMemberId) { memberOrder[index] = newMemberId }
        if leaderId == oldMemberId { leaderId = newMemberId }
        staticMembers[instanceId] = newMemberId
        // Kafka leaves the old id in the pending-sync set, which later forces a needless
        // rebalance; the new id owes the SyncGroup instead.
        if pendingSyncMembers.remove(oldMemberId) != nil { pendingSyncMembers.insert(newMemberId) }
    }

    // MARK: Rebalance

    private mutating func maybePrepareRebalanceOrCompleteJoin(_ now: Int64, _ actions: inout [Action]) {
        switch state {
        case .empty, .stable, .completingRebalance:
            prepareRebalance(now, &actions)
        case .preparingRebalance, .dead:
            maybeCompleteJoinPhase(now, &actions)
        }
    }

    private mutating func prepareRebalance(_ now: Int64, _ actions: inout [Action]) {
        if case .completingRebalance = state {
            // Followers waiting for the assignment must rejoin instead.
            for id in memberOrder { members[id]!.assignment = ByteBuffer() }
            propagateAssignment(error: .rebalanceInProgress, now, &actions)
        }
        pendingSyncMembers.removeAll()
        syncDeadline = nil
        if case .empty = state {
            let delay = configuration.initialRebalanceDelayMs
            let phase = JoinPhase(deadline: now + delay, fromEmpty: true,
                                  initialDelay: InitialDelay(delayMs: delay, remainingMs: max(rebalanceTimeoutMs - delay, 0)))
            transition(to: .preparingRebalance(phase), now)
        } else {
            transition(to: .preparingRebalance(JoinPhase(deadline: now + rebalanceTimeoutMs, fromEmpty: false)), now)
            if hasAllMembersJoined { completeJoin(now, &actions) }
        }
    }

    /// Completes the join phase early when everyone is in, except in a first rebalance,
    /// which waits out the initial delay for members still starting up.
    private mutating func maybeCompleteJoinPhase(_ now: Int64, _ actions: inout [Action]) {
        guard case .preparingRebalance(let phase) = state, !phase.fromEmpty, hasAllMembersJoined else { return }
        completeJoin(now, &actions)
    }

    private var hasAllMembersJoined: Bool {
        pendingMembers.isEmpty && members.values.allSatisfy { $0.pendingJoin != nil }
    }

    /// Ends the join phase: drops dynamic members that did not rejoin, starts the next
    /// generation and answers every parked JoinGroup (the leader gets the member list).
    private mutating func completeJoin(_ now: Int64, _ actions: inout [Action]) {
        guard case .preparingRebalance(var phase) = state else { return }
        // Static members are kept: they are expected back after a restart (KIP-345).
        for memberId in memberOrder where members[memberId]!.pendingJoin == nil && members[memberId]!.groupInstanceId == nil {
            removeMember(memberId, now, &actions)
        }
        if !electJoinedLeader() && !members.isEmpty {
            // Only static members that did not rejoin are left; wait for them or for their
            // sessions to expire.
            phase.deadline = now + rebalanceTimeoutMs
            phase.initialDelay = nil
            state = .preparingRebalance(phase)
            return
        }
        generationId += 1
        pendingSyncMembers.removeAll()
        syncDeadline = nil
        if members.isEmpty {
            protocolName = nil
            subscribedTopics = []
            transition(to: .empty, now)
            return
        }
        protocolName = selectProtocol()
        subscribedTopics = computeSubscribedTopics()
        transition(to: .completingRebalance, now)
        for memberId in memberOrder {
            if let pending = members[memberId]!.pendingJoin {
                actions.append(.completeJoin(pending, currentJoinResult(for: memberId, includeMembers: memberId == leaderId)))
                members[memberId]!.pendingJoin = nil
            }
            members[memberId]!.heartbeatDeadline = now + Int64(members[memberId]!.sessionTimeoutMs)
            members[memberId]!.isNew = false
            pendingSyncMembers.insert(memberId)
        }
        syncDeadline = now + rebalanceTimeoutMs
    }

    /// Kafka's `maybeElectNewJoinedLeader`: the leader must be a member that rejoined.
    private mutating func electJoinedLeader() -> Bool {
        guard let leader = leaderId, let current = members[leader] else { return false }
        if current.pendingJoin != nil { return true }
        guard let joined = memberOrder.first(where: { members[$0]!.pendingJoin != nil }) else { return false }
        leaderId = joined
        return true
    }

    /// The protocol every member supports that most members prefer (Kafka counts each
    /// member's vote for its first supported candidate). Ties go to the earliest member's
    /// preference, where Kafka's choice is arbitrary.
    private func selectProtocol() -> String? {
        guard let first = memberOrder.first.flatMap({ members[$0] }) else { return nil }
        let candidates = first.protocols.map(\.name).filter { name in
            members.values.allSatisfy { member in member.protocols.contains { $0.name == name } }
        }
        var votes: [String: Int] = [:]
        for member in members.values {
            if let vote = member.protocols.first(where: { candidates.contains($0.name) }) {
                votes[vote.name, default: 0] += 1
            }
        }
        var best: String?
        for name in candidates where best == nil || votes[name, default: 0] > votes[best!, default: 0] {
            best = name
        }
        return best
    }

    private func computeSubscribedTopics() -> Set<String>? {
        if members.isEmpty { return [] }
        guard protocolType == "consumer", let chosen = protocolName else { return nil }
        var topics: Set<String> = []
        for member in members.values {
            guard let metadata = member.metadata(for: chosen),
                  let subscription = ConsumerGroup.decodeSubscription(metadata) else { return nil }
            topics.formUnion(subscription.topics)
        }
        return topics
    }

    /// Parses consumer-protocol subscription metadata: a version, then the fields.
    /// Versions newer than we know are read with the newest layout, as Kafka does.
    static func decodeSubscription(_ metadata: ByteBuffer) -> ConsumerProtocolSubscription? {
        var buffer = metadata
        guard let version = buffer.readInteger(as: Int16.self), version >= 0 else { return nil }
        let readable = min(version, ConsumerProtocolSubscription.validVersions.upperBound)
        return try? ConsumerProtocolSubscription(from: &buffer, version: readable)
    }

    private mutating func transition(to newState: State, _ now: Int64) {
        state = newState
        stateTimestamp = now
    }

    /// Answers every parked SyncGroup with the member's assignment (or the error), and
    /// restarts their session clocks: a member parked in SyncGroup could not heartbeat.
    private mutating func propagateAssignment(error: KafkaErrorCode, _ now: Int64, _ actions: inout [Action]) {
        for memberId in memberOrder {
            guard let pending = members[memberId]!.pendingSync else { continue }
            let member = members[memberId]!
            let result = SyncResult(error: error,
                                    protocolType: error == .none ? protocolType : nil,
                                    protocolName: error == .none ? protocolName : nil,
                                    assignment: member.assignment)
            actions.append(.completeSync(pending, result))
            members[memberId]!.pendingSync = nil
            members[memberId]!.heartbeatDeadline = now + Int64(member.sessionTimeoutMs)
        }
    }

    /// Removes a member (or a pending member id) and answers whatever it had parked, so
    /// its callers are not left waiting.
    private mutating func removeMember(_ memberId: String, _ now: Int64, _ actions: inout [Action]) {
        pendingMembers.removeValue(forKey: memberId)
        pendingSyncMembers.remove(memberId)
        guard let member = members.removeValue(forKey: memberId) else { return }
        memberOrder.removeAll { $0 == memberId }
        if let pending = member.pendingJoin {
            // UNKNOWN_MEMBER_ID with no id makes a client that is still alive join afresh.
            actions.append(.completeJoin(pending, .failure(.unknownMemberId, memberId: "")))
        }
        if let pending = member.pendingSync {
            actions.append(.completeSync(pending, .failure(.unknownMemberId)))
        }
        if let instanceId = member.groupInstanceId, staticMembers[instanceId] == memberId {
            staticMembers.removeValue(forKey: instanceId)
        }
        if leaderId == memberId { leaderId = memberOrder.first }
    }

    // MARK: SyncGroup

    mutating func sync(_ request: SyncRequest, requestID: GroupRequestID, now: Int64) -> [Action] {
        var actions: [Action] = []
        if case .dead = state {
            actions.append(.completeSync(requestID, .failure(.coordinatorNotAvailable)))
            return actions
        }
        if let error = validateMember(request.memberId, request.groupInstanceId) {
            actions.append(.completeSync(requestID, .failure(error)))
            return actions
        }
        if request.generationId != generationId {
            actions.append(.completeSync(requestID, .failure(.illegalGeneration)))
            return actions
        }
        if Self.isInconsistent(request.protocolType, protocolType) || Self.isInconsistent(request.protocolName, protocolName) {
            actions.append(.completeSync(requestID, .failure(.inconsistentGroupProtocol)))
            return actions
        }
        let memberId = request.memberId
        switch state {
        case .preparingRebalance:
            actions.append(.completeSync(requestID, .failure(.rebalanceInProgress)))
        case .completingRebalance:
            if let previous = members[memberId]!.pendingSync, previous != requestID {
                actions.append(.completeSync(previous, .failure(.rebalanceInProgress)))
            }
            members[memberId]!.pendingSync = requestID
            removePendingSync(memberId)
            if memberId == leaderId {
                let assigned = Dictionary(request.assignments.map { ($0.memberId, $0.assignment) }, uniquingKeysWith: { _, last in last })
                for id in memberOrder { members[id]!.assignment = assigned[id] ?? ByteBuffer() }
                propagateAssignment(error: .none, now, &actions)
                transition(to: .stable, now)
            }
        case .stable:
            removePendingSync(memberId)
            let member = members[memberId]!
            actions.append(.completeSync(requestID, SyncResult(error: .none, protocolType: protocolType,
                                                               protocolName: protocolName, assignment: member.assignment)))
        case .empty, .dead:
            actions.append(.completeSync(requestID, .failure(.unknownMemberId)))
        }
        return actions
    }

    private static func isInconsistent(_ requested: String?, _ current: String?) -> Bool {
        guard let requested, let current else { return false }
        return requested != current
    }

    private mutating func removePendingSync(_ memberId: String) {
        pendingSyncMembers.remove(memberId)
        if pendingSyncMembers.isEmpty { syncDeadline = nil }
    }

    // MARK: Heartbeat

    mutating func heartbeat(memberId: String, groupInstanceId: String?, generationId: Int32, now: Int64) -> KafkaErrorCode {
        if case .dead = state { return .coordinatorNotAvailable }
        if let error = validateMember(memberId, groupInstanceId) { return error }
        if generationId != self.generationId { return .illegalGeneration }
        switch state {
        case .empty, .dead:
            return .unknownMemberId
        case .preparingRebalance:
            touch(memberId, now)
            return .rebalanceInProgress
        case .completingRebalance, .stable:
            // Consumers may heartbeat between their JoinGroup answer and SyncGroup.
            touch(memberId, now)
            return .none
        }
    }

    private mutating func touch(_ memberId: String, _ now: Int64) {
        members[memberId]!.heartbeatDeadline = now + Int64(members[memberId]!.sessionTimeoutMs)
    }

    // MARK: LeaveGroup

    /// Removes members (LeaveGroup v3+ batches them; an admin may name a static member
    /// by instance id alone) and rebalances the rest.
    mutating func leave(_ leaving: [LeavingMember], now: Int64) -> (LeaveResult, [Action]) {
        var actions: [Action] = []
        if case .dead = state {
            return (LeaveResult(error: .coordinatorNotAvailable, members: []), actions)
        }
        var results: [LeaveResult.Member] = []
        var removedAny = false
        for member in leaving {
            var error = KafkaErrorCode.none
            if member.memberId.isEmpty {
                if let instanceId = member.groupInstanceId, let current = staticMembers[instanceId] {
                    removeMember(current, now, &actions)
                } else {
                    error = .unknownMemberId
                }
            } else if pendingMembers[member.memberId] != nil {
                removeMember(member.memberId, now, &actions)
            } else if let validation = validateMember(member.memberId, member.groupInstanceId) {
                error = validation
            } else {
                removeMember(member.memberId, now, &actions)
            }
            if error == .none { removedAny = true }
            results.append(LeaveResult.Member(memberId: member.memberId, groupInstanceId: member.groupInstanceId, error: error))
        }
        if removedAny {
            switch state {
            case .stable, .completingRebalance: maybePrepareRebalanceOrCompleteJoin(now, &actions)
            case .preparingRebalance: maybeCompleteJoinPhase(now, &actions)
            case .empty, .dead: break
            }
        }
        return (LeaveResult(error: .none, members: results), actions)
    }

    // MARK: Timers

    /// Expires sessions and pending member ids, and ends join and sync phases whose
    /// deadline has passed.
    mutating func tick(now: Int64) -> [Action] {
        var actions: [Action] = []
        for (memberId, deadline) in pendingMembers where now >= deadline {
            removeMember(memberId, now, &actions)
            if case .preparingRebalance = state, hasAllMembersJoined { completeJoin(now, &actions) }
        }
        for memberId in memberOrder {
            guard let member = members[memberId], now >= member.heartbeatDeadline, !member.isKeptAliveByRebalance else { continue }
            removeMember(memberId, now, &actions)
            switch state {
            case .stable, .completingRebalance:
                maybePrepareRebalanceOrCompleteJoin(now, &actions)
            case .preparingRebalance:
                if hasAllMembersJoined { completeJoin(now, &actions) }
            case .empty, .dead:
                break
            }
        }
        while case .preparingRebalance(var phase) = state, now >= phase.deadline {
            if let initial = phase.initialDelay, phase.newMemberAdded, initial.remainingMs > 0 {
                // Kafka's InitialDelayedJoin: someone joined during this round, so give the
                // rest another round, never past the rebalance timeout. Counting from the
                // deadline rather than `now` keeps a late tick from stretching the delay.
                let delay = min(configuration.initialRebalanceDelayMs, initial.remainingMs)
                phase.initialDelay = InitialDelay(delayMs: delay, remainingMs: max(initial.remainingMs - initial.delayMs, 0))
                phase.newMemberAdded = false
                phase.deadline += delay
                state = .preparingRebalance(phase)
            } else {
                completeJoin(now, &actions)
                break
            }
        }
        switch state {
        case .completingRebalance, .stable:
            if let deadline = syncDeadline, now >= deadline, !pendingSyncMembers.isEmpty {
                // Members that took their JoinGroup answer but never synced are gone.
                for memberId in memberOrder where pendingSyncMembers.contains(memberId) {
                    removeMember(memberId, now, &actions)
                }
                prepareRebalance(now, &actions)
            }
        default:
            break
        }
        return actions
    }

    // MARK: Offsets and administration

    /// Kafka's `validateOffsetCommit` for a group that exists. A commit with generation -1
    /// and no member id is a "simple" commit (a consumer that assigns partitions itself,
    /// or an admin tool); it is accepted only while the group has no members.
    func validateOffsetCommit(memberId: String, groupInstanceId: String?, generationId: Int32) -> KafkaErrorCode {
        if case .dead = state { return .coordinatorNotAvailable }
        if generationId < 0, case .empty = state { return .none }
        if generationId >= 0 || !memberId.isEmpty || groupInstanceId != nil {
            if let error = validateMember(memberId, groupInstanceId) { return error }
            if generationId != self.generationId { return .illegalGeneration }
        } else {
            // A simple commit to a group with members could overwrite their progress.
            return .unknownMemberId
        }
        if case .completingRebalance = state {
            // The member knows the new generation but has no assignment yet.
            return .rebalanceInProgress
        }
        return .none
    }

    /// Kafka's `validateDeleteGroup`: only a group without members can be deleted.
    func validateDelete() -> KafkaErrorCode {
        switch state {
        case .dead: .groupIdNotFound
        case .empty: .none
        case .preparingRebalance, .completingRebalance, .stable: .nonEmptyGroup
        }
    }

    /// Kafka's `validateOffsetDelete`: offsets of a group with members may be deleted only
    /// when it uses the consumer protocol (whose subscriptions say what is in use).
    func validateOffsetDelete() -> KafkaErrorCode {
        switch state {
        case .dead: return .groupIdNotFound
        case .empty: return .none
        case .preparingRebalance, .completingRebalance, .stable:
            return protocolType == "consumer" ? .none : .nonEmptyGroup
        }
    }

    /// Marks the group deleted. Anything still parked (only possible for pending member
    /// ids, since a deletable group has no members) is answered.
    mutating func markDead(now: Int64) -> [Action] {
        var actions: [Action] = []
        for memberId in memberOrder + Array(pendingMembers.keys) { removeMember(memberId, now, &actions) }
        transition(to: .dead, now)
        return actions
    }
}
