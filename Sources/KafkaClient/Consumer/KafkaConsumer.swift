import KafkaCompression
import KafkaProtocol
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import ServiceLifecycle

/// Reads records from a Kafka cluster, as a member of a consumer group (`subscribe`) or
/// from partitions it is given (`assign`).
///
/// `run()` does the work: fetching, the group protocol with its heartbeats, auto-commit.
/// Start it in a `ServiceGroup` (or a task of your own) and read `records`:
///
/// ```swift
/// let consumer = try KafkaConsumer(configuration: .init(bootstrapServers: ["localhost:9092"], groupId: "monthly"))
/// try consumer.subscribe(topics: ["weather"])
/// try await withThrowingTaskGroup(of: Void.self) { group in
///     group.addTask { try await consumer.run() }
///     for try await record in consumer.records { print(record.offset, record.valueString ?? "") }
/// }
/// ```
///
/// Fetching runs ahead of the reader by one response per partition: the next fetch is
/// on the wire while the records of the last one are being returned, and nothing more
/// is fetched for a partition until they have been, so a slow reader bounds memory.
public final class KafkaConsumer: Service, Sendable {
    public let configuration: Configuration
    let cluster: KafkaCluster
    private let logger: Logger
    private let state: NIOLockedValueBox<ConsumerState>
    private let member: GroupMember?
    private let fetcherBell = Doorbell()
    private let membershipBell = Doorbell()
    private let autoCommitBell = Doorbell()
    private let runStatus = NIOLockedValueBox(RunStatus())

    private struct RunStatus {
        var started = false
        var finished = false
        var waiters: [CheckedContinuation<Void, Never>] = []
    }

    /// Decompressed batches larger than this are refused: a bound against corrupt or
    /// hostile size fields, far above any batch a broker accepts by default.
    static let maxDecompressedBatchBytes = 256 << 20

    /// Checks the configuration; connects nothing until `run()`.
    public init(configuration: Configuration, logger: Logger = Logger(label: "kafka.consumer")) throws {
        try configuration.validate()
        self.configuration = configuration
        self.logger = logger
        let cluster = try KafkaCluster(bootstrapServers: configuration.bootstrapServers, clientId: configuration.clientId,
                                       requestTimeout: .milliseconds(configuration.requestTimeoutMs),
                                       reconnectBackoffMs: configuration.reconnectBackoffMs, reconnectBackoffMaxMs: configuration.reconnectBackoffMaxMs)
        self.cluster = cluster
        self.state = NIOLockedValueBox(ConsumerState(configuration: configuration))
        self.member = configuration.groupId.map { GroupMember(groupId: $0, configuration: configuration, cluster: cluster, logger: logger) }
    }

    // MARK: what to read

    /// Joins the group for `topics`; the group divides their partitions among members.
    ///
    /// Calling it again changes the topics (and rejoins). Needs `groupId`; cannot be
    /// mixed with `assign`.
    public func subscribe(topics: [String], listener: RebalanceListener = RebalanceListener()) throws {
        guard member != nil else {
            throw KafkaClientError(.invalidArgument, "subscribe needs a groupId; use assign(partitions:) without one")
        }
        guard !topics.isEmpty else { throw KafkaClientError(.invalidArgument, "subscribe to no topics: use unsubscribe()") }
        try state.withLockedValue { s in
            if case .partitions = s.subscription {
                throw KafkaClientError(.invalidArgument, "the consumer has assigned partitions; unsubscribe() first")
            }
            s.subscribe(Set(topics), listener: listener)
        }
        membershipBell.ring()
        fetcherBell.ring()
    }

    /// Reads exactly `partitions`, without group membership. With a `groupId`, positions
    /// start from the group's committed offsets and commits go to that group.
    public func assign(partitions: [TopicPartition]) throws {
        var wake: [CheckedContinuation<Void, Never>] = []
        try state.withLockedValue { s in
            if case .topics = s.subscription {
                throw KafkaClientError(.invalidArgument, "the consumer is subscribed to topics; unsubscribe() first")
            }
            s.assign(Set(partitions), into: &wake)
        }
        for w in wake { w.resume() }
        fetcherBell.ring()
    }

    /// Stops reading: leaves the group, or drops the assigned partitions.
    public func unsubscribe() {
        var wake: [CheckedContinuation<Void, Never>] = []
        state.withLockedValue { $0.unsubscribe(into: &wake) }
        for w in wake { w.resume() }
        membershipBell.ring()
        fetcherBell.ring()
    }

    /// The partitions currently assigned.
    public var assignment: Set<TopicPartition> { state.withLockedValue { $0.assignment } }

    /// The offset of the next record `records` returns for `partition`; nil when it is
    /// not assigned or its position is still being looked up.
    public func position(_ partition: TopicPartition) -> Int64? {
        state.withLockedValue { $0.position(partition) }
    }

    /// The records, in offset order per partition. Ends when the consumer closes; throws
    /// for a partition without an offset to start from (`autoOffsetReset = .none`), a
    /// corrupt batch, or when the group refuses this member for good.
    ///
    /// Read it from one task: two readers would each get some of the records.
    public var records: KafkaConsumerRecords { KafkaConsumerRecords(consumer: self) }

    /// Up to `maxPollRecords` records, as Java's `poll`: what is buffered now, or the
    /// first records fetched within `timeout`; empty when none came or the consumer closed.
    ///
    /// The whole batch counts as returned at once (commit() and auto-commit see all of
    /// it as processed). Use either this or `records`, not both at the same time.
    nonisolated(nonsending) public func poll(timeout: Duration = .seconds(1)) async throws -> [ConsumerRecord] {
        let deadline = NIODeadline.now() + .nanoseconds(Int64(timeout.components.seconds) * 1_000_000_000 + timeout.components.attoseconds / 1_000_000_000)
        while true {
            var wakeFetcher = false
            let (records, stop) = state.withLockedValue { $0.nextRecords(max: configuration.maxPollRecords, wakeFetcher: &wakeFetcher) }
            if wakeFetcher { fetcherBell.ring() }
            if !records.isEmpty { return records }
            switch stop {
            case .failed(let error): throw error
            case .finished: return []
            default: break
            }
            guard NIODeadline.now() < deadline, !Task.isCancelled else { return [] }
            await waitForRecords(until: deadline)
        }
    }

    /// Waits until records may be there, `deadline` passes, or the task is cancelled.
    private func waitForRecords(until deadline: NIODeadline?) async {
        let timer = deadline.map { d in
            MultiThreadedEventLoopGroup.singleton.any().scheduleTask(deadline: d) { [self] in wakeRecordWaiters() }
        }
        defer { timer?.cancel() }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                let waiting = state.withLockedValue { $0.waitForRecords(c) }
                if !waiting { c.resume() }
            }
        } onCancel: {
            wakeRecordWaiters()
        }
    }

    private func wakeRecordWaiters() {
        var wake: [CheckedContinuation<Void, Never>] = []
        state.withLockedValue { $0.cancelRecordWaiters(into: &wake) }
        for w in wake { w.resume() }
    }

    // MARK: seeking

    /// The next record returned for `partition` is at `offset`. Works before the
    /// partition is assigned: the seek then applies when it is.
    public func seek(_ partition: TopicPartition, to offset: Int64) {
        seek([partition], to: .offset(offset))
    }

    /// Reads `partitions` from their first offset still in the log (now, or once assigned).
    public func seekToBeginning(_ partitions: [TopicPartition]) {
        seek(partitions, to: .earliest)
    }

    /// Reads `partitions` from their end: only records written from now on.
    public func seekToEnd(_ partitions: [TopicPartition]) {
        seek(partitions, to: .latest)
    }

    /// Reads `partitions` from the first record whose timestamp is at or after
    /// `timestamp` (ms since the epoch), or from the end when there is none.
    public func seek(_ partitions: [TopicPartition], toTimestamp timestamp: Int64) {
        seek(partitions, to: .timestamp(timestamp))
    }

    private func seek(_ partitions: [TopicPartition], to target: OffsetTarget) {
        state.withLockedValue { s in
            for tp in partitions { s.seek(tp, to: target) }
        }
        fetcherBell.ring()
    }

    /// Stops returning and fetching records of `partitions` until `resume`; the group
    /// membership goes on.
    public func pause(_ partitions: [TopicPartition]) {
        state.withLockedValue { $0.pause(partitions) }
    }

    public func resume(_ partitions: [TopicPartition]) {
        state.withLockedValue { $0.resume(partitions) }
        fetcherBell.ring()
    }

    /// The paused partitions.
    public var paused: Set<TopicPartition> { state.withLockedValue { $0.paused } }

    // MARK: committing

    /// Commits the positions of every assigned partition: everything returned so far
    /// counts as processed. Throws `.commitFailed` when the group rebalanced meanwhile.
    public func commit() async throws {
        let offsets = state.withLockedValue { $0.positions() }
        try await commit(offsets)
    }

    /// Commits `offsets`: for each partition, the offset of the next record to read.
    public func commit(_ offsets: [TopicPartition: Int64]) async throws {
        guard let member else { throw KafkaClientError(.invalidArgument, "commit needs a groupId") }
        guard !offsets.isEmpty else { return }
        let asMember = state.withLockedValue { $0.subscribedTopics != nil }
        var attempt = 0
        while true {
            do {
                try await member.commit(offsets, asMember: asMember)
                state.withLockedValue { $0.markCommitted(offsets) }
                return
            } catch let error as KafkaClientError where error.isRetriable && attempt < 5 {
                attempt += 1
                try await Task.sleep(for: .milliseconds(configuration.retryBackoffMs))
            }
        }
    }

    /// The group's committed offsets of `partitions` (those without one are missing).
    public func committed(_ partitions: [TopicPartition]) async throws -> [TopicPartition: Int64] {
        guard let member else { throw KafkaClientError(.invalidArgument, "committed offsets need a groupId") }
        return try await member.committed(partitions)
    }

    // MARK: lifecycle

    /// Stops fetching, commits (with auto-commit), leaves the group and returns once
    /// `run()` has finished; `records` ends.
    public func close() async {
        beginClose()
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let wait = runStatus.withLockedValue { s -> Bool in
                guard s.started, !s.finished else { return false }
                s.waiters.append(c)
                return true
            }
            if !wait { c.resume() }
        }
    }

    private func beginClose() {
        var wake: [CheckedContinuation<Void, Never>] = []
        state.withLockedValue { $0.beginClose(into: &wake) }
        for w in wake { w.resume() }
        fetcherBell.ring()
        membershipBell.ring()
        autoCommitBell.ring()
    }

    /// Fetches, takes part in the group and auto-commits until `close()` or graceful
    /// shutdown. Throws when the group refused this member for good.
    public func run() async throws {
        let first = runStatus.withLockedValue { s -> Bool in
            defer { s.started = true }
            return !s.started
        }
        guard first else { throw KafkaClientError(.invalidArgument, "run() was already called") }
        var failure: (any Error)?
        do {
            try await withGracefulShutdownHandler {
                try await withThrowingDiscardingTaskGroup { group in
                    group.addTask { await self.runFetcher() }
                    if let member = self.member {
                        group.addTask { try await self.runMembership(member) }
                        if self.configuration.enableAutoCommit {
                            group.addTask { await self.runAutoCommit() }
                        }
                    }
                }
            } onGracefulShutdown: {
                self.beginClose()
            }
        } catch {
            failure = error
        }
        var wake: [CheckedContinuation<Void, Never>] = []
        state.withLockedValue { $0.finishClose(into: &wake) }
        for w in wake { w.resume() }
        await cluster.close()
        let waiters = runStatus.withLockedValue { s -> [CheckedContinuation<Void, Never>] in
            s.finished = true
            defer { s.waiters = [] }
            return s.waiters
        }
        for w in waiters { w.resume() }
        if let failure { throw failure }
    }

    // MARK: records

    nonisolated(nonsending) func nextRecord() async throws -> ConsumerRecord? {
        while true {
            var wakeFetcher = false
            let next = state.withLockedValue { $0.nextRecord(wakeFetcher: &wakeFetcher) }
            if wakeFetcher { fetcherBell.ring() }
            switch next {
            case .record(let record): return record
            case .finished: return nil
            case .failed(let error): throw error
            case .wait:
                if Task.isCancelled { return nil }
                await waitForRecords(until: nil)
            }
        }
    }

    // MARK: fetching

    private func runFetcher() async {
        let backoff = TimeAmount.ms(configuration.retryBackoffMs)
        let maxAge = TimeAmount.ms(configuration.metadataMaxAgeMs)
        var metadataRetryAt = NIODeadline.uptimeNanoseconds(0)
        var lastRefresh = NIODeadline.now()
        await withDiscardingTaskGroup { group in
            while !Task.isCancelled {
                let now = NIODeadline.now()
                let step = state.withLockedValue { $0.fetcherStep(now: now) }
                if step.finished { break }
                var wakeup = step.nextWakeup
                if step.needsMetadata || now >= lastRefresh + maxAge {
                    if now >= metadataRetryAt {
                        metadataRetryAt = now + backoff
                        lastRefresh = now
                        await refreshMetadata()
                    } else {
                        wakeup = min(wakeup ?? metadataRetryAt, metadataRetryAt)
                    }
                }
                if !step.resolutions.isEmpty {
                    let resolutions = step.resolutions
                    group.addTask { await self.resolve(resolutions) }
                }
                for plan in step.fetches {
                    group.addTask { await self.fetch(plan) }
                }
                await fetcherBell.wait(until: wakeup)
            }
        }
    }

    private func refreshMetadata() async {
        let topics = state.withLockedValue { s in Set(s.assignment.map(\.topic)).union(s.subscribedTopics ?? []) }
        guard !topics.isEmpty else {
            state.withLockedValue { $0.update(metadata: MetadataResponse()) }
            return
        }
        do {
            let response = try await cluster.refreshMetadata(topics: topics.sorted(), allowAutoCreate: configuration.allowAutoCreateTopics)
            state.withLockedValue { $0.update(metadata: response) }
        } catch {
            logger.debug("metadata refresh failed", metadata: [LogKey.error: "\(error)"])
        }
    }

    /// Finds positions: committed offsets first, then ListOffsets for the rest.
    private func resolve(_ resolutions: [Resolution]) async {
        defer { fetcherBell.ring() }
        let committed = resolutions.filter { $0.target == .committed }
        if !committed.isEmpty {
            do {
                guard let member else { throw KafkaClientError(.invalidArgument, "no group to take committed offsets from") }
                let offsets = try await member.committed(committed.map(\.partition))
                var wake: [CheckedContinuation<Void, Never>] = []
                state.withLockedValue { s in
                    for r in committed {
                        if let o = offsets[r.partition] {
                            s.resolved(r, offset: o, committed: true)
                        } else {
                            s.noCommittedOffset(r, into: &wake)
                        }
                    }
                }
                for w in wake { w.resume() }
            } catch {
                logger.debug("cannot fetch committed offsets", metadata: [LogKey.error: "\(error)"])
                state.withLockedValue { s in for r in committed { s.resolutionFailed(r, now: .now()) } }
            }
        }
        let admin = KafkaAdmin(cluster: cluster)
        let listed = resolutions.filter { $0.target != .committed }
        for (spec, group) in Dictionary(grouping: listed, by: { r -> Int64 in
            switch r.target {
            case .earliest: return -2
            case .latest: return -1
            case .timestamp(let t): return t
            case .committed, .offset: return -1
            }
        }) {
            do {
                let offsets = try await admin.listOffsets(group.map(\.partition), at: spec)
                state.withLockedValue { s in
                    for r in group {
                        if let o = offsets[r.partition], o >= 0 {
                            s.resolved(r, offset: o, committed: false)
                        } else {
                            s.resolutionFailed(r, now: .now())
                        }
                    }
                }
            } catch {
                logger.debug("cannot list offsets", metadata: [LogKey.error: "\(error)"])
                state.withLockedValue { s in for r in group { s.resolutionFailed(r, now: .now()) } }
            }
        }
    }

    private func fetch(_ plan: FetchPlan) async {
        var results: [PartitionFetchResult]?
        do {
            let connection = try await cluster.connection(to: plan.node)
            let version = try connection.version(for: FetchRequest.self, upTo: 12)
            var topics: [FetchRequest.FetchTopic] = []
            for e in plan.entries {
                let partition = FetchRequest.FetchPartition(partition: e.partition.partition, fetchOffset: e.offset,
                                                            partitionMaxBytes: Int32(clamping: configuration.maxPartitionFetchBytes))
                if topics.last?.topic == e.partition.topic {
                    topics[topics.count - 1].partitions.append(partition)
                } else {
                    topics.append(.init(topic: e.partition.topic, partitions: [partition]))
                }
            }
            let request = FetchRequest(replicaId: -1, maxWaitMs: Int32(clamping: configuration.fetchMaxWaitMs),
                                       minBytes: Int32(clamping: configuration.fetchMinBytes),
                                       maxBytes: Int32(clamping: configuration.fetchMaxBytes),
                                       isolationLevel: configuration.isolationLevel.rawValue,
                                       sessionId: 0, sessionEpoch: -1, topics: topics)
            let response = try await connection.send(request, version: version,
                                                      timeout: .milliseconds(configuration.requestTimeoutMs + configuration.fetchMaxWaitMs))
            if response.errorCode != 0 {
                throw KafkaClientError.broker(KafkaErrorCode(rawValue: response.errorCode), "fetch from broker \(plan.node)")
            }
            var byPartition: [TopicPartition: FetchResponse.PartitionData] = [:]
            for t in response.responses {
                for p in t.partitions { byPartition[TopicPartition(topic: t.topic, partition: p.partitionIndex)] = p }
            }
            results = plan.entries.map { e in
                guard let data = byPartition[e.partition] else { return .empty(highWatermark: -1) }
                return Self.prepare(data, e, isolationLevel: configuration.isolationLevel, checkCRCs: configuration.checkCRCs)
            }
        } catch {
            logger.debug("fetch failed", metadata: [LogKey.node: "\(plan.node)", LogKey.error: "\(error)"])
        }
        var wake: [CheckedContinuation<Void, Never>] = []
        state.withLockedValue { $0.completeFetch(plan, results, now: .now(), into: &wake) }
        for w in wake { w.resume() }
        fetcherBell.ring()
    }

    /// Turns a partition's fetched bytes into batches the record cursor can read:
    /// checked, decompressed, without control batches and (read_committed) without
    /// aborted transactions. Runs in the fetch task, off the reader's path.
    static func prepare(_ data: FetchResponse.PartitionData, _ entry: FetchPlan.Entry, isolationLevel: IsolationLevel,
                        checkCRCs: Bool) -> PartitionFetchResult {
        if data.errorCode != 0 { return .error(KafkaErrorCode(rawValue: data.errorCode)) }
        guard let bytes = data.records, bytes.readableBytes > 0 else { return .empty(highWatermark: data.highWatermark) }
        let readCommitted = isolationLevel == .readCommitted
        let aborted = (data.abortedTransactions ?? []).sorted { $0.firstOffset < $1.firstOffset }
        var nextAborted = 0
        var abortedProducers = Set<Int64>()
        var reader = RecordBatchReader(bytes, verifyCRC: checkCRCs)
        var batches: [PreparedBatch] = []
        var nextOffset = entry.offset
        var failure: KafkaClientError?
        while true {
            let batch: RecordBatch
            do {
                guard let b = try reader.next() else { break }
                batch = b
            } catch {
                failure = KafkaClientError(.malformedResponse, "corrupt batch in \(entry.partition.topic)-\(entry.partition.partition) at offset \(nextOffset): \(error)")
                break
            }
            guard batch.nextOffset > entry.offset else { continue }
            if readCommitted {
                while nextAborted < aborted.count, aborted[nextAborted].firstOffset <= batch.lastOffset {
                    abortedProducers.insert(aborted[nextAborted].producerId)
                    nextAborted += 1
                }
            }
            if batch.isControl {
                if readCommitted, Self.isAbortMarker(batch) { abortedProducers.remove(batch.producerId) }
                nextOffset = batch.nextOffset
                continue
            }
            if readCommitted, batch.isTransactional, abortedProducers.contains(batch.producerId) {
                nextOffset = batch.nextOffset
                continue
            }
            do {
                let records = try batch.decompressedRecords(maximumSize: Self.maxDecompressedBatchBytes)
                batches.append(PreparedBatch(baseOffset: batch.baseOffset, baseTimestamp: batch.baseTimestamp,
                                             maxTimestamp: batch.maxTimestamp, isLogAppendTime: batch.isLogAppendTime, records: records))
                nextOffset = batch.nextOffset
            } catch {
                failure = KafkaClientError(.malformedResponse, "cannot read the batch at \(entry.partition.topic)-\(entry.partition.partition) offset \(batch.baseOffset): \(error)")
                break
            }
        }
        if batches.isEmpty, nextOffset == entry.offset, failure == nil { return .empty(highWatermark: data.highWatermark) }
        return .chunk(FetchedChunk(partition: entry.partition, epoch: entry.epoch, batches: batches, nextOffset: nextOffset, error: failure),
                      highWatermark: data.highWatermark)
    }

    /// Whether a control batch holds an ABORT marker (key: version int16, type int16 = 0).
    private static func isAbortMarker(_ batch: RecordBatch) -> Bool {
        guard var records = try? batch.records(), let first = try? records.next(), let key = first.key,
              let type = key.getInteger(at: key.readerIndex + 2, as: Int16.self) else { return false }
        return type == 0
    }

    // MARK: group membership

    private func runMembership(_ member: GroupMember) async throws {
        var joinedVersion = -1
        var assigned: [TopicPartition] = []
        var needsJoin = true
        // Whether the current generation uses the incremental (cooperative) protocol.
        var cooperative = false
        var nextHeartbeat = NIODeadline.now()
        let interval = TimeAmount.ms(configuration.heartbeatIntervalMs)
        let backoff = TimeAmount.ms(configuration.retryBackoffMs)
        while !Task.isCancelled {
            let (lifecycle, topics, version, listener) = state.withLockedValue {
                ($0.lifecycle, $0.subscribedTopics, $0.subscriptionVersion, $0.rebalanceListener)
            }
            guard lifecycle == .running else { break }
            guard let topics else {
                let isMember = await !member.memberId.isEmpty
                if !assigned.isEmpty || isMember {
                    await revoke(assigned, listener: listener, member: member)
                    assigned = []
                    await member.leave()
                }
                needsJoin = true
                await membershipBell.wait(until: nil)
                continue
            }
            if needsJoin || version != joinedVersion {
                if !assigned.isEmpty {
                    if cooperative {
                        // Incremental: keep reading through the rebalance; give up only
                        // the topics no longer subscribed.
                        let dropped = assigned.filter { !topics.contains($0.topic) }
                        if !dropped.isEmpty {
                            await revoke(dropped, keeping: assigned.filter { topics.contains($0.topic) }, listener: listener, member: member)
                            assigned = assigned.filter { topics.contains($0.topic) }
                        }
                    } else {
                        // Eager: give up the whole assignment, then rejoin.
                        await revoke(assigned, listener: listener, member: member)
                        assigned = []
                    }
                }
                do {
                    let assignment = try await member.join(topics: topics, owned: assigned)
                    joinedVersion = version
                    needsJoin = false
                    cooperative = assignment.strategy?.isCooperative ?? false
                    let new = Set(assignment.partitions)
                    let revoked = assigned.filter { !new.contains($0) }
                    let added = assignment.partitions.filter { !Set(assigned).contains($0) }
                    if !revoked.isEmpty {
                        // Only cooperative groups get here: eager members own nothing when they join.
                        await revoke(revoked, keeping: assigned.filter { new.contains($0) }, listener: listener, member: member)
                    }
                    assigned = assignment.partitions
                    var wake: [CheckedContinuation<Void, Never>] = []
                    let current = state.withLockedValue { s -> Bool in
                        guard s.lifecycle == .running, s.subscriptionVersion == version else { return false }
                        s.setAssignment(new, into: &wake)
                        return true
                    }
                    for w in wake { w.resume() }
                    fetcherBell.ring()
                    logger.info("partitions assigned", metadata: [
                        LogKey.generation: "\(assignment.generationId)",
                        "kafka.partitions": "\(assignment.partitions.sorted().map { "\($0.topic)-\($0.partition)" }.joined(separator: ","))",
                        "kafka.protocol": "\(assignment.strategy?.protocolName ?? "?")",
                    ])
                    if current { await listener.onPartitionsAssigned(cooperative ? added : assignment.partitions) }
                    nextHeartbeat = .now() + interval
                    if !revoked.isEmpty {
                        // What this member gave up goes to others in the next round: rejoin now.
                        needsJoin = true
                        continue
                    }
                } catch let error as KafkaClientError where error.isRetriable {
                    logger.debug("join failed, retrying", metadata: [LogKey.error: "\(error)"])
                    await membershipBell.wait(until: .now() + backoff)
                    continue
                } catch {
                    let failure = error as? KafkaClientError ?? KafkaClientError(.groupFailed, "\(error)")
                    logger.error("cannot join the group", metadata: [LogKey.error: "\(failure)"])
                    var wake: [CheckedContinuation<Void, Never>] = []
                    state.withLockedValue { $0.fail(failure, into: &wake) }
                    for w in wake { w.resume() }
                    throw failure
                }
            }
            await membershipBell.wait(until: nextHeartbeat)
            guard NIODeadline.now() >= nextHeartbeat else { continue }
            do {
                if let reason = try await member.heartbeat() {
                    needsJoin = true
                    if reason == .lost {
                        logger.info("partitions lost: the group moved on without this member")
                        await lose(assigned, listener: listener)
                        assigned = []
                    }
                }
                nextHeartbeat = .now() + interval
            } catch let error as KafkaClientError where error.isRetriable {
                logger.debug("heartbeat failed", metadata: [LogKey.error: "\(error)"])
                nextHeartbeat = .now() + backoff
            } catch {
                let failure = error as? KafkaClientError ?? KafkaClientError(.groupFailed, "\(error)")
                if failure.kafkaCode == .fencedInstanceId {
                    var wake: [CheckedContinuation<Void, Never>] = []
                    state.withLockedValue { $0.fail(failure, into: &wake) }
                    for w in wake { w.resume() }
                    throw failure
                }
                logger.warning("heartbeat failed", metadata: [LogKey.error: "\(failure)"])
                nextHeartbeat = .now() + backoff
            }
        }
        // Closing: commit what was read, tell the listener, leave.
        let listener = state.withLockedValue { $0.rebalanceListener }
        if !assigned.isEmpty {
            await revoke(assigned, listener: listener, member: member)
        }
        await member.leave()
    }

    /// Gives up `partitions` (all of them before an eager rejoin, some in the incremental
    /// protocol): commits their positions (with auto-commit), tells the listener, stops
    /// fetching them; `keeping` stays assigned.
    private func revoke(_ partitions: [TopicPartition], keeping: [TopicPartition] = [], listener: RebalanceListener,
                        member: GroupMember) async {
        if configuration.enableAutoCommit, await member.isStable {
            let revoked = Set(partitions)
            let offsets = state.withLockedValue { $0.uncommittedPositions() }.filter { revoked.contains($0.key) }
            do {
                try await commit(offsets)
            } catch {
                logger.warning("commit before rebalance failed", metadata: [LogKey.error: "\(error)"])
            }
        }
        await listener.onPartitionsRevoked(partitions)
        var wake: [CheckedContinuation<Void, Never>] = []
        state.withLockedValue { $0.setAssignment(Set(keeping), into: &wake) }
        for w in wake { w.resume() }
    }

    private func lose(_ partitions: [TopicPartition], listener: RebalanceListener) async {
        var wake: [CheckedContinuation<Void, Never>] = []
        state.withLockedValue { $0.setAssignment([], into: &wake) }
        for w in wake { w.resume() }
        if let onLost = listener.onPartitionsLost {
            await onLost(partitions)
        } else {
            await listener.onPartitionsRevoked(partitions)
        }
    }

    private func runAutoCommit() async {
        let interval = TimeAmount.ms(configuration.autoCommitIntervalMs)
        while !Task.isCancelled {
            await autoCommitBell.wait(until: .now() + interval)
            let (running, offsets, manual) = state.withLockedValue {
                ($0.lifecycle == .running, $0.uncommittedPositions(), $0.subscribedTopics == nil)
            }
            if manual, !offsets.isEmpty {
                // Assigned partitions have no rebalance or leave to commit at: commit
                // on every tick, the last one at close.
                do { try await commit(offsets) } catch {
                    logger.warning("auto-commit failed", metadata: [LogKey.error: "\(error)"])
                }
            } else if running, !offsets.isEmpty, let member, await member.isStable {
                do { try await commit(offsets) } catch {
                    logger.warning("auto-commit failed", metadata: [LogKey.error: "\(error)"])
                }
            }
            if !running { return }
        }
    }
}

/// The consumer's records as an `AsyncSequence`; see `KafkaConsumer.records`.
public struct KafkaConsumerRecords: AsyncSequence, Sendable {
    public typealias Element = ConsumerRecord
    let consumer: KafkaConsumer

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(consumer: consumer)
    }

    public struct AsyncIterator: AsyncIteratorProtocol {
        let consumer: KafkaConsumer

        /// The next record; waits for a fetch when none is buffered. Asking for it marks
        /// the previous one processed, which is what auto-commit commits.
        public mutating func next() async throws -> ConsumerRecord? {
            try await consumer.nextRecord()
        }

        /// The next record, on the caller's executor: a buffered record costs no hop to
        /// another thread (what `for try await` uses).
        public mutating func next(isolation actor: isolated (any Actor)?) async throws -> ConsumerRecord? {
            try await consumer.nextRecord()
        }
    }
}
