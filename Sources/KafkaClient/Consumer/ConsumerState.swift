import KafkaProtocol
import NIOCore

/// How a partition's position is (re)established.
enum OffsetTarget: Sendable, Hashable {
    /// The group's committed offset, else `autoOffsetReset`.
    case committed
    case earliest
    case latest
    /// The first offset whose timestamp is at or after this (ms), else the end.
    case timestamp(Int64)
    case offset(Int64)

    init?(_ reset: KafkaConsumer.AutoOffsetReset) {
        switch reset {
        case .earliest: self = .earliest
        case .latest: self = .latest
        case .none: return nil
        }
    }
}

/// One assigned partition.
struct PartitionState {
    /// The offset of the next record to return; nil until resolved.
    var position: Int64?
    /// Where the next fetch starts: past the chunks already fetched.
    var fetchPosition: Int64?
    /// How to resolve `position` when it is nil; nil too means "wait for a seek".
    var target: OffsetTarget?
    /// Bumped by every seek, pause and reset, so answers to older requests are ignored.
    var epoch: UInt64 = 0
    var resolving = false
    var paused = false
    /// Fetched chunks waiting in the buffer.
    var queued = 0
    /// Part of a fetch on the wire.
    var fetching = false
    var retryAt: NIODeadline?
    var highWatermark: Int64 = -1
    /// The last offset committed (or found committed), to skip unchanged commits.
    var committed: Int64?
}

/// A batch ready for the record cursor: decompressed, checked, not a control batch.
struct PreparedBatch: Sendable {
    var baseOffset: Int64
    var baseTimestamp: Int64
    var maxTimestamp: Int64
    var isLogAppendTime: Bool
    var records: RecordIterator
}

/// One partition's share of a fetch response.
struct FetchedChunk: Sendable {
    var partition: TopicPartition
    var epoch: UInt64
    var batches: [PreparedBatch]
    /// The offset after the last batch: the next fetch's, and the position once the
    /// chunk is consumed (which skips control and aborted batches).
    var nextOffset: Int64
    /// A batch that could not be read; reported once the batches before it are returned.
    var error: KafkaClientError?
}

/// What a partition's fetch came back with.
enum PartitionFetchResult: Sendable {
    case chunk(FetchedChunk, highWatermark: Int64)
    case empty(highWatermark: Int64)
    case error(KafkaErrorCode)
}

struct FetchPlan: Sendable {
    struct Entry: Sendable {
        var partition: TopicPartition
        var offset: Int64
        var epoch: UInt64
    }
    var node: Int32
    var entries: [Entry]
}

struct Resolution: Sendable {
    var partition: TopicPartition
    var target: OffsetTarget
    var epoch: UInt64
}

/// The consumer's state: subscription, assignment, positions, fetched data and the
/// cursor the record sequence reads from. Pure state: the consumer performs the I/O
/// its functions ask for.
struct ConsumerState {
    enum Subscription: Equatable {
        case none
        case topics(Set<String>)
        case partitions(Set<TopicPartition>)
    }

    enum Lifecycle { case running, closing, closed }

    /// Reads records out of the chunk at the head of the buffer. Holds the partition's
    /// position while it reads, so returning a record touches no dictionary.
    struct Cursor {
        var chunk: FetchedChunk
        var batchIndex = 0
        var position: Int64
    }

    let autoOffsetReset: KafkaConsumer.AutoOffsetReset
    let hasGroup: Bool
    let retryBackoff: TimeAmount

    private(set) var subscription = Subscription.none
    /// Bumped whenever the subscribed topics change, so the group member rejoins.
    private(set) var subscriptionVersion = 0
    private(set) var rebalanceListener = KafkaConsumer.RebalanceListener()
    private(set) var partitions: [TopicPartition: PartitionState] = [:]
    private var pendingSeeks: [TopicPartition: OffsetTarget] = [:]
    private(set) var leaders: [TopicPartition: Int32] = [:]
    private(set) var needsMetadata = false
    private var buffer = CircularBuffer<FetchedChunk>()
    private var cursor: Cursor?
    private var recordWaiters: [CheckedContinuation<Void, Never>] = []
    private var nodesFetching = Set<Int32>()
    private(set) var lifecycle = Lifecycle.running
    /// Ends the record sequence with an error (the group refused us for good).
    private var fatal: KafkaClientError?
    /// Thrown once each by the record sequence (no offset, a corrupt batch).
    private var errors: [KafkaClientError] = []

    init(configuration: KafkaConsumer.Configuration) {
        autoOffsetReset = configuration.autoOffsetReset
        hasGroup = configuration.groupId != nil
        retryBackoff = .ms(configuration.retryBackoffMs)
    }

    // MARK: subscription and assignment

    var subscribedTopics: Set<String>? {
        if case .topics(let t) = subscription { return t }
        return nil
    }

    var assignment: Set<TopicPartition> { Set(partitions.keys) }

    mutating func subscribe(_ topics: Set<String>, listener: KafkaConsumer.RebalanceListener) {
        if subscription != .topics(topics) { subscriptionVersion += 1 }
        subscription = .topics(topics)
        rebalanceListener = listener
        needsMetadata = true
    }

    mutating func assign(_ assigned: Set<TopicPartition>, into wake: inout [CheckedContinuation<Void, Never>]) {
        if case .topics = subscription { subscriptionVersion += 1 }
        subscription = assigned.isEmpty ? .none : .partitions(assigned)
        setAssignment(assigned, into: &wake)
    }

    mutating func unsubscribe(into wake: inout [CheckedContinuation<Void, Never>]) {
        if case .topics = subscription { subscriptionVersion += 1 }
        subscription = .none
        setAssignment([], into: &wake)
    }

    /// Makes `assigned` the assignment: partitions kept keep their positions, new ones
    /// start from a pending seek or from the committed offset (or `autoOffsetReset`).
    mutating func setAssignment(_ assigned: Set<TopicPartition>, into wake: inout [CheckedContinuation<Void, Never>]) {
        for tp in partitions.keys where !assigned.contains(tp) {
            dropFetched(tp, keepPosition: false)
            partitions[tp] = nil
        }
        for tp in assigned where partitions[tp] == nil {
            var state = PartitionState()
            let target = pendingSeeks.removeValue(forKey: tp) ?? (hasGroup ? .committed : OffsetTarget(autoOffsetReset))
            apply(target, to: &state)
            if target == nil {
                errors.append(KafkaClientError(.noOffset, "no offset for \(tp.topic)-\(tp.partition) and autoOffsetReset is none: seek first"))
            }
            partitions[tp] = state
            if leaders[tp] == nil { needsMetadata = true }
        }
        wakeRecords(into: &wake)
    }

    private func apply(_ target: OffsetTarget?, to state: inout PartitionState) {
        state.epoch &+= 1
        state.resolving = false
        state.retryAt = nil
        if case .offset(let o) = target {
            state.position = o
            state.fetchPosition = o
            state.target = nil
        } else {
            state.position = nil
            state.fetchPosition = nil
            state.target = target
        }
    }

    /// Seeks an assigned partition now, or remembers the seek until it is assigned.
    mutating func seek(_ tp: TopicPartition, to target: OffsetTarget) {
        guard partitions[tp] != nil else {
            pendingSeeks[tp] = target
            return
        }
        dropFetched(tp, keepPosition: false)
        apply(target, to: &partitions[tp]!)
    }

    mutating func pause(_ tps: [TopicPartition]) {
        for tp in tps where partitions[tp] != nil && !partitions[tp]!.paused {
            // Buffered records are dropped and fetched again on resume; the position
            // stays at the last record returned.
            dropFetched(tp, keepPosition: true)
            partitions[tp]!.paused = true
            partitions[tp]!.epoch &+= 1
            partitions[tp]!.fetchPosition = partitions[tp]!.position
        }
    }

    mutating func resume(_ tps: [TopicPartition]) {
        for tp in tps where partitions[tp] != nil { partitions[tp]!.paused = false }
    }

    var paused: Set<TopicPartition> { Set(partitions.filter { $0.value.paused }.keys) }

    /// Removes `tp`'s buffered chunks and, if it is reading one, the cursor (writing its
    /// position back first when `keepPosition`).
    private mutating func dropFetched(_ tp: TopicPartition, keepPosition: Bool) {
        if let c = cursor, c.chunk.partition == tp {
            if keepPosition, partitions[tp]?.epoch == c.chunk.epoch { partitions[tp]?.position = c.position }
            cursor = nil
        }
        guard let queued = partitions[tp]?.queued, queued > 0 else { return }
        buffer.removeAll { $0.partition == tp }
        partitions[tp]!.queued = 0
    }

    /// The position of every assigned partition that has one: what has been returned.
    func positions() -> [TopicPartition: Int64] {
        var out: [TopicPartition: Int64] = [:]
        for (tp, p) in partitions {
            if let c = cursor, c.chunk.partition == tp, c.chunk.epoch == p.epoch {
                out[tp] = c.position
            } else if let position = p.position {
                out[tp] = position
            }
        }
        return out
    }

    func position(_ tp: TopicPartition) -> Int64? {
        guard let p = partitions[tp] else { return nil }
        if let c = cursor, c.chunk.partition == tp, c.chunk.epoch == p.epoch { return c.position }
        return p.position
    }

    /// Positions that differ from what was last committed.
    func uncommittedPositions() -> [TopicPartition: Int64] {
        positions().filter { partitions[$0.key]?.committed != $0.value }
    }

    mutating func markCommitted(_ offsets: [TopicPartition: Int64]) {
        for (tp, o) in offsets where partitions[tp] != nil { partitions[tp]!.committed = o }
    }

    // MARK: lifecycle and errors

    mutating func beginClose(into wake: inout [CheckedContinuation<Void, Never>]) {
        guard lifecycle == .running else { return }
        lifecycle = .closing
        wakeRecords(into: &wake)
    }

    mutating func finishClose(into wake: inout [CheckedContinuation<Void, Never>]) {
        lifecycle = .closed
        buffer.removeAll()
        cursor = nil
        wakeRecords(into: &wake)
    }

    mutating func fail(_ error: KafkaClientError, into wake: inout [CheckedContinuation<Void, Never>]) {
        if fatal == nil { fatal = error }
        wakeRecords(into: &wake)
    }

    mutating func report(_ error: KafkaClientError, into wake: inout [CheckedContinuation<Void, Never>]) {
        errors.append(error)
        wakeRecords(into: &wake)
    }

    private mutating func wakeRecords(into wake: inout [CheckedContinuation<Void, Never>]) {
        wake += recordWaiters
        recordWaiters = []
    }

    // MARK: records

    enum NextRecord {
        case record(ConsumerRecord)
        case wait
        case finished
        case failed(KafkaClientError)
    }

    /// The next record to return, if one is fetched. `wakeFetcher` is set when a
    /// partition ran out of buffered chunks, so its next fetch can go out now.
    mutating func nextRecord(wakeFetcher: inout Bool) -> NextRecord {
        if lifecycle != .running { return .finished }
        if let fatal { return .failed(fatal) }
        if !errors.isEmpty { return .failed(errors.removeFirst()) }
        while true {
            if cursor == nil {
                guard let chunk = buffer.popFirst() else { return .wait }
                guard let p = partitions[chunk.partition], p.epoch == chunk.epoch, !p.paused, let position = p.position else { continue }
                partitions[chunk.partition]!.queued -= 1
                wakeFetcher = true
                cursor = Cursor(chunk: chunk, position: position)
            }
            let i = cursor!.batchIndex
            guard i < cursor!.chunk.batches.count else {
                let c = cursor!
                cursor = nil
                partitions[c.chunk.partition]?.position = max(c.position, c.chunk.nextOffset)
                if let error = c.chunk.error { return .failed(error) }
                continue
            }
            let record: Record?
            do {
                record = try cursor!.chunk.batches[i].records.next()
            } catch {
                cursor!.batchIndex += 1
                let tp = cursor!.chunk.partition
                return .failed(KafkaClientError(.malformedResponse, "corrupt record in \(tp.topic)-\(tp.partition) at offset \(cursor!.position): \(error)"))
            }
            guard let r = record else {
                cursor!.batchIndex += 1
                continue
            }
            let batch = cursor!.chunk.batches[i]
            let offset = batch.baseOffset + Int64(r.offsetDelta)
            // A fetch returns whole batches: skip what comes before the position.
            guard offset >= cursor!.position else { continue }
            cursor!.position = offset + 1
            return .record(Self.consumerRecord(r, offset: offset, partition: cursor!.chunk.partition, baseTimestamp: batch.baseTimestamp,
                                               maxTimestamp: batch.maxTimestamp, logAppendTime: batch.isLogAppendTime))
        }
    }

    /// Up to `max` records, and why it stopped early when it returned none: what `poll`
    /// returns. An error met after some records waits for the next call.
    mutating func nextRecords(max: Int, wakeFetcher: inout Bool) -> ([ConsumerRecord], NextRecord?) {
        var out: [ConsumerRecord] = []
        while out.count < max {
            // Fast path: runs of records from the current batch, with the cursor moved into
            // a local so the loop neither copies the batch nor re-checks the state per record.
            if lifecycle == .running, fatal == nil, errors.isEmpty, var c = cursor.take() {
                if out.isEmpty { out.reserveCapacity(Swift.min(max, 1024)) }
                let failure = Self.drain(&c, into: &out, max: max)
                cursor = c
                if let failure {
                    if out.isEmpty { return (out, .failed(failure)) }
                    if fatal == nil { errors.insert(failure, at: 0) }
                    return (out, nil)
                }
                if out.count >= max { break }
            }
            switch nextRecord(wakeFetcher: &wakeFetcher) {
            case .record(let r):
                if out.isEmpty { out.reserveCapacity(Swift.min(max, 1024)) }
                out.append(r)
            case .failed(let error):
                if out.isEmpty { return (out, .failed(error)) }
                if fatal == nil { errors.insert(error, at: 0) }
                return (out, nil)
            case .finished:
                return (out, out.isEmpty ? .finished : nil)
            case .wait:
                return (out, out.isEmpty ? .wait : nil)
            }
        }
        return (out, nil)
    }

    /// Appends the cursor's records, batch after batch, until `max` or the end of its
    /// chunk (which `nextRecord` then finishes). Returns the error of a corrupt record.
    private static func drain(_ c: inout Cursor, into out: inout [ConsumerRecord], max: Int) -> KafkaClientError? {
        let partition = c.chunk.partition
        while out.count < max, c.batchIndex < c.chunk.batches.count {
            let i = c.batchIndex
            let base = c.chunk.batches[i].baseOffset
            let baseTimestamp = c.chunk.batches[i].baseTimestamp
            let maxTimestamp = c.chunk.batches[i].maxTimestamp
            let logAppendTime = c.chunk.batches[i].isLogAppendTime
            while out.count < max {
                let record: Record?
                do {
                    record = try c.chunk.batches[i].records.next()
                } catch {
                    c.batchIndex += 1
                    return KafkaClientError(.malformedResponse, "corrupt record in \(partition.topic)-\(partition.partition) at offset \(c.position): \(error)")
                }
                guard let r = record else {
                    c.batchIndex += 1
                    break
                }
                let offset = base + Int64(r.offsetDelta)
                // A fetch returns whole batches: skip what comes before the position.
                guard offset >= c.position else { continue }
                c.position = offset + 1
                out.append(Self.consumerRecord(r, offset: offset, partition: partition, baseTimestamp: baseTimestamp,
                                               maxTimestamp: maxTimestamp, logAppendTime: logAppendTime))
            }
        }
        return nil
    }

    /// A record as the consumer returns it: the batch's LogAppendTime, or its base
    /// timestamp plus the record's delta.
    @inline(__always)
    private static func consumerRecord(_ r: Record, offset: Int64, partition: TopicPartition, baseTimestamp: Int64,
                                       maxTimestamp: Int64, logAppendTime: Bool) -> ConsumerRecord {
        ConsumerRecord(topic: partition.topic, partition: partition.partition, offset: offset,
                       timestamp: logAppendTime ? maxTimestamp : baseTimestamp + r.timestampDelta,
                       timestampType: logAppendTime ? .logAppendTime : .createTime,
                       key: r.key, value: r.value, headers: r.headers)
    }

    /// Queues the record sequence's wait; false when there is something to return now.
    mutating func waitForRecords(_ continuation: CheckedContinuation<Void, Never>) -> Bool {
        guard lifecycle == .running, fatal == nil, errors.isEmpty, cursor == nil, buffer.isEmpty else { return false }
        recordWaiters.append(continuation)
        return true
    }

    mutating func cancelRecordWaiters(into wake: inout [CheckedContinuation<Void, Never>]) {
        wakeRecords(into: &wake)
    }

    // MARK: fetching

    struct FetcherStep {
        var fetches: [FetchPlan] = []
        var resolutions: [Resolution] = []
        var needsMetadata = false
        var nextWakeup: NIODeadline?
        var finished = false
    }

    /// What the fetcher should do now: resolve positions, and send one fetch to every
    /// broker that has none on the wire, for its partitions with nothing buffered.
    mutating func fetcherStep(now: NIODeadline) -> FetcherStep {
        var step = FetcherStep()
        guard lifecycle == .running else {
            step.finished = true
            return step
        }
        var perNode: [Int32: FetchPlan] = [:]
        for tp in partitions.keys.sorted() {
            let p = partitions[tp]!
            if let retryAt = p.retryAt, retryAt > now {
                step.nextWakeup = min(step.nextWakeup ?? retryAt, retryAt)
                continue
            }
            if p.position == nil || p.fetchPosition == nil {
                if !p.resolving, let target = p.target {
                    partitions[tp]!.resolving = true
                    step.resolutions.append(Resolution(partition: tp, target: target, epoch: p.epoch))
                }
                continue
            }
            guard !p.paused, !p.fetching, p.queued == 0 else { continue }
            guard let leader = leaders[tp], leader >= 0 else {
                needsMetadata = true
                continue
            }
            guard !nodesFetching.contains(leader) else { continue }
            perNode[leader, default: FetchPlan(node: leader, entries: [])].entries.append(.init(partition: tp, offset: p.fetchPosition!, epoch: p.epoch))
            partitions[tp]!.fetching = true
        }
        for (node, plan) in perNode {
            nodesFetching.insert(node)
            step.fetches.append(plan)
        }
        step.needsMetadata = needsMetadata
        return step
    }

    /// Takes a fetch's results; `nil` results mean the request failed as a whole.
    mutating func completeFetch(_ plan: FetchPlan, _ results: [PartitionFetchResult]?, now: NIODeadline,
                                into wake: inout [CheckedContinuation<Void, Never>]) {
        nodesFetching.remove(plan.node)
        for (i, entry) in plan.entries.enumerated() {
            let tp = entry.partition
            guard partitions[tp] != nil else { continue }
            partitions[tp]!.fetching = false
            guard partitions[tp]!.epoch == entry.epoch, partitions[tp]!.fetchPosition == entry.offset else { continue }
            guard let results else {
                partitions[tp]!.retryAt = now + retryBackoff
                needsMetadata = true
                continue
            }
            switch results[i] {
            case .chunk(let chunk, let highWatermark):
                partitions[tp]!.highWatermark = highWatermark
                partitions[tp]!.fetchPosition = chunk.nextOffset
                partitions[tp]!.queued += 1
                buffer.append(chunk)
                wakeRecords(into: &wake)
            case .empty(let highWatermark):
                partitions[tp]!.highWatermark = highWatermark
            case .error(let code):
                if code == .offsetOutOfRange {
                    if let target = OffsetTarget(autoOffsetReset) {
                        apply(target, to: &partitions[tp]!)
                    } else {
                        apply(nil, to: &partitions[tp]!)
                        report(KafkaClientError.broker(code, "fetch \(tp.topic)-\(tp.partition) at \(entry.offset)"), into: &wake)
                    }
                } else {
                    if code == .notLeaderOrFollower || code == .unknownTopicOrPartition || code == .leaderNotAvailable
                        || code == .fencedLeaderEpoch || code == .unknownLeaderEpoch || code == .kafkaStorageError {
                        needsMetadata = true
                    }
                    partitions[tp]!.retryAt = now + retryBackoff
                }
            }
        }
    }

    /// A position was found; ignored when the partition was seeked or dropped meanwhile.
    mutating func resolved(_ resolution: Resolution, offset: Int64, committed: Bool) {
        guard partitions[resolution.partition]?.epoch == resolution.epoch else { return }
        partitions[resolution.partition]!.position = offset
        partitions[resolution.partition]!.fetchPosition = offset
        partitions[resolution.partition]!.target = nil
        partitions[resolution.partition]!.resolving = false
        if committed { partitions[resolution.partition]!.committed = offset }
    }

    /// The partition has no committed offset: fall back to `autoOffsetReset`.
    mutating func noCommittedOffset(_ resolution: Resolution, into wake: inout [CheckedContinuation<Void, Never>]) {
        guard partitions[resolution.partition]?.epoch == resolution.epoch else { return }
        let tp = resolution.partition
        partitions[tp]!.resolving = false
        if let target = OffsetTarget(autoOffsetReset) {
            partitions[tp]!.target = target
        } else {
            partitions[tp]!.target = nil
            report(KafkaClientError(.noOffset, "no committed offset for \(tp.topic)-\(tp.partition) and autoOffsetReset is none"), into: &wake)
        }
    }

    mutating func resolutionFailed(_ resolution: Resolution, now: NIODeadline) {
        guard partitions[resolution.partition]?.epoch == resolution.epoch else { return }
        partitions[resolution.partition]!.resolving = false
        partitions[resolution.partition]!.retryAt = now + retryBackoff
        needsMetadata = true
    }

    mutating func requestMetadata() { needsMetadata = true }

    /// Takes the leaders from a metadata response.
    mutating func update(metadata: MetadataResponse) {
        needsMetadata = false
        for t in metadata.topics {
            guard let name = t.name, t.errorCode == 0 else { continue }
            for p in t.partitions {
                leaders[TopicPartition(topic: name, partition: p.partitionIndex)] = p.leaderId
            }
        }
    }

    func leader(_ tp: TopicPartition) -> Int32? { leaders[tp] }
}
