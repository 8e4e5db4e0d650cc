#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import NIOCore

/// An error from the file system, with the path and errno text.
public struct LogStoreError: Error, Sendable, CustomStringConvertible {
    public enum Kind: Sendable, Hashable {
        case io
        case corrupt
        case offsetOutOfRange
        case recordTooLarge
        case invalidRecord
        case notFound
        case unsupportedFormat
        case outOfOrderSequence
        case invalidProducerEpoch
        /// The offset is below the local log start but above the log start: the batches
        /// are in tiered storage, not on this disk.
        case offsetTiered
    }
    public var kind: Kind
    public var message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    static func errno(_ what: String, _ path: String) -> LogStoreError {
        LogStoreError(.io, "\(what) \(path): \(String(cString: strerror(Glibc.errno)))")
    }

    public var description: String { message }
}

/// A file opened for positional reads and appends. Not thread-safe on its own: the owning
/// partition serialises writes; positional reads are safe alongside them.
final class LogFile: @unchecked Sendable {
    // @unchecked: the descriptor is immutable; writes are serialised by the partition lock,
    // and pread at positions below the published size is safe concurrently with appends.
    let path: String
    let fd: Int32

    init(path: String, create: Bool) throws {
        self.path = path
        let flags = O_RDWR | O_CLOEXEC | (create ? O_CREAT : 0)
        let fd = open(path, flags, 0o644)
        guard fd >= 0 else { throw LogStoreError.errno("open", path) }
        self.fd = fd
    }

    deinit { close(fd) }

    func size() throws -> Int {
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw LogStoreError.errno("stat", path) }
        return Int(st.st_size)
    }

    /// Writes all of `buffer` at `offset`.
    func write(_ buffer: ByteBuffer, at offset: Int) throws {
        try buffer.withUnsafeReadableBytes { try write(bytes: $0, at: offset) }
    }

    func write(bytes: UnsafeRawBufferPointer, at offset: Int) throws {
        var done = 0
        while done < bytes.count {
            let n = pwrite(fd, bytes.baseAddress! + done, bytes.count - done, off_t(offset + done))
            if n < 0 {
                if Glibc.errno == EINTR { continue }
                throw LogStoreError.errno("write", path)
            }
            done += n
        }
    }

    /// Reads up to `length` bytes at `offset`; fewer at end of file.
    func read(at offset: Int, length: Int, allocator: ByteBufferAllocator = ByteBufferAllocator()) throws -> ByteBuffer {
        var buffer = allocator.buffer(capacity: length)
        let got = try buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: length) { raw in
            var done = 0
            while done < length {
                let n = pread(fd, raw.baseAddress! + done, length - done, off_t(offset + done))
                if n < 0 {
                    if Glibc.errno == EINTR { continue }
                    throw LogStoreError.errno("read", path)
                }
                if n == 0 { break }
                done += n
            }
            return done
        }
        _ = got
        return buffer
    }

    func duplicateDescriptor() throws -> Int32 {
        let copy = dup(fd)
        guard copy >= 0 else { throw LogStoreError.errno("dup", path) }
        return copy
    }

    func truncate(to size: Int) throws {
        guard ftruncate(fd, off_t(size)) == 0 else { throw LogStoreError.errno("truncate", path) }
    }

    func sync() throws {
        guard fdatasync(fd) == 0 else { throw LogStoreError.errno("fsync", path) }
    }
}

/// Small POSIX helpers shared by the log and the broker's metadata files.
public enum FileSystem {
    public static func exists(_ path: String) -> Bool {
        access(path, F_OK) == 0
    }

    public static func createDirectory(_ path: String) throws {
        var current = path.hasPrefix("/") ? "" : "."
        for part in path.split(separator: "/") {
            current += "/" + part
            if mkdir(current, 0o755) != 0 && Glibc.errno != EEXIST {
                throw LogStoreError.errno("mkdir", current)
            }
        }
    }

    public static func list(_ path: String) throws -> [String] {
        guard let dir = opendir(path) else { throw LogStoreError.errno("opendir", path) }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafePointer(to: entry.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    public static func remove(_ path: String) throws {
        if unlink(path) != 0 && Glibc.errno != ENOENT { throw LogStoreError.errno("unlink", path) }
    }

    public static func removeTree(_ path: String) throws {
        var st = stat()
        guard lstat(path, &st) == 0 else { return }
        if (st.st_mode & S_IFMT) == S_IFDIR {
            for name in try list(path) { try removeTree(path + "/" + name) }
            if rmdir(path) != 0 { throw LogStoreError.errno("rmdir", path) }
        } else {
            try remove(path)
        }
    }

    public static func rename(_ from: String, _ to: String) throws {
        if Glibc.rename(from, to) != 0 { throw LogStoreError.errno("rename", from) }
    }

    public static func syncDirectory(_ path: String) {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if fd >= 0 {
            fsync(fd)
            close(fd)
        }
    }

    public static func readFile(_ path: String) throws -> [UInt8]? {
        guard exists(path) else { return nil }
        let file = try LogFile(path: path, create: false)
        var buffer = try file.read(at: 0, length: try file.size())
        return buffer.readBytes(length: buffer.readableBytes)
    }

    /// Writes a small file atomically: temp file, fsync, rename, fsync the directory.
    public static func writeAtomically(_ path: String, _ bytes: [UInt8]) throws {
        let tmp = path + ".tmp"
        let file = try LogFile(path: tmp, create: true)
        try file.truncate(to: 0)
        try bytes.withUnsafeBytes { try file.write(bytes: $0, at: 0) }
        try file.sync()
        try rename(tmp, path)
        let dir = path.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
        syncDirectory(dir.isEmpty ? "." : dir)
    }

    public static func fileModificationTimeMs(_ path: String) -> Int64? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        return Int64(st.st_mtim.tv_sec) * 1000 + Int64(st.st_mtim.tv_nsec) / 1_000_000
    }
}

/// Wall-clock milliseconds since the epoch.
public func currentTimeMillis() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
}
