import KafkaCompression
import KafkaProtocol
import NIOCore
import XCTest

/// Decompression of hostile or damaged bytes fails with a `KafkaCompressionError` and
/// never traps, and `maximumSize` stops every codec before the output can exceed it.
final class CorruptInputTests: XCTestCase {
    // MARK: maximumSize

    func testMaximumSizeIsExactForEveryCodec() throws {
        let input = Samples.text(200_000)
        for codec in testedCodecs() {
            let compressed = try CompressionCodecs.compress(ByteBuffer(bytes: input), codec: codec)
            XCTAssertEqual(try CompressionCodecs.decompress(compressed, codec: codec, maximumSize: input.count).readableBytes, input.count)
            for maximum in [0, 1, 1000, 65536, input.count - 1] {
                assertCompressionError(.outputTooLarge, "\(codec) maximum \(maximum)") {
                    try CompressionCodecs.decompress(compressed, codec: codec, maximumSize: maximum)
                }
            }
        }
    }

    func testZipBombsStopAtTheMaximum() throws {
        // 64 MiB of zeros: a few KiB in gzip, lz4 and zstd; 3 MiB in snappy, whose copies hold 64 bytes.
        let zeros = ByteBuffer(repeating: 0, count: 64 << 20)
        for codec in testedCodecs() {
            let bomb = try CompressionCodecs.compress(zeros, codec: codec)
            XCTAssertLessThan(bomb.readableBytes, zeros.readableBytes / 20, "\(codec)")  // snappy: at most ~21x
            assertCompressionError(.outputTooLarge, "\(codec)") {
                try CompressionCodecs.decompress(bomb, codec: codec, maximumSize: 1 << 20)
            }
        }
    }

    func testSizeClaimsAreRefusedBeforeAnythingIsAllocated() throws {
        // lz4: a frame declaring a 1 TiB content size.
        var lz4 = ByteBuffer(bytes: [0x04, 0x22, 0x4D, 0x18, 0x68, 0x40])  // FLG with content size
        lz4.writeInteger(UInt64(1) << 40, endianness: .little)
        lz4.writeInteger(UInt8(0x00))  // header checksum, computed below
        lz4.setInteger(Self.lz4HeaderChecksum(lz4.bytes[4..<14]), at: 14)
        lz4.writeInteger(UInt32(0))
        assertCompressionError(.outputTooLarge) { try CompressionCodecs.decompress(lz4, codec: .lz4, maximumSize: Int(UInt32.max)) }

        // snappy: a 4-byte body claiming 4 GiB; no valid block expands that much.
        let snappy = ByteBuffer(bytes: [0xFF, 0xFF, 0xFF, 0xFF, 0x0F, 0x00, 0x61, 0x00, 0x00])
        assertCompressionError(.corruptInput) { try CompressionCodecs.decompress(snappy, codec: .snappy, maximumSize: Int.max) }
        // ...and within the limit check, a plausible claim over the maximum.
        let claim = ByteBuffer(bytes: [0x80, 0x08] + [UInt8](repeating: 0, count: 100))  // 1024 bytes
        assertCompressionError(.outputTooLarge) { try CompressionCodecs.decompress(claim, codec: .snappy, maximumSize: 1023) }

        // xerial: chunks whose claims add up to more than the maximum are refused up front.
        var xerial = try CompressionCodecs.compress(ByteBuffer(bytes: Samples.text(40_000)), codec: .snappy)
        var more = xerial.getSlice(at: xerial.readerIndex + 16, length: xerial.readableBytes - 16)!
        xerial.writeBuffer(&more)
        assertCompressionError(.outputTooLarge) { try CompressionCodecs.decompress(xerial, codec: .snappy, maximumSize: 79_999) }
        XCTAssertEqual(try CompressionCodecs.decompress(xerial, codec: .snappy, maximumSize: 80_000).readableBytes, 80_000)
    }

    func testNegativeMaximumIsAnInvalidArgument() {
        assertCompressionError(.invalidArgument) { try CompressionCodecs.decompress(ByteBuffer(), codec: .lz4, maximumSize: -1) }
    }

    // MARK: damaged streams

    func testEveryTruncationFails() throws {
        let input = Samples.text(20_000) + Samples.random(3_000)
        for codec in testedCodecs() {
            let compressed = try CompressionCodecs.compress(ByteBuffer(bytes: input), codec: codec).bytes
            // xerial is a sequence of chunks: cutting exactly after one is a valid, shorter stream.
            let chunkBoundaries = codec == .snappy ? Self.xerialChunkEnds(compressed) : []
            for length in 0..<compressed.count where !chunkBoundaries.contains(length) {
                assertCompressionError(.corruptInput, "\(codec) cut to \(length) of \(compressed.count)") {
                    try CompressionCodecs.decompress(ByteBuffer(bytes: compressed.prefix(length)), codec: codec, maximumSize: 1 << 20)
                }
            }
        }
    }

    func testGarbageFailsCleanly() throws {
        var generator = SeededGenerator(seed: 42)
        for codec in testedCodecs() {
            for length in [0, 1, 2, 3, 4, 7, 8, 15, 16, 17, 100, 4096] {
                for _ in 0..<20 {
                    let garbage = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
                    Self.assertFailsOrStaysBounded(garbage, codec)
                }
            }
        }
    }

    func testGarbageAfterValidMagicFailsCleanly() throws {
        // Garbage that gets past the first check exercises the decoders, not just the sniffing.
        var generator = SeededGenerator(seed: 7)
        let prefixes: [CompressionCodec: [UInt8]] = [
            .gzip: [0x1F, 0x8B, 0x08, 0, 0, 0, 0, 0, 0, 0xFF],
            .snappy: [0x82, 0x53, 0x4E, 0x41, 0x50, 0x50, 0x59, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0x10, 0x00],
            .lz4: CompressionFormatTests.lz4Header + [0x00, 0x10, 0x00, 0x00],
            .zstd: [0x28, 0xB5, 0x2F, 0xFD, 0x00, 0x58],
        ]
        for codec in testedCodecs() {
            for _ in 0..<300 {
                let tail = (0..<Int.random(in: 0...5000, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }
                Self.assertFailsOrStaysBounded(prefixes[codec]! + tail, codec)
            }
        }
    }

    func testBitFlipsFailCleanlyOrDecodeWithinBounds() throws {
        var generator = SeededGenerator(seed: 99)
        let input = Samples.text(30_000)
        for codec in testedCodecs() {
            let compressed = try CompressionCodecs.compress(ByteBuffer(bytes: input), codec: codec).bytes
            for _ in 0..<1500 {
                var damaged = compressed
                for _ in 0..<Int.random(in: 1...3, using: &generator) {
                    damaged[Int.random(in: 0..<damaged.count, using: &generator)] ^= UInt8(1) << UInt8.random(in: 0...7, using: &generator)
                }
                Self.assertFailsOrStaysBounded(damaged, codec, maximumSize: 40_000)
            }
        }
    }

    func testChecksummedFormatsDetectDamage() throws {
        // gzip carries a CRC-32 of the content: a flipped data byte must not decode silently.
        guard testedCodecs().contains(.gzip) else { throw XCTSkip("zlib unavailable") }
        var gzip = try CompressionCodecs.compress(ByteBuffer(bytes: Samples.text(10_000)), codec: .gzip).bytes
        gzip[gzip.count - 6] ^= 0x01  // inside the stored CRC
        assertCompressionError(.corruptInput) { try CompressionCodecs.decompress(ByteBuffer(bytes: gzip), codec: .gzip, maximumSize: 1 << 20) }
    }

    // MARK: hand-made invalid snappy

    func testInvalidSnappyElementsAreCorruptInput() {
        let cases: [(String, [UInt8])] = [
            ("copy before the start", [0x04, 0x01, 0x05]),
            ("copy offset zero", [0x08, 0x0C, 0x61, 0x62, 0x63, 0x64, 0x01, 0x00]),
            ("literal past the end of input", [0x05, 0x10, 0x61]),
            ("literal past the declared length", [0x02, 0x08, 0x61, 0x62, 0x63]),
            ("shorter than declared", [0x05, 0x08, 0x61, 0x62, 0x63]),
            ("varint longer than five bytes", [0x80, 0x80, 0x80, 0x80, 0x80, 0x01]),
            ("truncated varint", [0x80]),
            ("truncated 2-byte copy", [0x08, 0x00, 0x61, 0x0A, 0x01]),
            ("truncated 4-byte copy", [0x08, 0x00, 0x61, 0x07, 0x01, 0x00]),
            ("truncated literal length", [0x40, 0xF4, 0x3F]),
            ("xerial chunk with negative length", [0x82, 0x53, 0x4E, 0x41, 0x50, 0x50, 0x59, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0xFF, 0xFF, 0xFF, 0xFF]),
            ("xerial chunk longer than the input", [0x82, 0x53, 0x4E, 0x41, 0x50, 0x50, 0x59, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 9, 0x00]),
            ("xerial truncated chunk length", [0x82, 0x53, 0x4E, 0x41, 0x50, 0x50, 0x59, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0]),
            ("empty input", []),
        ]
        for (name, bytes) in cases {
            assertCompressionError(.corruptInput, name) {
                try CompressionCodecs.decompress(ByteBuffer(bytes: bytes), codec: .snappy, maximumSize: 1 << 20)
            }
        }
    }

    // MARK: hand-made invalid lz4

    /// A frame from a descriptor (FLG, BD, optional fields) with a correct header checksum.
    static func lz4Frame(descriptor: [UInt8], body: [UInt8]) -> ByteBuffer {
        ByteBuffer(bytes: [0x04, 0x22, 0x4D, 0x18] + descriptor + [lz4HeaderChecksum(descriptor[...])] + body)
    }

    /// The frame header checksum: the second byte of xxHash32 over the descriptor.
    static func lz4HeaderChecksum(_ descriptor: ArraySlice<UInt8>) -> UInt8 {
        UInt8(truncatingIfNeeded: referenceXXH32(Array(descriptor)) >> 8)
    }

    /// An independent, byte-at-a-time xxHash32 (the spec's pseudo-code), so header
    /// checksums here do not come from the code under test.
    static func referenceXXH32(_ input: [UInt8], seed: UInt32 = 0) -> UInt32 {
        let p1: UInt32 = 2_654_435_761, p2: UInt32 = 2_246_822_519, p3: UInt32 = 3_266_489_917
        let p4: UInt32 = 668_265_263, p5: UInt32 = 374_761_393
        func rotl(_ x: UInt32, _ r: UInt32) -> UInt32 { (x << r) | (x >> (32 - r)) }
        func lane(_ i: Int) -> UInt32 {
            UInt32(input[i]) | UInt32(input[i + 1]) << 8 | UInt32(input[i + 2]) << 16 | UInt32(input[i + 3]) << 24
        }
        var i = 0
        var h: UInt32
        if input.count >= 16 {
            var v = [seed &+ p1 &+ p2, seed &+ p2, seed, seed &- p1]
            while i + 16 <= input.count {
                for k in 0..<4 { v[k] = rotl(v[k] &+ lane(i + 4 * k) &* p2, 13) &* p1 }
                i += 16
            }
            h = rotl(v[0], 1) &+ rotl(v[1], 7) &+ rotl(v[2], 12) &+ rotl(v[3], 18)
        } else {
            h = seed &+ p5
        }
        h = h &+ UInt32(input.count)
        while i + 4 <= input.count { h = rotl(h &+ lane(i) &* p3, 17) &* p4; i += 4 }
        while i < input.count { h = rotl(h &+ UInt32(input[i]) &* p5, 11) &* p1; i += 1 }
        h ^= h >> 15; h = h &* p2; h ^= h >> 13; h = h &* p3; h ^= h >> 16
        return h
    }

    func testInvalidLZ4FramesAreRefused() throws {
        let block: [UInt8] = [0x06, 0x00, 0x00, 0x00, 0x50, 0x31, 0x32, 0x33, 0x34, 0x35]  // 6-byte block: "12345"
        let end: [UInt8] = [0, 0, 0, 0]
        let cases: [(String, KafkaCompressionError.Code, ByteBuffer)] = [
            ("empty input", .corruptInput, ByteBuffer()),
            ("wrong magic", .corruptInput, ByteBuffer(bytes: [0x05, 0x22, 0x4D, 0x18, 0x60, 0x40, 0x82] + end)),
            ("legacy frame magic", .corruptInput, ByteBuffer(bytes: [0x02, 0x21, 0x4C, 0x18] + end)),
            ("header checksum", .corruptInput, ByteBuffer(bytes: [0x04, 0x22, 0x4D, 0x18, 0x60, 0x40, 0x83] + block + end)),
            ("version 00", .corruptInput, Self.lz4Frame(descriptor: [0x20, 0x40], body: block + end)),
            ("reserved FLG bit", .corruptInput, Self.lz4Frame(descriptor: [0x62, 0x40], body: block + end)),
            ("reserved BD bits", .corruptInput, Self.lz4Frame(descriptor: [0x60, 0x41], body: block + end)),
            ("block size id 3", .corruptInput, Self.lz4Frame(descriptor: [0x60, 0x30], body: block + end)),
            ("no end mark", .corruptInput, Self.lz4Frame(descriptor: [0x60, 0x40], body: block)),
            ("truncated block", .corruptInput, Self.lz4Frame(descriptor: [0x60, 0x40], body: Array(block.prefix(7)))),
            ("block over the frame's block size", .corruptInput,
             Self.lz4Frame(descriptor: [0x60, 0x40], body: [0x01, 0x00, 0x01, 0x00] + [UInt8](repeating: 0, count: 65537) + end)),
            ("match before the start", .corruptInput,
             Self.lz4Frame(descriptor: [0x60, 0x40], body: [0x08, 0, 0, 0, 0x10, 0x61, 0x05, 0x00, 0x50, 0x31, 0x32, 0x33] + end)),
            ("match offset zero", .corruptInput,
             Self.lz4Frame(descriptor: [0x60, 0x40], body: [0x0A, 0, 0, 0, 0x10, 0x61, 0x00, 0x00, 0x50, 0x31, 0x32, 0x33, 0x34, 0x35] + end)),
            ("block ends after a match", .corruptInput,
             Self.lz4Frame(descriptor: [0x60, 0x40], body: [0x04, 0, 0, 0, 0x10, 0x61, 0x01, 0x00] + end)),
            ("literal length past the block", .corruptInput,
             Self.lz4Frame(descriptor: [0x60, 0x40], body: [0x02, 0, 0, 0, 0xF0, 0xFF] + end)),
            ("block checksum", .corruptInput, Self.lz4Frame(descriptor: [0x70, 0x40], body: block + [1, 2, 3, 4] + end)),
            ("content checksum", .corruptInput, Self.lz4Frame(descriptor: [0x64, 0x40], body: block + end + [1, 2, 3, 4])),
            ("missing content checksum", .corruptInput, Self.lz4Frame(descriptor: [0x64, 0x40], body: block + end)),
            ("content size mismatch", .corruptInput, Self.lz4Frame(descriptor: [0x68, 0x40, 4, 0, 0, 0, 0, 0, 0, 0], body: block + end)),
            ("dictionary", .unsupportedFeature, Self.lz4Frame(descriptor: [0x61, 0x40, 1, 0, 0, 0], body: block + end)),
            ("stray bytes after the frame", .corruptInput, Self.lz4Frame(descriptor: [0x60, 0x40], body: block + end + [1, 2])),
            ("only a skippable frame", .corruptInput, ByteBuffer(bytes: [0x50, 0x2A, 0x4D, 0x18, 0, 0, 0, 0])),
            ("truncated skippable frame", .corruptInput, ByteBuffer(bytes: [0x50, 0x2A, 0x4D, 0x18, 9, 0, 0, 0, 1])),
        ]
        for (name, code, frame) in cases {
            assertCompressionError(code, name) { try CompressionCodecs.decompress(frame, codec: .lz4, maximumSize: 1 << 20) }
        }
        // The valid baseline the cases above break, with a skippable frame in front and a
        // content size, block and content checksums that all check out.
        let contentChecksum = Self.referenceXXH32(Array("12345".utf8))
        let blockChecksum = Self.referenceXXH32(Array(block.dropFirst(4)))
        var good = ByteBuffer(bytes: [0x50, 0x2A, 0x4D, 0x18, 2, 0, 0, 0, 0xAA, 0xBB])
        var frame = Self.lz4Frame(descriptor: [0x7C, 0x40, 5, 0, 0, 0, 0, 0, 0, 0], body: block)
        frame.writeInteger(blockChecksum, endianness: .little)
        frame.writeBytes(end)
        frame.writeInteger(contentChecksum, endianness: .little)
        good.writeBuffer(&frame)
        XCTAssertEqual(String(buffer: try CompressionCodecs.decompress(good, codec: .lz4, maximumSize: 5)), "12345")
    }

    func testReferenceXXHash32MatchesLiblz4() {
        // 0x82 is the checksum liblz4 and librdkafka write for this descriptor.
        XCTAssertEqual(Self.lz4HeaderChecksum([0x60, 0x40]), 0x82)
        XCTAssertEqual(Self.referenceXXH32(Array("abc".utf8)), 0x32D1_53FF)
        XCTAssertEqual(Self.referenceXXH32((0..<4).flatMap { _ in Array(0...255 as ClosedRange<UInt8>) } + Array("xyz".utf8)), 0x7202_BD2B)
    }

    // MARK: gzip and zstd

    func testInvalidGzipAndZstdAreCorruptInput() {
        let codecs = testedCodecs()
        if codecs.contains(.gzip) {
            for bytes: [UInt8] in [[], [0x1F], [0x1F, 0x8B], [0x1F, 0x8B, 0x09, 0, 0, 0, 0, 0, 0, 0xFF], Array("not gzip".utf8)] {
                assertCompressionError(.corruptInput, "gzip \(bytes)") {
                    try CompressionCodecs.decompress(ByteBuffer(bytes: bytes), codec: .gzip, maximumSize: 1000)
                }
            }
        }
        if codecs.contains(.zstd) {
            for bytes: [UInt8] in [[], [0x28], [0x28, 0xB5, 0x2F, 0xFD], [0x28, 0xB5, 0x2F, 0xFE, 0, 0, 0, 0], Array("not zstd".utf8)] {
                assertCompressionError(.corruptInput, "zstd \(bytes)") {
                    try CompressionCodecs.decompress(ByteBuffer(bytes: bytes), codec: .zstd, maximumSize: 1000)
                }
            }
        }
    }

    func testUnknownCodecInABatchIsAProtocolError() throws {
        var builder = RecordBatchBuilder(baseTimestamp: 0)
        builder.append(key: nil, value: ByteBuffer(string: "v"))
        var bytes = builder.build().buffer
        bytes.setInteger(Int16(5), at: 21)  // attributes: codec 5 does not exist
        let batch = try RecordBatch(validating: bytes, verifyCRC: false)
        XCTAssertThrowsError(try batch.decompressedRecords(maximumSize: 1000)) { error in
            XCTAssertEqual((error as? KafkaProtocolError)?.code, .corruptRecordBatch)
        }
    }

    // MARK: helpers

    /// Decompressing `bytes` either fails with a data error or returns at most `maximumSize` bytes.
    static func assertFailsOrStaysBounded(_ bytes: [UInt8], _ codec: CompressionCodec, maximumSize: Int = 1 << 16,
                                          file: StaticString = #filePath, line: UInt = #line) {
        do {
            let out = try CompressionCodecs.decompress(ByteBuffer(bytes: bytes), codec: codec, maximumSize: maximumSize)
            XCTAssertLessThanOrEqual(out.readableBytes, maximumSize, file: file, line: line)
        } catch let error as KafkaCompressionError {
            XCTAssert([.corruptInput, .outputTooLarge, .unsupportedFeature].contains(error.code), "\(error)", file: file, line: line)
        } catch {
            XCTFail("\(codec): unexpected \(error)", file: file, line: line)
        }
    }

    /// Offsets at which a xerial stream ends exactly after a chunk (or after the header).
    static func xerialChunkEnds(_ bytes: [UInt8]) -> Set<Int> {
        var ends: Set<Int> = [16]
        var position = 16
        while position + 4 <= bytes.count {
            let length = Int(bytes[position]) << 24 | Int(bytes[position + 1]) << 16 | Int(bytes[position + 2]) << 8 | Int(bytes[position + 3])
            position += 4 + length
            ends.insert(position)
        }
        return ends
    }
}
