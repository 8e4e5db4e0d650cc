import NIOCore

/// A flat namespace of immutable byte objects: the home of tiered segments.
///
/// Keys are `/`-separated paths such as `topic-id/0/00000000000000000000.log`. A `put`
/// replaces the whole object atomically: a reader sees the old bytes, the new bytes or
/// (before the first put) nothing, never a mix, even across a crash of the writer.
/// Implementations retry what is worth retrying themselves; an error that reaches the
/// caller is final for that call.
public protocol ObjectStore: Sendable {
    /// Stores `body` at `key`, replacing any object already there.
    ///
    /// Stores that have a multipart API switch to it above their configured threshold,
    /// so one call serves every size.
    func put(key: String, body: ByteBuffer) async throws

    /// Stores the contents of the file at `path` at `key`, reading it in parts so a
    /// large segment is never held in memory whole.
    ///
    /// The file must not change while it is uploaded (closed segments never do).
    /// - Parameter partSize: the multipart part size; `nil` uses the store's default.
    func putFile(key: String, path: String, partSize: Int?) async throws

    /// Reads the object at `key`, or the bytes `range` of it.
    ///
    /// The result has exactly `range.count` bytes (or the whole object's size): a range
    /// reaching past the end is an `.invalidRange` error rather than a short read, so a
    /// caller that computed the range from an index learns the index and the object
    /// disagree. Throws `.notFound` when there is no object.
    func get(key: String, range: Range<Int>?) async throws -> ByteBuffer

    /// The size and entity tag of the object at `key`, or nil when there is none.
    func head(key: String) async throws -> ObjectMetadata?

    /// Every object whose key starts with `prefix`, in ascending byte order of the keys.
    ///
    /// Pages through the whole listing; the result can be large for a broad prefix.
    func list(prefix: String) async throws -> [ObjectMetadata]

    /// Removes the object at `key`. Removing an absent object succeeds, as in S3, so a
    /// retried delete is harmless.
    func delete(key: String) async throws

    /// Releases connections and threads. The store must not be used afterwards.
    ///
    /// Required for an `S3ObjectStore` that created its own HTTP client: in debug builds
    /// async-http-client traps when a client is released without it.
    func shutdown() async throws
}

extension ObjectStore {
    /// Reads the whole object at `key`.
    public func get(key: String) async throws -> ByteBuffer {
        try await get(key: key, range: nil)
    }

    /// Uploads a file with the store's default part size.
    public func putFile(key: String, path: String) async throws {
        try await putFile(key: key, path: path, partSize: nil)
    }
}

/// What a store knows about one object without reading it.
public struct ObjectMetadata: Sendable, Hashable {
    /// The key, relative to the store's root or prefix.
    public var key: String
    /// The object's size in bytes.
    public var size: Int
    /// An opaque version tag: equal tags mean equal contents within one store.
    ///
    /// S3 gives the quoted MD5 for single-part objects and `md5-of-md5s-N` for multipart
    /// ones; the local store derives it from size and modification time. Nil when the
    /// store gave none.
    public var etag: String?

    public init(key: String, size: Int, etag: String?) {
        self.key = key
        self.size = size
        self.etag = etag
    }
}

/// Checks that a key is one every store can hold: non-empty, relative, no `.` or `..`
/// or empty segments, no NUL, at most 1024 UTF-8 bytes (S3's limit).
///
/// Checking in one place keeps the local store's paths inside its root and makes a key
/// that works on the local store work on S3 too.
func validateKey(_ key: String) throws {
    guard !key.isEmpty else { throw ObjectStoreError(.invalidKey, "empty key") }
    guard key.utf8.count <= 1024 else {
        throw ObjectStoreError(.invalidKey, "key longer than 1024 bytes", key: key)
    }
    guard !key.hasPrefix("/") else { throw ObjectStoreError(.invalidKey, "absolute key", key: key) }
    guard !key.utf8.contains(0) else { throw ObjectStoreError(.invalidKey, "key contains NUL", key: key) }
    for segment in key.split(separator: "/", omittingEmptySubsequences: false) {
        if segment.isEmpty || segment == "." || segment == ".." {
            throw ObjectStoreError(.invalidKey, "key has an empty, '.' or '..' segment", key: key)
        }
    }
}

/// Checks a requested range before any I/O: negative or inverted ranges are caller bugs.
func validateRange(_ range: Range<Int>?, key: String) throws {
    if let range, range.lowerBound < 0 {
        throw ObjectStoreError(.invalidRange, "range \(range) starts before 0", key: key)
    }
}
