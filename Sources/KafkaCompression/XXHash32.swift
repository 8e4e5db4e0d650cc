/// xxHash32, the checksum of the LZ4 frame format (header, block and content checksums).
enum XXHash32 {
    private static let prime1: UInt32 = 2_654_435_761
    private static let prime2: UInt32 = 2_246_822_519
    private static let prime3: UInt32 = 3_266_489_917
    private static let prime4: UInt32 = 668_265_263
    private static let prime5: UInt32 = 374_761_393

    static func hash(_ bytes: UnsafeRawBufferPointer, seed: UInt32 = 0) -> UInt32 {
        guard let p = bytes.baseAddress else { return hash(p: nil, count: 0, seed: seed) }
        return hash(p: p, count: bytes.count, seed: seed)
    }

    static func hash(_ bytes: [UInt8], seed: UInt32 = 0) -> UInt32 {
        bytes.withUnsafeBytes { hash($0, seed: seed) }
    }

    private static func hash(p: UnsafeRawPointer?, count: Int, seed: UInt32) -> UInt32 {
        var h: UInt32
        var i = 0
        if let p, count >= 16 {
            var v1 = seed &+ prime1 &+ prime2
            var v2 = seed &+ prime2
            var v3 = seed
            var v4 = seed &- prime1
            while i + 16 <= count {
                v1 = round(v1, ByteMatching.load32(p, i))
                v2 = round(v2, ByteMatching.load32(p, i + 4))
                v3 = round(v3, ByteMatching.load32(p, i + 8))
                v4 = round(v4, ByteMatching.load32(p, i + 12))
                i += 16
            }
            h = rotl(v1, 1) &+ rotl(v2, 7) &+ rotl(v3, 12) &+ rotl(v4, 18)
        } else {
            h = seed &+ prime5
        }
        h = h &+ UInt32(truncatingIfNeeded: count)
        if let p {
            while i + 4 <= count {
                h = rotl(h &+ ByteMatching.load32(p, i) &* prime3, 17) &* prime4
                i += 4
            }
            while i < count {
                h = rotl(h &+ UInt32(p.load(fromByteOffset: i, as: UInt8.self)) &* prime5, 11) &* prime1
                i += 1
            }
        }
        h ^= h >> 15
        h = h &* prime2
        h ^= h >> 13
        h = h &* prime3
        h ^= h >> 16
        return h
    }

    @inline(__always)
    private static func round(_ acc: UInt32, _ lane: UInt32) -> UInt32 {
        rotl(acc &+ lane &* prime2, 13) &* prime1
    }

    @inline(__always)
    private static func rotl(_ x: UInt32, _ r: UInt32) -> UInt32 {
        (x << r) | (x >> (32 - r))
    }
}
