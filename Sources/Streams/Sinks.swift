import Foundation
import KafkaClient
import Lake
import Logging
import NIOCore
import ObjectStore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One output row of a closed window.
public struct OutputRow: Sendable, Hashable {
    /// Identifies the window (`"3"`, `"0:3"`, `"station-2@2026-01"`): a topic sink puts it
    /// in the `window-id` header so readers can drop duplicates.
    public var windowId: String
    /// The row as written, terminator included (`"3,21.4,700,55\n"`).
    public var text: String

    public init(windowId: String, text: String) {
        self.windowId = windowId
        self.text = text
    }
}

/// Where a pipeline writes its rows, together with the checkpoint that says which source
/// offsets and open windows those rows cover.
///
/// The contract that makes file and object outputs exactly-once: `commit` first makes the
/// rows durable, then atomically replaces the checkpoint; `restore` cuts the output back
/// to the length the checkpoint records. A crash between the two steps leaves rows the
/// checkpoint does not cover; they are cut off and rebuilt from the recorded offsets.
public protocol StreamSink: Sendable {
    /// Where the output is, for messages.
    var location: String { get }
    /// The stored checkpoint (nil when there is none) after cutting the output back to
    /// it. Throws `.outputConflict` when there is output but no checkpoint.
    func restore() async throws -> [UInt8]?
    /// Appends `rows` (preceded by `header` while the output is empty), makes them
    /// durable, then stores the checkpoint `checkpoint(lengthAfter)` builds.
    func commit(_ rows: [OutputRow], header: String?, checkpoint: (Int64) throws -> [UInt8]) async throws
    /// Deletes the output and its checkpoint.
    func reset() async throws
    /// Releases files and connections.
    func close() async throws
}

/// A sink that `--reprocess` can rebuild beside itself and swap in.
public protocol ReplaceableSink: StreamSink {
    /// The same kind of output under a temporary name next to this one.
    func staging() throws -> Self
    /// Replaces this output and its checkpoint with `staging`'s, atomically as seen by a
    /// restarted pipeline: a swap journal (`<output>.swap.json`) is written first and a
    /// restart rolls an interrupted swap forward.
    func replace(with staging: Self) async throws
}

/// The part of a checkpoint sinks read themselves.
struct CheckpointHeader: Codable {
    var outputLength: Int64
    var pipeline: String?
}

let checkpointDecoder: JSONDecoder = {
    let d = JSONDecoder()
    d.keyDecodingStrategy = .convertFromSnakeCase
    return d
}()

func readCheckpointLength(_ bytes: [UInt8], at location: String) throws -> Int64 {
    do {
        return try checkpointDecoder.decode(CheckpointHeader.self, from: Data(bytes)).outputLength
    } catch {
        throw StreamsError(.corruptCheckpoint, "the checkpoint of \(location) cannot be read: \(error)")
    }
}

// MARK: local file

/// A local file that rows are appended to (and fsynced), with its checkpoint beside it
/// in `<path>.checkpoint.json`, replaced by write-to-temp + fsync + rename.
public final class FileSink: ReplaceableSink, @unchecked Sendable {
    // @unchecked: `fd` and `length` are only touched by the pipeline's task, one call at a time.
    public let path: String
    public var location: String { path }
    var checkpointPath: String { path + ".checkpoint.json" }
    var journalPath: String { path + ".swap.json" }
    private var fd: Int32 = -1
    private var length: Int64 = 0

    public init(path: String) {
        self.path = path
    }

    deinit { if fd >= 0 { closeDescriptor(fd) } }

    public func staging() throws -> FileSink { FileSink(path: path + ".reprocess") }

    public func restore() async throws -> [UInt8]? {
        try rollForwardSwap()
        let checkpoint = try readFile(checkpointPath)
        let size = try fileSize(path)
        guard let checkpoint else {
            if let size, size > 0 {
                throw StreamsError(.outputConflict, "\(path) exists but has no checkpoint (\(checkpointPath)); "
                    + "pass --from-beginning to replace it, or choose another output")
            }
            length = 0
            return nil
        }
        let recorded = try readCheckpointLength(checkpoint, at: path)
        let actual = size ?? 0
        guard actual >= recorded else {
            throw StreamsError(.corruptCheckpoint, "\(path) has \(actual) bytes but its checkpoint covers \(recorded); "
                + "the output was changed by something else: pass --from-beginning to rebuild it")
        }
        if actual > recorded {
            // Rows written after the last checkpoint: they are rebuilt from its offsets.
            try openForAppend()
            guard ftruncate(fd, off_t(recorded)) == 0, fsync(fd) == 0 else { throw posixError("truncate \(path)") }
        }
        length = recorded
        return checkpoint
    }

    public func commit(_ rows: [OutputRow], header: String?, checkpoint: (Int64) throws -> [UInt8]) async throws {
        if !rows.isEmpty {
            var bytes: [UInt8] = []
            if length == 0, let header { bytes += Array(header.utf8) }
            for row in rows { bytes += Array(row.text.utf8) }
            try openForAppend()
            try bytes.withUnsafeBytes { try writeAll(fd, $0, path) }
            guard fsync(fd) == 0 else { throw posixError("fsync \(path)") }
            length += Int64(bytes.count)
        }
        try writeAtomically(checkpointPath, try checkpoint(length))
    }

    public func reset() async throws {
        if fd >= 0 { closeDescriptor(fd); fd = -1 }
        for p in [path, checkpointPath, journalPath] where unlink(p) != 0 && errno != ENOENT {
            throw posixError("remove \(p)")
        }
        length = 0
    }

    public func close() async throws {
        if fd >= 0 { closeDescriptor(fd); fd = -1 }
    }

    public func replace(with staging: FileSink) async throws {
        try await staging.close()
        try await close()
        let journal = SwapJournal(stagingOutput: staging.path, stagingCheckpoint: staging.checkpointPath)
        try writeAtomically(journalPath, Array(try JSONEncoder().encode(journal)))
        try rollForwardSwap()
        length = 0
    }

    /// Finishes a swap whose journal exists: renames are idempotent to repeat because a
    /// step whose source is gone has already happened.
    private func rollForwardSwap() throws {
        guard let bytes = try readFile(journalPath) else { return }
        let journal = try JSONDecoder().decode(SwapJournal.self, from: Data(bytes))
        if fileExists(journal.stagingOutput) {
            guard rename(journal.stagingOutput, path) == 0 else { throw posixError("rename \(journal.stagingOutput)") }
        }
        if fileExists(journal.stagingCheckpoint) {
            guard rename(journal.stagingCheckpoint, checkpointPath) == 0 else { throw posixError("rename \(journal.stagingCheckpoint)") }
        }
        try syncDirectory(of: path)
        guard unlink(journalPath) == 0 || errno == ENOENT else { throw posixError("remove \(journalPath)") }
        try syncDirectory(of: path)
    }

    private func openForAppend() throws {
        guard fd < 0 else { return }
        fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw posixError("open \(path)") }
        try syncDirectory(of: path)
    }
}

struct SwapJournal: Codable {
    var stagingOutput: String
    var stagingCheckpoint: String
}

// MARK: object store

/// An object in an `ObjectStore` (S3, or a local directory through `file://`), rewritten
/// whole on every commit as the tutorial's `s3.Object(...).put(...)` does, with its
/// checkpoint in the object `<key>.checkpoint.json`.
///
/// The whole output is held in memory and PUT at each commit, so commits should be
/// spaced (the pipeline's `commitInterval`) for large outputs.
public final class ObjectSink: ReplaceableSink, @unchecked Sendable {
    // @unchecked: `content` is only touched by the pipeline's task, one call at a time.
    public let store: any ObjectStore
    public let key: String
    public let location: String
    var checkpointKey: String { key + ".checkpoint.json" }
    var journalKey: String { key + ".swap.json" }
    private var content = ByteBuffer()

    /// - Parameter location: how to name the output in messages (`s3://bucket/key`).
    public init(store: any ObjectStore, key: String, location: String? = nil) {
        self.store = store
        self.key = key
        self.location = location ?? key
    }

    public func staging() throws -> ObjectSink {
        ObjectSink(store: store, key: key + ".reprocess", location: location + ".reprocess")
    }

    private func getIfPresent(_ key: String) async throws -> ByteBuffer? {
        do {
            return try await store.get(key: key)
        } catch let error as ObjectStoreError where error.code == .notFound {
            return nil
        }
    }

    public func restore() async throws -> [UInt8]? {
        try await rollForwardSwap()
        let checkpoint = try await getIfPresent(checkpointKey).map { Array($0.readableBytesView) }
        let existing = try await getIfPresent(key)
        guard let checkpoint else {
            if let existing, existing.readableBytes > 0 {
                throw StreamsError(.outputConflict, "\(location) exists but has no checkpoint (\(checkpointKey)); "
                    + "pass --from-beginning to replace it, or choose another output")
            }
            content = ByteBuffer()
            return nil
        }
        let recorded = Int(try readCheckpointLength(checkpoint, at: location))
        var body = existing ?? ByteBuffer()
        guard body.readableBytes >= recorded else {
            throw StreamsError(.corruptCheckpoint, "\(location) has \(body.readableBytes) bytes but its checkpoint covers \(recorded); "
                + "pass --from-beginning to rebuild it")
        }
        if body.readableBytes > recorded {
            body = body.getSlice(at: body.readerIndex, length: recorded)!
            try await store.put(key: key, body: body)
        }
        content = body
        return checkpoint
    }

    public func commit(_ rows: [OutputRow], header: String?, checkpoint: (Int64) throws -> [UInt8]) async throws {
        if !rows.isEmpty {
            if content.readableBytes == 0, let header { content.writeString(header) }
            for row in rows { content.writeString(row.text) }
            try await store.put(key: key, body: content)
        }
        try await store.put(key: checkpointKey, body: ByteBuffer(bytes: try checkpoint(Int64(content.readableBytes))))
    }

    public func reset() async throws {
        try await store.delete(key: key)
        try await store.delete(key: checkpointKey)
        try await store.delete(key: journalKey)
        content = ByteBuffer()
    }

    public func close() async throws {}

    public func replace(with staging: ObjectSink) async throws {
        let journal = SwapJournal(stagingOutput: staging.key, stagingCheckpoint: staging.checkpointKey)
        try await store.put(key: journalKey, body: ByteBuffer(bytes: try JSONEncoder().encode(journal)))
        try await rollForwardSwap()
    }

    /// Object stores have no rename: the staged objects are copied over the live ones
    /// (output first, then checkpoint), then deleted, then the journal. Repeating any
    /// prefix of that is harmless, which is what makes rolling forward safe.
    private func rollForwardSwap() async throws {
        guard let bytes = try await getIfPresent(journalKey) else { return }
        let journal = try JSONDecoder().decode(SwapJournal.self, from: Data(bytes.readableBytesView))
        if let stagedCheckpoint = try await getIfPresent(journal.stagingCheckpoint) {
            let stagedOutput = try await getIfPresent(journal.stagingOutput) ?? ByteBuffer()
            try await store.put(key: key, body: stagedOutput)
            try await store.put(key: checkpointKey, body: stagedCheckpoint)
            try await store.delete(key: journal.stagingOutput)
            try await store.delete(key: journal.stagingCheckpoint)
        }
        try await store.delete(key: journalKey)
    }
}

// MARK: topic

/// Another topic: each row becomes a record (value = the row's text without its line
/// terminator, key = the window's key, header `window-id`), sent by an idempotent
/// producer; the checkpoint (offsets and open windows) lives in a local file.
///
/// At-least-once, not exactly-once: rows are flushed before the checkpoint is replaced,
/// so a crash between the two re-emits the windows closed since the last checkpoint,
/// with the same `window-id` headers. Readers that must not count a window twice drop
/// records whose `window-id` they have seen.
public final class TopicSink: StreamSink, @unchecked Sendable {
    // @unchecked: `written` is only touched by the pipeline's task, one call at a time.
    public let topic: String
    public let checkpointPath: String
    public var location: String { "topic \(topic)" }
    private let producer: KafkaProducer
    private let runner: Task<Void, any Error>
    private var written: Int64 = 0

    public init(bootstrapServers: [String], topic: String, checkpointPath: String) throws {
        var configuration = KafkaProducer.Configuration(bootstrapServers: bootstrapServers)
        configuration.enableIdempotence = true
        configuration.acks = .all
        let producer = try KafkaProducer(configuration: configuration)
        self.producer = producer
        self.topic = topic
        self.checkpointPath = checkpointPath
        self.runner = Task { try await producer.run() }
    }

    public func restore() async throws -> [UInt8]? {
        guard let bytes = try readFile(checkpointPath) else { return nil }
        written = try readCheckpointLength(bytes, at: checkpointPath)
        return bytes
    }

    public func commit(_ rows: [OutputRow], header: String?, checkpoint: (Int64) throws -> [UInt8]) async throws {
        if !rows.isEmpty {
            let failure = LockedBox<KafkaClientError?>(nil)
            for row in rows {
                var text = Substring(row.text)
                while text.last == "\n" || text.last == "\r" { text.removeLast() }
                try await producer.sendAndForget(
                    topic: topic, key: nil, value: ByteBuffer(string: String(text)),
                    headers: [KafkaHeader(key: "window-id", value: ByteBuffer(string: row.windowId))],
                    onDelivery: { result in
                        if case .failure(let error) = result { failure.withLock { $0 = $0 ?? error } }
                    })
            }
            await producer.flush()
            if let error = failure.withLock({ $0 }) { throw error }
            written += Int64(rows.count)
        }
        try writeAtomically(checkpointPath, try checkpoint(written))
    }

    public func reset() async throws {
        guard unlink(checkpointPath) == 0 || errno == ENOENT else { throw posixError("remove \(checkpointPath)") }
        written = 0
    }

    public func close() async throws {
        await producer.close()
        try await runner.value
    }
}

// MARK: POSIX helpers

/// `close(2)`, named apart from the sinks' own `close()`.
func closeDescriptor(_ fd: Int32) {
    #if canImport(Glibc)
    _ = Glibc.close(fd)
    #elseif canImport(Darwin)
    _ = Darwin.close(fd)
    #endif
}

func posixError(_ what: String) -> StreamsError {
    StreamsError(.io, "\(what): \(String(cString: strerror(errno)))")
}

func fileExists(_ path: String) -> Bool {
    var st = stat()
    return stat(path, &st) == 0
}

func fileSize(_ path: String) throws -> Int64? {
    var st = stat()
    if stat(path, &st) != 0 {
        if errno == ENOENT { return nil }
        throw posixError("stat \(path)")
    }
    return Int64(st.st_size)
}

func readFile(_ path: String) throws -> [UInt8]? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    if fd < 0 {
        if errno == ENOENT { return nil }
        throw posixError("open \(path)")
    }
    defer { closeDescriptor(fd) }
    var out: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n < 0 {
            if errno == EINTR { continue }
            throw posixError("read \(path)")
        }
        if n == 0 { return out }
        out += chunk[0..<n]
    }
}

func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, _ path: String) throws {
    var offset = 0
    while offset < bytes.count {
        let n = write(fd, bytes.baseAddress! + offset, bytes.count - offset)
        if n < 0 {
            if errno == EINTR { continue }
            throw posixError("write \(path)")
        }
        offset += n
    }
}

/// Replaces `path` with `bytes` so a reader (or a restart after a crash) sees the old
/// file or the new one whole: temp file, fsync, rename, fsync of the directory.
func writeAtomically(_ path: String, _ bytes: [UInt8]) throws {
    let temp = path + ".tmp"
    let fd = open(temp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
    guard fd >= 0 else { throw posixError("open \(temp)") }
    do {
        try bytes.withUnsafeBytes { try writeAll(fd, $0, temp) }
        guard fsync(fd) == 0 else { throw posixError("fsync \(temp)") }
    } catch {
        closeDescriptor(fd)
        throw error
    }
    closeDescriptor(fd)
    guard rename(temp, path) == 0 else { throw posixError("rename \(temp)") }
    try syncDirectory(of: path)
}

func syncDirectory(of path: String) throws {
    let dir = (path as NSString).deletingLastPathComponent
    let fd = open(dir.isEmpty ? "." : dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
    guard fd >= 0 else { throw posixError("open directory of \(path)") }
    defer { closeDescriptor(fd) }
    _ = fsync(fd)
}

/// A value behind a lock, for state shared with callbacks on other threads.
final class LockedBox<Value>: @unchecked Sendable {
    // @unchecked: every access goes through `lock`.
    private let lock = NSLock()
    private var value: Value
    init(_ value: Value) { self.value = value }
    func withLock<T>(_ body: (inout Value) throws -> T) rethrows -> T {
        lock.lock()
        defer { lock.unlock() }
        return try body(&value)
    }
}

// MARK: appended parts

/// Output as a series of objects under a prefix, one per checkpoint
/// (`part-00000001.csv`, `part-00000002.csv`, ...), for outputs too large to rewrite
/// whole; the checkpoint is `_checkpoint.json` under the same prefix and its
/// `output_length` counts the parts.
///
/// A crash after a part's PUT but before the checkpoint's leaves a part the checkpoint
/// does not cover: `restore` deletes it and the rows are rebuilt into a part of the same
/// name. Readers should list `part-*` objects, or read the checkpoint for the count.
public final class PartsSink: StreamSink, @unchecked Sendable {
    // @unchecked: `parts` is only touched by the pipeline's task, one call at a time.
    /// How a part's bytes are made from its rows.
    public enum Encoding: Sendable {
        /// The rows' text, after `header` in every part (each part is a whole CSV file).
        case text(fileExtension: String, header: String?)
        /// A Parquet file (Lake's writer, snappy): each row's text, without its
        /// terminator and one trailing comma, is split at commas into the schema's columns
        /// (int64, double, string, boolean; an empty cell is null).
        case parquet(ParquetSchema)
    }

    public let store: any ObjectStore
    public let prefix: String
    public let encoding: Encoding
    public let location: String
    private var parts: Int64 = 0

    public init(store: any ObjectStore, prefix: String, encoding: Encoding, location: String? = nil) {
        self.store = store
        self.prefix = prefix.isEmpty || prefix.hasSuffix("/") ? prefix : prefix + "/"
        self.encoding = encoding
        self.location = location ?? prefix
    }

    var checkpointKey: String { prefix + "_checkpoint.json" }

    func partKey(_ n: Int64) -> String {
        let digits = String(n)
        let ext: String
        switch encoding {
        case .text(let e, _): ext = e
        case .parquet: ext = "parquet"
        }
        return prefix + "part-" + String(repeating: "0", count: max(0, 8 - digits.count)) + digits + "." + ext
    }

    private func existingParts() async throws -> [(key: String, number: Int64)] {
        try await store.list(prefix: prefix + "part-").compactMap { meta in
            let name = meta.key.dropFirst(prefix.count + 5)
            guard let dot = name.firstIndex(of: "."), let n = Int64(name[..<dot]) else { return nil }
            return (meta.key, n)
        }
    }

    public func restore() async throws -> [UInt8]? {
        let checkpoint: [UInt8]?
        do {
            checkpoint = Array(try await store.get(key: checkpointKey).readableBytesView)
        } catch let error as ObjectStoreError where error.code == .notFound {
            checkpoint = nil
        }
        let existing = try await existingParts()
        guard let checkpoint else {
            if !existing.isEmpty {
                throw StreamsError(.outputConflict, "\(location) has parts but no checkpoint (\(checkpointKey)); "
                    + "pass --from-beginning to replace them, or choose another output")
            }
            parts = 0
            return nil
        }
        parts = try readCheckpointLength(checkpoint, at: location)
        for part in existing where part.number > parts { try await store.delete(key: part.key) }
        return checkpoint
    }

    public func commit(_ rows: [OutputRow], header: String?, checkpoint: (Int64) throws -> [UInt8]) async throws {
        if !rows.isEmpty {
            try await store.put(key: partKey(parts + 1), body: try encode(rows))
            parts += 1
        }
        try await store.put(key: checkpointKey, body: ByteBuffer(bytes: try checkpoint(parts)))
    }

    private func encode(_ rows: [OutputRow]) throws -> ByteBuffer {
        switch encoding {
        case .text(_, let header):
            var body = ByteBuffer()
            if let header { body.writeString(header) }
            for row in rows { body.writeString(row.text) }
            return body
        case .parquet(let schema):
            var body = ByteBuffer()
            let writer = try ParquetWriter(schema: schema) { chunk in
                var chunk = chunk
                body.writeBuffer(&chunk)
            }
            for row in rows {
                var text = Substring(row.text)
                while text.last == "\n" || text.last == "\r" { text.removeLast() }
                if text.last == "," { text.removeLast() }
                let cells = text.split(separator: ",", omittingEmptySubsequences: false)
                var values: [ParquetValue] = []
                for (cell, column) in zip(cells, schema.columns) {
                    values.append(try Self.value(cell, column))
                }
                try writer.append(values)
            }
            try writer.close()
            return body
        }
    }

    static func value(_ cell: Substring, _ column: ParquetColumn) throws -> ParquetValue {
        if cell.isEmpty { return .null }
        let parsed: ParquetValue?
        switch column.type {
        case .int64: parsed = Int64(cell).map(ParquetValue.int64)
        case .double: parsed = Double(cell).map(ParquetValue.double)
        case .boolean: parsed = Bool(String(cell).lowercased()).map(ParquetValue.boolean)
        case .string: parsed = .string(String(cell))
        case .bytes: parsed = .bytes(Array(cell.utf8))
        case .timestampMillis: parsed = Int64(cell).map(ParquetValue.timestampMillis)
        }
        guard let parsed else {
            throw StreamsError(.invalidArgument, "column '\(column.name)' (\(column.type.rawValue)) cannot hold '\(cell)'")
        }
        return parsed
    }

    public func reset() async throws {
        for part in try await existingParts() { try await store.delete(key: part.key) }
        try await store.delete(key: checkpointKey)
        parts = 0
    }

    public func close() async throws {}
}
