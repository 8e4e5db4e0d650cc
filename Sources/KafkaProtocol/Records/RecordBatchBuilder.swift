import NIOCore

/// Writes a magic-2 record batch. Records are appended as they come; `build` fills in
/// the header and CRC. Compression is the caller's: pass the already-compressed
/// payload to `build(compressedPayload:codec:)`.
public struct RecordBatchBuilder: Sendable {
    public var baseOffset: Int64 = 0
    public var partitionLeaderEpoch: Int32 = -1
    public var producerId: Int64 = -1
    public var producerEpoch: Int16 = -1
    public var baseSequence: Int32 = -1
    public var isTransactional = false
    public var isControl = false
    public var isLogAppendTime = false
    public private(set) var baseTimestamp: Int64
    public private(set) var maxTimestamp: Int64
    public private(set) var recordCount: Int32 = 0
    /// The last offset delta written so far; a compacted batch keeps its original one.
    public var lastOffsetDelta: Int32 = -1
    /// The encoded records, uncompressed.
    public private(set) var payload: ByteBuffer

    /// Overrides the batch's maximum timestamp (the cleaner keeps the original one).
    public mutating func setMaxTimestamp(_ timestamp: Int64) {
        maxTimestamp = timestamp
    }

    public init(baseTimestamp: Int64, capacity: Int = 1024) {
        self.baseTimestamp = baseTimestamp
        self.maxTimestamp = baseTimestamp
        self.payload = ByteBufferAllocator().buffer(capacity: capacity)
    }

    /// Appends a record with the next offset delta, or `offsetDelta` when given (the
    /// cleaner keeps records' original offsets; deltas must increase).
    public mutating func append(key: ByteBuffer?, value: ByteBuffer?, timestamp: Int64? = nil, headers: [Record.Header] = [],
                                offsetDelta explicitDelta: Int32? = nil) {
        let ts = timestamp ?? baseTimestamp
        maxTimestamp = max(maxTimestamp, ts)
        let timestampDelta = ts - baseTimestamp
        let offsetDelta = explicitDelta ?? (lastOffsetDelta + 1)
        lastOffsetDelta = max(lastOffsetDelta, offsetDelta)
        recordCount += 1

        var size = 1 + ByteBuffer.varlongSize(timestampDelta) + ByteBuffer.varintSize(offsetDelta)
        size += Self.bytesSize(key) + Self.bytesSize(value)
        size += ByteBuffer.varintSize(Int32(headers.count))
        for h in headers {
            size += Self.bytesSize(h.key.utf8.count) + Self.bytesSize(h.value)
        }
        payload.writeVarint(Int32(size))
        payload.writeInteger(0 as Int8)
        payload.writeVarlong(timestampDelta)
        payload.writeVarint(offsetDelta)
        Self.writeBytes(key, to: &payload)
        Self.writeBytes(value, to: &payload)
        payload.writeVarint(Int32(headers.count))
        for h in headers {
            payload.writeVarint(Int32(h.key.utf8.count))
            payload.writeString(h.key)
            Self.writeBytes(h.value, to: &payload)
        }
    }

    /// Bytes the batch will take uncompressed.
    public var estimatedSize: Int { RecordBatch.headerSize + payload.readableBytes }

    /// The batch with the plain payload.
    public func build() -> RecordBatch {
        build(compressedPayload: payload, codec: .none)
    }

    /// The batch with `compressedPayload` in place of the records (as the codec wrote them).
    public func build(compressedPayload: ByteBuffer, codec: CompressionCodec) -> RecordBatch {
        var out = ByteBufferAllocator().buffer(capacity: RecordBatch.headerSize + compressedPayload.readableBytes)
        var attributes = codec.rawValue
        if isLogAppendTime { attributes |= 0x08 }
        if isTransactional { attributes |= 0x10 }
        if isControl { attributes |= 0x20 }
        out.writeInteger(baseOffset)
        out.writeInteger(Int32(RecordBatch.headerSize - RecordBatch.logOverhead + compressedPayload.readableBytes))
        out.writeInteger(partitionLeaderEpoch)
        out.writeInteger(2 as Int8)
        out.writeInteger(0 as UInt32)  // CRC, filled below
        out.writeInteger(attributes)
        out.writeInteger(max(lastOffsetDelta, 0))
        out.writeInteger(baseTimestamp)
        out.writeInteger(maxTimestamp)
        out.writeInteger(producerId)
        out.writeInteger(producerEpoch)
        out.writeInteger(baseSequence)
        out.writeInteger(recordCount)
        var body = compressedPayload
        out.writeBuffer(&body)
        let crc = out.withUnsafeReadableBytes {
            CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[RecordBatch.attributesOffset...]))
        }
        out.setInteger(crc, at: RecordBatch.crcOffset)
        // The builder only writes well-formed batches.
        return try! RecordBatch(validating: out, verifyCRC: false)
    }

    private static func bytesSize(_ b: ByteBuffer?) -> Int {
        guard let b else { return 1 }
        return bytesSize(b.readableBytes)
    }

    private static func bytesSize(_ count: Int) -> Int {
        ByteBuffer.varintSize(Int32(count)) + count
    }

    private static func writeBytes(_ b: ByteBuffer?, to out: inout ByteBuffer) {
        guard var b else {
            out.writeVarint(-1)
            return
        }
        out.writeVarint(Int32(b.readableBytes))
        out.writeBuffer(&b)
    }
}
