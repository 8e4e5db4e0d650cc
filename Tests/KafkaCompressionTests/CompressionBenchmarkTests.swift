import Foundation
import KafkaCompression
import KafkaProtocol
import NIOCore
import XCTest

/// Throughput of every codec on record-like text, printed and never asserted (timings
/// are no test of correctness). Meaningful only in release:
///
///     swift test -c release --filter CompressionBenchmark
///
/// `TRIBUTARY_COMPRESSION_BENCHMARK_MB` sets the input size (default 4).
final class CompressionBenchmarkTests: XCTestCase {
    func testBenchmarkCompressionThroughputPrintsMegabytesPerSecond() throws {
        let megabytes = ProcessInfo.processInfo.environment["TRIBUTARY_COMPRESSION_BENCHMARK_MB"].flatMap(Int.init) ?? 4
        let inputs = [
            ("text", ByteBuffer(bytes: Samples.text(megabytes << 20))),
            ("random", ByteBuffer(bytes: Samples.random(megabytes << 20))),
        ]
        for (name, input) in inputs {
            for codec in testedCodecs() {
                var compressed = ByteBuffer()
                let compressSeconds = try Self.best(of: 3) { compressed = try CompressionCodecs.compress(input, codec: codec) }
                let decompressSeconds = try Self.best(of: 3) {
                    _ = try CompressionCodecs.decompress(compressed, codec: codec, maximumSize: input.readableBytes)
                }
                let mb = Double(input.readableBytes) / 1_000_000
                let label = "\(name) \(codec)".padding(toLength: 13, withPad: " ", startingAt: 0)
                print(String(format: "compression benchmark %@ ratio %5.2f  compress %7.1f MB/s  decompress %8.1f MB/s",
                             label, Double(input.readableBytes) / Double(compressed.readableBytes),
                             mb / compressSeconds, mb / decompressSeconds))
            }
        }
    }

    private static func best(of runs: Int, _ body: () throws -> Void) throws -> Double {
        var best = Double.infinity
        for _ in 0..<runs {
            let start = DispatchTime.now().uptimeNanoseconds
            try body()
            best = min(best, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
        }
        return best
    }
}
