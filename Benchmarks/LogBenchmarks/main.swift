import Foundation
import KafkaProtocol
import Logging
import LogStore
import NIOCore

// Log-layer benchmarks. Run in release:
//
//     swift run -c release log-benchmarks                 # all, in a temporary directory
//     swift run -c release log-benchmarks recovery 1024   # recovery of a 1024 MiB active segment
//
// Figures go into the issue notes, never into tests.

let logger = Logger(label: "bench")
let root = NSTemporaryDirectory() + "log-bench-\(UUID().uuidString)"
defer { try? FileManager.default.removeItem(atPath: root) }

func seconds(_ d: Duration) -> Double { Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18 }

/// A batch of `count` records of `size` bytes, keys cycling over `keys` distinct values.
func batch(count: Int, size: Int, keys: Int?, first: Int) -> ByteBuffer {
    var b = RecordBatchBuilder(baseTimestamp: Int64(Date().timeIntervalSince1970 * 1000), capacity: count * (size + 16))
    let value = ByteBuffer(repeating: 0x61, count: size)
    for i in 0..<count {
        b.append(key: keys.map { ByteBuffer(string: "key-\((first + i) % $0)") }, value: value)
    }
    return b.build().buffer
}

func fill(_ log: PartitionLog, megabytes: Int, keys: Int?) throws -> Int {
    var written = 0
    var n = 0
    while written < megabytes << 20 {
        let b = batch(count: 1000, size: 100, keys: keys, first: n)
        _ = try log.append(b)
        written += b.readableBytes
        n += 1000
    }
    return written
}

func append() throws {
    var config = LogConfig()
    config.segmentBytes = 1 << 30
    let log = try PartitionLog(directory: root + "/append-0", topic: "append", partition: 0, config: config, logger: logger)
    let batches = (0..<1000).map { batch(count: 1000, size: 100, keys: nil, first: $0 * 1000) }
    let clock = ContinuousClock()
    let elapsed = try clock.measure { for b in batches { _ = try log.append(b) } }
    let flush = try clock.measure { try log.flush() }
    let bytes = batches.reduce(0) { $0 + $1.readableBytes }
    print(String(format: "append: 1,000,000 records (%.0f MB) in %.3f s = %.2f M records/s, %.0f MB/s; fsync of it all %.3f s",
                 Double(bytes) / 1e6, seconds(elapsed), 1.0 / seconds(elapsed), Double(bytes) / 1e6 / seconds(elapsed), seconds(flush)))
}

func recovery(_ megabytes: Int) throws {
    var config = LogConfig()
    config.segmentBytes = Int(Int32.max)
    let dir = root + "/recovery-0"
    do {
        let log = try PartitionLog(directory: dir, topic: "recovery", partition: 0, config: config, logger: logger)
        _ = try fill(log, megabytes: megabytes, keys: nil)
        try log.flush()
        // No close(): the recovery point stays at 0, as after SIGKILL before any checkpoint.
    }
    // SIGKILL leaves the page cache warm; DROP_CACHES=1 (root) measures a cold start instead.
    if ProcessInfo.processInfo.environment["DROP_CACHES"] == "1" {
        sync()
        try? "3\n".write(toFile: "/proc/sys/vm/drop_caches", atomically: false, encoding: .utf8)
    }
    let clock = ContinuousClock()
    var end: Int64 = 0
    let elapsed = try clock.measure {
        end = try PartitionLog(directory: dir, topic: "recovery", partition: 0, config: config, logger: logger).logEndOffset
    }
    print(String(format: "recovery: %d MiB active segment (%lld records) re-validated in %.2f s = %.0f MB/s",
                 megabytes, end, seconds(elapsed), Double(megabytes << 20) / 1e6 / seconds(elapsed)))
    let clean = try PartitionLog(directory: dir, topic: "recovery", partition: 0, config: config, logger: logger)
    try clean.close()
    let fast = try clock.measure { _ = try PartitionLog(directory: dir, topic: "recovery", partition: 0, config: config, logger: logger) }
    print(String(format: "recovery after a clean shutdown: %.3f s", seconds(fast)))
}

func cleaner() throws {
    var config = LogConfig()
    config.compact = true
    config.deleteOldSegments = false
    config.segmentBytes = 16 << 20
    config.minCleanableDirtyRatio = 0
    let log = try PartitionLog(directory: root + "/clean-0", topic: "clean", partition: 0, config: config, logger: logger)
    let bytes = try fill(log, megabytes: 256, keys: 10_000)
    try log.roll()
    let clock = ContinuousClock()
    var result: CleanResult?
    let elapsed = try clock.measure { result = try log.compact() }
    guard let r = result else { print("cleaner: nothing cleaned"); return }
    print(String(format: "cleaner: %.0f MB (%d records, 10,000 keys) cleaned to %.1f MB in %.2f s = %.0f MB/s",
                 Double(r.bytesBefore) / 1e6, r.recordsRead, Double(r.bytesAfter) / 1e6, seconds(elapsed),
                 Double(r.bytesBefore) / 1e6 / seconds(elapsed)))
    _ = bytes
}

let args = Array(CommandLine.arguments.dropFirst())
try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
switch args.first {
case nil:
    try append()
    try recovery(1024)
    try cleaner()
case "append": try append()
case "recovery": try recovery(args.count > 1 ? Int(args[1]) ?? 1024 : 1024)
case "cleaner": try cleaner()
default:
    FileHandle.standardError.write(Data("unknown benchmark \(args[0]); choose append, recovery or cleaner\n".utf8))
    exit(2)
}
