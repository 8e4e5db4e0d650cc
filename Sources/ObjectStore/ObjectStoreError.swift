/// The one error type of the ObjectStore module.
///
/// `code` says what kind of failure it was, so a caller can decide (a tiering uploader
/// waits and tries again later on `.throttled` or `.network`, but stops on
/// `.accessDenied`); `message` and the context fields say what exactly, for the log.
public struct ObjectStoreError: Error, Sendable, CustomStringConvertible {
    /// An extensible kind of failure: new codes can be added without breaking callers'
    /// `switch`es, which compare with `==`.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        let raw: String
        public var description: String { raw }

        /// There is no object (or bucket) by that name.
        public static let notFound = Code(raw: "not found")
        /// The credentials were refused or do not allow the operation (403, bad signature).
        public static let accessDenied = Code(raw: "access denied")
        /// The service asked us to slow down (503 SlowDown, 429) and kept asking past the
        /// retry budget.
        public static let throttled = Code(raw: "throttled")
        /// The service failed (5xx) past the retry budget, or answered with an unexpected
        /// status.
        public static let server = Code(raw: "server error")
        /// The connection could not be made or broke, past the retry budget.
        public static let network = Code(raw: "network error")
        /// The bytes received are not the bytes asked for: wrong size, bad checksum, a
        /// Content-Range other than the one requested.
        public static let integrity = Code(raw: "integrity error")
        /// A store URL that cannot be parsed or names an unsupported scheme.
        public static let invalidURL = Code(raw: "invalid URL")
        /// A key no store can hold (see `validateKey`), or one that collides with a
        /// directory on the local store.
        public static let invalidKey = Code(raw: "invalid key")
        /// A range outside the object.
        public static let invalidRange = Code(raw: "invalid range")
        /// Something is missing or wrong in the configuration (no credentials, no region,
        /// a malformed credentials file).
        public static let configuration = Code(raw: "configuration error")
        /// A local file-system call failed.
        public static let io = Code(raw: "I/O error")
        /// The service answered with something we could not understand.
        public static let invalidResponse = Code(raw: "invalid response")
    }

    public var code: Code
    public var message: String
    /// The key the operation was about, when there was one.
    public var key: String?
    /// The HTTP status of the last response, for S3.
    public var httpStatus: Int?
    /// S3's own error code (`NoSuchKey`, `SlowDown`, ...), when it sent one.
    public var serviceCode: String?
    /// How many attempts were made before giving up (1 when the error was not retried).
    public var attempts: Int
    /// Whether the S3 store may try the request again; decided where the failure is
    /// classified, read by the retry loop.
    var isRetryable = false

    public init(_ code: Code, _ message: String, key: String? = nil, httpStatus: Int? = nil,
                serviceCode: String? = nil, attempts: Int = 1) {
        self.code = code
        self.message = message
        self.key = key
        self.httpStatus = httpStatus
        self.serviceCode = serviceCode
        self.attempts = attempts
    }

    public var description: String {
        var text = "\(code): \(message)"
        if let key { text += " (key \(key))" }
        if let httpStatus {
            text += " [HTTP \(httpStatus)\(serviceCode.map { " \($0)" } ?? "")]"
        }
        if attempts > 1 { text += " after \(attempts) attempts" }
        return text
    }
}
