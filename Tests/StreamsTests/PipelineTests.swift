import Broker
import Foundation
import KafkaClient
import KafkaProtocol
import Logging
import NIOCore
import ObjectStore
import TributaryTestSupport
import XCTest
@testable import Streams

typealias StreamsTestBroker = InProcessBroker

final class PipelineTests: XCTestCase {
    var broker: StreamsTestBroker!
    var dir: String!

    override func setUp() async throws {
        broker = try await StreamsTestBroker()
        dir = NSTemporaryDirectory() + "streams-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }

    override func tearDown() async throws {
        await broker.stop()
        try? FileManager.default.removeItem(atPath: dir)
    }

    func produce(_ count: Int64, seed: UInt64 = 5, topic: String = "weather") async throws -> [WeatherReading] {
        let admin = try KafkaAdmin(bootstrapServers: broker.bootstrap)
        if try await !admin.listTopics().contains(topic) { try await admin.createTopic(topic, partitions: 1) }
        await admin.close()
        var simulator = WeatherSimulator(bootstrapServers: broker.bootstrap)
        simulator.topic = topic
        simulator.seed = seed
        simulator.count = count
        _ = try await simulator.run()
        var sim = WeatherSimulation(seed: seed)
        return (0..<count).map { _ in sim.next() }
    }

    /// What the tutorial's weekly consumer writes, computed here from the readings.
    func expectedWeekly(_ readings: [WeatherReading]) -> String {
        var out = ""
        for w in 0..<(readings.count / 7) {
            let chunk = readings[(w * 7)..<(w * 7 + 7)]
            var t = 0.0, c = 0.0, h = 0.0
            for r in chunk { t += r.temperature; c += r.co; h += r.humidity }
            if w == 0 { out += "week_id,avg_temp,avg_co,avg_humidity\n" }
            out += "\(w + 1),\(pythonRepr(pythonRound(t / 7 * 1.8, ndigits: 1) + 32)),\(pythonRound(c / 7)),\(pythonRound(h / 7))\n"
        }
        return out
    }

    func weekly(_ output: String) -> WeatherPipeline {
        var p = WeatherPipeline(bootstrapServers: broker.bootstrap, window: .weekly, output: output)
        p.stopAtEnd = true
        return p
    }

    func testWeeklyOutputAndCheckpoint() async throws {
        let readings = try await produce(100)
        let path = dir + "/weekly.csv"
        let summary = try await weekly(path).run()
        XCTAssertEqual(try String(contentsOfFile: path, encoding: .utf8), expectedWeekly(readings))
        XCTAssertEqual(summary.windowsEmitted, 14)
        XCTAssertEqual(summary.offsets, [0: 100])
        let checkpoint = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path + ".checkpoint.json"))) as! [String: Any]
        XCTAssertEqual(checkpoint["offsets"] as? [String: Int], ["0": 100])
        XCTAssertEqual(checkpoint["output_length"] as? Int, try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int)
        // Two records are in the open window; a resumed run with more records continues it.
        let more = try await produce(12, seed: 6)
        let again = try await weekly(path).run()
        XCTAssertTrue(again.resumed)
        XCTAssertEqual(again.recordsRead, 12)
        XCTAssertEqual(try String(contentsOfFile: path, encoding: .utf8), expectedWeekly(readings + more))
    }

    func testExtraBytesAfterACrashAreCutOffAndRebuilt() async throws {
        let readings = try await produce(70)
        let path = dir + "/weekly.csv"
        var first = weekly(path)
        first.commitInterval = .zero
        _ = try await first.run()
        let good = try String(contentsOfFile: path, encoding: .utf8)
        XCTAssertEqual(good, expectedWeekly(readings))
        // A crash after the output write but before the checkpoint replace: the output
        // has a row (and a torn one) that the checkpoint does not cover.
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data("11,99.9,1,1\n12,5".utf8))
        try handle.close()
        let more = try await produce(14, seed: 7)
        let summary = try await weekly(path).run()
        XCTAssertTrue(summary.resumed)
        XCTAssertEqual(try String(contentsOfFile: path, encoding: .utf8), expectedWeekly(readings + more))
    }

    func testAFreshOutputHasACheckpointBeforeItsFirstRow() async throws {
        _ = try await produce(0)
        let path = dir + "/weekly.csv"
        _ = try await weekly(path).run()
        XCTAssertTrue(FileManager.default.fileExists(atPath: path + ".checkpoint.json"))
        // A crash of the first real commit between the output write and the checkpoint's
        // rename: rows without a checkpoint covering them, cut off on restart (not refused
        // as someone else's file).
        try "week_id,avg_temp,avg_co,avg_humidity\n1,2.0,3,4\n".write(toFile: path, atomically: true, encoding: .utf8)
        let readings = try await produce(21)
        _ = try await weekly(path).run()
        XCTAssertEqual(try String(contentsOfFile: path, encoding: .utf8), expectedWeekly(readings))
    }

    func testRestartsMidStreamEqualAnUnbrokenRun() async throws {
        let readings = try await produce(3000)
        let path = dir + "/weekly.csv"
        // Stop the run at several points; each restart continues from the checkpoint.
        var lengths: [Int] = []
        for stopAfter in [130, 400, 250, 900] {
            var p = weekly(path)
            p.commitInterval = .zero
            p.maxPollRecords = 50
            let task = LockedBox<Task<RunSummary, any Error>?>(nil)
            p.onProgress = { progress in
                if progress.recordsRead >= stopAfter { task.withLock { $0?.cancel() } }
            }
            let pipeline = p
            task.withLock { $0 = Task { try await pipeline.run() } }
            let summary = try await task.withLock { $0! }.value
            XCTAssertLessThan(summary.recordsRead, 1000)
            lengths.append(try String(contentsOfFile: path, encoding: .utf8).utf8.count)
        }
        XCTAssertEqual(lengths, lengths.sorted())
        XCTAssertLessThan(lengths.last!, expectedWeekly(readings).utf8.count)
        _ = try await weekly(path).run()
        XCTAssertEqual(try String(contentsOfFile: path, encoding: .utf8), expectedWeekly(readings))
    }

    func testOutputWithoutCheckpointIsRefusedAndFromBeginningReplacesIt() async throws {
        let readings = try await produce(21)
        let path = dir + "/weekly.csv"
        try "someone else's file\n".write(toFile: path, atomically: true, encoding: .utf8)
        do {
            _ = try await weekly(path).run()
            XCTFail("expected a conflict")
        } catch let error as StreamsError {
            XCTAssertEqual(error.code, .outputConflict)
        }
        var p = weekly(path)
        p.mode = .fromBeginning
        _ = try await p.run()
        XCTAssertEqual(try String(contentsOfFile: path, encoding: .utf8), expectedWeekly(readings))
        // Another pipeline's logic on the same output is refused too.
        var celsius = weekly(path)
        celsius.unit = .celsius
        do {
            _ = try await celsius.run()
            XCTFail("expected a conflict")
        } catch let error as StreamsError {
            XCTAssertEqual(error.code, .outputConflict)
        }
    }

    func testReprocessSwapsANewOutputInAndLeavesTheOldOneUntilThen() async throws {
        let readings = try await produce(50)
        let path = dir + "/out.csv"
        var monthlyLogic = weekly(path)
        monthlyLogic.unit = .celsius
        _ = try await monthlyLogic.run()
        let old = try String(contentsOfFile: path, encoding: .utf8)
        var p = weekly(path)
        p.mode = .reprocess
        let progressSeen = LockedBox<[String]>([])
        p.onProgress = { _ in progressSeen.withLock { $0.append((try? String(contentsOfFile: path, encoding: .utf8)) ?? "") } }
        _ = try await p.run()
        XCTAssertFalse(progressSeen.withLock { $0 }.isEmpty)
        XCTAssertTrue(progressSeen.withLock { $0 }.allSatisfy { $0 == old }, "the old output changed before the swap")
        XCTAssertEqual(try String(contentsOfFile: path, encoding: .utf8), expectedWeekly(readings))
        XCTAssertFalse(FileManager.default.fileExists(atPath: path + ".reprocess"))
        XCTAssertFalse(FileManager.default.fileExists(atPath: path + ".swap.json"))
        // The swapped-in checkpoint belongs to the new logic: a resume continues it.
        _ = try await weekly(path).run()
    }

    func testAnInterruptedSwapIsRolledForward() async throws {
        let readings = try await produce(28)
        let path = dir + "/out.csv"
        let sink = FileSink(path: path)
        let staging = try sink.staging()
        var p = weekly(staging.path)
        p.mode = .resume
        _ = try await p.run()
        // The journal is written, the renames never happened (a crash).
        try #"{"stagingOutput":"\#(staging.path)","stagingCheckpoint":"\#(staging.path).checkpoint.json"}"#
            .write(toFile: path + ".swap.json", atomically: true, encoding: .utf8)
        _ = try await weekly(path).run()
        XCTAssertEqual(try String(contentsOfFile: path, encoding: .utf8), expectedWeekly(readings))
        XCTAssertFalse(FileManager.default.fileExists(atPath: path + ".swap.json"))
    }

    func testObjectSinkRewritesTheWholeObjectAndRestores() async throws {
        let readings = try await produce(35)
        let lake = dir + "/lake"
        let url = "file://\(lake)/weather_aggregation.csv"
        _ = try await weekly(url).run()
        let store = try LocalObjectStore(root: lake)
        let firstBody = try await store.get(key: "weather_aggregation.csv")
        XCTAssertEqual(String(buffer: firstBody), expectedWeekly(readings))
        // Extra bytes in the object (a PUT whose checkpoint PUT never came) are cut off.
        try await store.put(key: "weather_aggregation.csv", body: ByteBuffer(string: expectedWeekly(readings) + "6,1.0,1,1\n"))
        let more = try await produce(7, seed: 8)
        _ = try await weekly(url).run()
        let secondBody = try await store.get(key: "weather_aggregation.csv")
        XCTAssertEqual(String(buffer: secondBody), expectedWeekly(readings + more))
        try await store.shutdown()
    }

    func testPartsSinkDropsAPartItsCheckpointDoesNotCover() async throws {
        let readings = try await produce(35)
        let root = dir + "/parts"
        var p = weekly(root)
        p.appendParts = true
        p.commitInterval = .zero
        _ = try await p.run()
        let store = try LocalObjectStore(root: root)
        var keys = try await store.list(prefix: "").map(\.key)
        XCTAssertEqual(keys, ["_checkpoint.json"] + (1...5).map { "part-0000000\($0).csv" })
        var joined = ""
        for k in keys.dropFirst() { joined += String(buffer: try await store.get(key: k)).split(separator: "\n").dropFirst().map { $0 + "\n" }.joined() }
        XCTAssertEqual("week_id,avg_temp,avg_co,avg_humidity\n" + joined, expectedWeekly(readings))
        // A part PUT whose checkpoint PUT never came: removed on restart, then rebuilt.
        try await store.put(key: "part-00000006.csv", body: ByteBuffer(string: "stale\n"))
        let more = try await produce(7, seed: 9)
        _ = try await p.run()
        keys = try await store.list(prefix: "").map(\.key)
        XCTAssertEqual(keys.count, 7)
        let sixth = String(buffer: try await store.get(key: "part-00000006.csv"))
        XCTAssertEqual(sixth, "week_id,avg_temp,avg_co,avg_humidity\n" + expectedWeekly(readings + more).split(separator: "\n").last! + "\n")
        try await store.shutdown()
    }

    func testTopicSinkCarriesWindowIds() async throws {
        _ = try await produce(21)
        let source = StreamSource(bootstrapServers: broker.bootstrap, topic: "weather")
        let stream = Stream(source: source).map { try WeatherReading(json: $0.value) }.window(.count(7), aggregate: Count<WeatherReading>())
        let sink = try TopicSink(bootstrapServers: broker.bootstrap, topic: "weekly-counts", checkpointPath: dir + "/topic.checkpoint.json")
        var options = RunOptions()
        options.stopAtEnd = true
        let summary = try await stream.run(into: sink, format: RowFormat { "\($0.id),\($0.value)\n" }, options: options)
        XCTAssertEqual(summary.outputLength, 3)
        var configuration = KafkaConsumer.Configuration(bootstrapServers: broker.bootstrap)
        configuration.autoOffsetReset = .earliest
        let consumer = try KafkaConsumer(configuration: configuration)
        try consumer.assign(partitions: [TopicPartition(topic: "weekly-counts", partition: 0)])
        let runner = Task { try await consumer.run() }
        var records: [ConsumerRecord] = []
        let deadline = ContinuousClock.now + .seconds(20)
        while records.count < 3, ContinuousClock.now < deadline { records += try await consumer.poll(timeout: .milliseconds(200)) }
        await consumer.close()
        _ = try? await runner.value
        XCTAssertEqual(records.map { $0.valueString }, ["1,7", "2,7", "3,7"])
        XCTAssertEqual(records.map { $0.headers.first.flatMap { $0.value.map { String(buffer: $0) } } }, ["0:1", "0:2", "0:3"])
    }
}
