import Foundation
import KafkaCompression
import KafkaProtocol
import Logging
import LogStore
import NIOConcurrencyHelpers
import NIOCore
import ObjectStore

/// A partition log's tiered part: uploads closed segments with their indexes, keeps the
/// per-partition manifests, and reads batches and timestamps back with ranged GETs through
/// a bounded chunk cache.
///
/// Uploads and retention of one partition must come from one caller at a time (the
/// broker's tiering service); reads may run concurrently with them and with each other.
public final class RemoteLogStorage: Sendable {
    public let store: any ObjectStore
    let logger: Logger
    /// Bytes per ranged GET of a segment; also the read-ahead unit.
    let chunkSize: Int
    private let cache: ChunkCache
    private let state = NIOLockedValueBox(State())

    private struct State {
        var manifests: [RemotePartitionKey: PartitionManifest] = [:]
        /// Offset index entries (relative offset, position) per segment object.
        var offsetIndexes: [String: [(UInt32, UInt32)]] = [:]
        var timeIndexes: [String: [(Int64, UInt32)]] = [:]
    }

    /// - Parameters:
    ///   - cacheBytes: `remote.cache.bytes`, the memory for cached segment chunks.
    ///   - chunkSize: bytes per ranged GET (4 MiB by default).
    public init(store: any ObjectStore, cacheBytes: Int, chunkSize: Int = 4 << 20, logger: Logger) {
        self.store = store
        self.logger = logger
        self.chunkSize = max(4096, min(chunkSize, max(cacheBytes / 4, 4096)))
        self.cache = ChunkCache(capacity: max(cacheBytes, self.chunkSize))
    }

    // MARK: manifests

    /// The partition's manifest: the cached copy, or the store's, or (for a partition that
    /// never tiered) an empty one starting at `logStartOffset`.
    public func manifest(_ key: RemotePartitionKey, logStartOffset: Int64 = 0) async throws -> PartitionManifest {
        if let cached = state.withLockedValue({ $0.manifests[key] }) { return cached }
        let loaded: PartitionManifest
        do {
            let bytes = try await store.get(key: key.manifestKey)
            loaded = try JSONDecoder().decode(PartitionManifest.self, from: Data(bytes.readableBytesView))
        } catch let error as ObjectStoreError where error.code == .notFound {
            loaded = PartitionManifest(key: key, logStartOffset: logStartOffset)
        } catch let error as DecodingError {
            throw ObjectStoreError(.integrity, "manifest \(key.manifestKey) cannot be read: \(error)")
        }
        return state.withLockedValue { state in
            if let existing = state.manifests[key] { return existing }
            state.manifests[key] = loaded
            return loaded
        }
    }

    /// The cached manifest only (no I/O), for reporting.
    public func cachedManifest(_ key: RemotePartitionKey) -> PartitionManifest? {
        state.withLockedValue { $0.manifests[key] }
    }

    private func writeManifest(_ manifest: PartitionManifest, _ key: RemotePartitionKey) async throws {
        try await store.put(key: key.manifestKey, body: ByteBuffer(bytes: try manifest.encoded()))
        state.withLockedValue { $0.manifests[key] = manifest }
    }

    // MARK: upload

    /// Copies a closed segment and its indexes to the store, then records it in the
    /// manifest. The manifest write is the commit point: a crash before it leaves objects
    /// the next attempt overwrites (same keys), never a second copy of the offsets.
    /// Returns the manifest with the segment in it.
    @discardableResult
    public func upload(_ segment: PartitionLog.ClosedSegment, key: RemotePartitionKey, logStartOffset: Int64,
                       now: Int64 = currentTimeMillis()) async throws -> PartitionManifest {
        var manifest = try await manifest(key, logStartOffset: logStartOffset)
        if let last = manifest.segments.last, segment.baseOffset < last.nextOffset {
            return manifest  // already there
        }
        // Offsets between the manifest's end and this segment must be gone from the log
        // (DeleteRecords moved the start past them); anything else would be a hole.
        if !manifest.segments.isEmpty, segment.baseOffset != manifest.endOffset, segment.baseOffset > logStartOffset {
            throw TieringError("\(key): segment \(segment.baseOffset) does not follow the tiered end \(manifest.endOffset)")
        }
        // The three objects go up together; none is visible to readers before the manifest.
        let store = self.store
        async let index: Void = store.putFile(key: key.segmentKey(segment.baseOffset, ".index"), path: segment.offsetIndexPath, partSize: nil)
        async let timeIndex: Void = store.putFile(key: key.segmentKey(segment.baseOffset, ".timeindex"), path: segment.timeIndexPath, partSize: nil)
        try await store.putFile(key: key.segmentKey(segment.baseOffset, ".log"), path: segment.logPath, partSize: nil)
        try await index
        try await timeIndex
        // The object must be what the manifest will promise.
        guard let head = try await store.head(key: key.segmentKey(segment.baseOffset, ".log")), head.size == segment.sizeInBytes else {
            throw TieringError("\(key): uploaded segment \(segment.baseOffset) does not have its \(segment.sizeInBytes) bytes in the store")
        }
        if manifest.segments.isEmpty { manifest.logStartOffset = max(manifest.logStartOffset, min(logStartOffset, segment.baseOffset)) }
        manifest.segments.append(RemoteSegment(baseOffset: segment.baseOffset, nextOffset: segment.nextOffset, sizeInBytes: segment.sizeInBytes,
                                               maxTimestamp: segment.maxTimestamp, uploadedAtMs: now))
        try await writeManifest(manifest, key)
        return manifest
    }

    // MARK: retention

    /// Total retention (`retention.ms`/`retention.bytes`) and DeleteRecords over the store:
    /// drops the oldest tiered segments that are past it, manifest first, then their
    /// objects. `localOnlyBytes` is the partition's data not yet in the store, which counts
    /// toward `retention.bytes`. Returns the new log start offset when it moved.
    public func applyRetention(key: RemotePartitionKey, logStartOffset: Int64, retentionMs: Int64, retentionBytes: Int64,
                               localOnlyBytes: Int64, now: Int64 = currentTimeMillis()) async throws -> Int64? {
        var manifest = try await manifest(key, logStartOffset: logStartOffset)
        var total = manifest.sizeInBytes + localOnlyBytes
        var drop = 0
        for segment in manifest.segments {
            let age = segment.maxTimestamp >= 0 ? segment.maxTimestamp : segment.uploadedAtMs
            let byStart = segment.nextOffset <= logStartOffset
            let byTime = retentionMs >= 0 && now - age > retentionMs
            let bySize = retentionBytes >= 0 && total - Int64(segment.sizeInBytes) >= retentionBytes
            guard byStart || byTime || bySize else { break }
            drop += 1
            total -= Int64(segment.sizeInBytes)
        }
        let newStart = max(logStartOffset, manifest.logStartOffset, drop > 0 ? manifest.segments[drop - 1].nextOffset : 0)
        guard drop > 0 || newStart != manifest.logStartOffset else { return nil }
        let dropped = Array(manifest.segments.prefix(drop))
        manifest.segments.removeFirst(drop)
        manifest.logStartOffset = newStart
        try await writeManifest(manifest, key)
        for segment in dropped {
            try await deleteObjects(key, segment.baseOffset)
        }
        if !dropped.isEmpty {
            logger.info("tiered retention deleted segments", metadata: [
                "kafka.topic": "\(key.topic)", "kafka.partition": "\(key.partition)",
                "segments": "\(dropped.count)", "log.start.offset": "\(newStart)",
            ])
        }
        return newStart > logStartOffset ? newStart : nil
    }

    private func deleteObjects(_ key: RemotePartitionKey, _ base: Int64) async throws {
        for suffix in [".log", ".index", ".timeindex"] {
            let object = key.segmentKey(base, suffix)
            try await store.delete(key: object)
            await cache.remove(object: object)
            state.withLockedValue {
                $0.offsetIndexes[object] = nil
                $0.timeIndexes[object] = nil
            }
        }
    }

    /// Deletes segment objects the manifest does not name: leftovers of an upload a crash
    /// interrupted, or of a retention pass that stopped after its manifest write.
    /// Call it before uploads start. Returns how many objects were removed.
    @discardableResult
    public func removeOrphans(_ key: RemotePartitionKey) async throws -> Int {
        let manifest = try await manifest(key)
        let known = Set(manifest.segments.map(\.baseOffset))
        var removed = 0
        for object in try await store.list(prefix: key.prefix) {
            let name = object.key.dropFirst(key.prefix.count)
            guard let dot = name.firstIndex(of: "."), let base = Int64(name[..<dot]), name.count >= 20 else { continue }
            if !known.contains(base) {
                try await store.delete(key: object.key)
                removed += 1
            }
        }
        if removed > 0 {
            logger.info("removed objects of unfinished uploads", metadata: ["kafka.topic": "\(key.topic)", "kafka.partition": "\(key.partition)", "objects": "\(removed)"])
        }
        return removed
    }

    /// Deletes every object of a partition (its topic was deleted).
    public func deletePartition(_ key: RemotePartitionKey) async throws {
        for object in try await store.list(prefix: key.prefix) {
            try await store.delete(key: object.key)
            await cache.remove(object: object.key)
        }
        state.withLockedValue { $0.manifests[key] = nil }
    }

    // MARK: topics

    /// Records a topic in the store, so an empty broker can find it.
    public func putTopic(_ topic: RemoteTopicMetadata) async throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try await store.put(key: topic.key, body: ByteBuffer(bytes: try encoder.encode(topic)))
    }

    public func deleteTopic(_ topic: RemoteTopicMetadata) async throws {
        try await store.delete(key: topic.key)
    }

    /// Every topic recorded in the store.
    public func listTopics() async throws -> [RemoteTopicMetadata] {
        var out: [RemoteTopicMetadata] = []
        for object in try await store.list(prefix: RemoteTopicMetadata.prefix) where object.key.hasSuffix(".json") {
            let bytes = try await store.get(key: object.key)
            do {
                out.append(try JSONDecoder().decode(RemoteTopicMetadata.self, from: Data(bytes.readableBytesView)))
            } catch {
                logger.warning("ignoring unreadable topic metadata in the store", metadata: ["key": "\(object.key)", "error": "\(error)"])
            }
        }
        return out
    }

    // MARK: reading

    /// Whole batches from the tiered segment holding `offset`, up to `maxBytes` (at least
    /// one batch), as a fetch returns them; nil when the store does not have the offset.
    /// Starts loading the following chunk so a sequential replay finds it ready.
    public func read(_ key: RemotePartitionKey, offset: Int64, maxBytes: Int) async throws -> ByteBuffer? {
        let manifest = try await manifest(key)
        guard let segment = manifest.segment(containing: offset) else { return nil }
        let object = key.segmentKey(segment.baseOffset, ".log")
        let index = try await offsetIndex(key, segment)
        // Skip batches that end before the offset, then take whole batches up to maxBytes.
        var start: Int?
        var end = Self.floorPosition(index, relativeOffset: UInt32(truncatingIfNeeded: offset - segment.baseOffset))
        while end + BatchHeader.size <= segment.sizeInBytes {
            let header = try await batchHeader(key, segment, object, at: end)
            let batchSize = header.size
            if start == nil {
                if header.lastOffset < offset {
                    end += batchSize
                    continue
                }
                start = end
            } else if end + batchSize - start! > maxBytes {
                break
            }
            end += batchSize
            if end - start! >= maxBytes { break }
        }
        guard let start else { return nil }
        let result = try await bytes(object, size: segment.sizeInBytes, range: start..<end)
        readAhead(object, size: segment.sizeInBytes, after: end)
        return result
    }

    /// The first offset whose record timestamp is at or after `timestamp` among the tiered
    /// segments at or above `fromOffset`, with that record's timestamp; nil when none is.
    public func offset(forTimestamp timestamp: Int64, key: RemotePartitionKey, fromOffset: Int64) async throws -> (offset: Int64, timestamp: Int64, segmentBase: Int64)? {
        let manifest = try await manifest(key)
        guard let segment = manifest.segments.first(where: { $0.nextOffset > fromOffset && $0.maxTimestamp >= timestamp }) else { return nil }
        let object = key.segmentKey(segment.baseOffset, ".log")
        let times = try await timeIndex(key, segment)
        var startRel: UInt32 = 0
        for entry in times where entry.0 < timestamp { startRel = entry.1 }
        var position = Self.floorPosition(try await offsetIndex(key, segment), relativeOffset: startRel)
        while position + BatchHeader.size <= segment.sizeInBytes {
            let header = try await batchHeader(key, segment, object, at: position)
            let batchSize = header.size
            if header.maxTimestamp >= timestamp {
                var bytes = try await bytes(object, size: segment.sizeInBytes, range: position..<(position + batchSize))
                guard let batch = try RecordBatch.read(from: &bytes) else { break }
                let floor = max(fromOffset, manifest.logStartOffset)
                if batch.isLogAppendTime { return (max(batch.baseOffset, floor), batch.maxTimestamp, segment.baseOffset) }
                var records = try batch.decompressedRecords(maximumSize: 64 << 20)
                while let record = try records.next() {
                    let ts = batch.baseTimestamp + record.timestampDelta
                    let offset = batch.baseOffset + Int64(record.offsetDelta)
                    if ts >= timestamp && offset >= floor { return (offset, ts, segment.baseOffset) }
                }
                return (max(batch.baseOffset, floor), batch.maxTimestamp, segment.baseOffset)
            }
            position += batchSize
        }
        return nil
    }

    // MARK: bytes

    /// The fields of a stored batch's header that reading needs.
    struct BatchHeader {
        /// Bytes of the fixed header (through the record count).
        static let size = 61
        var lastOffset: Int64
        var maxTimestamp: Int64
        /// The whole batch, length prefix included.
        var size: Int
    }

    /// The header of the batch at `position` of a segment object, checked to lie inside it.
    private func batchHeader(_ key: RemotePartitionKey, _ segment: RemoteSegment, _ object: String, at position: Int) async throws -> BatchHeader {
        let header = try await bytes(object, size: segment.sizeInBytes, range: position..<(position + BatchHeader.size))
        guard let base = header.getInteger(at: header.readerIndex, as: Int64.self),
              let length = header.getInteger(at: header.readerIndex + 8, as: Int32.self),
              let lastDelta = header.getInteger(at: header.readerIndex + 23, as: Int32.self),
              let maxTimestamp = header.getInteger(at: header.readerIndex + 35, as: Int64.self),
              length >= 49, position + 12 + Int(length) <= segment.sizeInBytes else {
            throw TieringError("\(key): segment \(segment.baseOffset) has a bad batch header at position \(position)")
        }
        return BatchHeader(lastOffset: base + Int64(lastDelta), maxTimestamp: maxTimestamp, size: 12 + Int(length))
    }

    /// The position of the last offset-index entry at or before `relativeOffset` (0 when
    /// none is): batches are walked from there.
    static func floorPosition(_ index: [(UInt32, UInt32)], relativeOffset: UInt32) -> Int {
        var position = 0
        var lo = 0
        var hi = index.count - 1
        while lo <= hi {
            let mid = (lo + hi) / 2
            if index[mid].0 <= relativeOffset {
                position = Int(index[mid].1)
                lo = mid + 1
            } else {
                hi = mid - 1
            }
        }
        return position
    }

    private func offsetIndex(_ key: RemotePartitionKey, _ segment: RemoteSegment) async throws -> [(UInt32, UInt32)] {
        let object = key.segmentKey(segment.baseOffset, ".log")
        if let cached = state.withLockedValue({ $0.offsetIndexes[object] }) { return cached }
        var bytes = try await store.get(key: key.segmentKey(segment.baseOffset, ".index"))
        var entries: [(UInt32, UInt32)] = []
        entries.reserveCapacity(bytes.readableBytes / 8)
        while let rel = bytes.readInteger(as: UInt32.self), let pos = bytes.readInteger(as: UInt32.self) {
            if rel == 0 && pos == 0 && !entries.isEmpty { break }  // preallocated tail
            entries.append((rel, pos))
        }
        state.withLockedValue { state in
            if state.offsetIndexes.count > 1024 { state.offsetIndexes.removeAll() }
            state.offsetIndexes[object] = entries
        }
        return entries
    }

    private func timeIndex(_ key: RemotePartitionKey, _ segment: RemoteSegment) async throws -> [(Int64, UInt32)] {
        let object = key.segmentKey(segment.baseOffset, ".log")
        if let cached = state.withLockedValue({ $0.timeIndexes[object] }) { return cached }
        var bytes = try await store.get(key: key.segmentKey(segment.baseOffset, ".timeindex"))
        var entries: [(Int64, UInt32)] = []
        while let ts = bytes.readInteger(as: Int64.self), let rel = bytes.readInteger(as: UInt32.self) {
            entries.append((ts, rel))
        }
        state.withLockedValue { state in
            if state.timeIndexes.count > 1024 { state.timeIndexes.removeAll() }
            state.timeIndexes[object] = entries
        }
        return entries
    }

    private func chunk(_ object: String, size: Int, index: Int) async throws -> ByteBuffer {
        let store = self.store
        let lower = index * chunkSize
        let upper = min(lower + chunkSize, size)
        return try await cache.chunk(.init(object: object, index: index)) {
            try await store.get(key: object, range: lower..<upper)
        }
    }

    /// The bytes `range` of a segment object, assembled from cached chunks.
    private func bytes(_ object: String, size: Int, range: Range<Int>) async throws -> ByteBuffer {
        let first = range.lowerBound / chunkSize
        let last = (range.upperBound - 1) / chunkSize
        if first == last {
            let chunk = try await chunk(object, size: size, index: first)
            let at = range.lowerBound - first * chunkSize
            guard let slice = chunk.getSlice(at: chunk.readerIndex + at, length: range.count) else {
                throw TieringError("\(object): chunk \(first) is shorter than expected")
            }
            return slice
        }
        var out = ByteBufferAllocator().buffer(capacity: range.count)
        for index in first...last {
            let chunk = try await chunk(object, size: size, index: index)
            let chunkStart = index * chunkSize
            let from = max(range.lowerBound, chunkStart) - chunkStart
            let to = min(range.upperBound, chunkStart + chunk.readableBytes) - chunkStart
            guard to > from, var part = chunk.getSlice(at: chunk.readerIndex + from, length: to - from) else {
                throw TieringError("\(object): chunk \(index) is shorter than expected")
            }
            out.writeBuffer(&part)
        }
        return out
    }

    /// Loads the chunk after `position` in the background, so the next sequential read
    /// finds it in memory. Failures are ignored: the read that needs the chunk retries.
    private func readAhead(_ object: String, size: Int, after position: Int) {
        let next = position / chunkSize + (position % chunkSize == 0 ? 0 : 1)
        guard next * chunkSize < size else { return }
        let cache = self.cache
        // Unstructured on purpose: the fetch must not wait for it, and it ends with its GET.
        Task {
            guard await !cache.isPresentOrLoading(.init(object: object, index: next)) else { return }
            _ = try? await self.chunk(object, size: size, index: next)
        }
    }

    /// Cache counters, for logs and benchmarks.
    public func cacheStatistics() async -> (hits: Int, misses: Int) {
        (await cache.hits, await cache.misses)
    }
}

/// A tiering failure that is not an object store error: a store whose contents disagree
/// with the manifest, or a log that does not continue what is tiered.
public struct TieringError: Error, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
