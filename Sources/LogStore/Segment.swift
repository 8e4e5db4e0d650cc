import KafkaProtocol
import NIOCore

/// One segment of a partition log: `<base>.log` holding batches exactly as written,
/// a sparse offset index `<base>.index` (relative offset int32, position int32) and a
/// time index `<base>.timeindex` (timestamp int64, relative offset int32), Kafka's formats.
///
/// Not synchronised: the owning `PartitionLog` serialises every call that mutates it.
final class Segment: @unchecked Sendable {
    // @unchecked: all mutation happens under PartitionLog's lock; reads of `size` and the
    // index arrays also take that lock (see PartitionLog.read).
    let baseOffset: Int64
    let directory: String
    let log: LogFile
    private let offsetIndexFile: LogFile
    private let timeIndexFile: LogFile

    /// Bytes of whole, valid batches in the log file.
    private(set) var size: Int = 0
    /// The offset after the last batch (the next segment's base when closed).
    private(set) var nextOffset: Int64
    private(set) var maxTimestamp: Int64 = -1
    private(set) var offsetOfMaxTimestamp: Int64 = -1
    /// When the first batch was appended (for `segment.ms`), wall clock ms.
    private(set) var createdAtMs: Int64?
    /// Bytes written but not yet fsynced.
    private(set) var unflushedBytes = 0

    private(set) var offsetIndex: [(relativeOffset: UInt32, position: UInt32)] = []
    private(set) var timeIndex: [(timestamp: Int64, relativeOffset: UInt32)] = []
    private var bytesSinceIndexEntry = 0
    private let indexIntervalBytes: Int

    static func fileName(_ baseOffset: Int64, _ suffix: String) -> String {
        let digits = String(baseOffset)
        return String(repeating: "0", count: max(0, 20 - digits.count)) + digits + suffix
    }

    var logPath: String { directory + "/" + Self.fileName(baseOffset, ".log") }

    init(directory: String, baseOffset: Int64, indexIntervalBytes: Int, create: Bool) throws {
        self.directory = directory
        self.baseOffset = baseOffset
        self.nextOffset = baseOffset
        self.indexIntervalBytes = indexIntervalBytes
        log = try LogFile(path: directory + "/" + Self.fileName(baseOffset, ".log"), create: create)
        offsetIndexFile = try LogFile(path: directory + "/" + Self.fileName(baseOffset, ".index"), create: true)
        timeIndexFile = try LogFile(path: directory + "/" + Self.fileName(baseOffset, ".timeindex"), create: true)
        if create {
            createdAtMs = nil
        }
    }

    // MARK: recovery

    /// Loads the index files; returns false when they are inconsistent with the log, in
    /// which case the caller rebuilds them by scanning.
    func loadIndexes(logSize: Int) throws -> Bool {
        let offsetBytes = try offsetIndexFile.size()
        let timeBytes = try timeIndexFile.size()
        guard offsetBytes % 8 == 0, timeBytes % 12 == 0 else { return false }
        var ob = try offsetIndexFile.read(at: 0, length: offsetBytes)
        var entries: [(UInt32, UInt32)] = []
        entries.reserveCapacity(offsetBytes / 8)
        var lastRel: UInt32 = 0
        var lastPos: UInt32 = 0
        while let rel = ob.readInteger(as: UInt32.self), let pos = ob.readInteger(as: UInt32.self) {
            guard Int(pos) < logSize, entries.isEmpty || (rel > lastRel && pos > lastPos) else { return false }
            entries.append((rel, pos))
            lastRel = rel
            lastPos = pos
        }
        var tb = try timeIndexFile.read(at: 0, length: timeBytes)
        var times: [(Int64, UInt32)] = []
        while let ts = tb.readInteger(as: Int64.self), let rel = tb.readInteger(as: UInt32.self) {
            times.append((ts, rel))
        }
        offsetIndex = entries.map { (relativeOffset: $0.0, position: $0.1) }
        timeIndex = times.map { (timestamp: $0.0, relativeOffset: $0.1) }
        return true
    }

    /// Scans batches from `position` (an index entry's position, or 0), validating each
    /// one (framing, magic, CRC, offsets increasing), rebuilding index entries past it and
    /// truncating the file at the first invalid byte. Returns the bytes truncated.
    @discardableResult
    func recover(from startPosition: Int, rebuildIndexes: Bool) throws -> (truncatedBytes: Int, reason: String?) {
        let fileSize = try log.size()
        if rebuildIndexes || startPosition == 0 {
            offsetIndex = []
            timeIndex = []
            maxTimestamp = -1
            offsetOfMaxTimestamp = -1
        } else {
            offsetIndex.removeAll { Int($0.position) > startPosition }
        }
        var position = startPosition
        var expectedNext: Int64? = nil
        if let last = timeIndex.last {
            maxTimestamp = max(maxTimestamp, last.timestamp)
            offsetOfMaxTimestamp = baseOffset + Int64(last.relativeOffset)
        }
        nextOffset = baseOffset
        bytesSinceIndexEntry = 0
        var reason: String?
        let chunkSize = 1 << 20
        scan: while position < fileSize {
            var chunk = try log.read(at: position, length: min(chunkSize, fileSize - position))
            var consumed = 0
            while true {
                let before = chunk.readerIndex
                let batch: RecordBatch?
                do {
                    batch = try RecordBatch.read(from: &chunk)
                } catch {
                    reason = "\(error)"
                    position += consumed
                    break scan
                }
                guard let batch else { break }
                if let expected = expectedNext, batch.baseOffset < expected {
                    reason = "offset \(batch.baseOffset) does not follow \(expected - 1)"
                    position += consumed
                    break scan
                }
                if batch.baseOffset < baseOffset {
                    reason = "offset \(batch.baseOffset) below the segment base \(baseOffset)"
                    position += consumed
                    break scan
                }
                let batchPosition = position + consumed
                noteAppended(batch, at: batchPosition)
                expectedNext = batch.nextOffset
                consumed += chunk.readerIndex - before
            }
            if consumed == 0 {
                // Not even one batch fits the chunk: either a batch larger than the chunk
                // or a torn tail. Read the whole claimed batch, or stop if it runs past EOF.
                guard let header = try? log.read(at: position, length: 12),
                      let length = header.getInteger(at: header.readerIndex + 8, as: Int32.self),
                      length > 0, position + 12 + Int(length) <= fileSize, Int(length) + 12 > chunkSize
                else {
                    reason = "torn batch at the end (\(fileSize - position) bytes)"
                    break
                }
                var big = try log.read(at: position, length: 12 + Int(length))
                do {
                    guard let batch = try RecordBatch.read(from: &big) else { reason = "short read"; break }
                    if let expected = expectedNext, batch.baseOffset < expected {
                        reason = "offset \(batch.baseOffset) does not follow \(expected - 1)"
                        break
                    }
                    noteAppended(batch, at: position)
                    expectedNext = batch.nextOffset
                    consumed = batch.sizeInBytes
                } catch {
                    reason = "\(error)"
                    break
                }
            }
            position += consumed
        }
        if let expected = expectedNext { nextOffset = expected }
        size = position
        let truncated = fileSize - position
        if truncated > 0 {
            try log.truncate(to: position)
            try log.sync()
        }
        try rewriteIndexFiles()
        return (truncated, truncated > 0 ? (reason ?? "trailing bytes") : nil)
    }

    /// Opens a segment whose batches below `trustedUpTo` were validated before (the
    /// recovery point): everything from the last index entry at or below that offset is
    /// re-validated, the rest is trusted. With inconsistent indexes, everything is scanned.
    func open(trustedUpTo: Int64 = Int64.max) throws -> (truncatedBytes: Int, reason: String?) {
        let fileSize = try log.size()
        if try loadIndexes(logSize: fileSize) {
            let limit = UInt32(truncatingIfNeeded: max(0, min(trustedUpTo - baseOffset, Int64(UInt32.max))))
            offsetIndex.removeAll { $0.relativeOffset > limit }
            timeIndex.removeAll { $0.relativeOffset > (offsetIndex.last?.relativeOffset ?? 0) }
            let start = offsetIndex.last.map { Int($0.position) } ?? 0
            if start > 0, let last = offsetIndex.last {
                nextOffset = baseOffset + Int64(last.relativeOffset)
            }
            return try recover(from: start, rebuildIndexes: start == 0)
        }
        return try recover(from: 0, rebuildIndexes: true)
    }

    private func rewriteIndexFiles() throws {
        try offsetIndexFile.truncate(to: 0)
        try timeIndexFile.truncate(to: 0)
        try appendIndexEntries(offsetFrom: 0, timeFrom: 0)
    }

    // MARK: appending

    /// Records a batch already in the file at `position` in the in-memory state and indexes.
    private func noteAppended(_ batch: RecordBatch, at position: Int) {
        let rel = UInt32(truncatingIfNeeded: batch.baseOffset - baseOffset)
        if offsetIndex.isEmpty || bytesSinceIndexEntry >= indexIntervalBytes {
            if offsetIndex.last.map({ rel > $0.relativeOffset }) ?? true {
                offsetIndex.append((rel, UInt32(position)))
            }
            bytesSinceIndexEntry = 0
        }
        bytesSinceIndexEntry += batch.sizeInBytes
        let ts = batch.maxTimestamp
        if ts > maxTimestamp {
            maxTimestamp = ts
            offsetOfMaxTimestamp = batch.lastOffset
            let lastRel = UInt32(truncatingIfNeeded: batch.lastOffset - baseOffset)
            if timeIndex.last.map({ ts > $0.timestamp && lastRel > $0.relativeOffset }) ?? true {
                timeIndex.append((ts, lastRel))
            }
        }
        nextOffset = batch.nextOffset
        size = position + batch.sizeInBytes
    }

    /// Appends batches (offsets already assigned) to the file and indexes.
    func append(_ batches: [RecordBatch], now: Int64) throws {
        let oldIndexCount = offsetIndex.count
        let oldTimeCount = timeIndex.count
        var position = size
        if batches.count == 1 {
            try log.write(batches[0].buffer, at: position)
        } else {
            var joined = ByteBuffer()
            joined.reserveCapacity(batches.reduce(0) { $0 + $1.sizeInBytes })
            for b in batches {
                var bytes = b.buffer
                joined.writeBuffer(&bytes)
            }
            try log.write(joined, at: position)
        }
        for b in batches {
            noteAppended(b, at: position)
            position += b.sizeInBytes
            unflushedBytes += b.sizeInBytes
        }
        if createdAtMs == nil { createdAtMs = now }
        // The batches are in the log: failing now would make a client retry data that is
        // already there. Index files are an accelerator rebuilt on recovery, so a failed
        // index write (a full disk) is not an append failure.
        try? appendIndexEntries(offsetFrom: oldIndexCount, timeFrom: oldTimeCount)
    }

    private func appendIndexEntries(offsetFrom: Int, timeFrom: Int) throws {
        if offsetIndex.count > offsetFrom {
            var ob = ByteBuffer()
            for e in offsetIndex[offsetFrom...] {
                ob.writeInteger(e.relativeOffset)
                ob.writeInteger(e.position)
            }
            try offsetIndexFile.write(ob, at: offsetFrom * 8)
        }
        if timeIndex.count > timeFrom {
            var tb = ByteBuffer()
            for e in timeIndex[timeFrom...] {
                tb.writeInteger(e.timestamp)
                tb.writeInteger(e.relativeOffset)
            }
            try timeIndexFile.write(tb, at: timeFrom * 12)
        }
    }

    func flush() throws {
        try log.sync()
        try offsetIndexFile.sync()
        try timeIndexFile.sync()
        unflushedBytes = 0
    }

    var isEmpty: Bool { size == 0 }

    // MARK: reading

    /// The file position of the batch containing `offset`, scanning from the nearest
    /// index entry. Nil when the offset is at or past the end of this segment.
    func position(of offset: Int64) throws -> Int? {
        guard offset < nextOffset else { return nil }
        let rel = UInt32(truncatingIfNeeded: max(offset - baseOffset, 0))
        var lo = 0
        var hi = offsetIndex.count - 1
        var start = 0
        while lo <= hi {
            let mid = (lo + hi) / 2
            if offsetIndex[mid].relativeOffset <= rel {
                start = Int(offsetIndex[mid].position)
                lo = mid + 1
            } else {
                hi = mid - 1
            }
        }
        return try scan(from: start) { batch, _ in batch.lastOffset >= offset }
    }

    /// Walks batch headers from `position` until `stop` returns true; returns that batch's
    /// position, or nil at the end. Reads only headers (12 bytes then 61).
    func scan(from position: Int, until stop: (BatchHeader, Int) throws -> Bool) throws -> Int? {
        var pos = position
        while pos < size {
            let header = try BatchHeader(file: log, at: pos)
            if try stop(header, pos) { return pos }
            pos += header.sizeInBytes
        }
        return nil
    }

    /// The length of the whole batches from `position` that fit in `maxBytes` (at least
    /// one batch), never past `size`. Walks batch headers only from the last index entry
    /// before the limit, so a large read costs a few small reads, not a copy.
    func wholeBatches(from position: Int, maxBytes: Int, size: Int) throws -> Int {
        let limit = position + max(maxBytes, 0)
        if limit >= size { return size - position }
        // The last indexed batch start at or before the limit, but not before `position`.
        var lo = 0
        var hi = offsetIndex.count - 1
        var walkFrom = position
        while lo <= hi {
            let mid = (lo + hi) / 2
            let p = Int(offsetIndex[mid].position)
            if p <= limit {
                if p > walkFrom { walkFrom = p }
                lo = mid + 1
            } else {
                hi = mid - 1
            }
        }
        var end = walkFrom
        while end < size {
            let header = try BatchHeader(file: log, at: end)
            if end + header.sizeInBytes > limit { break }
            end += header.sizeInBytes
        }
        if end == position {
            // KIP-74: the first batch goes out whole even when larger than the limit.
            end = position + (try BatchHeader(file: log, at: position)).sizeInBytes
        }
        return end - position
    }

    /// Calls `body` with every whole batch of the segment, reading the file in chunks
    /// (the cleaner's scan; batches are validated as they are read).
    func forEachBatch(_ body: (RecordBatch) throws -> Void) throws {
        var pos = 0
        let chunkSize = 1 << 20
        while pos < size {
            var chunk = try log.read(at: pos, length: min(chunkSize, size - pos))
            var consumed = 0
            while let batch = try RecordBatch.read(from: &chunk) {
                try body(batch)
                consumed += batch.sizeInBytes
            }
            if consumed == 0 {
                // A batch larger than the chunk: read exactly that batch.
                let header = try BatchHeader(file: log, at: pos)
                var whole = try log.read(at: pos, length: header.sizeInBytes)
                guard let batch = try RecordBatch.read(from: &whole) else {
                    throw LogStoreError(.corrupt, "short batch at \(pos) in \(log.path)")
                }
                try body(batch)
                consumed = batch.sizeInBytes
            }
            pos += consumed
        }
    }

    /// Calls `body` with the producer fields of every batch from the one holding `offset`
    /// on, reading only batch headers (used to rebuild producer state after a snapshot).
    func forEachProducerBatch(from offset: Int64, _ body: (ProducerStateTable.BatchInfo) -> Void) throws {
        guard let start = try position(of: max(offset, baseOffset)) else { return }
        var pos = start
        while pos < size {
            var h = try log.read(at: pos, length: RecordBatch.headerSize)
            guard h.readableBytes == RecordBatch.headerSize,
                  let base = h.getInteger(at: h.readerIndex, as: Int64.self),
                  let length = h.getInteger(at: h.readerIndex + 8, as: Int32.self),
                  let attributes = h.getInteger(at: h.readerIndex + 21, as: Int16.self),
                  let delta = h.getInteger(at: h.readerIndex + 23, as: Int32.self),
                  let producerId = h.getInteger(at: h.readerIndex + 43, as: Int64.self),
                  let epoch = h.getInteger(at: h.readerIndex + 51, as: Int16.self),
                  let sequence = h.getInteger(at: h.readerIndex + 53, as: Int32.self)
            else { throw LogStoreError(.corrupt, "bad batch header at \(pos) in \(log.path)") }
            _ = h.readBytes(length: 0)
            if base >= offset {
                let last = sequence < 0 ? -1 : Int32(truncatingIfNeeded: (Int64(sequence) + Int64(delta)) % (Int64(Int32.max) + 1))
                body(.init(producerId: producerId, epoch: epoch, firstSequence: sequence, lastSequence: last,
                           firstOffset: base, lastOffset: base + Int64(delta), isControl: attributes & 0x20 != 0))
            }
            pos += Int(length) + RecordBatch.logOverhead
        }
    }

    /// The first offset whose batch has a timestamp at or past `timestamp`.
    func firstOffset(atOrAfter timestamp: Int64) throws -> (offset: Int64, timestamp: Int64)? {
        guard maxTimestamp >= timestamp else { return nil }
        var startRel: UInt32 = 0
        for e in timeIndex where e.timestamp < timestamp { startRel = e.relativeOffset }
        let startPos = try position(of: baseOffset + Int64(startRel)) ?? 0
        var found: (position: Int, header: BatchHeader)?
        _ = try scan(from: startPos) { header, position in
            if header.maxTimestamp >= timestamp {
                found = (position, header)
                return true
            }
            return false
        }
        guard let found else { return nil }
        // Kafka answers with the first record at or after the time, not the batch start:
        // look inside the batch (decompressing it if needed).
        var bytes = try log.read(at: found.position, length: found.header.sizeInBytes)
        guard let batch = try RecordBatch.read(from: &bytes) else { return (found.header.baseOffset, found.header.maxTimestamp) }
        if batch.isLogAppendTime { return (batch.baseOffset, batch.maxTimestamp) }
        var answer: (Int64, Int64)?
        try LogCleaner.forEachRecord(batch) { record in
            let ts = batch.baseTimestamp + record.timestampDelta
            if answer == nil && ts >= timestamp { answer = (batch.baseOffset + Int64(record.offsetDelta), ts) }
        }
        return answer ?? (batch.baseOffset, batch.maxTimestamp)
    }

    func close() throws {
        if let last = timeIndex.last, last.timestamp < maxTimestamp {
            timeIndex.append((maxTimestamp, UInt32(truncatingIfNeeded: offsetOfMaxTimestamp - baseOffset)))
            try appendIndexEntries(offsetFrom: offsetIndex.count, timeFrom: timeIndex.count - 1)
        }
    }

    func deleteIndexes() throws {
        try FileSystem.remove(directory + "/" + Self.fileName(baseOffset, ".index"))
        try FileSystem.remove(directory + "/" + Self.fileName(baseOffset, ".timeindex"))
    }

    func delete() throws {
        for suffix in [".log", ".index", ".timeindex"] {
            try FileSystem.remove(directory + "/" + Self.fileName(baseOffset, suffix))
        }
    }
}

/// The fixed fields of a batch header read straight from a file.
struct BatchHeader {
    var baseOffset: Int64
    var length: Int32
    var lastOffsetDelta: Int32
    var maxTimestamp: Int64

    var sizeInBytes: Int { Int(length) + RecordBatch.logOverhead }
    var lastOffset: Int64 { baseOffset + Int64(lastOffsetDelta) }

    init(file: LogFile, at position: Int) throws {
        var b = try file.read(at: position, length: 43)
        guard b.readableBytes == 43,
              let base = b.getInteger(at: b.readerIndex, as: Int64.self),
              let length = b.getInteger(at: b.readerIndex + 8, as: Int32.self),
              let delta = b.getInteger(at: b.readerIndex + 23, as: Int32.self),
              let maxTs = b.getInteger(at: b.readerIndex + 35, as: Int64.self),
              length >= Int32(RecordBatch.headerSize - RecordBatch.logOverhead)
        else { throw LogStoreError(.corrupt, "bad batch header at \(position) in \(file.path)") }
        _ = b.readBytes(length: 0)
        baseOffset = base
        self.length = length
        lastOffsetDelta = delta
        maxTimestamp = maxTs
    }

    init(baseOffset: Int64, length: Int32, lastOffsetDelta: Int32, maxTimestamp: Int64) {
        self.baseOffset = baseOffset
        self.length = length
        self.lastOffsetDelta = lastOffsetDelta
        self.maxTimestamp = maxTimestamp
    }
}
