import Foundation
import KafkaProtocol
import NIOCore

// Hot-path benchmarks of the protocol layer. Run in release:
//
//     swift run -c release protocol-benchmarks            # everything
//     swift run -c release protocol-benchmarks crc32c     # one
//
// Each prints throughput; figures go into the issue notes, never into tests.

func measure(_ name: String, bytes: Int, iterations: Int, _ body: () -> Void) {
    for _ in 0..<max(1, iterations / 10) { body() }  // warm up
    let clock = ContinuousClock()
    var best = Duration.seconds(1_000_000)
    for _ in 0..<5 {
        let elapsed = clock.measure { for _ in 0..<iterations { body() } }
        best = min(best, elapsed)
    }
    let seconds = Double(best.components.seconds) + Double(best.components.attoseconds) / 1e18
    let gbps = Double(bytes) * Double(iterations) / seconds / 1e9
    let nsPerOp = seconds / Double(iterations) * 1e9
    print(String(format: "%-42@ %8.2f GB/s %10.0f ns/op  (%d x %d bytes, best of 5)", name as NSString, gbps, nsPerOp, iterations, bytes))
}

func crc32c() {
    print("CRC32C hardware accelerated: \(CRC32C.isHardwareAccelerated)")
    for size in [64, 1024, 16 * 1024, 1 << 20] {
        var rng = SystemRandomNumberGenerator()
        let data = (0..<size).map { _ in UInt8.random(in: 0...255, using: &rng) }
        let iterations = max(10, (256 << 20) / size)
        var sink: UInt32 = 0
        data.withUnsafeBytes { raw in
            measure("crc32c \(size) B", bytes: size, iterations: iterations) { sink &+= CRC32C.checksum(raw) }
            measure("crc32c portable \(size) B", bytes: size, iterations: iterations / 4) { sink &+= CRC32C.portableChecksum(raw) }
        }
        if sink == 42 { print("") }
    }
}

func recordBatches() {
    var builder = RecordBatchBuilder(baseTimestamp: 1_700_000_000_000)
    let value = ByteBuffer(repeating: 0x61, count: 100)
    for _ in 0..<10_000 { builder.append(key: nil, value: value) }
    let batch = builder.build()
    var total = 0
    measure("batch validate (CRC) 10k x 100 B", bytes: batch.sizeInBytes, iterations: 200) {
        total &+= (try? RecordBatch(validating: batch.buffer))?.sizeInBytes ?? 0
    }
    measure("batch iterate records 10k x 100 B", bytes: batch.sizeInBytes, iterations: 200) {
        var it = try! batch.records()
        while let r = try! it.next() { total &+= r.value?.readableBytes ?? 0 }
    }
}

func produceCodec() {
    var builder = RecordBatchBuilder(baseTimestamp: 1_700_000_000_000)
    for _ in 0..<1000 { builder.append(key: nil, value: ByteBuffer(repeating: 0x61, count: 100)) }
    let records = builder.build().buffer
    let request = ProduceRequest(acks: 1, timeoutMs: 30_000, topicData: [
        .init(name: "bench", partitionData: (0..<8).map { .init(index: $0, records: records) }),
    ])
    var encoded = ByteBuffer()
    try! request.encode(into: &encoded, version: 9)
    // Records are sliced, not copied, so decode cost is per request, not per byte.
    measure("ProduceRequest v9 decode (8 partitions)", bytes: encoded.readableBytes, iterations: 20_000) {
        var b = encoded
        _ = try! ProduceRequest(from: &b, version: 9)
    }
    measure("ProduceRequest v9 encode (8 partitions)", bytes: encoded.readableBytes, iterations: 5_000) {
        var b = ByteBuffer()
        try! request.encode(into: &b, version: 9)
    }
}

let all: [String: () -> Void] = ["crc32c": crc32c, "batches": recordBatches, "produce": produceCodec]
let chosen = CommandLine.arguments.dropFirst()
for name in chosen.isEmpty ? ["crc32c", "batches", "produce"] : Array(chosen) {
    guard let run = all[name] else {
        FileHandle.standardError.write(Data("unknown benchmark \(name); choose from \(all.keys.sorted())\n".utf8))
        exit(2)
    }
    run()
}
