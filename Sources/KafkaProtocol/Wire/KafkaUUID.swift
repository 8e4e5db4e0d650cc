/// A Kafka UUID (topic ids, directory ids): 16 bytes, printed as Kafka prints them,
/// URL-safe base64 without padding.
public struct KafkaUUID: Sendable, Hashable, CustomStringConvertible {
    public var high: UInt64
    public var low: UInt64

    public init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    /// The all-zero UUID Kafka uses for "no topic id".
    public static let zero = KafkaUUID(high: 0, low: 0)

    /// A random version-4 UUID, as Kafka's `Uuid.randomUuid()` makes.
    public static func random() -> KafkaUUID {
        var generator = SystemRandomNumberGenerator()
        var high = generator.next() as UInt64
        var low = generator.next() as UInt64
        high = (high & ~0xF000) | 0x4000
        low = (low & ~(0xC000_0000_0000_0000 as UInt64)) | 0x8000_0000_0000_0000
        return KafkaUUID(high: high, low: low)
    }

    public var bytes: [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(16)
        for shift in stride(from: 56, through: 0, by: -8) { out.append(UInt8(truncatingIfNeeded: high >> UInt64(shift))) }
        for shift in stride(from: 56, through: 0, by: -8) { out.append(UInt8(truncatingIfNeeded: low >> UInt64(shift))) }
        return out
    }

    public init?(bytes: some Collection<UInt8>) {
        guard bytes.count == 16 else { return nil }
        var high: UInt64 = 0
        var low: UInt64 = 0
        for (i, byte) in bytes.enumerated() {
            if i < 8 { high = high << 8 | UInt64(byte) } else { low = low << 8 | UInt64(byte) }
        }
        self.init(high: high, low: low)
    }

    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)

    public var description: String {
        let input = bytes
        var out = [UInt8]()
        var i = 0
        while i < input.count {
            let b0 = UInt32(input[i])
            let b1 = i + 1 < input.count ? UInt32(input[i + 1]) : 0
            let b2 = i + 2 < input.count ? UInt32(input[i + 2]) : 0
            let triple = b0 << 16 | b1 << 8 | b2
            let chars = min(4, (input.count - i) * 4 / 3 + ((input.count - i) < 3 ? 1 : 0))
            for k in 0..<chars {
                out.append(Self.alphabet[Int((triple >> UInt32(18 - 6 * k)) & 0x3F)])
            }
            i += 3
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Parses Kafka's base64 form back (as the admin tools print it).
    public init?(_ text: String) {
        var lookup = [UInt8: UInt32]()
        for (i, c) in Self.alphabet.enumerated() { lookup[c] = UInt32(i) }
        var bits: UInt32 = 0
        var bitCount = 0
        var out = [UInt8]()
        for c in text.utf8 {
            guard let v = lookup[c] else { return nil }
            bits = bits << 6 | v
            bitCount += 6
            if bitCount >= 8 {
                bitCount -= 8
                out.append(UInt8(truncatingIfNeeded: bits >> UInt32(bitCount)))
            }
        }
        self.init(bytes: out)
    }
}
