import NIOCore

/// The compression codec named in a batch's attributes.
public enum CompressionCodec: Int16, Sendable, Hashable, CaseIterable {
    case none = 0
    case gzip = 1
    case snappy = 2
    case lz4 = 3
    case zstd = 4
}

/// A magic-2 record batch: a view over the batch's bytes, never a copy.
///
/// Layout (offsets from the batch start):
///
///     0  baseOffset int64          8  batchLength int32 (bytes after this field)
///     12 partitionLeaderEpoch int32 16 magic int8
///     17 crc uint32 (CRC32C of bytes 21..<end)
///     21 attributes int16          23 lastOffsetDelta int32
///     27 baseTimestamp int64       35 maxTimestamp int64
///     43 producerId int64          51 producerEpoch int16
///     53 baseSequence int32        57 recordCount int32
///     61 records
///
/// Base offset and leader epoch sit outside the CRC, so the broker assigns offsets by
/// rewriting them in place.
public struct RecordBatch: Sendable, Hashable {
    public static let headerSize = 61
    /// Bytes before `batchLength` counts: baseOffset and batchLength themselves.
    public static let logOverhead = 12
    static let magicOffset = 16
    static let crcOffset = 17
    static let attributesOffset = 21
    /// The smallest possible record: seven one-byte varints/fields.
    static let minimumRecordSize = 7

    /// Exactly the batch's bytes.
    public private(set) var buffer: ByteBuffer

    /// Reads the next batch from `buffer` and checks its framing, magic, CRC and counts.
    /// Returns nil when fewer bytes than one whole batch remain (a partial trailing batch
    /// is normal at the end of a fetch response), leaving the reader index unchanged.
    public static func read(from buffer: inout ByteBuffer, verifyCRC: Bool = true) throws -> RecordBatch? {
        guard buffer.readableBytes >= logOverhead + 5,
              let length = buffer.getInteger(at: buffer.readerIndex + 8, as: Int32.self),
              let magic = buffer.getInteger(at: buffer.readerIndex + magicOffset, as: Int8.self)
        else { return nil }
        if magic == 0 || magic == 1 {
            throw KafkaProtocolError(.legacyMessageFormat, "message format v\(magic) (magic \(magic)); only v2 record batches are supported")
        }
        guard magic == 2 else {
            throw KafkaProtocolError(.corruptRecordBatch, "unknown magic \(magic)")
        }
        guard Int(length) >= headerSize - logOverhead else {
            throw KafkaProtocolError(.corruptRecordBatch, "batch length \(length) is shorter than the batch header")
        }
        guard buffer.readableBytes >= logOverhead + Int(length) else { return nil }
        let slice = buffer.getSlice(at: buffer.readerIndex, length: logOverhead + Int(length))!
        let batch = try RecordBatch(validating: slice, verifyCRC: verifyCRC)
        buffer.moveReaderIndex(forwardBy: slice.readableBytes)
        return batch
    }

    /// Wraps `bytes` (exactly one batch) after validating it.
    public init(validating bytes: ByteBuffer, verifyCRC: Bool = true) throws {
        // Legacy messages sit at the same offset as the magic byte and are often shorter
        // than a v2 header, so the magic is judged first: "old format", not "too short".
        if let magic = bytes.getInteger(at: bytes.readerIndex + Self.magicOffset, as: Int8.self), magic == 0 || magic == 1 {
            throw KafkaProtocolError(.legacyMessageFormat, "message format v\(magic)")
        }
        guard bytes.readableBytes >= Self.headerSize else {
            throw KafkaProtocolError(.corruptRecordBatch, "\(bytes.readableBytes) bytes is shorter than a batch header")
        }
        self.buffer = bytes
        let magic = self.magic
        guard magic == 2 else { throw KafkaProtocolError(.corruptRecordBatch, "unknown magic \(magic)") }
        guard Int(batchLength) + Self.logOverhead == bytes.readableBytes else {
            throw KafkaProtocolError(.corruptRecordBatch, "batch length \(batchLength) does not match \(bytes.readableBytes - Self.logOverhead) bytes")
        }
        guard recordCount >= 0 else {
            throw KafkaProtocolError(.corruptRecordBatch, "negative record count \(recordCount)")
        }
        guard lastOffsetDelta >= 0 else {
            throw KafkaProtocolError(.corruptRecordBatch, "negative last offset delta \(lastOffsetDelta)")
        }
        // The CRC does not cover the base offset, so any value can arrive here; `nextOffset`
        // must be representable or reading it would trap.
        guard baseOffset < Int64.max - Int64(lastOffsetDelta) else {
            throw KafkaProtocolError(.corruptRecordBatch, "base offset \(baseOffset) + last offset delta \(lastOffsetDelta) overflows the next offset")
        }
        if compression == CompressionCodec.none {
            let body = bytes.readableBytes - Self.headerSize
            guard Int(recordCount) <= body / Self.minimumRecordSize else {
                throw KafkaProtocolError(.corruptRecordBatch, "record count \(recordCount) cannot fit in \(body) bytes")
            }
        }
        if verifyCRC {
            let computed = computeCRC()
            guard computed == crc else {
                throw KafkaProtocolError(.corruptRecordBatch, "CRC mismatch: stored \(crc), computed \(computed)")
            }
        }
    }

    private func field<T: FixedWidthInteger>(_ offset: Int, as: T.Type = T.self) -> T {
        buffer.getInteger(at: buffer.readerIndex + offset, as: T.self)!
    }

    public var baseOffset: Int64 { field(0) }
    public var batchLength: Int32 { field(8) }
    public var partitionLeaderEpoch: Int32 { field(12) }
    public var magic: Int8 { field(16) }
    public var crc: UInt32 { field(17) }
    public var attributes: Int16 { field(21) }
    public var lastOffsetDelta: Int32 { field(23) }
    public var baseTimestamp: Int64 { field(27) }
    public var maxTimestamp: Int64 { field(35) }
    public var producerId: Int64 { field(43) }
    public var producerEpoch: Int16 { field(51) }
    public var baseSequence: Int32 { field(53) }
    public var recordCount: Int32 { field(57) }

    public var lastOffset: Int64 { baseOffset + Int64(lastOffsetDelta) }
    public var nextOffset: Int64 { lastOffset + 1 }
    /// Size of the whole batch in bytes.
    public var sizeInBytes: Int { buffer.readableBytes }

    /// The codec, or nil for a codec id Kafka does not define.
    public var compression: CompressionCodec? { CompressionCodec(rawValue: attributes & 0x07) }
    /// True when the broker stamped the timestamps (LogAppendTime).
    public var isLogAppendTime: Bool { attributes & 0x08 != 0 }
    public var isTransactional: Bool { attributes & 0x10 != 0 }
    public var isControl: Bool { attributes & 0x20 != 0 }
    public var hasDeleteHorizon: Bool { attributes & 0x40 != 0 }
    /// Whether this batch came from an idempotent or transactional producer.
    public var hasProducerId: Bool { producerId >= 0 }
    /// The sequence of the last record, wrapping as Kafka does.
    public var lastSequence: Int32 {
        baseSequence < 0 ? -1 : Int32(truncatingIfNeeded: (Int64(baseSequence) + Int64(lastOffsetDelta)) % (Int64(Int32.max) + 1))
    }

    /// CRC32C over attributes..end, the bytes Kafka's checksum covers.
    public func computeCRC() -> UInt32 {
        buffer.withUnsafeReadableBytes { raw in
            CRC32C.checksum(UnsafeRawBufferPointer(rebasing: raw[Self.attributesOffset...]))
        }
    }

    /// Assigns the batch's offsets; the CRC does not cover this field, so it stays valid.
    public mutating func setBaseOffset(_ offset: Int64) {
        buffer.setInteger(offset, at: buffer.readerIndex)
    }

    public mutating func setPartitionLeaderEpoch(_ epoch: Int32) {
        buffer.setInteger(epoch, at: buffer.readerIndex + 12)
    }

    /// Stamps LogAppendTime: sets the attribute and max timestamp, then fixes the CRC.
    public mutating func setLogAppendTime(_ timestamp: Int64) {
        buffer.setInteger(attributes | 0x08, at: buffer.readerIndex + 21)
        buffer.setInteger(timestamp, at: buffer.readerIndex + 35)
        buffer.setInteger(computeCRC(), at: buffer.readerIndex + Self.crcOffset)
    }

    /// The compressed or plain bytes after the header.
    public var recordsPayload: ByteBuffer {
        buffer.getSlice(at: buffer.readerIndex + Self.headerSize, length: buffer.readableBytes - Self.headerSize)!
    }

    /// Iterates records of an uncompressed batch without copying keys, values or headers.
    /// For a compressed batch, decompress `recordsPayload` and use
    /// `RecordIterator(payload:count:)`.
    public func records() throws -> RecordIterator {
        guard compression == CompressionCodec.none else {
            throw KafkaProtocolError(.corruptRecordBatch, "batch is compressed (\(compression.map { "\($0)" } ?? "codec \(attributes & 7)"))")
        }
        return RecordIterator(payload: recordsPayload, count: Int(recordCount))
    }
}

/// One record, its key, value and header values sliced from the batch.
public struct Record: Sendable, Hashable {
    public struct Header: Sendable, Hashable {
        public var key: String
        public var value: ByteBuffer?
        public init(key: String, value: ByteBuffer?) {
            self.key = key
            self.value = value
        }
    }
    public var attributes: Int8
    public var timestampDelta: Int64
    public var offsetDelta: Int32
    public var key: ByteBuffer?
    public var value: ByteBuffer?
    public var headers: [Header]

    public init(attributes: Int8 = 0, timestampDelta: Int64 = 0, offsetDelta: Int32 = 0,
                key: ByteBuffer? = nil, value: ByteBuffer?, headers: [Header] = []) {
        self.attributes = attributes
        self.timestampDelta = timestampDelta
        self.offsetDelta = offsetDelta
        self.key = key
        self.value = value
        self.headers = headers
    }
}

/// Reads records one by one; throws on a malformed record instead of trapping.
public struct RecordIterator: Sendable {
    private var payload: ByteBuffer
    private var remaining: Int

    public init(payload: ByteBuffer, count: Int) {
        self.payload = payload
        self.remaining = count
    }

    public mutating func next() throws -> Record? {
        guard remaining > 0 else {
            // As Kafka does ("Incorrect declared batch size"): records beyond the declared
            // count mean the count or the payload is wrong, not that the rest can be ignored.
            guard payload.readableBytes == 0 else {
                throw Self.corrupt("\(payload.readableBytes) bytes after the last of the declared records")
            }
            return nil
        }
        remaining -= 1
        // The framing is decoded over the raw bytes in one pass (no per-byte bounds checks,
        // no intermediate slice); only key, value and header values become slices.
        let layout = try payload.withUnsafeReadableBytes { try Self.layout(of: $0) }
        let base = payload.readerIndex
        let key = layout.keyLength < 0 ? nil : payload.getSlice(at: base + layout.keyStart, length: layout.keyLength)
        let value = layout.valueLength < 0 ? nil : payload.getSlice(at: base + layout.valueStart, length: layout.valueLength)
        var headers: [Record.Header] = []
        if layout.headerCount > 0 {
            var body = payload.getSlice(at: base + layout.headersStart, length: layout.end - layout.headersStart)!
            headers.reserveCapacity(layout.headerCount)
            for _ in 0..<layout.headerCount {
                guard var keyBytes = try Self.readBytes(&body, "header key") else { throw Self.corrupt("null header key") }
                let headerKey = keyBytes.readString(length: keyBytes.readableBytes)!
                headers.append(.init(key: headerKey, value: try Self.readBytes(&body, "header value")))
            }
            guard body.readableBytes == 0 else { throw Self.corrupt("\(body.readableBytes) bytes left inside a record") }
        }
        payload.moveReaderIndex(forwardBy: layout.end)
        return Record(attributes: layout.attributes, timestampDelta: layout.timestampDelta, offsetDelta: layout.offsetDelta,
                      key: key, value: value, headers: headers)
    }

    /// Where a record's parts are, relative to its first byte (the length varint).
    struct Layout {
        var end = 0
        var attributes: Int8 = 0
        var timestampDelta: Int64 = 0
        var offsetDelta: Int32 = 0
        var keyStart = 0
        var keyLength = -1
        var valueStart = 0
        var valueLength = -1
        var headerCount = 0
        var headersStart = 0
    }

    /// Zigzag LEB128 at `i` of at most `maxBytes` bytes, not reading past `limit`.
    @inline(__always)
    private static func zigzag(_ raw: UnsafeRawBufferPointer, _ i: inout Int, limit: Int, maxBytes: Int) -> Int64? {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        var n = 0
        while n < maxBytes, i < limit {
            let byte = raw[i]
            i += 1
            n += 1
            result |= UInt64(byte & 0x7F) << shift
            if byte & 0x80 == 0 { return Int64(bitPattern: (result >> 1) ^ (0 &- (result & 1))) }
            shift += 7
        }
        return nil
    }

    private static func layout(of raw: UnsafeRawBufferPointer) throws -> Layout {
        var i = 0
        guard let length = zigzag(raw, &i, limit: raw.count, maxBytes: 5), length <= Int64(Int32.max) else {
            throw corrupt("record length")
        }
        guard length >= 0, Int(length) <= raw.count - i else {
            throw corrupt("record length \(length) with \(raw.count - i) bytes left")
        }
        var l = Layout()
        l.end = i + Int(length)
        let end = l.end
        guard i < end else { throw corrupt("record header") }
        l.attributes = Int8(bitPattern: raw[i])
        i += 1
        guard let timestampDelta = zigzag(raw, &i, limit: end, maxBytes: 10),
              let offsetDelta = zigzag(raw, &i, limit: end, maxBytes: 5), offsetDelta >= Int64(Int32.min), offsetDelta <= Int64(Int32.max)
        else { throw corrupt("record header") }
        l.timestampDelta = timestampDelta
        l.offsetDelta = Int32(offsetDelta)
        func bytes(_ what: String) throws -> (start: Int, length: Int) {
            guard let n = zigzag(raw, &i, limit: end, maxBytes: 5) else { throw corrupt("\(what) length") }
            if n < 0 {
                guard n == -1 else { throw corrupt("\(what) length \(n)") }
                return (i, -1)
            }
            guard n <= Int64(end - i) else { throw corrupt("\(what) length \(n) with \(end - i) bytes left") }
            defer { i += Int(n) }
            return (i, Int(n))
        }
        (l.keyStart, l.keyLength) = try bytes("key")
        (l.valueStart, l.valueLength) = try bytes("value")
        guard let headerCount = zigzag(raw, &i, limit: end, maxBytes: 5), headerCount >= 0, Int(headerCount) <= (end - i) / 2 else {
            throw corrupt("header count")
        }
        l.headerCount = Int(headerCount)
        l.headersStart = i
        if headerCount == 0, i != end { throw corrupt("\(end - i) bytes left inside a record") }
        return l
    }

    /// Reads every remaining record.
    public mutating func all() throws -> [Record] {
        var out: [Record] = []
        out.reserveCapacity(min(remaining, 1 << 16))
        while let r = try next() { out.append(r) }
        return out
    }

    private static func readBytes(_ body: inout ByteBuffer, _ what: String) throws -> ByteBuffer? {
        guard let length = body.readVarint() else { throw corrupt("\(what) length") }
        if length < 0 {
            guard length == -1 else { throw corrupt("\(what) length \(length)") }
            return nil
        }
        guard let slice = body.readSlice(length: Int(length)) else {
            throw corrupt("\(what) length \(length) with \(body.readableBytes) bytes left")
        }
        return slice
    }

    private static func corrupt(_ what: String) -> KafkaProtocolError {
        KafkaProtocolError(.corruptRecordBatch, "malformed record: \(what)")
    }
}

/// Walks the batches in a `records` field (a produce request's or a fetch response's).
public struct RecordBatchReader: Sendable {
    private var buffer: ByteBuffer
    private let verifyCRC: Bool

    public init(_ buffer: ByteBuffer, verifyCRC: Bool = true) {
        self.buffer = buffer
        self.verifyCRC = verifyCRC
    }

    /// The next whole batch, or nil when no whole batch remains.
    public mutating func next() throws -> RecordBatch? {
        try RecordBatch.read(from: &buffer, verifyCRC: verifyCRC)
    }

    /// Bytes left that do not form a whole batch.
    public var remainingBytes: Int { buffer.readableBytes }
}
