import Foundation
#if canImport(Glibc)
import Glibc
#endif
import NIOCore

/// The file formats an export writes.
public enum LakeFormat: String, Sendable, Hashable, CaseIterable, Codable {
    case parquet, csv, jsonl

    /// The object key's extension.
    public var fileExtension: String { rawValue }
}

/// One output file being written to a local temporary path, in chunks of rows.
///
/// Rows wait in memory until about `chunkBytes` (or `chunkRows`) are buffered; then they
/// are encoded and appended to the file (a Parquet row group, or CSV/JSON lines). The
/// first chunk fixes the file's columns (Parquet and CSV) and types (Parquet): a later
/// row that does not fit (`accepts` is false) needs a new file.
final class LakeFileWriter {
    let format: LakeFormat
    let path: String
    private let parquetOptions: ParquetWriter.Options
    private let chunkBytes: Int
    private let rowGroupBytes: Int
    private let chunkRows: Int
    private var handle: FileHandle?
    private var pending: [LakeRow] = []
    private var pendingBytes = 0
    /// Columns fixed by the first chunk (nil before it, and always for JSON lines).
    private var frozen: [ParquetColumn]?
    private var parquet: ParquetWriter?
    private(set) var rows = 0
    private(set) var estimatedBytes = 0
    private(set) var firstOffset: Int64 = -1
    private(set) var lastOffset: Int64 = -1
    private(set) var firstTime: Int64 = 0

    /// - Parameters:
    ///   - rowGroupBytes: the Parquet row group size (of plain-encoded values).
    ///   - chunkBytes: how much waits as rows before the first chunk fixes the columns.
    init(format: LakeFormat, directory: String, parquetOptions: ParquetWriter.Options, rowGroupBytes: Int,
         chunkBytes: Int, chunkRows: Int) throws {
        self.format = format
        self.path = directory + "/\(Self.temporaryPrefix)\(getpid())-\(UUID().uuidString).\(format.fileExtension).tmp"
        self.parquetOptions = parquetOptions
        self.rowGroupBytes = max(1, rowGroupBytes)
        self.chunkBytes = max(1, chunkBytes)
        self.chunkRows = max(1, chunkRows)
        guard FileManager.default.createFile(atPath: path, contents: nil), let handle = FileHandle(forWritingAtPath: path) else {
            throw LakeError(.io, "cannot create temporary file \(path)")
        }
        self.handle = handle
    }

    deinit {
        try? handle?.close()
    }

    /// Whether `row` can go into this file given the columns its first chunk fixed.
    func accepts(_ row: LakeRow) -> Bool {
        guard let frozen else { return true }
        for (i, v) in row.values.enumerated() where v != .null {
            guard i < frozen.count else { return false }
            if format == .parquet && v.coerced(to: frozen[i].type) == nil { return false }
        }
        return true
    }

    /// Adds a row of Kafka record `offset`; `schema` is the export's schema now.
    ///
    /// Until the first chunk is written rows wait as they are, so the columns can still
    /// grow and widen; after it they are encoded at once (Parquet column buffers, CSV
    /// and JSON text), which keeps memory near the encoded size.
    func append(_ row: LakeRow, offset: Int64, schema: LakeSchema) throws {
        precondition(accepts(row))
        if rows == 0 {
            firstOffset = offset
            firstTime = row.time
        }
        lastOffset = offset
        rows += 1
        estimatedBytes += row.estimatedBytes
        if let frozen, format == .parquet, let parquet {
            try parquet.append(Self.parquetValues(row, frozen))
            return
        }
        if format == .jsonl || (format == .csv && frozen != nil) {
            encodeText([row], schema: schema)
            if text.readableBytes >= Self.textFlushBytes { try flushText() }
            return
        }
        pending.append(row)
        pendingBytes += row.estimatedBytes
        if pendingBytes >= chunkBytes || pending.count >= chunkRows { try writeChunk(schema: schema) }
    }

    /// Encoded text waits in memory up to this much before it is written to the file.
    static let textFlushBytes = 1 << 20
    private var text = ByteBufferAllocator().buffer(capacity: 0)

    static func parquetValues(_ row: LakeRow, _ columns: [ParquetColumn]) -> [ParquetValue] {
        var values = [ParquetValue](repeating: .null, count: columns.count)
        for i in 0..<min(columns.count, row.values.count) {
            values[i] = row.values[i].coerced(to: columns[i].type) ?? .null
        }
        return values
    }

    private func encodeText(_ rows: [LakeRow], schema: LakeSchema) {
        switch format {
        case .csv:
            let count = frozen!.count
            var fields = [String](repeating: "", count: count)
            for row in rows {
                for i in 0..<count { fields[i] = row[i].textForm }
                CSVEncoder.writeRecord(fields, into: &text)
            }
        case .jsonl:
            for row in rows { JSONLinesEncoder.writeRow(row, schema: schema, into: &text) }
        case .parquet:
            preconditionFailure("Parquet rows are not text")
        }
    }

    private func flushText() throws {
        guard text.readableBytes > 0 else { return }
        try write(text)
        text.clear()
    }

    /// Writes the remaining rows and closes the file; returns its size.
    func finish(schema: LakeSchema) throws -> Int {
        try writeChunk(schema: schema)
        try flushText()
        if format == .parquet {
            if parquet == nil { try startParquet(schema: schema) }
            try parquet!.close()
        }
        try handle?.synchronize()
        try handle?.close()
        handle = nil
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        return (attributes[.size] as? Int) ?? 0
    }

    static let temporaryPrefix = "tributary-lake-"

    /// Removes temporary files that processes no longer running left in `directory` (an
    /// export killed with SIGKILL cannot remove its own). Names carry the writer's PID.
    static func removeStaleTemporaryFiles(in directory: String) {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return }
        for name in names where name.hasPrefix(temporaryPrefix) && name.hasSuffix(".tmp") {
            guard let pid = Int32(name.dropFirst(temporaryPrefix.count).prefix { $0 != "-" }), pid != getpid() else { continue }
            if kill(pid, 0) != 0 && errno == ESRCH {
                try? FileManager.default.removeItem(atPath: directory + "/" + name)
            }
        }
    }

    /// Removes the temporary file.
    func discard() {
        try? handle?.close()
        handle = nil
        try? FileManager.default.removeItem(atPath: path)
    }

    private func write(_ buffer: ByteBuffer) throws {
        guard let handle else { throw LakeError(.io, "write to a finished file") }
        try buffer.withUnsafeReadableBytes { try handle.write(contentsOf: Data($0)) }
    }

    private func startParquet(schema: LakeSchema) throws {
        let columns = schema.columns
        frozen = columns
        var options = parquetOptions
        options.rowGroupBytes = rowGroupBytes
        parquet = try ParquetWriter(schema: ParquetSchema(columns: columns), options: options) { [unowned self] in
            try self.write($0)
        }
    }

    private func writeChunk(schema: LakeSchema) throws {
        guard !pending.isEmpty else { return }
        defer {
            pending = []
            pendingBytes = 0
        }
        switch format {
        case .parquet:
            if parquet == nil { try startParquet(schema: schema) }
            for row in pending { try parquet!.append(Self.parquetValues(row, frozen!)) }
        case .csv:
            if frozen == nil {
                frozen = schema.columns
                CSVEncoder.writeRecord(schema.columns.map(\.name), into: &text)
            }
            encodeText(pending, schema: schema)
            try flushText()
        case .jsonl:
            encodeText(pending, schema: schema)
            try flushText()
        }
    }
}

/// RFC 4180 CSV: CRLF line ends; a field is quoted when it holds a comma, quote, CR or
/// LF or starts or ends with a space, and quotes inside are doubled. An empty field is
/// a null.
enum CSVEncoder {
    static func writeRecord(_ fields: [String], into out: inout ByteBuffer) {
        for (i, field) in fields.enumerated() {
            if i > 0 { out.writeInteger(UInt8(ascii: ",")) }
            writeField(field, into: &out)
        }
        out.writeInteger(UInt8(ascii: "\r"))
        out.writeInteger(UInt8(ascii: "\n"))
    }

    static func writeField(_ field: String, into out: inout ByteBuffer) {
        let utf8 = field.utf8
        var needsQuotes = utf8.first == UInt8(ascii: " ") || utf8.last == UInt8(ascii: " ")
        if !needsQuotes {
            for c in utf8 where c == UInt8(ascii: ",") || c == UInt8(ascii: "\"") || c == 0x0A || c == 0x0D {
                needsQuotes = true
                break
            }
        }
        guard needsQuotes else {
            out.writeString(field)
            return
        }
        out.writeInteger(UInt8(ascii: "\""))
        for c in utf8 {
            if c == UInt8(ascii: "\"") { out.writeInteger(c) }
            out.writeInteger(c)
        }
        out.writeInteger(UInt8(ascii: "\""))
    }
}

/// One JSON object per line: Kafka columns and the record's fields, nested values as
/// they were, timestamps as ISO-8601 text, bytes as base64.
enum JSONLinesEncoder {
    static func writeRow(_ row: LakeRow, schema: LakeSchema, into out: inout ByteBuffer) {
        out.writeInteger(UInt8(ascii: "{"))
        var first = true
        for (i, value) in row.values.enumerated() where value != .null && i < schema.columns.count {
            if !first { out.writeInteger(UInt8(ascii: ",")) }
            first = false
            writeString(schema.columns[i].name, into: &out)
            out.writeInteger(UInt8(ascii: ":"))
            switch value {
            case .null: out.writeString("null")
            case .int64(let v): out.writeString(String(v))
            case .double(let v): out.writeString(v.isFinite ? LakeValue.format(v) : "null")
            case .boolean(let v): out.writeString(v ? "true" : "false")
            case .string(let s): writeString(s, into: &out)
            case .json(let s): out.writeString(s)
            case .bytes(let b): writeString(Data(b).base64EncodedString(), into: &out)
            case .timestampMillis(let t): writeString(LakeValue.iso8601(t), into: &out)
            }
        }
        out.writeString("}\n")
    }

    static func writeString(_ s: String, into out: inout ByteBuffer) {
        out.writeInteger(UInt8(ascii: "\""))
        if !s.utf8.contains(where: { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) {
            out.writeString(s)
            out.writeInteger(UInt8(ascii: "\""))
            return
        }
        for c in s.utf8 {
            switch c {
            case UInt8(ascii: "\""): out.writeString("\\\"")
            case UInt8(ascii: "\\"): out.writeString("\\\\")
            case 0x0A: out.writeString("\\n")
            case 0x0D: out.writeString("\\r")
            case 0x09: out.writeString("\\t")
            case 0..<0x20: out.writeString(String(format: "\\u%04x", c))
            default: out.writeInteger(c)
            }
        }
        out.writeInteger(UInt8(ascii: "\""))
    }
}
