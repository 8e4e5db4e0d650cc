import KafkaCompression
import KafkaProtocol
import NIOCore

/// Writes a Parquet file, row by row, to an output function, holding at most one row
/// group in memory.
///
/// Rows are buffered column by column until `Options.rowGroupBytes` is reached (or
/// `flushRowGroup()` is called); then each column becomes a column chunk: a dictionary
/// page and RLE_DICTIONARY data pages when the dictionary is small and pays off, PLAIN
/// data pages otherwise; definition levels in the RLE/bit-packed hybrid; min/max/null
/// count statistics in the column metadata for predicate pushdown. `close()` writes the
/// Thrift compact-protocol footer.
///
/// ```swift
/// var file = ByteBuffer()
/// let writer = try ParquetWriter(schema: ParquetSchema(columns: [.init(name: "t", type: .double)])) { file.writeImmutableBuffer($0) }
/// try writer.append([.double(21.5)])
/// try writer.close()
/// ```
///
/// Not thread-safe: use one writer from one task.
public final class ParquetWriter {
    /// How files are laid out; the defaults suit most readers.
    public struct Options: Sendable {
        /// Page compression. Default snappy, as pyarrow and Spark write.
        public var compression: ParquetCompression = .snappy
        /// zstd level; nil for zstd's default of 3.
        public var zstdLevel: Int?
        /// A row group is written once the buffered values reach about this many bytes
        /// (plain-encoded size). Bounds the writer's memory. Default 32 MiB.
        public var rowGroupBytes = 32 << 20
        /// Target size of a data page before compression. Default 1 MiB.
        public var pageBytes = 1 << 20
        /// A column chunk whose dictionary would exceed this falls back to PLAIN. Default 1 MiB.
        public var dictionaryPageBytes = 1 << 20
        /// Whether dictionary encoding is tried at all. Default true.
        public var useDictionary = true
        /// Stored in the footer's key-value metadata.
        public var keyValueMetadata: [String: String] = [:]
        /// The footer's `created_by`.
        public var createdBy = "tributary lake version 0.1.0"

        public init() {}
    }

    /// The file's columns, as given to `init`.
    public let schema: ParquetSchema
    public let options: Options
    private let output: (ByteBuffer) throws -> Void
    private var columns: [ColumnBuffer]
    private var rowGroups: [ParquetRowGroupMetadata] = []
    private var bufferedRows = 0
    private var position: Int64 = 0
    private var closed = false
    private var totalRows: Int64 = 0

    /// Writes the leading magic at once; throws when the schema is empty or has
    /// duplicate names, or when zstd is asked for and libzstd cannot be loaded.
    public init(schema: ParquetSchema, options: Options = Options(), output: @escaping (ByteBuffer) throws -> Void) throws {
        guard !schema.columns.isEmpty else { throw LakeError(.invalidArgument, "a Parquet schema needs at least one column") }
        var seen = Set<String>()
        for c in schema.columns where !seen.insert(c.name).inserted {
            throw LakeError(.invalidArgument, "duplicate column name '\(c.name)'")
        }
        if options.compression == .zstd, let error = CompressionCodecs.availabilityError(.zstd) {
            throw LakeError(.invalidArgument, "zstd compression unavailable: \(error)")
        }
        self.schema = schema
        self.options = options
        self.output = output
        self.columns = schema.columns.map { ColumnBuffer(type: $0.type) }
        try emit(ByteBuffer(bytes: Self.magic))
    }

    static let magic: [UInt8] = Array("PAR1".utf8)

    /// Rows appended and not yet written as a row group.
    public var pendingRows: Int { bufferedRows }

    /// The plain-encoded size of the buffered rows: what the next row group holds.
    public var pendingBytes: Int { bufferedBytes }
    private var bufferedBytes = 0

    /// Bytes handed to the output so far.
    public var bytesWritten: Int64 { position }

    /// Appends one row: one value per column in schema order; a shorter row leaves the
    /// remaining columns null. Throws `.schemaMismatch` (appending nothing) when a value's
    /// case does not fit its column.
    public func append(_ row: [ParquetValue]) throws {
        guard !closed else { throw LakeError(.invalidArgument, "append after close") }
        guard row.count <= columns.count else {
            throw LakeError(.schemaMismatch, "row has \(row.count) values for \(columns.count) columns")
        }
        for (i, value) in row.enumerated() where !columns[i].accepts(value) {
            throw LakeError(.schemaMismatch, "column '\(schema.columns[i].name)' of type \(schema.columns[i].type.rawValue) cannot hold \(value)")
        }
        for i in 0..<columns.count {
            bufferedBytes += columns[i].append(i < row.count ? row[i] : .null)
        }
        bufferedRows += 1
        if bufferedBytes >= options.rowGroupBytes { try flushRowGroup() }
    }

    /// Writes the buffered rows as a row group now (nothing when there are none).
    public func flushRowGroup() throws {
        guard bufferedRows > 0 else { return }
        var chunks: [ParquetColumnChunkMetadata] = []
        for i in columns.indices {
            var out = ByteBufferAllocator().buffer(capacity: columns[i].plainBytes / 2 + 1024)
            let meta = try columns[i].writeChunk(name: schema.columns[i].name, startingAt: position, options: options, into: &out)
            try emit(out)
            chunks.append(meta)
            columns[i] = ColumnBuffer(type: schema.columns[i].type)
        }
        rowGroups.append(ParquetRowGroupMetadata(columns: chunks, numRows: Int64(bufferedRows), ordinal: Int16(truncatingIfNeeded: rowGroups.count)))
        totalRows += Int64(bufferedRows)
        bufferedRows = 0
        bufferedBytes = 0
    }

    /// Writes the last row group and the footer. Returns the file's size.
    @discardableResult
    public func close() throws -> Int64 {
        guard !closed else { return position }
        try flushRowGroup()
        closed = true
        let metadata = ParquetFileMetadata(schema: schema, numRows: totalRows, rowGroups: rowGroups,
                                           keyValues: options.keyValueMetadata.sorted { $0.key < $1.key },
                                           createdBy: options.createdBy)
        var footer = metadata.encode()
        let length = footer.readableBytes
        footer.writeInteger(UInt32(length), endianness: .little)
        footer.writeBytes(Self.magic)
        try emit(footer)
        return position
    }

    private func emit(_ bytes: ByteBuffer) throws {
        position += Int64(bytes.readableBytes)
        try output(bytes)
    }
}

// MARK: - one column's buffered values

/// The values of one column in the current row group, kept in their plain form.
struct ColumnBuffer {
    let type: ParquetColumnType
    var defined: [UInt8] = []
    var nullCount = 0
    var ints: [Int64] = []
    var doubles: [Double] = []
    var bools: [Bool] = []
    var bytes: [UInt8] = []
    var ends: [Int] = []
    var plainBytes = 0

    init(type: ParquetColumnType) {
        self.type = type
    }

    func accepts(_ value: ParquetValue) -> Bool {
        switch (value, type) {
        case (.null, _), (.int64, .int64), (.int64, .timestampMillis), (.timestampMillis, .timestampMillis),
             (.timestampMillis, .int64), (.double, .double), (.boolean, .boolean), (.string, .string), (.bytes, .bytes):
            return true
        default:
            return false
        }
    }

    /// Returns the plain-encoded bytes it added.
    @discardableResult
    mutating func append(_ value: ParquetValue) -> Int {
        let before = plainBytes
        switch value {
        case .null:
            defined.append(0)
            nullCount += 1
            return 0
        case .int64(let v), .timestampMillis(let v):
            ints.append(v)
            plainBytes += 8
        case .double(let v):
            doubles.append(v)
            plainBytes += 8
        case .boolean(let v):
            bools.append(v)
            plainBytes += 1
        case .string(let s):
            bytes.append(contentsOf: s.utf8)
            ends.append(bytes.count)
            plainBytes += 4 + s.utf8.count
        case .bytes(let b):
            bytes.append(contentsOf: b)
            ends.append(bytes.count)
            plainBytes += 4 + b.count
        }
        defined.append(1)
        return plainBytes - before
    }

    var valueCount: Int { defined.count - nullCount }

    func byteValue(_ i: Int) -> ArraySlice<UInt8> {
        bytes[(i == 0 ? 0 : ends[i - 1])..<ends[i]]
    }

    // MARK: writing

    /// Encodes the column chunk into `out` (whose first byte will sit at file offset
    /// `start`) and returns its metadata.
    func writeChunk(name: String, startingAt start: Int64, options: ParquetWriter.Options,
                    into out: inout ByteBuffer) throws -> ParquetColumnChunkMetadata {
        let statistics = self.statistics()
        var uncompressedTotal: Int64 = 0
        var compressedTotal: Int64 = 0
        var dictionaryOffset: Int64?

        func writePage(_ header: ParquetPageHeader, body: ByteBuffer) {
            var w = ThriftCompactWriter()
            header.encode(into: &w)
            uncompressedTotal += Int64(w.buffer.readableBytes) + Int64(header.uncompressedSize)
            compressedTotal += Int64(w.buffer.readableBytes) + Int64(header.compressedSize)
            out.writeImmutableBuffer(w.buffer)
            out.writeImmutableBuffer(body)
        }

        func compress(_ body: ByteBuffer) throws -> ByteBuffer {
            switch options.compression {
            case .uncompressed: return body
            case .snappy: return CompressionCodecs.snappyRawBlock(body)
            case .zstd: return try CompressionCodecs.compress(body, codec: .zstd, level: options.zstdLevel)
            }
        }

        let dictionary = options.useDictionary ? buildDictionary(limit: options.dictionaryPageBytes) : nil
        var encodings: [ParquetEncoding] = [.plain, .rle]
        if let dictionary {
            encodings = [.plain, .rle, .rleDictionary]
            dictionaryOffset = start + Int64(out.readableBytes)
            var body = ByteBufferAllocator().buffer(capacity: dictionary.plainBytes)
            for i in dictionary.order { writePlain(i, into: &body) }
            let compressed = try compress(body)
            writePage(ParquetPageHeader(type: .dictionaryPage, uncompressedSize: Int32(body.readableBytes),
                                        compressedSize: Int32(compressed.readableBytes), dictionaryEntries: Int32(dictionary.order.count)),
                      body: compressed)
        }
        let dataOffset = start + Int64(out.readableBytes)

        // Rows per page from the average encoded size of a row.
        let rows = defined.count
        let bytesPerRow: Double
        if let dictionary {
            bytesPerRow = max(0.125, Double(dictionary.bitWidth) / 8)
        } else {
            bytesPerRow = max(0.125, Double(plainBytes) / Double(max(rows, 1)))
        }
        let rowsPerPage = max(1, min(rows, Int(Double(options.pageBytes) / bytesPerRow)))

        var row = 0
        var valueIndex = 0
        while row < rows {
            let end = min(rows, row + rowsPerPage)
            var body = ByteBufferAllocator().buffer(capacity: 64 + Int(Double(end - row) * bytesPerRow * 1.1))
            // Definition levels, prefixed with their length (data page v1).
            let lengthIndex = body.writerIndex
            body.writeInteger(0 as UInt32)
            let levels = defined[row..<end]
            var present = 0
            for d in levels { present &+= Int(d) }
            if present == levels.count {
                RLEHybrid.writeRepeated(1, count: levels.count, bitWidth: 1, into: &body)
            } else {
                RLEHybrid.encode(levels.map { UInt32($0) }, bitWidth: 1, into: &body)
            }
            body.setInteger(UInt32(body.writerIndex - lengthIndex - 4), at: lengthIndex, endianness: .little)
            let values = valueIndex..<(valueIndex + present)
            if let dictionary {
                body.writeInteger(UInt8(dictionary.bitWidth))
                RLEHybrid.encode(Array(dictionary.indices[values]), bitWidth: dictionary.bitWidth, into: &body)
            } else if type == .boolean {
                var packed: [UInt32] = []
                packed.reserveCapacity(values.count)
                for i in values { packed.append(bools[i] ? 1 : 0) }
                RLEHybrid.bitPack(packed[...], bitWidth: 1, into: &body)
            } else {
                for i in values { writePlain(i, into: &body) }
            }
            let compressed = try compress(body)
            writePage(ParquetPageHeader(type: .dataPage, uncompressedSize: Int32(body.readableBytes),
                                        compressedSize: Int32(compressed.readableBytes),
                                        dataPage: (Int32(end - row), dictionary == nil ? .plain : .rleDictionary)),
                      body: compressed)
            valueIndex += present
            row = end
        }
        if rows == 0 {
            // A chunk always has a data page, even an empty one.
            var body = ByteBufferAllocator().buffer(capacity: 8)
            body.writeInteger(0 as UInt32)
            writePage(ParquetPageHeader(type: .dataPage, uncompressedSize: 4, compressedSize: Int32((try compress(body)).readableBytes),
                                        dataPage: (0, .plain)), body: try compress(body))
        }

        return ParquetColumnChunkMetadata(
            type: type.physicalType, encodings: encodings, path: [name], codec: options.compression,
            numValues: Int64(rows), totalUncompressedSize: uncompressedTotal, totalCompressedSize: compressedTotal,
            dataPageOffset: dataOffset, dictionaryPageOffset: dictionaryOffset, statistics: statistics)
    }

    private func writePlain(_ i: Int, into out: inout ByteBuffer) {
        switch type {
        case .int64, .timestampMillis: out.writeInteger(ints[i], endianness: .little)
        case .double: out.writeInteger(doubles[i].bitPattern, endianness: .little)
        case .boolean: out.writeInteger(UInt8(bools[i] ? 1 : 0))
        case .string, .bytes:
            let v = byteValue(i)
            out.writeInteger(UInt32(v.count), endianness: .little)
            out.writeBytes(v)
        }
    }

    // MARK: dictionary

    struct Dictionary {
        /// Value index of each entry's first occurrence, in entry order.
        var order: [Int]
        /// Each value's entry.
        var indices: [UInt32]
        var plainBytes: Int
        var bitWidth: Int
    }

    /// The dictionary of the chunk's values, or nil when it would pass `limit` bytes or
    /// would not be smaller than plain encoding (booleans never use one).
    func buildDictionary(limit: Int) -> Dictionary? {
        let n = valueCount
        guard n > 0, type != .boolean else { return nil }
        var order: [Int] = []
        var indices: [UInt32] = []
        indices.reserveCapacity(n)
        var dictBytes = 0
        switch type {
        case .int64, .timestampMillis, .double:
            var map: [UInt64: UInt32] = [:]
            for i in 0..<n {
                let key = type == .double ? doubles[i].bitPattern : UInt64(bitPattern: ints[i])
                if let e = map[key] {
                    indices.append(e)
                } else {
                    let e = UInt32(order.count)
                    map[key] = e
                    order.append(i)
                    indices.append(e)
                    dictBytes += 8
                    if dictBytes > limit { return nil }
                }
            }
        case .string, .bytes:
            var map: [ArraySlice<UInt8>: UInt32] = [:]
            for i in 0..<n {
                let key = byteValue(i)
                if let e = map[key] {
                    indices.append(e)
                } else {
                    let e = UInt32(order.count)
                    map[key] = e
                    order.append(i)
                    indices.append(e)
                    dictBytes += 4 + key.count
                    if dictBytes > limit { return nil }
                }
            }
        case .boolean:
            return nil
        }
        let bitWidth = max(1, RLEHybrid.bitWidth(forMax: order.count - 1))
        // Plain is the better choice when the dictionary plus the indices are not smaller.
        let plainValueBytes = plainBytes
        guard dictBytes + (n * bitWidth + 7) / 8 < plainValueBytes else { return nil }
        return Dictionary(order: order, indices: indices, plainBytes: dictBytes, bitWidth: bitWidth)
    }

    // MARK: statistics

    /// Longer byte-array minima/maxima are left out rather than bloating the footer.
    static let maxStatisticsValueBytes = 4096

    func statistics() -> ParquetStatistics {
        var stats = ParquetStatistics(nullCount: Int64(nullCount))
        let n = valueCount
        guard n > 0 else { return stats }
        func le<T: FixedWidthInteger>(_ v: T) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }
        switch type {
        case .int64, .timestampMillis:
            var lo = ints[0], hi = ints[0]
            for v in ints { if v < lo { lo = v }; if v > hi { hi = v } }
            stats.minValue = le(lo)
            stats.maxValue = le(hi)
        case .double:
            var lo = Double.nan, hi = Double.nan
            for v in doubles where !v.isNaN {
                if lo.isNaN || v < lo { lo = v }
                if hi.isNaN || v > hi { hi = v }
            }
            if !lo.isNaN {
                // The spec: a zero minimum is written as -0.0, a zero maximum as +0.0.
                if lo == 0 { lo = -0.0 }
                if hi == 0 { hi = 0.0 }
                stats.minValue = le(lo.bitPattern)
                stats.maxValue = le(hi.bitPattern)
            }
        case .boolean:
            let anyTrue = bools.contains(true), anyFalse = bools.contains(false)
            stats.minValue = [anyFalse ? 0 : 1]
            stats.maxValue = [anyTrue ? 1 : 0]
        case .string, .bytes:
            // Unsigned byte order, which for UTF-8 is code point order.
            var lo = byteValue(0), hi = byteValue(0)
            for i in 1..<n {
                let v = byteValue(i)
                if v.lexicographicallyPrecedes(lo) { lo = v }
                if hi.lexicographicallyPrecedes(v) { hi = v }
            }
            if lo.count <= Self.maxStatisticsValueBytes && hi.count <= Self.maxStatisticsValueBytes {
                stats.minValue = Array(lo)
                stats.maxValue = Array(hi)
            }
        }
        return stats
    }
}
