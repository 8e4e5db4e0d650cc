import KafkaProtocol
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import ServiceLifecycle

/// Sends records to a Kafka cluster, batched per partition, with idempotent retries.
///
/// `run()` does the sending: start it in a `ServiceGroup` (or a task of your own) before
/// or right after the first `send`. Records wait in per-partition batches until a batch
/// reaches `batchSize` bytes or has waited `lingerMs`; then one Produce request per broker
/// carries the next batch of every partition that broker leads, with up to
/// `maxInFlightRequestsPerConnection` requests on the wire.
///
/// ```swift
/// let producer = try KafkaProducer(configuration: .init(bootstrapServers: ["localhost:9092"]))
/// try await withThrowingTaskGroup(of: Void.self) { group in
///     group.addTask { try await producer.run() }
///     let metadata = try await producer.send(topic: "weather", key: "oslo", value: "-3.5")
///     await producer.close()
/// }
/// ```
///
/// `send` and `sendAndForget` run on the caller's executor (`nonisolated(nonsending)`):
/// a record that fits in the buffer costs no hop to another thread, even when sent from
/// the main actor.
///
/// Graceful shutdown (or `close()`) stops new sends and delivers what is queued before
/// `run()` returns; cancelling `run()` fails what is still queued.
public final class KafkaProducer: Service, Sendable {
    public let configuration: Configuration
    /// The cluster connections; internal so tests can break them under the producer.
    let cluster: KafkaCluster
    private let logger: Logger
    private let state: NIOLockedValueBox<RecordAccumulator>
    private let doorbell = Doorbell()
    private let started = NIOLockedValueBox(false)
    /// InitProducerId failures in a row: the first (and every 50th) is a warning, the
    /// retries between them only debug lines, so an unreachable cluster does not flood the log.
    private let producerIdFailures = NIOLockedValueBox(0)
    private let reports: AsyncStream<DeliveryReport>
    private let reportsContinuation: AsyncStream<DeliveryReport>.Continuation

    /// Outcomes of records sent with `sendAndForget` when `configuration.deliveryReports`
    /// is on, in the order batches complete. Ends when the producer stops.
    public var deliveryReports: AsyncStream<DeliveryReport> { reports }

    /// Checks the configuration; connects nothing until `run()` or the first `send`.
    public init(configuration: Configuration, logger: Logger = Logger(label: "kafka.producer")) throws {
        try configuration.validate()
        self.configuration = configuration
        self.logger = logger
        self.cluster = try KafkaCluster(bootstrapServers: configuration.bootstrapServers, clientId: configuration.clientId,
                                        requestTimeout: .milliseconds(configuration.requestTimeoutMs),
                                        reconnectBackoffMs: configuration.reconnectBackoffMs, reconnectBackoffMaxMs: configuration.reconnectBackoffMaxMs)
        self.state = NIOLockedValueBox(RecordAccumulator(settings: .init(configuration)))
        (reports, reportsContinuation) = AsyncStream.makeStream(of: DeliveryReport.self)
    }

    // MARK: sending

    /// Sends a record and waits until the broker has it (as `acks` defines).
    ///
    /// Suspends while the topic's metadata is fetched and while `bufferMemory` is full,
    /// each up to `maxBlockMs` (then throws `.metadataTimedOut` or
    /// `.bufferMemoryTimedOut`); then until the record's batch is answered, which takes at
    /// least `lingerMs` unless the batch fills sooner. Cancelling the calling task does
    /// not withdraw a record that is already queued.
    nonisolated(nonsending) public func send(_ record: ProducerRecord) async throws -> RecordMetadata {
        let size = record.estimatedSize
        try checkSize(size, record.topic)
        let timestamp = record.timestamp ?? currentTimeMillis()
        if state.withLockedValue({ $0.partitionCount(record.topic) }) == nil {
            try await waitForTopic(record.topic)
        }
        try await reserveMemory(size)
        return try await withCheckedThrowingContinuation { continuation in
            let result = state.withLockedValue {
                $0.append(topic: record.topic, partition: record.partition, key: record.key, value: record.value, headers: record.headers,
                          size: size, timestamp: timestamp, reserved: true, target: .continuation(continuation))
            }
            switch result {
            case .appended(_, let wake):
                if wake { doorbell.ring() }
            case .failed(let error):
                releaseMemory(size)
                continuation.resume(throwing: error)
            case .needsMetadata, .needsMemory:
                releaseMemory(size)
                continuation.resume(throwing: KafkaClientError(.invalidArgument, "topic '\(record.topic)' lost its partitions"))
            }
        }
    }

    /// Sends a record and waits until the broker has it.
    nonisolated(nonsending) public func send(topic: String, key: ByteBuffer? = nil, value: ByteBuffer?, headers: [KafkaHeader] = [],
                     timestamp: Int64? = nil, partition: Int32? = nil) async throws -> RecordMetadata {
        try await send(ProducerRecord(topic: topic, partition: partition, key: key, value: value, headers: headers, timestamp: timestamp))
    }

    /// Sends a record with a UTF-8 key and value and waits until the broker has it.
    nonisolated(nonsending) public func send(topic: String, key: String? = nil, value: String?, headers: [KafkaHeader] = [],
                     timestamp: Int64? = nil, partition: Int32? = nil) async throws -> RecordMetadata {
        try await send(ProducerRecord(topic: topic, partition: partition, key: key, value: value, headers: headers, timestamp: timestamp))
    }

    /// Queues a record without waiting for its delivery; returns its id.
    ///
    /// Suspends only for back-pressure (`bufferMemory` full) and for unknown topics'
    /// metadata. The outcome goes to `onDelivery` when given (called on a producer
    /// thread: keep it short), else to `deliveryReports` when that is enabled, tagged
    /// with the returned id. This is the fast path: without `onDelivery` or reports, a
    /// record costs no allocation of its own.
    @discardableResult
    nonisolated(nonsending) public func sendAndForget(_ record: ProducerRecord,
                                                      onDelivery: (@Sendable (Result<RecordMetadata, KafkaClientError>) -> Void)? = nil) async throws -> UInt64 {
        let size = record.estimatedSize
        let target = onDelivery.map { DeliveryTarget.closure($0) }
        if let id = try tryAppend(topic: record.topic, partition: record.partition, key: record.key, value: record.value,
                                  headers: record.headers, timestamp: record.timestamp, size: size, target: target) {
            return id
        }
        return try await appendWaiting(record, size: size, target: target)
    }

    /// Appends without waiting when the topic is known and memory is free (the common
    /// case, synchronous so it costs no extra async frame); nil when it must wait.
    @inline(__always)
    private func tryAppend(topic: String, partition: Int32?, key: ByteBuffer?, value: ByteBuffer?, headers: [KafkaHeader],
                           timestamp: Int64?, size: Int, target: DeliveryTarget?) throws -> UInt64? {
        try checkSize(size, topic)
        let timestamp = timestamp ?? currentTimeMillis()
        let result = state.withLockedValue {
            $0.append(topic: topic, partition: partition, key: key, value: value, headers: headers, size: size, timestamp: timestamp,
                      reserved: false, target: target)
        }
        switch result {
        case .appended(let id, let wake):
            if wake { doorbell.ring() }
            return id
        case .failed(let error):
            throw error
        case .needsMetadata, .needsMemory:
            return nil
        }
    }

    /// The slow path of `sendAndForget`: waits for metadata or memory, then appends.
    private func appendWaiting(_ record: ProducerRecord, size: Int, target: DeliveryTarget?) async throws -> UInt64 {
        let timestamp = record.timestamp ?? currentTimeMillis()
        var reserved = false
        while true {
            let result = state.withLockedValue {
                $0.append(topic: record.topic, partition: record.partition, key: record.key, value: record.value, headers: record.headers,
                          size: size, timestamp: timestamp, reserved: reserved, target: target)
            }
            switch result {
            case .appended(let id, let wake):
                if wake { doorbell.ring() }
                return id
            case .needsMetadata:
                do {
                    try await waitForTopic(record.topic)
                } catch {
                    if reserved { releaseMemory(size) }
                    throw error
                }
            case .needsMemory:
                try await reserveMemory(size)
                reserved = true
            case .failed(let error):
                if reserved { releaseMemory(size) }
                throw error
            }
        }
    }

    /// Queues a record without waiting for its delivery; returns its id.
    @discardableResult
    nonisolated(nonsending) public func sendAndForget(topic: String, key: ByteBuffer? = nil, value: ByteBuffer?, headers: [KafkaHeader] = [],
                              timestamp: Int64? = nil, partition: Int32? = nil,
                              onDelivery: (@Sendable (Result<RecordMetadata, KafkaClientError>) -> Void)? = nil) async throws -> UInt64 {
        let size = ProducerRecord.estimatedSize(key: key, value: value, headers: headers)
        let target = onDelivery.map { DeliveryTarget.closure($0) }
        if let id = try tryAppend(topic: topic, partition: partition, key: key, value: value, headers: headers,
                                  timestamp: timestamp, size: size, target: target) {
            return id
        }
        return try await appendWaiting(ProducerRecord(topic: topic, partition: partition, key: key, value: value, headers: headers, timestamp: timestamp),
                                       size: size, target: target)
    }

    /// Queues a record with a UTF-8 key and value without waiting for its delivery.
    @discardableResult
    nonisolated(nonsending) public func sendAndForget(topic: String, key: String? = nil, value: String?, headers: [KafkaHeader] = [],
                              timestamp: Int64? = nil, partition: Int32? = nil,
                              onDelivery: (@Sendable (Result<RecordMetadata, KafkaClientError>) -> Void)? = nil) async throws -> UInt64 {
        try await sendAndForget(ProducerRecord(topic: topic, partition: partition, key: key, value: value, headers: headers, timestamp: timestamp),
                                onDelivery: onDelivery)
    }

    /// Sends every queued record now (ignoring `lingerMs`) and returns once all records
    /// queued before the call are answered, successfully or not.
    public func flush() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let waiting = state.withLockedValue { $0.addFlushWaiter(continuation) }
            if waiting { doorbell.ring() } else { continuation.resume() }
        }
    }

    /// Stops accepting records, delivers the queued ones and returns when they are
    /// answered; `run()` returns soon after.
    public func close() async {
        beginClose()
        await flush()
    }

    // MARK: running

    /// Sends batches until `close()` or graceful shutdown, then delivers what is queued
    /// and returns. Cancellation stops at once and fails the records still queued.
    public func run() async throws {
        let first = started.withLockedValue { s -> Bool in
            defer { s = true }
            return !s
        }
        guard first else { throw KafkaClientError(.invalidArgument, "run() was already called") }
        try await withGracefulShutdownHandler {
            try await self.runSender()
        } onGracefulShutdown: {
            self.beginClose()
        }
    }

    private func runSender() async throws {
        let backoff = TimeAmount.ms(configuration.retryBackoffMs)
        let maxAge = TimeAmount.ms(configuration.metadataMaxAgeMs)
        var lastRefresh = NIODeadline.now()
        var metadataRetryAt = NIODeadline.uptimeNanoseconds(0)
        var producerIdRetryAt = NIODeadline.uptimeNanoseconds(0)
        await withDiscardingTaskGroup { group in
            while !Task.isCancelled {
                let now = NIODeadline.now()
                var completions = Completions()
                let drain = state.withLockedValue { $0.drain(now: now, completions: &completions) }
                finish(completions)
                for plan in drain.requests { await dispatch(plan, in: &group) }
                if drain.finished { break }
                var wakeup = drain.nextWakeup
                if drain.needsProducerId {
                    if now >= producerIdRetryAt {
                        if await !initProducerId() { producerIdRetryAt = now + backoff }
                        continue
                    }
                    wakeup = min(wakeup ?? producerIdRetryAt, producerIdRetryAt)
                }
                let topics = state.withLockedValue { $0.knownTopics }
                if !topics.isEmpty, drain.needsMetadata || now >= lastRefresh + maxAge {
                    if now >= metadataRetryAt {
                        metadataRetryAt = now + backoff
                        lastRefresh = now
                        do {
                            try await refreshMetadata(topics)
                        } catch {
                            logger.debug("metadata refresh failed", metadata: [LogKey.error: "\(error)"])
                        }
                        continue
                    }
                    wakeup = min(wakeup ?? metadataRetryAt, metadataRetryAt)
                }
                if drain.requests.isEmpty { await doorbell.wait(until: wakeup) }
            }
            if Task.isCancelled {
                // Requests on the wire fail at once instead of waiting out their timeout.
                await cluster.close()
            }
        }
        var completions = Completions()
        state.withLockedValue { $0.abort(KafkaClientError(.closed, "the producer stopped before the record was delivered"), into: &completions) }
        finish(completions)
        reportsContinuation.finish()
        await cluster.close()
    }

    /// Writes one Produce request now (so requests reach the broker in drain order) and
    /// adds a child task that waits for its answer.
    private func dispatch(_ plan: ProduceRequestPlan, in group: inout DiscardingTaskGroup) async {
        let acks = configuration.acks
        do {
            let connection = try await cluster.connection(to: plan.node)
            let version = try connection.version(for: ProduceRequest.self)
            var topicData: [ProduceRequest.TopicProduceData] = []
            for entry in plan.entries {
                let data = ProduceRequest.PartitionProduceData(index: entry.partition, records: entry.batch.buffer)
                if topicData.last?.name == entry.topic {
                    topicData[topicData.count - 1].partitionData.append(data)
                } else if let i = topicData.firstIndex(where: { $0.name == entry.topic }) {
                    topicData[i].partitionData.append(data)
                } else {
                    topicData.append(.init(name: entry.topic, partitionData: [data]))
                }
            }
            let request = ProduceRequest(transactionalId: nil, acks: acks.rawValue,
                                         timeoutMs: Int32(clamping: configuration.requestTimeoutMs), topicData: topicData)
            let future = try connection.write(request, version: version, expectResponse: acks != .zero,
                                              frameCapacity: plan.bytes + 64 * plan.entries.count + 256)
            group.addTask {
                let outcome: ProduceOutcome
                do {
                    if var body = try await future.get() {
                        outcome = .response(try KafkaConnection.decodeResponse(ProduceRequest.self, from: &body, version: version))
                    } else {
                        outcome = .response(nil)
                    }
                } catch let error as KafkaClientError {
                    // A timed-out request may still be answered later; closing the
                    // connection keeps its batches from racing their own retries.
                    if error.code == .requestTimedOut { connection.close() }
                    outcome = .failure(error)
                } catch {
                    outcome = .failure(KafkaClientError(.connectionClosed, "\(error)"))
                }
                self.complete(plan, outcome)
            }
        } catch {
            complete(plan, .failure(error as? KafkaClientError ?? KafkaClientError(.connectionClosed, "\(error)")))
        }
    }

    private func complete(_ plan: ProduceRequestPlan, _ outcome: ProduceOutcome) {
        if case .failure(let error) = outcome {
            logger.debug("produce request failed", metadata: [LogKey.node: "\(plan.node)", LogKey.error: "\(error)"])
        }
        var completions = Completions()
        state.withLockedValue { $0.complete(plan, outcome, acks: configuration.acks, now: .now(), completions: &completions) }
        finish(completions)
        doorbell.ring()
    }

    /// InitProducerId; true when the producer has an id.
    private func initProducerId() async -> Bool {
        do {
            let connection = try await cluster.anyConnection()
            let response = try await connection.send(InitProducerIdRequest(transactionalId: nil, transactionTimeoutMs: Int32.max,
                                                                           producerId: -1, producerEpoch: -1))
            guard response.errorCode == 0 else {
                throw KafkaClientError.broker(KafkaErrorCode(rawValue: response.errorCode), "InitProducerId")
            }
            state.withLockedValue { $0.setProducerId(response.producerId, epoch: response.producerEpoch) }
            producerIdFailures.withLockedValue { $0 = 0 }
            logger.debug("producer id", metadata: ["kafka.producer_id": "\(response.producerId)", "kafka.producer_epoch": "\(response.producerEpoch)"])
            return true
        } catch {
            let failures = producerIdFailures.withLockedValue { n -> Int in
                n += 1
                return n
            }
            if failures == 1 || failures % 50 == 0 {
                logger.warning("cannot get a producer id; retrying", metadata: [LogKey.error: "\(error)", "attempts": "\(failures)"])
            } else {
                logger.debug("cannot get a producer id", metadata: [LogKey.error: "\(error)", "attempts": "\(failures)"])
            }
            return false
        }
    }

    /// Batches resent after a retriable failure so far.
    var retriedBatches: Int { state.withLockedValue { $0.retriedBatches } }

    /// Bytes of records accepted and not yet answered.
    var bufferedBytes: Int { state.withLockedValue { $0.bufferedBytes } }

    // MARK: metadata and memory

    private func refreshMetadata(_ topics: [String]) async throws {
        let response = try await cluster.refreshMetadata(topics: topics, allowAutoCreate: true)
        state.withLockedValue { $0.update(metadata: response) }
        doorbell.ring()
    }

    /// Waits until the topic's partitions are known, as the Java client's `send` does
    /// (auto-creating it where the broker allows); up to `maxBlockMs`.
    private func waitForTopic(_ topic: String) async throws {
        let deadline = NIODeadline.now() + .ms(configuration.maxBlockMs)
        var lastError: (any Error)?
        while true {
            do {
                try await refreshMetadata([topic])
                lastError = nil
            } catch {
                lastError = error
            }
            let (known, code) = state.withLockedValue { ($0.partitionCount(topic) != nil, $0.topicError(topic)) }
            if known { return }
            if let code, !code.isRetriable {
                throw KafkaClientError.broker(code, "topic '\(topic)'")
            }
            guard NIODeadline.now() + .ms(configuration.retryBackoffMs) < deadline else {
                throw KafkaClientError(.metadataTimedOut, "no metadata for topic '\(topic)' within \(configuration.maxBlockMs) ms: "
                                       + (lastError.map { "\($0)" } ?? code.map { $0.name } ?? "no partitions"))
            }
            try await Task.sleep(for: .milliseconds(configuration.retryBackoffMs))
        }
    }

    private func checkSize(_ size: Int, _ topic: String) throws {
        if size > configuration.maxRequestSize || size > configuration.bufferMemory {
            throw KafkaClientError(.recordTooLarge, "a record of \(size) bytes for '\(topic)' exceeds maxRequestSize "
                                   + "(\(configuration.maxRequestSize)) or bufferMemory (\(configuration.bufferMemory))")
        }
    }

    /// Reserves `size` bytes of `bufferMemory`, waiting up to `maxBlockMs` for them.
    private func reserveMemory(_ size: Int) async throws {
        if state.withLockedValue({ $0.tryReserve(size) }) { return }
        var timer: Scheduled<Void>?
        defer { timer?.cancel() }
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            switch state.withLockedValue({ $0.waitForMemory(size, continuation) }) {
            case .granted:
                break
            case .queued(let id):
                timer = MultiThreadedEventLoopGroup.singleton.any().scheduleTask(in: .ms(configuration.maxBlockMs)) { [self] in
                    var completions = Completions()
                    let abandoned = state.withLockedValue { $0.abandonMemoryWait(id, into: &completions) }
                    abandoned?.resume(throwing: KafkaClientError(
                        .bufferMemoryTimedOut, "\(size) bytes of buffer memory did not become free within maxBlockMs "
                            + "(\(configuration.maxBlockMs) ms); bufferMemory is \(configuration.bufferMemory) bytes"))
                    finish(completions)
                }
                // The sender stops lingering while someone waits for memory.
                doorbell.ring()
            case .closed:
                continuation.resume(throwing: KafkaClientError(.closed, "the producer is closed"))
            }
        }
    }

    private func releaseMemory(_ size: Int) {
        var completions = Completions()
        state.withLockedValue { $0.release(size, into: &completions) }
        finish(completions)
    }

    private func beginClose() {
        var completions = Completions()
        state.withLockedValue { $0.beginClose(into: &completions) }
        finish(completions)
        doorbell.ring()
    }

    /// Hands out outcomes and wakes waiters; never called with the lock held.
    private func finish(_ completions: Completions) {
        guard !completions.isEmpty else { return }
        for (target, result) in completions.deliveries {
            switch target {
            case .continuation(let c): c.resume(with: result.mapError { $0 as any Error })
            case .closure(let f): f(result)
            case .report: break
            }
        }
        for report in completions.reports { reportsContinuation.yield(report) }
        for c in completions.memoryGranted { c.resume() }
        for (c, error) in completions.memoryFailed { c.resume(throwing: error) }
        for c in completions.flushed { c.resume() }
    }
}
