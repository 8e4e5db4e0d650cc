/// An error from the stream layer, with a code callers can switch on and a message
/// that says what to do.
public struct StreamsError: Error, Sendable, CustomStringConvertible {
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        let raw: String
        public var description: String { raw }
        /// A bad argument: window size, option combination, URL.
        public static let invalidArgument = Code(raw: "invalid argument")
        /// An output exists that no checkpoint describes, or was written by another pipeline.
        public static let outputConflict = Code(raw: "output conflict")
        /// A checkpoint or output that cannot be read or does not match.
        public static let corruptCheckpoint = Code(raw: "corrupt checkpoint")
        /// A record the pipeline cannot decode.
        public static let invalidRecord = Code(raw: "invalid record")
        /// The source topic does not exist.
        public static let unknownTopic = Code(raw: "unknown topic")
        /// Writing the output failed.
        public static let io = Code(raw: "I/O error")
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}
