import Foundation
@testable import KafkaCompression
import KafkaProtocol
import NIOCore
import XCTest

/// Interop with other Kafka clients' codecs, run through python3: kafka-python reads the
/// batches we compress, and the libraries clients use (liblz4 through `lz4.frame`, which is
/// what librdkafka calls; libzstd through `zstandard`; zlib; snappy) read our payloads and
/// write payloads with options our own compressor never uses, which we must read.
///
/// Skipped, saying why, when python3 or the packages (`scripts/setup-test-deps` installs
/// them) are missing.
final class PythonInteropTests: XCTestCase {
    private var directory: URL!

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("tributary-compression-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        if let directory { try? FileManager.default.removeItem(at: directory) }
    }

    // MARK: kafka-python reads our batches

    private struct DecodedBatch: Decodable {
        var path: String
        var codec: Int
        var crcValid: Bool
        var records: [DecodedRecord]
    }

    private struct DecodedRecord: Decodable, Equatable {
        var offset: Int64
        var key: String?
        var value: String?
        var headers: [[String?]]
    }

    func testKafkaPythonReadsBatchesWeCompressWithEveryCodec() throws {
        try requirePython(imports: "import kafka.record.default_records, kafka.codec\n"
            + "assert kafka.codec.has_gzip() and kafka.codec.has_snappy() and kafka.codec.has_lz4() and kafka.codec.has_zstd()")
        // Records with null keys and values, headers with empty and null values, and one
        // 200 KB value so payloads span several lz4 blocks and xerial chunks.
        var builder = RecordBatchBuilder(baseTimestamp: 1_700_000_000_000)
        var expected: [DecodedRecord] = []
        func append(_ key: [UInt8]?, _ value: [UInt8]?, _ headers: [(String, [UInt8]?)] = []) {
            builder.append(key: key.map { ByteBuffer(bytes: $0) }, value: value.map { ByteBuffer(bytes: $0) },
                           headers: headers.map { .init(key: $0.0, value: $0.1.map { ByteBuffer(bytes: $0) }) })
            expected.append(DecodedRecord(offset: Int64(expected.count), key: key.map(Self.hex), value: value.map(Self.hex),
                                          headers: headers.map { [$0.0, $0.1.map(Self.hex)] }))
        }
        append(Array("key-0".utf8), Array(String(repeating: "hello tributary ", count: 20).utf8), [("trace-id", Array("abc".utf8))])
        append(nil, Samples.text(200_000))
        append(Array("key-2".utf8), nil, [("empty", []), ("null", nil)])
        for i in 3..<100 { append(Array("key-\(i)".utf8), Array("{\"n\":\(i),\"station\":\"s\(i % 7)\"}".utf8)) }

        var paths: [String: CompressionCodec] = [:]
        for codec in testedCodecs() {
            let url = directory.appendingPathComponent("batch-\(codec).bin")
            try Data(try builder.build(compression: codec).buffer.bytes).write(to: url)
            paths[url.path] = codec
        }
        let output = try runPython("""
            import json, sys
            from kafka.record.default_records import DefaultRecordBatch
            hx = lambda b: None if b is None else bytes(b).hex()
            out = []
            for path in sys.argv[1:]:
                batch = DefaultRecordBatch(open(path, "rb").read())
                crc_valid = batch.validate_crc()  # before iterating, which decompresses
                records = [{"offset": r.offset, "key": hx(r.key), "value": hx(r.value),
                            "headers": [[k, hx(v)] for k, v in r.headers]} for r in batch]
                out.append({"path": path, "codec": batch.compression_type, "crc_valid": crc_valid, "records": records})
            print(json.dumps(out))
            """, arguments: Array(paths.keys))
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        let batches = try decoder.decode([DecodedBatch].self, from: Data(output.utf8))
        XCTAssertEqual(batches.count, paths.count)
        for batch in batches {
            let codec = try XCTUnwrap(paths[batch.path])
            XCTAssertEqual(batch.codec, Int(codec.rawValue), "\(codec)")
            XCTAssertTrue(batch.crcValid, "\(codec)")
            XCTAssertEqual(batch.records.count, expected.count, "\(codec)")
            for (got, want) in zip(batch.records, expected) {
                XCTAssertEqual(got, want, "\(codec) record \(want.offset)")
            }
        }
    }

    // MARK: librdkafka reads our batches

    func testLibrdkafkaConsumesBatchesWeCompressWithEveryCodec() throws {
        // librdkafka has its own snappy decoder and xerial parser, so the byte-level checks
        // above do not cover it: confluent-kafka fetches our batches from the fixture
        // capture tool's fake broker (scripts/capture-fixtures/capture.py), which serves
        // one batch of three records at offsets 0...2.
        try requirePython(imports: "import confluent_kafka, kafka")
        let capture = Self.repository.appendingPathComponent("scripts/capture-fixtures")
        guard FileManager.default.fileExists(atPath: capture.appendingPathComponent("capture.py").path) else {
            throw XCTSkip("scripts/capture-fixtures/capture.py is missing")
        }
        var builder = RecordBatchBuilder(baseTimestamp: 1_700_000_000_000)
        let values = [Array(String(repeating: "hello tributary ", count: 20).utf8), Samples.text(200_000), Samples.random(1000)]
        builder.append(key: ByteBuffer(string: "key-0"), value: ByteBuffer(bytes: values[0]), headers: [.init(key: "h", value: ByteBuffer(string: "v"))])
        builder.append(key: nil, value: ByteBuffer(bytes: values[1]))
        builder.append(key: ByteBuffer(string: "key-2"), value: ByteBuffer(bytes: values[2]))
        var paths: [String: CompressionCodec] = [:]
        for codec in testedCodecs() {
            let url = directory.appendingPathComponent("batch-\(codec).bin")
            try Data(try builder.build(compression: codec).buffer.bytes).write(to: url)
            paths[url.path] = codec
        }
        let output = try runPython("""
            import json, sys, time
            sys.path.insert(0, sys.argv[1])
            import capture
            from confluent_kafka import Consumer, TopicPartition
            capture.PROFILES["flexible"] = capture.flexible_profile()
            results = {}
            for path in sys.argv[2:]:
                broker = capture.FakeBroker("flexible")
                broker.fetch_records = open(path, "rb").read()
                broker.start()
                try:
                    consumer = Consumer({"bootstrap.servers": "%s:%d" % (capture.HOST, broker.port),
                                         "group.id": "tributary-compression", "enable.auto.commit": False,
                                         "broker.address.family": "v4", "check.crcs": True, "fetch.wait.max.ms": 100})
                    consumer.assign([TopicPartition(capture.TOPIC, 0, 0)])
                    got, deadline = [], time.time() + 30
                    while len(got) < 3 and time.time() < deadline:
                        m = consumer.poll(0.2)
                        if m is None:
                            continue
                        if m.error():
                            raise SystemExit("%s: %s" % (path, m.error()))
                        got.append({"offset": m.offset(), "key": None if m.key() is None else m.key().hex(),
                                    "value": None if m.value() is None else m.value().hex()})
                    consumer.close()
                finally:
                    broker.stop()
                results[path] = got
            print(json.dumps(results))
            """, arguments: [capture.path] + Array(paths.keys))
        struct Consumed: Decodable {
            var offset: Int64
            var key: String?
            var value: String?
        }
        let results = try JSONDecoder().decode([String: [Consumed]].self, from: Data(output.utf8))
        for (path, codec) in paths {
            let records = try XCTUnwrap(results[path], "\(codec)")
            XCTAssertEqual(records.map(\.offset), [0, 1, 2], "\(codec)")
            XCTAssertEqual(records.map(\.key), [Self.hex(Array("key-0".utf8)), nil, Self.hex(Array("key-2".utf8))], "\(codec)")
            XCTAssertEqual(records.map(\.value), values.map { Self.hex($0) }, "\(codec)")
        }
    }

    // MARK: reference libraries read our payloads

    func testReferenceLibrariesReadOurPayloads() throws {
        try requirePython(imports: "import gzip, snappy, lz4.frame, zstandard, kafka.codec")
        let original = Samples.text(150_000) + Samples.random(50_000) + Samples.text(100_000, seed: 9)
        // (python decoder, our payload): librdkafka reads snappy with its own raw-block
        // decoder and the xerial framing, lz4 with liblz4's LZ4F_decompress.
        var jobs: [(String, ByteBuffer)] = [
            ("snappy-raw", Snappy.compress(ByteBuffer(bytes: original), framing: .raw)),
            ("snappy-xerial", Snappy.compress(ByteBuffer(bytes: original), framing: .xerial)),
            ("lz4", LZ4.compress(ByteBuffer(bytes: original))),
        ]
        let codecs = testedCodecs()
        if codecs.contains(.gzip) { jobs.append(("gzip", try CompressionCodecs.compress(ByteBuffer(bytes: original), codec: .gzip))) }
        if codecs.contains(.zstd) { jobs.append(("zstd", try CompressionCodecs.compress(ByteBuffer(bytes: original), codec: .zstd))) }
        var arguments: [String] = []
        for (kind, payload) in jobs {
            let url = directory.appendingPathComponent("\(kind).in")
            try Data(payload.bytes).write(to: url)
            arguments += [kind, url.path, directory.appendingPathComponent("\(kind).out").path]
        }
        _ = try runPython("""
            import gzip, sys, snappy, lz4.frame, zstandard, kafka.codec
            decoders = {
                "snappy-raw": snappy.decompress,
                "snappy-xerial": kafka.codec.snappy_decode,
                "lz4": lz4.frame.decompress,
                "gzip": gzip.decompress,
                "zstd": lambda d: zstandard.ZstdDecompressor().decompressobj().decompress(d),
            }
            args = sys.argv[1:]
            for kind, src, dst in zip(args[0::3], args[1::3], args[2::3]):
                open(dst, "wb").write(decoders[kind](open(src, "rb").read()))
            """, arguments: arguments)
        for (kind, _) in jobs {
            let decoded = try Data(contentsOf: directory.appendingPathComponent("\(kind).out"))
            XCTAssertEqual(decoded.count, original.count, kind)
            XCTAssert(Array(decoded) == original, "\(kind): python decoded different bytes")
        }
    }

    // MARK: we read what the reference libraries write

    func testWeReadEveryVariantTheReferenceLibrariesWrite() throws {
        try requirePython(imports: "import gzip, snappy, lz4.frame, zstandard, kafka.codec")
        _ = try runPython("""
            import gzip, os, random, sys, snappy, lz4.frame as lz4f, zstandard, kafka.codec
            out = sys.argv[1]
            rng = random.Random(5)
            words = [b"station", b"temperature", b"{\\"id\\":", b"}", b" ", b"tributary", b"\\n"]
            text = b"".join(rng.choice(words) + str(rng.randrange(1000)).encode() for _ in range(40000))
            original = text[:200000] + bytes(rng.randrange(256) for _ in range(30000)) + text[:100000]
            open(os.path.join(out, "original"), "wb").write(original)
            half = len(original) // 2
            def streamed_zstd(level):
                c = zstandard.ZstdCompressor(level=level).compressobj()
                return c.compress(original) + c.flush()
            variants = {
                "gzip-level9": gzip.compress(original, 9),
                "gzip-two-members": gzip.compress(original[:half]) + gzip.compress(original[half:]),
                "snappy-raw": snappy.compress(original),
                "snappy-xerial": kafka.codec.snappy_encode(original, xerial_compatible=True),
                "snappy-xerial-small-chunks": kafka.codec.snappy_encode(original, xerial_compatible=True, xerial_blocksize=1000),
                "lz4-kafka-python": kafka.codec.lz4_encode(original),
                "lz4-linked-blocks": lz4f.compress(original, block_linked=True),
                "lz4-block-checksums": lz4f.compress(original, block_checksum=True, block_linked=False),
                "lz4-content-checksum": lz4f.compress(original, content_checksum=True),
                "lz4-no-size-4mb-blocks-hc": lz4f.compress(original, store_size=False, block_size=lz4f.BLOCKSIZE_MAX4MB, compression_level=12),
                "lz4-256k-fast": lz4f.compress(original, block_size=lz4f.BLOCKSIZE_MAX256KB, compression_level=-5),
                "lz4-two-frames": lz4f.compress(original[:half]) + lz4f.compress(original[half:]),
                "zstd-kafka-python": kafka.codec.zstd_encode(original),
                "zstd-no-content-size": zstandard.ZstdCompressor(write_content_size=False).compress(original),
                "zstd-checksum-level19": zstandard.ZstdCompressor(level=19, write_checksum=True).compress(original),
                "zstd-streamed": streamed_zstd(3),
                "zstd-two-frames": zstandard.ZstdCompressor().compress(original[:half]) + zstandard.ZstdCompressor().compress(original[half:]),
            }
            for name, data in variants.items():
                open(os.path.join(out, name + ".bin"), "wb").write(data)
            """, arguments: [directory.path])
        let original = try Data(contentsOf: directory.appendingPathComponent("original"))
        let names = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasSuffix(".bin") }.sorted()
        XCTAssertEqual(names.count, 17)
        let codecs = testedCodecs()
        for name in names {
            let codec: CompressionCodec = name.hasPrefix("gzip") ? .gzip : name.hasPrefix("snappy") ? .snappy : name.hasPrefix("lz4") ? .lz4 : .zstd
            guard codecs.contains(codec) else { continue }
            let payload = ByteBuffer(bytes: try Data(contentsOf: directory.appendingPathComponent(name)))
            let decoded = try CompressionCodecs.decompress(payload, codec: codec, maximumSize: original.count)
            XCTAssertEqual(decoded.readableBytes, original.count, name)
            XCTAssert(decoded.bytes == Array(original), "\(name): decoded different bytes")
            assertCompressionError(.outputTooLarge, name) {
                try CompressionCodecs.decompress(payload, codec: codec, maximumSize: original.count - 1)
            }
        }
    }

    // MARK: running python

    /// Skips the test unless python3 runs and `imports` succeeds.
    private func requirePython(imports: String) throws {
        let result: (status: Int32, stdout: String, stderr: String)
        do {
            result = try Self.run(["python3", "-c", imports])
        } catch {
            throw XCTSkip("python3 cannot be started (\(error)); run scripts/setup-test-deps")
        }
        if result.status == 127 {
            throw XCTSkip("python3 is not on PATH; run scripts/setup-test-deps")
        }
        if result.status != 0 {
            let reason = result.stderr.split(separator: "\n").last.map(String.init) ?? "exit status \(result.status)"
            throw XCTSkip("python3 lacks the codec packages (\(reason)); run scripts/setup-test-deps")
        }
    }

    /// Runs a python3 script, failing the test with its stderr when it does not exit 0.
    private func runPython(_ script: String, arguments: [String]) throws -> String {
        let result = try Self.run(["python3", "-c", script] + arguments)
        guard result.status == 0 else {
            throw PythonFailed(status: result.status, stderr: result.stderr)
        }
        return result.stdout
    }

    /// Runs a command with its output in files (no pipe to fill up and block it) and a
    /// hard timeout, after which that process, and only it, is terminated.
    private static func run(_ command: [String], timeout: TimeInterval = 120) throws -> (status: Int32, stdout: String, stderr: String) {
        let outURL = FileManager.default.temporaryDirectory.appendingPathComponent("tributary-python-\(UUID().uuidString).out")
        let errURL = outURL.appendingPathExtension("err")
        _ = FileManager.default.createFile(atPath: outURL.path, contents: nil)
        _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
        defer {
            try? FileManager.default.removeItem(at: outURL)
            try? FileManager.default.removeItem(at: errURL)
        }
        let out = try FileHandle(forWritingTo: outURL)
        let err = try FileHandle(forWritingTo: errURL)
        defer {
            try? out.close()
            try? err.close()
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = command
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning {
            if Date() > deadline {
                process.terminate()
                process.waitUntilExit()
                throw XCTSkip("python3 did not finish within \(Int(timeout)) s (pid \(process.processIdentifier) terminated)")
            }
            Thread.sleep(forTimeInterval: 0.02)
        }
        let stdout = String(decoding: try Data(contentsOf: outURL), as: UTF8.self)
        let stderr = String(decoding: try Data(contentsOf: errURL), as: UTF8.self)
        return (process.terminationStatus, stdout, stderr)
    }

    struct PythonFailed: Error, CustomStringConvertible {
        var status: Int32
        var stderr: String
        var description: String { "python3 exited with status \(status):\n\(stderr)" }
    }

    static let repository = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static func hex(_ bytes: [UInt8]) -> String {
        bytes.map { String(format: "%02x", $0) }.joined()
    }
}
