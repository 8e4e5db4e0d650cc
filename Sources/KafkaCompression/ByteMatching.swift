/// Byte-level helpers shared by the Swift snappy and lz4 codecs.
///
/// Both formats are LZ77 variants: a compressor looks for repeated 4-byte sequences and
/// a decompressor copies earlier output forward, often overlapping itself. The callers
/// check every bound before calling, so these work on raw pointers unchecked.
enum ByteMatching {
    @inline(__always)
    static func load32(_ p: UnsafeRawPointer, _ offset: Int) -> UInt32 {
        UInt32(littleEndian: p.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
    }

    @inline(__always)
    static func load64(_ p: UnsafeRawPointer, _ offset: Int) -> UInt64 {
        UInt64(littleEndian: p.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
    }

    /// How many bytes at `a` equal those at `b` (`a < b`), not reading at or past `limit`.
    @inline(__always)
    static func matchLength(_ p: UnsafeRawPointer, _ a: Int, _ b: Int, limit: Int) -> Int {
        var length = 0
        while b + length + 8 <= limit {
            let difference = load64(p, a + length) ^ load64(p, b + length)
            if difference != 0 { return length + difference.trailingZeroBitCount >> 3 }
            length += 8
        }
        while b + length < limit,
              p.load(fromByteOffset: a + length, as: UInt8.self) == p.load(fromByteOffset: b + length, as: UInt8.self) {
            length += 1
        }
        return length
    }

    /// Copies up to 16 bytes with two 8-byte moves: faster than `copyMemory` for the short
    /// literals and matches that dominate real data. Always writes 16 bytes, so the caller
    /// guarantees 16 readable bytes at `source` and 16 writable at `destination`, and that
    /// the bytes past the wanted length are overwritten later or ignored.
    @inline(__always)
    static func copy16(_ destination: UnsafeMutableRawPointer, from source: UnsafeRawPointer) {
        destination.storeBytes(of: source.loadUnaligned(as: UInt64.self), as: UInt64.self)
        destination.storeBytes(of: source.loadUnaligned(fromByteOffset: 8, as: UInt64.self), toByteOffset: 8, as: UInt64.self)
    }

    /// `copyMatch` when the output has room to spare: with an offset of at least 8, copying
    /// 8 bytes at a time only ever reads bytes already written, so a match needs no
    /// special case for overlap. Falls back to `copyMatch` near the end of the output.
    @inline(__always)
    static func copyMatch(_ d: UnsafeMutableRawPointer, to position: Int, offset: Int, length: Int, writableEnd: Int) {
        guard offset >= 8, position + length + 8 <= writableEnd else {
            copyMatch(d, to: position, offset: offset, length: length)
            return
        }
        var from = d + (position - offset)
        var to = d + position
        let stop = d + (position + length)
        while to < stop {
            to.storeBytes(of: UnsafeRawPointer(from).loadUnaligned(as: UInt64.self), as: UInt64.self)
            from += 8
            to += 8
        }
    }

    /// Copies `length` bytes from `offset` bytes back to `position`, where the two ranges
    /// may overlap (offset < length repeats the last `offset` bytes, as both formats mean).
    @inline(__always)
    static func copyMatch(_ d: UnsafeMutableRawPointer, to position: Int, offset: Int, length: Int) {
        let from = position - offset
        if offset >= length {
            (d + position).copyMemory(from: d + from, byteCount: length)
            return
        }
        // The bytes from `from` on are periodic, so copying from `from` in chunks no longer
        // than the distance to the write position never overlaps, and the distance doubles.
        var to = position
        var remaining = length
        while remaining > 0 {
            let chunk = min(remaining, to - from)
            (d + to).copyMemory(from: d + from, byteCount: chunk)
            to += chunk
            remaining -= chunk
        }
    }
}
