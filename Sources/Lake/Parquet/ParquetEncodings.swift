import NIOCore

/// Parquet's RLE / bit-packing hybrid, used for definition levels and dictionary indices.
///
/// Runs of eight or more equal values become RLE runs; everything else goes into
/// bit-packed runs of whole groups of eight. Only the last bit-packed run may be padded
/// (readers know the value count), so a repeated run is only started once the pending
/// literals fill whole groups.
enum RLEHybrid {
    /// At most 63 groups per bit-packed run, so its header is one byte, as parquet-mr writes.
    static let maxGroupsPerRun = 63

    static func encode(_ values: [UInt32], bitWidth: Int, into out: inout ByteBuffer) {
        precondition(bitWidth >= 0 && bitWidth <= 32)
        var literals: [UInt32] = []
        literals.reserveCapacity(512)
        var i = 0
        let n = values.count
        while i < n {
            let v = values[i]
            var j = i + 1
            while j < n && values[j] == v { j += 1 }
            var run = j - i
            if run >= 8 {
                // Top the literals up to whole groups with values of this run first.
                let fill = (8 - literals.count % 8) % 8
                if fill > 0 {
                    for _ in 0..<fill { literals.append(v) }
                    run -= fill
                }
                if run >= 8 {
                    flushLiterals(&literals, bitWidth: bitWidth, padLast: false, into: &out)
                    writeRepeated(v, count: run, bitWidth: bitWidth, into: &out)
                } else {
                    for _ in 0..<run { literals.append(v) }
                }
            } else {
                for _ in 0..<run { literals.append(v) }
            }
            i = j
        }
        flushLiterals(&literals, bitWidth: bitWidth, padLast: true, into: &out)
    }

    /// `count` copies of one value as a single RLE run (the common case of no nulls).
    static func writeRepeated(_ value: UInt32, count: Int, bitWidth: Int, into out: inout ByteBuffer) {
        writeVarint(UInt64(count) << 1, into: &out)
        let bytes = (bitWidth + 7) / 8
        var v = value
        for _ in 0..<bytes {
            out.writeInteger(UInt8(truncatingIfNeeded: v))
            v >>= 8
        }
    }

    private static func flushLiterals(_ literals: inout [UInt32], bitWidth: Int, padLast: Bool, into out: inout ByteBuffer) {
        guard !literals.isEmpty else { return }
        if padLast { while literals.count % 8 != 0 { literals.append(0) } }
        precondition(literals.count % 8 == 0)
        var start = 0
        while start < literals.count {
            let groups = min(maxGroupsPerRun, (literals.count - start) / 8)
            writeVarint(UInt64(groups) << 1 | 1, into: &out)
            bitPack(literals[start..<start + groups * 8], bitWidth: bitWidth, into: &out)
            start += groups * 8
        }
        literals.removeAll(keepingCapacity: true)
    }

    /// Packs values LSB first, `bitWidth` bits each.
    static func bitPack(_ values: ArraySlice<UInt32>, bitWidth: Int, into out: inout ByteBuffer) {
        guard bitWidth > 0 else { return }
        var acc: UInt64 = 0
        var bits = 0
        for v in values {
            acc |= UInt64(v) << UInt64(bits)
            bits += bitWidth
            while bits >= 8 {
                out.writeInteger(UInt8(truncatingIfNeeded: acc))
                acc >>= 8
                bits -= 8
            }
        }
        if bits > 0 { out.writeInteger(UInt8(truncatingIfNeeded: acc)) }
    }

    static func writeVarint(_ value: UInt64, into out: inout ByteBuffer) {
        var v = value
        while v >= 0x80 {
            out.writeInteger(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        out.writeInteger(UInt8(v))
    }

    /// Bits needed for values up to `maxValue`.
    static func bitWidth(forMax maxValue: Int) -> Int {
        maxValue <= 0 ? 0 : (Int.bitWidth - maxValue.leadingZeroBitCount)
    }
}
