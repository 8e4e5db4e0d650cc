/// Lake export: Kafka topics to Parquet, CSV and JSON-lines tables in an `ObjectStore`.
///
/// `ParquetWriter` writes Parquet files on its own (the stream layer reuses it);
/// `LakeExporter` consumes a topic, infers a widening schema from JSON values and writes
/// objects with deterministic keys, committing offsets only after they are durable.
public enum Lake {}

/// An error of the Lake module: a code to branch on and a message for people.
public struct LakeError: Error, Sendable, CustomStringConvertible {
    /// What went wrong, for callers that branch on it; new codes may be added.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        let name: String
        /// A row or value that does not fit the writer's schema.
        public static let schemaMismatch = Code(name: "schemaMismatch")
        /// A writer used after `close()`, or an option out of range.
        public static let invalidArgument = Code(name: "invalidArgument")
        /// The topic or cluster is not as the export needs it (no such topic, no partitions).
        public static let topicUnavailable = Code(name: "topicUnavailable")
        /// A manifest in the store that cannot be read.
        public static let corruptManifest = Code(name: "corruptManifest")
        /// Writing a local temporary file failed.
        public static let io = Code(name: "io")
        public var description: String { name }
    }

    public var code: Code
    /// A sentence for people, naming the file, column or option at fault.
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code): \(message)" }
}
