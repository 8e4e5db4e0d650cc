import Foundation
import NIOCore
import XCTest
@testable import Lake

/// Files written by `ParquetWriter`, read back by pyarrow and DuckDB.
final class ParquetWriterTests: XCTestCase {
    static let schema = ParquetSchema(columns: [
        .init(name: "id", type: .int64),
        .init(name: "temp", type: .double),
        .init(name: "flag", type: .boolean),
        .init(name: "name", type: .string),
        .init(name: "blob", type: .bytes),
        .init(name: "ts", type: .timestampMillis),
        .init(name: "unique", type: .string),
    ])

    /// Row `i` of the sample data: every type, nulls at different rates, a low-cardinality
    /// string (dictionary), a unique string (dictionary fallback), negative doubles.
    static func row(_ i: Int) -> [ParquetValue] {
        [
            .int64(Int64(i) - 500),
            i % 7 == 0 ? .null : .double(Double(i) * 0.5 - 100),
            i % 5 == 0 ? .null : .boolean(i % 3 == 0),
            i % 11 == 0 ? .null : .string("städte-\(i % 13)"),
            i % 4 == 0 ? .null : .bytes([UInt8(i % 256), 0, 255]),
            i % 9 == 0 ? .null : .timestampMillis(1_700_000_000_000 + Int64(i) * 1000),
            .string("row \(i) " + String(repeating: "x", count: i % 17)),
        ]
    }

    static let rowCount = 3000

    func writeSample(to url: URL, compression: ParquetCompression, dictionaryPageBytes: Int = 1 << 20) throws -> Int {
        var options = ParquetWriter.Options()
        options.compression = compression
        options.rowGroupBytes = 40_000
        options.pageBytes = 4000
        options.dictionaryPageBytes = dictionaryPageBytes
        options.keyValueMetadata = ["tributary.test": "yes"]
        var file = ByteBuffer()
        let writer = try ParquetWriter(schema: Self.schema, options: options) { file.writeImmutableBuffer($0) }
        for i in 0..<Self.rowCount { try writer.append(Self.row(i)) }
        let size = try writer.close()
        XCTAssertEqual(Int(size), file.readableBytes)
        try Data(file.readableBytesView).write(to: url)
        return Int(size)
    }

    struct ArrowView: Decodable {
        var types: [String: String]
        var rows: Int
        var rowGroups: Int
        var columns: [String: [JSONCell]]
        var nullCounts: [String: Int]
        var stats: [String: [String?]]
        var encodings: [String: [String]]
        var codec: String
        var metadata: [String: String]
    }

    enum JSONCell: Decodable, Equatable {
        case null, int(Int64), double(Double), bool(Bool), string(String)
        init(from decoder: Decoder) throws {
            let c = try decoder.singleValueContainer()
            if c.decodeNil() { self = .null } else if let b = try? c.decode(Bool.self) { self = .bool(b) }
            else if let i = try? c.decode(Int64.self) { self = .int(i) } else if let d = try? c.decode(Double.self) { self = .double(d) }
            else { self = .string(try c.decode(String.self)) }
        }
    }

    static let pyarrowReader = """
        import json, sys, pyarrow.parquet as pq
        path = sys.argv[1]
        f = pq.ParquetFile(path)
        t = f.read()
        md = f.metadata
        def cell(v):
            if isinstance(v, bytes): return v.hex()
            if hasattr(v, "timestamp"): return int(v.timestamp() * 1000)
            return v
        out = {"types": {fl.name: str(fl.type) for fl in t.schema}, "rows": t.num_rows, "rowGroups": md.num_row_groups,
               "columns": {n: [cell(v) for v in t.column(n).to_pylist()] for n in t.column_names},
               "nullCounts": {}, "stats": {}, "encodings": {}, "codec": md.row_group(0).column(0).compression,
               "metadata": {k.decode(): v.decode() for k, v in (md.metadata or {}).items()}}
        for i, n in enumerate(t.column_names):
            nulls = 0; lo = None; hi = None
            for g in range(md.num_row_groups):
                c = md.row_group(g).column(i)
                s = c.statistics
                assert s is not None and s.has_null_count, (n, g)
                nulls += s.null_count
                out["encodings"].setdefault(n, sorted(set(out["encodings"].get(n, [])) | set(c.encodings)))
                if s.has_min_max:
                    a, b = cell(s.min), cell(s.max)
                    lo = a if lo is None else min(lo, a)
                    hi = b if hi is None else max(hi, b)
            out["nullCounts"][n] = nulls
            out["stats"][n] = [None if lo is None else str(lo), None if hi is None else str(hi)]
        print(json.dumps(out))
        """

    func testPyarrowReadsEveryTypeNullsStatisticsWithEachCompression() throws {
        let dir = try makeTemporaryDirectory(self)
        for compression in ParquetCompression.allCases {
            let url = dir.appendingPathComponent("sample-\(compression).parquet")
            _ = try writeSample(to: url, compression: compression)
            let view = try decodeJSON(ArrowView.self, try runPython(Self.pyarrowReader, arguments: [url.path]))
            XCTAssertEqual(view.codec, ["uncompressed": "UNCOMPRESSED", "snappy": "SNAPPY", "zstd": "ZSTD"][compression.rawValue])
            XCTAssertEqual(view.types, ["id": "int64", "temp": "double", "flag": "bool", "name": "string", "blob": "binary",
                                        "ts": "timestamp[ms, tz=UTC]", "unique": "string"])
            XCTAssertEqual(view.rows, Self.rowCount)
            XCTAssertGreaterThan(view.rowGroups, 2, "small rowGroupBytes must give several row groups")
            XCTAssertEqual(view.metadata["tributary.test"], "yes")
            let rows = (0..<Self.rowCount).map(Self.row)
            for (c, column) in Self.schema.columns.enumerated() {
                let expected: [JSONCell] = rows.map { row in
                    switch row[c] {
                    case .null: return .null
                    case .int64(let v), .timestampMillis(let v): return .int(v)
                    case .double(let v): return .double(v)
                    case .boolean(let v): return .bool(v)
                    case .string(let v): return .string(v)
                    case .bytes(let v): return .string(v.map { String(format: "%02x", $0) }.joined())
                    }
                }
                // JSON turns whole doubles into ints; compare numerically.
                let actual = view.columns[column.name] ?? []
                XCTAssertEqual(actual.count, expected.count, column.name)
                for (a, e) in zip(actual, expected) where a != e {
                    if case .double(let d) = e, case .int(let i) = a, Double(i) == d { continue }
                    XCTFail("\(compression) \(column.name): \(a) != \(e)")
                    break
                }
                XCTAssertEqual(view.nullCounts[column.name], expected.filter { $0 == .null }.count, column.name)
            }
            XCTAssertEqual(view.stats["id"], ["-500", "2499"])
            XCTAssertEqual(view.stats["temp"], ["-99.5", "1399.5"])
            XCTAssertEqual(view.stats["flag"], ["False", "True"])
            XCTAssertEqual(view.stats["name"], ["städte-0", "städte-9"])
            XCTAssertEqual(view.stats["ts"], ["1700000001000", "1700002999000"])
            XCTAssertEqual(view.encodings["name"]?.contains("RLE_DICTIONARY"), true, "low-cardinality strings use a dictionary")
            XCTAssertEqual(view.encodings["unique"]?.contains("RLE_DICTIONARY"), false, "unique strings fall back to PLAIN")
        }
    }

    func testSmallDictionaryLimitFallsBackToPlain() throws {
        let dir = try makeTemporaryDirectory(self)
        let url = dir.appendingPathComponent("plain.parquet")
        _ = try writeSample(to: url, compression: .snappy, dictionaryPageBytes: 16)
        let view = try decodeJSON(ArrowView.self, try runPython(Self.pyarrowReader, arguments: [url.path]))
        XCTAssertEqual(view.encodings["name"]?.contains("RLE_DICTIONARY"), false)
        XCTAssertEqual(view.columns["name"]?.prefix(3), [.null, .string("städte-1"), .string("städte-2")])
    }

    func testDuckDBReadsValuesAndAggregates() throws {
        let dir = try makeTemporaryDirectory(self)
        let url = dir.appendingPathComponent("duck.parquet")
        _ = try writeSample(to: url, compression: .zstd)
        let out = try runPython("""
            import json, sys, duckdb
            r = duckdb.connect().execute(f"SELECT count(*), sum(id), count(temp), sum(temp), count(flag), sum(flag::int), min(name), max(name), \
            count(blob), epoch_ms(max(ts)), count(ts), typeof(any_value(ts)) FROM read_parquet('{sys.argv[1]}')").fetchone()
            print(json.dumps([str(v) for v in r]))
            """, arguments: [url.path])
        let rows = (0..<Self.rowCount).map(Self.row)
        func count(_ c: Int) -> Int { rows.filter { $0[c] != .null }.count }
        let temps = rows.compactMap { if case .double(let d) = $0[1] { return d } else { return nil } }
        let trues = rows.filter { $0[2] == .boolean(true) }.count
        let expected = ["\(Self.rowCount)", "\((0..<Self.rowCount).reduce(0) { $0 + $1 - 500 })", "\(count(1))",
                        "\(temps.reduce(0, +))", "\(count(2))", "\(trues)", "städte-0", "städte-9", "\(count(4))",
                        "1700002999000", "\(count(5))", "TIMESTAMP WITH TIME ZONE"]
        XCTAssertEqual(try decodeJSON([String].self, out), expected)
    }

    /// Row groups whose statistics exclude a WHERE clause must not be read: the test
    /// corrupts every page of the first row group, so a query only succeeds when DuckDB
    /// prunes that group by its min/max, and fails when it has to read it.
    func testDuckDBPrunesRowGroupsByStatistics() throws {
        let dir = try makeTemporaryDirectory(self)
        let url = dir.appendingPathComponent("pushdown.parquet")
        var options = ParquetWriter.Options()
        options.rowGroupBytes = 8 * 1000 * 3  // 1000 rows per group (three 8-byte columns)
        var file = ByteBuffer()
        let schema = ParquetSchema(columns: [.init(name: "id", type: .int64), .init(name: "v", type: .double),
                                            .init(name: "s", type: .int64)])
        let writer = try ParquetWriter(schema: schema, options: options) { file.writeImmutableBuffer($0) }
        for i in 0..<4000 { try writer.append([.int64(Int64(i)), .double(Double(i) / 3), .int64(Int64(i * 7 % 1001))]) }
        try writer.close()
        var bytes = Array(file.readableBytesView)
        // The first row group's pages start right after "PAR1"; the second group's first
        // page offset comes from pyarrow. Overwrite everything in between.
        try Data(bytes).write(to: url)
        let secondGroup = Int(try runPython("""
            import sys, pyarrow.parquet as pq
            md = pq.ParquetFile(sys.argv[1]).metadata
            assert md.num_row_groups == 4, md.num_row_groups
            c = md.row_group(1).column(0)
            print(c.dictionary_page_offset if c.has_dictionary_page else c.data_page_offset)
            """, arguments: [url.path]).trimmingCharacters(in: .whitespacesAndNewlines))!
        for i in 4..<secondGroup { bytes[i] = 0xEE }
        try Data(bytes).write(to: url)
        let out = try runPython("""
            import sys, duckdb
            p = sys.argv[1]
            print(duckdb.connect().execute(f"SELECT count(*), sum(id) FROM read_parquet('{p}') WHERE id >= 1500").fetchone())
            try:
                duckdb.connect().execute(f"SELECT count(*), sum(id) FROM read_parquet('{p}') WHERE id < 10").fetchone()
                print("read-corrupt-group")
            except Exception as e:
                print("corrupt-group-failed")
            """, arguments: [url.path])
        let lines = out.split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.first, "(2500, \((1500..<4000).reduce(0, +)))")
        XCTAssertEqual(lines.last, "corrupt-group-failed", "the corruption must matter for a query that needs the group")
    }

    /// Orders a signed-byte or signed-int comparison would get wrong: UTF-8 bytes above
    /// 0x7F sort after ASCII, negative and extreme integers, -0.0 and NaN among doubles.
    /// DuckDB prunes by these statistics, so a wrong max would lose rows.
    func testStatisticsUseEachTypesOrder() throws {
        let dir = try makeTemporaryDirectory(self)
        let url = dir.appendingPathComponent("order.parquet")
        var file = ByteBuffer()
        let writer = try ParquetWriter(schema: ParquetSchema(columns: [.init(name: "s", type: .string), .init(name: "i", type: .int64),
                                                                      .init(name: "d", type: .double)])) { file.writeImmutableBuffer($0) }
        try writer.append([.string("z"), .int64(Int64.max), .double(.nan)])
        try writer.append([.string("é"), .int64(-1), .double(-0.0)])
        try writer.append([.string("a"), .int64(Int64.min), .double(2.5)])
        try writer.close()
        try Data(file.readableBytesView).write(to: url)
        let out = try runPython("""
            import sys, json, duckdb, pyarrow.parquet as pq
            p = sys.argv[1]
            md = pq.ParquetFile(p).metadata.row_group(0)
            stats = [[str(md.column(i).statistics.min), str(md.column(i).statistics.max)] for i in range(3)]
            c = duckdb.connect()
            q = lambda w: c.execute(f"SELECT count(*) FROM read_parquet('{p}') WHERE {w}").fetchone()[0]
            print(json.dumps({"stats": stats, "counts": [q("s = 'é'"), q("s > 'y'"), q("i < -5"), q("i > 0"), q("d = 0")]}))
            """, arguments: [url.path])
        struct Result: Decodable { var stats: [[String]]; var counts: [Int] }
        let result = try decodeJSON(Result.self, out)
        XCTAssertEqual(result.stats, [["a", "é"], ["\(Int64.min)", "\(Int64.max)"], ["-0.0", "2.5"]])
        XCTAssertEqual(result.counts, [1, 2, 1, 1, 1])
    }

    func testRLEHybridEncodesRepeatedAndLiteralRuns() {
        var out = ByteBuffer()
        // 11 ones, then 0,1 (padded with zeros to a group of 8).
        RLEHybrid.encode([1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1], bitWidth: 1, into: &out)
        XCTAssertEqual(Array(out.readableBytesView), [
            0x16, 0x01,  // RLE run: 11 << 1, value 1
            0x03,        // bit-packed run: 1 group << 1 | 1
            0b0000_0010, // 0,1 then padding, LSB first
        ])
        out.clear()
        // Literals topped up to a group from the following run: 3 literals + 5 of the run,
        // then the rest of the run (7) is too short and stays literal, padded with a zero.
        RLEHybrid.encode([2, 3, 2] + Array(repeating: 1, count: 12), bitWidth: 2, into: &out)
        XCTAssertEqual(Array(out.readableBytesView), [
            0x05,                    // bit-packed run of 2 groups
            0b0110_1110, 0b0101_0101, // 2,3,2,1 | 1,1,1,1 (2 bits each, LSB first)
            0b0101_0101, 0b0001_0101, // 1,1,1,1 | 1,1,1,0
        ])
        XCTAssertEqual(RLEHybrid.bitWidth(forMax: 0), 0)
        XCTAssertEqual(RLEHybrid.bitWidth(forMax: 1), 1)
        XCTAssertEqual(RLEHybrid.bitWidth(forMax: 255), 8)
        XCTAssertEqual(RLEHybrid.bitWidth(forMax: 256), 9)
    }

    func testAppendRejectsValuesOfTheWrongType() throws {
        let writer = try ParquetWriter(schema: ParquetSchema(columns: [.init(name: "n", type: .int64)])) { _ in }
        XCTAssertThrowsError(try writer.append([.string("7")])) { XCTAssertEqual(($0 as? LakeError)?.code, .schemaMismatch) }
        XCTAssertThrowsError(try writer.append([.int64(1), .int64(2)]))
        XCTAssertThrowsError(try ParquetWriter(schema: ParquetSchema(columns: [])) { _ in })
        XCTAssertEqual(writer.pendingRows, 0)
    }
}
