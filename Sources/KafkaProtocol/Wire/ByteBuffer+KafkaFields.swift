import NIOCore

// Throwing field readers and writers the generated codecs are written in. A frame is
// complete by the time a message is decoded, so a short read here means a malformed
// message, never "wait for more bytes".
extension ByteBuffer {
    @inlinable
    public mutating func kafkaReadInteger<T: FixedWidthInteger>(as: T.Type = T.self, field: StaticString) throws -> T {
        guard let v = self.readInteger(as: T.self) else { throw KafkaProtocolError.truncated(field) }
        return v
    }

    @inlinable
    public mutating func kafkaReadBool(field: StaticString) throws -> Bool {
        try kafkaReadInteger(as: UInt8.self, field: field) != 0
    }

    @inlinable
    public mutating func kafkaReadFloat64(field: StaticString) throws -> Double {
        Double(bitPattern: try kafkaReadInteger(as: UInt64.self, field: field))
    }

    @inlinable
    public mutating func kafkaReadUUID(field: StaticString) throws -> KafkaUUID {
        let high = try kafkaReadInteger(as: UInt64.self, field: field)
        let low = try kafkaReadInteger(as: UInt64.self, field: field)
        return KafkaUUID(high: high, low: low)
    }

    @inlinable
    public mutating func kafkaReadUnsignedVarint(field: StaticString) throws -> UInt32 {
        guard let v = self.readUnsignedVarint() else { throw KafkaProtocolError.truncated(field) }
        return v
    }

    /// Reads a length prefix: int16/int32 when not compact, unsigned varint minus one when
    /// compact. Returns nil for null (-1). Rejects lengths larger than the bytes left
    /// *before* anything is allocated.
    @usableFromInline
    mutating func kafkaReadLength(compact: Bool, wide: Bool, elementSize: Int, field: StaticString) throws -> Int? {
        let length: Int
        if compact {
            length = Int(try kafkaReadUnsignedVarint(field: field)) - 1
        } else if wide {
            length = Int(try kafkaReadInteger(as: Int32.self, field: field))
        } else {
            length = Int(try kafkaReadInteger(as: Int16.self, field: field))
        }
        if length == -1 { return nil }
        guard length >= 0 else {
            throw KafkaProtocolError(.invalidLength, "length \(length)", field: "\(field)")
        }
        guard length <= self.readableBytes / Swift.max(elementSize, 1) else {
            throw KafkaProtocolError(.invalidLength, "length \(length) exceeds the \(self.readableBytes) bytes left", field: "\(field)")
        }
        return length
    }

    @inlinable
    public mutating func kafkaReadNullableString(compact: Bool, field: StaticString) throws -> String? {
        guard let length = try kafkaReadLength(compact: compact, wide: false, elementSize: 1, field: field) else { return nil }
        return self.readString(length: length)!
    }

    @inlinable
    public mutating func kafkaReadString(compact: Bool, field: StaticString) throws -> String {
        guard let s = try kafkaReadNullableString(compact: compact, field: field) else {
            throw KafkaProtocolError(.unexpectedNull, field: "\(field)")
        }
        return s
    }

    /// Reads bytes as a slice of this buffer: no copy.
    @inlinable
    public mutating func kafkaReadNullableBytes(compact: Bool, field: StaticString) throws -> ByteBuffer? {
        guard let length = try kafkaReadLength(compact: compact, wide: true, elementSize: 1, field: field) else { return nil }
        return self.readSlice(length: length)!
    }

    @inlinable
    public mutating func kafkaReadBytes(compact: Bool, field: StaticString) throws -> ByteBuffer {
        guard let b = try kafkaReadNullableBytes(compact: compact, field: field) else {
            throw KafkaProtocolError(.unexpectedNull, field: "\(field)")
        }
        return b
    }

    /// Reads an array count; `minElementSize` bounds the count by the bytes left.
    @inlinable
    public mutating func kafkaReadArrayCount(compact: Bool, minElementSize: Int, field: StaticString) throws -> Int? {
        try kafkaReadLength(compact: compact, wide: true, elementSize: minElementSize, field: field)
    }

    @inlinable
    public mutating func kafkaReadSlice(length: Int, field: StaticString) throws -> ByteBuffer {
        guard let s = self.readSlice(length: length) else { throw KafkaProtocolError.truncated(field) }
        return s
    }

    // MARK: writing

    @inlinable
    public mutating func kafkaWriteBool(_ value: Bool) {
        self.writeInteger(value ? 1 : 0, as: UInt8.self)
    }

    @inlinable
    public mutating func kafkaWriteFloat64(_ value: Double) {
        self.writeInteger(value.bitPattern)
    }

    @inlinable
    public mutating func kafkaWriteUUID(_ value: KafkaUUID) {
        self.writeInteger(value.high)
        self.writeInteger(value.low)
    }

    @usableFromInline
    mutating func kafkaWriteLength(_ length: Int?, compact: Bool, wide: Bool) {
        if compact {
            self.writeUnsignedVarint(UInt32(truncatingIfNeeded: (length ?? -1) + 1))
        } else if wide {
            self.writeInteger(Int32(truncatingIfNeeded: length ?? -1))
        } else {
            self.writeInteger(Int16(truncatingIfNeeded: length ?? -1))
        }
    }

    @inlinable
    public mutating func kafkaWriteString(_ value: String, compact: Bool) {
        kafkaWriteLength(value.utf8.count, compact: compact, wide: false)
        self.writeString(value)
    }

    /// Writes a string that may be null; throws when it is null at a version where the
    /// field is not nullable.
    @inlinable
    public mutating func kafkaWriteNullableString(_ value: String?, compact: Bool, nullable: Bool, field: StaticString) throws {
        guard let value else {
            guard nullable else { throw KafkaProtocolError(.unexpectedNull, field: "\(field)") }
            kafkaWriteLength(nil, compact: compact, wide: false)
            return
        }
        kafkaWriteString(value, compact: compact)
    }

    @inlinable
    public mutating func kafkaWriteBytes(_ value: ByteBuffer, compact: Bool) {
        kafkaWriteLength(value.readableBytes, compact: compact, wide: true)
        var copy = value
        self.writeBuffer(&copy)
    }

    @inlinable
    public mutating func kafkaWriteNullableBytes(_ value: ByteBuffer?, compact: Bool, nullable: Bool, field: StaticString) throws {
        guard let value else {
            guard nullable else { throw KafkaProtocolError(.unexpectedNull, field: "\(field)") }
            kafkaWriteLength(nil, compact: compact, wide: true)
            return
        }
        kafkaWriteBytes(value, compact: compact)
    }

    @inlinable
    public mutating func kafkaWriteArrayCount(_ count: Int?, compact: Bool, nullable: Bool = true, field: StaticString) throws {
        if count == nil && !nullable { throw KafkaProtocolError(.unexpectedNull, field: "\(field)") }
        kafkaWriteLength(count, compact: compact, wide: true)
    }
}

/// A tagged field the codec does not know: kept as its raw bytes and written back
/// unchanged, so a message passes through without loss.
public struct UnknownTaggedField: Sendable, Hashable {
    public var tag: UInt32
    public var data: ByteBuffer

    public init(tag: UInt32, data: ByteBuffer) {
        self.tag = tag
        self.data = data
    }
}

/// Collects a message's tagged fields and writes them in ascending tag order, as the
/// protocol requires.
public struct TaggedFieldsWriter {
    @usableFromInline var fields: [UnknownTaggedField] = []

    @inlinable
    public init() {}

    @inlinable
    public mutating func add(tag: UInt32, _ body: (inout ByteBuffer) throws -> Void) rethrows {
        var buffer = ByteBuffer()
        try body(&buffer)
        fields.append(UnknownTaggedField(tag: tag, data: buffer))
    }

    @inlinable
    public mutating func add(_ unknown: [UnknownTaggedField]) {
        fields.append(contentsOf: unknown)
    }

    @inlinable
    public func write(into buffer: inout ByteBuffer) {
        buffer.writeUnsignedVarint(UInt32(fields.count))
        for field in fields.sorted(by: { $0.tag < $1.tag }) {
            buffer.writeUnsignedVarint(field.tag)
            buffer.writeUnsignedVarint(UInt32(field.data.readableBytes))
            var data = field.data
            buffer.writeBuffer(&data)
        }
    }
}

extension ByteBuffer {
    /// Reads the tagged-field section, calling `known` for each field; fields it does not
    /// claim (returns false) are returned as unknown.
    @inlinable
    public mutating func kafkaReadTaggedFields(
        field: StaticString,
        _ known: (UInt32, inout ByteBuffer) throws -> Bool
    ) throws -> [UnknownTaggedField] {
        let count = Int(try kafkaReadUnsignedVarint(field: field))
        guard count <= self.readableBytes / 2 else {
            throw KafkaProtocolError(.invalidLength, "\(count) tagged fields", field: "\(field)")
        }
        var unknown: [UnknownTaggedField] = []
        var previous: Int64 = -1
        for _ in 0..<count {
            let tag = try kafkaReadUnsignedVarint(field: field)
            guard Int64(tag) > previous else {
                throw KafkaProtocolError(.invalidLength, "tag \(tag) out of order", field: "\(field)")
            }
            previous = Int64(tag)
            let size = Int(try kafkaReadUnsignedVarint(field: field))
            var slice = try kafkaReadSlice(length: size, field: field)
            if try !known(tag, &slice) {
                unknown.append(UnknownTaggedField(tag: tag, data: slice))
            }
        }
        return unknown
    }
}

// Arrays and nullable structs, used by the generated codecs.
extension ByteBuffer {
    @inlinable
    public mutating func kafkaReadArray<T>(
        compact: Bool, minElementSize: Int, field: StaticString,
        _ element: (inout ByteBuffer) throws -> T
    ) throws -> [T]? {
        guard let count = try kafkaReadArrayCount(compact: compact, minElementSize: minElementSize, field: field) else {
            return nil
        }
        var array: [T] = []
        array.reserveCapacity(count)
        for _ in 0..<count { array.append(try element(&self)) }
        return array
    }

    @inlinable
    public mutating func kafkaReadNonNullArray<T>(
        compact: Bool, minElementSize: Int, field: StaticString,
        _ element: (inout ByteBuffer) throws -> T
    ) throws -> [T] {
        guard let array = try kafkaReadArray(compact: compact, minElementSize: minElementSize, field: field, element) else {
            throw KafkaProtocolError(.unexpectedNull, field: "\(field)")
        }
        return array
    }

    @inlinable
    public mutating func kafkaWriteArray<T>(
        _ array: [T]?, compact: Bool, nullable: Bool, field: StaticString,
        _ element: (inout ByteBuffer, T) throws -> Void
    ) throws {
        try kafkaWriteArrayCount(array?.count, compact: compact, nullable: nullable, field: field)
        guard let array else { return }
        for item in array { try element(&self, item) }
    }

    /// Nullable structs are a one-byte marker (-1 null, 1 present) before the struct.
    @inlinable
    public mutating func kafkaReadNullableStruct<T>(field: StaticString, _ body: (inout ByteBuffer) throws -> T) throws -> T? {
        let marker = try kafkaReadInteger(as: Int8.self, field: field)
        if marker < 0 { return nil }
        return try body(&self)
    }

    @inlinable
    public mutating func kafkaWriteNullableStruct<T>(
        _ value: T?, nullable: Bool, field: StaticString, _ body: (inout ByteBuffer, T) throws -> Void
    ) throws {
        guard let value else {
            guard nullable else { throw KafkaProtocolError(.unexpectedNull, field: "\(field)") }
            self.writeInteger(-1, as: Int8.self)
            return
        }
        self.writeInteger(1, as: Int8.self)
        try body(&self, value)
    }
}
