import Foundation
import KafkaCompression
import KafkaProtocol
import NIOCore
import XCTest

/// A seeded generator (SplitMix64), so every "random" input is the same on every run and
/// a failure can be reproduced.
struct SeededGenerator: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

enum Samples {
    /// Incompressible bytes.
    static func random(_ count: Int, seed: UInt64 = 1) -> [UInt8] {
        var generator = SeededGenerator(seed: seed)
        var out = [UInt8](repeating: 0, count: count)
        var i = 0
        while i < count {
            let word = generator.next()
            for shift in stride(from: 0, to: 64, by: 8) where i < count {
                out[i] = UInt8(truncatingIfNeeded: word >> UInt64(shift))
                i += 1
            }
        }
        return out
    }

    /// Log-line-like text: a small vocabulary with numbers, compressible like real
    /// record values (JSON, logs) rather than trivially like a run of zeros.
    static func text(_ count: Int, seed: UInt64 = 2) -> [UInt8] {
        let words = ["station", "temperature", "humidity", "\"reading\":", "{\"id\":", "}", ",", "weather", "tributary",
                     "kafka", "partition", "offset", "2024-06-01T12:00:00Z", "ok", "error", " ", " ", "\n"]
        var generator = SeededGenerator(seed: seed)
        var out: [UInt8] = []
        out.reserveCapacity(count + 32)
        while out.count < count {
            out.append(contentsOf: words[Int(generator.next() % UInt64(words.count))].utf8)
            if generator.next() % 4 == 0 { out.append(contentsOf: String(generator.next() % 10_000).utf8) }
        }
        return Array(out.prefix(count))
    }
}

/// The codecs under test, with gzip and zstd left out (with a note) when their system
/// library cannot be loaded, so the Swift codecs are still tested on such a machine.
func testedCodecs(file: StaticString = #filePath, line: UInt = #line) -> [CompressionCodec] {
    [.gzip, .snappy, .lz4, .zstd].filter { codec in
        if let error = CompressionCodecs.availabilityError(codec) {
            print("note: \(codec) not tested here: \(error)")
            return false
        }
        return true
    }
}

extension ByteBuffer {
    var bytes: [UInt8] { getBytes(at: readerIndex, length: readableBytes)! }
}

/// Asserts `body` throws a `KafkaCompressionError` with `code`.
func assertCompressionError<T>(_ code: KafkaCompressionError.Code, _ message: @autoclosure () -> String = "",
                               file: StaticString = #filePath, line: UInt = #line, _ body: () throws -> T) {
    do {
        _ = try body()
        XCTFail("expected \(code), got a result. \(message())", file: file, line: line)
    } catch let error as KafkaCompressionError {
        XCTAssertEqual(error.code, code, "\(error). \(message())", file: file, line: line)
    } catch {
        XCTFail("expected KafkaCompressionError \(code), got \(error). \(message())", file: file, line: line)
    }
}

/// Where the captured client fixtures live: the KafkaProtocolTests target's resources,
/// read in place rather than copied so there is one set of captured bytes.
enum ClientFixtures {
    static let directory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("KafkaProtocolTests/Fixtures")
}
