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

struct Options {
    var bootstrap: String?
    var records = 1_000_000
    var size = 100
    var batchSize = 1_048_576
    var lingerMs = 5
    var acks = KafkaProducer.Acks.one
    var compression = CompressionCodec.none
    var dataDir: String?

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
            case "-h", "--help":
                print("client-benchmarks [--bootstrap-server HOST:PORT] [--records N] [--size BYTES] [--batch-size BYTES] [--linger-ms MS] [--acks 0|1|all] [--compression CODEC] [--data-dir DIR]")
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

func report(_ what: String, records: Int, bytes: Int, elapsed: Duration, cpu: Double) {
    let s = seconds(elapsed)
    print(String(format: "%@: %d records in %.3f s: %.0f records/s, %.1f MB/s, process CPU %.2f s",
                 what as NSString, records, s, Double(records) / s, Double(bytes) / s / 1e6, cpu))
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
let produceStart = ContinuousClock.now
for _ in 1..<options.records {
    try await producer.sendAndForget(topic: topic, value: value, partition: 0)
}
await producer.flush()
let produceElapsed = ContinuousClock.now - produceStart
report("produce", records: options.records, bytes: options.records * options.size, elapsed: produceElapsed, cpu: cpuSeconds() - produceCPU)
await producer.close()
try await producerRun.value

// MARK: consume

var consumerConfig = KafkaConsumer.Configuration(bootstrapServers: [bootstrap])
consumerConfig.autoOffsetReset = .earliest
let consumer = try KafkaConsumer(configuration: consumerConfig)
try consumer.assign(partitions: [TopicPartition(topic: topic, partition: 0)])
let consumerRun = Task { try await consumer.run() }
let consumeCPU = cpuSeconds()
let consumeStart = ContinuousClock.now
var count = 0
var bytes = 0
for try await record in consumer.records {
    count += 1
    bytes += record.value?.readableBytes ?? 0
    if count == options.records { break }
}
let consumeElapsed = ContinuousClock.now - consumeStart
report("consume", records: count, bytes: bytes, elapsed: consumeElapsed, cpu: cpuSeconds() - consumeCPU)
await consumer.close()
try await consumerRun.value

if let broker, let brokerTask {
    brokerTask.cancel()
    _ = try? await brokerTask.value
    broker.shutdown()
}
if let temporaryDirectory { try? FileManager.default.removeItem(atPath: temporaryDirectory) }
