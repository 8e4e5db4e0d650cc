import KafkaProtocol
import NIOCore

/// Kafka's snappy codec, in Swift: raw snappy blocks and the xerial (snappy-java) framing.
///
/// There is no libsnappy on a base Debian system, so it is implemented here. Producers
/// disagree on framing: the Java client and kafka-python write snappy-java's stream
/// (`\x82SNAPPY\0`, two version ints, then `[int32 length][block]` chunks), librdkafka a
/// single raw block; every client reads both, and so does `decompress`. `compress` writes
/// the xerial framing, as the Java client does.
enum Snappy {
    enum Framing: Sendable {
        /// snappy-java's stream framing, in 32 KiB chunks (what the Java client writes).
        case xerial
        /// One raw snappy block (what librdkafka writes).
        case raw
    }

    static let xerialMagic: [UInt8] = [0x82, 0x53, 0x4E, 0x41, 0x50, 0x50, 0x59, 0x00]
    static let xerialHeaderSize = 16
    /// snappy-java's default block size, which Kafka's producer and kafka-python use.
    static let xerialChunkSize = 32 * 1024
    /// The compressor works on fragments of this size; offsets never reach further back.
    static let fragmentSize = 1 << 16
    /// A copy element of three bytes writes at most 64, so no valid block expands more.
    static let maximumExpansion = 22

    // MARK: Compression

    static func compress(_ input: ByteBuffer, framing: Framing = .xerial) -> ByteBuffer {
        input.withUnsafeReadableBytes { src in
            switch framing {
            case .raw:
                var out = ByteBufferAllocator().buffer(capacity: maxCompressedLength(src.count))
                appendBlock(src, to: &out)
                return out
            case .xerial:
                let chunks = max(1, (src.count + xerialChunkSize - 1) / xerialChunkSize)
                var out = ByteBufferAllocator().buffer(capacity: xerialHeaderSize + chunks * 4 + maxCompressedLength(src.count) + chunks * 32)
                out.writeBytes(xerialMagic)
                out.writeInteger(1 as Int32)  // version
                out.writeInteger(1 as Int32)  // minimum compatible version
                // At least one chunk: kafka-python only recognises the framing when there
                // are bytes after the header.
                var offset = 0
                repeat {
                    let length = min(xerialChunkSize, src.count - offset)
                    let lengthIndex = out.writerIndex
                    out.writeInteger(0 as Int32)
                    let written = appendBlock(UnsafeRawBufferPointer(rebasing: src[offset..<offset + length]), to: &out)
                    out.setInteger(Int32(written), at: lengthIndex)
                    offset += length
                } while offset < src.count
                return out
            }
        }
    }

    /// snappy's own bound on a compressed block, including the length varint.
    static func maxCompressedLength(_ count: Int) -> Int { 32 + count + count / 6 }

    /// Appends one raw block (length varint, then elements); returns its size.
    @discardableResult
    static func appendBlock(_ src: UnsafeRawBufferPointer, to out: inout ByteBuffer) -> Int {
        let tableSize = 1 << 14
        return withUnsafeTemporaryAllocation(of: UInt16.self, capacity: tableSize) { table in
            out.writeWithUnsafeMutableBytes(minimumWritableBytes: maxCompressedLength(src.count)) { dst in
                let d = dst.baseAddress!
                var op = 0
                var length = UInt32(src.count)
                while length >= 0x80 {
                    d.storeBytes(of: UInt8(truncatingIfNeeded: length) | 0x80, toByteOffset: op, as: UInt8.self)
                    length >>= 7
                    op += 1
                }
                d.storeBytes(of: UInt8(length), toByteOffset: op, as: UInt8.self)
                op += 1
                guard let s = src.baseAddress else { return op }
                var start = 0
                while start < src.count {
                    let count = min(fragmentSize, src.count - start)
                    op = compressFragment(s + start, count, d, op, table)
                    start += count
                }
                return op
            }
        }
    }

    /// Greedy LZ77 over one fragment with a hash table of 4-byte sequences, skipping ahead
    /// faster the longer nothing matches (snappy's heuristic for incompressible data).
    private static func compressFragment(_ s: UnsafeRawPointer, _ n: Int, _ d: UnsafeMutableRawPointer, _ start: Int,
                                         _ table: UnsafeMutableBufferPointer<UInt16>) -> Int {
        var op = start
        // snappy's input margin: below it the whole fragment is one literal.
        let inputMargin = 15
        guard n >= inputMargin else { return emitLiteral(s, 0, n, d, op) }
        var tableBits = 8
        while tableBits < 14 && (1 << tableBits) < n { tableBits += 1 }
        let shift = UInt32(32 - tableBits)
        let used = UnsafeMutableBufferPointer(rebasing: table[0..<(1 << tableBits)])
        used.update(repeating: 0)
        @inline(__always) func hash(_ i: Int) -> Int {
            Int((ByteMatching.load32(s, i) &* 0x1E35_A7BD) >> shift)
        }

        let ipLimit = n - inputMargin
        var nextEmit = 0
        var ip = 1
        search: while ip <= ipLimit {
            var skip = 32
            var candidate = 0
            while true {
                let h = hash(ip)
                candidate = Int(used[h])
                used[h] = UInt16(truncatingIfNeeded: ip)
                if ByteMatching.load32(s, candidate) == ByteMatching.load32(s, ip) { break }
                ip += skip >> 5
                skip += 1
                if ip > ipLimit { break search }
            }
            op = emitLiteral(s, nextEmit, ip - nextEmit, d, op)
            // Emit copies for as long as the position after one match starts another.
            repeat {
                let base = ip
                let matched = 4 + ByteMatching.matchLength(s, candidate + 4, base + 4, limit: n)
                ip += matched
                op = emitCopy(offset: base - candidate, length: matched, d, op)
                nextEmit = ip
                if ip >= ipLimit { break search }
                used[hash(ip - 1)] = UInt16(truncatingIfNeeded: ip - 1)
                let h = hash(ip)
                candidate = Int(used[h])
                used[h] = UInt16(truncatingIfNeeded: ip)
            } while ByteMatching.load32(s, candidate) == ByteMatching.load32(s, ip)
            ip += 1
        }
        if nextEmit < n { op = emitLiteral(s, nextEmit, n - nextEmit, d, op) }
        return op
    }

    private static func emitLiteral(_ s: UnsafeRawPointer, _ from: Int, _ length: Int, _ d: UnsafeMutableRawPointer, _ start: Int) -> Int {
        guard length > 0 else { return start }
        var op = start
        let n = length - 1
        if n < 60 {
            d.storeBytes(of: UInt8(n << 2), toByteOffset: op, as: UInt8.self)
            op += 1
        } else {
            let count = n < 1 << 8 ? 1 : n < 1 << 16 ? 2 : n < 1 << 24 ? 3 : 4
            d.storeBytes(of: UInt8((59 + count) << 2), toByteOffset: op, as: UInt8.self)
            op += 1
            for i in 0..<count {
                d.storeBytes(of: UInt8(truncatingIfNeeded: n >> (8 * i)), toByteOffset: op, as: UInt8.self)
                op += 1
            }
        }
        (d + op).copyMemory(from: s + from, byteCount: length)
        return op + length
    }

    private static func emitCopy(offset: Int, length: Int, _ d: UnsafeMutableRawPointer, _ start: Int) -> Int {
        var op = start
        var length = length
        // Elements carry at most 64 bytes; keep the last one at least 4 long.
        while length >= 68 {
            op = emitCopyUpTo64(offset: offset, length: 64, d, op)
            length -= 64
        }
        if length > 64 {
            op = emitCopyUpTo64(offset: offset, length: 60, d, op)
            length -= 60
        }
        return emitCopyUpTo64(offset: offset, length: length, d, op)
    }

    private static func emitCopyUpTo64(offset: Int, length: Int, _ d: UnsafeMutableRawPointer, _ start: Int) -> Int {
        if length < 12 && offset < 2048 {
            // Copy with a 1-byte offset: length 4...11 and the offset's top 3 bits in the tag.
            d.storeBytes(of: UInt8(1 | ((length - 4) << 2) | ((offset >> 8) << 5)), toByteOffset: start, as: UInt8.self)
            d.storeBytes(of: UInt8(truncatingIfNeeded: offset), toByteOffset: start + 1, as: UInt8.self)
            return start + 2
        }
        d.storeBytes(of: UInt8(2 | ((length - 1) << 2)), toByteOffset: start, as: UInt8.self)
        d.storeBytes(of: UInt16(offset).littleEndian, toByteOffset: start + 1, as: UInt16.self)
        return start + 3
    }

    // MARK: Decompression

    static func decompress(_ input: ByteBuffer, maximumSize: Int) throws -> ByteBuffer {
        try input.withUnsafeReadableBytes { src in
            let isXerial = src.count >= xerialHeaderSize && src.prefix(8).elementsEqual(xerialMagic)
            // Each block is preceded by its exact size: find them all first, so the total is
            // checked against the limit and allocated once.
            var blocks: [(body: UnsafeRawBufferPointer, length: Int)] = []
            if isXerial {
                var position = xerialHeaderSize
                while position < src.count {
                    guard src.count - position >= 4 else { throw corrupt("truncated xerial chunk length") }
                    let length = Int(Int32(bigEndian: src.loadUnaligned(fromByteOffset: position, as: Int32.self)))
                    position += 4
                    guard length >= 0, length <= src.count - position else {
                        throw corrupt("xerial chunk of \(length) bytes with \(src.count - position) left")
                    }
                    blocks.append(try blockHeader(UnsafeRawBufferPointer(rebasing: src[position..<position + length])))
                    position += length
                }
            } else {
                blocks.append(try blockHeader(src))
            }
            var total = 0
            for block in blocks {
                total += block.length
                guard total <= maximumSize else {
                    throw KafkaCompressionError(.outputTooLarge, codec: .snappy, "\(total) bytes or more, maximum \(maximumSize)")
                }
            }
            var out = ByteBufferAllocator().buffer(capacity: total)
            for block in blocks where block.length > 0 {
                _ = try out.writeWithUnsafeMutableBytes(minimumWritableBytes: block.length) { dst in
                    try decodeBlock(block.body, into: UnsafeMutableRawBufferPointer(rebasing: dst[0..<block.length]))
                    return block.length
                }
            }
            return out
        }
    }

    /// Splits a raw block into its elements and the uncompressed length its varint claims,
    /// rejecting claims no valid block could make before anything is allocated for them.
    static func blockHeader(_ block: UnsafeRawBufferPointer) throws -> (body: UnsafeRawBufferPointer, length: Int) {
        var length = 0
        var position = 0
        while true {
            guard position < block.count, position < 5 else { throw corrupt("bad uncompressed-length varint") }
            let byte = block[position]
            length |= Int(byte & 0x7F) << (7 * position)
            position += 1
            if byte & 0x80 == 0 { break }
        }
        guard length <= Int(UInt32.max) else { throw corrupt("uncompressed length \(length) is over 4 GiB") }
        let body = UnsafeRawBufferPointer(rebasing: block[position...])
        guard length <= body.count * maximumExpansion else {
            throw corrupt("a block of \(body.count) bytes cannot hold \(length) bytes")
        }
        return (body, length)
    }

    /// Decodes a block's elements into exactly `dst.count` bytes.
    static func decodeBlock(_ src: UnsafeRawBufferPointer, into dst: UnsafeMutableRawBufferPointer) throws {
        let n = src.count
        let outLength = dst.count
        guard let s = src.baseAddress, let d = dst.baseAddress else {
            guard n == 0 && outLength == 0 else { throw corrupt("empty block, or block for no output") }
            return
        }
        var ip = 0
        var op = 0
        while ip < n {
            let tag = Int(s.load(fromByteOffset: ip, as: UInt8.self))
            ip += 1
            let length: Int
            let offset: Int
            switch tag & 3 {
            case 0:
                // Fast path: a literal of at most 16 bytes with room to copy 16.
                if tag >> 2 < 16, n - ip >= 16, outLength - op >= 16 {
                    ByteMatching.copy16(d + op, from: s + ip)
                    let literal = (tag >> 2) + 1
                    ip += literal
                    op += literal
                    continue
                }
                var literal = tag >> 2
                if literal >= 60 {
                    let extra = literal - 59
                    guard extra <= n - ip else { throw corrupt("literal length runs past the end") }
                    literal = 0
                    for i in 0..<extra { literal |= Int(s.load(fromByteOffset: ip + i, as: UInt8.self)) << (8 * i) }
                    ip += extra
                }
                literal += 1
                guard literal <= n - ip else { throw corrupt("literal of \(literal) bytes with \(n - ip) left") }
                guard literal <= outLength - op else { throw corrupt("literal runs past the declared length \(outLength)") }
                (d + op).copyMemory(from: s + ip, byteCount: literal)
                ip += literal
                op += literal
                continue
            case 1:
                guard ip < n else { throw corrupt("truncated copy") }
                length = 4 + ((tag >> 2) & 7)
                offset = (tag >> 5) << 8 | Int(s.load(fromByteOffset: ip, as: UInt8.self))
                ip += 1
            case 2:
                guard n - ip >= 2 else { throw corrupt("truncated copy") }
                length = 1 + (tag >> 2)
                offset = Int(UInt16(littleEndian: s.loadUnaligned(fromByteOffset: ip, as: UInt16.self)))
                ip += 2
            default:
                guard n - ip >= 4 else { throw corrupt("truncated copy") }
                length = 1 + (tag >> 2)
                offset = Int(UInt32(littleEndian: s.loadUnaligned(fromByteOffset: ip, as: UInt32.self)))
                ip += 4
            }
            guard offset > 0, offset <= op else { throw corrupt("copy offset \(offset) at output position \(op)") }
            guard length <= outLength - op else { throw corrupt("copy runs past the declared length \(outLength)") }
            ByteMatching.copyMatch(d, to: op, offset: offset, length: length, writableEnd: outLength)
            op += length
        }
        guard op == outLength else { throw corrupt("block decodes to \(op) bytes, its header says \(outLength)") }
    }

    private static func corrupt(_ message: String) -> KafkaCompressionError {
        KafkaCompressionError(.corruptInput, codec: .snappy, message)
    }
}
