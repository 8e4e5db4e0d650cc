import Foundation
import NIOCore
import ObjectStore

/// What an export has completed: its objects with their offset ranges, the next offset
/// of each partition and the schema so far. Stored as JSON at `manifestKey` next to the
/// data and rewritten after each batch of objects is durable, before offsets are committed.
///
/// Readers take the objects it lists as the complete set; the next run resumes from its
/// `nextOffset`s (or the group's committed offsets, whichever is further).
public struct LakeManifest: Codable, Sendable, Hashable {
    /// One complete object.
    public struct Object: Codable, Sendable, Hashable {
        /// The key, relative to the store's root or prefix.
        public var key: String
        /// The Kafka partition its records came from.
        public var partition: Int32
        /// Offsets of its first and last records; records of other partition-by buckets
        /// can lie between them.
        public var firstOffset: Int64
        public var lastOffset: Int64
        /// Rows in it.
        public var records: Int
        /// Its size.
        public var bytes: Int
    }

    /// The manifest format; 1.
    public var version = 1
    public var topic: String
    public var format: LakeFormat
    /// The export's schema so far (a file may have fewer or narrower columns).
    public var schema: [ParquetColumn]
    /// Per partition (as a decimal string, for JSON), the offset the next run reads from.
    public var nextOffsets: [String: Int64]
    /// Every complete object, in the order written.
    public var objects: [Object]
    /// When it was last written, ISO-8601.
    public var updated: String

    public init(topic: String, format: LakeFormat) {
        self.topic = topic
        self.format = format
        self.schema = LakeSchema.kafkaColumns
        self.nextOffsets = [:]
        self.objects = []
        self.updated = ""
    }

    /// `TOPIC/_manifest.FORMAT.json`: one per topic and format, so exports of one topic to
    /// several formats in one place keep apart. Its name starts with `_`, which Hive-style
    /// readers (Spark, DuckDB's globs over `part-*`) leave out.
    public static func key(topic: String, format: LakeFormat) -> String {
        "\(topic)/_manifest.\(format.rawValue).json"
    }

    /// Where the next run starts reading `partition`; nil before its first object.
    public func nextOffset(_ partition: Int32) -> Int64? { nextOffsets[String(partition)] }

    /// Reads the manifest, or nil when there is none yet.
    public static func load(from store: any ObjectStore, topic: String, format: LakeFormat) async throws -> LakeManifest? {
        let key = key(topic: topic, format: format)
        guard try await store.head(key: key) != nil else { return nil }
        let body = try await store.get(key: key)
        do {
            let manifest = try JSONDecoder().decode(LakeManifest.self, from: Data(body.readableBytesView))
            guard manifest.topic == topic, manifest.format == format else {
                throw LakeError(.corruptManifest, "\(key) is for topic \(manifest.topic) as \(manifest.format.rawValue)")
            }
            return manifest
        } catch let error as DecodingError {
            throw LakeError(.corruptManifest, "\(key): \(error)")
        }
    }

    func save(to store: any ObjectStore) async throws {
        var copy = self
        copy.updated = LakeValue.iso8601(Int64(Date().timeIntervalSince1970 * 1000))
        let encoder = JSONEncoder()
        // Compact: the manifest is rewritten after every roll and grows with the export.
        encoder.outputFormatting = [.sortedKeys]
        let data = try encoder.encode(copy)
        try await store.put(key: Self.key(topic: topic, format: format), body: ByteBuffer(bytes: data))
    }
}

/// The parts of an object key `TOPIC/[k=v/...]part-P-FIRST-LAST.EXT`.
struct LakeObjectName: Hashable {
    var partition: Int32
    var firstOffset: Int64
    var lastOffset: Int64

    static func key(topic: String, partitionPath: String, partition: Int32, firstOffset: Int64, lastOffset: Int64, format: LakeFormat) -> String {
        "\(topic)/\(partitionPath.isEmpty ? "" : partitionPath + "/")part-\(partition)-\(firstOffset)-\(lastOffset).\(format.fileExtension)"
    }

    /// Parses a key this export could have written; nil for anything else.
    init?(key: String, format: LakeFormat) {
        let suffix = "." + format.fileExtension
        guard key.hasSuffix(suffix), let name = key.split(separator: "/").last, name.hasPrefix("part-") else { return nil }
        let parts = name.dropFirst(5).dropLast(suffix.count).split(separator: "-")
        guard parts.count == 3, let p = Int32(parts[0]), let f = Int64(parts[1]), let l = Int64(parts[2]) else { return nil }
        partition = p
        firstOffset = f
        lastOffset = l
    }
}
