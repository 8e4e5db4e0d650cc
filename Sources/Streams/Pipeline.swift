import Foundation
import KafkaClient
import Logging
import NIOCore

/// Where a pipeline reads: one topic, all of its partitions.
public struct StreamSource: Sendable {
    public var bootstrapServers: [String]
    public var topic: String
    /// The consumer group the pipeline commits its position to after each checkpoint, so
    /// `tributary groups describe` shows its lag. The checkpoint stored with the output,
    /// not the group, decides where a restart resumes.
    public var groupId: String?

    public init(bootstrapServers: [String], topic: String, groupId: String? = nil) {
        self.bootstrapServers = bootstrapServers
        self.topic = topic
        self.groupId = groupId
    }
}

/// A typed stream of a topic's records: `map` and `filter` them, then window and
/// aggregate them into a sink.
///
/// ```swift
/// let monthly = Stream(source: StreamSource(bootstrapServers: ["127.0.0.1:9092"], topic: "weather"))
///     .map { try WeatherReading(json: $0.value) }
///     .window(.count(30), aggregate: WeatherAverages())
/// try await monthly.run(into: FileSink(path: "weather_aggregation.txt"), format: WeatherFormat.monthly.rowFormat)
/// ```
public struct Stream<Element>: Sendable {
    public let source: StreamSource
    let transform: @Sendable (ConsumerRecord) throws -> Element?
    /// True for the untransformed records (`Stream(source:)`).
    let isRecords: Bool

    init(source: StreamSource, isRecords: Bool = false, transform: @escaping @Sendable (ConsumerRecord) throws -> Element?) {
        self.source = source
        self.isRecords = isRecords
        self.transform = transform
    }

    /// Transforms each element; a throw stops the pipeline with the record's position.
    public func map<U>(_ f: @escaping @Sendable (Element) throws -> U) -> Stream<U> {
        // On the records themselves, call `f` directly: going through the identity
        // transform would copy every record (four retains and releases) for nothing.
        if isRecords, let direct = f as? @Sendable (ConsumerRecord) throws -> U {
            return Stream<U>(source: source) { record in try direct(record) }
        }
        let t = transform
        return Stream<U>(source: source) { record in try t(record).map(f) }
    }

    /// Keeps the elements for which `isIncluded` holds.
    public func filter(_ isIncluded: @escaping @Sendable (Element) throws -> Bool) -> Stream<Element> {
        let t = transform
        return Stream(source: source) { record in
            guard let e = try t(record), try isIncluded(e) else { return nil }
            return e
        }
    }

    /// Groups elements into windows and folds each with `aggregate`.
    ///
    /// - Parameters:
    ///   - key: a key per element for keyed windows (one window per key); nil for global.
    ///   - eventTime: the element's event time in ms since the epoch, for time windows;
    ///     nil (or a nil result) uses the record's timestamp.
    public func window<A: Aggregation>(_ spec: WindowSpec, key: (@Sendable (Element) -> String?)? = nil,
                                       eventTime: (@Sendable (Element) -> Int64?)? = nil,
                                       aggregate: A) -> WindowedStream<A> where A.Input == Element {
        WindowedStream(source: source, transform: transform, spec: spec, aggregation: aggregate, key: key, eventTime: eventTime)
    }
}

extension Stream where Element == ConsumerRecord {
    /// The records of `source` as they are.
    public init(source: StreamSource) {
        self.init(source: source, isRecords: true) { $0 }
    }
}

/// How closed windows become output rows.
public struct RowFormat<Output>: Sendable {
    /// Written once, before the first row of an empty output (the tutorial's CSV header
    /// is written with the first week, so an output without rows stays empty).
    public var header: String?
    /// The row's text, terminator included.
    public var row: @Sendable (WindowResult<Output>) -> String

    public init(header: String? = nil, row: @escaping @Sendable (WindowResult<Output>) -> String) {
        self.header = header
        self.row = row
    }

    /// The id a topic sink puts in the `window-id` header: `[key@]partition:id` for count
    /// windows, `[key@]start` for time windows.
    static func windowId(_ r: WindowResult<Output>) -> String {
        let base = r.partition.map { "\($0):\(r.id)" } ?? "\(r.id)"
        return r.key.map { "\($0)@" + base } ?? base
    }
}

/// How a run starts and when it stops.
public struct RunOptions: Sendable {
    public enum Start: Sendable, Hashable {
        /// Continue after the checkpoint stored with the output (from offset 0 without one).
        case resume
        /// Delete the output and its checkpoint, then start at the first offset.
        case fromBeginning
    }
    public var start: Start = .resume
    /// Return once every partition is read up to the end offsets listed when the run
    /// started; otherwise follow the topic until the task is cancelled.
    public var stopAtEnd = false
    /// The longest time rows stay buffered before a checkpoint; `.zero` checkpoints after
    /// every window (as the tutorial writes after every row). A checkpoint also happens
    /// whenever the source has nothing more to give right now.
    public var commitInterval: Duration = .seconds(1)
    /// Names the pipeline's logic (window, unit, format); stored in the checkpoint, and a
    /// restart under another name refuses to continue the output.
    public var pipelineName: String?
    /// Records per poll.
    public var maxPollRecords = 10_000
    /// Called after every poll with the run's progress.
    public var onProgress: (@Sendable (RunProgress) -> Void)?

    public init() {}
}

/// How far a run is.
public struct RunProgress: Sendable {
    /// Records read by this run.
    public var recordsRead: Int64
    /// With `stopAtEnd`: records this run has to read in all.
    public var recordsToRead: Int64?
    /// Windows in the output.
    public var windowsEmitted: Int64
}

/// What a run did.
public struct RunSummary: Sendable {
    public var recordsRead: Int64
    /// Windows in the output (from earlier runs too).
    public var windowsEmitted: Int64
    /// Output length after the run: bytes for files and objects, records for topics.
    public var outputLength: Int64
    /// The next offset per partition.
    public var offsets: [Int32: Int64]
    /// Elements dropped as too late for their windows.
    public var lateDropped: Int64
    /// True when the run resumed from a checkpoint.
    public var resumed: Bool
}

/// What the checkpoint beside an output holds.
struct CheckpointFile<State: Codable & Sendable>: Codable {
    var version = 1
    var pipeline: String?
    var topic: String
    var window: WindowSpec
    /// Next offset to read per partition (JSON object keys are partition numbers).
    var offsets: [String: Int64]
    var outputLength: Int64
    var windowsEmitted: Int64
    var windowState: WindowState<State>
}

let checkpointEncoder: JSONEncoder = {
    let e = JSONEncoder()
    e.keyEncodingStrategy = .convertToSnakeCase
    e.outputFormatting = [.sortedKeys]
    return e
}()

/// A windowed, aggregated stream, ready to run into a sink.
public struct WindowedStream<A: Aggregation>: Sendable {
    public let source: StreamSource
    let transform: @Sendable (ConsumerRecord) throws -> A.Input?
    public let spec: WindowSpec
    public let aggregation: A
    let key: (@Sendable (A.Input) -> String?)?
    let eventTime: (@Sendable (A.Input) -> Int64?)?

    /// Runs the pipeline into `sink`: restores the sink's checkpoint (cutting off rows
    /// written after it), reads from the offsets it records, and checkpoints as
    /// `options` says. Returns at the end offsets with `stopAtEnd`, else runs until the
    /// task is cancelled (then checkpoints what it has read and returns).
    public func run<S: StreamSink>(into sink: S, format: RowFormat<A.Output>, options: RunOptions = RunOptions(),
                                   logger: Logger = Logger(label: "streams")) async throws -> RunSummary {
        try spec.validate()
        if options.start == .fromBeginning { try await sink.reset() }
        let restored = try await sink.restore()
        return try await runLoop(sink, restored: restored, format: format, options: options, logger: logger)
    }

    /// Rebuilds the output from the first offset beside the old one (`<output>.reprocess`
    /// with its own checkpoint, so an interrupted reprocess resumes), until caught up with
    /// the end offsets listed when it started; then swaps it in. The old output stays as
    /// it was until the swap. Without `stopAtEnd`, then follows the topic into the new output.
    public func reprocess<S: ReplaceableSink>(into sink: S, format: RowFormat<A.Output>, options: RunOptions = RunOptions(),
                                              logger: Logger = Logger(label: "streams")) async throws -> RunSummary {
        try spec.validate()
        let staging = try sink.staging()
        var restored: [UInt8]?
        do {
            restored = try await staging.restore()
            if let r = restored { _ = try decodeCheckpoint(r, at: staging.location, pipeline: options.pipelineName) }
        } catch {
            logger.info("starting the reprocessed output over", metadata: ["reason": "\(error)"])
            try await staging.reset()
            restored = nil
        }
        var build = options
        build.stopAtEnd = true
        let built = try await runLoop(staging, restored: restored, format: format, options: build, logger: logger)
        try await sink.replace(with: staging)
        logger.info("swapped in the reprocessed output", metadata: ["output": "\(sink.location)"])
        if options.stopAtEnd { return built }
        var follow = options
        follow.start = .resume
        return try await run(into: sink, format: format, options: follow, logger: logger)
    }

    private func decodeCheckpoint(_ bytes: [UInt8], at location: String, pipeline: String?) throws -> CheckpointFile<A.State> {
        let cp: CheckpointFile<A.State>
        do {
            cp = try checkpointDecoder.decode(CheckpointFile<A.State>.self, from: Data(bytes))
        } catch {
            throw StreamsError(.corruptCheckpoint, "the checkpoint of \(location) cannot be read: \(error)")
        }
        guard cp.topic == source.topic, cp.window == spec, cp.pipeline == pipeline else {
            throw StreamsError(.outputConflict, "\(location) was written by another pipeline "
                + "(topic \(cp.topic), \(cp.pipeline ?? "\(cp.window)")); use --reprocess or --from-beginning to rebuild it")
        }
        return cp
    }

    private func runLoop<S: StreamSink>(_ sink: S, restored: [UInt8]?, format: RowFormat<A.Output>, options: RunOptions,
                                            logger: Logger) async throws -> RunSummary {
        let topic = source.topic
        var windower = try Windower(spec: spec, aggregation: aggregation)
        var next: [Int32: Int64] = [:]
        var windowsEmitted: Int64 = 0
        var outputLength: Int64 = 0
        if let restored {
            let cp = try decodeCheckpoint(restored, at: sink.location, pipeline: options.pipelineName)
            windower.state = cp.windowState
            for (p, o) in cp.offsets { if let p = Int32(p) { next[p] = o } }
            windowsEmitted = cp.windowsEmitted
            outputLength = cp.outputLength
        }

        // One admin connection for the topic's partitions and its start and end offsets.
        let admin = try KafkaAdmin(bootstrapServers: source.bootstrapServers)
        let partitions: [Int32]
        let tps: [TopicPartition]
        let starts: [TopicPartition: Int64]
        var ends: [Int32: Int64] = [:]
        do {
            partitions = try await topicPartitions(admin, stopAtEnd: options.stopAtEnd, logger: logger)
            tps = partitions.map { TopicPartition(topic: topic, partition: $0) }
            starts = try await admin.listOffsets(tps, at: -2)
            if options.stopAtEnd {
                for (tp, o) in try await admin.listOffsets(tps, at: -1) { ends[tp.partition] = o }
            }
        } catch {
            await admin.close()
            throw error
        }
        await admin.close()
        for tp in tps where next[tp.partition] == nil { next[tp.partition] = starts[tp] ?? 0 }
        let recordsToRead = options.stopAtEnd
            ? partitions.reduce(Int64(0)) { $0 + max(0, (ends[$1] ?? 0) - max(next[$1] ?? 0, starts[TopicPartition(topic: topic, partition: $1)] ?? 0)) }
            : nil

        var configuration = KafkaConsumer.Configuration(bootstrapServers: source.bootstrapServers, groupId: source.groupId)
        configuration.enableAutoCommit = false
        configuration.autoOffsetReset = .earliest
        configuration.maxPollRecords = options.maxPollRecords
        // Reprocessing reads a long history: larger fetches mean fewer round trips.
        configuration.maxPartitionFetchBytes = 2 << 20
        configuration.fetchMaxBytes = 64 << 20
        // Closing waits for the fetch in flight, which at the log end waits this long for data.
        if options.stopAtEnd { configuration.fetchMaxWaitMs = 5 }
        let consumer = try KafkaConsumer(configuration: configuration, logger: logger)
        try consumer.assign(partitions: tps)
        for tp in tps { consumer.seek(tp, to: next[tp.partition]!) }
        let runner = Task { try await consumer.run() }

        var nextOffsets = [Int64](repeating: .max, count: Int(partitions.max() ?? 0) + 1)
        for (p, o) in next where Int(p) < nextOffsets.count && p >= 0 { nextOffsets[Int(p)] = o }
        var folder = RecordFolder(windower: windower, nextOffsets: nextOffsets, topic: topic, transform: transform,
                                  key: key, eventTime: eventTime, format: format)
        func syncOffsets() {
            for p in partitions { next[p] = folder.nextOffsets[Int(p)] }
        }
        func caughtUp() -> Bool {
            ends.allSatisfy { p, end in Int(p) < folder.nextOffsets.count && folder.nextOffsets[Int(p)] >= end }
        }
        var lastCommit = ContinuousClock.now
        let pipeline = options.pipelineName

        func checkpoint() async throws {
            syncOffsets()
            let offsets = next
            let emitted = windowsEmitted + Int64(folder.pending.count)
            let state = folder.windower.state
            try await sink.commit(folder.pending, header: format.header) { length in
                outputLength = length
                let file = CheckpointFile<A.State>(
                    pipeline: pipeline, topic: topic, window: spec,
                    offsets: Dictionary(uniqueKeysWithValues: offsets.map { (String($0.key), $0.value) }),
                    outputLength: length, windowsEmitted: emitted, windowState: state)
                return Array(try checkpointEncoder.encode(file))
            }
            windowsEmitted = emitted
            folder.pending.removeAll(keepingCapacity: true)
            folder.dirty = false
            lastCommit = .now
            if source.groupId != nil {
                do {
                    try await consumer.commit(Dictionary(uniqueKeysWithValues: offsets.map { (TopicPartition(topic: topic, partition: $0.key), $0.value) }))
                } catch {
                    logger.warning("committing the position to the group failed (the checkpoint is stored)", metadata: ["error": "\(error)"])
                }
            }
        }

        // The next poll (which decodes its records) runs on another thread while this
        // batch is folded: one batch ahead at most, so memory stays bounded.
        var prefetch: Task<[ConsumerRecord], any Error>?
        func stopPrefetch() async {
            prefetch?.cancel()
            _ = try? await prefetch?.value
            prefetch = nil
        }
        do {
            // A fresh output gets its checkpoint before its first byte: output without a
            // checkpoint then always means someone else's file, never our own crash.
            if restored == nil { try await checkpoint() }
            while !(options.stopAtEnd && caughtUp()) {
                if Task.isCancelled { break }
                let poll = prefetch ?? Task { try await consumer.poll(timeout: .milliseconds(200)) }
                prefetch = nil
                let batch = try await poll.value
                if !batch.isEmpty { prefetch = Task { try await consumer.poll(timeout: .milliseconds(200)) } }
                let eachWindow = options.commitInterval == .zero
                var i = 0
                while i < batch.count {
                    i = try folder.fold(batch, from: i, stopAfterWindow: eachWindow)
                    if eachWindow && !folder.pending.isEmpty { try await checkpoint() }
                }
                if folder.dirty, batch.isEmpty || ContinuousClock.now - lastCommit >= options.commitInterval || (options.stopAtEnd && caughtUp()) {
                    try await checkpoint()
                }
                options.onProgress?(RunProgress(recordsRead: folder.recordsRead, recordsToRead: recordsToRead,
                                                windowsEmitted: windowsEmitted + Int64(folder.pending.count)))
            }
            await stopPrefetch()
            if folder.dirty || !folder.pending.isEmpty { try await checkpoint() }
        } catch {
            await stopPrefetch()
            await consumer.close()
            _ = try? await runner.value
            try? await sink.close()
            throw error
        }
        await consumer.close()
        _ = try? await runner.value
        try await sink.close()
        syncOffsets()
        return RunSummary(recordsRead: folder.recordsRead, windowsEmitted: windowsEmitted, outputLength: outputLength, offsets: next,
                          lateDropped: folder.windower.state.lateDropped, resumed: restored != nil)
    }

    /// The topic's partitions; waits for the topic to exist unless the run stops at the end.
    private func topicPartitions(_ admin: KafkaAdmin, stopAtEnd: Bool, logger: Logger) async throws -> [Int32] {
        var warned = false
        while true {
            do {
                let described = try await admin.describeTopics([source.topic])
                if let t = described.first, !t.partitions.isEmpty { return t.partitions.map(\.partition) }
            } catch let error as KafkaClientError where error.kafkaCode?.rawValue == 3 {
                if stopAtEnd { throw StreamsError(.unknownTopic, "topic '\(source.topic)' does not exist") }
                if !warned {
                    logger.notice("waiting for topic '\(source.topic)' to be created")
                    warned = true
                }
            }
            try await Task.sleep(for: .seconds(1))
        }
    }
}

/// The per-record work of a run, kept out of the run loop's closures so the hot loop
/// touches plain stored properties (no boxed captures, no dynamic exclusivity checks).
struct RecordFolder<A: Aggregation> {
    var windower: Windower<A>
    /// The next offset per partition, indexed by partition number.
    var nextOffsets: [Int64]
    var pending: [OutputRow] = []
    var closed: [WindowResult<A.Output>] = []
    var dirty = false
    var recordsRead: Int64 = 0
    let topic: String
    let transform: @Sendable (ConsumerRecord) throws -> A.Input?
    let key: (@Sendable (A.Input) -> String?)?
    let eventTime: (@Sendable (A.Input) -> Int64?)?
    let format: RowFormat<A.Output>

    init(windower: Windower<A>, nextOffsets: [Int64], topic: String, transform: @escaping @Sendable (ConsumerRecord) throws -> A.Input?,
         key: (@Sendable (A.Input) -> String?)?, eventTime: (@Sendable (A.Input) -> Int64?)?, format: RowFormat<A.Output>) {
        self.windower = windower
        self.nextOffsets = nextOffsets
        self.topic = topic
        self.transform = transform
        self.key = key
        self.eventTime = eventTime
        self.format = format
    }

    /// Folds `batch` from index `start` into the windows; returns the index to continue
    /// from: the end, or (with `stopAfterWindow`) just after a record that closed a window.
    mutating func fold(_ records: [ConsumerRecord], from start: Int, stopAfterWindow: Bool) throws -> Int {
        // Through a buffer pointer each record is borrowed in place; an array subscript
        // would copy it (retaining its buffers) for the transform call.
        try records.withUnsafeBufferPointer { try fold($0, from: start, stopAfterWindow: stopAfterWindow) }
    }

    private mutating func fold(_ batch: UnsafeBufferPointer<ConsumerRecord>, from start: Int, stopAfterWindow: Bool) throws -> Int {
        var i = start
        while i < batch.count {
            defer { i += 1 }
            let p = Int(batch[i].partition)
            let offset = batch[i].offset
            guard p < nextOffsets.count, offset >= nextOffsets[p] else { continue }
            nextOffsets[p] = offset + 1
            dirty = true
            recordsRead += 1
            let element: A.Input?
            do {
                element = try transform(batch[i])
            } catch {
                throw StreamsError(.invalidRecord, "\(topic)-\(p) offset \(offset): \(error)")
            }
            guard let element else { continue }
            let time = eventTime?(element) ?? batch[i].timestamp
            windower.add(element, partition: Int32(p), key: key?(element), eventTime: time, closed: &closed)
            if !closed.isEmpty {
                for c in closed { pending.append(OutputRow(windowId: RowFormat<A.Output>.windowId(c), text: format.row(c))) }
                closed.removeAll(keepingCapacity: true)
                if stopAfterWindow { return i + 1 }
            }
        }
        return i
    }
}
