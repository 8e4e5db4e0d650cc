@testable import Broker
import Foundation
import KafkaProtocol
import Logging
import NIOCore
import NIOPosix
import XCTest

/// Drives one `ConsumerGroup` with plain values: request ids are numbered here, answers
/// are collected by id, and time only moves when a test says so.
private struct Harness {
    var group: ConsumerGroup
    var nextID: GroupRequestID = 1
    var joins: [GroupRequestID: ConsumerGroup.JoinResult] = [:]
    var syncs: [GroupRequestID: ConsumerGroup.SyncResult] = [:]
    var now: Int64 = 0

    init(delay: Int64 = 0, now: Int64 = 0) {
        var configuration = ConsumerGroup.Configuration()
        configuration.initialRebalanceDelayMs = delay
        group = ConsumerGroup(groupId: "g", configuration: configuration, now: now)
        self.now = now
    }

    mutating func record(_ actions: [ConsumerGroup.Action]) {
        for action in actions {
            switch action {
            case .completeJoin(let id, let result):
                XCTAssertNil(joins[id], "join \(id) answered twice")
                joins[id] = result
            case .completeSync(let id, let result):
                XCTAssertNil(syncs[id], "sync \(id) answered twice")
                syncs[id] = result
            }
        }
    }

    /// Sends a JoinGroup; returns its id (look the answer up in `joins`).
    @discardableResult
    mutating func join(_ memberId: String = "", instance: String? = nil, newId: String, protocols: [(String, [String])] = [("range", ["t"])],
                       protocolType: String = "consumer", session: Int32 = 10_000, rebalance: Int32 = 30_000,
                       version: Int16 = 9) -> GroupRequestID {
        let id = nextID
        nextID += 1
        let request = ConsumerGroup.JoinRequest(
            memberId: memberId, groupInstanceId: instance, clientId: "client", clientHost: "/127.0.0.1",
            sessionTimeoutMs: session, rebalanceTimeoutMs: rebalance, protocolType: protocolType,
            protocols: protocols.map { ConsumerGroup.GroupProtocol(name: $0.0, metadata: subscription($0.1)) },
            version: version, newMemberId: newId)
        record(group.join(request, requestID: id, now: now))
        return id
    }

    /// A dynamic member's v4+ two-step join: MEMBER_ID_REQUIRED, then the real join.
    @discardableResult
    mutating func joinNew(_ memberId: String, protocols: [(String, [String])] = [("range", ["t"])], rebalance: Int32 = 30_000) -> GroupRequestID {
        let first = join(newId: memberId, protocols: protocols, rebalance: rebalance)
        XCTAssertEqual(joins[first]?.error, .memberIdRequired)
        XCTAssertEqual(joins[first]?.memberId, memberId)
        return join(memberId, newId: "unused", protocols: protocols, rebalance: rebalance)
    }

    @discardableResult
    mutating func sync(_ memberId: String, instance: String? = nil, generation: Int32, assignments: [String: String] = [:]) -> GroupRequestID {
        let id = nextID
        nextID += 1
        let request = ConsumerGroup.SyncRequest(
            memberId: memberId, groupInstanceId: instance, generationId: generation, protocolType: "consumer", protocolName: nil,
            assignments: assignments.sorted { $0.key < $1.key }.map { ($0.key, ByteBuffer(string: $0.value)) })
        record(group.sync(request, requestID: id, now: now))
        return id
    }

    mutating func heartbeat(_ memberId: String, instance: String? = nil, generation: Int32) -> KafkaErrorCode {
        group.heartbeat(memberId: memberId, groupInstanceId: instance, generationId: generation, now: now)
    }

    mutating func tick(to time: Int64) {
        now = time
        record(group.tick(now: now))
    }

    mutating func leave(_ members: [(String, String?)]) -> ConsumerGroup.LeaveResult {
        let (result, actions) = group.leave(members.map { ConsumerGroup.LeavingMember(memberId: $0.0, groupInstanceId: $0.1) }, now: now)
        record(actions)
        return result
    }

    /// Forms a Stable group of dynamic members with assignments "a-<member>".
    mutating func stableGroup(_ memberIds: [String]) {
        var joinIds: [GroupRequestID] = []
        for memberId in memberIds { joinIds.append(joinNew(memberId)) }
        tick(to: now)
        for id in joinIds { XCTAssertEqual(joins[id]?.error, KafkaErrorCode.none) }
        let generation = group.generationId
        var syncIds: [GroupRequestID] = []
        for memberId in memberIds where memberId != group.leaderId { syncIds.append(sync(memberId, generation: generation)) }
        syncIds.append(sync(group.leaderId!, generation: generation,
                            assignments: Dictionary(uniqueKeysWithValues: memberIds.map { ($0, "a-\($0)") })))
        for id in syncIds { XCTAssertEqual(syncs[id]?.error, KafkaErrorCode.none) }
        XCTAssertEqual(group.stateName, .stable)
    }
}

/// Consumer-protocol subscription metadata (version prefix, then the v1 layout).
private func subscription(_ topics: [String]) -> ByteBuffer {
    var buffer = ByteBuffer()
    buffer.writeInteger(Int16(1))
    try! ConsumerProtocolSubscription(topics: topics).encode(into: &buffer, version: 1)
    return buffer
}

final class GroupStateMachineTests: XCTestCase {
    func testSingleMemberJoinsAndSyncs() {
        var h = Harness()
        let first = h.join(newId: "client-1")
        XCTAssertEqual(h.joins[first], .failure(.memberIdRequired, memberId: "client-1"))
        XCTAssertEqual(h.group.stateName, .empty)

        let second = h.join("client-1", newId: "unused")
        XCTAssertNil(h.joins[second], "the first rebalance waits for the (zero) initial delay")
        XCTAssertEqual(h.group.stateName, .preparingRebalance)
        h.tick(to: 0)
        let joined = h.joins[second]!
        XCTAssertEqual(joined.error, .none)
        XCTAssertEqual(joined.generationId, 1)
        XCTAssertEqual(joined.memberId, "client-1")
        XCTAssertEqual(joined.leader, "client-1")
        XCTAssertEqual(joined.protocolType, "consumer")
        XCTAssertEqual(joined.protocolName, "range")
        XCTAssertEqual(joined.members.map(\.memberId), ["client-1"])
        XCTAssertEqual(h.group.stateName, .completingRebalance)

        let sync = h.sync("client-1", generation: 1, assignments: ["client-1": "all of t"])
        XCTAssertEqual(h.syncs[sync]?.error, KafkaErrorCode.none)
        XCTAssertEqual(h.syncs[sync]?.assignment, ByteBuffer(string: "all of t"))
        XCTAssertEqual(h.syncs[sync]?.protocolName, "range")
        XCTAssertEqual(h.group.stateName, .stable)
        XCTAssertEqual(h.heartbeat("client-1", generation: 1), KafkaErrorCode.none)
    }

    func testThreeMembersJoinFollowersWaitForLeaderAssignment() {
        var h = Harness(delay: 3000)
        // Version 3 clients join in one step.
        let a = h.join(newId: "a", version: 3)
        h.now = 1000
        let b = h.join(newId: "b", version: 3)
        h.now = 2000
        let c = h.join(newId: "c", version: 3)
        h.tick(to: 3000)
        XCTAssertTrue(h.joins.isEmpty, "members joined during the delay, so it is extended")
        h.tick(to: 6000)
        XCTAssertEqual(Set(h.joins.keys), [a, b, c])
        XCTAssertEqual(h.joins[a]?.members.map(\.memberId), ["a", "b", "c"], "the first member leads and sees everyone")
        XCTAssertEqual(h.joins[b]?.members, [])
        XCTAssertEqual(h.joins[c]?.leader, "a")
        XCTAssertEqual(Set(h.joins.values.map(\.generationId)), [1])

        let syncB = h.sync("b", generation: 1)
        let syncC = h.sync("c", generation: 1)
        XCTAssertNil(h.syncs[syncB], "followers wait for the leader")
        XCTAssertEqual(h.heartbeat("b", generation: 1), KafkaErrorCode.none, "heartbeats are fine while completing the rebalance")
        let syncA = h.sync("a", generation: 1, assignments: ["a": "p0", "b": "p1"])
        XCTAssertEqual(h.syncs[syncA]?.assignment, ByteBuffer(string: "p0"))
        XCTAssertEqual(h.syncs[syncB]?.assignment, ByteBuffer(string: "p1"))
        XCTAssertEqual(h.syncs[syncC]?.error, KafkaErrorCode.none)
        XCTAssertEqual(h.syncs[syncC]?.assignment, ByteBuffer(), "a member the leader left out gets an empty assignment")
        XCTAssertEqual(h.group.stateName, .stable)

        let description = h.group.describe()
        XCTAssertEqual(description.state.rawValue, "Stable")
        XCTAssertEqual(description.protocolName, "range")
        XCTAssertEqual(description.members.map(\.assignment), [ByteBuffer(string: "p0"), ByteBuffer(string: "p1"), ByteBuffer()])
        XCTAssertEqual(h.group.subscribedTopics, ["t"])
    }

    func testMemberIdRequiredOnlyForDynamicMembersFromVersion4() {
        var h = Harness()
        let v3 = h.join(newId: "old-client", version: 3)
        XCTAssertNil(h.joins[v3], "before v4 the member is added at once")
        let v4 = h.join(newId: "new-client", version: 4)
        XCTAssertEqual(h.joins[v4], .failure(.memberIdRequired, memberId: "new-client"))
        let staticJoin = h.join(instance: "i1", newId: "i1-uuid", version: 5)
        XCTAssertNil(h.joins[staticJoin], "static members need no second round")
        XCTAssertEqual(h.group.memberIds, ["old-client", "i1-uuid"])
        h.tick(to: 0)
        XCTAssertEqual(h.joins[v3]?.error, KafkaErrorCode.none)
        XCTAssertEqual(h.joins[staticJoin]?.members, [], "not the leader")
        XCTAssertEqual(h.joins[v3]?.members.map(\.groupInstanceId), [nil, "i1"])
    }

    func testPendingMemberIdHoldsEarlyCompletionUntilItJoinsOrExpires() {
        var h = Harness()
        h.stableGroup(["a"])
        let pending = h.join(newId: "b")
        XCTAssertEqual(h.joins[pending]?.error, .memberIdRequired)
        XCTAssertEqual(h.group.stateName, .stable, "an id handed out is not a member yet")
        let rejoin = h.join("a", newId: "unused")
        XCTAssertNil(h.joins[rejoin], "b is expected to join with its new id")
        h.tick(to: 9999)
        XCTAssertNil(h.joins[rejoin])
        h.tick(to: 10_000)
        XCTAssertEqual(h.joins[rejoin]?.generationId, 2, "b's id expired with its session timeout")
        XCTAssertEqual(h.joins[rejoin]?.members.map(\.memberId), ["a"])
    }

    func testProtocolSelectionAcrossMembers() {
        var h = Harness(delay: 1000)
        // Only roundrobin is supported by everyone, although two members prefer range.
        let a = h.join(newId: "a", protocols: [("range", ["t"]), ("roundrobin", ["t"])], version: 3)
        let b = h.join(newId: "b", protocols: [("range", ["t"]), ("roundrobin", ["t"])], version: 3)
        let c = h.join(newId: "c", protocols: [("roundrobin", ["t"]), ("sticky", ["t"])], version: 3)
        h.tick(to: 1000)  // b and c arrived during the delay: one more round
        h.tick(to: 2000)
        XCTAssertEqual(h.joins[a]?.protocolName, "roundrobin")
        XCTAssertEqual(h.joins[b]?.protocolName, "roundrobin")
        XCTAssertEqual(h.joins[c]?.protocolName, "roundrobin")

        // With several common protocols the members' first choices vote.
        var v = Harness(delay: 1000)
        let x = v.join(newId: "x", protocols: [("range", ["t"]), ("cooperative-sticky", ["t"])], version: 3)
        v.join(newId: "y", protocols: [("cooperative-sticky", ["t"]), ("range", ["t"])], version: 3)
        v.join(newId: "z", protocols: [("cooperative-sticky", ["t"]), ("range", ["t"])], version: 3)
        v.tick(to: 1000)
        v.tick(to: 2000)
        XCTAssertEqual(v.joins[x]?.protocolName, "cooperative-sticky")
    }

    func testInconsistentProtocolsAndSessionTimeoutBounds() {
        var h = Harness()
        h.stableGroup(["a"])
        let sticky = h.join(newId: "b", protocols: [("sticky", ["t"])])
        XCTAssertEqual(h.joins[sticky], .failure(.inconsistentGroupProtocol, memberId: ""))
        let connect = h.join(newId: "c", protocolType: "connect")
        XCTAssertEqual(h.joins[connect]?.error, .inconsistentGroupProtocol)
        let short = h.join(newId: "d", session: 5999)
        XCTAssertEqual(h.joins[short]?.error, .invalidSessionTimeout)
        let long = h.join(newId: "e", session: 1_800_001)
        XCTAssertEqual(h.joins[long]?.error, .invalidSessionTimeout)
        XCTAssertEqual(h.group.stateName, .stable, "rejected joins do not disturb the group")
    }

    func testRebalanceTimeoutDropsMembersThatDoNotRejoin() {
        var h = Harness()
        h.stableGroup(["a", "b"])
        h.now = 1000
        let c = h.joinNew("c")
        XCTAssertEqual(h.group.stateName, .preparingRebalance)
        let a = h.join("a", newId: "unused")
        // b keeps heartbeating but never rejoins; its session stays alive.
        for time: Int64 in [9000, 18_000, 27_000] {
            h.now = time
            XCTAssertEqual(h.heartbeat("b", generation: 1), .rebalanceInProgress)
        }
        h.tick(to: 30_999)
        XCTAssertNil(h.joins[a])
        h.tick(to: 31_000)
        XCTAssertEqual(h.joins[a]?.generationId, 2)
        XCTAssertEqual(h.joins[a]?.members.map(\.memberId), ["a", "c"])
        XCTAssertEqual(h.joins[c]?.error, KafkaErrorCode.none)
        XCTAssertEqual(h.group.memberIds, ["a", "c"])
        XCTAssertEqual(h.heartbeat("b", generation: 1), .unknownMemberId)
    }

    func testSessionExpiryRemovesMemberAndRebalances() {
        var h = Harness()
        h.stableGroup(["a", "b"])
        h.now = 9000
        XCTAssertEqual(h.heartbeat("a", generation: 1), KafkaErrorCode.none)
        h.tick(to: 9999)
        XCTAssertEqual(h.group.memberIds, ["a", "b"])
        h.tick(to: 10_000)
        XCTAssertEqual(h.group.memberIds, ["a"], "b sent nothing for its 10 s session")
        XCTAssertEqual(h.group.stateName, .preparingRebalance)
        XCTAssertEqual(h.heartbeat("a", generation: 1), .rebalanceInProgress)
        let rejoin = h.join("a", newId: "unused")
        XCTAssertEqual(h.joins[rejoin]?.generationId, 2, "everyone left has rejoined: no need to wait")
        XCTAssertEqual(h.joins[rejoin]?.members.map(\.memberId), ["a"])
    }

    func testGenerationFencing() {
        var h = Harness()
        h.stableGroup(["a", "b"])
        XCTAssertEqual(h.heartbeat("a", generation: 0), .illegalGeneration)
        XCTAssertEqual(h.heartbeat("zombie", generation: 1), .unknownMemberId)
        let staleSync = h.sync("a", generation: 0)
        XCTAssertEqual(h.syncs[staleSync]?.error, .illegalGeneration)
        let unknownSync = h.sync("zombie", generation: 1)
        XCTAssertEqual(h.syncs[unknownSync]?.error, .unknownMemberId)

        h.join("a", newId: "unused")  // the leader rejoining starts a rebalance
        XCTAssertEqual(h.group.stateName, .preparingRebalance)
        let duringRebalance = h.sync("b", generation: 1)
        XCTAssertEqual(h.syncs[duringRebalance]?.error, .rebalanceInProgress)
        XCTAssertEqual(h.heartbeat("b", generation: 1), .rebalanceInProgress)
        let unknownJoin = h.join("zombie", newId: "unused")
        XCTAssertEqual(h.joins[unknownJoin]?.error, .unknownMemberId)
    }

    func testStaticMemberRestartsWithoutRebalance() {
        var h = Harness()
        let first = h.join(instance: "i1", newId: "i1-a")
        let second = h.join(instance: "i2", newId: "i2-a")
        h.tick(to: 0)
        XCTAssertEqual(h.joins[first]?.leader, "i1-a")
        XCTAssertEqual(h.joins[second]?.members, [])
        h.sync("i2-a", instance: "i2", generation: 1)
        h.sync("i1-a", instance: "i1", generation: 1, assignments: ["i1-a": "p0", "i2-a": "p1"])
        XCTAssertEqual(h.group.stateName, .stable)

        // i2 restarts: it has lost its member id and joins with its instance id alone.
        h.now = 5000
        let rejoin = h.join(instance: "i2", newId: "i2-b")
        let result = h.joins[rejoin]!
        XCTAssertEqual(result.error, .none)
        XCTAssertEqual(result.memberId, "i2-b")
        XCTAssertEqual(result.generationId, 1, "same generation: no rebalance")
        XCTAssertEqual(result.leader, "i1-a")
        XCTAssertFalse(result.skipAssignment)
        XCTAssertEqual(h.group.stateName, .stable)
        let sync = h.sync("i2-b", instance: "i2", generation: 1)
        XCTAssertEqual(h.syncs[sync]?.assignment, ByteBuffer(string: "p1"), "the old member's assignment carries over")

        // The old incarnation is fenced wherever it shows up.
        XCTAssertEqual(h.heartbeat("i2-a", instance: "i2", generation: 1), .fencedInstanceId)
        let oldJoin = h.join("i2-a", instance: "i2", newId: "unused")
        XCTAssertEqual(h.joins[oldJoin]?.error, .fencedInstanceId)
        let oldSync = h.sync("i2-a", instance: "i2", generation: 1)
        XCTAssertEqual(h.syncs[oldSync]?.error, .fencedInstanceId)
        XCTAssertEqual(h.group.validateOffsetCommit(memberId: "i2-a", groupInstanceId: "i2", generationId: 1), .fencedInstanceId)
        XCTAssertEqual(h.group.validateOffsetCommit(memberId: "i2-b", groupInstanceId: "i2", generationId: 1), .none)
        XCTAssertEqual(h.group.stateName, .stable)
    }

    func testStaticLeaderRestartIsToldToSkipAssignmentFromVersion9() {
        var h = Harness()
        h.join(instance: "i1", newId: "i1-a")
        h.join(instance: "i2", newId: "i2-a")
        h.tick(to: 0)
        h.sync("i1-a", instance: "i1", generation: 1, assignments: ["i1-a": "p0", "i2-a": "p1"])

        let v9 = h.join(instance: "i1", newId: "i1-b", version: 9)
        XCTAssertEqual(h.joins[v9]?.leader, "i1-b")
        XCTAssertEqual(h.joins[v9]?.skipAssignment, true)
        XCTAssertEqual(h.joins[v9]?.members.map(\.memberId), ["i1-b", "i2-a"])

        let v8 = h.join(instance: "i1", newId: "i1-c", version: 8)
        XCTAssertEqual(h.joins[v8]?.leader, "i1-b", "older clients are given the previous leader id so they do not assign")
        XCTAssertEqual(h.joins[v8]?.members, [])
        XCTAssertEqual(h.group.leaderId, "i1-c")
        XCTAssertEqual(h.group.stateName, .stable)
    }

    func testStaticMemberWithNewProtocolsForcesRebalance() {
        var h = Harness()
        h.join(instance: "i1", newId: "i1-a", protocols: [("range", ["t"])])
        h.tick(to: 0)
        h.sync("i1-a", instance: "i1", generation: 1, assignments: ["i1-a": "p0"])
        let rejoin = h.join(instance: "i1", newId: "i1-b", protocols: [("roundrobin", ["t"]), ("range", ["t"])])
        XCTAssertEqual(h.joins[rejoin]?.generationId, 2, "the chosen protocol changes, so the group rebalances")
        XCTAssertEqual(h.joins[rejoin]?.protocolName, "roundrobin")
    }

    func testInitialDelayAppliesOnlyToTheFirstRebalance() {
        var h = Harness(delay: 3000)
        let a = h.joinNew("a")
        h.tick(to: 2999)
        XCTAssertNil(h.joins[a], "the first rebalance waits for more members")
        h.tick(to: 3000)
        XCTAssertEqual(h.joins[a]?.generationId, 1)
        h.sync("a", generation: 1, assignments: ["a": "p0"])

        h.now = 10_000
        let b = h.joinNew("b")
        h.now = 10_050
        let rejoinA = h.join("a", newId: "unused")
        XCTAssertEqual(h.joins[rejoinA]?.generationId, 2, "later rebalances complete as soon as everyone rejoined")
        XCTAssertEqual(h.joins[b]?.generationId, 2)
    }

    func testInitialDelayExtendsWhileMembersArriveUpToRebalanceTimeout() {
        var h = Harness(delay: 3000)
        let first = h.join(newId: "m0", rebalance: 10_000, version: 3)
        for (time, memberId) in [(2000, "m1"), (5000, "m2"), (8000, "m3"), (9500, "m4")] {
            h.tick(to: Int64(time))
            h.join(newId: memberId, rebalance: 10_000, version: 3)
        }
        h.tick(to: 9999)
        XCTAssertNil(h.joins[first])
        h.tick(to: 10_000)
        XCTAssertEqual(h.joins[first]?.members.count, 5, "the delay never runs past the rebalance timeout")

        // Without newcomers the delay is not extended.
        var quiet = Harness(delay: 3000)
        let alone = quiet.join(newId: "m0", rebalance: 10_000, version: 3)
        quiet.tick(to: 3000)
        XCTAssertEqual(quiet.joins[alone]?.generationId, 1)
    }

    func testLeaveTriggersRebalance() {
        var h = Harness()
        h.stableGroup(["a", "b", "c"])
        let result = h.leave([("b", nil), ("nobody", nil)])
        XCTAssertEqual(result.error, .none)
        XCTAssertEqual(result.members.map(\.error), [.none, .unknownMemberId])
        XCTAssertEqual(h.group.stateName, .preparingRebalance)
        XCTAssertEqual(h.heartbeat("a", generation: 1), .rebalanceInProgress)
        let a = h.join("a", newId: "unused")
        XCTAssertNil(h.joins[a])
        let c = h.join("c", newId: "unused")
        XCTAssertEqual(h.joins[a]?.generationId, 2)
        XCTAssertEqual(h.joins[c]?.generationId, 2)
        XCTAssertEqual(h.group.memberIds, ["a", "c"])

        // An administrator can remove a static member by instance id alone.
        var s = Harness()
        s.join(instance: "i1", newId: "i1-a")
        s.tick(to: 0)
        s.sync("i1-a", instance: "i1", generation: 1)
        let removed = s.leave([("", "i1")])
        XCTAssertEqual(removed.members.map(\.error), [.none])
        XCTAssertEqual(s.group.stateName, .empty, "the last member left: the generation ends empty")
        XCTAssertEqual(s.group.generationId, 2)
    }

    func testParkedRequestsAreAnsweredWhenTheirMemberGoes() {
        var h = Harness()
        h.stableGroup(["a", "b"])
        let parked = h.join("b", newId: "unused", protocols: [("range", ["t", "u"])])  // new metadata: rebalance
        XCTAssertNil(h.joins[parked])
        _ = h.leave([("b", nil)])
        XCTAssertEqual(h.joins[parked], .failure(.unknownMemberId, memberId: ""))

        // A follower waiting in SyncGroup when a rebalance starts is told to rejoin.
        var s = Harness()
        let a = s.joinNew("a")
        let b = s.joinNew("b")
        s.tick(to: 0)
        XCTAssertEqual(s.joins[a]?.leader, "a")
        XCTAssertNotNil(s.joins[b])
        let waiting = s.sync("b", generation: 1)
        s.joinNew("c")
        XCTAssertEqual(s.syncs[waiting]?.error, .rebalanceInProgress)
    }

    func testMembersThatNeverSyncAreRemovedAfterTheRebalanceTimeout() {
        var h = Harness()
        let a = h.joinNew("a")
        let b = h.joinNew("b")
        h.tick(to: 0)
        XCTAssertNotNil(h.joins[a])
        XCTAssertNotNil(h.joins[b])
        h.sync("a", generation: 1, assignments: ["a": "p0", "b": "p1"])
        XCTAssertEqual(h.group.stateName, .stable)
        h.now = 5000
        XCTAssertEqual(h.heartbeat("a", generation: 1), KafkaErrorCode.none)
        XCTAssertEqual(h.heartbeat("b", generation: 1), KafkaErrorCode.none)
        h.now = 25_000
        XCTAssertEqual(h.heartbeat("a", generation: 1), KafkaErrorCode.none)
        XCTAssertEqual(h.heartbeat("b", generation: 1), KafkaErrorCode.none)
        h.tick(to: 30_000)
        XCTAssertEqual(h.group.memberIds, ["a"], "b took its JoinGroup answer but never sent SyncGroup")
        XCTAssertEqual(h.group.stateName, .preparingRebalance)
    }

    func testOffsetCommitFencing() {
        var h = Harness()
        XCTAssertEqual(h.group.validateOffsetCommit(memberId: "", groupInstanceId: nil, generationId: -1), .none,
                       "a simple commit to a group without members")
        h.stableGroup(["a", "b"])
        XCTAssertEqual(h.group.validateOffsetCommit(memberId: "", groupInstanceId: nil, generationId: -1), .unknownMemberId,
                       "a simple commit would overwrite the members' progress")
        XCTAssertEqual(h.group.validateOffsetCommit(memberId: "a", groupInstanceId: nil, generationId: 1), .none)
        XCTAssertEqual(h.group.validateOffsetCommit(memberId: "a", groupInstanceId: nil, generationId: 0), .illegalGeneration)
        XCTAssertEqual(h.group.validateOffsetCommit(memberId: "zombie", groupInstanceId: nil, generationId: 1), .unknownMemberId)

        h.join("a", newId: "unused")
        XCTAssertEqual(h.group.validateOffsetCommit(memberId: "b", groupInstanceId: nil, generationId: 1), .none,
                       "members commit what they processed while the group rebalances")
        h.join("b", newId: "unused")
        XCTAssertEqual(h.group.stateName, .completingRebalance)
        XCTAssertEqual(h.group.validateOffsetCommit(memberId: "b", groupInstanceId: nil, generationId: 2), .rebalanceInProgress)
        XCTAssertEqual(h.group.validateOffsetCommit(memberId: "b", groupInstanceId: nil, generationId: 1), .illegalGeneration)
    }

    func testDeleteAndOffsetDeleteValidation() {
        var h = Harness()
        XCTAssertEqual(h.group.validateDelete(), .none)
        h.stableGroup(["a"])
        XCTAssertEqual(h.group.validateDelete(), .nonEmptyGroup)
        XCTAssertEqual(h.group.validateOffsetDelete(), .none, "consumer groups say which topics are in use")
        XCTAssertTrue(h.group.isSubscribed(to: "t"))
        XCTAssertFalse(h.group.isSubscribed(to: "other"))
        _ = h.leave([("a", nil)])
        XCTAssertEqual(h.group.stateName, .empty)
        XCTAssertEqual(h.group.protocolType, "consumer", "an empty group keeps its protocol type")
        XCTAssertFalse(h.group.isSubscribed(to: "t"))
        _ = h.group.markDead(now: h.now)
        XCTAssertEqual(h.group.validateDelete(), .groupIdNotFound)
        let late = h.join(newId: "x")
        XCTAssertEqual(h.joins[late]?.error, .coordinatorNotAvailable)
    }
}

/// The coordinator over real continuations, a temporary data directory and a manual clock.
final class GroupCoordinatorTests: XCTestCase {
    final class ManualClock: @unchecked Sendable {
        // @unchecked: guarded by the lock.
        private let lock = NSLock()
        private var value: Int64 = 1_000_000
        var now: Int64 {
            lock.lock()
            defer { lock.unlock() }
            return value
        }
        func advance(_ ms: Int64) {
            lock.lock()
            value += ms
            lock.unlock()
        }
    }

    var directory = ""

    override func setUp() {
        directory = NSTemporaryDirectory() + "groups-\(UUID().uuidString)"
    }

    override func tearDown() {
        try? FileManager.default.removeItem(atPath: directory)
    }

    func makeCoordinator(_ clock: ManualClock, delay: Int64 = 0) throws -> GroupCoordinator {
        var configuration = GroupCoordinator.Configuration()
        configuration.initialRebalanceDelayMs = delay
        return try GroupCoordinator(configuration: configuration, dataDirectory: directory, threadPool: .singleton,
                                    logger: Logger(label: "test"), partitionExists: { topic, _ in topic != "missing" },
                                    clock: { clock.now })
    }

    static func joinRequest(_ memberId: String = "", topics: [String] = ["t"]) -> JoinGroupRequest {
        JoinGroupRequest(groupId: "g", sessionTimeoutMs: 10_000, rebalanceTimeoutMs: 30_000, memberId: memberId,
                         protocolType: "consumer", protocols: [.init(name: "range", metadata: subscription(topics))])
    }

    func testTwoConsumersJoinSyncCommitAndFetch() async throws {
        let clock = ManualClock()
        let coordinator = try makeCoordinator(clock, delay: 1000)
        let idA = await coordinator.joinGroup(Self.joinRequest(), version: 9, clientId: "a", clientHost: "/127.0.0.1")
        XCTAssertEqual(idA.errorCode, KafkaErrorCode.memberIdRequired.rawValue)
        XCTAssertTrue(idA.memberId.hasPrefix("a-"))
        let idB = await coordinator.joinGroup(Self.joinRequest(), version: 9, clientId: "b", clientHost: "/127.0.0.1")

        // Both JoinGroups park until the (initial) rebalance completes.
        async let joinA = coordinator.joinGroup(Self.joinRequest(idA.memberId), version: 9, clientId: "a", clientHost: "/127.0.0.1")
        async let joinB = coordinator.joinGroup(Self.joinRequest(idB.memberId), version: 9, clientId: "b", clientHost: "/127.0.0.1")
        while coordinator.describe(groupId: "g")?.members.count != 2 { try await Task.sleep(for: .milliseconds(5)) }
        clock.advance(1000)
        coordinator.tick(now: clock.now)  // b joined during the delay: one more round
        clock.advance(1000)
        coordinator.tick(now: clock.now)
        let (a, b) = await (joinA, joinB)
        XCTAssertEqual(a.errorCode, 0)
        XCTAssertEqual(b.errorCode, 0)
        XCTAssertEqual(a.generationId, 1)
        XCTAssertEqual(a.protocolType, "consumer")
        let leader = a.leader == a.memberId ? a : b
        let follower = a.leader == a.memberId ? b : a
        XCTAssertEqual(leader.members.count, 2)

        async let followerSync = coordinator.syncGroup(
            SyncGroupRequest(groupId: "g", generationId: 1, memberId: follower.memberId, protocolType: "consumer", protocolName: "range"), version: 5)
        try await Task.sleep(for: .milliseconds(50))
        let leaderSync = await coordinator.syncGroup(
            SyncGroupRequest(groupId: "g", generationId: 1, memberId: leader.memberId, protocolType: "consumer", protocolName: "range",
                             assignments: [.init(memberId: leader.memberId, assignment: ByteBuffer(string: "L")),
                                           .init(memberId: follower.memberId, assignment: ByteBuffer(string: "F"))]), version: 5)
        let synced = await followerSync
        XCTAssertEqual(leaderSync.assignment, ByteBuffer(string: "L"))
        XCTAssertEqual(synced.assignment, ByteBuffer(string: "F"))
        XCTAssertEqual(synced.protocolName, "range")

        let heartbeat = await coordinator.heartbeat(HeartbeatRequest(groupId: "g", generationId: 1, memberId: follower.memberId), version: 4)
        XCTAssertEqual(heartbeat.errorCode, 0)

        let commit = await coordinator.offsetCommit(OffsetCommitRequest(
            groupId: "g", generationIdOrMemberEpoch: 1, memberId: follower.memberId,
            topics: [.init(name: "t", partitions: [.init(partitionIndex: 0, committedOffset: 42, committedMetadata: "m")]),
                     .init(name: "missing", partitions: [.init(partitionIndex: 0, committedOffset: 1)])]), version: 8)
        XCTAssertEqual(commit.topics.map { $0.partitions.map(\.errorCode) },
                       [[0], [KafkaErrorCode.unknownTopicOrPartition.rawValue]])
        let stale = await coordinator.offsetCommit(OffsetCommitRequest(
            groupId: "g", generationIdOrMemberEpoch: 0, memberId: follower.memberId,
            topics: [.init(name: "t", partitions: [.init(partitionIndex: 0, committedOffset: 7)])]), version: 8)
        XCTAssertEqual(stale.topics[0].partitions[0].errorCode, KafkaErrorCode.illegalGeneration.rawValue)

        let fetchAll = await coordinator.offsetFetch(OffsetFetchRequest(groupId: "g", topics: nil), version: 7)
        XCTAssertEqual(fetchAll.topics.map(\.name), ["t"])
        XCTAssertEqual(fetchAll.topics[0].partitions[0].committedOffset, 42)
        XCTAssertEqual(fetchAll.topics[0].partitions[0].metadata, "m")
        let fetchGroups = await coordinator.offsetFetch(OffsetFetchRequest(groups: [
            .init(groupId: "g", topics: [.init(name: "t", partitionIndexes: [0, 1])]),
            .init(groupId: "other", topics: nil),
        ]), version: 8)
        XCTAssertEqual(fetchGroups.groups[0].topics[0].partitions.map(\.committedOffset), [42, -1])
        XCTAssertEqual(fetchGroups.groups[1].topics.count, 0)

        let listed = await coordinator.listGroups(ListGroupsRequest(statesFilter: ["stable"]), version: 4)
        XCTAssertEqual(listed.groups.map(\.groupId), ["g"])
        let describe = await coordinator.describeGroups(DescribeGroupsRequest(groups: ["g", "nope"]), version: 5)
        XCTAssertEqual(describe.groups.map(\.groupState), ["Stable", "Dead"])
        XCTAssertEqual(describe.groups[0].protocolData, "range")
        let deleteBusy = await coordinator.deleteGroups(DeleteGroupsRequest(groupsNames: ["g", "nope"]), version: 2)
        XCTAssertEqual(deleteBusy.results.map(\.errorCode), [KafkaErrorCode.nonEmptyGroup.rawValue, KafkaErrorCode.groupIdNotFound.rawValue])
        let offsetDelete = await coordinator.offsetDelete(OffsetDeleteRequest(groupId: "g", topics: [.init(name: "t", partitions: [.init(partitionIndex: 0)])]), version: 0)
        XCTAssertEqual(offsetDelete.topics[0].partitions[0].errorCode, KafkaErrorCode.groupSubscribedToTopic.rawValue)

        let left = await coordinator.leaveGroup(LeaveGroupRequest(groupId: "g", members: [.init(memberId: follower.memberId)]), version: 5)
        XCTAssertEqual(left.members.map(\.errorCode), [0])
        coordinator.shutdown()
    }

    func testCommittedOffsetsSurviveRestartAndSimpleConsumersCommit() async throws {
        let clock = ManualClock()
        do {
            let coordinator = try makeCoordinator(clock)
            // A consumer that assigns its own partitions commits with generation -1.
            let commit = await coordinator.offsetCommit(OffsetCommitRequest(
                groupId: "simple", generationIdOrMemberEpoch: -1, memberId: "",
                topics: [.init(name: "t", partitions: [.init(partitionIndex: 3, committedOffset: 99)])]), version: 2)
            XCTAssertEqual(commit.topics[0].partitions[0].errorCode, 0)
            let unknownGroup = await coordinator.offsetCommit(OffsetCommitRequest(
                groupId: "ghost", generationIdOrMemberEpoch: 4, memberId: "m",
                topics: [.init(name: "t", partitions: [.init(partitionIndex: 0, committedOffset: 1)])]), version: 9)
            XCTAssertEqual(unknownGroup.topics[0].partitions[0].errorCode, KafkaErrorCode.groupIdNotFound.rawValue)
            coordinator.shutdown()
        }
        let restarted = try makeCoordinator(clock)
        let fetched = await restarted.offsetFetch(OffsetFetchRequest(groupId: "simple", topics: [.init(name: "t", partitionIndexes: [3])]), version: 1)
        XCTAssertEqual(fetched.topics[0].partitions[0].committedOffset, 99)
        let listed = await restarted.listGroups(ListGroupsRequest(), version: 3)
        XCTAssertEqual(listed.groups.map(\.groupId), ["simple"])
        XCTAssertEqual(listed.groups.map(\.groupState), ["Empty"])

        let deleted = await restarted.deleteGroups(DeleteGroupsRequest(groupsNames: ["simple"]), version: 2)
        XCTAssertEqual(deleted.results.map(\.errorCode), [0])
        restarted.shutdown()
        let again = try makeCoordinator(clock)
        let afterDelete = await again.offsetFetch(OffsetFetchRequest(groupId: "simple", topics: nil), version: 7)
        XCTAssertEqual(afterDelete.topics.count, 0)
        again.shutdown()
    }

    func testOffsetsOfEmptyGroupsExpireAfterRetention() async throws {
        let clock = ManualClock()
        let coordinator = try makeCoordinator(clock)
        _ = await coordinator.offsetCommit(OffsetCommitRequest(
            groupId: "idle", topics: [.init(name: "t", partitions: [.init(partitionIndex: 0, committedOffset: 5)])]), version: 8)
        clock.advance(coordinator.configuration.offsetsRetentionMs - 1)
        await coordinator.expireOffsets(now: clock.now)
        XCTAssertEqual(coordinator.store.offset(group: "idle", topic: "t", partition: 0)?.offset, 5)
        clock.advance(1)
        await coordinator.expireOffsets(now: clock.now)
        XCTAssertNil(coordinator.store.offset(group: "idle", topic: "t", partition: 0))
        let listed = await coordinator.listGroups(ListGroupsRequest(), version: 3)
        XCTAssertEqual(listed.groups.count, 0, "an empty group without offsets is forgotten")
        coordinator.shutdown()
    }

    func testShutdownAnswersParkedJoins() async throws {
        let clock = ManualClock()
        let coordinator = try makeCoordinator(clock, delay: 60_000)
        async let parked = coordinator.joinGroup(Self.joinRequest(), version: 3, clientId: "a", clientHost: "")
        try await Task.sleep(for: .milliseconds(50))
        coordinator.shutdown()
        let response = await parked
        XCTAssertEqual(response.errorCode, KafkaErrorCode.coordinatorNotAvailable.rawValue)
    }

    /// Every response the coordinator builds must encode at the version it was built for
    /// (the codecs refuse fields a version does not have).
    func testResponsesEncodeAtEveryVersion() async throws {
        let clock = ManualClock()
        let coordinator = try makeCoordinator(clock)
        var buffer = ByteBuffer()
        func check<R: KafkaResponse>(_ response: R, _ version: Int16, file: StaticString = #filePath, line: UInt = #line) {
            XCTAssertNoThrow(try response.encode(into: &buffer, version: version), "\(R.self) v\(version)", file: file, line: line)
        }
        for version in JoinGroupRequest.validVersions {
            let groupId = "g\(version)"
            var request = Self.joinRequest()
            request.groupId = groupId
            var joined = await coordinator.joinGroup(request, version: version, clientId: "c", clientHost: "h")
            check(joined, version)
            if joined.errorCode == KafkaErrorCode.memberIdRequired.rawValue {
                request.memberId = joined.memberId
                joined = await coordinator.joinGroup(request, version: version, clientId: "c", clientHost: "h")
                check(joined, version)
            }
            XCTAssertEqual(joined.errorCode, 0, "JoinGroup v\(version)")
            let memberId = joined.memberId
            for syncVersion in SyncGroupRequest.validVersions {
                check(await coordinator.syncGroup(SyncGroupRequest(groupId: groupId, generationId: joined.generationId, memberId: memberId,
                                                                   protocolType: "consumer", protocolName: "range",
                                                                   assignments: [.init(memberId: memberId, assignment: ByteBuffer(string: "x"))]),
                                                  version: syncVersion), syncVersion)
            }
            for heartbeatVersion in HeartbeatRequest.validVersions {
                check(await coordinator.heartbeat(HeartbeatRequest(groupId: groupId, generationId: joined.generationId, memberId: memberId),
                                                  version: heartbeatVersion), heartbeatVersion)
            }
            for commitVersion in OffsetCommitRequest.validVersions {
                let response = await coordinator.offsetCommit(OffsetCommitRequest(
                    groupId: groupId, generationIdOrMemberEpoch: joined.generationId, memberId: memberId,
                    topics: [.init(name: "t", partitions: [.init(partitionIndex: 0, committedOffset: 5)])]), version: commitVersion)
                check(response, commitVersion)
            }
            let describe = await coordinator.describeGroups(DescribeGroupsRequest(groups: [groupId, "unknown"]), version: min(version, 5))
            check(describe, min(version, 5))
            XCTAssertEqual(describe.groups[0].members.first?.memberAssignment, ByteBuffer(string: "x"))
            check(await coordinator.offsetDelete(OffsetDeleteRequest(groupId: groupId, topics: [.init(name: "t", partitions: [.init(partitionIndex: 0)])]),
                                                 version: 0), 0)
            let leaveVersion = min(version, 5)
            let left = await coordinator.leaveGroup(LeaveGroupRequest(groupId: groupId, memberId: leaveVersion < 3 ? memberId : "",
                                                                      members: leaveVersion >= 3 ? [.init(memberId: memberId)] : []),
                                                    version: leaveVersion)
            check(left, leaveVersion)
            XCTAssertEqual(left.errorCode, 0)
        }
        for version in OffsetFetchRequest.validVersions {
            let request = version >= 8
                ? OffsetFetchRequest(groups: [.init(groupId: "g1", topics: nil), .init(groupId: "g2", topics: [.init(name: "t", partitionIndexes: [0, 9])])])
                : OffsetFetchRequest(groupId: "g1", topics: version >= 2 ? nil : [.init(name: "t", partitionIndexes: [0])])
            let response = await coordinator.offsetFetch(request, version: version)
            check(response, version)
        }
        for version in ListGroupsRequest.validVersions {
            let response = await coordinator.listGroups(ListGroupsRequest(), version: version)
            check(response, version)
            XCTAssertEqual(response.groups.count, 10)
        }
        for version in DeleteGroupsRequest.validVersions {
            check(await coordinator.deleteGroups(DeleteGroupsRequest(groupsNames: ["g\(version)", "missing"]), version: version), version)
        }
        for version in FindCoordinatorRequest.validVersions {
            let request = version >= 4 ? FindCoordinatorRequest(keyType: 0, coordinatorKeys: ["g"]) : FindCoordinatorRequest(key: "g")
            check(coordinator.findCoordinator(request, version: version, nodeId: 1, host: "h", port: 9092), version)
        }
        coordinator.shutdown()
    }

    func testFindCoordinatorAnswersGroupsAndRefusesTransactions() {
        let clock = ManualClock()
        let coordinator = try! makeCoordinator(clock)
        let v3 = coordinator.findCoordinator(FindCoordinatorRequest(key: "g", keyType: 0), version: 3, nodeId: 0, host: "h", port: 9092)
        XCTAssertEqual(v3.errorCode, 0)
        XCTAssertEqual(v3.host, "h")
        XCTAssertEqual(v3.port, 9092)
        let batched = coordinator.findCoordinator(FindCoordinatorRequest(keyType: 0, coordinatorKeys: ["a", "b"]), version: 4, nodeId: 0, host: "h", port: 1)
        XCTAssertEqual(batched.coordinators.map(\.key), ["a", "b"])
        let transaction = coordinator.findCoordinator(FindCoordinatorRequest(keyType: 1, coordinatorKeys: ["tx"]), version: 5, nodeId: 0, host: "h", port: 1)
        XCTAssertEqual(transaction.coordinators[0].errorCode, KafkaErrorCode.coordinatorNotAvailable.rawValue)
        XCTAssertNotNil(transaction.coordinators[0].errorMessage)
        // The responses encode at their versions.
        var buffer = ByteBuffer()
        XCTAssertNoThrow(try v3.encode(into: &buffer, version: 3))
        XCTAssertNoThrow(try transaction.encode(into: &buffer, version: 5))
        coordinator.shutdown()
    }
}
