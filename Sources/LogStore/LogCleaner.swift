import KafkaCompression
import KafkaProtocol
import NIOCore

/// What one cleaning pass did.
public struct CleanResult: Sendable, Hashable {
    public var segments: Int
    public var bytesBefore: Int
    public var bytesAfter: Int
    public var recordsRead: Int
    public var recordsRemoved: Int
}

/// Compaction (`cleanup.policy=compact`): the latest record of each key survives in the
/// closed segments, with its original offset; tombstones (null values) go once older than
/// `delete.retention.ms`. Each segment is rewritten to `<base>.log.cleaned` outside the
/// partition lock, fsynced, then swapped in by an atomic rename under the lock, so
/// produce and fetch wait only for the swap and a crash leaves either the old or the new
/// file, never a mix.
enum LogCleaner {
    /// Decompressed batches larger than this are refused rather than buffered.
    static let maximumDecompressedBatch = 256 << 20

    /// Calls `body` with every record of the batch (decompressing it when needed).
    static func forEachRecord(_ batch: RecordBatch, _ body: (Record) throws -> Void) throws {
        var records = batch.compression == CompressionCodec.none
            ? try batch.records()
            : try batch.decompressedRecords(maximumSize: maximumDecompressedBatch)
        while let record = try records.next() { try body(record) }
    }

    /// Key → offset of its latest record, over `segments`.
    static func latestOffsets(_ segments: [Segment]) throws -> ([ByteBuffer: Int64], Int) {
        var latest: [ByteBuffer: Int64] = [:]
        var read = 0
        for segment in segments {
            try segment.forEachBatch { batch in
                guard !batch.isControl else { return }
                try forEachRecord(batch) { record in
                    read += 1
                    // Copy the key: a slice would keep the whole read chunk alive.
                    guard let key = record.key else { return }
                    latest[ByteBuffer(buffer: key)] = batch.baseOffset + Int64(record.offsetDelta)
                }
            }
        }
        return (latest, read)
    }

    /// Writes the surviving batches of `segment` to `path`; returns bytes written and
    /// records removed.
    static func rewrite(_ segment: Segment, to path: String, latest: [ByteBuffer: Int64],
                        tombstoneHorizon: Int64) throws -> (bytes: Int, removed: Int) {
        let out = try LogFile(path: path, create: true)
        try out.truncate(to: 0)
        var pending = ByteBuffer()
        var written = 0
        var removed = 0
        func spill() throws {
            guard pending.readableBytes > 0 else { return }
            try out.write(pending, at: written)
            written += pending.readableBytes
            pending.clear()
        }
        try segment.forEachBatch { batch in
            if batch.isControl {
                removed += Int(batch.recordCount)
                return
            }
            var kept: [Record] = []
            var total = 0
            try forEachRecord(batch) { record in
                total += 1
                let offset = batch.baseOffset + Int64(record.offsetDelta)
                let isLatest = record.key.map { latest[$0] == offset } ?? false
                let expiredTombstone = record.value == nil && batch.maxTimestamp < tombstoneHorizon
                if isLatest && !expiredTombstone { kept.append(record) }
            }
            removed += total - kept.count
            if kept.isEmpty { return }
            if kept.count == total && batch.compression == CompressionCodec.none {
                var bytes = batch.buffer
                pending.writeBuffer(&bytes)
            } else {
                var builder = RecordBatchBuilder(baseTimestamp: batch.baseTimestamp)
                builder.baseOffset = batch.baseOffset
                builder.partitionLeaderEpoch = batch.partitionLeaderEpoch
                builder.producerId = batch.producerId
                builder.producerEpoch = batch.producerEpoch
                builder.baseSequence = batch.baseSequence
                builder.isLogAppendTime = batch.isLogAppendTime
                for r in kept {
                    builder.append(key: r.key, value: r.value, timestamp: batch.baseTimestamp + r.timestampDelta,
                                   headers: r.headers, offsetDelta: r.offsetDelta)
                }
                // Keep the batch's offset and sequence range, so offsets and producer state stay as they were.
                builder.lastOffsetDelta = batch.lastOffsetDelta
                builder.setMaxTimestamp(batch.maxTimestamp)
                var bytes = builder.build().buffer
                pending.writeBuffer(&bytes)
            }
            if pending.readableBytes >= 1 << 20 { try spill() }
        }
        try spill()
        try out.sync()
        return (written, removed)
    }
}
