import CCRC32C
import NIOCore

/// CRC32C (Castagnoli), the checksum of Kafka's v2 record batches. Uses the SSE4.2
/// `crc32` instruction when the CPU has it, a slicing-by-8 table otherwise.
public enum CRC32C {
    /// Whether the hardware instruction is in use on this machine.
    public static var isHardwareAccelerated: Bool { tributary_crc32c_is_hardware() != 0 }

    public static func checksum(_ bytes: UnsafeRawBufferPointer, extending crc: UInt32 = 0) -> UInt32 {
        tributary_crc32c(crc, bytes.baseAddress, bytes.count)
    }

    public static func checksum(_ bytes: some Sequence<UInt8>, extending crc: UInt32 = 0) -> UInt32 {
        if let r = bytes.withContiguousStorageIfAvailable({ checksum(UnsafeRawBufferPointer($0), extending: crc) }) {
            return r
        }
        return checksum(Array(bytes), extending: crc)
    }

    /// Checksum of the readable bytes of `buffer`.
    public static func checksum(_ buffer: ByteBuffer, extending crc: UInt32 = 0) -> UInt32 {
        buffer.withUnsafeReadableBytes { checksum($0, extending: crc) }
    }

    /// The table-driven path, for tests and benchmarks comparing both.
    public static func portableChecksum(_ bytes: UnsafeRawBufferPointer, extending crc: UInt32 = 0) -> UInt32 {
        tributary_crc32c_portable(crc, bytes.baseAddress, bytes.count)
    }
}
