import NIOCore

/// The output of a streaming decoder: grows geometrically, never past `limit` bytes.
///
/// Decoders ask for space a chunk at a time instead of trusting a size the compressed
/// data claims, so a zip bomb fails with `outputTooLarge` after at most `limit` bytes of
/// output (rounded up to ByteBuffer's power-of-two capacity) instead of exhausting memory.
struct BoundedOutput {
    private(set) var buffer: ByteBuffer
    let limit: Int

    init(limit: Int, sizeHint: Int) {
        self.limit = limit
        self.buffer = ByteBufferAllocator().buffer(capacity: max(1, min(limit, sizeHint)))
    }

    /// Bytes that may still be written.
    var room: Int { limit - buffer.readableBytes }

    /// Runs `body` on between one and `room` bytes of writable space; `body` returns how
    /// many it wrote. Must not be called when `room` is zero.
    mutating func write(_ body: (UnsafeMutableRawBufferPointer) throws -> Int) throws {
        precondition(room > 0, "BoundedOutput is full")
        if buffer.writableBytes == 0 {
            // Double, but never reserve past the limit.
            buffer.reserveCapacity(minimumWritableBytes: min(room, max(buffer.readableBytes, 4096)))
        }
        let writable = min(buffer.writableBytes, room)
        _ = try buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: 0) { dst in
            try body(UnsafeMutableRawBufferPointer(rebasing: dst[..<writable]))
        }
    }
}

extension ByteBuffer {
    /// Calls `body` with the readable bytes and a base address that is never nil, since
    /// C codecs reject a null pointer even with a zero length.
    func withNonNullReadableBytes<T>(_ body: (UnsafeRawPointer, Int) throws -> T) rethrows -> T {
        try withUnsafeReadableBytes { raw in
            if let base = raw.baseAddress { return try body(base, raw.count) }
            var dummy: UInt8 = 0
            return try withUnsafePointer(to: &dummy) { try body(UnsafeRawPointer($0), 0) }
        }
    }
}
