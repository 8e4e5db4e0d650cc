import Foundation
import KafkaProtocol
import NIOCore
import XCTest

/// Bounded, deterministic fuzzing of everything that reads bytes from a peer: request
/// bodies of every API at every version, request headers, record batches and records, and
/// the frame decoder. Inputs are random buffers and mutations (flips, inserts, deletes,
/// truncations, hostile lengths) of valid encodings; each decoder must return a value or
/// throw, never trap. Seeds are fixed, so a failure names an input that reproduces.
///
/// Iteration counts keep the whole file to a few seconds in a debug build; to fuzz longer
/// locally, set `KAFKA_PROTOCOL_FUZZ_SCALE` to a multiplier (e.g. 50).
final class FuzzTests: XCTestCase {
    private static let scale = max(1, Int(ProcessInfo.processInfo.environment["KAFKA_PROTOCOL_FUZZ_SCALE"] ?? "") ?? 1)

    private func scaled(_ iterations: Int) -> Int { iterations * Self.scale }

    // MARK: - Request bodies

    func testRandomBytesNeverCrashAnyRequestDecoder() throws {
        var rng = SplitMix64(seed: 1)
        var outcomes = Outcomes()
        for key in APIKey.allCases {
            for version in key.validVersions {
                for _ in 0..<scaled(96) {
                    outcomes.record(try decodeRequest(key, version, randomBytes(&rng, maxLength: 256)))
                }
            }
        }
        XCTAssertGreaterThan(outcomes.thrown, 0)
        XCTAssertGreaterThan(outcomes.decoded, 0, "random bytes never decoded: the fuzzing is not reaching the decoders")
    }

    func testMutatedSampleRequestsNeverCrashAnyRequestDecoder() throws {
        var rng = SplitMix64(seed: 2)
        var outcomes = Outcomes()
        let samples = Self.requestSamples()
        XCTAssertGreaterThan(samples.count, 200)
        for sample in samples {
            outcomes.record(try decodeRequest(sample.key, sample.version, sample.bytes))  // the unmutated one decodes
            for _ in 0..<scaled(200) {
                outcomes.record(try decodeRequest(sample.key, sample.version, mutate(sample.bytes, &rng)))
            }
        }
        XCTAssertGreaterThan(outcomes.decoded, samples.count)
        XCTAssertGreaterThan(outcomes.thrown, samples.count)
    }

    func testMutatedCapturedRequestsNeverCrashTheHeaderOrBodyDecoders() throws {
        var rng = SplitMix64(seed: 3)
        var outcomes = Outcomes()
        let frames = try Fixture.names(kind: "request").map { try Fixture.bytes($0) }
        for frame in frames {
            for _ in 0..<scaled(500) {
                outcomes.record(try decodeFrame(mutate(frame, &rng)))
            }
        }
        XCTAssertGreaterThan(outcomes.decoded, frames.count)
        XCTAssertGreaterThan(outcomes.thrown, frames.count)
    }

    func testRandomFramesNeverCrashTheHeaderDecoder() throws {
        var rng = SplitMix64(seed: 4)
        var outcomes = Outcomes()
        for _ in 0..<scaled(10_000) {
            var bytes = randomBytes(&rng, maxLength: 96)
            // Half the time start with a real API key and version so the body decoders run.
            if bytes.count >= 4, Bool.random(using: &rng) {
                let key = APIKey.allCases.randomElement(using: &rng)!
                let version = Int16.random(in: key.validVersions, using: &rng)
                bytes[0] = UInt8(truncatingIfNeeded: key.rawValue >> 8)
                bytes[1] = UInt8(truncatingIfNeeded: key.rawValue)
                bytes[2] = UInt8(truncatingIfNeeded: version >> 8)
                bytes[3] = UInt8(truncatingIfNeeded: version)
            }
            outcomes.record(try decodeFrame(bytes))
        }
        XCTAssertGreaterThan(outcomes.thrown, 0)
        XCTAssertGreaterThan(outcomes.decoded, 0)
    }

    // MARK: - Record batches

    func testMutatedBatchesNeverCrashTheBatchReaderOrRecordIterator() throws {
        var rng = SplitMix64(seed: 5)
        var parsed = 0
        let batches = try Fixture.names(kind: "batch").map { try Fixture.bytes($0) }
        for batch in batches {
            for i in 0..<scaled(1000) {
                let mutated = mutate(batch, &rng)
                // Skipping the CRC half the time lets mutations reach the record parser.
                if try exerciseBatches(mutated, verifyCRC: i % 2 == 0) { parsed += 1 }
            }
        }
        XCTAssertGreaterThan(parsed, batches.count * 10)
    }

    func testRandomBytesNeverCrashTheBatchReaderOrRecordIterator() throws {
        var rng = SplitMix64(seed: 6)
        for _ in 0..<scaled(5000) {
            var bytes = randomBytes(&rng, maxLength: 256)
            // Give most inputs a plausible batch frame so the checks past it are reached.
            if bytes.count >= RecordBatch.headerSize, Int.random(in: 0..<4, using: &rng) != 0 {
                var buffer = ByteBuffer(bytes: bytes)
                buffer.setInteger(Int32(bytes.count - RecordBatch.logOverhead), at: 8)
                buffer.setInteger(2 as Int8, at: 16)
                buffer.setInteger(Int16.random(in: 0...7, using: &rng), at: 21)
                bytes = Array(buffer.readableBytesView)
            }
            _ = try exerciseBatches(bytes, verifyCRC: false)

            // The iterator alone, as used on a decompressed payload, with any count.
            let count = [0, 1, 3, 1000, Int(Int32.max), Int.max].randomElement(using: &rng)!
            var iterator = RecordIterator(payload: ByteBuffer(bytes: randomBytes(&rng, maxLength: 128)), count: count)
            do { _ = try iterator.all() } catch { try assertKafkaProtocolError(error) }
        }
    }

    // MARK: - Frame decoder

    func testFrameDecoderYieldsTheSameFramesFedByteByByteOrInChunksAsAllAtOnce() throws {
        var stream = ByteBuffer()
        var expected: [ByteBuffer] = []
        for name in try Fixture.names(kind: "request") {
            let frame = try Fixture.bytes(name)
            stream.writeInteger(Int32(frame.count))
            stream.writeBytes(frame)
            expected.append(ByteBuffer(bytes: frame))
        }
        stream.writeInteger(0 as Int32)  // an empty frame is a frame
        expected.append(ByteBuffer())
        let bytes = Array(stream.readableBytesView)

        XCTAssertEqual(try decodeFrames(bytes, chunkSizes: [bytes.count]), expected, "all at once")
        XCTAssertEqual(try decodeFrames(bytes, chunkSizes: [1]), expected, "byte by byte")
        var rng = SplitMix64(seed: 7)
        for _ in 0..<20 {
            let chunks = (0..<16).map { _ in Int.random(in: 1...700, using: &rng) }
            XCTAssertEqual(try decodeFrames(bytes, chunkSizes: chunks), expected, "chunks \(chunks)")
        }
    }

    func testFrameDecoderRefusesAnOversizedSizeBeforeTheBodyArrives() throws {
        var decoder = KafkaFrameDecoder(maximumFrameSize: 1024)
        var buffer = ByteBuffer()
        buffer.writeBytes([0x00, 0x00, 0x04])
        XCTAssertNil(try decoder.decode(buffer: &buffer), "three bytes of a size are not yet a size")
        buffer.writeInteger(0x01 as UInt8)  // size 1025, and not one byte of the body
        XCTAssertThrowsError(try decoder.decode(buffer: &buffer)) { error in
            let tooLarge = error as? KafkaFrameDecoder.FrameTooLarge
            XCTAssertEqual(tooLarge?.size, 1025)
            XCTAssertEqual(tooLarge?.maximum, 1024)
        }

        for size in [Int32(-1), Int32.min, Int32.max] {
            var decoder = KafkaFrameDecoder(maximumFrameSize: 1024)
            var buffer = ByteBuffer(integer: size)
            XCTAssertThrowsError(try decoder.decode(buffer: &buffer), "size \(size)") { error in
                XCTAssertEqual((error as? KafkaFrameDecoder.FrameTooLarge)?.size, size)
            }
        }

        // Exactly the maximum is allowed: it waits for the body, then yields it whole.
        decoder = KafkaFrameDecoder(maximumFrameSize: 1024)
        buffer = ByteBuffer(integer: Int32(1024))
        XCTAssertNil(try decoder.decode(buffer: &buffer))
        buffer.writeBytes([UInt8](repeating: 7, count: 1024))
        XCTAssertEqual(try decoder.decode(buffer: &buffer)?.readableBytes, 1024)
        XCTAssertEqual(buffer.readableBytes, 0)
        XCTAssertNil(try decoder.decodeLast(buffer: &buffer, seenEOF: true))
    }

    func testRandomStreamsNeverCrashTheFrameDecoder() throws {
        var rng = SplitMix64(seed: 8)
        for _ in 0..<scaled(2000) {
            // Mostly small sizes so that some frames complete, with the odd hostile one.
            var bytes: [UInt8] = []
            for _ in 0..<Int.random(in: 1...6, using: &rng) {
                let size = Bool.random(using: &rng) ? Int32.random(in: 0...40, using: &rng) : Int32.random(in: Int32.min...Int32.max, using: &rng)
                withUnsafeBytes(of: size.bigEndian) { bytes += $0 }
                bytes += randomBytes(&rng, maxLength: 48)
            }
            let whole: Result<[ByteBuffer], Error> = Result { try decodeFrames(bytes, chunkSizes: [bytes.count], maximumFrameSize: 64) }
            let byteByByte: Result<[ByteBuffer], Error> = Result { try decodeFrames(bytes, chunkSizes: [1], maximumFrameSize: 64) }
            switch (whole, byteByByte) {
            case (.success(let a), .success(let b)):
                XCTAssertEqual(a, b)
            case (.failure(let a), .failure(let b)):
                XCTAssertTrue(a is KafkaFrameDecoder.FrameTooLarge, "\(a)")
                XCTAssertTrue(b is KafkaFrameDecoder.FrameTooLarge, "\(b)")
            default:
                XCTFail("fed whole: \(whole), fed byte by byte: \(byteByByte)")
            }
        }
    }

    // MARK: - Drivers

    private struct Outcomes {
        var decoded = 0
        var thrown = 0
        mutating func record(_ decoded: Bool) {
            if decoded { self.decoded += 1 } else { self.thrown += 1 }
        }
    }

    /// Decodes a request body; returns whether it decoded. A decoded request must encode,
    /// and its encoding must decode and encode to the same bytes again.
    private func decodeRequest(_ key: APIKey, _ version: Int16, _ bytes: [UInt8], file: StaticString = #filePath, line: UInt = #line) throws -> Bool {
        var buffer = ByteBuffer(bytes: bytes)
        let request: AnyKafkaRequest
        do {
            request = try AnyKafkaRequest(apiKey: key, version: version, from: &buffer)
        } catch {
            try assertKafkaProtocolError(error, file: file, line: line)
            return false
        }
        func input() -> String { "\(key.name) v\(version) \(bytes)" }
        var first = ByteBuffer()
        do {
            try request.message.encode(into: &first, version: version)
        } catch {
            XCTFail("\(input()): decoded but does not encode: \(error)", file: file, line: line)
            return true
        }
        var reread = first
        let again = try AnyKafkaRequest(apiKey: key, version: version, from: &reread)
        XCTAssertEqual(reread.readableBytes, 0, "\(input()): re-encoding leaves bytes unread", file: file, line: line)
        var second = ByteBuffer()
        try again.message.encode(into: &second, version: version)
        XCTAssertEqual(second, first, "\(input()): encoding is not stable", file: file, line: line)
        return true
    }

    /// Parses a request frame's header and, for a known API and version, its body.
    private func decodeFrame(_ bytes: [UInt8], file: StaticString = #filePath, line: UInt = #line) throws -> Bool {
        let frame: KafkaRequestFrame
        do {
            frame = try KafkaRequestFrame(frame: ByteBuffer(bytes: bytes))
        } catch {
            try assertKafkaProtocolError(error, file: file, line: line)
            return false
        }
        guard let key = frame.header.apiKey, key.validVersions.contains(frame.header.requestApiVersion) else { return true }
        return try decodeRequest(key, frame.header.requestApiVersion, Array(frame.body.readableBytesView), file: file, line: line)
    }

    /// Reads every batch in `bytes`, touching every header property and every record;
    /// returns whether at least one batch parsed.
    private func exerciseBatches(_ bytes: [UInt8], verifyCRC: Bool) throws -> Bool {
        var reader = RecordBatchReader(ByteBuffer(bytes: bytes), verifyCRC: verifyCRC)
        var parsed = false
        do {
            while let batch = try reader.next() {
                parsed = true
                _ = (batch.baseOffset, batch.lastOffset, batch.nextOffset, batch.lastSequence, batch.sizeInBytes)
                _ = (batch.partitionLeaderEpoch, batch.crc, batch.attributes, batch.baseTimestamp, batch.maxTimestamp)
                _ = (batch.producerId, batch.producerEpoch, batch.baseSequence, batch.recordCount)
                _ = (batch.compression, batch.isControl, batch.isTransactional, batch.isLogAppendTime, batch.hasDeleteHorizon)
                _ = (batch.computeCRC(), batch.recordsPayload)
                do {
                    var records = try batch.records()
                    while let record = try records.next() {
                        _ = record.headers.map(\.key.utf8.count)
                    }
                } catch {
                    try assertKafkaProtocolError(error)
                }
            }
        } catch {
            try assertKafkaProtocolError(error)
        }
        return parsed
    }

    /// Feeds `bytes` to a frame decoder in chunks of the given sizes (cycled), as a channel
    /// would, decoding until it asks for more after each chunk.
    private func decodeFrames(_ bytes: [UInt8], chunkSizes: [Int], maximumFrameSize: Int = 1 << 20) throws -> [ByteBuffer] {
        var decoder = KafkaFrameDecoder(maximumFrameSize: maximumFrameSize)
        var buffer = ByteBuffer()
        var frames: [ByteBuffer] = []
        var offset = 0
        var chunk = 0
        while offset < bytes.count {
            let size = min(chunkSizes[chunk % chunkSizes.count], bytes.count - offset)
            buffer.writeBytes(bytes[offset..<(offset + size)])
            offset += size
            chunk += 1
            while let frame = try decoder.decode(buffer: &buffer) { frames.append(frame) }
        }
        while let frame = try decoder.decodeLast(buffer: &buffer, seenEOF: true) { frames.append(frame) }
        return frames
    }

    private func assertKafkaProtocolError(_ error: Error, file: StaticString = #filePath, line: UInt = #line) throws {
        guard error is KafkaProtocolError else {
            XCTFail("\(error) (\(type(of: error))) is not a KafkaProtocolError", file: file, line: line)
            return
        }
    }

    // MARK: - Inputs

    /// Every request type's generated sample at each of its versions, encoded.
    private static func requestSamples() -> [(key: APIKey, version: Int16, bytes: [UInt8])] {
        allMessageSamples.flatMap { encodedSamples($0) }
    }

    private static func encodedSamples<M: SampledMessage>(_ type: M.Type) -> [(key: APIKey, version: Int16, bytes: [UInt8])] {
        guard let request = M.self as? any KafkaRequest.Type else { return [] }
        return M.validVersions.map { version in
            var buffer = ByteBuffer()
            try! M.sample(version).encode(into: &buffer, version: version)  // the round-trip tests prove these encode
            return (request.apiKey, version, Array(buffer.readableBytesView))
        }
    }

    /// Random bytes, half the time drawn from the values that matter most to a decoder
    /// (null and empty lengths, varint continuation, sign bits).
    private func randomBytes(_ rng: inout SplitMix64, maxLength: Int) -> [UInt8] {
        let length = Int.random(in: 0...maxLength, using: &rng)
        if Bool.random(using: &rng) {
            return (0..<length).map { _ in UInt8.random(in: 0...255, using: &rng) }
        }
        return (0..<length).map { _ in Self.interestingBytes.randomElement(using: &rng)! }
    }

    private static let interestingBytes: [UInt8] = [0x00, 0x00, 0x00, 0x01, 0x02, 0x03, 0x7F, 0x80, 0xFE, 0xFF]
    private static let interestingInt32s: [Int32] = [0, 1, -1, 2, 0x7F, 0x80, 0xFF, 0x100, 0x7FFF, 0xFFFF, Int32.max, Int32.min, -2]

    /// One to four random edits of `bytes`.
    private func mutate(_ bytes: [UInt8], _ rng: inout SplitMix64) -> [UInt8] {
        var b = bytes
        for _ in 0..<Int.random(in: 1...4, using: &rng) {
            let at = b.isEmpty ? 0 : Int.random(in: 0..<b.count, using: &rng)
            switch Int.random(in: 0..<8, using: &rng) {
            case 0 where !b.isEmpty:  // flip one bit
                b[at] ^= 1 << UInt8.random(in: 0...7, using: &rng)
            case 1 where !b.isEmpty:  // an interesting byte
                b[at] = Self.interestingBytes.randomElement(using: &rng)!
            case 2:  // insert bytes
                b.insert(contentsOf: randomBytes(&rng, maxLength: 8), at: at)
            case 3 where !b.isEmpty:  // delete bytes
                b.removeSubrange(at..<min(b.count, at + Int.random(in: 1...8, using: &rng)))
            case 4:  // truncate
                b.removeSubrange(at..<b.count)
            case 5 where b.count >= 4:  // a hostile length or count, int32 or int16
                let value = Self.interestingInt32s.randomElement(using: &rng)!
                let start = Int.random(in: 0...(b.count - 4), using: &rng)
                if Bool.random(using: &rng) {
                    withUnsafeBytes(of: value.bigEndian) { b.replaceSubrange(start..<(start + 4), with: $0) }
                } else {
                    withUnsafeBytes(of: Int16(truncatingIfNeeded: value).bigEndian) { b.replaceSubrange(start..<(start + 2), with: $0) }
                }
            case 6 where !b.isEmpty:  // duplicate a range
                let end = min(b.count, at + Int.random(in: 1...16, using: &rng))
                b.insert(contentsOf: Array(b[at..<end]), at: end)
            case 7 where !b.isEmpty:  // a varint that continues
                b[at] |= 0x80
            default:
                b.append(UInt8.random(in: 0...255, using: &rng))
            }
        }
        return b
    }
}
