import NIOCore

// Primitive readers return nil when the buffer is short and leave the reader index
// untouched, so callers can decide whether "short" means "wait for more" (framing)
// or "malformed" (a complete frame that ends early).
extension ByteBuffer {
    /// Reads an unsigned LEB128 integer of at most `(T.bitWidth + 6) / 7` bytes.
    @inlinable
    mutating func readLEB128<T: FixedWidthInteger & UnsignedInteger>(as: T.Type) -> T? {
        var result: T = 0
        var shift = 0
        var index = self.readerIndex
        while shift < T.bitWidth + 6 - (T.bitWidth + 6) % 7 {
            guard let byte = self.getInteger(at: index, as: UInt8.self) else { return nil }
            index += 1
            result |= T(byte & 0x7F) << shift
            if byte & 0x80 == 0 {
                self.moveReaderIndex(to: index)
                return result
            }
            shift += 7
        }
        return nil
    }

    /// Reads an unsigned varint of at most 5 bytes (Kafka's `UNSIGNED_VARINT`).
    @inlinable
    public mutating func readUnsignedVarint() -> UInt32? { readLEB128(as: UInt32.self) }

    /// Reads an unsigned varlong of at most 10 bytes.
    @inlinable
    public mutating func readUnsignedVarlong() -> UInt64? { readLEB128(as: UInt64.self) }

    /// Reads a zigzag-encoded signed varint (Kafka's `VARINT`).
    @inlinable
    public mutating func readVarint() -> Int32? {
        guard let raw = self.readUnsignedVarint() else { return nil }
        return Int32(bitPattern: (raw >> 1) ^ (0 &- (raw & 1)))
    }

    /// Reads a zigzag-encoded signed varlong (Kafka's `VARLONG`).
    @inlinable
    public mutating func readVarlong() -> Int64? {
        guard let raw = self.readUnsignedVarlong() else { return nil }
        return Int64(bitPattern: (raw >> 1) ^ (0 &- (raw & 1)))
    }

    @inlinable
    @discardableResult
    mutating func writeLEB128<T: FixedWidthInteger & UnsignedInteger>(_ value: T) -> Int {
        var v = value
        var written = 1
        while v >= 0x80 {
            self.writeInteger(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
            written += 1
        }
        self.writeInteger(UInt8(truncatingIfNeeded: v))
        return written
    }

    @inlinable
    @discardableResult
    public mutating func writeUnsignedVarint(_ value: UInt32) -> Int { writeLEB128(value) }

    @inlinable
    @discardableResult
    public mutating func writeUnsignedVarlong(_ value: UInt64) -> Int { writeLEB128(value) }

    @inlinable
    @discardableResult
    public mutating func writeVarint(_ value: Int32) -> Int {
        self.writeUnsignedVarint(UInt32(bitPattern: (value << 1) ^ (value >> 31)))
    }

    @inlinable
    @discardableResult
    public mutating func writeVarlong(_ value: Int64) -> Int {
        self.writeUnsignedVarlong(UInt64(bitPattern: (value << 1) ^ (value >> 63)))
    }

    /// Size in bytes of `value` as an unsigned varint.
    @inlinable
    public static func unsignedVarintSize(_ value: UInt32) -> Int {
        var v = value
        var n = 1
        while v >= 0x80 { v >>= 7; n += 1 }
        return n
    }

    @inlinable
    public static func varintSize(_ value: Int32) -> Int {
        unsignedVarintSize(UInt32(bitPattern: (value << 1) ^ (value >> 31)))
    }

    @inlinable
    public static func varlongSize(_ value: Int64) -> Int {
        var v = UInt64(bitPattern: (value << 1) ^ (value >> 63))
        var n = 1
        while v >= 0x80 { v >>= 7; n += 1 }
        return n
    }
}
