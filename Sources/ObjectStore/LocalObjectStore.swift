#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import NIOCore
import NIOPosix

/// An object store in a local directory (`file:///path`): the embedded default, and the
/// stand-in for S3 in tests of the tiering logic.
///
/// A key maps to the file `root/key`. A put writes a temporary file in `root/.staging`,
/// fsyncs it, renames it over the key and fsyncs the directory, so after a crash the key
/// holds the old object or the new one, never a prefix of either, and an acknowledged
/// put survives power loss. Leftover temporary files are invisible to `get` and `list`
/// and are removed when a store is next opened on the root.
///
/// One file system cannot hold both `a` and `a/b` as S3 can; such a put fails with
/// `.invalidKey`. Blocking calls run on NIO's thread pool, not on the caller's executor.
public struct LocalObjectStore: ObjectStore {
    /// The directory under the root that holds in-flight writes; no key may start with it.
    public static let stagingDirectoryName = ".staging"
    /// The suffix of in-flight writes in the staging directory.
    static let temporarySuffix = ".partial"

    /// The absolute path of the root directory, without a trailing slash.
    public let root: String
    private let threadPool: NIOThreadPool

    /// Opens (creating it if needed) a store rooted at `root`.
    ///
    /// - Parameter removingTemporaryFilesOlderThan: staging files at least this old are
    ///   leftovers of a crashed writer and are deleted; younger ones may belong to another
    ///   process still writing to the same root.
    public init(root: String, removingTemporaryFilesOlderThan age: Duration = .seconds(3600),
                threadPool: NIOThreadPool = .singleton) throws {
        guard !root.isEmpty else { throw ObjectStoreError(.invalidURL, "empty root directory") }
        var root = root
        if !root.hasPrefix("/") {
            var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
            guard getcwd(&buffer, buffer.count) != nil else { throw Posix.error("getcwd", root) }
            let length = buffer.firstIndex(of: 0) ?? buffer.count
            root = String(decoding: buffer[..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self) + "/" + root
        }
        while root.count > 1 && root.hasSuffix("/") { root.removeLast() }
        self.root = root
        self.threadPool = threadPool
        try Posix.createDirectories(root)
        try Posix.createDirectories(stagingDirectory)
        try removeTemporaryFiles(olderThan: age)
    }

    var stagingDirectory: String { root + "/" + Self.stagingDirectoryName }

    func path(for key: String) throws -> String {
        try validateKey(key)
        if key == Self.stagingDirectoryName || key.hasPrefix(Self.stagingDirectoryName + "/") {
            throw ObjectStoreError(.invalidKey, "keys under \(Self.stagingDirectoryName)/ are reserved", key: key)
        }
        return root + "/" + key
    }

    // MARK: ObjectStore

    public func put(key: String, body: ByteBuffer) async throws {
        let target = try path(for: key)
        try await threadPool.runIfActive {
            try commit(to: target, key: key) { fd, tmp in
                try body.withUnsafeReadableBytes { try Posix.write(fd, $0, at: 0, path: tmp) }
            }
        }
    }

    /// Copies the file in 1 MiB chunks; `partSize` has no meaning here and is ignored.
    public func putFile(key: String, path source: String, partSize: Int?) async throws {
        let target = try path(for: key)
        try await threadPool.runIfActive {
            let input = try Posix.open(source, O_RDONLY)
            defer { close(input) }
            try commit(to: target, key: key) { fd, tmp in
                var buffer = ByteBufferAllocator().buffer(capacity: 1 << 20)
                var offset = 0
                while true {
                    buffer.clear()
                    let n = try Posix.read(input, into: &buffer, length: 1 << 20, at: offset, path: source)
                    if n == 0 { break }
                    try buffer.withUnsafeReadableBytes { try Posix.write(fd, $0, at: offset, path: tmp) }
                    offset += n
                }
            }
        }
    }

    public func get(key: String, range: Range<Int>?) async throws -> ByteBuffer {
        let target = try path(for: key)
        try validateRange(range, key: key)
        return try await threadPool.runIfActive {
            guard let fd = try Posix.openIfExists(target, O_RDONLY) else {
                throw ObjectStoreError(.notFound, "no object", key: key)
            }
            defer { close(fd) }
            var st = stat()
            guard fstat(fd, &st) == 0 else { throw Posix.error("stat", target) }
            guard Posix.isRegular(st) else { throw ObjectStoreError(.notFound, "no object (a directory)", key: key) }
            let size = Int(st.st_size)
            let wanted = range ?? 0..<size
            guard wanted.upperBound <= size else {
                throw ObjectStoreError(.invalidRange, "range \(wanted) past the end of a \(size)-byte object", key: key)
            }
            var buffer = ByteBufferAllocator().buffer(capacity: wanted.count)
            let n = try Posix.read(fd, into: &buffer, length: wanted.count, at: wanted.lowerBound, path: target)
            guard n == wanted.count else {
                throw ObjectStoreError(.integrity, "read \(n) of \(wanted.count) bytes", key: key)
            }
            return buffer
        }
    }

    public func head(key: String) async throws -> ObjectMetadata? {
        let target = try path(for: key)
        return try await threadPool.runIfActive {
            guard let st = try Posix.lstat(target), Posix.isRegular(st) else { return nil }
            return Self.metadata(key: key, st)
        }
    }

    public func list(prefix: String) async throws -> [ObjectMetadata] {
        let root = self.root
        return try await threadPool.runIfActive {
            // Start at the deepest directory the prefix names, so listing one partition
            // does not walk every topic.
            var start = ""
            if let slash = prefix.utf8.lastIndex(of: UInt8(ascii: "/")) {
                start = String(prefix[...slash])
                if (try? validateKey(String(start.dropLast()))) == nil { return [] }
            }
            var found: [ObjectMetadata] = []
            try Self.walk(directory: start.isEmpty ? root : root + "/" + start.dropLast(),
                          keyPrefix: start, matching: prefix, into: &found)
            found.sort { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }
            return found
        }
    }

    public func delete(key: String) async throws {
        let target = try path(for: key)
        let root = self.root
        try await threadPool.runIfActive {
            if unlink(target) != 0 {
                // Absent, or the key names a directory of other keys: either way no object.
                if errno == ENOENT || errno == ENOTDIR || errno == EISDIR { return }
                throw Posix.error("unlink", target)
            }
            var directory = Posix.parentDirectory(target)
            try Posix.syncDirectory(directory)
            // Drop directories the delete emptied, so a listing does not walk dead
            // partitions forever. A put racing with this retries its rename.
            while directory.count > root.count && directory.hasPrefix(root + "/") {
                guard rmdir(directory) == 0 else { break }
                directory = Posix.parentDirectory(directory)
            }
        }
    }

    public func shutdown() async throws {}

    // MARK: Internals

    /// Writes a temporary file with `write`, fsyncs it and renames it to `target`.
    private func commit(to target: String, key: String,
                        _ write: (_ fd: Int32, _ temporaryPath: String) throws -> Void) throws {
        let tmp = stagingDirectory + "/" + Self.temporaryName()
        let fd = try Posix.open(tmp, O_WRONLY | O_CREAT | O_EXCL, 0o644)
        var committed = false
        defer {
            if !committed { unlink(tmp) }
        }
        do {
            defer { close(fd) }
            try write(fd, tmp)
            try Posix.fsync(fd, path: tmp)
        }
        let directory = Posix.parentDirectory(target)
        // A concurrent delete may remove an emptied parent between mkdir and rename.
        var attempt = 0
        while true {
            try Posix.createDirectories(directory)
            if rename(tmp, target) == 0 { break }
            let err = errno
            attempt += 1
            if err == ENOENT && attempt < 5 { continue }
            if err == EISDIR || err == ENOTDIR || err == ENOTEMPTY || err == EEXIST {
                throw ObjectStoreError(.invalidKey, "collides with an existing object or key prefix", key: key)
            }
            throw Posix.error("rename", target, err)
        }
        committed = true
        try Posix.syncDirectory(directory)
    }

    /// A name no other writer (thread or process) will pick: the pid and 64 random bits.
    static func temporaryName() -> String {
        "\(getpid())-\(String(UInt64.random(in: .min ... .max), radix: 16))\(temporarySuffix)"
    }

    static func metadata(key: String, _ st: stat) -> ObjectMetadata {
        let size = Int(st.st_size)
        let tag = String(size, radix: 16) + "-" + String(Posix.modificationTime(st), radix: 16)
        return ObjectMetadata(key: key, size: size, etag: "\"\(tag)\"")
    }

    private static func walk(directory: String, keyPrefix: String, matching prefix: String,
                             into found: inout [ObjectMetadata]) throws {
        for name in try Posix.list(directory) {
            if keyPrefix.isEmpty && name == stagingDirectoryName { continue }
            let key = keyPrefix + name
            // Only descend where a matching key can be: `key/` must be a prefix of the
            // wanted prefix or start with it.
            let path = directory + "/" + name
            guard let st = try Posix.lstat(path) else { continue }
            if Posix.isDirectory(st) {
                let sub = key + "/"
                if sub.utf8.starts(with: prefix.utf8) || prefix.utf8.starts(with: sub.utf8) {
                    try walk(directory: path, keyPrefix: sub, matching: prefix, into: &found)
                }
            } else if Posix.isRegular(st) && key.utf8.starts(with: prefix.utf8) {
                found.append(metadata(key: key, st))
            }
        }
    }

    /// Deletes staging files of crashed writers.
    private func removeTemporaryFiles(olderThan age: Duration) throws {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        let nowNanos = Int64(now.tv_sec) * 1_000_000_000 + Int64(now.tv_nsec)
        let (seconds, attoseconds) = age.components
        let ageNanos = seconds * 1_000_000_000 + attoseconds / 1_000_000_000
        for name in try Posix.list(stagingDirectory) where name.hasSuffix(Self.temporarySuffix) {
            let path = stagingDirectory + "/" + name
            guard let st = try Posix.lstat(path), Posix.isRegular(st) else { continue }
            if nowNanos - Posix.modificationTime(st) >= ageNanos { unlink(path) }
        }
    }
}
