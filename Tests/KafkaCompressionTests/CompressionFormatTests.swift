@testable import KafkaCompression
import KafkaProtocol
import NIOCore
import XCTest

/// The wire formats byte by byte: hand-assembled snappy and lz4 data decodes to what the
/// format specifications say, and what we write has the framing other clients expect.
final class CompressionFormatTests: XCTestCase {
    // MARK: snappy

    func testSnappyBlockWithEveryElementKindDecodes() throws {
        let block: [UInt8] = [
            0x4E,                       // uncompressed length varint: 78
            0x0C, 0x61, 0x62, 0x63, 0x64, // literal, tag (4-1)<<2: "abcd"
            0x11, 0x04,                 // copy, 1-byte offset: length 4+4=8, offset 4 (overlapping) -> "abcdabcd"
            0x0A, 0x0C, 0x00,           // copy, 2-byte offset: length 2+1=3, offset 12 -> "abc"
            0x07, 0x02, 0x00, 0x00, 0x00, // copy, 4-byte offset: length 1+1=2, offset 2 -> "bc"
            0xF0, 0x3C,                 // literal, tag 60<<2 then 1 length byte: 60+1=61 bytes
        ] + [UInt8](repeating: 0x7A, count: 61)  // "z" * 61
        let out = try CompressionCodecs.decompress(ByteBuffer(bytes: block), codec: .snappy, maximumSize: 78)
        XCTAssertEqual(String(buffer: out), "abcdabcdabcdabcbc" + String(repeating: "z", count: 61))
    }

    func testSnappyXerialFramingIsWhatSnappyJavaWrites() throws {
        let input = Samples.text(80_000)
        let framed = try CompressionCodecs.compress(ByteBuffer(bytes: input), codec: .snappy)
        var reader = framed
        XCTAssertEqual(reader.readBytes(length: 8), [0x82, 0x53, 0x4E, 0x41, 0x50, 0x50, 0x59, 0x00])  // \x82SNAPPY\0
        XCTAssertEqual(reader.readInteger(as: Int32.self), 1)  // version, big-endian
        XCTAssertEqual(reader.readInteger(as: Int32.self), 1)  // minimum compatible version
        // Chunks of 32 KiB of input: 32768 + 32768 + 14464, each [int32 length][raw block].
        var chunkSizes: [Int] = []
        while reader.readableBytes > 0 {
            let length = try XCTUnwrap(reader.readInteger(as: Int32.self))
            var block = try XCTUnwrap(reader.readSlice(length: Int(length)))
            let raw = try CompressionCodecs.decompress(block, codec: .snappy, maximumSize: 1 << 20)
            chunkSizes.append(raw.readableBytes)
            XCTAssertNotEqual(block.readInteger(as: UInt8.self), 0x82)
        }
        XCTAssertEqual(chunkSizes, [32768, 32768, 80_000 - 65536])
    }

    func testSnappyEmptyInputStillWritesOneChunkAfterTheHeader() throws {
        // kafka-python recognises xerial only when bytes follow the 16-byte header.
        let framed = try CompressionCodecs.compress(ByteBuffer(), codec: .snappy)
        XCTAssertEqual(framed.bytes.suffix(5), [0, 0, 0, 1, 0x00])  // length 1, block: varint 0
        XCTAssertEqual(framed.readableBytes, 21)
    }

    func testSnappyIgnoresXerialVersionFieldsLikeOtherClients() throws {
        // Some producers write the version ints little-endian; readers ignore them.
        var framed = try CompressionCodecs.compress(ByteBuffer(bytes: Samples.text(1000)), codec: .snappy)
        framed.setInteger(Int32(1).byteSwapped, at: framed.readerIndex + 8)
        framed.setInteger(Int32(1).byteSwapped, at: framed.readerIndex + 12)
        XCTAssertEqual(try CompressionCodecs.decompress(framed, codec: .snappy, maximumSize: 1000).bytes, Samples.text(1000))
    }

    // MARK: lz4

    static let lz4Header: [UInt8] = [
        0x04, 0x22, 0x4D, 0x18,  // magic 0x184D2204, little-endian
        0x60,                    // FLG: version 01, independent blocks
        0x40,                    // BD: 64 KiB blocks
        0x82,                    // HC: (xxh32([0x60, 0x40]) >> 8) & 0xFF
    ]

    func testLZ4FrameHeaderIsTheOneLibrdkafkaWrites() throws {
        let frame = try CompressionCodecs.compress(ByteBuffer(bytes: Samples.text(1000)), codec: .lz4)
        XCTAssertEqual(Array(frame.bytes.prefix(7)), Self.lz4Header)
        XCTAssertEqual(Array(frame.bytes.suffix(4)), [0, 0, 0, 0], "end mark")
        // The same seven bytes open the captured confluent-kafka batch's payload.
        let captured = try Data(contentsOf: ClientFixtures.directory.appendingPathComponent("batch-confluent-kafka-lz4.bin"))
        XCTAssertEqual(Array(captured[61..<68]), Self.lz4Header)
    }

    func testLZ4HandMadeFrameDecodes() throws {
        let frame = Self.lz4Header + [
            0x0D, 0x00, 0x00, 0x00,       // block size 13, compressed
            0x46,                         // token: 4 literals, match length 6+4=10
            0x61, 0x62, 0x63, 0x64,       // "abcd"
            0x04, 0x00,                   // offset 4 (overlapping) -> "abcdabcdab"
            0x50,                         // token: 5 literals, no match (last sequence)
            0x31, 0x32, 0x33, 0x34, 0x35, // "12345"
            0x05, 0x00, 0x00, 0x80,       // block size 5, high bit: stored uncompressed
            0x68, 0x65, 0x6C, 0x6C, 0x6F, // "hello"
            0x00, 0x00, 0x00, 0x00,       // end mark
        ]
        let out = try CompressionCodecs.decompress(ByteBuffer(bytes: frame), codec: .lz4, maximumSize: 100)
        XCTAssertEqual(String(buffer: out), "abcdabcdabcdab12345hello")
    }

    func testLZ4IncompressibleBlocksAreStored() throws {
        let random = Samples.random(100_000)
        let frame = try CompressionCodecs.compress(ByteBuffer(bytes: random), codec: .lz4)
        var reader = frame
        reader.moveReaderIndex(forwardBy: 7)
        XCTAssertEqual(reader.readInteger(endianness: .little, as: UInt32.self), 0x8000_0000 | 65536)
        XCTAssertEqual(reader.readBytes(length: 65536), Array(random.prefix(65536)))
        XCTAssertEqual(reader.readInteger(endianness: .little, as: UInt32.self), 0x8000_0000 | UInt32(100_000 - 65536))
    }

    func testXXHash32MatchesTheReferenceImplementation() {
        // Values from liblz4's content checksums (python lz4.frame, content_checksum=True).
        XCTAssertEqual(XXHash32.hash([]), 0x02CC_5D05)
        XCTAssertEqual(XXHash32.hash(Array("a".utf8)), 0x550D_7456)
        XCTAssertEqual(XXHash32.hash(Array("abc".utf8)), 0x32D1_53FF)
        XCTAssertEqual(XXHash32.hash(Array("0123456789abcdef".utf8)), 0xC2C4_5B69)
        XCTAssertEqual(XXHash32.hash(Array("Nobody inspects the spammish repetition".utf8)), 0xE229_3B2F)
        XCTAssertEqual(XXHash32.hash(Array((0..<4).flatMap { _ in 0...255 as ClosedRange<UInt8> }) + Array("xyz".utf8)), 0x7202_BD2B)
    }

    // MARK: gzip and zstd

    func testGzipWritesAGzipStreamNotAZlibOne() throws {
        guard testedCodecs().contains(.gzip) else { throw XCTSkip("zlib unavailable") }
        let out = try CompressionCodecs.compress(ByteBuffer(string: "hello"), codec: .gzip)
        XCTAssertEqual(Array(out.bytes.prefix(3)), [0x1F, 0x8B, 0x08])  // gzip magic, deflate
        // Trailer: CRC-32 of the input, then its length, little-endian.
        XCTAssertEqual(Array(out.bytes.suffix(4)), [5, 0, 0, 0])
        XCTAssertEqual(Array(out.bytes.suffix(8).prefix(4)), [0x86, 0xA6, 0x10, 0x36])  // crc32("hello") = 0x3610A686
    }

    func testGzipReadsConcatenatedMembersAndIgnoresTrailingBytesLikeJava() throws {
        guard testedCodecs().contains(.gzip) else { throw XCTSkip("zlib unavailable") }
        var both = try CompressionCodecs.compress(ByteBuffer(string: "first "), codec: .gzip)
        var second = try CompressionCodecs.compress(ByteBuffer(string: "second"), codec: .gzip)
        both.writeBuffer(&second)
        XCTAssertEqual(String(buffer: try CompressionCodecs.decompress(both, codec: .gzip, maximumSize: 100)), "first second")
        both.writeBytes([0, 0, 0])
        XCTAssertEqual(String(buffer: try CompressionCodecs.decompress(both, codec: .gzip, maximumSize: 100)), "first second")
    }

    func testZstdWritesAFrameAndReadsConcatenatedFrames() throws {
        guard testedCodecs().contains(.zstd) else { throw XCTSkip("libzstd unavailable") }
        var both = try CompressionCodecs.compress(ByteBuffer(string: "first "), codec: .zstd)
        XCTAssertEqual(Array(both.bytes.prefix(4)), [0x28, 0xB5, 0x2F, 0xFD])  // zstd magic 0xFD2FB528
        var second = try CompressionCodecs.compress(ByteBuffer(string: "second"), codec: .zstd)
        both.writeBuffer(&second)
        XCTAssertEqual(String(buffer: try CompressionCodecs.decompress(both, codec: .zstd, maximumSize: 100)), "first second")
    }

    func testEveryCodecIsAvailableOnThisMachine() {
        // Debian's base system ships libz and libzstd; if this fails, the codec tests above
        // silently narrowed to the Swift codecs.
        for codec in CompressionCodec.allCases {
            XCTAssertNil(CompressionCodecs.availabilityError(codec), "\(codec)")
        }
    }
}
