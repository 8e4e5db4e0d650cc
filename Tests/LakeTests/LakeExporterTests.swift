import Broker
import Foundation
import KafkaClient
import Logging
import NIOCore
import ObjectStore
import TributaryTestSupport
import XCTest
@testable import Lake

typealias LakeTestBroker = InProcessBroker

extension InProcessBroker {
    /// Sends `values` (key i, round-robin by key hash) and waits for every ack.
    func produce(_ topic: String, _ values: [String?], partition: Int32? = nil) async throws {
        let producer = try KafkaProducer(configuration: .init(bootstrapServers: bootstrap))
        let runner = Task { try await producer.run() }
        for (i, v) in values.enumerated() {
            _ = try await producer.send(ProducerRecord(topic: topic, partition: partition ?? Int32(i % 2), key: "k\(i)", value: v))
        }
        await producer.close()
        try await runner.value
    }
}

final class LakeExporterTests: XCTestCase {
    struct FileView: Decodable {
        var offsets: [[Int64]]  // [partition, offset]
        var types: [String: String]
        var n: [Double?]
    }

    /// Every exported row's (partition, offset), the column types pyarrow sees across
    /// all files (unified schema) and column `n`, sorted by partition and offset.
    static let readAll = """
        import json, sys, glob, pyarrow as pa, pyarrow.parquet as pq
        files = sorted(glob.glob(sys.argv[1] + "/**/*.parquet", recursive=True))
        tables = [pq.read_table(f) for f in files]
        t = pa.concat_tables(tables, promote_options="permissive").sort_by([("_partition", "ascending"), ("_offset", "ascending")])
        print(json.dumps({"offsets": [[p, o] for p, o in zip(t.column("_partition").to_pylist(), t.column("_offset").to_pylist())],
                          "types": {f.name: str(f.type) for f in t.schema},
                          "n": t.column("n").to_pylist() if "n" in t.column_names else []}))
        """

    func testExportResumesAndRemovesObjectsOfAnInterruptedRun() async throws {
        let broker = try await LakeTestBroker()
        let dir = try makeTemporaryDirectory(self)
        do {
            try await broker.createTopic("readings", partitions: 2)
            // Integers first, then doubles: the schema widens; one value is not JSON.
            var values: [String?] = (0..<300).map { #"{"n": \#($0), "station": "s\#($0 % 3)"}"# }
            values += (300..<400).map { #"{"n": \#($0).5, "extra": true}"# }
            values.append("not json")
            values.append(nil)
            try await broker.produce("readings", values)

            let store = try LakeLocalStore.open(dir)
            var configuration = LakeExporter.Configuration(topic: "readings", bootstrapServers: broker.bootstrap)
            configuration.group = "lake-test"
            configuration.fromBeginning = true
            configuration.maxRows = 64
            configuration.temporaryDirectory = dir.path
            let first = try await LakeExporter(configuration: configuration, store: store).run()
            XCTAssertEqual(first.progress.records, 402)
            XCTAssertEqual(first.progress.rowsWritten, 402)
            XCTAssertEqual(first.progress.nonJSON, 1)
            XCTAssertGreaterThan(first.progress.filesWritten, 6, "maxRows 64 rolls files")
            XCTAssertEqual(first.progress.lag, 0)

            var view = try decodeJSON(FileView.self, try runPython(Self.readAll, arguments: [dir.path + "/readings"]))
            XCTAssertEqual(view.offsets, (0..<201).map { [0, Int64($0)] } + (0..<201).map { [1, Int64($0)] })
            XCTAssertEqual(view.types["n"], "double")
            XCTAssertEqual(view.types["_value"], "binary")
            XCTAssertEqual(view.types["_timestamp"], "timestamp[ms, tz=UTC]")

            // A run that crashed after uploading but before its manifest left an object
            // past the resume point: the next run removes it and writes its own.
            let manifest = try await LakeManifest.load(from: store, topic: "readings", format: .parquet)
            XCTAssertEqual(manifest?.nextOffsets, ["0": 201, "1": 201])
            XCTAssertEqual(manifest?.objects.count, first.progress.filesWritten)
            let orphan = "readings/part-0-201-250.parquet"
            try await store.put(key: orphan, body: ByteBuffer(string: "half-written garbage"))

            try await broker.produce("readings", (0..<50).map { #"{"n": \#($0 + 1000)}"# })
            let second = try await LakeExporter(configuration: configuration, store: store).run()
            XCTAssertEqual(second.progress.records, 50)
            XCTAssertEqual(second.orphansDeleted, 1)
            XCTAssertEqual(second.ranges, [0: 201..<226, 1: 201..<226])
            let orphanAfter = try await store.head(key: orphan)
            XCTAssertNil(orphanAfter)
            view = try decodeJSON(FileView.self, try runPython(Self.readAll, arguments: [dir.path + "/readings"]))
            XCTAssertEqual(view.offsets, (0..<226).map { [0, Int64($0)] } + (0..<226).map { [1, Int64($0)] })

            // The group has the same positions as the manifest.
            let admin = try KafkaAdmin(bootstrapServers: broker.bootstrap)
            let committed = try await admin.committedOffsets("lake-test")
            await admin.close()
            XCTAssertEqual(committed[TopicPartition(topic: "readings", partition: 0)], 226)
            XCTAssertEqual(committed[TopicPartition(topic: "readings", partition: 1)], 226)

            // Nothing new: nothing written, and it still ends.
            let third = try await LakeExporter(configuration: configuration, store: store).run()
            XCTAssertEqual(third.progress.records, 0)
            XCTAssertEqual(third.progress.filesWritten, 0)
            try await store.shutdown()
        } catch {
            await broker.stop()
            throw error
        }
        await broker.stop()
    }

    func testCSVAndJSONLinesAndPartitionByField() async throws {
        let broker = try await LakeTestBroker()
        let dir = try makeTemporaryDirectory(self)
        do {
            try await broker.createTopic("mixed", partitions: 1)
            try await broker.produce("mixed", [#"{"city": "Oslo", "t": 1, "note": "a,\"b\""}"#, #"{"city": "Bergen/Vest", "t": 2.5}"#,
                                               #"{"city": "Oslo", "t": 3, "tags": ["x"]}"#, "plain"], partition: 0)
            let store = try LakeLocalStore.open(dir)
            for format in [LakeFormat.csv, .jsonl] {
                var configuration = LakeExporter.Configuration(topic: "mixed", bootstrapServers: broker.bootstrap)
                configuration.format = format
                configuration.fromBeginning = true
                configuration.partitionBy = .field("city")
                configuration.temporaryDirectory = dir.path
                let summary = try await LakeExporter(configuration: configuration, store: store).run()
                XCTAssertEqual(Set(summary.objectKeys), [
                    "mixed/city=Oslo/part-0-0-2.\(format.rawValue)", "mixed/city=Bergen%2FVest/part-0-1-1.\(format.rawValue)",
                    "mixed/city=__HIVE_DEFAULT_PARTITION__/part-0-3-3.\(format.rawValue)"])
            }
            let oslo = try String(contentsOf: dir.appendingPathComponent("mixed/city=Oslo/part-0-0-2.csv"), encoding: .utf8)
            let lines = oslo.components(separatedBy: "\r\n")
            // The header is the schema when the first chunk was written: at the end of this small export.
            XCTAssertEqual(lines[0], "_topic,_partition,_offset,_timestamp,_key,city,t,note,tags,_value")
            XCTAssertTrue(lines[1].hasSuffix(",k0,Oslo,1,\"a,\"\"b\"\"\",,"), lines[1])
            XCTAssertTrue(lines[2].hasSuffix(",k2,Oslo,3,,\"[\"\"x\"\"]\","), lines[2])
            XCTAssertEqual(lines.count, 4)
            let out = try runPython("""
                import sys, duckdb, json
                c = duckdb.connect()
                r = c.execute(f"SELECT city, t, note FROM read_json_auto('{sys.argv[1]}/mixed/**/*.jsonl', hive_partitioning=false, union_by_name=true) ORDER BY _offset").fetchall()
                print(json.dumps([[str(x) for x in row] for row in r]))
                """, arguments: [dir.path])
            XCTAssertEqual(try decodeJSON([[String]].self, out), [["Oslo", "1.0", "a,\"b\""], ["Bergen/Vest", "2.5", "None"],
                                                                    ["Oslo", "3.0", "None"], ["None", "None", "None"]])
            try await store.shutdown()
        } catch {
            await broker.stop()
            throw error
        }
        await broker.stop()
    }
}

extension LakeExporterTests {
    func testPartitionByHourWithTimeFieldAndRollAfterRecordTime() async throws {
        let broker = try await LakeTestBroker()
        let dir = try makeTemporaryDirectory(self)
        do {
            try await broker.createTopic("timed", partitions: 1)
            // Minutes 0, 20, 40, 50 of 10:00, then 11:05: two hours; within 10:00 the
            // 30-minute record-time roll splits at minute 40.
            let times = ["2024-05-01T10:00:00Z", "2024-05-01T10:20:00Z", "2024-05-01T10:40:00Z", "2024-05-01T10:50:00Z",
                         "2024-05-01T11:05:00.250Z"]
            try await broker.produce("timed", times.map { #"{"at": "\#($0)", "v": 1}"# }, partition: 0)
            let store = try LakeLocalStore.open(dir)
            var configuration = LakeExporter.Configuration(topic: "timed", bootstrapServers: broker.bootstrap)
            configuration.fromBeginning = true
            configuration.partitionBy = .hour
            configuration.timeField = "at"
            configuration.rollAfter = .seconds(30 * 60)
            configuration.temporaryDirectory = dir.path
            let summary = try await LakeExporter(configuration: configuration, store: store).run()
            XCTAssertEqual(summary.objectKeys.sorted(), [
                "timed/date=2024-05-01/hour=10/part-0-0-1.parquet",
                "timed/date=2024-05-01/hour=10/part-0-2-3.parquet",
                "timed/date=2024-05-01/hour=11/part-0-4-4.parquet",
            ])
            let out = try runPython("""
                import sys, duckdb
                print(duckdb.connect().execute(f"SELECT count(*), max(hour), sum(v) FROM read_parquet('{sys.argv[1]}/timed/**/*.parquet', hive_partitioning=true)").fetchone())
                """, arguments: [dir.path])
            XCTAssertEqual(out.trimmingCharacters(in: .whitespacesAndNewlines), "(5, 11, 5)")
            try await store.shutdown()
        } catch {
            await broker.stop()
            throw error
        }
        await broker.stop()
    }
}

extension LakeExporterTests {
    func testManyBucketsRollWhenTooManyFilesAreOpen() async throws {
        let broker = try await LakeTestBroker()
        let dir = try makeTemporaryDirectory(self)
        do {
            try await broker.createTopic("cities", partitions: 1)
            try await broker.produce("cities", (0..<40).map { #"{"city": "c\#($0 % 10)", "i": \#($0)}"# }, partition: 0)
            let store = try LakeLocalStore.open(dir)
            var configuration = LakeExporter.Configuration(topic: "cities", bootstrapServers: broker.bootstrap)
            configuration.fromBeginning = true
            configuration.partitionBy = .field("city")
            configuration.maxOpenFiles = 3
            configuration.format = .jsonl
            configuration.temporaryDirectory = dir.path
            let summary = try await LakeExporter(configuration: configuration, store: store).run()
            // Every third new city rolls the open ones: files of one record each.
            XCTAssertEqual(summary.progress.filesWritten, 40)
            XCTAssertTrue(summary.objectKeys.contains("cities/city=c3/part-0-3-3.jsonl"), "\(summary.objectKeys)")
            var seen: [Int] = []
            for key in summary.objectKeys {
                let text = try String(contentsOf: dir.appendingPathComponent(key), encoding: .utf8)
                for line in text.split(separator: "\n") {
                    let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
                    XCTAssertEqual(object["city"] as? String, key.split(separator: "/")[1].replacingOccurrences(of: "city=", with: ""))
                    seen.append(object["i"] as! Int)
                }
            }
            XCTAssertEqual(seen.sorted(), Array(0..<40))
            try await store.shutdown()
        } catch {
            await broker.stop()
            throw error
        }
        await broker.stop()
    }
}

enum LakeLocalStore {
    static func open(_ dir: URL) throws -> any ObjectStore {
        try ObjectStoreURL(parsing: "file://" + dir.path).makeStore(logger: Logger(label: "lake-test-store"))
    }
}
