import KafkaProtocol
import NIOCore

/// Kafka's lz4 codec, in Swift: the LZ4 frame format (magic 0x184D2204) over LZ4 blocks.
///
/// Written in Swift rather than loaded from liblz4 because the block format is small
/// and a Swift codec cannot be missing at run time. Frames are written as librdkafka and
/// the Java client write them: independent 64 KiB blocks, no checksums beyond the header's
/// (the batch CRC already covers the bytes). The header checksum is xxHash32's, as magic-2
/// batches require; the "broken" checksum quirk of Kafka's v0/v1 messages does not apply.
/// Decompression accepts every frame option except dictionaries.
enum LZ4 {
    static let frameMagic: UInt32 = 0x184D_2204
    /// FLG: version 01, independent blocks, no block checksum, no content size or checksum.
    static let frameFlags: UInt8 = 0x60
    /// BD: 64 KiB blocks, the default of every Kafka client.
    static let frameBlockDescriptor: UInt8 = 0x40
    static let blockSize = 64 * 1024
    /// A match is at least 4 bytes and its encoding at most ~1/255 of that, so no valid
    /// block decodes to more than this many times its size (plus a constant).
    static let maximumExpansion = 256

    // MARK: Frame

    static func compress(_ input: ByteBuffer) -> ByteBuffer {
        input.withUnsafeReadableBytes { src in
            let blocks = (src.count + blockSize - 1) / blockSize
            var out = ByteBufferAllocator().buffer(capacity: 7 + src.count + blocks * (4 + blockSize / 255 + 16) + 4)
            out.writeInteger(frameMagic, endianness: .little)
            let descriptor = [frameFlags, frameBlockDescriptor]
            out.writeBytes(descriptor)
            out.writeInteger(UInt8(truncatingIfNeeded: XXHash32.hash(descriptor) >> 8))
            withUnsafeTemporaryAllocation(of: UInt16.self, capacity: 1 << hashLog) { table in
                var offset = 0
                while offset < src.count {
                    let block = UnsafeRawBufferPointer(rebasing: src[offset..<min(offset + blockSize, src.count)])
                    out.writeWithUnsafeMutableBytes(minimumWritableBytes: 4 + compressBound(block.count)) { dst in
                        let compressed = compressBlock(block, into: dst.baseAddress! + 4, table: table)
                        if compressed < block.count {
                            dst.storeBytes(of: UInt32(compressed).littleEndian, as: UInt32.self)
                            return 4 + compressed
                        }
                        // Incompressible: stored as is, flagged by the size's high bit.
                        dst.storeBytes(of: (UInt32(block.count) | 0x8000_0000).littleEndian, as: UInt32.self)
                        (dst.baseAddress! + 4).copyMemory(from: block.baseAddress!, byteCount: block.count)
                        return 4 + block.count
                    }
                    offset += block.count
                }
            }
            out.writeInteger(0 as UInt32)  // end mark
            return out
        }
    }

    static func decompress(_ input: ByteBuffer, maximumSize: Int) throws -> ByteBuffer {
        try input.withUnsafeReadableBytes { src in
            guard let s = src.baseAddress else { throw corrupt("empty input") }
            let n = src.count
            var out = ByteBufferAllocator().buffer(capacity: max(1, min(maximumSize, n * 4)))
            var position = 0
            var frames = 0
            while position < n {
                guard n - position >= 4 else { throw corrupt("\(n - position) stray bytes after the last frame") }
                let magic = ByteMatching.load32(s, position)
                if magic & 0xFFFF_FFF0 == 0x184D_2A50 {
                    // A skippable frame: magic, 4-byte size, then data nobody interprets.
                    guard n - position >= 8 else { throw corrupt("truncated skippable frame") }
                    let size = Int(ByteMatching.load32(s, position + 4))
                    guard size <= n - position - 8 else { throw corrupt("truncated skippable frame") }
                    position += 8 + size
                    continue
                }
                guard magic == frameMagic else {
                    throw corrupt("not an LZ4 frame: magic 0x\(String(magic, radix: 16))")
                }
                position += 4
                position = try decodeFrame(s, n, from: position, into: &out, maximumSize: maximumSize)
                frames += 1
            }
            guard frames > 0 else { throw corrupt("no LZ4 frame") }
            return out
        }
    }

    /// Decodes the frame whose descriptor starts at `start`; returns the position after it.
    private static func decodeFrame(_ s: UnsafeRawPointer, _ n: Int, from start: Int, into out: inout ByteBuffer, maximumSize: Int) throws -> Int {
        var position = start
        guard n - position >= 3 else { throw corrupt("truncated frame descriptor") }
        let flags = s.load(fromByteOffset: position, as: UInt8.self)
        let blockDescriptor = s.load(fromByteOffset: position + 1, as: UInt8.self)
        guard flags >> 6 == 1 else { throw corrupt("frame version \(flags >> 6)") }
        guard flags & 0x02 == 0, blockDescriptor & 0x8F == 0 else { throw corrupt("reserved descriptor bits set") }
        let independentBlocks = flags & 0x20 != 0
        let hasBlockChecksums = flags & 0x10 != 0
        let hasContentSize = flags & 0x08 != 0
        let hasContentChecksum = flags & 0x04 != 0
        let hasDictionary = flags & 0x01 != 0
        let descriptorLength = 2 + (hasContentSize ? 8 : 0) + (hasDictionary ? 4 : 0)
        guard n - position >= descriptorLength + 1 else { throw corrupt("truncated frame descriptor") }
        let headerChecksum = UInt8(truncatingIfNeeded: XXHash32.hash(UnsafeRawBufferPointer(start: s + position, count: descriptorLength)) >> 8)
        guard s.load(fromByteOffset: position + descriptorLength, as: UInt8.self) == headerChecksum else {
            throw corrupt("frame header checksum mismatch")
        }
        guard !hasDictionary else {
            throw KafkaCompressionError(.unsupportedFeature, codec: .lz4, "frame needs a dictionary")
        }
        let blockMaximum: Int
        switch blockDescriptor >> 4 {
        case 4: blockMaximum = 64 << 10
        case 5: blockMaximum = 256 << 10
        case 6: blockMaximum = 1 << 20
        case 7: blockMaximum = 4 << 20
        default: throw corrupt("block maximum size id \(blockDescriptor >> 4)")
        }
        let frameStart = out.writerIndex
        var contentSize: Int?
        if hasContentSize {
            let size = ByteMatching.load64(s, position + 2)
            guard size <= UInt64(maximumSize - out.readableBytes) else {
                throw KafkaCompressionError(.outputTooLarge, codec: .lz4, "frame declares \(size) bytes, maximum \(maximumSize)")
            }
            contentSize = Int(size)
            // Trust the declared size only as far as the input could possibly expand.
            out.reserveCapacity(minimumWritableBytes: min(Int(size), (n - position) * maximumExpansion))
        }
        position += descriptorLength + 1

        while true {
            guard n - position >= 4 else { throw corrupt("truncated frame: no end mark") }
            let word = ByteMatching.load32(s, position)
            position += 4
            if word == 0 { break }
            let isStored = word & 0x8000_0000 != 0
            let size = Int(word & 0x7FFF_FFFF)
            guard size <= blockMaximum else { throw corrupt("block of \(size) bytes in a frame of \(blockMaximum)-byte blocks") }
            guard size + (hasBlockChecksums ? 4 : 0) <= n - position else { throw corrupt("truncated block") }
            let block = UnsafeRawBufferPointer(start: s + position, count: size)
            if hasBlockChecksums {
                guard XXHash32.hash(block) == ByteMatching.load32(s, position + size) else {
                    throw corrupt("block checksum mismatch")
                }
            }
            let room = maximumSize - out.readableBytes
            if isStored {
                guard size <= room else {
                    throw KafkaCompressionError(.outputTooLarge, codec: .lz4, "more than \(maximumSize) bytes")
                }
                out.writeBytes(block)
            } else {
                let plausible = min(blockMaximum, size * maximumExpansion + 64)
                let capacity = min(plausible, room)
                out.reserveCapacity(minimumWritableBytes: capacity)
                let blockStart = out.writerIndex
                let historyStart = independentBlocks ? blockStart : frameStart
                let end: Int
                do {
                    end = try out.withVeryUnsafeMutableBytes { whole throws(BlockError) in
                        try decodeBlock(block, into: whole.baseAddress!, start: blockStart, end: blockStart + capacity, historyStart: historyStart)
                    }
                } catch .outputFull {
                    if room < plausible {
                        throw KafkaCompressionError(.outputTooLarge, codec: .lz4, "more than \(maximumSize) bytes")
                    }
                    throw corrupt("block decodes to more than \(plausible) bytes")
                } catch .corrupt(let message) {
                    throw corrupt(message)
                }
                out.moveWriterIndex(to: end)
            }
            position += size + (hasBlockChecksums ? 4 : 0)
        }
        if hasContentChecksum {
            guard n - position >= 4 else { throw corrupt("truncated content checksum") }
            let checksum = out.withUnsafeReadableBytes {
                XXHash32.hash(UnsafeRawBufferPointer(rebasing: $0[frameStart...]))
            }
            guard checksum == ByteMatching.load32(s, position) else { throw corrupt("content checksum mismatch") }
            position += 4
        }
        if let contentSize, contentSize != out.writerIndex - frameStart {
            throw corrupt("frame declares \(contentSize) bytes but holds \(out.writerIndex - frameStart)")
        }
        return position
    }

    // MARK: Block

    enum BlockError: Error {
        case corrupt(String)
        /// The block decodes to more than the space given.
        case outputFull
    }

    /// Decodes one block into `d[start..<end]`; matches may reach back to `historyStart`
    /// (earlier blocks of a frame with linked blocks). Returns the end of the output.
    static func decodeBlock(_ block: UnsafeRawBufferPointer, into d: UnsafeMutableRawPointer,
                            start: Int, end: Int, historyStart: Int) throws(BlockError) -> Int {
        guard let s = block.baseAddress else { throw .corrupt("empty block") }
        let n = block.count
        var ip = 0
        var op = start
        while true {
            guard ip < n else { throw .corrupt("block ends with a match, not literals") }
            let token = Int(s.load(fromByteOffset: ip, as: UInt8.self))
            ip += 1
            var literals = token >> 4
            if literals < 15, n - ip >= 16 + 2, end - op >= 16 {
                // Fast path: at most 14 literals, room to copy 16, and a match after them.
                ByteMatching.copy16(d + op, from: s + ip)
                ip += literals
                op += literals
            } else {
                if literals == 15 {
                    while true {
                        guard ip < n else { throw .corrupt("truncated literal length") }
                        let byte = Int(s.load(fromByteOffset: ip, as: UInt8.self))
                        ip += 1
                        literals += byte
                        if byte != 255 { break }
                    }
                }
                guard literals <= n - ip else { throw .corrupt("literals run past the end of the block") }
                guard literals <= end - op else { throw .outputFull }
                (d + op).copyMemory(from: s + ip, byteCount: literals)
                ip += literals
                op += literals
                if ip == n { return op }  // the last sequence has literals only
            }

            guard n - ip >= 2 else { throw .corrupt("truncated match offset") }
            let offset = Int(UInt16(littleEndian: s.loadUnaligned(fromByteOffset: ip, as: UInt16.self)))
            ip += 2
            guard offset != 0, offset <= op - historyStart else { throw .corrupt("match offset \(offset) before the start of the data") }
            var length = token & 15
            if length == 15 {
                while true {
                    guard ip < n else { throw .corrupt("truncated match length") }
                    let byte = Int(s.load(fromByteOffset: ip, as: UInt8.self))
                    ip += 1
                    length += byte
                    if byte != 255 { break }
                }
            }
            length += 4
            guard length <= end - op else { throw .outputFull }
            ByteMatching.copyMatch(d, to: op, offset: offset, length: length, writableEnd: end)
            op += length
        }
    }

    static let hashLog = 13
    /// What the reference implementation reserves for one block (LZ4_COMPRESSBOUND).
    static func compressBound(_ count: Int) -> Int { count + count / 255 + 16 }

    /// Compresses one independent block (at most 64 KiB, so positions fit the UInt16 table)
    /// into `d`, which has room for `compressBound(src.count)` bytes. Greedy: the first
    /// 4-byte match found is taken and extended both ways, skipping ahead faster the
    /// longer nothing matches, as LZ4's fast mode does.
    static func compressBlock(_ src: UnsafeRawBufferPointer, into d: UnsafeMutableRawPointer,
                              table: UnsafeMutableBufferPointer<UInt16>) -> Int {
        precondition(src.count <= blockSize)
        let n = src.count
        var op = 0
        var anchor = 0
        // The format's end rules: the last match starts at least 12 bytes before the end,
        // and the last 5 bytes are always literals.
        let matchStartLimit = n - 12
        let matchEndLimit = n - 5
        if let s = src.baseAddress, n >= 13 {
            table.update(repeating: 0)
            let shift = UInt32(32 - hashLog)
            @inline(__always) func hash(_ i: Int) -> Int {
                Int((ByteMatching.load32(s, i) &* 2_654_435_761) >> shift)
            }
            var ip = 1
            search: while true {
                var attempts = 1 << 6
                var candidate: Int
                while true {
                    if ip > matchStartLimit { break search }
                    let h = hash(ip)
                    candidate = Int(table[h])
                    table[h] = UInt16(truncatingIfNeeded: ip)
                    if candidate < ip, ByteMatching.load32(s, candidate) == ByteMatching.load32(s, ip) { break }
                    ip += attempts >> 6
                    attempts += 1
                }
                while ip > anchor, candidate > 0,
                      s.load(fromByteOffset: ip - 1, as: UInt8.self) == s.load(fromByteOffset: candidate - 1, as: UInt8.self) {
                    ip -= 1
                    candidate -= 1
                }
                let length = 4 + ByteMatching.matchLength(s, candidate + 4, ip + 4, limit: matchEndLimit)
                op = emitSequence(s, literalsFrom: anchor, count: ip - anchor, offset: ip - candidate, matchLength: length, d, op)
                ip += length
                anchor = ip
                if ip > matchStartLimit { break }
                table[hash(ip - 2)] = UInt16(truncatingIfNeeded: ip - 2)
            }
        }
        // Last literals.
        let literals = n - anchor
        op = writeLength(token: min(literals, 15) << 4, extra: literals, d, op)
        if literals > 0 { (d + op).copyMemory(from: src.baseAddress! + anchor, byteCount: literals) }
        return op + literals
    }

    /// Writes the token byte and, when the literal count is 15 or more, its extension bytes.
    @inline(__always)
    private static func writeLength(token: Int, extra literals: Int, _ d: UnsafeMutableRawPointer, _ start: Int) -> Int {
        var op = start
        d.storeBytes(of: UInt8(token), toByteOffset: op, as: UInt8.self)
        op += 1
        if literals >= 15 { op = writeExtension(literals - 15, d, op) }
        return op
    }

    @inline(__always)
    private static func writeExtension(_ value: Int, _ d: UnsafeMutableRawPointer, _ start: Int) -> Int {
        var op = start
        var rest = value
        while rest >= 255 {
            d.storeBytes(of: 255 as UInt8, toByteOffset: op, as: UInt8.self)
            op += 1
            rest -= 255
        }
        d.storeBytes(of: UInt8(rest), toByteOffset: op, as: UInt8.self)
        return op + 1
    }

    private static func emitSequence(_ s: UnsafeRawPointer, literalsFrom anchor: Int, count literals: Int, offset: Int,
                                     matchLength: Int, _ d: UnsafeMutableRawPointer, _ start: Int) -> Int {
        let matchCode = matchLength - 4
        var op = writeLength(token: (min(literals, 15) << 4) | min(matchCode, 15), extra: literals, d, start)
        (d + op).copyMemory(from: s + anchor, byteCount: literals)
        op += literals
        d.storeBytes(of: UInt16(offset).littleEndian, toByteOffset: op, as: UInt16.self)
        op += 2
        if matchCode >= 15 { op = writeExtension(matchCode - 15, d, op) }
        return op
    }

    private static func corrupt(_ message: String) -> KafkaCompressionError {
        KafkaCompressionError(.corruptInput, codec: .lz4, message)
    }
}
