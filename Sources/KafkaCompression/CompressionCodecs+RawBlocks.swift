import NIOCore

extension CompressionCodecs {
    /// Compresses `input` as one raw snappy block (length varint, then elements), without
    /// the xerial framing Kafka producers use.
    ///
    /// Formats other than Kafka's batches want this shape: a Parquet page compressed with
    /// SNAPPY is exactly one raw block, which `decompress(_:codec:maximumSize:)` also reads.
    public static func snappyRawBlock(_ input: ByteBuffer) -> ByteBuffer {
        Snappy.compress(input, framing: .raw)
    }
}
