import Foundation
@testable import KafkaClient
import NIOConcurrencyHelpers
import NIOCore
import XCTest

final class PartitionerTests: XCTestCase {
    /// Kafka's own `UtilsTest.testMurmur2` values.
    func testMurmur2MatchesKafkaUtils() {
        let cases: [(String, Int32)] = [
            ("21", -973_932_308),
            ("foobar", -790_332_482),
            ("a-little-bit-long-string", -985_981_536),
            ("a-little-bit-longer-string", -1_486_304_829),
            ("lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58_897_971),
            ("abc", 479_470_107),
        ]
        for (key, expected) in cases {
            XCTAssertEqual(KafkaPartitioner.murmur2(ByteBuffer(string: key)), expected, key)
        }
    }

    /// Range and round-robin results, worked out by hand from Java's algorithms.
    func testRangeAndRoundRobinAssignors() {
        let members = [MemberSubscription(memberId: "c", groupInstanceId: nil, topics: ["t1", "t2"]),
                       MemberSubscription(memberId: "a", groupInstanceId: nil, topics: ["t1", "t2"]),
                       MemberSubscription(memberId: "b", groupInstanceId: nil, topics: ["t1"])]
        let counts: [String: Int32] = ["t1": 5, "t2": 3, "other": 4]
        func names(_ tps: [TopicPartition]?) -> [String] { (tps ?? []).map { "\($0.topic)-\($0.partition)" } }
        let range = PartitionAssignor.assign(.range, members: members, partitionCounts: counts)
        XCTAssertEqual(names(range["a"]), ["t1-0", "t1-1", "t2-0", "t2-1"])
        XCTAssertEqual(names(range["b"]), ["t1-2", "t1-3"])
        XCTAssertEqual(names(range["c"]), ["t1-4", "t2-2"])
        let rr = PartitionAssignor.assign(.roundRobin, members: members, partitionCounts: counts)
        // Members a, b, c in a circle; t2-2 skips b, which does not subscribe to t2.
        XCTAssertEqual(names(rr["a"]), ["t1-0", "t1-3", "t2-1"])
        XCTAssertEqual(names(rr["b"]), ["t1-1", "t1-4"])
        XCTAssertEqual(names(rr["c"]), ["t1-2", "t2-0", "t2-2"])
        // Static members sort first, by instance id.
        let withStatic = [MemberSubscription(memberId: "a", groupInstanceId: nil, topics: ["t2"]),
                          MemberSubscription(memberId: "z", groupInstanceId: "i1", topics: ["t2"])]
        let r2 = PartitionAssignor.assign(.range, members: withStatic, partitionCounts: counts)
        XCTAssertEqual(names(r2["z"]), ["t2-0", "t2-1"])
        XCTAssertEqual(names(r2["a"]), ["t2-2"])
    }

    func testCooperativeStickyKeepsOwnedPartitionsAndWithholdsMovesForOneRound() {
        let t = { (p: Int32) in TopicPartition(topic: "t", partition: p) }
        let counts: [String: Int32] = ["t": 6]
        // A owns everything; B joins. Round 1: A keeps a balanced half, B gets nothing yet
        // (the other half is still A's). Round 2, after A revoked: B gets that half.
        var a = MemberSubscription(memberId: "a", groupInstanceId: nil, topics: ["t"], owned: (0..<6).map(t), generation: 1)
        var b = MemberSubscription(memberId: "b", groupInstanceId: nil, topics: ["t"], owned: [], generation: -1)
        let round1 = PartitionAssignor.assign(.cooperativeSticky, members: [a, b], partitionCounts: counts)
        XCTAssertEqual(round1["a"]?.count, 3)
        XCTAssertEqual(round1["b"], [])
        a.owned = round1["a"]!
        let round2 = PartitionAssignor.assign(.cooperativeSticky, members: [a, b], partitionCounts: counts)
        XCTAssertEqual(round2["a"], round1["a"], "sticky: a keeps its partitions")
        XCTAssertEqual(Set(round2["b"]!), Set((0..<6).map(t)).subtracting(round1["a"]!))
        // C joins a balanced pair: each gives one up, C gets them in the next round.
        b.owned = round2["b"]!
        let c = MemberSubscription(memberId: "c", groupInstanceId: nil, topics: ["t"])
        let round3 = PartitionAssignor.assign(.cooperativeSticky, members: [a, b, c], partitionCounts: counts)
        XCTAssertEqual(round3["a"]!.count, 2)
        XCTAssertEqual(round3["b"]!.count, 2)
        XCTAssertTrue(Set(round3["a"]!).isSubset(of: Set(a.owned)) && Set(round3["b"]!).isSubset(of: Set(b.owned)))
        XCTAssertEqual(round3["c"], [])
        // Conflicting claims: the newer generation keeps the partition.
        let stale = MemberSubscription(memberId: "x", groupInstanceId: nil, topics: ["t"], owned: [t(0)], generation: 1)
        let fresh = MemberSubscription(memberId: "y", groupInstanceId: nil, topics: ["t"], owned: [t(0)], generation: 2)
        let sticky = PartitionAssignor.stickyAssignment(members: [stale, fresh], partitionCounts: counts)
        XCTAssertTrue(sticky["y"]!.contains(t(0)))
        XCTAssertEqual(sticky["x"]!.count, 3)
    }

    /// The Swift producer puts keyed records on the same partitions as librdkafka with
    /// `partitioner=murmur2_random` (the Java default), checked by producing with
    /// confluent-kafka to the same broker and comparing its delivery reports.
    func testKeyedPartitionsMatchConfluentKafkaMurmur2Random() async throws {
        try XCTSkipUnless(pythonHas("confluent_kafka"), "python3 with confluent_kafka is not installed")
        let broker = try await TestBroker()
        try await broker.createTopic("keys", partitions: 7)
        let keys = (0..<200).map { "key-\($0)" } + ["", "a", "ab", "abc", "abcd", "ünïcødé", "🌦️ weather/oslo", String(repeating: "x", count: 1000)]
            + (0..<50).map { _ in UUID().uuidString }
        let script = """
        import sys, json
        from confluent_kafka import Producer
        keys = json.load(sys.stdin)
        p = Producer({"bootstrap.servers": sys.argv[1], "partitioner": "murmur2_random", "linger.ms": 5})
        out = {}
        def report(err, msg):
            if err is not None: raise SystemExit(str(err))
            out[msg.key().decode("utf-8")] = msg.partition()
        for k in keys:
            p.produce("keys", key=k.encode("utf-8"), value=b"v", on_delivery=report)
        p.flush(30)
        print(json.dumps(out))
        """
        let output = try runPython(script, arguments: ["127.0.0.1:\(broker.port)"], input: try JSONEncoder().encode(keys))
        let librdkafka = try JSONDecoder().decode([String: Int32].self, from: output)
        XCTAssertEqual(librdkafka.count, keys.count)
        var config = KafkaProducer.Configuration(bootstrapServers: broker.bootstrap)
        config.lingerMs = 0
        let ours = try await withProducer(config) { producer in
            var out: [String: Int32] = [:]
            for k in keys { out[k] = try await producer.send(topic: "keys", key: k, value: "v").partition }
            return out
        }
        for k in keys {
            XCTAssertEqual(ours[k], librdkafka[k], "key \(k.prefix(40))")
            XCTAssertEqual(KafkaPartitioner.partition(forKey: ByteBuffer(string: k), partitionCount: 7), librdkafka[k])
        }
        await broker.stop()
    }

    /// Records without a key stick to one partition until its batch completes, then move
    /// on: in send order, the partition changes once per batch, not once per record.
    func testKeylessRecordsAreSticky() async throws {
        let broker = try await TestBroker()
        try await broker.createTopic("sticky", partitions: 8)
        var config = KafkaProducer.Configuration(bootstrapServers: broker.bootstrap)
        config.lingerMs = 1000
        config.batchSize = 4096
        let count = 400
        let partitions = NIOLockedValueBox([Int32](repeating: -1, count: count))
        try await withProducer(config) { producer in
            for i in 0..<count {
                try await producer.sendAndForget(topic: "sticky", value: String(repeating: "\(i % 10)", count: 90)) { result in
                    if case .success(let m) = result { partitions.withLockedValue { $0[i] = m.partition } }
                }
            }
            await producer.flush()
        }
        let sequence = partitions.withLockedValue { $0 }
        XCTAssertFalse(sequence.contains(-1))
        let switches = zip(sequence, sequence.dropFirst()).filter { $0 != $1 }.count
        // ~110 bytes a record in 4 KiB batches: ~36 records per batch, ~11 batches.
        XCTAssertLessThanOrEqual(switches, count / 30, "one partition per batch: \(switches) switches")
        XCTAssertGreaterThan(Set(sequence).count, 1, "keyless records spread over partitions")
        await broker.stop()
    }
}

func pythonHas(_ modules: String...) -> Bool {
    (try? runPython("import " + modules.joined(separator: ", "), arguments: [], input: Data())) != nil
}

/// Runs a python3 script, returns its stdout; throws with stderr when it fails.
func runPython(_ script: String, arguments: [String], input: Data) throws -> Data {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["python3", "-c", script] + arguments
    let stdin = Pipe(), stdout = Pipe(), stderr = Pipe()
    process.standardInput = stdin
    process.standardOutput = stdout
    process.standardError = stderr
    try process.run()
    stdin.fileHandleForWriting.write(input)
    try stdin.fileHandleForWriting.close()
    let out = stdout.fileHandleForReading.readDataToEndOfFile()
    let err = stderr.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    guard process.terminationStatus == 0 else {
        throw Timeout(description: "python3 exited with \(process.terminationStatus): \(String(decoding: err, as: UTF8.self))")
    }
    return out
}
