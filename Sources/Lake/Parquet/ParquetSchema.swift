/// A column's type in a Parquet file this module writes. Every column is OPTIONAL (nullable).
public enum ParquetColumnType: String, Sendable, Hashable, Codable, CaseIterable {
    /// INT64.
    case int64
    /// DOUBLE.
    case double
    /// BOOLEAN.
    case boolean
    /// BYTE_ARRAY annotated as STRING (converted type UTF8).
    case string
    /// BYTE_ARRAY without annotation: readers see binary.
    case bytes
    /// INT64 annotated as TIMESTAMP(MILLIS, adjusted to UTC).
    case timestampMillis = "timestamp"
}

/// One named, nullable column.
public struct ParquetColumn: Sendable, Hashable, Codable {
    /// The column name, unique in its schema.
    public var name: String
    public var type: ParquetColumnType

    public init(name: String, type: ParquetColumnType) {
        self.name = name
        self.type = type
    }
}

/// A flat schema: a list of top-level nullable columns.
public struct ParquetSchema: Sendable, Hashable, Codable {
    /// In file order.
    public var columns: [ParquetColumn]

    public init(columns: [ParquetColumn]) {
        self.columns = columns
    }
}

/// How pages are compressed.
public enum ParquetCompression: String, Sendable, Hashable, CaseIterable {
    case uncompressed, snappy, zstd

    var thriftValue: Int32 {
        switch self {
        case .uncompressed: return 0
        case .snappy: return 1
        case .zstd: return 6
        }
    }
}

/// One cell of a row given to `ParquetWriter.append(_:)`.
///
/// The case must match the column's type (`int64` also fills a timestamp column);
/// `null` fits every column.
public enum ParquetValue: Sendable, Hashable {
    case null
    case int64(Int64)
    case double(Double)
    case boolean(Bool)
    case string(String)
    case bytes([UInt8])
    /// Milliseconds since the Unix epoch, UTC.
    case timestampMillis(Int64)
}
