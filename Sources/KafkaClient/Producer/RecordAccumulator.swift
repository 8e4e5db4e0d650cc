import KafkaCompression
import KafkaProtocol
import NIOCore

/// Where a record's outcome goes.
enum DeliveryTarget: Sendable {
    /// `send`, waiting for the record's metadata.
    case continuation(CheckedContinuation<KafkaProducer.RecordMetadata, any Error>)
    /// `sendAndForget` with a completion closure.
    case closure(@Sendable (Result<KafkaProducer.RecordMetadata, KafkaClientError>) -> Void)
    /// `sendAndForget` reporting to `deliveryReports`.
    case report(UInt64)
}

/// A record of a batch whose outcome someone waits for.
struct PendingDelivery {
    var index: Int32
    var timestamp: Int64
    var target: DeliveryTarget
}

/// A batch of one partition, from its first record to its answer.
///
/// Records are appended to `writer` until the batch closes; on its first send the batch
/// gets its sequence and is encoded (and compressed) once into `built`, and every retry
/// resends exactly those bytes, so the broker recognises a retry of a batch it already
/// wrote by its producer id and sequence.
struct ProducerBatch {
    let serial: UInt64
    let partition: Int32
    var writer: ProducerBatchWriter?
    var built: RecordBatch?
    var baseSequence: Int32 = -1
    var recordCount: Int32 = 0
    var reservedBytes = 0
    let createdAt: NIODeadline
    var attempts = 0
    var retryAt: NIODeadline?
    var deliveries: [PendingDelivery] = []
    /// The serials from `serial` up to `serial + serialSpan` belong to this batch: the
    /// batches it is split into when the broker finds it too large take serials from
    /// that range, so they keep its place in the partition's order (and in `flush`).
    var serialSpan = ProducerBatch.serialStride

    /// Serials given to new batches are this far apart: room for 20 rounds of halving.
    static let serialStride: UInt64 = 1 << 20

    var uncompressedSize: Int { writer?.size ?? built?.sizeInBytes ?? 0 }
}

/// A partition's batches: one open for appends, then closed ones in send order, then the
/// ones on the wire.
struct PartitionQueue {
    var open: ProducerBatch?
    /// The open batch's size and record count, kept here so the append path reads two
    /// integers instead of projecting into the batch.
    var openSize = 0
    var openCount: Int32 = 0
    var ready = CircularBuffer<ProducerBatch>()
    /// Sent and not answered yet, in send (and sequence) order.
    var inFlight: [ProducerBatch] = []
    /// Answered with a retriable error while later batches were still on the wire; they
    /// go back to the front of `ready` once nothing of the partition is in flight, so
    /// retries keep their sequence order.
    var toRetry: [ProducerBatch] = []
    var nextSequence: Int32 = 0
    /// Sequenced batches from the oldest one not yet acknowledged to the newest sent, and
    /// whether each is acknowledged. The broker recognises a retry only among the last
    /// five batches it wrote for the partition, so a new batch waits while this holds
    /// five: a batch answered after a newer one was written (its response lost with a
    /// connection) must still be within reach when it is resent.
    var window = CircularBuffer<(serial: UInt64, acknowledged: Bool)>()

    mutating func acknowledge(_ serial: UInt64) {
        guard let i = window.firstIndex(where: { $0.serial == serial }) else { return }
        window[i].acknowledged = true
        while let first = window.first, first.acknowledged { window.removeFirst() }
    }

    var isIdle: Bool { open == nil && ready.isEmpty && inFlight.isEmpty && toRetry.isEmpty }
}

struct TopicQueue {
    var partitions: [PartitionQueue] = []
    var leaders: [Int32] = []
    /// The partition records without a key go to until its batch completes (KIP-480).
    var sticky: Int32 = -1
    /// The last metadata error for the topic, when it has no partitions.
    var error: KafkaErrorCode?
}

/// One Produce request to send: at most one batch per partition, as Kafka requires.
struct ProduceRequestPlan: Sendable {
    struct Entry: Sendable {
        var topic: String
        var partition: Int32
        var serial: UInt64
        var batch: RecordBatch
    }
    var node: Int32
    var entries: [Entry]
    var bytes: Int
}

/// What a Produce request came back with.
enum ProduceOutcome: Sendable {
    /// The response (nil with acks=0, which has none).
    case response(ProduceResponse?)
    /// The request failed as a whole (connection closed, timeout, ...).
    case failure(KafkaClientError)
}

/// Work for the caller once the lock is released: outcomes to hand out and waiters to wake.
struct Completions {
    var deliveries: [(DeliveryTarget, Result<KafkaProducer.RecordMetadata, KafkaClientError>)] = []
    var reports: [KafkaProducer.DeliveryReport] = []
    var memoryGranted: [CheckedContinuation<Void, any Error>] = []
    var memoryFailed: [(CheckedContinuation<Void, any Error>, KafkaClientError)] = []
    var flushed: [CheckedContinuation<Void, Never>] = []

    var isEmpty: Bool {
        deliveries.isEmpty && reports.isEmpty && memoryGranted.isEmpty && memoryFailed.isEmpty && flushed.isEmpty
    }
}

/// The producer's state: per-partition batches, memory accounting, in-flight requests,
/// the producer id and sequences. Inputs are mutating functions returning what the
/// caller must do; no I/O, clock or logging happens here, so retries, reordering and
/// back-pressure are testable with plain values.
struct RecordAccumulator {
    enum Lifecycle { case running, closing, closed }

    struct Settings {
        var batchSize: Int
        var lingerMs: Int
        var bufferMemory: Int
        var maxInFlight: Int
        var maxRequestSize: Int
        var retries: Int
        var retryBackoffMs: Int
        var deliveryTimeoutMs: Int
        var idempotent: Bool
        var compression: CompressionCodec
        var compressionLevel: Int?
        var deliveryReports: Bool
        /// When batches start lingering; injectable so the state machine runs on fake time.
        var clock: @Sendable () -> NIODeadline = { .now() }

        init(_ c: KafkaProducer.Configuration) {
            batchSize = c.batchSize
            lingerMs = c.lingerMs
            bufferMemory = c.bufferMemory
            maxInFlight = c.maxInFlightRequestsPerConnection
            maxRequestSize = c.maxRequestSize
            retries = c.retries
            retryBackoffMs = c.retryBackoffMs
            deliveryTimeoutMs = c.deliveryTimeoutMs
            idempotent = c.isIdempotent
            compression = c.compression
            compressionLevel = c.compressionLevel
            deliveryReports = c.deliveryReports
        }
    }

    let settings: Settings
    private(set) var topics: [String: TopicQueue] = [:]
    private(set) var lifecycle = Lifecycle.running
    var bufferedBytes: Int { counters.bufferedBytes }
    private var memoryWaiters: CircularBuffer<(bytes: Int, id: UInt64, continuation: CheckedContinuation<Void, any Error>)> {
        get { counters.memoryWaiters }
        set { counters.memoryWaiters = newValue }
    }
    /// What appending touches besides the partition's queue, kept apart so a record can
    /// be appended to `topics[name]!` in place (one hash lookup, no copy of the batch).
    private struct Counters {
        var nextSerial: UInt64 = 0
        var nextRecordId: UInt64 = 0
        var nextMemoryWaitId: UInt64 = 0
        /// Serials of batches not yet answered for good, for `flush`.
        var incomplete = Set<UInt64>()
        var random = XorShiftGenerator()
        var bufferedBytes = 0
        var memoryWaiters = CircularBuffer<(bytes: Int, id: UInt64, continuation: CheckedContinuation<Void, any Error>)>()

        /// Reserves `bytes` if they fit (or nothing is buffered) and nobody is queued first.
        mutating func tryReserve(_ bytes: Int, limit: Int) -> Bool {
            guard memoryWaiters.isEmpty, bufferedBytes == 0 || bufferedBytes + bytes <= limit else { return false }
            bufferedBytes += bytes
            return true
        }
    }
    private var counters = Counters()
    private var inFlightPerNode: [Int32: Int] = [:]
    private var flushWaiters: [(target: UInt64, continuation: CheckedContinuation<Void, Never>)] = []
    private(set) var producerId: Int64 = -1
    private(set) var producerEpoch: Int16 = -1
    /// Set when sequences broke (a lost batch, an unknown producer id): new batches wait
    /// until nothing is in flight, then the producer gets a new id and sequences restart.
    private var producerIdReset = false
    /// Set when a partition's leader is unknown or moved.
    private(set) var needsMetadata = false
    /// Batches sent again after a retriable failure (for tests and diagnostics).
    private(set) var retriedBatches = 0

    init(settings: Settings) {
        self.settings = settings
    }

    // MARK: metadata

    func partitionCount(_ topic: String) -> Int? {
        guard let t = topics[topic], !t.partitions.isEmpty else { return nil }
        return t.partitions.count
    }

    func topicError(_ topic: String) -> KafkaErrorCode? { topics[topic]?.error }

    var knownTopics: [String] { topics.keys.sorted() }

    /// Takes a metadata response: partition counts (which only grow) and leaders.
    mutating func update(metadata: MetadataResponse) {
        needsMetadata = false
        for t in metadata.topics {
            guard let name = t.name else { continue }
            var queue = topics[name] ?? TopicQueue()
            if t.errorCode != 0, t.partitions.isEmpty {
                queue.error = KafkaErrorCode(rawValue: t.errorCode)
                // A topic we had seen keeps its partitions: a transient error must not
                // strand the batches already queued for it.
                topics[name] = queue
                continue
            }
            queue.error = nil
            let count = (t.partitions.map(\.partitionIndex).max() ?? -1) + 1
            while queue.partitions.count < count {
                queue.partitions.append(PartitionQueue())
                queue.leaders.append(-1)
            }
            for p in t.partitions where p.partitionIndex >= 0 {
                queue.leaders[Int(p.partitionIndex)] = p.errorCode == 0 || p.leaderId >= 0 ? p.leaderId : -1
            }
            topics[name] = queue
        }
    }

    mutating func requestMetadata() { needsMetadata = true }

    // MARK: appending

    enum AppendResult {
        case appended(id: UInt64, wake: Bool)
        case needsMetadata
        case needsMemory
        case failed(KafkaClientError)
    }

    /// Reserves `bytes` of buffer memory if they fit (or nothing is buffered) and nobody
    /// is queued before us.
    mutating func tryReserve(_ bytes: Int) -> Bool {
        counters.tryReserve(bytes, limit: settings.bufferMemory)
    }

    enum MemoryWait {
        /// The memory was free: reserved, and the continuation resumed.
        case granted
        /// Queued under this id, for `abandonMemoryWait`.
        case queued(UInt64)
        /// The producer is closed: not queued, the continuation untouched.
        case closed
    }

    /// Queues a caller until `bytes` of memory are free; the memory is reserved for it
    /// before it is resumed.
    mutating func waitForMemory(_ bytes: Int, _ continuation: CheckedContinuation<Void, any Error>) -> MemoryWait {
        guard lifecycle == .running else { return .closed }
        if tryReserve(bytes) {
            continuation.resume()
            return .granted
        }
        counters.nextMemoryWaitId &+= 1
        counters.memoryWaiters.append((bytes, counters.nextMemoryWaitId, continuation))
        return .queued(counters.nextMemoryWaitId)
    }

    /// Takes waiter `id` out of the queue (it waited too long) and returns its
    /// continuation, or nil when it was already resumed. The waiters behind it may fit now.
    mutating func abandonMemoryWait(_ id: UInt64, into completions: inout Completions) -> CheckedContinuation<Void, any Error>? {
        guard let i = counters.memoryWaiters.firstIndex(where: { $0.id == id }) else { return nil }
        let waiter = counters.memoryWaiters.remove(at: i)
        release(0, into: &completions)
        return waiter.continuation
    }

    var hasMemoryWaiters: Bool { !memoryWaiters.isEmpty }

    /// Gives back memory that was reserved for a record that was never appended.
    mutating func release(_ bytes: Int, into completions: inout Completions) {
        counters.bufferedBytes -= bytes
        while let first = counters.memoryWaiters.first,
              counters.bufferedBytes == 0 || counters.bufferedBytes + first.bytes <= settings.bufferMemory {
            counters.memoryWaiters.removeFirst()
            counters.bufferedBytes += first.bytes
            completions.memoryGranted.append(first.continuation)
        }
    }

    /// Appends a record; `reserved` says its memory is already accounted for. On
    /// `.failed` or `.needs*`, nothing is reserved or appended. The record's fields come
    /// separately, borrowed from the caller: a record struct built per call costs a copy
    /// and a destroy of each of them.
    mutating func append(topic: String, partition: Int32?, key: ByteBuffer?, value: ByteBuffer?, headers: [KafkaHeader],
                         size: Int, timestamp: Int64, reserved: Bool, target: DeliveryTarget?) -> AppendResult {
        guard lifecycle == .running else { return .failed(KafkaClientError(.closed, "the producer is closed")) }
        // One in-place access to the topic: no copy of its queues, one hash of its name.
        return Self.append(topic: topic, partition: partition, key: key, value: value, headers: headers, size: size, timestamp: timestamp,
                           reserved: reserved, target: target, to: &topics[topic], counters: &counters, settings: settings)
    }

    private static func append(topic name: String, partition explicit: Int32?, key: ByteBuffer?, value: ByteBuffer?, headers: [KafkaHeader],
                               size: Int, timestamp: Int64, reserved: Bool, target: DeliveryTarget?,
                               to entry: inout TopicQueue?, counters: inout Counters, settings: Settings) -> AppendResult {
        guard entry != nil, !entry!.partitions.isEmpty else { return .needsMetadata }
        let count = Int32(entry!.partitions.count)
        if let p = explicit, p < 0 || p >= count {
            return .failed(KafkaClientError(.invalidArgument, "partition \(p) of '\(name)' does not exist (\(count) partitions)"))
        }
        if !reserved {
            guard counters.tryReserve(size, limit: settings.bufferMemory) else { return .needsMemory }
        }
        let id = counters.nextRecordId
        counters.nextRecordId &+= 1
        var wake = false
        let partition: Int32
        if let p = explicit {
            partition = p
        } else if let key {
            partition = KafkaPartitioner.partition(forKey: key, partitionCount: count)
        } else {
            partition = stickyPartition(&entry!, size: size, count: count, counters: &counters, settings: settings, wake: &wake)
        }
        appendRecord(key: key, value: value, headers: headers, size: size, timestamp: timestamp, id: id, target: target,
                     to: &entry!.partitions[Int(partition)], partition: partition, counters: &counters, settings: settings, wake: &wake)
        return .appended(id: id, wake: wake)
    }

    /// Sticky partitioning (KIP-480): keep the partition while its batch has room; when
    /// the record would start a new batch there, move on to another partition first.
    private static func stickyPartition(_ topic: inout TopicQueue, size: Int, count: Int32, counters: inout Counters,
                                        settings: Settings, wake: inout Bool) -> Int32 {
        if topic.sticky < 0 || topic.sticky >= count { topic.sticky = Int32.random(in: 0..<count, using: &counters.random) }
        let sticky = Int(topic.sticky)
        let hasRoom = topic.partitions[sticky].open != nil && fits(topic.partitions[sticky], size, settings)
        if !hasRoom {
            if topic.partitions[sticky].open != nil {
                close(&topic.partitions[sticky])
                wake = true
            }
            if count > 1 {
                var next = Int32.random(in: 0..<(count - 1), using: &counters.random)
                if next >= topic.sticky { next += 1 }
                topic.sticky = next
            }
        }
        return topic.sticky
    }

    /// Whether a record of `size` bytes fits the open batch (an empty one takes anything).
    @inline(__always)
    private static func fits(_ queue: borrowing PartitionQueue, _ size: Int, _ settings: Settings) -> Bool {
        queue.openCount == 0 || queue.openSize + size <= settings.batchSize
    }

    private static func appendRecord(key: ByteBuffer?, value: ByteBuffer?, headers: [KafkaHeader], size: Int, timestamp: Int64, id: UInt64,
                                     target: DeliveryTarget?, to queue: inout PartitionQueue, partition: Int32,
                                     counters: inout Counters, settings: Settings, wake: inout Bool) {
        if queue.open != nil, !fits(queue, size, settings) {
            close(&queue)
            wake = true
        }
        if queue.open == nil {
            let serial = counters.nextSerial
            counters.nextSerial += ProducerBatch.serialStride
            counters.incomplete.insert(serial)
            // Start small and let the buffer grow: with large batch sizes and many partitions,
            // reserving batchSize per batch would hold far more memory than bufferMemory counts.
            let capacity = max(min(settings.batchSize, 64 << 10), size + 64)
            queue.open = ProducerBatch(serial: serial, partition: partition,
                                       writer: ProducerBatchWriter(baseTimestamp: timestamp, capacity: capacity), createdAt: settings.clock())
            // A new batch starts a linger timer the sender must know about.
            wake = true
        }
        let index = queue.openCount
        queue.open!.writer!.append(key: key, value: value, timestamp: timestamp, headers: headers)
        queue.open!.recordCount += 1
        queue.open!.reservedBytes += size
        queue.openCount += 1
        queue.openSize = queue.open!.writer!.size
        if let target {
            queue.open!.deliveries.append(PendingDelivery(index: index, timestamp: timestamp, target: target))
        } else if settings.deliveryReports {
            queue.open!.deliveries.append(PendingDelivery(index: index, timestamp: timestamp, target: .report(id)))
        }
        if queue.openSize >= settings.batchSize {
            close(&queue)
            wake = true
        }
    }

    private static func close(_ queue: inout PartitionQueue) {
        guard let batch = queue.open.take() else { return }
        queue.openSize = 0
        queue.openCount = 0
        queue.ready.append(batch)
    }

    // MARK: draining

    struct Drain {
        var requests: [ProduceRequestPlan] = []
        var needsProducerId = false
        var needsMetadata = false
        var nextWakeup: NIODeadline?
        var finished = false

        mutating func wake(at deadline: NIODeadline) {
            nextWakeup = min(nextWakeup ?? deadline, deadline)
        }
    }

    /// Closes batches whose linger expired, fails expired ones, and picks for each broker
    /// with request capacity the next batch of every partition it leads.
    mutating func drain(now: NIODeadline, completions: inout Completions) -> Drain {
        var out = Drain()
        let hurry = !flushWaiters.isEmpty || lifecycle != .running || !memoryWaiters.isEmpty
        if settings.idempotent, producerId < 0 || producerIdReset {
            // Nothing may be sent until the producer has an id; after a sequence break,
            // not until every batch with the old id has been answered.
            if inFlightPerNode.values.allSatisfy({ $0 == 0 }) { out.needsProducerId = true }
        }
        let linger = TimeAmount.ms(settings.lingerMs)
        let deliveryTimeout = TimeAmount.ms(settings.deliveryTimeoutMs)
        var perNode: [Int32: ProduceRequestPlan] = [:]
        var nodeFull: Set<Int32> = []
        for name in Array(topics.keys) {
            var topic = topics.removeValue(forKey: name)!
            for p in topic.partitions.indices {
                if topic.partitions[p].isIdle { continue }
                // Moved out, not copied: a copy would share the batches' buffers and force
                // the next append to copy them.
                var queue = PartitionQueue()
                swap(&queue, &topic.partitions[p])
                defer { swap(&queue, &topic.partitions[p]) }
                if let open = queue.open {
                    if hurry || open.createdAt + linger <= now {
                        Self.close(&queue)
                    } else {
                        out.wake(at: open.createdAt + linger)
                    }
                }
                // Batches that never reached the wire fail once the delivery timeout passes.
                while let head = queue.ready.first, head.createdAt + deliveryTimeout <= now, head.built == nil || head.retryAt != nil {
                    let batch = queue.ready.removeFirst()
                    queue.acknowledge(batch.serial)
                    fail(batch, topic: name, KafkaClientError(.deliveryFailed, "delivery to \(name)-\(p) timed out after \(settings.deliveryTimeoutMs) ms"
                         + (batch.attempts > 0 ? " (\(batch.attempts) attempts)" : "")), into: &completions)
                    if batch.baseSequence >= 0 { producerIdReset = true }
                }
                guard !queue.ready.isEmpty, queue.toRetry.isEmpty, !out.needsProducerId,
                      !(settings.idempotent && (producerId < 0 || producerIdReset)) else { continue }
                if let retryAt = queue.ready.first!.retryAt, retryAt > now {
                    out.wake(at: retryAt)
                    continue
                }
                let leader = topic.leaders[p]
                guard leader >= 0 else {
                    out.needsMetadata = true
                    continue
                }
                guard !nodeFull.contains(leader) else { continue }
                if perNode[leader] == nil {
                    guard inFlightPerNode[leader, default: 0] < settings.maxInFlight else {
                        nodeFull.insert(leader)
                        continue
                    }
                    perNode[leader] = ProduceRequestPlan(node: leader, entries: [], bytes: 0)
                }
                // Retries are inside the window already; a new batch needs room in it.
                if settings.idempotent, queue.ready.first!.built == nil, queue.window.count >= Self.idempotenceWindow { continue }
                let size = queue.ready.first!.built?.sizeInBytes ?? queue.ready.first!.uncompressedSize
                if perNode[leader]!.bytes > 0, perNode[leader]!.bytes + size > settings.maxRequestSize { continue }
                var batch = queue.ready.removeFirst()
                if batch.built == nil {
                    do {
                        try build(&batch, queue: &queue)
                    } catch {
                        fail(batch, topic: name, KafkaClientError(.invalidArgument, "cannot compress a batch for \(name)-\(p): \(error)"), into: &completions)
                        continue
                    }
                }
                batch.retryAt = nil
                perNode[leader]!.entries.append(.init(topic: name, partition: Int32(p), serial: batch.serial, batch: batch.built!))
                perNode[leader]!.bytes += batch.built!.sizeInBytes
                queue.inFlight.append(batch)
            }
            topics[name] = topic
        }
        for (node, plan) in perNode where !plan.entries.isEmpty {
            inFlightPerNode[node, default: 0] += 1
            out.requests.append(plan)
        }
        if needsMetadata { out.needsMetadata = true }
        if lifecycle != .running, counters.incomplete.isEmpty, inFlightPerNode.values.allSatisfy({ $0 == 0 }) {
            lifecycle = .closed
            out.finished = true
        }
        return out
    }

    private func build(_ batch: inout ProducerBatch, queue: inout PartitionQueue) throws {
        // Taken out of the batch so its buffer is unique and the header is written in place.
        var writer = batch.writer.take()!
        var sequence: Int32 = -1
        if settings.idempotent {
            sequence = queue.nextSequence
            batch.baseSequence = sequence
            queue.window.append((batch.serial, false))
            queue.nextSequence = Self.addSequence(queue.nextSequence, batch.recordCount)
        }
        batch.built = try writer.build(producerId: settings.idempotent ? producerId : -1, producerEpoch: settings.idempotent ? producerEpoch : -1,
                                       baseSequence: sequence, compression: settings.compression, level: settings.compressionLevel)
    }

    /// Batches a broker remembers per producer and partition (Kafka's, and ours).
    static let idempotenceWindow = 5

    /// Sequences wrap at Int32.max, as Kafka's do.
    static func addSequence(_ sequence: Int32, _ count: Int32) -> Int32 {
        Int32(truncatingIfNeeded: (Int64(sequence) + Int64(count)) % (Int64(Int32.max) + 1))
    }

    // MARK: answers

    /// Takes the outcome of a Produce request.
    mutating func complete(_ plan: ProduceRequestPlan, _ outcome: ProduceOutcome, acks: KafkaProducer.Acks,
                           now: NIODeadline, completions: inout Completions) {
        inFlightPerNode[plan.node, default: 1] -= 1
        var answers: [String: [Int32: ProduceResponse.PartitionProduceResponse]] = [:]
        if case .response(let response?) = outcome {
            for t in response.responses {
                for p in t.partitionResponses { answers[t.name, default: [:]][p.index] = p }
            }
        }
        for entry in plan.entries {
            guard var topic = topics.removeValue(forKey: entry.topic) else { continue }
            defer { topics[entry.topic] = topic }
            var queue = PartitionQueue()
            swap(&queue, &topic.partitions[Int(entry.partition)])
            defer { swap(&queue, &topic.partitions[Int(entry.partition)]) }
            guard let position = queue.inFlight.firstIndex(where: { $0.serial == entry.serial }) else { continue }
            var batch = queue.inFlight.remove(at: position)
            let error: KafkaClientError?
            var baseOffset: Int64 = -1
            var logAppendTime: Int64 = -1
            switch outcome {
            case .failure(let e):
                error = e
            case .response(nil):
                error = nil
            case .response(let response?):
                if let answer = answers[entry.topic]?[entry.partition] {
                    let code = KafkaErrorCode(rawValue: answer.errorCode)
                    if code == .none || code == .duplicateSequenceNumber {
                        error = nil
                        baseOffset = answer.baseOffset
                        logAppendTime = answer.logAppendTimeMs
                    } else {
                        error = .broker(code, "produce to \(entry.topic)-\(entry.partition)", message: answer.errorMessage)
                    }
                } else {
                    error = KafkaClientError(.malformedResponse, "no answer for \(entry.topic)-\(entry.partition) in \(response.responses.count) topics")
                }
            }
            if let error, error.kafkaCode == .messageTooLarge || error.kafkaCode == .recordListTooLarge, acks != .zero {
                if batch.recordCount > 1, batch.serialSpan > 1, let halves = split(batch, queue: &queue, now: now) {
                    // Resent as two batches in its place; a batch with a sequence leaves a
                    // gap the broker would refuse later batches for, so the producer id
                    // is renewed first and the halves and what follows are restamped.
                    if batch.baseSequence >= 0 { producerIdReset = true }
                    queue.acknowledge(batch.serial)
                    queue.toRetry.append(contentsOf: halves)
                    retriedBatches += 1
                } else {
                    if batch.baseSequence >= 0 { producerIdReset = true }
                    queue.acknowledge(batch.serial)
                    fail(batch, topic: entry.topic, KafkaClientError(
                        .recordTooLarge, "the broker refused a record of \(batch.reservedBytes) bytes for \(entry.topic)-\(entry.partition) "
                            + "as too large (\(error.kafkaCode!.name)); raise the topic's max.message.bytes or send smaller records",
                        kafkaCode: error.kafkaCode), into: &completions)
                }
            } else if let error {
                let code = error.kafkaCode
                if code == .notLeaderOrFollower || code == .unknownTopicOrPartition || code == .leaderNotAvailable
                    || error.code == .connectionClosed || error.code == .noBrokerReachable {
                    needsMetadata = true
                }
                // An out-of-order answer is expected when an earlier batch of the partition
                // failed: it will be resent first and this one after it.
                let earlierPending = queue.inFlight.contains { $0.serial < batch.serial } || queue.toRetry.contains { $0.serial < batch.serial }
                let sequenceBroken = code == .outOfOrderSequenceNumber || code == .unknownProducerId || code == .invalidProducerEpoch
                let retriable = error.isRetriable || (code == .outOfOrderSequenceNumber && earlierPending)
                let expired = batch.createdAt + .ms(settings.deliveryTimeoutMs) <= now
                if retriable, acks != .zero, batch.attempts < settings.retries, !expired {
                    batch.attempts += 1
                    retriedBatches += 1
                    batch.retryAt = now + .ms(settings.retryBackoffMs)
                    queue.toRetry.append(batch)
                } else {
                    // A sequenced batch that is given up leaves a gap the broker would
                    // refuse every later batch for: start over with a new producer id.
                    if sequenceBroken || (settings.idempotent && batch.baseSequence >= 0) {
                        producerIdReset = true
                    }
                    queue.acknowledge(batch.serial)
                    let reason = expired || batch.attempts >= settings.retries
                        ? KafkaClientError(.deliveryFailed, "\(error) (after \(batch.attempts + 1) attempts)", kafkaCode: error.kafkaCode)
                        : error
                    fail(batch, topic: entry.topic, reason, into: &completions)
                }
            } else {
                queue.acknowledge(batch.serial)
                succeed(batch, topic: entry.topic, baseOffset: acks == .zero ? -1 : baseOffset, logAppendTime: logAppendTime, into: &completions)
            }
            if queue.inFlight.isEmpty, !queue.toRetry.isEmpty {
                for b in queue.toRetry.sorted(by: { $0.serial > $1.serial }) { queue.ready.prepend(b) }
                queue.toRetry.removeAll()
            }
        }
    }

    /// Two batches with the records of `batch`, each half of them, built and ready to
    /// send; nil when its records cannot be read back (then it fails as it is).
    private mutating func split(_ batch: ProducerBatch, queue: inout PartitionQueue, now: NIODeadline) -> [ProducerBatch]? {
        guard let built = batch.built, var records = try? built.decompressedRecords(maximumSize: Int(Int32.max)) else { return nil }
        let half = batch.recordCount / 2
        let span = batch.serialSpan / 2
        var halves: [ProducerBatch] = []
        for (serial, range) in [(batch.serial, 0..<half), (batch.serial + span, half..<batch.recordCount)] {
            var writer = ProducerBatchWriter(baseTimestamp: built.baseTimestamp, capacity: built.sizeInBytes / 2 + 64)
            for _ in range {
                guard let r = try? records.next() else { return nil }
                writer.append(key: r.key, value: r.value, timestamp: built.baseTimestamp + r.timestampDelta, headers: r.headers)
            }
            var piece = ProducerBatch(serial: serial, partition: batch.partition, writer: writer, createdAt: batch.createdAt)
            piece.recordCount = Int32(range.count)
            piece.serialSpan = span
            piece.attempts = batch.attempts
            piece.retryAt = now
            piece.deliveries = batch.deliveries.filter { range.contains($0.index) }.map { d in
                PendingDelivery(index: d.index - range.lowerBound, timestamp: d.timestamp, target: d.target)
            }
            halves.append(piece)
        }
        // Memory stays accounted once: the first half takes the batch's share, rounded.
        let share = batch.reservedBytes * Int(half) / Int(batch.recordCount)
        halves[0].reservedBytes = share
        halves[1].reservedBytes = batch.reservedBytes - share
        counters.incomplete.insert(halves[1].serial)
        do {
            for i in halves.indices { try build(&halves[i], queue: &queue) }
        } catch {
            counters.incomplete.remove(halves[1].serial)
            return nil
        }
        return halves
    }

    private mutating func succeed(_ batch: ProducerBatch, topic: String, baseOffset: Int64, logAppendTime: Int64, into completions: inout Completions) {
        for d in batch.deliveries {
            let metadata = KafkaProducer.RecordMetadata(
                topic: topic, partition: batch.partition, offset: baseOffset < 0 ? -1 : baseOffset + Int64(d.index),
                timestamp: logAppendTime >= 0 ? logAppendTime : d.timestamp)
            deliver(d.target, topic: topic, partition: batch.partition, .success(metadata), into: &completions)
        }
        finish(batch, into: &completions)
    }

    private mutating func fail(_ batch: ProducerBatch, topic: String, _ error: KafkaClientError, into completions: inout Completions) {
        for d in batch.deliveries {
            deliver(d.target, topic: topic, partition: batch.partition, .failure(error), into: &completions)
        }
        finish(batch, into: &completions)
    }

    private func deliver(_ target: DeliveryTarget, topic: String, partition: Int32,
                         _ result: Result<KafkaProducer.RecordMetadata, KafkaClientError>, into completions: inout Completions) {
        if case .report(let id) = target {
            completions.reports.append(.init(id: id, topic: topic, partition: partition, result: result))
        } else {
            completions.deliveries.append((target, result))
        }
    }

    private mutating func finish(_ batch: ProducerBatch, into completions: inout Completions) {
        counters.incomplete.remove(batch.serial)
        release(batch.reservedBytes, into: &completions)
        if !flushWaiters.isEmpty {
            let oldest = counters.incomplete.min() ?? .max
            flushWaiters.removeAll { w in
                guard w.target <= oldest else { return false }
                completions.flushed.append(w.continuation)
                return true
            }
        }
    }

    // MARK: producer id

    /// Takes a new producer id: sequences restart at 0, and batches that had a sequence
    /// but are not on the wire are stamped again (they were never written, or their
    /// write is beyond recovery anyway).
    mutating func setProducerId(_ id: Int64, epoch: Int16) {
        producerId = id
        producerEpoch = epoch
        producerIdReset = false
        for name in Array(topics.keys) {
            for p in topics[name]!.partitions.indices {
                var queue = PartitionQueue()
                swap(&queue, &topics[name]!.partitions[p])
                queue.nextSequence = 0
                queue.window.removeAll()
                for i in queue.ready.indices {
                    guard let built = queue.ready[i].built, built.hasProducerId else { continue }
                    queue.ready[i].built = Self.restamp(built, producerId: id, epoch: epoch, sequence: queue.nextSequence)
                    queue.ready[i].baseSequence = queue.nextSequence
                    queue.window.append((queue.ready[i].serial, false))
                    queue.nextSequence = Self.addSequence(queue.nextSequence, queue.ready[i].recordCount)
                }
                topics[name]!.partitions[p] = queue
            }
        }
    }

    /// The batch with a new producer id, epoch and base sequence, and its CRC fixed.
    static func restamp(_ batch: RecordBatch, producerId: Int64, epoch: Int16, sequence: Int32) -> RecordBatch {
        var bytes = ByteBufferAllocator().buffer(capacity: batch.sizeInBytes)
        var source = batch.buffer
        bytes.writeBuffer(&source)
        bytes.setInteger(producerId, at: 43)
        bytes.setInteger(epoch, at: 51)
        bytes.setInteger(sequence, at: 53)
        let crc = bytes.withUnsafeReadableBytes { CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[21...])) }
        bytes.setInteger(crc, at: 17)
        return try! RecordBatch(validating: bytes, verifyCRC: false)
    }

    // MARK: flush and close

    /// Registers a flush; false when nothing is outstanding (resume at once).
    mutating func addFlushWaiter(_ continuation: CheckedContinuation<Void, Never>) -> Bool {
        guard !counters.incomplete.isEmpty else { return false }
        flushWaiters.append((counters.nextSerial, continuation))
        return true
    }

    /// Stops accepting records; queued ones are still delivered. Callers waiting for
    /// memory fail, since their records would never be sent.
    mutating func beginClose(into completions: inout Completions) {
        guard lifecycle == .running else { return }
        lifecycle = .closing
        while let w = counters.memoryWaiters.popFirst() {
            completions.memoryFailed.append((w.continuation, KafkaClientError(.closed, "the producer closed while waiting for buffer memory")))
        }
    }

    /// Fails everything outstanding (the producer stopped without draining).
    mutating func abort(_ error: KafkaClientError, into completions: inout Completions) {
        lifecycle = .closed
        while let w = counters.memoryWaiters.popFirst() { completions.memoryFailed.append((w.continuation, error)) }
        for name in Array(topics.keys) {
            for p in topics[name]!.partitions.indices {
                var queue = PartitionQueue()
                swap(&queue, &topics[name]!.partitions[p])
                for b in [queue.open].compactMap({ $0 }) + Array(queue.ready) + queue.inFlight + queue.toRetry {
                    fail(b, topic: name, error, into: &completions)
                }
            }
        }
        inFlightPerNode = [:]
        for w in flushWaiters { completions.flushed.append(w.continuation) }
        flushWaiters = []
    }
}
