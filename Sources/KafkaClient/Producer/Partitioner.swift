import NIOCore

/// The Java client's default partitioning of keyed records.
///
/// `partition(forKey:partitionCount:)` is `Utils.toPositive(Utils.murmur2(key)) %
/// numPartitions`, bit for bit: the same function librdkafka calls `murmur2_random`, so a
/// key lands on the same partition whichever of these clients wrote it, which consumers
/// that rely on per-key ordering need.
public enum KafkaPartitioner {
    /// Kafka's `Utils.murmur2`: MurmurHash2, seed 0x9747b28c, little-endian 4-byte blocks.
    public static func murmur2(_ data: UnsafeRawBufferPointer) -> Int32 {
        let m: UInt32 = 0x5bd1_e995
        let length = data.count
        var h: UInt32 = 0x9747_b28c ^ UInt32(truncatingIfNeeded: length)
        let blocks = length / 4
        for i in 0..<blocks {
            var k = UInt32(data[i * 4]) | UInt32(data[i * 4 + 1]) << 8 | UInt32(data[i * 4 + 2]) << 16 | UInt32(data[i * 4 + 3]) << 24
            k &*= m
            k ^= k >> 24
            k &*= m
            h &*= m
            h ^= k
        }
        let tail = blocks * 4
        switch length & 3 {
        case 3:
            h ^= UInt32(data[tail + 2]) << 16
            h ^= UInt32(data[tail + 1]) << 8
            h ^= UInt32(data[tail])
            h &*= m
        case 2:
            h ^= UInt32(data[tail + 1]) << 8
            h ^= UInt32(data[tail])
            h &*= m
        case 1:
            h ^= UInt32(data[tail])
            h &*= m
        default:
            break
        }
        h ^= h >> 13
        h &*= m
        h ^= h >> 15
        return Int32(bitPattern: h)
    }

    /// `murmur2` of a buffer's readable bytes.
    public static func murmur2(_ buffer: ByteBuffer) -> Int32 {
        buffer.withUnsafeReadableBytes { murmur2($0) }
    }

    /// `murmur2` of a byte array.
    public static func murmur2(_ bytes: [UInt8]) -> Int32 {
        bytes.withUnsafeBytes { murmur2($0) }
    }

    /// The partition the Java client's default partitioner picks for `key`.
    public static func partition(forKey key: ByteBuffer, partitionCount: Int32) -> Int32 {
        precondition(partitionCount > 0, "a topic has at least one partition")
        return (murmur2(key) & 0x7fff_ffff) % partitionCount
    }
}
