// The Parquet writer on its own, for a like-for-like comparison with pyarrow's
// write_table (benchmarks/lake_export.py runs both on the same records).
//
// Usage: lake-benchmarks VALUES.jsonl
//   VALUES.jsonl: one record value (a JSON object) per line.
// Prints one JSON object per measurement on stdout.
import Foundation
import Lake
import NIOCore

let arguments = CommandLine.arguments
guard arguments.count == 2, let text = try? String(contentsOfFile: arguments[1], encoding: .utf8) else {
    FileHandle.standardError.write(Data("usage: lake-benchmarks VALUES.jsonl\n".utf8))
    exit(2)
}

func seconds(_ d: Duration) -> Double { Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18 }

func report(_ name: String, _ rows: Int, _ elapsed: Duration, _ bytes: Int) {
    let s = seconds(elapsed)
    print(#"{"name": "\#(name)", "rows": \#(rows), "seconds": \#(s), "rowsPerSecond": \#(Double(rows) / s), "bytes": \#(bytes)}"#)
}

// JSON values to rows, as the exporter does (timed on its own).
let lines = text.split(separator: "\n")
let clock = ContinuousClock()
var builder = LakeRowBuilder()
var rows: [LakeRow] = []
rows.reserveCapacity(lines.count)
let parseTime = clock.measure {
    for (i, line) in lines.enumerated() {
        if case .row(let row) = builder.build(topic: "weather", partition: 0, offset: Int64(i), timestamp: 1_700_000_000_000,
                                              key: nil, value: ByteBuffer(string: String(line)), keepNonJSON: true) {
            rows.append(row)
        }
    }
}
report("json-to-rows", rows.count, parseTime, 0)

// Rows already typed, so only the writer is timed.
let columns = builder.schema.columns
let typed: [[ParquetValue]] = rows.map { row in
    columns.indices.map { i in
        switch i < row.values.count ? row.values[i] : .null {
        case .null: return .null
        case .int64(let v): return columns[i].type == .double ? .double(Double(v)) : .int64(v)
        case .double(let v): return .double(v)
        case .boolean(let v): return .boolean(v)
        case .string(let s), .json(let s): return .string(s)
        case .bytes(let b): return .bytes(b)
        case .timestampMillis(let t): return .timestampMillis(t)
        }
    }
}
let directory = FileManager.default.temporaryDirectory.appendingPathComponent("lake-benchmarks-\(getpid())")
try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
defer { try? FileManager.default.removeItem(at: directory) }
for compression in ParquetCompression.allCases {
    let path = directory.appendingPathComponent("\(compression).parquet").path
    FileManager.default.createFile(atPath: path, contents: nil)
    let handle = FileHandle(forWritingAtPath: path)!
    var options = ParquetWriter.Options()
    options.compression = compression
    var size: Int64 = 0
    let elapsed = try clock.measure {
        let writer = try ParquetWriter(schema: ParquetSchema(columns: columns), options: options) { buffer in
            try buffer.withUnsafeReadableBytes { try handle.write(contentsOf: Data($0)) }
        }
        for row in typed { try writer.append(row) }
        size = try writer.close()
        try handle.synchronize()
    }
    try handle.close()
    report("parquet-writer-\(compression)", typed.count, elapsed, Int(size))
}
