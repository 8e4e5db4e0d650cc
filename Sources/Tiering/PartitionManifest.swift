import Foundation
import KafkaProtocol

/// Where a partition's tiered data lives in the store. Keys are deterministic (topic, topic
/// id, partition, base offset), so a re-upload after a crash overwrites the same objects
/// instead of adding copies.
public struct RemotePartitionKey: Sendable, Hashable, CustomStringConvertible {
    public var topic: String
    public var topicId: KafkaUUID
    public var partition: Int32

    public init(topic: String, topicId: KafkaUUID, partition: Int32) {
        self.topic = topic
        self.topicId = topicId
        self.partition = partition
    }

    /// `<topic>-<topic id>/<partition>/`: a topic re-created under the same name gets a new
    /// id, so it never sees the old topic's history.
    public var prefix: String { "\(topic)-\(topicId)/\(partition)/" }
    public var manifestKey: String { prefix + "manifest.json" }

    /// `<prefix><20-digit base offset><suffix>`, as segment files are named on disk.
    public func segmentKey(_ baseOffset: Int64, _ suffix: String) -> String {
        let digits = String(baseOffset)
        return prefix + String(repeating: "0", count: max(0, 20 - digits.count)) + digits + suffix
    }

    public var description: String { "\(topic)-\(partition)" }
}

/// One segment in the store, as its manifest records it.
public struct RemoteSegment: Codable, Sendable, Hashable {
    public var baseOffset: Int64
    /// One past the segment's last offset.
    public var nextOffset: Int64
    public var sizeInBytes: Int
    /// The largest record timestamp, or -1 when unknown.
    public var maxTimestamp: Int64
    public var uploadedAtMs: Int64

    public init(baseOffset: Int64, nextOffset: Int64, sizeInBytes: Int, maxTimestamp: Int64, uploadedAtMs: Int64) {
        self.baseOffset = baseOffset
        self.nextOffset = nextOffset
        self.sizeInBytes = sizeInBytes
        self.maxTimestamp = maxTimestamp
        self.uploadedAtMs = uploadedAtMs
    }
}

/// The list of a partition's segments that are completely in the store, in offset order.
/// It is the commit point of every upload and deletion: a segment exists for readers once
/// the manifest naming it is written, and stops existing when a manifest without it is.
public struct PartitionManifest: Codable, Sendable, Hashable {
    public var version: Int = 1
    public var topic: String
    public var topicId: String
    public var partition: Int32
    /// The partition's log start offset when the manifest was written: segments wholly
    /// below it are gone (retention, DeleteRecords).
    public var logStartOffset: Int64
    public var segments: [RemoteSegment]

    public init(key: RemotePartitionKey, logStartOffset: Int64, segments: [RemoteSegment] = []) {
        self.topic = key.topic
        self.topicId = key.topicId.description
        self.partition = key.partition
        self.logStartOffset = logStartOffset
        self.segments = segments
    }

    /// One past the last tiered offset, or the log start when nothing is tiered.
    public var endOffset: Int64 { segments.last?.nextOffset ?? logStartOffset }
    public var sizeInBytes: Int64 { segments.reduce(0) { $0 + Int64($1.sizeInBytes) } }

    /// The segment holding `offset`, if the store has it.
    public func segment(containing offset: Int64) -> RemoteSegment? {
        var lo = 0
        var hi = segments.count - 1
        while lo <= hi {
            let mid = (lo + hi) / 2
            let s = segments[mid]
            if offset < s.baseOffset { hi = mid - 1 } else if offset >= s.nextOffset { lo = mid + 1 } else { return s }
        }
        return nil
    }

    func encoded() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return try encoder.encode(self)
    }
}

/// A topic's metadata in the store (`_topics/<topic>-<id>.json`), so a broker started on an
/// empty data directory can find the tiered topics and serve them.
public struct RemoteTopicMetadata: Codable, Sendable, Hashable {
    public var name: String
    public var id: String
    public var partitions: Int32
    public var configs: [String: String]

    public init(name: String, id: String, partitions: Int32, configs: [String: String]) {
        self.name = name
        self.id = id
        self.partitions = partitions
        self.configs = configs
    }

    static let prefix = "_topics/"
    var key: String { Self.prefix + "\(name)-\(id).json" }
}
