import ArgumentParser
import Foundation
import KafkaClient
import KafkaProtocol
import Logging
import NIOConcurrencyHelpers
import NIOCore

extension CompressionCodec: ExpressibleByArgument {
    public init?(argument: String) {
        switch argument {
        case "none": self = .none
        case "gzip": self = .gzip
        case "snappy": self = .snappy
        case "lz4": self = .lz4
        case "zstd": self = .zstd
        default: return nil
        }
    }

    public static var allValueStrings: [String] { ["none", "gzip", "snappy", "lz4", "zstd"] }
}

extension KafkaProducer.Acks: ExpressibleByArgument {
    public init?(argument: String) {
        switch argument {
        case "0": self = .zero
        case "1": self = .one
        case "all", "-1": self = .all
        default: return nil
        }
    }

    public static var allValueStrings: [String] { ["0", "1", "all"] }
}

struct Produce: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Send lines from standard input as records (as kafka-console-producer.sh).",
        discussion: """
            Each line is one record's value (UTF-8, without the newline). With --key-separator, \
            each line is KEY<SEP>VALUE, split at the first separator; a line without one is an \
            error. The same --header values go on every record. Exits non-zero, after flushing \
            what was sent, when a record could not be delivered.
            """
    )

    @OptionGroup var connection: ConnectionOptions
    @Argument(help: "The topic to write to.") var topic: String
    @Option(help: "none, gzip, snappy, lz4 or zstd.") var compression: CompressionCodec = .none
    @Option(help: "0, 1 or all.") var acks: KafkaProducer.Acks = .all
    @Option(help: "Split each line into key and value at the first occurrence of SEP.") var keySeparator: String?
    @Option(name: .customLong("header"), help: "A header KEY=VALUE added to every record; repeatable.") var headers: [String] = []
    @Option(help: "How long a batch waits for more records (linger.ms).") var lingerMs = 5
    @Option(help: "How long a send may wait for the topic's metadata or for buffer memory (max.block.ms).")
    var maxBlockMs = 60_000

    func validate() throws {
        if let keySeparator, keySeparator.isEmpty { throw ValidationError("--key-separator must not be empty") }
        guard lingerMs >= 0 else { throw ValidationError("--linger-ms must not be negative") }
        guard maxBlockMs >= 0 else { throw ValidationError("--max-block-ms must not be negative") }
        _ = try parsedHeaders()
    }

    func parsedHeaders() throws -> [KafkaHeader] {
        try headers.map { item in
            guard let eq = item.firstIndex(of: "="), eq != item.startIndex else {
                throw ValidationError("--header expects KEY=VALUE, got '\(item)'")
            }
            return KafkaHeader(key: String(item[..<eq]), value: ByteBuffer(string: String(item[item.index(after: eq)...])))
        }
    }

    func run() async throws {
        var configuration = KafkaProducer.Configuration(bootstrapServers: connection.servers)
        configuration.clientId = "tributary-console-producer"
        configuration.compression = compression
        configuration.acks = acks
        configuration.lingerMs = lingerMs
        configuration.maxBlockMs = maxBlockMs
        let producer: KafkaProducer
        do {
            producer = try KafkaProducer(configuration: configuration, logger: cliLogger("tributary.produce"))
        } catch {
            throw CLIError("\(error)")
        }
        let headers = try parsedHeaders()
        let failures = NIOLockedValueBox(DeliveryFailures())
        let onDelivery: @Sendable (Result<KafkaProducer.RecordMetadata, KafkaClientError>) -> Void = { result in
            if case .failure(let error) = result { failures.withLockedValue { $0.add(error) } }
        }
        var sent = 0
        var inputError: String?
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await producer.run() }
            do {
                lines: for try await chunk in StandardInputLines() {
                    for line in chunk {
                        var key: ByteBuffer?
                        var value = line
                        if let keySeparator {
                            guard let r = line.range(of: keySeparator) else {
                                inputError = "line \(sent + 1) has no key separator '\(keySeparator)'"
                                break lines
                            }
                            key = ByteBuffer(string: String(line[..<r.lowerBound]))
                            value = String(line[r.upperBound...])
                        }
                        try await producer.sendAndForget(topic: topic, key: key, value: ByteBuffer(string: value),
                                                         headers: headers, onDelivery: onDelivery)
                        sent += 1
                    }
                }
            } catch {
                inputError = "\(error)"
            }
            await producer.close()
            try await group.waitForAll()
        }
        let failed = failures.withLockedValue { $0 }
        if let first = failed.first {
            throw CLIError("\(failed.count) of \(sent) record(s) were not delivered to '\(topic)': \(first)")
        }
        if let inputError { throw CLIError(inputError) }
    }
}

private struct DeliveryFailures {
    var count = 0
    var first: KafkaClientError?

    mutating func add(_ error: KafkaClientError) {
        count += 1
        if first == nil { first = error }
    }
}

/// Standard input as chunks of lines, read on a thread of its own so a blocking read
/// never holds a thread of the concurrency pool; the reader waits while a few chunks
/// are unconsumed, so a fast pipe cannot outrun the producer's back-pressure.
struct StandardInputLines: AsyncSequence, Sendable {
    typealias Element = [String]
    static let chunkLines = 1024
    static let chunksAhead = 4

    func makeAsyncIterator() -> AsyncIterator {
        let (stream, continuation) = AsyncStream.makeStream(of: [String].self)
        let credits = DispatchSemaphore(value: Self.chunksAhead)
        let thread = Thread {
            var chunk: [String] = []
            chunk.reserveCapacity(Self.chunkLines)
            while let line = readLine(strippingNewline: true) {
                chunk.append(line)
                if chunk.count == Self.chunkLines {
                    credits.wait()
                    continuation.yield(chunk)
                    chunk.removeAll(keepingCapacity: true)
                }
            }
            if !chunk.isEmpty { continuation.yield(chunk) }
            continuation.finish()
        }
        thread.start()
        return AsyncIterator(base: stream.makeAsyncIterator(), credits: credits)
    }

    struct AsyncIterator: AsyncIteratorProtocol {
        var base: AsyncStream<[String]>.AsyncIterator
        let credits: DispatchSemaphore
        var handedOut = false

        mutating func next() async -> [String]? {
            // The chunk handed out last has been processed by now: the reader may read another.
            if handedOut { credits.signal() }
            let chunk = await base.next()
            handedOut = chunk != nil
            return chunk
        }
    }
}

/// A logger for the client subcommands: errors only, on standard error, so standard
/// output carries nothing but records.
func cliLogger(_ label: String) -> Logger {
    var logger = Logger(label: label, factory: { StreamLogHandler.standardError(label: $0) })
    logger.logLevel = .error
    return logger
}
