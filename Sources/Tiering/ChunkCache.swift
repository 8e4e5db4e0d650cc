import NIOCore

/// Fixed-size chunks of remote objects kept in memory, least recently used out first, up
/// to a byte budget (`remote.cache.bytes`). Concurrent readers of a chunk share one GET.
actor ChunkCache {
    struct Key: Hashable, Sendable {
        var object: String
        var index: Int
    }

    private var entries: [Key: (bytes: ByteBuffer, lastUse: UInt64)] = [:]
    private var inFlight: [Key: Task<ByteBuffer, any Error>] = [:]
    private var tick: UInt64 = 0
    private var size = 0
    let capacity: Int

    private(set) var hits = 0
    private(set) var misses = 0

    init(capacity: Int) {
        self.capacity = capacity
    }

    /// The chunk, from memory or loaded once by `load`.
    func chunk(_ key: Key, load: @escaping @Sendable () async throws -> ByteBuffer) async throws -> ByteBuffer {
        tick += 1
        if let entry = entries[key] {
            entries[key]!.lastUse = tick
            hits += 1
            return entry.bytes
        }
        misses += 1
        if let task = inFlight[key] { return try await task.value }
        let task = Task { try await load() }
        inFlight[key] = task
        do {
            let bytes = try await task.value
            inFlight[key] = nil
            insert(key, bytes)
            return bytes
        } catch {
            inFlight[key] = nil
            throw error
        }
    }

    /// Whether the chunk is in memory or on its way (read-ahead uses this to avoid work).
    func isPresentOrLoading(_ key: Key) -> Bool {
        entries[key] != nil || inFlight[key] != nil
    }

    /// Drops every chunk of `object` (its segment was deleted from the store).
    func remove(object: String) {
        for key in entries.keys where key.object == object {
            size -= entries[key]!.bytes.readableBytes
            entries[key] = nil
        }
    }

    private func insert(_ key: Key, _ bytes: ByteBuffer) {
        guard bytes.readableBytes <= capacity else { return }
        if let old = entries[key] { size -= old.bytes.readableBytes }
        entries[key] = (bytes, tick)
        size += bytes.readableBytes
        while size > capacity, let victim = entries.min(by: { $0.value.lastUse < $1.value.lastUse })?.key {
            size -= entries[victim]!.bytes.readableBytes
            entries[victim] = nil
        }
    }
}
