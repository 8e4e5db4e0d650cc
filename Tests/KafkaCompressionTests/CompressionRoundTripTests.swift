import Foundation
@testable import KafkaCompression
import KafkaProtocol
import NIOCore
import XCTest

/// Every codec gives back exactly what it was given, across the sizes where the formats
/// change behaviour: empty, below the minimum match, block and chunk boundaries, several
/// megabytes, and data that does not compress.
final class CompressionRoundTripTests: XCTestCase {
    private func roundTrip(_ bytes: [UInt8], _ codec: CompressionCodec, level: Int? = nil,
                           file: StaticString = #filePath, line: UInt = #line) throws -> ByteBuffer {
        let compressed = try CompressionCodecs.compress(ByteBuffer(bytes: bytes), codec: codec, level: level)
        let restored = try CompressionCodecs.decompress(compressed, codec: codec, maximumSize: bytes.count)
        XCTAssertEqual(restored.readableBytes, bytes.count, "\(codec) size", file: file, line: line)
        XCTAssert(restored.bytes == bytes, "\(codec): \(bytes.count) bytes did not survive", file: file, line: line)
        return compressed
    }

    func testEmptyInputRoundTrips() throws {
        for codec in testedCodecs() {
            let compressed = try roundTrip([], codec)
            XCTAssertGreaterThan(compressed.readableBytes, 0, "\(codec) still writes its framing")
        }
    }

    func testSmallInputsRoundTripAtEverySizeUpToTwoHundred() throws {
        let text = Samples.text(200)
        let random = Samples.random(200)
        for codec in testedCodecs() {
            for size in 0...200 {
                _ = try roundTrip(Array(text.prefix(size)), codec)
                _ = try roundTrip(Array(random.prefix(size)), codec)
            }
        }
    }

    func testFiveMegabytesOfTextRoundTripAndShrink() throws {
        let text = Samples.text(5 << 20)
        for codec in testedCodecs() {
            let compressed = try roundTrip(text, codec)
            XCTAssertLessThan(compressed.readableBytes, text.count / 2, "\(codec) compresses text")
        }
    }

    func testIncompressibleDataRoundTripsWithLittleOverhead() throws {
        let random = Samples.random(1 << 20)
        for codec in testedCodecs() {
            let compressed = try roundTrip(random, codec)
            // Stored blocks and framing only: well under 1% for every codec.
            XCTAssertLessThan(compressed.readableBytes, random.count + random.count / 100, "\(codec)")
        }
    }

    func testLongRunsAndShortPeriodsRoundTrip() throws {
        // Overlapping copies (offset < length) are how both Swift codecs encode runs.
        let zeros = [UInt8](repeating: 0, count: 3 << 20)
        let period3 = (0..<(1 << 20)).map { UInt8($0 % 3) }
        let period7 = (0..<100_000).map { UInt8(truncatingIfNeeded: $0 % 7 &* 37) }
        for codec in testedCodecs() {
            let compressed = try roundTrip(zeros, codec)
            XCTAssertLessThan(compressed.readableBytes, zeros.count / 20, "\(codec) compresses a run")
            _ = try roundTrip(period3, codec)
            _ = try roundTrip(period7, codec)
        }
    }

    func testSizesAroundBlockAndChunkBoundariesRoundTrip() throws {
        // snappy: 32 KiB xerial chunks, 64 KiB fragments; lz4: 64 KiB blocks.
        let text = Samples.text(300_000)
        let mixed = Samples.text(150_000) + Samples.random(150_000)
        for codec in testedCodecs() {
            for size in [32767, 32768, 32769, 65535, 65536, 65537, 131_072, 131_073, 196_608 + 7, 300_000] {
                _ = try roundTrip(Array(text.prefix(size)), codec)
                _ = try roundTrip(Array(mixed.prefix(size)), codec)
            }
        }
    }

    func testInputIsReadFromTheReaderIndexNotTheStartOfStorage() throws {
        var buffer = ByteBuffer(bytes: Array("skip me|".utf8) + Samples.text(10_000))
        buffer.moveReaderIndex(forwardBy: 8)
        let slice = buffer.getSlice(at: buffer.readerIndex, length: 5_000)!
        for codec in testedCodecs() {
            let compressed = try CompressionCodecs.compress(slice, codec: codec)
            // Compressed bytes inside a larger buffer, as `recordsPayload` hands them over.
            var framed = ByteBuffer(bytes: [1, 2, 3])
            framed.moveReaderIndex(forwardBy: 3)
            var copy = compressed
            framed.writeBuffer(&copy)
            let restored = try CompressionCodecs.decompress(framed, codec: codec, maximumSize: 5_000)
            XCTAssertEqual(restored, slice, "\(codec)")
        }
    }

    func testSnappyRawBlocksRoundTrip() throws {
        // librdkafka's framing: one raw block. decompress must tell it from xerial.
        for bytes in [[], Samples.text(1), Samples.text(100_000), Samples.random(70_000)] {
            let raw = Snappy.compress(ByteBuffer(bytes: bytes), framing: .raw)
            XCTAssertNotEqual(raw.getBytes(at: raw.readerIndex, length: 1), [0x82], "raw starts with a length varint")
            let restored = try CompressionCodecs.decompress(raw, codec: .snappy, maximumSize: bytes.count)
            XCTAssert(restored.bytes == bytes)
        }
    }

    func testCompressionLevelsAreHonouredAndCheckedForGzipAndZstd() throws {
        let text = Samples.text(1 << 20)
        let codecs = testedCodecs()
        if codecs.contains(.gzip) {
            let fast = try roundTrip(text, .gzip, level: 1)
            let best = try roundTrip(text, .gzip, level: 9)
            _ = try roundTrip(text, .gzip, level: 0)  // stored
            _ = try roundTrip(text, .gzip, level: -1)
            XCTAssertLessThan(best.readableBytes, fast.readableBytes)
            assertCompressionError(.invalidArgument) { try CompressionCodecs.compress(ByteBuffer(), codec: .gzip, level: 10) }
        }
        if codecs.contains(.zstd) {
            let fast = try roundTrip(text, .zstd, level: -5)
            let best = try roundTrip(text, .zstd, level: 19)
            XCTAssertLessThan(best.readableBytes, fast.readableBytes)
            assertCompressionError(.invalidArgument) { try CompressionCodecs.compress(ByteBuffer(), codec: .zstd, level: 23) }
        }
        // Single-level codecs ignore the level.
        _ = try roundTrip(text, .lz4, level: 9)
        _ = try roundTrip(text, .snappy, level: 9)
    }

    func testCodecsWorkFromManyThreadsAtOnce() throws {
        // Includes the first use of each system library, which loads it.
        let codecs = testedCodecs()
        let inputs = (0..<8).map { Samples.text(100_000, seed: UInt64($0)) }
        let failures = ConcurrentFailures()
        DispatchQueue.concurrentPerform(iterations: 32) { i in
            let codec = codecs[i % codecs.count]
            let input = inputs[i % inputs.count]
            do {
                let compressed = try CompressionCodecs.compress(ByteBuffer(bytes: input), codec: codec)
                let restored = try CompressionCodecs.decompress(compressed, codec: codec, maximumSize: input.count)
                if restored.bytes != input { failures.append("\(codec) #\(i): different bytes") }
            } catch {
                failures.append("\(codec) #\(i): \(error)")
            }
        }
        XCTAssertEqual(failures.all, [])
    }

    func testNoneIsTheIdentityWithinTheMaximum() throws {
        let bytes = ByteBuffer(bytes: Samples.text(100))
        XCTAssertEqual(try CompressionCodecs.compress(bytes, codec: .none), bytes)
        XCTAssertEqual(try CompressionCodecs.decompress(bytes, codec: .none, maximumSize: 100), bytes)
        assertCompressionError(.outputTooLarge) { try CompressionCodecs.decompress(bytes, codec: .none, maximumSize: 99) }
    }

    func testBuiltBatchesDecompressBackToTheirRecords() throws {
        for codec in [CompressionCodec.none] + testedCodecs() {
            var builder = RecordBatchBuilder(baseTimestamp: 1_700_000_000_000)
            for i in 0..<500 {
                builder.append(key: i % 3 == 0 ? nil : ByteBuffer(string: "key-\(i)"),
                               value: i == 7 ? nil : ByteBuffer(string: "value \(i) " + String(repeating: "x", count: i % 50)),
                               timestamp: 1_700_000_000_000 + Int64(i),
                               headers: i % 2 == 0 ? [.init(key: "h", value: ByteBuffer(string: "\(i)"))] : [])
            }
            let batch = try builder.build(compression: codec)
            XCTAssertEqual(batch.compression, codec)
            let reparsed = try RecordBatch(validating: batch.buffer)
            var records = try reparsed.decompressedRecords(maximumSize: 1 << 20)
            let all = try records.all()
            XCTAssertEqual(all.count, 500, "\(codec)")
            XCTAssertEqual(all[1].key, ByteBuffer(string: "key-1"))
            XCTAssertNil(all[3].key)
            XCTAssertNil(all[7].value)
            XCTAssertEqual(all[499].value, ByteBuffer(string: "value 499 " + String(repeating: "x", count: 499 % 50)))
            XCTAssertEqual(all[498].headers, [.init(key: "h", value: ByteBuffer(string: "498"))])
            XCTAssertEqual(all[499].timestampDelta, 499)
            if codec != .none {
                XCTAssertLessThan(batch.sizeInBytes, builder.estimatedSize, "\(codec) shrinks the batch")
                assertCompressionError(.outputTooLarge) { try reparsed.decompressedRecords(maximumSize: 100) }
            }
        }
    }
}

/// Failures collected from concurrent work.
private final class ConcurrentFailures: @unchecked Sendable {
    // @unchecked: every access to `messages` holds `lock`.
    private let lock = NSLock()
    private var messages: [String] = []

    func append(_ message: String) {
        lock.lock()
        defer { lock.unlock() }
        messages.append(message)
    }

    var all: [String] {
        lock.lock()
        defer { lock.unlock() }
        return messages
    }
}
