import KafkaProtocol

/// The one error type of the KafkaCompression module: which codec failed, and how.
///
/// Decompression errors are about bytes a remote producer wrote, so they must be
/// distinguishable from "this process cannot run the codec at all" (`libraryUnavailable`).
public struct KafkaCompressionError: Error, Sendable, Hashable, CustomStringConvertible {
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        let raw: String
        public var description: String { raw }
        /// The system library implementing the codec (libz, libzstd) could not be loaded.
        public static let libraryUnavailable = Code(raw: "codec library unavailable")
        /// The compressed bytes are malformed, truncated or fail a checksum.
        public static let corruptInput = Code(raw: "corrupt compressed data")
        /// The decompressed data would be larger than the caller's `maximumSize`.
        public static let outputTooLarge = Code(raw: "decompressed data too large")
        /// Well-formed data using a feature Kafka producers never write (an lz4 dictionary).
        public static let unsupportedFeature = Code(raw: "unsupported feature")
        /// The codec library reported a failure while compressing.
        public static let compressionFailed = Code(raw: "compression failed")
        /// The caller passed an invalid argument (a compression level out of range).
        public static let invalidArgument = Code(raw: "invalid argument")
    }

    public var code: Code
    public var codec: CompressionCodec
    public var message: String

    public init(_ code: Code, codec: CompressionCodec, _ message: String) {
        self.code = code
        self.codec = codec
        self.message = message
    }

    public var description: String { "\(codec): \(code): \(message)" }
}
