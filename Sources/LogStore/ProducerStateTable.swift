import KafkaProtocol
import NIOCore

/// Idempotent-producer bookkeeping for one partition, as Kafka's ProducerStateManager:
/// per producer id, its epoch and the last five batches it wrote (sequence range and
/// offsets), so a retried batch is answered with its original offsets instead of being
/// written twice, and gaps or stale epochs are refused.
///
/// Not synchronised: the owning `PartitionLog` calls it under its lock.
struct ProducerStateTable {
    struct BatchMetadata: Hashable {
        var firstSequence: Int32
        var lastSequence: Int32
        var firstOffset: Int64
        var lastOffset: Int64
    }

    struct Entry: Hashable {
        var epoch: Int16
        /// Oldest first; at most `retainedBatches`.
        var batches: [BatchMetadata]
    }

    /// Kafka keeps the metadata of the last five batches per producer (max.in.flight is 5).
    static let retainedBatches = 5

    enum Verdict: Equatable {
        case append
        case duplicate(BatchMetadata)
    }

    private(set) var producers: [Int64: Entry] = [:]

    /// Decides what to do with a batch from an idempotent producer, before it is written.
    func check(_ batch: RecordBatch) throws -> Verdict {
        let producerId = batch.producerId
        guard producerId >= 0 else { return .append }
        let epoch = batch.producerEpoch
        let first = batch.baseSequence
        let last = batch.lastSequence
        guard let entry = producers[producerId] else {
            // A producer we have no state for starts at sequence 0 (a fresh producer id, or
            // a new epoch after InitProducerId).
            guard first == 0 else {
                throw LogStoreError(.outOfOrderSequence, "producer \(producerId) is unknown here and its first sequence is \(first), not 0")
            }
            return .append
        }
        if epoch < entry.epoch {
            throw LogStoreError(.invalidProducerEpoch, "producer \(producerId) epoch \(epoch) is older than the current \(entry.epoch)")
        }
        if epoch > entry.epoch {
            guard first == 0 else {
                throw LogStoreError(.outOfOrderSequence, "producer \(producerId) bumped its epoch to \(epoch) but starts at sequence \(first), not 0")
            }
            return .append
        }
        if let original = entry.batches.first(where: { $0.firstSequence == first && $0.lastSequence == last }) {
            return .duplicate(original)
        }
        let expected = entry.batches.last.map { Self.next($0.lastSequence) } ?? 0
        guard first == expected else {
            throw LogStoreError(.outOfOrderSequence, "producer \(producerId) epoch \(epoch) sent sequence \(first); expected \(expected)")
        }
        return .append
    }

    /// The producer fields of a batch, from a whole batch or just its header on disk.
    struct BatchInfo {
        var producerId: Int64
        var epoch: Int16
        var firstSequence: Int32
        var lastSequence: Int32
        var firstOffset: Int64
        var lastOffset: Int64
        var isControl: Bool

        init(_ b: RecordBatch) {
            self.init(producerId: b.producerId, epoch: b.producerEpoch, firstSequence: b.baseSequence, lastSequence: b.lastSequence,
                      firstOffset: b.baseOffset, lastOffset: b.lastOffset, isControl: b.isControl)
        }

        init(producerId: Int64, epoch: Int16, firstSequence: Int32, lastSequence: Int32, firstOffset: Int64, lastOffset: Int64, isControl: Bool) {
            self.producerId = producerId
            self.epoch = epoch
            self.firstSequence = firstSequence
            self.lastSequence = lastSequence
            self.firstOffset = firstOffset
            self.lastOffset = lastOffset
            self.isControl = isControl
        }
    }

    /// Records a batch that was written (or replayed during recovery) at its offsets.
    mutating func update(with batch: BatchInfo) {
        guard batch.producerId >= 0, !batch.isControl else { return }
        let metadata = BatchMetadata(firstSequence: batch.firstSequence, lastSequence: batch.lastSequence,
                                     firstOffset: batch.firstOffset, lastOffset: batch.lastOffset)
        var entry = producers[batch.producerId] ?? Entry(epoch: batch.epoch, batches: [])
        if batch.epoch != entry.epoch {
            entry = Entry(epoch: batch.epoch, batches: [])
        }
        entry.batches.append(metadata)
        if entry.batches.count > Self.retainedBatches { entry.batches.removeFirst(entry.batches.count - Self.retainedBatches) }
        producers[batch.producerId] = entry
    }

    /// Sequences wrap to 0 after Int32.max, as Kafka's do.
    static func next(_ sequence: Int32) -> Int32 {
        sequence == Int32.max ? 0 : sequence + 1
    }

    // MARK: snapshots

    /// `v1`, the offset the snapshot is valid at, then per producer: id, epoch, batch count,
    /// and each batch's sequences and offsets; CRC32C of everything before it at the end.
    func snapshot(at offset: Int64) -> ByteBuffer {
        var b = ByteBuffer()
        b.writeInteger(UInt32(0x5450_5331))  // "TPS1"
        b.writeInteger(offset)
        b.writeInteger(Int32(producers.count))
        for (id, entry) in producers.sorted(by: { $0.key < $1.key }) {
            b.writeInteger(id)
            b.writeInteger(entry.epoch)
            b.writeInteger(Int8(entry.batches.count))
            for m in entry.batches {
                b.writeInteger(m.firstSequence)
                b.writeInteger(m.lastSequence)
                b.writeInteger(m.firstOffset)
                b.writeInteger(m.lastOffset)
            }
        }
        b.writeInteger(CRC32C.checksum(b))
        return b
    }

    /// Reads a snapshot; nil when it is damaged (the caller rebuilds from the log).
    static func load(_ bytes: ByteBuffer) -> (ProducerStateTable, Int64)? {
        guard bytes.readableBytes >= 20 else { return nil }
        let body = bytes.getSlice(at: bytes.readerIndex, length: bytes.readableBytes - 4)!
        guard bytes.getInteger(at: bytes.writerIndex - 4, as: UInt32.self) == CRC32C.checksum(body) else { return nil }
        var b = body
        guard b.readInteger(as: UInt32.self) == 0x5450_5331, let offset = b.readInteger(as: Int64.self),
              let count = b.readInteger(as: Int32.self), count >= 0 else { return nil }
        var table = ProducerStateTable()
        for _ in 0..<count {
            guard let id = b.readInteger(as: Int64.self), let epoch = b.readInteger(as: Int16.self),
                  let n = b.readInteger(as: Int8.self), n >= 0, Int(n) <= retainedBatches else { return nil }
            var batches: [BatchMetadata] = []
            for _ in 0..<n {
                guard let fs = b.readInteger(as: Int32.self), let ls = b.readInteger(as: Int32.self),
                      let fo = b.readInteger(as: Int64.self), let lo = b.readInteger(as: Int64.self) else { return nil }
                batches.append(.init(firstSequence: fs, lastSequence: ls, firstOffset: fo, lastOffset: lo))
            }
            table.producers[id] = Entry(epoch: epoch, batches: batches)
        }
        return (table, offset)
    }
}
