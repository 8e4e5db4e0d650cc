import Foundation
import KafkaClient
import KafkaProtocol
import Logging
import NIOCore
import ObjectStore
import Synchronization

/// Exports a Kafka topic to files in an object store, exactly once.
///
/// A plain Kafka client: it reads every partition of the topic (assigned, no group
/// membership) from where the last export stopped, turns records into rows
/// (`LakeRowBuilder`), and writes one file per Kafka partition and partition-by bucket at
/// `TOPIC/[k=v/]part-<partition>-<firstOffset>-<lastOffset>.<ext>`.
///
/// Exactly once: when a file of a partition rolls, every open file of that partition is
/// finished and uploaded, then the manifest is rewritten, then (with a group) the offsets
/// are committed. A run resumes from the manifest or the group, whichever is further, and
/// first deletes objects at or past that offset (left by a run that crashed before its
/// manifest), so a crash rewrites objects rather than duplicating rows.
///
/// Memory: each open file holds at most one row group (`chunkBytes`) before encoding
/// it to its local temporary file; the first `schemaChunkBytes` wait as rows; at most
/// `maxOpenFiles` are open.
public final class LakeExporter: Sendable {
    /// How files are grouped into Hive-style directories.
    public enum PartitionBy: Sendable, Hashable, CustomStringConvertible {
        case none
        /// `date=YYYY-MM-DD/`, from the record time (UTC).
        case date
        /// `date=YYYY-MM-DD/hour=HH/`.
        case hour
        /// `FIELD=value/` from a JSON field.
        case field(String)

        /// Parses `none`, `date`, `hour` or a field name.
        public init(parsing text: String) throws {
            switch text {
            case "none": self = .none
            case "date": self = .date
            case "hour": self = .hour
            case "": throw LakeError(.invalidArgument, "--partition-by needs none, date, hour or a field name")
            default:
                guard !text.contains("/"), !text.contains("=") else {
                    throw LakeError(.invalidArgument, "partition field '\(text)' may not contain '/' or '='")
                }
                self = .field(text)
            }
        }

        public var description: String {
            switch self {
            case .none: return "none"
            case .date: return "date"
            case .hour: return "hour"
            case .field(let f): return f
            }
        }
    }

    /// What to export and how; `tributary lake export` builds one from its options.
    public struct Configuration: Sendable {
        /// The topic: every partition of it is exported.
        public var topic: String
        /// Default Parquet.
        public var format: LakeFormat = .parquet
        /// `HOST:PORT` of brokers to bootstrap from.
        public var bootstrapServers: [String]
        /// A consumer group to start from and commit to; nil relies on the manifest alone.
        public var group: String?
        /// Where to start when neither manifest nor group has a position: the beginning of
        /// the log (true) or its end (false, Kafka's default).
        public var fromBeginning = false
        /// Keep exporting new records until `stop()`; otherwise stop at the end offsets
        /// seen at start.
        public var follow = false
        /// Default none: every file directly under `TOPIC/`.
        public var partitionBy: PartitionBy = .none
        /// A JSON field with each record's time (epoch ms or ISO-8601), for partitioning
        /// and `rollAfter`; nil uses the Kafka timestamp.
        public var timeField: String?
        /// A file rolls once it has this many rows. Default 1,000,000.
        public var maxRows = 1_000_000
        /// A file rolls once its rows reach about this many bytes (plain-encoded, before
        /// compression). Default 128 MiB.
        public var maxBytes = 128 << 20
        /// A file rolls before a record whose time is this much after the file's first.
        public var rollAfter: Duration?
        /// Open files of a partition roll when no record came for it for this long.
        /// Default 60 s with `follow`, none otherwise.
        public var idleRoll: Duration?
        /// Values that are not JSON objects go to this topic (with the reason in header
        /// `tributary.lake.error`) instead of a `_value` column.
        public var deadLetterTopic: String?
        /// Page compression and encoding of Parquet files (`rowGroupBytes` is set from `chunkBytes`).
        public var parquet = ParquetWriter.Options()
        /// Where files are written before upload.
        public var temporaryDirectory = FileManager.default.temporaryDirectory.path
        /// The Parquet row group size of plain-encoded values, held in memory per open
        /// file. Default 16 MiB (or `maxBytes`, whichever is smaller).
        public var chunkBytes = 16 << 20
        /// How much of a file's first rows wait, unencoded, before its columns are fixed:
        /// a later record with a new field or a wider type starts a new file. Default 2 MiB.
        public var schemaChunkBytes = 2 << 20
        /// Open files at most (each holds a file descriptor and up to a row group in
        /// memory): a record that needs one more first rolls every open file. Matters with
        /// `--partition-by FIELD` of many values. Default 64.
        public var maxOpenFiles = 64
        /// How often `run`'s progress callback is called.
        public var progressInterval: Duration = .milliseconds(500)

        public init(topic: String, bootstrapServers: [String]) {
            self.topic = topic
            self.bootstrapServers = bootstrapServers
        }

        func validate() throws {
            guard !topic.isEmpty, !topic.contains("/") else { throw LakeError(.invalidArgument, "bad topic name '\(topic)'") }
            guard maxRows > 0 else { throw LakeError(.invalidArgument, "--max-rows must be positive") }
            guard maxBytes > 0 else { throw LakeError(.invalidArgument, "--max-bytes must be positive") }
            if let rollAfter, rollAfter <= .zero { throw LakeError(.invalidArgument, "--roll-after must be positive") }
            if let idleRoll, idleRoll <= .zero { throw LakeError(.invalidArgument, "--idle-roll must be positive") }
            guard maxOpenFiles > 0 else { throw LakeError(.invalidArgument, "maxOpenFiles must be positive") }
            guard !bootstrapServers.isEmpty else { throw LakeError(.invalidArgument, "no bootstrap servers") }
        }
    }

    /// Counters for a progress display.
    public struct Progress: Sendable, Hashable {
        /// Records read and handled (exported, sent to the dead-letter topic, or skipped
        /// when neither).
        public var records = 0
        /// Rows in uploaded files.
        public var rowsWritten = 0
        /// Bytes of uploaded files.
        public var bytesWritten = 0
        /// Objects uploaded.
        public var filesWritten = 0
        /// Records between the export's position and the end of the log, all partitions.
        public var lag: Int64 = 0
        /// Values that were not JSON objects.
        public var nonJSON = 0
        /// Values sent to the dead-letter topic.
        public var deadLettered = 0
        /// Since `run` started.
        public var elapsed: Duration = .zero
    }

    /// What a finished run did.
    public struct Summary: Sendable {
        /// The counters at the end.
        public var progress: Progress
        /// Per partition, the offsets this run started and ended at.
        public var ranges: [Int32: Range<Int64>]
        /// Objects from a crashed run deleted before starting.
        public var orphansDeleted: Int
        /// Keys of the objects this run wrote, in order.
        public var objectKeys: [String]
    }

    /// As given to `init`, checked.
    public let configuration: Configuration
    private let store: any ObjectStore
    private let logger: Logger
    private let stopRequested = Atomic<Bool>(false)

    /// Checks the configuration; connects nothing until `run`.
    public init(configuration: Configuration, store: any ObjectStore, logger: Logger = Logger(label: "tributary.lake")) throws {
        try configuration.validate()
        self.configuration = configuration
        self.store = store
        self.logger = logger
    }

    /// Asks a running export to finish its open files, commit and return (the way to end
    /// a `follow` export). Safe to call from any task or a signal handler's task.
    public func stop() {
        stopRequested.store(true, ordering: .relaxed)
    }

    /// Runs the export; calls `progress` every `progressInterval`. Returns when the end
    /// offsets seen at start are exported (without `follow`) or after `stop()`.
    public func run(progress: (@Sendable (Progress) -> Void)? = nil) async throws -> Summary {
        let c = configuration
        let admin = try KafkaAdmin(bootstrapServers: c.bootstrapServers, clientId: "tributary-lake")
        do {
            let summary = try await run(admin: admin, progress: progress)
            await admin.close()
            return summary
        } catch {
            await admin.close()
            throw error
        }
    }

    private func run(admin: KafkaAdmin, progress: (@Sendable (Progress) -> Void)?) async throws -> Summary {
        let c = configuration
        let topics: [KafkaAdmin.TopicDescription]
        do {
            topics = try await admin.describeTopics([c.topic])
        } catch {
            throw LakeError(.topicUnavailable, "topic '\(c.topic)': \(error)")
        }
        guard let description = topics.first(where: { $0.name == c.topic }), !description.partitions.isEmpty else {
            throw LakeError(.topicUnavailable, "topic '\(c.topic)' does not exist or has no partitions")
        }
        let partitions = description.partitions.map { TopicPartition(topic: c.topic, partition: $0.partition) }
        let earliest = try await admin.listOffsets(partitions, at: -2)
        let latest = try await admin.listOffsets(partitions, at: -1)
        var committed: [TopicPartition: Int64] = [:]
        if let group = c.group { committed = try await admin.committedOffsets(group) }

        var manifest = try await LakeManifest.load(from: store, topic: c.topic, format: c.format)
            ?? LakeManifest(topic: c.topic, format: c.format)
        var resume: [Int32: Int64] = [:]
        for tp in partitions {
            let known = [manifest.nextOffset(tp.partition), committed[tp]].compactMap { $0 }.max()
            var start = known ?? (c.fromBeginning ? earliest[tp]! : latest[tp]!)
            if start < earliest[tp]! {
                logger.warning("offsets before the log start were deleted by retention", metadata: [
                    "kafka.partition": "\(tp.partition)", "lake.position": "\(start)", "kafka.log_start": "\(earliest[tp]!)"])
                start = earliest[tp]!
            }
            resume[tp.partition] = start
        }

        // Objects at or past the resume point were written by a run that did not finish
        // its manifest: the records are read again, so the objects must go.
        var orphans = 0
        for object in try await store.list(prefix: c.topic + "/") {
            guard let name = LakeObjectName(key: object.key, format: c.format), let r = resume[name.partition],
                  name.firstOffset >= r else { continue }
            try await store.delete(key: object.key)
            orphans += 1
        }
        let listed = manifest.objects.count
        manifest.objects.removeAll { o in resume[o.partition].map { o.firstOffset >= $0 } ?? false }
        // Readers must not find keys that are gone (the group was ahead of the manifest).
        if manifest.objects.count != listed { try await manifest.save(to: store) }

        LakeFileWriter.removeStaleTemporaryFiles(in: c.temporaryDirectory)

        var consumerConfiguration = KafkaConsumer.Configuration(bootstrapServers: c.bootstrapServers, groupId: c.group)
        consumerConfiguration.enableAutoCommit = false
        consumerConfiguration.autoOffsetReset = .earliest
        consumerConfiguration.clientId = "tributary-lake"
        consumerConfiguration.allowAutoCreateTopics = false
        let consumer = try KafkaConsumer(configuration: consumerConfiguration, logger: logger)
        try consumer.assign(partitions: partitions)
        for tp in partitions { consumer.seek(tp, to: resume[tp.partition]!) }

        let producer = try c.deadLetterTopic.map { _ in
            try KafkaProducer(configuration: KafkaProducer.Configuration(bootstrapServers: c.bootstrapServers), logger: logger)
        }

        var session = ExportSession(configuration: c, store: store, consumer: consumer, producer: producer, admin: admin,
                                    manifest: manifest, resume: resume, ends: latest, logger: logger, progressCallback: progress,
                                    stopRequested: { [self] in stopRequested.load(ordering: .relaxed) })
        session.progress.lag = partitions.reduce(0) { $0 + max(0, latest[$1]! - resume[$1.partition]!) }

        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await consumer.run() }
            if let producer { group.addTask { try await producer.run() } }
            let result: Result<Summary, any Error>
            do {
                var summary = try await session.run()
                summary.orphansDeleted = orphans
                result = .success(summary)
            } catch {
                result = .failure(error)
            }
            session.discardOpenFiles()
            await consumer.close()
            if let producer { await producer.close() }
            try await group.waitForAll()
            return try result.get()
        }
    }
}

/// The state of one running export: open files, positions, counters.
struct ExportSession {
    struct FileKey: Hashable, Comparable {
        var partition: Int32
        var path: String
        static func < (a: Self, b: Self) -> Bool { (a.partition, a.path) < (b.partition, b.path) }
    }

    let configuration: LakeExporter.Configuration
    let store: any ObjectStore
    let consumer: KafkaConsumer
    let producer: KafkaProducer?
    let admin: KafkaAdmin
    var manifest: LakeManifest
    let resume: [Int32: Int64]
    /// End offsets: those seen at start bound a batch export; refreshed for lag with `follow`.
    var ends: [TopicPartition: Int64]
    let endsAtStart: [TopicPartition: Int64]
    let logger: Logger
    let progressCallback: (@Sendable (LakeExporter.Progress) -> Void)?
    let stopRequested: @Sendable () -> Bool

    var builder: LakeRowBuilder
    var open: [FileKey: LakeFileWriter] = [:]
    /// Per partition: the offset after the last record handled.
    var next: [Int32: Int64]
    /// Per partition: the offset last written to the manifest.
    var durable: [Int32: Int64]
    var lastRecordAt: [Int32: ContinuousClock.Instant] = [:]
    var progress = LakeExporter.Progress()
    var objectKeys: [String] = []
    let started = ContinuousClock.now
    let idleRoll: Duration?

    init(configuration: LakeExporter.Configuration, store: any ObjectStore, consumer: KafkaConsumer, producer: KafkaProducer?,
         admin: KafkaAdmin, manifest: LakeManifest, resume: [Int32: Int64], ends: [TopicPartition: Int64], logger: Logger,
         progressCallback: (@Sendable (LakeExporter.Progress) -> Void)?, stopRequested: @escaping @Sendable () -> Bool) {
        self.configuration = configuration
        self.store = store
        self.consumer = consumer
        self.producer = producer
        self.admin = admin
        self.manifest = manifest
        self.resume = resume
        self.ends = ends
        self.endsAtStart = ends
        self.logger = logger
        self.progressCallback = progressCallback
        self.stopRequested = stopRequested
        self.builder = LakeRowBuilder(schema: LakeSchema(columns: manifest.schema), timeField: configuration.timeField)
        self.next = resume
        self.durable = resume
        self.idleRoll = configuration.idleRoll ?? (configuration.follow ? .seconds(60) : nil)
    }

    mutating func run() async throws -> LakeExporter.Summary {
        let c = configuration
        var lastReport = ContinuousClock.now
        var lastEndsRefresh = ContinuousClock.now
        while !stopRequested() {
            if !c.follow && batchDone() { break }
            let records = try await consumer.poll(timeout: .milliseconds(200))
            for record in records { try await handle(record) }
            try await rollIdlePartitions()
            let now = ContinuousClock.now
            if c.follow && now - lastEndsRefresh >= .seconds(5) {
                lastEndsRefresh = now
                if let fresh = try? await admin.listOffsets(Array(ends.keys), at: -1) { ends = fresh }
            }
            if now - lastReport >= c.progressInterval {
                lastReport = now
                report()
            }
        }
        try await flush(partitions: Array(next.keys))
        report()
        var ranges: [Int32: Range<Int64>] = [:]
        for (p, start) in resume { ranges[p] = start..<max(start, next[p] ?? start) }
        return LakeExporter.Summary(progress: progress, ranges: ranges, orphansDeleted: 0, objectKeys: objectKeys)
    }

    /// Without `follow`: every partition has reached the end offset seen at start.
    private mutating func batchDone() -> Bool {
        var done = true
        for (tp, end) in endsAtStart {
            let n = next[tp.partition] ?? 0
            if n >= end { continue }
            // Gaps (transaction markers, compaction) leave `next` short of the end while the
            // consumer's position has passed it.
            if let position = consumer.position(tp), position >= end {
                next[tp.partition] = end
                continue
            }
            done = false
        }
        return done
    }

    private mutating func report() {
        progress.elapsed = ContinuousClock.now - started
        var lag: Int64 = 0
        for (tp, end) in (configuration.follow ? ends : endsAtStart) { lag += max(0, end - (next[tp.partition] ?? end)) }
        progress.lag = lag
        progressCallback?(progress)
    }

    private mutating func handle(_ record: ConsumerRecord) async throws {
        let c = configuration
        let p = record.partition
        let tp = record.topicPartition
        if !c.follow, let end = endsAtStart[tp], record.offset >= end { return }
        if let n = next[p], record.offset < n { return }  // already handled (a re-fetch)
        progress.records += 1
        lastRecordAt[p] = .now
        let outcome = builder.build(topic: record.topic, partition: p, offset: record.offset, timestamp: record.timestamp,
                                    key: record.key, value: record.value, keepNonJSON: c.deadLetterTopic == nil)
        switch outcome {
        case .row(let row):
            try await place(row, partition: p, offset: record.offset)
        case .notJSON(let reason, let row):
            progress.nonJSON += 1
            if let topic = c.deadLetterTopic, let producer {
                var headers = record.headers
                headers.append(KafkaHeader(key: "tributary.lake.error", value: ByteBuffer(string: reason)))
                headers.append(KafkaHeader(key: "tributary.lake.source", value: ByteBuffer(string: "\(record.topic)/\(p)/\(record.offset)")))
                _ = try await producer.send(ProducerRecord(topic: topic, key: record.key, value: record.value,
                                                           headers: headers, timestamp: record.timestamp))
                progress.deadLettered += 1
            } else if let row {
                try await place(row, partition: p, offset: record.offset)
            }
        }
        next[p] = record.offset + 1
    }

    private mutating func place(_ row: LakeRow, partition p: Int32, offset: Int64) async throws {
        let c = configuration
        let key = FileKey(partition: p, path: partitionPath(row))
        if let file = open[key] {
            let tooLate = c.rollAfter.map { row.time - file.firstTime >= Self.milliseconds($0) } ?? false
            if tooLate || !file.accepts(row) { try await flush(partitions: [p]) }
        }
        if open[key] == nil && open.count >= c.maxOpenFiles {
            try await flush(partitions: Set(open.keys.map(\.partition)).sorted())
        }
        let file: LakeFileWriter
        if let existing = open[key] {
            file = existing
        } else {
            file = try LakeFileWriter(format: c.format, directory: c.temporaryDirectory, parquetOptions: c.parquet,
                                      rowGroupBytes: min(c.chunkBytes, c.maxBytes),
                                      chunkBytes: min(c.schemaChunkBytes, c.chunkBytes, c.maxBytes), chunkRows: min(c.maxRows, 1_000_000))
            open[key] = file
        }
        try file.append(row, offset: offset, schema: builder.schema)
        if file.rows >= c.maxRows || file.estimatedBytes >= c.maxBytes {
            next[p] = offset + 1
            try await flush(partitions: [p])
        }
    }

    static func milliseconds(_ d: Duration) -> Int64 {
        d.components.seconds * 1000 + d.components.attoseconds / 1_000_000_000_000_000
    }

    private func partitionPath(_ row: LakeRow) -> String {
        switch configuration.partitionBy {
        case .none:
            return ""
        case .date, .hour:
            let (y, m, d, h, _, _) = LakeValue.civil(LakeValue.floorDiv(row.time, 1000))
            let date = "date=" + String(format: "%04d-%02d-%02d", y, m, d)
            return configuration.partitionBy == .date ? date : date + String(format: "/hour=%02d", h)
        case .field(let name):
            let value = builder.schema.position(of: name).map { row[$0] } ?? .null
            return name + "=" + Self.escapePathValue(value == .null ? nil : value.textForm)
        }
    }

    /// Hive's escaping: characters other than letters, digits and `._-` as `%XX`; an empty
    /// or missing value is `__HIVE_DEFAULT_PARTITION__`.
    static func escapePathValue(_ value: String?) -> String {
        guard let value, !value.isEmpty else { return "__HIVE_DEFAULT_PARTITION__" }
        var out = ""
        for b in value.utf8 {
            switch b {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "-"):
                out.unicodeScalars.append(Unicode.Scalar(b))
            default:
                out += String(format: "%%%02X", b)
            }
        }
        return out == "." || out == ".." ? out.replacingOccurrences(of: ".", with: "%2E") : out
    }

    private mutating func rollIdlePartitions() async throws {
        guard let idleRoll else { return }
        let now = ContinuousClock.now
        // Partitions with open files, or with positions not yet durable (records that all
        // went to the dead-letter topic), and no record for `idleRoll`.
        let pending = Set(open.keys.map(\.partition)).union(next.keys.filter { next[$0] != durable[$0] })
        let idle = pending.filter { p in lastRecordAt[p].map { now - $0 >= idleRoll } ?? true }
        if !idle.isEmpty { try await flush(partitions: idle.sorted()) }
    }

    /// Finishes and uploads every open file of `partitions`, then records them and the
    /// partitions' positions in the manifest, then commits those positions.
    mutating func flush(partitions: [Int32]) async throws {
        let c = configuration
        let wanted = Set(partitions)
        let keys = open.keys.filter { wanted.contains($0.partition) }.sorted()
        let advanced = partitions.filter { next[$0] != durable[$0] }
        guard !keys.isEmpty || !advanced.isEmpty else { return }
        for key in keys {
            let file = open.removeValue(forKey: key)!
            defer { file.discard() }
            let size = try file.finish(schema: builder.schema)
            let objectKey = LakeObjectName.key(topic: c.topic, partitionPath: key.path, partition: key.partition,
                                               firstOffset: file.firstOffset, lastOffset: file.lastOffset, format: c.format)
            try await store.putFile(key: objectKey, path: file.path)
            manifest.objects.append(.init(key: objectKey, partition: key.partition, firstOffset: file.firstOffset,
                                          lastOffset: file.lastOffset, records: file.rows, bytes: size))
            objectKeys.append(objectKey)
            progress.filesWritten += 1
            progress.bytesWritten += size
            progress.rowsWritten += file.rows
            logger.debug("object written", metadata: ["lake.key": "\(objectKey)", "lake.rows": "\(file.rows)", "lake.bytes": "\(size)"])
        }
        for p in partitions { if let n = next[p] { manifest.nextOffsets[String(p)] = n } }
        manifest.schema = builder.schema.columns
        try await manifest.save(to: store)
        if c.group != nil {
            var offsets: [TopicPartition: Int64] = [:]
            for p in partitions { if let n = next[p] { offsets[TopicPartition(topic: c.topic, partition: p)] = n } }
            try await consumer.commit(offsets)
        }
        for p in partitions { durable[p] = next[p] }
    }

    /// Removes temporary files of a run that failed.
    mutating func discardOpenFiles() {
        for file in open.values { file.discard() }
        open.removeAll()
    }
}
