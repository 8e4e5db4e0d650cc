import NIOCore

// The parts of parquet.thrift (apache/parquet-format) this writer emits, with their
// field ids. Values are plain structs; `encode` writes them in Thrift's compact protocol.

enum ParquetPhysicalType: Int32 {
    case boolean = 0, int32 = 1, int64 = 2, int96 = 3, float = 4, double = 5, byteArray = 6, fixedLenByteArray = 7
}

enum ParquetEncoding: Int32 {
    case plain = 0, plainDictionary = 2, rle = 3, bitPacked = 4, rleDictionary = 8
}

enum ParquetPageType: Int32 {
    case dataPage = 0, indexPage = 1, dictionaryPage = 2, dataPageV2 = 3
}

/// Statistics in the current (`min_value`/`max_value`) fields; the deprecated
/// `min`/`max` fields are left out because old readers compare them as signed bytes.
struct ParquetStatistics {
    var nullCount: Int64
    var minValue: [UInt8]?
    var maxValue: [UInt8]?
    var distinctCount: Int64?

    func encode(into w: inout ThriftCompactWriter) {
        w.field(3, i64: nullCount)
        if let distinctCount { w.field(4, i64: distinctCount) }
        if let maxValue { w.field(5, binary: maxValue) }
        if let minValue { w.field(6, binary: minValue) }
        if maxValue != nil { w.field(7, bool: true) }
        if minValue != nil { w.field(8, bool: true) }
    }
}

struct ParquetPageHeader {
    var type: ParquetPageType
    var uncompressedSize: Int32
    var compressedSize: Int32
    /// Data pages (v1): value count including nulls and the values' encoding.
    var dataPage: (numValues: Int32, encoding: ParquetEncoding)?
    /// Dictionary pages: entry count.
    var dictionaryEntries: Int32?

    func encode(into w: inout ThriftCompactWriter) {
        w.beginStruct()
        w.field(1, i32: type.rawValue)
        w.field(2, i32: uncompressedSize)
        w.field(3, i32: compressedSize)
        if let dataPage {
            w.field(5) { w in
                w.field(1, i32: dataPage.numValues)
                w.field(2, i32: dataPage.encoding.rawValue)
                w.field(3, i32: ParquetEncoding.rle.rawValue)  // definition levels
                w.field(4, i32: ParquetEncoding.rle.rawValue)  // repetition levels (none written)
            }
        }
        if let dictionaryEntries {
            w.field(7) { w in
                w.field(1, i32: dictionaryEntries)
                w.field(2, i32: ParquetEncoding.plain.rawValue)
            }
        }
        w.endStruct()
    }
}

struct ParquetColumnChunkMetadata {
    var type: ParquetPhysicalType
    var encodings: [ParquetEncoding]
    var path: [String]
    var codec: ParquetCompression
    var numValues: Int64
    var totalUncompressedSize: Int64
    var totalCompressedSize: Int64
    var dataPageOffset: Int64
    var dictionaryPageOffset: Int64?
    var statistics: ParquetStatistics

    /// The chunk's first byte: its dictionary page when it has one.
    var startOffset: Int64 { dictionaryPageOffset ?? dataPageOffset }

    func encode(into w: inout ThriftCompactWriter) {
        // ColumnChunk
        w.field(2, i64: startOffset)
        w.field(3) { w in
            // ColumnMetaData
            w.field(1, i32: type.rawValue)
            w.field(2, i32List: encodings.map(\.rawValue))
            w.field(3, stringList: path)
            w.field(4, i32: codec.thriftValue)
            w.field(5, i64: numValues)
            w.field(6, i64: totalUncompressedSize)
            w.field(7, i64: totalCompressedSize)
            w.field(9, i64: dataPageOffset)
            if let dictionaryPageOffset { w.field(11, i64: dictionaryPageOffset) }
            w.field(12) { w in statistics.encode(into: &w) }
        }
    }
}

struct ParquetRowGroupMetadata {
    var columns: [ParquetColumnChunkMetadata]
    var numRows: Int64
    var ordinal: Int16

    func encode(into w: inout ThriftCompactWriter) {
        w.field(1, structs: columns) { w, c in c.encode(into: &w) }
        w.field(2, i64: columns.reduce(0) { $0 + $1.totalUncompressedSize })
        w.field(3, i64: numRows)
        if let first = columns.first { w.field(5, i64: first.startOffset) }
        w.field(6, i64: columns.reduce(0) { $0 + $1.totalCompressedSize })
        w.field(7, i16: ordinal)
    }
}

struct ParquetFileMetadata {
    var schema: ParquetSchema
    var numRows: Int64
    var rowGroups: [ParquetRowGroupMetadata]
    var keyValues: [(String, String)]
    var createdBy: String

    func encode() -> ByteBuffer {
        var w = ThriftCompactWriter()
        w.beginStruct()
        w.field(1, i32: 1)
        let columns = schema.columns
        w.field(2, structs: [nil] + columns.map { Optional($0) }) { w, column in
            guard let column else {
                w.field(4, string: "schema")
                w.field(5, i32: Int32(columns.count))
                return
            }
            column.type.encodeSchemaElement(name: column.name, into: &w)
        }
        w.field(3, i64: numRows)
        w.field(4, structs: rowGroups) { w, g in g.encode(into: &w) }
        if !keyValues.isEmpty {
            w.field(5, structs: keyValues) { w, kv in
                w.field(1, string: kv.0)
                w.field(2, string: kv.1)
            }
        }
        w.field(6, string: createdBy)
        // TYPE_ORDER for every leaf: min_value/max_value follow each type's own order.
        w.field(7, structs: columns) { w, _ in w.field(1) { _ in } }
        w.endStruct()
        return w.buffer
    }
}

extension ParquetColumnType {
    var physicalType: ParquetPhysicalType {
        switch self {
        case .int64, .timestampMillis: return .int64
        case .double: return .double
        case .boolean: return .boolean
        case .string, .bytes: return .byteArray
        }
    }

    func encodeSchemaElement(name: String, into w: inout ThriftCompactWriter) {
        w.field(1, i32: physicalType.rawValue)
        w.field(3, i32: 1)  // OPTIONAL
        w.field(4, string: name)
        switch self {
        case .string:
            w.field(6, i32: 0)  // ConvertedType UTF8
            w.field(10) { w in w.field(1) { _ in } }  // LogicalType STRING
        case .timestampMillis:
            w.field(6, i32: 9)  // ConvertedType TIMESTAMP_MILLIS
            w.field(10) { w in
                w.field(8) { w in  // TIMESTAMP
                    w.field(1, bool: true)  // isAdjustedToUTC
                    w.field(2) { w in w.field(1) { _ in } }  // unit MILLIS
                }
            }
        case .int64, .double, .boolean, .bytes:
            break
        }
    }
}
