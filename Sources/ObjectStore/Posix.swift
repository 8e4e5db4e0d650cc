#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import NIOCore

/// Thin, throwing wrappers over the POSIX calls the local store needs.
///
/// The module keeps its own rather than borrowing LogStore's so it depends on nothing
/// in the broker: object storage sits below the log, not beside it.
enum Posix {
    static func error(_ what: String, _ path: String, _ err: Int32 = errno) -> ObjectStoreError {
        ObjectStoreError(.io, "\(what) \(path): \(String(cString: strerror(err)))")
    }

    static func open(_ path: String, _ flags: Int32, _ mode: mode_t = 0o644) throws -> Int32 {
        while true {
            let fd = Glibc.open(path, flags | O_CLOEXEC, mode)
            if fd >= 0 { return fd }
            if errno == EINTR { continue }
            throw error("open", path)
        }
    }

    /// `open`, or nil when nothing is there (ENOENT, or a path through a non-directory).
    static func openIfExists(_ path: String, _ flags: Int32) throws -> Int32? {
        while true {
            let fd = Glibc.open(path, flags | O_CLOEXEC)
            if fd >= 0 { return fd }
            if errno == EINTR { continue }
            if errno == ENOENT || errno == ENOTDIR { return nil }
            throw error("open", path)
        }
    }

    /// Writes all of `bytes` at `offset`.
    static func write(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, at offset: Int, path: String) throws {
        var done = 0
        while done < bytes.count {
            let n = pwrite(fd, bytes.baseAddress! + done, bytes.count - done, off_t(offset + done))
            if n < 0 {
                if errno == EINTR { continue }
                throw error("write", path)
            }
            done += n
        }
    }

    /// Reads up to `length` bytes at `offset` into `buffer`; returns how many (fewer only
    /// at end of file).
    static func read(_ fd: Int32, into buffer: inout ByteBuffer, length: Int, at offset: Int, path: String) throws -> Int {
        try buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: length) { raw in
            var done = 0
            while done < length {
                let n = pread(fd, raw.baseAddress! + done, length - done, off_t(offset + done))
                if n < 0 {
                    if errno == EINTR { continue }
                    throw error("read", path)
                }
                if n == 0 { break }
                done += n
            }
            return done
        }
    }

    static func fsync(_ fd: Int32, path: String) throws {
        guard Glibc.fsync(fd) == 0 else { throw error("fsync", path) }
    }

    /// Makes a directory's entries (a rename, a new file) durable.
    static func syncDirectory(_ path: String) throws {
        let fd = try open(path, O_RDONLY | O_DIRECTORY)
        defer { close(fd) }
        try fsync(fd, path: path)
    }

    /// `lstat`, or nil when nothing is there (ENOENT, or a path through a non-directory).
    static func lstat(_ path: String) throws -> stat? {
        var st = stat()
        if Glibc.lstat(path, &st) == 0 { return st }
        if errno == ENOENT || errno == ENOTDIR { return nil }
        throw error("stat", path)
    }

    static func isDirectory(_ st: stat) -> Bool { (st.st_mode & S_IFMT) == S_IFDIR }
    static func isRegular(_ st: stat) -> Bool { (st.st_mode & S_IFMT) == S_IFREG }

    /// Creates `path` and its missing parents, fsyncing each parent that gained an entry
    /// so the new directories survive a crash along with the file renamed into them.
    static func createDirectories(_ path: String) throws {
        if let st = try lstat(path) {
            if isDirectory(st) { return }
            throw ObjectStoreError(.invalidKey, "\(path) exists and is not a directory")
        }
        let parent = parentDirectory(path)
        if parent != path { try createDirectories(parent) }
        if mkdir(path, 0o755) != 0 {
            if errno == EEXIST, let st = try lstat(path), isDirectory(st) { return }
            if errno == ENOTDIR || errno == EEXIST {
                throw ObjectStoreError(.invalidKey, "\(path) collides with an existing object")
            }
            throw error("mkdir", path)
        }
        try syncDirectory(parent)
    }

    static func parentDirectory(_ path: String) -> String {
        guard let slash = path.utf8.lastIndex(of: UInt8(ascii: "/")) else { return "." }
        if slash == path.utf8.startIndex { return "/" }
        return String(path[..<slash])
    }

    /// Names in a directory, without `.` and `..`.
    static func list(_ path: String) throws -> [String] {
        guard let dir = opendir(path) else {
            if errno == ENOENT || errno == ENOTDIR { return [] }
            throw error("opendir", path)
        }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafePointer(to: entry.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: Int(NAME_MAX) + 1) { String(cString: $0) }
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    /// Nanoseconds since the epoch of the last modification.
    static func modificationTime(_ st: stat) -> Int64 {
        Int64(st.st_mtim.tv_sec) * 1_000_000_000 + Int64(st.st_mtim.tv_nsec)
    }
}
