import Foundation
import NIOCore

/// One cell of an exported row, before it is coerced to its column's type.
///
/// `json` is a nested object or array kept as JSON text: a string column in Parquet and
/// CSV, the nested value itself in JSON lines.
public enum LakeValue: Sendable, Hashable {
    case null
    case int64(Int64)
    case double(Double)
    case boolean(Bool)
    case string(String)
    case json(String)
    case bytes([UInt8])
    case timestampMillis(Int64)

    /// The column type this value alone would give its column.
    var naturalType: ParquetColumnType? {
        switch self {
        case .null: return nil
        case .int64: return .int64
        case .double: return .double
        case .boolean: return .boolean
        case .string, .json: return .string
        case .bytes: return .bytes
        case .timestampMillis: return .timestampMillis
        }
    }

    /// Rough plain-encoded size, for rolling by bytes and bounding buffers.
    var estimatedBytes: Int {
        switch self {
        case .null: return 1
        case .int64, .double, .timestampMillis: return 8
        case .boolean: return 1
        case .string(let s), .json(let s): return 4 + s.utf8.count
        case .bytes(let b): return 4 + b.count
        }
    }

    /// The value in a column of `type`, widened as the schema was (int64 to double,
    /// anything to string); nil when it does not fit (a narrower column).
    func coerced(to type: ParquetColumnType) -> ParquetValue? {
        switch (self, type) {
        case (.null, _): return .null
        case (.int64(let v), .int64): return .int64(v)
        case (.int64(let v), .double): return .double(Double(v))
        case (.double(let v), .double): return .double(v)
        case (.boolean(let v), .boolean): return .boolean(v)
        case (.string(let s), .string), (.json(let s), .string): return .string(s)
        case (.bytes(let b), .bytes): return .bytes(b)
        case (.string(let s), .bytes): return .bytes(Array(s.utf8))
        case (.timestampMillis(let t), .timestampMillis): return .timestampMillis(t)
        case (_, .string): return .string(textForm)
        default: return nil
        }
    }

    /// The value as text in a string column or a CSV field.
    var textForm: String {
        switch self {
        case .null: return ""
        case .int64(let v): return String(v)
        case .double(let v): return LakeValue.format(v)
        case .boolean(let v): return v ? "true" : "false"
        case .string(let s), .json(let s): return s
        case .bytes(let b):
            // Text when it is UTF-8; otherwise hex, as PostgreSQL's bytea output.
            if let s = String(validating: b, as: UTF8.self) { return s }
            return "\\x" + b.map { String(format: "%02x", $0) }.joined()
        case .timestampMillis(let t): return LakeValue.iso8601(t)
        }
    }

    /// Shortest text that reads back as the same double; integral values keep a ".0"
    /// so a reader does not take the column for integers.
    static func format(_ v: Double) -> String {
        guard v.isFinite else { return v.isNaN ? "NaN" : (v > 0 ? "Infinity" : "-Infinity") }
        return "\(v)"
    }

    /// `2024-05-01T12:00:00.000Z`.
    static func iso8601(_ millis: Int64) -> String {
        let seconds = floorDiv(millis, 1000)
        let ms = millis - seconds * 1000
        let (y, mo, d, h, mi, s) = civil(seconds)
        // By hand: String(format:) costs more than the rest of a CSV row.
        var out = [UInt8]()
        out.reserveCapacity(24)
        func digits(_ v: Int, _ n: Int) {
            var v = v
            var buf = [UInt8](repeating: 0x30, count: n)
            for k in stride(from: n - 1, through: 0, by: -1) {
                buf[k] = 0x30 + UInt8(v % 10)
                v /= 10
            }
            out.append(contentsOf: buf)
        }
        if y < 0 || y > 9999 { return String(format: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", y, mo, d, h, mi, s, Int(ms)) }
        digits(y, 4); out.append(0x2D); digits(mo, 2); out.append(0x2D); digits(d, 2); out.append(0x54)
        digits(h, 2); out.append(0x3A); digits(mi, 2); out.append(0x3A); digits(s, 2); out.append(0x2E)
        digits(Int(ms), 3); out.append(0x5A)
        return String(decoding: out, as: UTF8.self)
    }

    static func floorDiv(_ a: Int64, _ b: Int64) -> Int64 {
        let q = a / b
        return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q
    }

    /// UTC calendar fields of a Unix time (Howard Hinnant's days-from-civil inverse).
    static func civil(_ unixSeconds: Int64) -> (Int, Int, Int, Int, Int, Int) {
        let days = floorDiv(unixSeconds, 86_400)
        let secs = Int(unixSeconds - days * 86_400)
        let z = days + 719_468
        let era = floorDiv(z, 146_097)
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = Int(doy - (153 * mp + 2) / 5 + 1)
        let m = Int(mp < 10 ? mp + 3 : mp - 9)
        let y = Int(yoe + era * 400) + (m <= 2 ? 1 : 0)
        return (y, m, d, secs / 3600, secs % 3600 / 60, secs % 60)
    }
}

/// The schema of an export: Kafka's columns, then every JSON field seen so far in order
/// of first appearance, each with the narrowest type all its values fit.
///
/// Widening: int64 and double give double; bytes and string give bytes; any other
/// conflict gives string. A field that has only been null has no column yet.
public struct LakeSchema: Sendable, Hashable, Codable {
    /// Kafka columns first, then fields in order of first appearance.
    public private(set) var columns: [ParquetColumn]
    private var index: [String: Int]

    /// The Kafka columns every row has, in this order.
    public static let kafkaColumns: [ParquetColumn] = [
        .init(name: "_topic", type: .string),
        .init(name: "_partition", type: .int64),
        .init(name: "_offset", type: .int64),
        .init(name: "_timestamp", type: .timestampMillis),
        .init(name: "_key", type: .string),
    ]
    static let valueColumn = "_value"

    public init() {
        self.init(columns: Self.kafkaColumns)
    }

    /// A schema with these columns (a manifest's), which must start with the Kafka columns.
    public init(columns: [ParquetColumn]) {
        self.columns = columns
        self.index = Dictionary(columns.enumerated().map { ($1.name, $0) }, uniquingKeysWith: { a, _ in a })
    }

    /// The index of column `name` in `columns` and in rows.
    public func position(of name: String) -> Int? { index[name] }

    /// The widest of two types, by the rules above.
    static func widen(_ a: ParquetColumnType, _ b: ParquetColumnType) -> ParquetColumnType {
        if a == b { return a }
        switch (a, b) {
        case (.int64, .double), (.double, .int64): return .double
        case (.string, .bytes), (.bytes, .string): return .bytes
        default: return .string
        }
    }

    /// Makes room for `value` in column `name`: adds the column or widens its type.
    /// Returns the column's position.
    mutating func observe(_ name: String, _ value: LakeValue) -> Int? {
        guard let type = value.naturalType else { return index[name] }
        if let i = index[name] {
            let widened = Self.widen(columns[i].type, type)
            if widened != columns[i].type { columns[i].type = widened }
            return i
        }
        columns.append(ParquetColumn(name: name, type: type))
        index[name] = columns.count - 1
        return columns.count - 1
    }

    private enum CodingKeys: String, CodingKey { case columns }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(columns: try c.decode([ParquetColumn].self, forKey: .columns))
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(columns, forKey: .columns)
    }
}

/// A row: values by schema position (shorter than the schema means trailing nulls).
public struct LakeRow: Sendable, Hashable {
    /// Indexed like the schema's columns.
    public var values: [LakeValue]
    /// The time partitioning and record-time rolling use, in ms since the epoch.
    public var time: Int64
    /// Plain-encoded size, for rolling by bytes.
    public var estimatedBytes: Int

    subscript(i: Int) -> LakeValue { i < values.count ? values[i] : .null }
}

/// Turns Kafka records into rows, growing the schema as it goes.
public struct LakeRowBuilder: Sendable {
    /// Grows as records bring new fields or wider types.
    public var schema: LakeSchema
    /// A JSON field holding each record's time (epoch ms number or ISO-8601 string);
    /// nil uses the record timestamp.
    public var timeField: String?

    public init(schema: LakeSchema = LakeSchema(), timeField: String? = nil) {
        self.schema = schema
        self.timeField = timeField
    }

    /// What became of a record.
    public enum Outcome: Sendable {
        case row(LakeRow)
        /// The value is not a JSON object; `reason` says why. The row, if one was made,
        /// holds it in `_value`.
        case notJSON(reason: String, row: LakeRow?)
    }

    /// Builds the row of one record. With `keepNonJSON`, a value that is not a JSON
    /// object becomes a row with a `_value` bytes column; otherwise there is no row.
    public mutating func build(topic: String, partition: Int32, offset: Int64, timestamp: Int64,
                               key: ByteBuffer?, value: ByteBuffer?, keepNonJSON: Bool) -> Outcome {
        var values: [LakeValue] = [.string(topic), .int64(Int64(partition)), .int64(offset), .timestampMillis(timestamp), .null]
        var bytes = 8 + topic.utf8.count + 8 + 8 + 8
        if let key {
            let k = key.readableBytesView
            let v: LakeValue = String(validating: k, as: UTF8.self).map { .string($0) } ?? .bytes(Array(k))
            _ = schema.observe("_key", v)
            values[4] = v
            bytes += v.estimatedBytes
        }
        var time = timestamp
        guard let value else {
            return .row(LakeRow(values: values, time: time, estimatedBytes: bytes))
        }
        let parsed: Result<[(String, JSONObjectScanner.Value)], JSONObjectScanner.ParseError> = value.withUnsafeReadableBytes { raw in
            Result { try JSONObjectScanner.parseObject(raw) }.mapError { $0 as! JSONObjectScanner.ParseError }
        }
        switch parsed {
        case .failure(let error):
            let reason = "value is not a JSON object: \(error)"
            guard keepNonJSON else { return .notJSON(reason: reason, row: nil) }
            let v = LakeValue.bytes(Array(value.readableBytesView))
            if let i = schema.observe(Self.valueColumnName, v) { set(&values, i, v) }
            return .notJSON(reason: reason, row: LakeRow(values: values, time: time, estimatedBytes: bytes + v.estimatedBytes))
        case .success(let fields):
            for (rawName, field) in fields {
                let v: LakeValue
                switch field {
                case .null: v = .null
                case .bool(let b): v = .boolean(b)
                case .int(let n): v = .int64(n)
                case .double(let d): v = .double(d)
                case .string(let s): v = .string(s)
                case .json(let s): v = .json(s)
                }
                if let timeField, rawName == timeField, let t = Self.time(of: v) { time = t }
                // A JSON field named like a Kafka column gets a suffix rather than clobbering it.
                let name = rawName.hasPrefix("_") && LakeSchema.kafkaColumns.contains(where: { $0.name == rawName })
                    || rawName == Self.valueColumnName ? rawName + "_field" : rawName
                guard let i = schema.observe(name, v) else { continue }
                set(&values, i, v)
                bytes += v.estimatedBytes
            }
            return .row(LakeRow(values: values, time: time, estimatedBytes: bytes))
        }
    }

    static let valueColumnName = LakeSchema.valueColumn

    private func set(_ values: inout [LakeValue], _ i: Int, _ v: LakeValue) {
        while values.count <= i { values.append(.null) }
        values[i] = v
    }

    /// A record time from a field: epoch milliseconds (numbers) or ISO-8601 text.
    static func time(of value: LakeValue) -> Int64? {
        switch value {
        case .int64(let v): return v
        case .double(let v) where v.isFinite && abs(v) < 1e17: return Int64(v)
        case .string(let s):
            let f = ISO8601DateFormatter()
            f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
            if let d = f.date(from: s) { return Int64((d.timeIntervalSince1970 * 1000).rounded()) }
            f.formatOptions = [.withInternetDateTime]
            if let d = f.date(from: s) { return Int64((d.timeIntervalSince1970 * 1000).rounded()) }
            return nil
        default: return nil
        }
    }
}
