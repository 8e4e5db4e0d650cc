import Broker
import Foundation
import KafkaClient
import KafkaProtocol
import Logging
import NIOCore

// Producer and consumer throughput of the Swift client. Run in release:
//
//     swift run -c release client-benchmarks                                  # broker in-process
//     swift run -c release client-benchmarks --bootstrap-server 127.0.0.1:9092
//     swift run -c release client-benchmarks --records 1000000 --size 100 --batch-size 1048576
//
// Produces N records of S bytes with acks=1 into one partition (sendAndForget, then
// flush), then reads them back with a consumer (assign + seekToBeginning). Figures go
// into the issue notes, never into tests. With the in-process broker, client and broker
// share the machine's cores, as they do when librdkafka is driven against the same
// broker (benchmarks/broker_throughput.py).
//
//     --librdkafka        also run benchmarks/rdkafka_perf.c (librdkafka's C API, built
//                         with cc -lrdkafka) against the same broker in the same run, on
//                         its own topic, with the same settings (linger 5 ms, 1 MB batches).
//
// Allocations per record are printed when benchmarks/malloc_counter.c is preloaded:
//
//     cc -O2 -shared -fPIC -o /tmp/malloc_counter.so benchmarks/malloc_counter.c
//     LD_PRELOAD=/tmp/malloc_counter.so .build/release/client-benchmarks --bootstrap-server ...

struct Options {
    var bootstrap: String?
    var records = 1_000_000
    var size = 100
    var batchSize = 1_048_576
    var lingerMs = 5
    var acks = KafkaProducer.Acks.one
    var compression = CompressionCodec.none
    var dataDir: String?
    var librdkafka = false
    var produceOnly = false

    static func parse(_ args: [String]) -> Options {
        var o = Options()
        var i = 0
        func value() -> String {
            i += 1
            guard i < args.count else { fatalError("\(args[i - 1]) needs a value") }
            return args[i]
        }
        while i < args.count {
            switch args[i] {
            case "--bootstrap-server": o.bootstrap = value()
            case "--records": o.records = Int(value())!
            case "--size": o.size = Int(value())!
            case "--batch-size": o.batchSize = Int(value())!
            case "--linger-ms": o.lingerMs = Int(value())!
            case "--acks":
                switch value() {
                case "0": o.acks = .zero
                case "1": o.acks = .one
                case "all", "-1": o.acks = .all
                case let v: fatalError("--acks \(v): use 0, 1 or all")
                }
            case "--compression":
                let v = value()
                guard let c = CompressionCodec.allCases.first(where: { "\($0)" == v }) else { fatalError("--compression \(v): none, gzip, snappy, lz4 or zstd") }
                o.compression = c
            case "--data-dir": o.dataDir = value()
            case "--librdkafka": o.librdkafka = true
            case "--produce-only": o.produceOnly = true
            case "-h", "--help":
                print("client-benchmarks [--bootstrap-server HOST:PORT] [--records N] [--size BYTES] [--batch-size BYTES] [--linger-ms MS] [--acks 0|1|all] [--compression CODEC] [--data-dir DIR] [--librdkafka] [--produce-only]")
                exit(0)
            case let a: fatalError("unknown option \(a)")
            }
            i += 1
        }
        return o
    }
}

func seconds(_ d: Duration) -> Double {
    Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
}

func cpuSeconds() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6 + Double(usage.ru_stime.tv_sec) + Double(usage.ru_stime.tv_usec) / 1e6
}

/// The malloc counter's total when benchmarks/malloc_counter.c is preloaded.
let mallocCount: (@convention(c) () -> UInt)? = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "tributary_malloc_count")
    .map { unsafeBitCast($0, to: (@convention(c) () -> UInt).self) }

func report(_ what: String, records: Int, bytes: Int, elapsed: Duration, cpu: Double, allocations: UInt? = nil) {
    let s = seconds(elapsed)
    var line = String(format: "%@: %d records in %.3f s: %.0f records/s, %.1f MB/s, process CPU %.2f s",
                      what as NSString, records, s, Double(records) / s, Double(bytes) / s / 1e6, cpu)
    if let allocations {
        line += String(format: ", %.3f allocations/record (process-wide)", Double(allocations) / Double(records))
    }
    print(line)
}

/// Runs the librdkafka C driver (benchmarks/rdkafka_perf.c), building it first; returns seconds.
func runLibrdkafka(_ arguments: [String]) throws -> Double {
    let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    let driver = NSTemporaryDirectory() + "rdkafka_perf-client-benchmarks"
    if !FileManager.default.fileExists(atPath: driver) {
        let cc = Process()
        cc.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        cc.arguments = ["cc", "-O2", "-o", driver, repo.appendingPathComponent("benchmarks/rdkafka_perf.c").path, "-lrdkafka"]
        try cc.run()
        cc.waitUntilExit()
        guard cc.terminationStatus == 0 else { throw KafkaClientError(.invalidArgument, "cannot build rdkafka_perf (is librdkafka-dev installed?)") }
    }
    let p = Process()
    p.executableURL = URL(fileURLWithPath: driver)
    p.arguments = arguments
    let out = Pipe()
    p.standardOutput = out
    try p.run()
    let data = out.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    guard p.terminationStatus == 0, let s = Double(String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)) else {
        throw KafkaClientError(.invalidArgument, "rdkafka_perf \(arguments.first ?? "") failed")
    }
    return s
}

let options = Options.parse(Array(CommandLine.arguments.dropFirst()))
LoggingSystem.bootstrap { label in
    var handler = StreamLogHandler.standardError(label: label)
    handler.logLevel = .warning
    return handler
}

var broker: Broker?
var brokerTask: Task<Void, any Error>?
var temporaryDirectory: String?
let bootstrap: String
if let b = options.bootstrap {
    bootstrap = b
} else {
    var config = BrokerConfiguration()
    config.port = 0
    let dir = options.dataDir ?? NSTemporaryDirectory() + "client-benchmarks-\(UUID().uuidString)"
    if options.dataDir == nil { temporaryDirectory = dir }
    config.dataDirectory = dir
    let b = try Broker(configuration: config, logger: Logger(label: "broker"))
    let services = b.services
    brokerTask = Task {
        try await withThrowingDiscardingTaskGroup { group in
            for service in services { group.addTask { try await service.run() } }
        }
    }
    broker = b
    bootstrap = "127.0.0.1:\(try await b.listener.boundPort())"
    print("in-process broker on \(bootstrap), data in \(dir)")
}

let topic = "client-bench-\(UUID().uuidString.prefix(8))"
let admin = try KafkaAdmin(bootstrapServers: [bootstrap])
try await admin.createTopic(topic, partitions: 1)
await admin.cluster.close()
print("topic \(topic): \(options.records) records of \(options.size) bytes, acks=\(options.acks), batchSize \(options.batchSize), "
      + "lingerMs \(options.lingerMs), compression \(options.compression)")

// MARK: produce

var producerConfig = KafkaProducer.Configuration(bootstrapServers: [bootstrap])
producerConfig.acks = options.acks
producerConfig.batchSize = options.batchSize
producerConfig.lingerMs = options.lingerMs
producerConfig.compression = options.compression
producerConfig.maxRequestSize = max(producerConfig.maxRequestSize, options.batchSize + 4096)
let producer = try KafkaProducer(configuration: producerConfig)
let producerRun = Task { try await producer.run() }
let value = ByteBuffer(bytes: (0..<options.size).map { UInt8(truncatingIfNeeded: 0x41 + $0 % 26) })
// Metadata and connection first, so the timing covers records only.
_ = try await producer.send(topic: topic, value: value, partition: 0)
let produceCPU = cpuSeconds()
let produceAllocations = mallocCount?()
let produceStart = ContinuousClock.now
for _ in 1..<options.records {
    try await producer.sendAndForget(topic: topic, value: value, partition: 0)
}
await producer.flush()
let produceElapsed = ContinuousClock.now - produceStart
report("swift produce", records: options.records, bytes: options.records * options.size, elapsed: produceElapsed,
       cpu: cpuSeconds() - produceCPU, allocations: mallocCount.map { $0() - produceAllocations! })
await producer.close()
try await producerRun.value

// MARK: consume

if options.produceOnly {
    if let broker, let brokerTask {
        brokerTask.cancel()
        _ = try? await brokerTask.value
        broker.shutdown()
    }
    if let temporaryDirectory { try? FileManager.default.removeItem(atPath: temporaryDirectory) }
    exit(0)
}

var consumerConfig = KafkaConsumer.Configuration(bootstrapServers: [bootstrap])
consumerConfig.autoOffsetReset = .earliest
// As the librdkafka driver: 10 MB per partition and fetch, so both read in the same steps.
consumerConfig.maxPartitionFetchBytes = 10_485_760
let consumer = try KafkaConsumer(configuration: consumerConfig)
try consumer.assign(partitions: [TopicPartition(topic: topic, partition: 0)])
let consumerRun = Task { try await consumer.run() }
let consumeCPU = cpuSeconds()
let consumeAllocations = mallocCount?()
let consumeStart = ContinuousClock.now
var count = 0
var bytes = 0
for try await record in consumer.records {
    count += 1
    bytes += record.value?.readableBytes ?? 0
    if count == options.records { break }
}
let consumeElapsed = ContinuousClock.now - consumeStart
report("swift consume", records: count, bytes: bytes, elapsed: consumeElapsed, cpu: cpuSeconds() - consumeCPU,
       allocations: mallocCount.map { $0() - consumeAllocations! })
await consumer.close()
try await consumerRun.value

// MARK: librdkafka on the same broker

if options.librdkafka {
    guard options.acks != .zero, options.compression == .none else { fatalError("--librdkafka compares acks 1/all without compression") }
    let rdTopic = topic + "-librdkafka"
    let admin = try KafkaAdmin(bootstrapServers: [bootstrap])
    try await admin.createTopic(rdTopic, partitions: 1)
    await admin.cluster.close()
    let acks = options.acks == .all ? "all" : "1"
    let produceSeconds = try runLibrdkafka(["produce", bootstrap, rdTopic, "\(options.records)", "\(options.size)", acks])
    print(String(format: "librdkafka produce: %d records in %.3f s: %.0f records/s (C driver, same broker, linger 5 ms, batch 1 MB)",
                 options.records, produceSeconds, Double(options.records) / produceSeconds))
    let consumeSeconds = try runLibrdkafka(["consume", bootstrap, rdTopic, "\(options.records)"])
    print(String(format: "librdkafka consume: %d records in %.3f s: %.0f records/s", options.records, consumeSeconds, Double(options.records) / consumeSeconds))
}

if let broker, let brokerTask {
    brokerTask.cancel()
    _ = try? await brokerTask.value
    broker.shutdown()
}
if let temporaryDirectory { try? FileManager.default.removeItem(atPath: temporaryDirectory) }
