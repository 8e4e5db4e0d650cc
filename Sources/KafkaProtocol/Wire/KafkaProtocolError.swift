/// The one error type of the KafkaProtocol module: what failed, and where.
///
/// Decode errors carry the API, version and field that failed, so a log line for a
/// malformed request says more than "bad bytes".
public struct KafkaProtocolError: Error, Sendable, Hashable, CustomStringConvertible {
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        let raw: String
        public var description: String { raw }
        /// The bytes ended before the field did.
        public static let truncated = Code(raw: "truncated")
        /// A length or count is negative (where not null) or larger than the bytes left.
        public static let invalidLength = Code(raw: "invalid length")
        /// A null was read or written where the version does not allow one.
        public static let unexpectedNull = Code(raw: "unexpected null")
        /// A field holds a non-default value at a version that cannot carry it.
        public static let unsupportedField = Code(raw: "field not supported at this version")
        /// The API version is outside what the definitions declare.
        public static let unsupportedVersion = Code(raw: "unsupported version")
        /// An API key no definition describes.
        public static let unknownAPIKey = Code(raw: "unknown api key")
        /// A record batch failed validation (header, CRC, lengths).
        public static let corruptRecordBatch = Code(raw: "corrupt record batch")
        /// A legacy message set (magic 0 or 1) where a v2 batch was expected.
        public static let legacyMessageFormat = Code(raw: "legacy message format")
        /// The frame has bytes left over after the message.
        public static let trailingBytes = Code(raw: "trailing bytes")
    }

    public var code: Code
    public var message: String
    public var api: String?
    public var version: Int16?
    public var field: String?

    public init(_ code: Code, _ message: String = "", api: String? = nil, version: Int16? = nil, field: String? = nil) {
        self.code = code
        self.message = message
        self.api = api
        self.version = version
        self.field = field
    }

    public var description: String {
        var parts = [code.description]
        if let api { parts.append(version.map { "\(api) v\($0)" } ?? api) }
        if let field { parts.append("field \(field)") }
        if !message.isEmpty { parts.append(message) }
        return parts.joined(separator: ": ")
    }

    @usableFromInline
    static func truncated(_ field: StaticString) -> KafkaProtocolError {
        KafkaProtocolError(.truncated, field: "\(field)")
    }

    /// Adds the API and version to an error raised deep inside a message.
    func within(api: String, version: Int16) -> KafkaProtocolError {
        var copy = self
        if copy.api == nil { copy.api = api }
        if copy.version == nil { copy.version = version }
        return copy
    }
}
