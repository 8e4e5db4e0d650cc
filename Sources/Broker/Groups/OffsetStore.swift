#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import KafkaProtocol
import LogStore
import NIOConcurrencyHelpers
import NIOCore

/// A committed offset, as OffsetFetch returns it.
struct CommittedOffset: Sendable, Hashable {
    var offset: Int64
    /// -1 when the client did not say.
    var leaderEpoch: Int32
    var metadata: String
    var commitTimestamp: Int64
    /// From OffsetCommit v2-4's retention time: the offset expires then, whatever the
    /// group's state.
    var expireTimestamp: Int64?

    init(offset: Int64, leaderEpoch: Int32 = -1, metadata: String = "", commitTimestamp: Int64, expireTimestamp: Int64? = nil) {
        self.offset = offset
        self.leaderEpoch = leaderEpoch
        self.metadata = metadata
        self.commitTimestamp = commitTimestamp
        self.expireTimestamp = expireTimestamp
    }
}

struct TopicPartitionKey: Sendable, Hashable, Comparable {
    var topic: String
    var partition: Int32

    static func < (lhs: TopicPartitionKey, rhs: TopicPartitionKey) -> Bool {
        (lhs.topic, lhs.partition) < (rhs.topic, rhs.partition)
    }
}

/// What must survive a restart about a group besides its offsets: Kafka keeps it in the
/// group metadata record, and offset expiry and ListGroups need it.
struct StoredGroupMetadata: Sendable, Hashable {
    /// The group's protocol type ("consumer"), nil for a group only ever committed to.
    var protocolType: String?
    /// When the group last became empty; nil while it had members. After a restart a
    /// group that had members is empty since the restart: they all lost their session.
    var emptySince: Int64?
}

/// How the offsets of one group age, decided by the coordinator from the group's state
/// (Kafka's `GroupMetadata.removeExpiredOffsets`).
enum OffsetExpiryPolicy: Sendable, Hashable {
    /// No members: an offset expires `offsets.retention` after the later of its commit
    /// and the moment the group became empty (nil: unknown, the commit alone counts).
    case empty(since: Int64?)
    /// A Stable consumer group: offsets of topics it no longer subscribes to age from
    /// their commit; the others are in use and kept.
    case subscribed(Set<String>)
    /// A group in the middle of a rebalance, or whose subscriptions are unknown.
    case keep
}

/// Committed offsets of every group, durable in one append-only file in the data
/// directory (the role of Kafka's compacted `__consumer_offsets` topic).
///
/// The file is an 8-byte header then records framed as `length u32, crc32c u32, payload`.
/// A change is appended (a `write`) and applied in memory; `flush(upTo:)` fsyncs with
/// group commit (one fsync covers every append before it), so a commit is answered only
/// once it would survive SIGKILL or power loss. On open the file is replayed; the first
/// record that is torn or fails its CRC ends the valid data and the file is truncated
/// there. When superseded records far outnumber live ones, the live state is rewritten to
/// a temporary file, fsynced and renamed over the log.
///
/// Thread-safe. Appends are short writes under a lock; fsync and compaction are blocking
/// and belong on a thread pool.
final class OffsetStore: Sendable {
    struct Configuration: Sendable, Hashable {
        /// Compact when the file holds at least this many records...
        var compactionMinRecords = 10_000
        /// ...and more than this many times as many records as are live.
        var compactionGarbageRatio = 4
        init() {}
    }

    /// What opening the store found, for the caller to log.
    struct LoadReport: Sendable, Hashable {
        var records: Int
        var truncatedBytes: Int
        var compacted: Bool
    }

    enum Record: Sendable, Hashable {
        case commit(group: String, key: TopicPartitionKey, CommittedOffset)
        case deleteOffset(group: String, key: TopicPartitionKey)
        case deleteGroup(group: String)
        case groupMetadata(group: String, StoredGroupMetadata)
    }

    private struct GroupEntry: Sendable {
        var offsets: [TopicPartitionKey: CommittedOffset] = [:]
        var metadata: StoredGroupMetadata?
        var isEmpty: Bool { offsets.isEmpty && metadata == nil }
    }

    private struct State: Sendable {
        var file: OffsetLogFile
        var groups: [String: GroupEntry] = [:]
        var fileSize = 0
        var recordsInFile = 0
        /// Bumped by every append; `flushedSequence` trails it until an fsync.
        var appendedSequence: UInt64 = 0
        var flushedSequence: UInt64 = 0

        var liveRecords: Int {
            groups.values.reduce(0) { $0 + $1.offsets.count + ($1.metadata == nil ? 0 : 1) }
        }
    }

    static let fileName = "consumer-offsets.log"
    static let magic: [UInt8] = Array("TRBOFS".utf8) + [0, 1]
    /// A longer frame is corruption, not a record: group ids, topics and metadata are small.
    static let maxRecordBytes = 16 << 20

    let path: String
    let configuration: Configuration
    let loadReport: LoadReport
    private let state: NIOLockedValueBox<State>
    /// Serialises fsyncs (and compaction) so concurrent flushes share one fsync.
    private let flushLock = NIOLock()

    /// Opens (creating if needed) the store in `directory`, replaying and repairing it.
    init(directory: String, configuration: Configuration = Configuration()) throws {
        self.configuration = configuration
        path = directory + "/" + Self.fileName
        try FileSystem.createDirectory(directory)
        let file = try OffsetLogFile(path: path, create: true)
        var loaded = State(file: file)
        var size = try file.size()
        var truncated = 0
        if size < Self.magic.count {
            // A new file, or one whose header write was torn: nothing was acknowledged.
            try file.truncate(to: 0)
            try file.write(ByteBuffer(bytes: Self.magic), at: 0)
            try file.sync()
            FileSystem.syncDirectory(directory)
            truncated = size
            size = Self.magic.count
        }
        var contents = try file.read(at: 0, length: size)
        guard contents.readBytes(length: Self.magic.count) == Self.magic else {
            throw LogStoreError(.corrupt, "\(path) is not a Tributary offset store (bad header); refusing to overwrite it")
        }
        var validEnd = Self.magic.count
        var records = 0
        while let record = Self.readRecord(from: &contents) {
            Self.apply(record, to: &loaded.groups)
            records += 1
            validEnd = contents.readerIndex
        }
        if validEnd < size {
            try file.truncate(to: validEnd)
            try file.sync()
            truncated += size - validEnd
        }
        loaded.fileSize = validEnd
        loaded.recordsInFile = records
        var compacted = false
        if Self.shouldCompact(loaded, configuration) {
            try Self.compact(&loaded, path: path)
            compacted = true
        }
        state = NIOLockedValueBox(loaded)
        loadReport = LoadReport(records: records, truncatedBytes: truncated, compacted: compacted)
    }

    // MARK: Reads

    func offsets(group: String) -> [TopicPartitionKey: CommittedOffset] {
        state.withLockedValue { $0.groups[group]?.offsets ?? [:] }
    }

    func offset(group: String, topic: String, partition: Int32) -> CommittedOffset? {
        state.withLockedValue { $0.groups[group]?.offsets[TopicPartitionKey(topic: topic, partition: partition)] }
    }

    func hasOffsets(group: String) -> Bool {
        state.withLockedValue { !($0.groups[group]?.offsets.isEmpty ?? true) }
    }

    func metadata(group: String) -> StoredGroupMetadata? {
        state.withLockedValue { $0.groups[group]?.metadata }
    }

    /// Every group with offsets or metadata, sorted.
    func groupIds() -> [String] {
        state.withLockedValue { $0.groups.keys.sorted() }
    }

    /// Records in the file, live or superseded (for tests and compaction decisions).
    var recordsInFile: Int { state.withLockedValue { $0.recordsInFile } }
    var liveRecords: Int { state.withLockedValue { $0.liveRecords } }

    // MARK: Writes

    /// Appends offset commits; durable after `flush(upTo:)` with the returned sequence.
    @discardableResult
    func commit(group: String, offsets: [(TopicPartitionKey, CommittedOffset)]) throws -> UInt64 {
        try append(offsets.map { .commit(group: group, key: $0.0, $0.1) })
    }

    /// Deletes the named offsets that exist.
    @discardableResult
    func deleteOffsets(group: String, partitions: [TopicPartitionKey]) throws -> UInt64 {
        try state.withLockedValue { state in
            let existing = partitions.filter { state.groups[group]?.offsets[$0] != nil }
            return try Self.append(existing.map { .deleteOffset(group: group, key: $0) }, to: &state)
        }
    }

    /// Deletes a group's offsets and metadata.
    @discardableResult
    func deleteGroup(_ group: String) throws -> UInt64 {
        try state.withLockedValue { state in
            guard state.groups[group] != nil else { return state.appendedSequence }
            return try Self.append([.deleteGroup(group: group)], to: &state)
        }
    }

    /// Records a group's metadata when it changed.
    @discardableResult
    func setMetadata(group: String, _ metadata: StoredGroupMetadata) throws -> UInt64 {
        try state.withLockedValue { state in
            guard state.groups[group]?.metadata != metadata else { return state.appendedSequence }
            return try Self.append([.groupMetadata(group: group, metadata)], to: &state)
        }
    }

    @discardableResult
    func append(_ records: [Record]) throws -> UInt64 {
        try state.withLockedValue { try Self.append(records, to: &$0) }
    }

    /// Writes the records at the end of the file, then applies them. A failed write is cut
    /// off again so the next append does not land behind garbage.
    private static func append(_ records: [Record], to state: inout State) throws -> UInt64 {
        guard !records.isEmpty else { return state.appendedSequence }
        var buffer = ByteBufferAllocator().buffer(capacity: 128 * records.count)
        for record in records { writeRecord(record, into: &buffer) }
        do {
            try state.file.write(buffer, at: state.fileSize)
        } catch {
            try? state.file.truncate(to: state.fileSize)
            throw error
        }
        state.fileSize += buffer.readableBytes
        state.recordsInFile += records.count
        for record in records { apply(record, to: &state.groups) }
        state.appendedSequence += 1
        return state.appendedSequence
    }

    /// Blocks until every append up to `sequence` is on stable storage. Concurrent callers
    /// share an fsync: whoever waits on the lock usually finds its data already flushed.
    func flush(upTo sequence: UInt64) throws {
        if state.withLockedValue({ $0.flushedSequence >= sequence }) { return }
        try flushLock.withLock {
            let (file, target, done) = state.withLockedValue { ($0.file, $0.appendedSequence, $0.flushedSequence >= sequence) }
            if done { return }
            try file.sync()
            state.withLockedValue { $0.flushedSequence = max($0.flushedSequence, target) }
        }
    }

    /// Flushes everything appended so far.
    func flush() throws {
        try flush(upTo: state.withLockedValue { $0.appendedSequence })
    }

    /// Appends tombstones for expired offsets and returns them per group. A group without
    /// an entry in `policies` keeps its offsets. Tombstones are not fsynced: if they are
    /// lost, the offsets simply expire again.
    func removeExpired(now: Int64, retentionMs: Int64, policies: [String: OffsetExpiryPolicy]) throws -> [String: [TopicPartitionKey]] {
        try state.withLockedValue { state in
            var expired: [String: [TopicPartitionKey]] = [:]
            for (group, entry) in state.groups {
                guard let policy = policies[group] else { continue }
                let keys = entry.offsets.filter { key, committed in
                    Self.isExpired(key, committed, policy: policy, now: now, retentionMs: retentionMs)
                }.keys.sorted()
                if !keys.isEmpty { expired[group] = keys }
            }
            let records = expired.sorted { $0.key < $1.key }.flatMap { group, keys in keys.map { Record.deleteOffset(group: group, key: $0) } }
            _ = try Self.append(records, to: &state)
            return expired
        }
    }

    static func isExpired(_ key: TopicPartitionKey, _ committed: CommittedOffset, policy: OffsetExpiryPolicy, now: Int64, retentionMs: Int64) -> Bool {
        if let expireTimestamp = committed.expireTimestamp {
            if case .keep = policy { return false }
            if case .subscribed(let topics) = policy, topics.contains(key.topic) { return false }
            return now >= expireTimestamp
        }
        switch policy {
        case .keep:
            return false
        case .subscribed(let topics):
            return !topics.contains(key.topic) && now - committed.commitTimestamp >= retentionMs
        case .empty(let since):
            let base = max(committed.commitTimestamp, since ?? committed.commitTimestamp)
            return now - base >= retentionMs
        }
    }

    // MARK: Compaction

    /// Rewrites the file to its live records when it is mostly garbage. Blocking.
    @discardableResult
    func compactIfNeeded() throws -> Bool {
        try flushLock.withLock {
            try state.withLockedValue { state in
                guard Self.shouldCompact(state, configuration) else { return false }
                try Self.compact(&state, path: path)
                return true
            }
        }
    }

    /// Rewrites the file to its live records now. Blocking.
    func compact() throws {
        try flushLock.withLock {
            try state.withLockedValue { try Self.compact(&$0, path: path) }
        }
    }

    private static func shouldCompact(_ state: State, _ configuration: Configuration) -> Bool {
        state.recordsInFile >= configuration.compactionMinRecords
            && state.recordsInFile > configuration.compactionGarbageRatio * max(state.liveRecords, 1)
    }

    /// Temporary file, fsync, rename, fsync the directory: a crash at any point leaves
    /// either the old log or the new one, both complete. Everything appended before is in
    /// the new file, so it counts as flushed.
    private static func compact(_ state: inout State, path: String) throws {
        var buffer = ByteBufferAllocator().buffer(capacity: 64 + 96 * state.liveRecords)
        buffer.writeBytes(magic)
        var records = 0
        for group in state.groups.keys.sorted() {
            let entry = state.groups[group]!
            if let metadata = entry.metadata {
                writeRecord(.groupMetadata(group: group, metadata), into: &buffer)
                records += 1
            }
            for key in entry.offsets.keys.sorted() {
                writeRecord(.commit(group: group, key: key, entry.offsets[key]!), into: &buffer)
                records += 1
            }
        }
        let temporary = path + ".compacting"
        try FileSystem.remove(temporary)
        let file = try OffsetLogFile(path: temporary, create: true)
        try file.write(buffer, at: 0)
        try file.sync()
        try FileSystem.rename(temporary, path)
        let directory = path.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
        FileSystem.syncDirectory(directory.isEmpty ? "." : directory)
        state.file = file
        state.fileSize = buffer.readableBytes
        state.recordsInFile = records
        state.flushedSequence = state.appendedSequence
    }

    // MARK: Record format

    private static func apply(_ record: Record, to groups: inout [String: GroupEntry]) {
        switch record {
        case .commit(let group, let key, let committed):
            groups[group, default: GroupEntry()].offsets[key] = committed
        case .deleteOffset(let group, let key):
            groups[group]?.offsets.removeValue(forKey: key)
            if groups[group]?.isEmpty == true { groups.removeValue(forKey: group) }
        case .deleteGroup(let group):
            groups.removeValue(forKey: group)
        case .groupMetadata(let group, let metadata):
            groups[group, default: GroupEntry()].metadata = metadata
        }
    }

    private enum RecordType: UInt8 {
        case commit = 1
        case deleteOffset = 2
        case deleteGroup = 3
        case groupMetadata = 4
    }

    static func writeRecord(_ record: Record, into buffer: inout ByteBuffer) {
        let frameStart = buffer.writerIndex
        buffer.writeInteger(UInt32(0))  // length, patched below
        buffer.writeInteger(UInt32(0))  // crc, patched below
        let payloadStart = buffer.writerIndex
        switch record {
        case .commit(let group, let key, let committed):
            buffer.writeInteger(RecordType.commit.rawValue)
            writeString(group, into: &buffer)
            writeString(key.topic, into: &buffer)
            buffer.writeInteger(key.partition)
            buffer.writeInteger(committed.offset)
            buffer.writeInteger(committed.leaderEpoch)
            writeString(committed.metadata, into: &buffer)
            buffer.writeInteger(committed.commitTimestamp)
            buffer.writeInteger(committed.expireTimestamp ?? -1)
        case .deleteOffset(let group, let key):
            buffer.writeInteger(RecordType.deleteOffset.rawValue)
            writeString(group, into: &buffer)
            writeString(key.topic, into: &buffer)
            buffer.writeInteger(key.partition)
        case .deleteGroup(let group):
            buffer.writeInteger(RecordType.deleteGroup.rawValue)
            writeString(group, into: &buffer)
        case .groupMetadata(let group, let metadata):
            buffer.writeInteger(RecordType.groupMetadata.rawValue)
            writeString(group, into: &buffer)
            writeString(metadata.protocolType, into: &buffer)
            buffer.writeInteger(metadata.emptySince ?? -1)
        }
        let length = buffer.writerIndex - payloadStart
        let crc = CRC32C.checksum(buffer.getSlice(at: payloadStart, length: length)!)
        buffer.setInteger(UInt32(length), at: frameStart)
        buffer.setInteger(crc, at: frameStart + 4)
    }

    /// Reads the next record, or nil at the end of the valid data (end of file, a torn
    /// frame, a CRC mismatch or an undecodable payload) leaving the reader index there.
    static func readRecord(from buffer: inout ByteBuffer) -> Record? {
        let start = buffer.readerIndex
        guard let length = buffer.getInteger(at: start, as: UInt32.self),
              let crc = buffer.getInteger(at: start + 4, as: UInt32.self),
              length > 0, length <= maxRecordBytes,
              var payload = buffer.getSlice(at: start + 8, length: Int(length)),
              CRC32C.checksum(payload) == crc,
              let record = decodePayload(&payload), payload.readableBytes == 0 else { return nil }
        buffer.moveReaderIndex(forwardBy: 8 + Int(length))
        return record
    }

    private static func decodePayload(_ payload: inout ByteBuffer) -> Record? {
        guard let rawType = payload.readInteger(as: UInt8.self), let type = RecordType(rawValue: rawType) else { return nil }
        switch type {
        case .commit:
            guard let group = readString(&payload), let topic = readString(&payload),
                  let partition = payload.readInteger(as: Int32.self),
                  let offset = payload.readInteger(as: Int64.self),
                  let leaderEpoch = payload.readInteger(as: Int32.self),
                  let metadata = readString(&payload),
                  let commitTimestamp = payload.readInteger(as: Int64.self),
                  let expireTimestamp = payload.readInteger(as: Int64.self) else { return nil }
            return .commit(group: group, key: TopicPartitionKey(topic: topic, partition: partition),
                           CommittedOffset(offset: offset, leaderEpoch: leaderEpoch, metadata: metadata,
                                           commitTimestamp: commitTimestamp, expireTimestamp: expireTimestamp < 0 ? nil : expireTimestamp))
        case .deleteOffset:
            guard let group = readString(&payload), let topic = readString(&payload),
                  let partition = payload.readInteger(as: Int32.self) else { return nil }
            return .deleteOffset(group: group, key: TopicPartitionKey(topic: topic, partition: partition))
        case .deleteGroup:
            guard let group = readString(&payload) else { return nil }
            return .deleteGroup(group: group)
        case .groupMetadata:
            guard let group = readString(&payload), let protocolType = readNullableString(&payload),
                  let emptySince = payload.readInteger(as: Int64.self) else { return nil }
            return .groupMetadata(group: group, StoredGroupMetadata(protocolType: protocolType, emptySince: emptySince < 0 ? nil : emptySince))
        }
    }

    private static let nullLength = UInt32.max

    private static func writeString(_ string: String?, into buffer: inout ByteBuffer) {
        guard let string else {
            buffer.writeInteger(nullLength)
            return
        }
        let lengthIndex = buffer.writerIndex
        buffer.writeInteger(UInt32(0))
        let written = buffer.writeString(string)
        buffer.setInteger(UInt32(written), at: lengthIndex)
    }

    private static func readString(_ buffer: inout ByteBuffer) -> String? {
        guard let value = readNullableString(&buffer), let string = value else { return nil }
        return string
    }

    /// nil: malformed; .some(nil): a null string.
    private static func readNullableString(_ buffer: inout ByteBuffer) -> String?? {
        guard let length = buffer.readInteger(as: UInt32.self) else { return nil }
        if length == nullLength { return .some(nil) }
        guard let string = buffer.readString(length: Int(length)) else { return nil }
        return .some(string)
    }
}

/// The store's file: positional writes at the end, reads at load, fsync.
final class OffsetLogFile: @unchecked Sendable {
    // @unchecked: the descriptor never changes after init; writes are serialised by the
    // store's lock, and fsync may run concurrently with a write, which POSIX allows.
    let path: String
    private let fd: Int32

    init(path: String, create: Bool) throws {
        self.path = path
        let fd = open(path, O_RDWR | O_CLOEXEC | (create ? O_CREAT : 0), 0o644)
        guard fd >= 0 else { throw Self.error("open", path) }
        self.fd = fd
    }

    deinit { close(fd) }

    private static func error(_ what: String, _ path: String) -> LogStoreError {
        LogStoreError(.io, "\(what) \(path): \(String(cString: strerror(errno)))")
    }

    func size() throws -> Int {
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw Self.error("stat", path) }
        return Int(st.st_size)
    }

    func write(_ buffer: ByteBuffer, at offset: Int) throws {
        try buffer.withUnsafeReadableBytes { raw in
            var done = 0
            while done < raw.count {
                let n = pwrite(fd, raw.baseAddress! + done, raw.count - done, off_t(offset + done))
                if n < 0 {
                    if errno == EINTR { continue }
                    throw Self.error("write", path)
                }
                done += n
            }
        }
    }

    func read(at offset: Int, length: Int) throws -> ByteBuffer {
        var buffer = ByteBufferAllocator().buffer(capacity: max(length, 1))
        _ = try buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: max(length, 1)) { raw in
            var done = 0
            while done < length {
                let n = pread(fd, raw.baseAddress! + done, length - done, off_t(offset + done))
                if n < 0 {
                    if errno == EINTR { continue }
                    throw Self.error("read", path)
                }
                if n == 0 { break }
                done += n
            }
            return done
        }
        return buffer
    }

    func truncate(to size: Int) throws {
        guard ftruncate(fd, off_t(size)) == 0 else { throw Self.error("truncate", path) }
    }

    func sync() throws {
        guard fdatasync(fd) == 0 else { throw Self.error("fsync", path) }
    }
}
