import KafkaProtocol
import Logging
import NIOConcurrencyHelpers
import NIOCore

/// What an append assigned.
public struct AppendInfo: Sendable, Hashable {
    public var firstOffset: Int64
    public var lastOffset: Int64
    /// The broker time stamped on the batches, or -1 with CreateTime.
    public var logAppendTime: Int64
    public var logStartOffset: Int64
    public var recordCount: Int
}

/// Whole batches in a segment file, by position: what a fetch sends. The server can hand
/// the range to the kernel (sendfile) without copying it; `readBytes()` copies it for
/// callers that want the bytes.
public struct FileSlice: Sendable {
    let file: LogFile
    public let position: Int
    public let length: Int

    /// Reads the bytes of the slice.
    public func readBytes() throws -> ByteBuffer {
        try file.read(at: position, length: length)
    }

    /// A new descriptor for the segment file (the caller closes it). The file stays
    /// readable through it even if retention deletes the segment meanwhile.
    public func duplicateDescriptor() throws -> Int32 {
        try file.duplicateDescriptor()
    }
}

/// What a read returned: whole batches, as stored.
public struct ReadInfo: Sendable {
    /// The batches, or nil when there is nothing to return.
    public var slice: FileSlice?
    public var highWatermark: Int64
    public var logStartOffset: Int64
    public var lastStableOffset: Int64 { highWatermark }
    public var byteCount: Int { slice?.length ?? 0 }

    /// The batches' bytes (a copy from the file).
    public var records: ByteBuffer {
        get throws { try slice?.readBytes() ?? ByteBuffer() }
    }
}

/// One partition's log on disk: a directory `<topic>-<partition>/` of segments.
///
/// Appends are serialised by a lock; reads take it only to find the segment and the
/// readable size, then read the file outside it. `flush` is a group commit: one fsync
/// covers every append that finished before it started, and callers that arrive while
/// it runs wait for it and find their data already synced.
public final class PartitionLog: @unchecked Sendable {
    // @unchecked: mutable state sits behind `lock`; `flushLock` orders fsyncs.
    public let topic: String
    public let partition: Int32
    public let directory: String
    private let logger: Logger
    private let lock = NIOLock()
    private let flushLock = NIOLock()

    private var _config: LogConfig
    private var segments: [Segment] = []
    private var _logStartOffset: Int64 = 0
    private var _flushedOffset: Int64 = 0
    private var messagesSinceFlush: Int64 = 0
    private var lastFlushMs: Int64
    private var listeners: [@Sendable () -> Void] = []
    private var producerState = ProducerStateTable()
    /// The cleaner's checkpoint: offsets below it have been compacted.
    private var firstDirtyOffset: Int64 = 0
    /// Tiering: every offset below this is in object storage (set by the uploader from the
    /// partition's manifest). -1 until known, so no segment is deleted locally before its
    /// upload is confirmed.
    private var _tieredOffset: Int64 = -1

    static let checkpointName = "partition.checkpoint"
    static let producerSnapshotName = "producer.snapshot"

    /// Opens (creating if needed) and recovers the log in `directory`.
    public init(directory: String, topic: String, partition: Int32, config: LogConfig, logger: Logger) throws {
        self.directory = directory
        self.topic = topic
        self.partition = partition
        self._config = config
        self.logger = logger
        self.lastFlushMs = currentTimeMillis()
        try FileSystem.createDirectory(directory)
        try load()
    }

    public var config: LogConfig {
        get { lock.withLock { _config } }
        set { lock.withLock { _config = newValue } }
    }

    public var logStartOffset: Int64 { lock.withLock { _logStartOffset } }
    /// The first offset on this disk. Below it (and at or above `logStartOffset`) the
    /// batches are only in tiered storage.
    public var localLogStartOffset: Int64 { lock.withLock { localLogStartLocked } }
    private var localLogStartLocked: Int64 { max(_logStartOffset, segments.first!.baseOffset) }
    /// Offsets below this are confirmed in tiered storage; -1 while unknown.
    public var tieredOffset: Int64 {
        get { lock.withLock { _tieredOffset } }
        set { lock.withLock { _tieredOffset = newValue } }
    }
    public var logEndOffset: Int64 { lock.withLock { segments.last!.nextOffset } }
    /// Single node: everything appended is committed.
    public var highWatermark: Int64 { logEndOffset }
    /// Offsets below this are fsynced.
    public var flushedOffset: Int64 { lock.withLock { _flushedOffset } }
    public var sizeInBytes: Int64 { lock.withLock { segments.reduce(0) { $0 + Int64($1.size) } } }
    public var segmentCount: Int { lock.withLock { segments.count } }

    /// Called (outside the lock) after every append, to wake waiting fetches.
    public func addAppendListener(_ listener: @escaping @Sendable () -> Void) {
        lock.withLock { listeners.append(listener) }
    }

    // MARK: recovery

    private func load() throws {
        let names = try FileSystem.list(directory)
        // Leftover temp files from an interrupted checkpoint write.
        // Leftovers of an interrupted checkpoint write or cleaning pass: the originals are intact.
        for name in names where name.hasSuffix(".tmp") || name.hasSuffix(".cleaned") { try FileSystem.remove(directory + "/" + name) }
        let bases = names.compactMap { name -> Int64? in
            guard name.hasSuffix(".log"), name.count == 24 else { return nil }
            return Int64(name.dropLast(4))
        }.sorted()
        // Index files without a log (a crash between deleting files) are removed.
        for name in names where name.hasSuffix(".index") || name.hasSuffix(".timeindex") {
            let base = Int64(name.split(separator: ".").first ?? "")
            if let base, !bases.contains(base) { try FileSystem.remove(directory + "/" + name) }
        }
        var recoveryPoint: Int64 = 0
        if let bytes = try FileSystem.readFile(directory + "/" + Self.checkpointName) {
            let parts = String(decoding: bytes, as: UTF8.self).split(whereSeparator: { $0 == " " || $0 == "\n" })
            if parts.count >= 3, parts[0] == "v1", let rp = Int64(parts[1]), let ls = Int64(parts[2]) {
                recoveryPoint = rp
                _logStartOffset = ls
                if parts.count >= 4, let dirty = Int64(parts[3]) { firstDirtyOffset = dirty }
            }
        }
        let started = currentTimeMillis()
        var recovered = 0
        for (i, base) in bases.enumerated() {
            let segment = try Segment(directory: directory, baseOffset: base, indexIntervalBytes: _config.indexIntervalBytes, create: false)
            let nextBase = i + 1 < bases.count ? bases[i + 1] : Int64.max
            let result: (truncatedBytes: Int, reason: String?)
            if nextBase <= recoveryPoint {
                // Wholly before the recovery point: trusted, checked only from its last index entry.
                result = try segment.open()
            } else if recoveryPoint > base {
                // Holds the recovery point (the active segment after a clean shutdown):
                // only what follows it is re-validated.
                result = try segment.open(trustedUpTo: recoveryPoint)
                recovered += 1
            } else {
                result = try segment.recover(from: 0, rebuildIndexes: true)
                recovered += 1
            }
            if result.truncatedBytes > 0 {
                logger.warning("truncated a corrupt or torn tail", metadata: [
                    "kafka.topic": "\(topic)", "kafka.partition": "\(partition)",
                    "segment": "\(segment.logPath)", "bytes": "\(result.truncatedBytes)",
                    "reason": "\(result.reason ?? "")",
                ])
            }
            if let previous = segments.last, previous.nextOffset > segment.baseOffset, !segment.isEmpty {
                throw LogStoreError(.corrupt, "segment \(segment.logPath) overlaps the one before it")
            }
            segments.append(segment)
        }
        if segments.isEmpty {
            segments.append(try Segment(directory: directory, baseOffset: _logStartOffset, indexIntervalBytes: _config.indexIntervalBytes, create: true))
        }
        let end = segments.last!.nextOffset
        // With tiering, history below the first local segment lives in the store: the log
        // start stays where the checkpoint says.
        if _logStartOffset < segments.first!.baseOffset && !_config.isTiered { _logStartOffset = segments.first!.baseOffset }
        if _logStartOffset > end { _logStartOffset = end }
        _flushedOffset = end
        if recovered > 0 {
            logger.info("recovered partition", metadata: [
                "kafka.topic": "\(topic)", "kafka.partition": "\(partition)",
                "segments.scanned": "\(recovered)", "log.end.offset": "\(end)",
                "ms": "\(currentTimeMillis() - started)",
            ])
        }
        try loadProducerState()
        // Everything now on disk was validated; record it so the next start skips the scan.
        try writeCheckpointLocked()
    }

    /// Producer state: the snapshot taken at the last checkpoint, then every batch after it
    /// (batch headers only). A snapshot past the end of the recovered log (its tail was
    /// lost) or a damaged one is ignored and the state is rebuilt from the whole log.
    private func loadProducerState() throws {
        let end = segments.last!.nextOffset
        var from = segments.first!.baseOffset
        producerState = ProducerStateTable()
        if let bytes = try FileSystem.readFile(directory + "/" + Self.producerSnapshotName),
           let (table, offset) = ProducerStateTable.load(ByteBuffer(bytes: bytes)), offset <= end {
            producerState = table
            from = offset
        }
        for segment in segments where segment.nextOffset > from {
            try segment.forEachProducerBatch(from: from) { producerState.update(with: $0) }
        }
    }

    private func writeCheckpointLocked() throws {
        let text = "v1 \(_flushedOffset) \(_logStartOffset) \(firstDirtyOffset)\n"
        try FileSystem.writeAtomically(directory + "/" + Self.checkpointName, Array(text.utf8))
    }

    // MARK: append

    /// Validates `records` (a produce request's batches) and appends them, assigning
    /// offsets by rewriting each batch's base offset. Nothing is written unless every
    /// batch is valid.
    public func append(_ records: ByteBuffer, now: Int64 = currentTimeMillis()) throws -> AppendInfo {
        var reader = RecordBatchReader(records)
        var batches: [RecordBatch] = []
        let maxBytes = config.maxMessageBytes
        do {
            while let batch = try reader.next() {
                guard batch.sizeInBytes <= maxBytes else {
                    throw LogStoreError(.recordTooLarge, "batch of \(batch.sizeInBytes) bytes exceeds max.message.bytes \(maxBytes)")
                }
                guard batch.recordCount > 0, batch.lastOffsetDelta == batch.recordCount - 1 || batch.compression != CompressionCodec.none else {
                    throw LogStoreError(.invalidRecord, "batch has \(batch.recordCount) records but last offset delta \(batch.lastOffsetDelta)")
                }
                batches.append(batch)
            }
        } catch let error as KafkaProtocolError {
            if error.code == .legacyMessageFormat { throw LogStoreError(.unsupportedFormat, error.message) }
            throw LogStoreError(.corrupt, error.message)
        }
        guard reader.remainingBytes == 0 else {
            throw LogStoreError(.corrupt, "\(reader.remainingBytes) bytes after the last whole batch")
        }
        guard !batches.isEmpty else { throw LogStoreError(.invalidRecord, "no record batches") }
        if config.compact {
            // Kafka refuses keyless records on compacted topics: compaction could not keep them.
            for batch in batches {
                do {
                    try LogCleaner.forEachRecord(batch) { record in
                        guard record.key != nil else {
                            throw LogStoreError(.invalidRecord, "compacted topic cannot accept a record without a key")
                        }
                    }
                } catch let error as LogStoreError {
                    throw error
                } catch {
                    throw LogStoreError(.corrupt, "cannot read the records of a batch: \(error)")
                }
            }
        }

        let (info, notify, flushNeeded) = try lock.withLock { () throws -> (AppendInfo, [@Sendable () -> Void], Bool) in
            let config = _config
            var offset = segments.last!.nextOffset
            // Idempotence: retries of batches already written are answered with their
            // original offsets and not written again; gaps and stale epochs are refused.
            var state = producerState
            var fresh: [RecordBatch] = []
            var duplicateOf: ProducerStateTable.BatchMetadata?
            var count = 0
            let appendTime: Int64 = config.logAppendTime ? now : -1
            for var batch in batches {
                switch try state.check(batch) {
                case .duplicate(let original):
                    if duplicateOf == nil { duplicateOf = original }
                case .append:
                    batch.setBaseOffset(offset)
                    batch.setPartitionLeaderEpoch(0)
                    if config.logAppendTime { batch.setLogAppendTime(now) }
                    state.update(with: .init(batch))
                    offset = batch.nextOffset
                    count += Int(batch.recordCount)
                    fresh.append(batch)
                }
            }
            guard let firstFresh = fresh.first else {
                let original = duplicateOf!
                return (AppendInfo(firstOffset: original.firstOffset, lastOffset: original.lastOffset, logAppendTime: -1,
                                   logStartOffset: _logStartOffset, recordCount: 0), [], false)
            }
            batches = fresh
            let first = duplicateOf?.firstOffset ?? firstFresh.baseOffset
            let total = batches.reduce(0) { $0 + $1.sizeInBytes }
            var active = segments.last!
            if !active.isEmpty {
                let tooBig = active.size + total > config.segmentBytes
                let tooOld = active.createdAtMs.map { now - $0 >= config.segmentMs } ?? false
                let offsetOverflow = offset - active.baseOffset > Int64(Int32.max)
                if tooBig || tooOld || offsetOverflow {
                    active = try rollLocked(now: now)
                }
            }
            try active.append(batches, now: now)
            producerState = state
            messagesSinceFlush += Int64(count)
            let flushNeeded = messagesSinceFlush >= config.flushMessages
            return (AppendInfo(firstOffset: first, lastOffset: offset - 1, logAppendTime: appendTime,
                               logStartOffset: _logStartOffset, recordCount: count), listeners, flushNeeded)
        }
        if flushNeeded { try flush(upTo: info.lastOffset + 1) }
        for listener in notify { listener() }
        return info
    }

    private func rollLocked(now: Int64) throws -> Segment {
        let old = segments.last!
        try old.close()
        let segment = try Segment(directory: directory, baseOffset: old.nextOffset, indexIntervalBytes: _config.indexIntervalBytes, create: true)
        segments.append(segment)
        FileSystem.syncDirectory(directory)
        return segment
    }

    /// Closes the active segment and starts a new one (tests and tiering use this).
    public func roll() throws {
        try lock.withLock {
            if !segments.last!.isEmpty { _ = try rollLocked(now: currentTimeMillis()) }
        }
    }

    // MARK: durability

    /// Makes every offset below `offset` durable. One fsync serves all callers waiting
    /// on it (group commit). Blocking: call it off the event loop.
    public func flush(upTo offset: Int64) throws {
        if lock.withLock({ _flushedOffset >= offset }) { return }
        try flushLock.withLock {
            let (toSync, end) = lock.withLock { () -> ([Segment], Int64) in
                (segments.filter { $0.nextOffset > _flushedOffset }, segments.last!.nextOffset)
            }
            if lock.withLock({ _flushedOffset >= offset }) { return }
            for segment in toSync { try segment.flush() }
            lock.withLock {
                _flushedOffset = max(_flushedOffset, end)
                messagesSinceFlush = 0
                lastFlushMs = currentTimeMillis()
            }
        }
    }

    /// Flushes everything written so far.
    public func flush() throws {
        try flush(upTo: logEndOffset)
    }

    /// The background policy: flush when `flush.ms` has passed since the last flush.
    public func flushIfDue(now: Int64) throws {
        let due = lock.withLock { () -> Bool in
            guard _flushedOffset < segments.last!.nextOffset else { return false }
            return _config.flushMs != Int64.max && now - lastFlushMs >= _config.flushMs
        }
        if due { try flush() }
    }

    /// Makes everything written durable and records it: the recovery point (so the next
    /// start skips validated data) and the producer-state snapshot at the same offset.
    /// Holds the partition lock across one fsync, so the snapshot never claims batches
    /// a crash could still lose.
    public func checkpoint() throws {
        try lock.withLock {
            let end = segments.last!.nextOffset
            for segment in segments where segment.nextOffset > _flushedOffset { try segment.flush() }
            _flushedOffset = max(_flushedOffset, end)
            messagesSinceFlush = 0
            try FileSystem.writeAtomically(directory + "/" + Self.producerSnapshotName,
                                           Array(producerState.snapshot(at: end).readableBytesView))
            try writeCheckpointLocked()
        }
    }

    /// Flushes and checkpoints: after this a restart scans nothing.
    public func close() throws {
        try lock.withLock { try segments.last!.close() }
        try checkpoint()
    }

    /// Removes the whole partition directory.
    public func delete() throws {
        try lock.withLock {
            segments.removeAll()
            try FileSystem.removeTree(directory)
        }
    }

    // MARK: reading

    /// Whole batches starting with the one that holds `offset`, up to `maxBytes` (at least
    /// one batch, as KIP-74 requires), never past the high watermark or one segment.
    public func read(from offset: Int64, maxBytes: Int) throws -> ReadInfo {
        let (segment, segmentSize, start, end, localStart) = lock.withLock { () -> (Segment?, Int, Int64, Int64, Int64) in
            let end = segments.last!.nextOffset
            var found: Segment?
            for s in segments.reversed() where s.baseOffset <= offset {
                found = s
                break
            }
            if found == nil { found = segments.first }
            return (found, found?.size ?? 0, _logStartOffset, end, localLogStartLocked)
        }
        guard offset >= start, offset <= end else {
            throw LogStoreError(.offsetOutOfRange, "offset \(offset) is outside \(start)..<\(end)")
        }
        if offset < localStart {
            throw LogStoreError(.offsetTiered, "offset \(offset) is below the local log start \(localStart): it is in tiered storage")
        }
        guard offset < end, let segment else {
            return ReadInfo(slice: nil, highWatermark: end, logStartOffset: start)
        }
        let slice = try lock.withLock { () throws -> (position: Int, length: Int)? in
            guard let position = try segment.position(of: offset) else { return nil }
            return (position, try segment.wholeBatches(from: position, maxBytes: maxBytes, size: segmentSize))
        }
        guard let slice else {
            // The offset lies past this segment's last batch (a gap left by compaction):
            // continue in the next segment.
            let next = lock.withLock { segments.first { $0.baseOffset > segment.baseOffset } }
            guard let next else { return ReadInfo(slice: nil, highWatermark: end, logStartOffset: start) }
            return try read(from: next.baseOffset, maxBytes: maxBytes)
        }
        return ReadInfo(slice: FileSlice(file: segment.log, position: slice.position, length: slice.length),
                        highWatermark: end, logStartOffset: start)
    }

    /// The first offset with a timestamp at or after `timestamp` (ListOffsets), or nil.
    public func offset(forTimestamp timestamp: Int64) throws -> (offset: Int64, timestamp: Int64)? {
        try lock.withLock {
            for segment in segments where segment.maxTimestamp >= timestamp {
                if let r = try segment.firstOffset(atOrAfter: timestamp) {
                    return (max(r.offset, _logStartOffset), r.timestamp)
                }
            }
            return nil
        }
    }

    /// The offset and timestamp of the record with the largest timestamp.
    public func maxTimestampOffset() -> (offset: Int64, timestamp: Int64)? {
        lock.withLock {
            var best: (Int64, Int64)?
            for s in segments where s.maxTimestamp >= 0 {
                if best == nil || s.maxTimestamp > best!.1 { best = (s.offsetOfMaxTimestamp, s.maxTimestamp) }
            }
            return best
        }
    }

    // MARK: compaction

    /// One cleaning pass over the closed segments old enough for `min.compaction.lag.ms`,
    /// when their dirty share reaches `min.cleanable.dirty.ratio`. Returns nil when there
    /// was nothing to do. Blocking: run it off the event loops.
    @discardableResult
    public func compact(now: Int64 = currentTimeMillis(), force: Bool = false) throws -> CleanResult? {
        let (candidates, config, dirtyFrom) = lock.withLock { () -> ([Segment], LogConfig, Int64) in
            guard _config.compact else { return ([], _config, 0) }
            var closed = Array(segments.dropLast())
            if let young = closed.firstIndex(where: { $0.maxTimestamp > now - _config.minCompactionLagMs }) {
                closed = Array(closed[..<young])
            }
            return (closed, _config, firstDirtyOffset)
        }
        guard !candidates.isEmpty else { return nil }
        let total = candidates.reduce(0) { $0 + $1.size }
        let dirty = candidates.filter { $0.nextOffset > dirtyFrom }.reduce(0) { $0 + $1.size }
        guard total > 0, dirty > 0, force || Double(dirty) / Double(total) >= config.minCleanableDirtyRatio else { return nil }

        let (latest, read) = try LogCleaner.latestOffsets(candidates)
        var result = CleanResult(segments: 0, bytesBefore: 0, bytesAfter: 0, recordsRead: read, recordsRemoved: 0)
        for segment in candidates {
            let cleanedPath = segment.logPath + ".cleaned"
            let (bytes, removed) = try LogCleaner.rewrite(segment, to: cleanedPath, latest: latest,
                                                          tombstoneHorizon: now - config.deleteRetentionMs)
            result.bytesBefore += segment.size
            result.recordsRemoved += removed
            try lock.withLock {
                guard let index = segments.firstIndex(where: { $0 === segment }) else {
                    // Retention removed it meanwhile.
                    try FileSystem.remove(cleanedPath)
                    return
                }
                // Indexes go first: a crash after this rebuilds them from whichever log is there.
                try segment.deleteIndexes()
                if bytes == 0 && index > 0 {
                    try FileSystem.remove(cleanedPath)
                    try FileSystem.remove(segment.logPath)
                    segments.remove(at: index)
                } else {
                    try FileSystem.rename(cleanedPath, segment.logPath)
                    let cleaned = try Segment(directory: directory, baseOffset: segment.baseOffset,
                                              indexIntervalBytes: _config.indexIntervalBytes, create: false)
                    _ = try cleaned.recover(from: 0, rebuildIndexes: true)
                    segments[index] = cleaned
                    result.bytesAfter += cleaned.size
                }
                FileSystem.syncDirectory(directory)
                result.segments += 1
            }
        }
        try lock.withLock {
            firstDirtyOffset = max(firstDirtyOffset, candidates.last!.nextOffset)
            try writeCheckpointLocked()
        }
        return result
    }

    // MARK: retention

    /// Deletes closed segments by `retention.ms` and `retention.bytes`, oldest first, and
    /// any wholly below the log start offset. Returns how many were deleted.
    @discardableResult
    public func applyRetention(now: Int64 = currentTimeMillis()) throws -> Int {
        try lock.withLock {
            let config = _config
            var total = segments.reduce(0) { $0 + Int64($1.size) }
            var deleted = 0
            // With tiering, the disk keeps only what local retention says, and only segments
            // already confirmed in the store may go; total retention is the uploader's job.
            let tiering = config.isTiered
            let retentionMs = tiering ? config.effectiveLocalRetentionMs : config.retentionMs
            let retentionBytes = tiering ? config.effectiveLocalRetentionBytes : config.retentionBytes
            // An active segment that has expired as a whole is rolled so it can go too.
            if let active = segments.last, !active.isEmpty, config.deleteOldSegments, retentionMs >= 0,
               active.maxTimestamp >= 0, now - active.maxTimestamp > retentionMs {
                _ = try rollLocked(now: now)
            }
            while segments.count > 1 {
                let oldest = segments[0]
                let byStart = !oldest.isEmpty && oldest.nextOffset <= _logStartOffset
                let age = oldest.maxTimestamp >= 0 ? oldest.maxTimestamp : (FileSystem.fileModificationTimeMs(oldest.logPath) ?? now)
                let deletable = config.deleteOldSegments && (!tiering || oldest.nextOffset <= _tieredOffset)
                let byTime = deletable && retentionMs >= 0 && now - age > retentionMs
                let bySize = deletable && retentionBytes >= 0 && total - Int64(oldest.size) >= retentionBytes
                guard byStart || byTime || bySize else { break }
                segments.removeFirst()
                total -= Int64(oldest.size)
                try oldest.delete()
                deleted += 1
                // Only deleting data moves the start; a segment already below it (DeleteRecords),
                // or emptied by compaction, goes without changing what is readable.
                if (byTime || bySize) && !tiering {
                    _logStartOffset = max(_logStartOffset, segments[0].baseOffset)
                }
            }
            if deleted > 0 {
                try writeCheckpointLocked()
                logger.info("retention deleted segments", metadata: [
                    "kafka.topic": "\(topic)", "kafka.partition": "\(partition)",
                    "segments": "\(deleted)", "log.start.offset": "\(_logStartOffset)",
                ])
            }
            return deleted
        }
    }

    /// DeleteRecords: moves the log start offset to `offset` (-1: the high watermark).
    public func deleteRecords(before offset: Int64) throws -> Int64 {
        let newStart = try lock.withLock { () throws -> Int64 in
            let end = segments.last!.nextOffset
            let target = offset == -1 ? end : offset
            guard target >= 0, target <= end else {
                throw LogStoreError(.offsetOutOfRange, "offset \(offset) is beyond the high watermark \(end)")
            }
            _logStartOffset = max(_logStartOffset, target)
            try writeCheckpointLocked()
            return _logStartOffset
        }
        try applyRetention()
        return newStart
    }

    // MARK: tiering

    /// A closed segment's files, for the uploader.
    public struct ClosedSegment: Sendable, Hashable {
        public var baseOffset: Int64
        /// One past the last offset in the segment.
        public var nextOffset: Int64
        public var sizeInBytes: Int
        public var maxTimestamp: Int64
        public var logPath: String
        public var offsetIndexPath: String
        public var timeIndexPath: String
    }

    /// Closed, fsynced segments at or after `offset`, oldest first: what may be uploaded.
    /// Unflushed data is never offered, so the store can never hold offsets a crash could
    /// still take from the local log.
    public func closedSegments(from offset: Int64) -> [ClosedSegment] {
        lock.withLock {
            segments.dropLast().filter { $0.baseOffset >= offset && !$0.isEmpty && $0.nextOffset <= _flushedOffset }.map {
                ClosedSegment(baseOffset: $0.baseOffset, nextOffset: $0.nextOffset, sizeInBytes: $0.size, maxTimestamp: $0.maxTimestamp,
                              logPath: $0.logPath,
                              offsetIndexPath: directory + "/" + Segment.fileName($0.baseOffset, ".index"),
                              timeIndexPath: directory + "/" + Segment.fileName($0.baseOffset, ".timeindex"))
            }
        }
    }

    /// Bytes and segments on disk not yet confirmed in the store (the active segment counts
    /// once it has data).
    public var untieredBytesAndSegments: (bytes: Int64, segments: Int) {
        lock.withLock {
            let waiting = segments.filter { !$0.isEmpty && $0.nextOffset > max(_tieredOffset, _logStartOffset) }
            return (waiting.reduce(0) { $0 + Int64($1.size) }, waiting.count)
        }
    }

    /// Starts an empty local log where the tiered history ends (a broker started on an
    /// empty data directory with the same store), so new appends continue its offsets.
    /// Returns false, changing nothing, when the local log already has data.
    @discardableResult
    public func restoreFromTieredStorage(logStartOffset: Int64, endOffset: Int64) throws -> Bool {
        try lock.withLock {
            guard segments.count == 1, segments[0].isEmpty, segments[0].baseOffset <= endOffset else { return false }
            if segments[0].baseOffset < endOffset {
                try segments[0].delete()
                segments = [try Segment(directory: directory, baseOffset: endOffset, indexIntervalBytes: _config.indexIntervalBytes, create: true)]
                FileSystem.syncDirectory(directory)
            }
            _logStartOffset = min(max(_logStartOffset, logStartOffset), endOffset)
            _flushedOffset = endOffset
            _tieredOffset = endOffset
            producerState = ProducerStateTable()
            try writeCheckpointLocked()
            logger.info("restored partition from tiered storage", metadata: [
                "kafka.topic": "\(topic)", "kafka.partition": "\(partition)",
                "log.start.offset": "\(_logStartOffset)", "log.end.offset": "\(endOffset)",
            ])
            return true
        }
    }
}
