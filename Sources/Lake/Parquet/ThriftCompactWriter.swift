import NIOCore

/// Writes Thrift's compact protocol, the encoding of Parquet's page headers and footer.
///
/// Only what Parquet's metadata needs: structs (field ids as deltas), i16/i32/i64 as
/// zigzag varints, bools folded into the field type, binary, and lists. A struct is
/// written by calling the field methods between `beginStruct()` and `endStruct()`, in
/// ascending field-id order as the protocol requires.
struct ThriftCompactWriter {
    enum FieldType: UInt8 {
        case boolTrue = 1, boolFalse = 2, byte = 3, i16 = 4, i32 = 5, i64 = 6, double = 7, binary = 8
        case list = 9, set = 10, map = 11, structure = 12
    }

    var buffer: ByteBuffer
    private var lastFieldIds: [Int16] = []
    private var lastFieldId: Int16 = 0

    init(buffer: ByteBuffer = ByteBufferAllocator().buffer(capacity: 256)) {
        self.buffer = buffer
    }

    // MARK: structs

    mutating func beginStruct() {
        lastFieldIds.append(lastFieldId)
        lastFieldId = 0
    }

    mutating func endStruct() {
        buffer.writeInteger(0 as UInt8)  // STOP
        lastFieldId = lastFieldIds.removeLast()
    }

    private mutating func fieldHeader(_ id: Int16, _ type: FieldType) {
        let delta = Int(id) - Int(lastFieldId)
        if delta > 0 && delta <= 15 {
            buffer.writeInteger(UInt8(delta << 4) | type.rawValue)
        } else {
            buffer.writeInteger(type.rawValue)
            writeVarint(zigzag(Int64(id)))
        }
        lastFieldId = id
    }

    mutating func field(_ id: Int16, bool value: Bool) {
        fieldHeader(id, value ? .boolTrue : .boolFalse)
    }

    mutating func field(_ id: Int16, i16 value: Int16) {
        fieldHeader(id, .i16)
        writeVarint(zigzag(Int64(value)))
    }

    mutating func field(_ id: Int16, i32 value: Int32) {
        fieldHeader(id, .i32)
        writeVarint(zigzag(Int64(value)))
    }

    mutating func field(_ id: Int16, i64 value: Int64) {
        fieldHeader(id, .i64)
        writeVarint(zigzag(value))
    }

    mutating func field(_ id: Int16, binary value: some Collection<UInt8>) {
        fieldHeader(id, .binary)
        writeVarint(UInt64(value.count))
        buffer.writeBytes(value)
    }

    mutating func field(_ id: Int16, string value: String) {
        field(id, binary: value.utf8)
    }

    /// A nested struct field; `body` writes its fields.
    mutating func field(_ id: Int16, struct body: (inout ThriftCompactWriter) -> Void) {
        fieldHeader(id, .structure)
        beginStruct()
        body(&self)
        endStruct()
    }

    /// A list-of-structs field; `body` writes one element's fields.
    mutating func field<Element>(_ id: Int16, structs elements: [Element], _ body: (inout ThriftCompactWriter, Element) -> Void) {
        fieldHeader(id, .list)
        listHeader(count: elements.count, type: .structure)
        for element in elements {
            beginStruct()
            body(&self, element)
            endStruct()
        }
    }

    mutating func field(_ id: Int16, i32List values: [Int32]) {
        fieldHeader(id, .list)
        listHeader(count: values.count, type: .i32)
        for v in values { writeVarint(zigzag(Int64(v))) }
    }

    mutating func field(_ id: Int16, stringList values: [String]) {
        fieldHeader(id, .list)
        listHeader(count: values.count, type: .binary)
        for v in values {
            writeVarint(UInt64(v.utf8.count))
            buffer.writeBytes(v.utf8)
        }
    }

    // MARK: primitives

    private mutating func listHeader(count: Int, type: FieldType) {
        if count < 15 {
            buffer.writeInteger(UInt8(count << 4) | type.rawValue)
        } else {
            buffer.writeInteger(0xF0 | type.rawValue)
            writeVarint(UInt64(count))
        }
    }

    private func zigzag(_ v: Int64) -> UInt64 {
        UInt64(bitPattern: (v << 1) ^ (v >> 63))
    }

    private mutating func writeVarint(_ value: UInt64) {
        var v = value
        while v >= 0x80 {
            buffer.writeInteger(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        buffer.writeInteger(UInt8(v))
    }
}
