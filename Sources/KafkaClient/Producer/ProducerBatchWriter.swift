import KafkaCompression
import KafkaProtocol
import NIOCore

/// Encodes a producer batch (magic 2) record by record: the producer's hot path.
///
/// It writes what `RecordBatchBuilder` writes, byte for byte (a test checks), but it is
/// built for appending one record at a time under the producer's lock: each record's
/// leading fields (length, attributes, timestamp and offset deltas, key length) go out in
/// one write instead of a bounds- and uniqueness-checked write per varint byte, and the
/// 61-byte batch header is reserved up front, so an uncompressed batch is finished in
/// place without copying its records.
struct ProducerBatchWriter {
    /// The batch header placeholder followed by the encoded records.
    private(set) var buffer: ByteBuffer
    let baseTimestamp: Int64
    private(set) var maxTimestamp: Int64
    private(set) var count: Int32 = 0

    init(baseTimestamp: Int64, capacity: Int) {
        self.baseTimestamp = baseTimestamp
        self.maxTimestamp = baseTimestamp
        buffer = ByteBufferAllocator().buffer(capacity: RecordBatch.headerSize + capacity)
        buffer.writeRepeatingByte(0, count: RecordBatch.headerSize)
    }

    /// Bytes of the batch so far, uncompressed, header included.
    var size: Int { buffer.readableBytes }

    mutating func append(key: ByteBuffer?, value: ByteBuffer?, timestamp: Int64, headers: [KafkaHeader]) {
        let timestampDelta = timestamp - baseTimestamp
        if timestamp > maxTimestamp { maxTimestamp = timestamp }
        let offsetDelta = count
        count += 1
        let keyLength = key.map { Int32($0.readableBytes) } ?? -1
        let valueLength = value.map { Int32($0.readableBytes) } ?? -1
        var headersSize = Self.varintSize(Int32(headers.count))
        for h in headers {
            let k = h.key.utf8.count
            let v = h.value.map { Int32($0.readableBytes) } ?? -1
            headersSize += Self.varintSize(Int32(k)) + k + Self.varintSize(v) + Int(max(v, 0))
        }
        let bodySize = 1 + Self.varlongSize(timestampDelta) + Self.varintSize(offsetDelta)
            + Self.varintSize(keyLength) + Int(max(keyLength, 0))
            + Self.varintSize(valueLength) + Int(max(valueLength, 0)) + headersSize
        // length (5) + attributes (1) + timestamp delta (10) + offset delta (5) + key length (5)
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: 26) { out in
            var i = Self.putVarint(Int32(bodySize), out, 0)
            out[i] = 0
            i += 1
            i = Self.putVarlong(timestampDelta, out, i)
            i = Self.putVarint(offsetDelta, out, i)
            return Self.putVarint(keyLength, out, i)
        }
        if let key { buffer.writeImmutableBuffer(key) }
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: 5) { Self.putVarint(valueLength, $0, 0) }
        if let value { buffer.writeImmutableBuffer(value) }
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: 5) { Self.putVarint(Int32(headers.count), $0, 0) }
        for h in headers {
            buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: 5) { Self.putVarint(Int32(h.key.utf8.count), $0, 0) }
            buffer.writeString(h.key)
            let v = h.value.map { Int32($0.readableBytes) } ?? -1
            buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: 5) { Self.putVarint(v, $0, 0) }
            if let value = h.value { buffer.writeImmutableBuffer(value) }
        }
    }

    /// The finished batch. Uncompressed, it is this writer's buffer with the header
    /// filled in (moved out, not copied: the writer is empty afterwards); compressed, the
    /// records are compressed into a new buffer.
    mutating func build(producerId: Int64, producerEpoch: Int16, baseSequence: Int32,
                        compression: CompressionCodec, level: Int?) throws -> RecordBatch {
        var out = ByteBuffer()
        if compression == .none {
            swap(&out, &buffer)
        } else {
            let records = buffer.getSlice(at: buffer.readerIndex + RecordBatch.headerSize, length: buffer.readableBytes - RecordBatch.headerSize)!
            let compressed = try CompressionCodecs.compress(records, codec: compression, level: level)
            out = ByteBufferAllocator().buffer(capacity: RecordBatch.headerSize + compressed.readableBytes)
            out.writeRepeatingByte(0, count: RecordBatch.headerSize)
            out.writeImmutableBuffer(compressed)
        }
        let start = out.readerIndex
        out.setInteger(0 as Int64, at: start)  // base offset: the broker assigns it
        out.setInteger(Int32(out.readableBytes - RecordBatch.logOverhead), at: start + 8)
        out.setInteger(-1 as Int32, at: start + 12)  // partition leader epoch
        out.setInteger(2 as Int8, at: start + 16)  // magic
        out.setInteger(compression.rawValue, at: start + 21)  // attributes
        out.setInteger(max(count - 1, 0), at: start + 23)  // last offset delta
        out.setInteger(baseTimestamp, at: start + 27)
        out.setInteger(maxTimestamp, at: start + 35)
        out.setInteger(producerId, at: start + 43)
        out.setInteger(producerEpoch, at: start + 51)
        out.setInteger(baseSequence, at: start + 53)
        out.setInteger(count, at: start + 57)
        let crc = out.withUnsafeReadableBytes { CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[21...])) }
        out.setInteger(crc, at: start + 17)
        // Well-formed by construction; validating checks the framing once more for free.
        return try RecordBatch(validating: out, verifyCRC: false)
    }

    // MARK: varints (zigzag, LEB128), written straight into the buffer's memory

    @inline(__always)
    private static func putLEB128<T: FixedWidthInteger & UnsignedInteger>(_ value: T, _ out: UnsafeMutableRawBufferPointer, _ at: Int) -> Int {
        var v = value
        var i = at
        while v >= 0x80 {
            out[i] = UInt8(truncatingIfNeeded: v) | 0x80
            v >>= 7
            i += 1
        }
        out[i] = UInt8(truncatingIfNeeded: v)
        return i + 1
    }

    @inline(__always)
    private static func putVarint(_ value: Int32, _ out: UnsafeMutableRawBufferPointer, _ at: Int) -> Int {
        putLEB128(UInt32(bitPattern: (value << 1) ^ (value >> 31)), out, at)
    }

    @inline(__always)
    private static func putVarlong(_ value: Int64, _ out: UnsafeMutableRawBufferPointer, _ at: Int) -> Int {
        putLEB128(UInt64(bitPattern: (value << 1) ^ (value >> 63)), out, at)
    }

    @inline(__always)
    static func varintSize(_ value: Int32) -> Int {
        let v = UInt32(bitPattern: (value << 1) ^ (value >> 31))
        return v < 1 << 7 ? 1 : v < 1 << 14 ? 2 : v < 1 << 21 ? 3 : v < 1 << 28 ? 4 : 5
    }

    @inline(__always)
    static func varlongSize(_ value: Int64) -> Int {
        var v = UInt64(bitPattern: (value << 1) ^ (value >> 63))
        var n = 1
        while v >= 0x80 {
            v >>= 7
            n += 1
        }
        return n
    }
}
