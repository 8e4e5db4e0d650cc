import KafkaProtocol
import NIOCore

/// Compression and decompression of record-batch payloads for every Kafka codec.
///
/// A batch's records are compressed as one unit, after the 61-byte header; these
/// functions take and return just that payload (`RecordBatch.recordsPayload`). What
/// they write is what the Java client and librdkafka write, so every Kafka client and
/// broker reads it:
///
/// | codec  | format                                   | implementation                  |
/// |--------|------------------------------------------|---------------------------------|
/// | gzip   | a gzip stream (RFC 1952)                 | system zlib, loaded at run time |
/// | snappy | snappy-java (xerial) framing; reads raw  | Swift                           |
/// | lz4    | LZ4 frame, independent 64 KiB blocks     | Swift                           |
/// | zstd   | zstd frames                              | system libzstd, loaded at run time |
///
/// Nothing is linked at build time, so `swift build` needs no -dev package; a process
/// that never meets gzip or zstd never needs libz or libzstd (see `isAvailable`).
public enum CompressionCodecs {
    /// Compresses a batch's encoded records as Kafka producers do for `codec`.
    ///
    /// - Parameter level: the codec's level, as Kafka's `compression.<codec>.level`: gzip
    ///   -1...9, zstd -131072...22; nil for Kafka's default (gzip 6, zstd 3). snappy and
    ///   lz4 have a single level here and ignore it.
    public static func compress(_ input: ByteBuffer, codec: CompressionCodec, level: Int? = nil) throws -> ByteBuffer {
        switch codec {
        case .none: return input
        case .gzip: return try Gzip.compress(input, level: level)
        case .snappy: return Snappy.compress(input, framing: .xerial)
        case .lz4: return LZ4.compress(input)
        case .zstd: return try Zstd.compress(input, level: level)
        }
    }

    /// Decompresses a batch's records payload.
    ///
    /// `maximumSize` bounds the output before it is allocated: a payload that would
    /// decompress to more (a zip bomb, or a size field lying) fails with `outputTooLarge`,
    /// its output buffer never larger than `maximumSize` rounded up to a power of two
    /// (ByteBuffer's capacity rule). Sizes the data claims are only trusted as far as
    /// the input could expand. Malformed or truncated input fails with `corruptInput`;
    /// neither ever traps. libzstd's own window limit (128 MiB) bounds its state.
    public static func decompress(_ input: ByteBuffer, codec: CompressionCodec, maximumSize: Int) throws -> ByteBuffer {
        guard maximumSize >= 0 else {
            throw KafkaCompressionError(.invalidArgument, codec: codec, "negative maximumSize \(maximumSize)")
        }
        switch codec {
        case .none:
            guard input.readableBytes <= maximumSize else {
                throw KafkaCompressionError(.outputTooLarge, codec: codec, "\(input.readableBytes) bytes, maximum \(maximumSize)")
            }
            return input
        case .gzip: return try Gzip.decompress(input, maximumSize: maximumSize)
        case .snappy: return try Snappy.decompress(input, maximumSize: maximumSize)
        case .lz4: return try LZ4.decompress(input, maximumSize: maximumSize)
        case .zstd: return try Zstd.decompress(input, maximumSize: maximumSize)
        }
    }

    /// Whether `codec` works in this process; false when its system library cannot be
    /// loaded, so a producer can refuse the configuration up front rather than per batch.
    public static func isAvailable(_ codec: CompressionCodec) -> Bool {
        availabilityError(codec) == nil
    }

    /// Why `codec` cannot be used in this process, or nil when it can.
    public static func availabilityError(_ codec: CompressionCodec) -> KafkaCompressionError? {
        switch codec {
        case .none, .snappy, .lz4: return nil
        case .gzip:
            if case .failure(let error) = Zlib.shared { return error }
            return nil
        case .zstd:
            if case .failure(let error) = ZstdLibrary.shared { return error }
            return nil
        }
    }
}

extension RecordBatch {
    /// The batch's records, decompressing the payload first when the batch is compressed.
    ///
    /// `maximumSize` bounds the decompressed payload (see `CompressionCodecs.decompress`).
    public func decompressedRecords(maximumSize: Int) throws -> RecordIterator {
        guard let codec = compression else {
            throw KafkaProtocolError(.corruptRecordBatch, "unknown compression codec \(attributes & 0x07)")
        }
        if codec == .none { return try records() }
        let payload = try CompressionCodecs.decompress(recordsPayload, codec: codec, maximumSize: maximumSize)
        return RecordIterator(payload: payload, count: Int(recordCount))
    }
}

extension RecordBatchBuilder {
    /// The batch with its records compressed by `codec` (`level` as in `CompressionCodecs.compress`).
    public func build(compression codec: CompressionCodec, level: Int? = nil) throws -> RecordBatch {
        guard codec != .none else { return build() }
        return build(compressedPayload: try CompressionCodecs.compress(payload, codec: codec, level: level), codec: codec)
    }
}
