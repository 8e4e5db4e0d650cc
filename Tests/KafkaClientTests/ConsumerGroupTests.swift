import Foundation
@testable import KafkaClient
import KafkaProtocol
import NIOConcurrencyHelpers
import NIOCore
import XCTest

final class ConsumerGroupTests: XCTestCase {
    func groupConfig(_ broker: TestBroker, _ group: String) -> KafkaConsumer.Configuration {
        var c = KafkaConsumer.Configuration(bootstrapServers: broker.bootstrap, groupId: group)
        c.autoOffsetReset = .earliest
        c.heartbeatIntervalMs = 200
        c.sessionTimeoutMs = 10_000
        c.autoCommitIntervalMs = 200
        return c
    }

    func produce(_ broker: TestBroker, topic: String, count: Int, keyed: Bool = true) async throws {
        var config = KafkaProducer.Configuration(bootstrapServers: broker.bootstrap)
        config.lingerMs = 1
        try await withProducer(config) { producer in
            for i in 0..<count {
                try await producer.sendAndForget(ProducerRecord(topic: topic, key: keyed ? "k\(i)" : nil, value: "v\(i)"))
            }
            await producer.flush()
        }
    }

    func testThreeConsumersSplitSixPartitions() async throws {
        let broker = try await TestBroker()
        try await broker.createTopic("six", partitions: 6)
        let assignedLog = NIOLockedValueBox<[Int: [[TopicPartition]]]>([:])
        let consumers = try (0..<3).map { i in
            let c = try KafkaConsumer(configuration: groupConfig(broker, "g3"))
            try c.subscribe(topics: ["six"], listener: .init(onPartitionsAssigned: { tps in
                assignedLog.withLockedValue { $0[i, default: []].append(tps) }
            }))
            return c
        }
        let runners = consumers.map { c in Task { try await c.run() } }
        try await eventually("the group settles on 2 partitions each") {
            consumers.allSatisfy { $0.assignment.count == 2 }
        }
        let assignments = consumers.map(\.assignment)
        XCTAssertEqual(assignments.reduce(Set<TopicPartition>()) { $0.union($1) }.count, 6)
        // Range over members sorted by id: consecutive pairs.
        for a in assignments {
            let ps = a.map(\.partition).sorted()
            XCTAssertEqual(ps[1], ps[0] + 1, "range gives consecutive partitions: \(ps)")
        }
        try await produce(broker, topic: "six", count: 600)
        let received = NIOLockedValueBox<[Int: [ConsumerRecord]]>([:])
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (i, c) in consumers.enumerated() {
                group.addTask {
                    for try await r in c.records {
                        let total = received.withLockedValue { r2 -> Int in
                            r2[i, default: []].append(r)
                            return r2.values.map(\.count).reduce(0, +)
                        }
                        if total >= 600 { break }
                    }
                }
            }
            try await eventually("600 records are read") { received.withLockedValue { $0.values.map(\.count).reduce(0, +) } >= 600 }
            for c in consumers { await c.close() }
            try await group.waitForAll()
        }
        for r in runners { try await r.value }
        let all = received.withLockedValue { $0 }
        XCTAssertEqual(all.values.flatMap { $0 }.count, 600, "no duplicates")
        XCTAssertEqual(Set(all.values.flatMap { $0 }.compactMap(\.valueString)), Set((0..<600).map { "v\($0)" }))
        for (i, records) in all {
            XCTAssertTrue(records.allSatisfy { assignments[i].contains($0.topicPartition) }, "consumer \(i) only reads its partitions")
        }
        XCTAssertTrue(assignedLog.withLockedValue { $0.count } == 3, "every consumer saw onPartitionsAssigned")
        await broker.stop()
    }

    func testCommitThenResumeFromCommittedOffset() async throws {
        let broker = try await TestBroker()
        try await broker.createTopic("commits", partitions: 1)
        try await produce(broker, topic: "commits", count: 100)
        var config = groupConfig(broker, "resume")
        config.enableAutoCommit = false
        let first = try KafkaConsumer(configuration: config)
        try first.subscribe(topics: ["commits"])
        let firstRecords = try await withConsumer(first) { c in
            let records = try await collect(c, count: 40)
            try await c.commit()
            return records
        }
        XCTAssertEqual(firstRecords.map(\.offset), Array(0..<40))
        let admin = try broker.admin()
        let committed = try await admin.committedOffsets("resume")
        XCTAssertEqual(committed[TopicPartition(topic: "commits", partition: 0)], 40)

        // Auto-commit: the next member starts at 40 and commits on close what it read.
        var auto = groupConfig(broker, "resume")
        auto.enableAutoCommit = true
        let second = try KafkaConsumer(configuration: auto)
        try second.subscribe(topics: ["commits"])
        let secondRecords = try await withConsumer(second) { try await collect($0, count: 30) }
        XCTAssertEqual(secondRecords.map(\.offset), Array(40..<70))
        let after = try await admin.committedOffsets("resume")
        XCTAssertEqual(after[TopicPartition(topic: "commits", partition: 0)], 70)

        // An assigned consumer (no membership) starts from the committed offset too;
        // explicit offsets. (With auto-commit, close would commit its position over them,
        // as the Java client does.)
        let third = try KafkaConsumer(configuration: config)
        try third.assign(partitions: [TopicPartition(topic: "commits", partition: 0)])
        let thirdRecords = try await withConsumer(third) { c in
            let r = try await collect(c, count: 10)
            try await c.commit([TopicPartition(topic: "commits", partition: 0): 95])
            return r
        }
        XCTAssertEqual(thirdRecords.map(\.offset), Array(70..<80))
        let last = try await admin.committedOffsets("resume")
        XCTAssertEqual(last[TopicPartition(topic: "commits", partition: 0)], 95)
        await admin.cluster.close()
        await broker.stop()
    }

    func testSeekBeforeAssignmentAppliesWhenPartitionsArrive() async throws {
        let broker = try await TestBroker()
        try await broker.createTopic("seek", partitions: 2)
        var config = KafkaProducer.Configuration(bootstrapServers: broker.bootstrap)
        config.lingerMs = 0
        let base: Int64 = 1_700_000_000_000
        try await withProducer(config) { producer in
            for i in 0..<100 {
                _ = try await producer.send(topic: "seek", value: "v\(i)", timestamp: base + Int64(i) * 1000, partition: Int32(i % 2))
            }
        }
        let p0 = TopicPartition(topic: "seek", partition: 0)
        let p1 = TopicPartition(topic: "seek", partition: 1)

        // Group member with autoOffsetReset latest: without the seeks it would read nothing.
        var group = groupConfig(broker, "seekers")
        group.autoOffsetReset = .latest
        let consumer = try KafkaConsumer(configuration: group)
        consumer.seek(p0, to: 10)
        // Partition 1 holds records 1, 3, ..., 99 at offsets 0...49; record 91 is at offset 45.
        consumer.seek([p1], toTimestamp: base + 90_500)
        try consumer.subscribe(topics: ["seek"])
        let records = try await withConsumer(consumer) { try await collect($0, count: 40 + 5) }
        XCTAssertEqual(records.filter { $0.partition == 0 }.map(\.offset), Array(10..<50))
        XCTAssertEqual(records.filter { $0.partition == 1 }.map(\.offset), Array(45..<50))
        XCTAssertEqual(records.filter { $0.partition == 1 }.first?.timestamp, base + 91_000)

        // Assigned partitions: seekToBeginning before assign, seekToEnd, and seek within.
        var plain = KafkaConsumer.Configuration(bootstrapServers: broker.bootstrap)
        plain.autoOffsetReset = .latest
        let assigned = try KafkaConsumer(configuration: plain)
        assigned.seekToBeginning([p0])
        assigned.seekToEnd([p1])
        try assigned.assign(partitions: [p0, p1])
        let fromStart = try await withConsumer(assigned) { c in
            let r = try await collect(c, count: 50)
            XCTAssertEqual(c.position(p1), 50)
            c.seek(p0, to: 7)
            let again = try await collect(c, count: 3)
            XCTAssertEqual(again.map(\.offset), [7, 8, 9])
            return r
        }
        XCTAssertEqual(fromStart.map(\.offset), Array(0..<50))
        XCTAssertTrue(fromStart.allSatisfy { $0.partition == 0 })
        await broker.stop()
    }

    func testOffsetOutOfRangeResetsByPolicyAndPauseResume() async throws {
        let broker = try await TestBroker()
        try await broker.createTopic("range", partitions: 1)
        try await produce(broker, topic: "range", count: 20)
        let tp = TopicPartition(topic: "range", partition: 0)
        var config = KafkaConsumer.Configuration(bootstrapServers: broker.bootstrap)
        config.autoOffsetReset = .earliest
        let consumer = try KafkaConsumer(configuration: config)
        consumer.seek(tp, to: 1000)
        try consumer.assign(partitions: [tp])
        try await withConsumer(consumer) { c in
            let records = try await collect(c, count: 5)
            XCTAssertEqual(records.map(\.offset), [0, 1, 2, 3, 4], "out of range resets to earliest")
            c.pause([tp])
            XCTAssertEqual(c.paused, [tp])
            let none = try? await collect(c, count: 1, seconds: 1)
            XCTAssertNil(none, "a paused partition returns nothing")
            c.resume([tp])
            let rest = try await collect(c, count: 15)
            XCTAssertEqual(rest.map(\.offset), Array(5..<20), "resume continues after the last record returned")
        }

        var strict = KafkaConsumer.Configuration(bootstrapServers: broker.bootstrap)
        strict.autoOffsetReset = .none
        let failing = try KafkaConsumer(configuration: strict)
        try failing.assign(partitions: [tp])
        try await withConsumer(failing) { c in
            do {
                _ = try await collect(c, count: 1, seconds: 5)
                XCTFail("no offset and no reset policy must fail")
            } catch let error as KafkaClientError {
                XCTAssertEqual(error.code, .noOffset)
            }
            c.seek(tp, to: 18)
            let records = try await collect(c, count: 2)
            XCTAssertEqual(records.map(\.offset), [18, 19])
        }
        await broker.stop()
    }

    /// One member closes (LeaveGroup): the other is told its partitions are revoked, gets
    /// all of them, and continues from the leaver's auto-committed positions.
    func testMemberLeavingHandsItsPartitionsOver() async throws {
        let broker = try await TestBroker()
        try await broker.createTopic("handover", partitions: 4)
        try await produce(broker, topic: "handover", count: 400)
        let events = NIOLockedValueBox<[String]>([])
        let a = try KafkaConsumer(configuration: groupConfig(broker, "handover"))
        try a.subscribe(topics: ["handover"])
        let b = try KafkaConsumer(configuration: groupConfig(broker, "handover"))
        try b.subscribe(topics: ["handover"], listener: .init(
            onPartitionsRevoked: { tps in events.withLockedValue { $0.append("revoked \(tps.count)") } },
            onPartitionsAssigned: { tps in events.withLockedValue { $0.append("assigned \(tps.count)") } }))
        let runA = Task { try await a.run() }
        let runB = Task { try await b.run() }
        try await eventually("both members have two partitions") { a.assignment.count == 2 && b.assignment.count == 2 }
        // Keys spread the records unevenly (murmur2: 103/107/102/88), so a's share depends
        // on which two partitions it got.
        var shareOfA = 0
        for tp in a.assignment { shareOfA += try await fetchAll(broker, topic: "handover", partition: tp.partition).count }
        let fromA = try await collect(a, count: shareOfA)
        XCTAssertTrue(fromA.allSatisfy { a.assignment.contains($0.topicPartition) })
        await a.close()
        try await runA.value
        let fromB = try await collect(b, count: 400 - shareOfA, seconds: 30)
        XCTAssertEqual(b.assignment.count, 4)
        let all = Set((fromA + fromB).compactMap(\.valueString))
        XCTAssertEqual(all, Set((0..<400).map { "v\($0)" }), "nothing lost across the handover")
        XCTAssertEqual(fromA.count + fromB.count, 400, "a's positions were committed on close: nothing read twice")
        let log = events.withLockedValue { $0 }
        XCTAssertTrue(log.contains("assigned 2") && log.contains("revoked 2") && log.last == "assigned 4", "\(log)")
        await b.close()
        try await runB.value
        await broker.stop()
    }

    func testPollReturnsAtMostMaxPollRecords() async throws {
        let broker = try await TestBroker()
        try await broker.createTopic("poll", partitions: 1)
        try await produce(broker, topic: "poll", count: 1200)
        var config = groupConfig(broker, "pollers")
        config.maxPollRecords = 500
        config.enableAutoCommit = false
        let consumer = try KafkaConsumer(configuration: config)
        try consumer.subscribe(topics: ["poll"])
        try await withConsumer(consumer) { c in
            var got: [ConsumerRecord] = []
            while got.count < 1200 {
                let batch = try await c.poll(timeout: .seconds(10))
                XCTAssertFalse(batch.isEmpty)
                XCTAssertLessThanOrEqual(batch.count, 500)
                got += batch
            }
            XCTAssertEqual(got.map(\.offset), Array(0..<1200))
            let none = try await c.poll(timeout: .milliseconds(200))
            XCTAssertEqual(none, [], "nothing more within the timeout")
            try await c.commit()
        }
        let admin = try broker.admin()
        let committed = try await admin.committedOffsets("pollers")
        XCTAssertEqual(committed[TopicPartition(topic: "poll", partition: 0)], 1200)
        await admin.cluster.close()
        await broker.stop()
    }

    /// Cooperative-sticky: members joining one by one never take a partition another
    /// still owns, incumbents keep reading what they keep, and the group ends balanced.
    func testCooperativeStickyRebalancesIncrementally() async throws {
        let broker = try await TestBroker()
        try await broker.createTopic("coop", partitions: 6)
        let owners = NIOLockedValueBox<[TopicPartition: Int]>([:])
        let violations = NIOLockedValueBox<[String]>([])
        let revokedCounts = NIOLockedValueBox<[Int: [Int]]>([:])
        func listener(_ i: Int) -> KafkaConsumer.RebalanceListener {
            .init(onPartitionsRevoked: { tps in
                revokedCounts.withLockedValue { $0[i, default: []].append(tps.count) }
                owners.withLockedValue { o in for tp in tps where o[tp] == i { o[tp] = nil } }
            }, onPartitionsAssigned: { tps in
                owners.withLockedValue { o in
                    for tp in tps {
                        if let other = o[tp], other != i { violations.withLockedValue { $0.append("\(tp.partition) to \(i) while \(other) owns it") } }
                        o[tp] = i
                    }
                }
            })
        }
        var config = groupConfig(broker, "coop")
        config.partitionAssignmentStrategy = [.cooperativeSticky]
        var consumers: [KafkaConsumer] = []
        var runners: [Task<Void, any Error>] = []
        for i in 0..<3 {
            let c = try KafkaConsumer(configuration: config)
            try c.subscribe(topics: ["coop"], listener: listener(i))
            consumers.append(c)
            runners.append(Task { try await c.run() })
            let expected = 6 / (i + 1)
            let members = consumers
            try await eventually("\(i + 1) members hold \(expected) partitions each") {
                members.allSatisfy { $0.assignment.count == expected }
            }
        }
        XCTAssertEqual(violations.withLockedValue { $0 }, [])
        XCTAssertEqual(Set(consumers.flatMap(\.assignment)).count, 6)
        // The first member never gave up everything: it revoked 3, then 1.
        XCTAssertEqual(revokedCounts.withLockedValue { $0[0] }, [3, 1])
        try await produce(broker, topic: "coop", count: 300)
        let received = NIOLockedValueBox<[ConsumerRecord]>([])
        try await withThrowingTaskGroup(of: Void.self) { group in
            for c in consumers {
                group.addTask {
                    for try await r in c.records {
                        if received.withLockedValue({ $0.append(r); return $0.count }) >= 300 { break }
                    }
                }
            }
            try await eventually("300 records are read") { received.withLockedValue { $0.count } >= 300 }
            for c in consumers { await c.close() }
            try await group.waitForAll()
        }
        for r in runners { try await r.value }
        XCTAssertEqual(received.withLockedValue { $0.count }, 300)
        XCTAssertEqual(Set(received.withLockedValue { $0 }.compactMap(\.valueString)).count, 300)
        await broker.stop()
    }
}
