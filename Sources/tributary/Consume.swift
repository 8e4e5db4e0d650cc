import ArgumentParser
import Foundation
import KafkaClient
import Logging
import NIOConcurrencyHelpers
import NIOCore
import ServiceLifecycle

struct Consume: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print a topic's records (as kafka-console-consumer.sh).",
        discussion: """
            Without --group, reads every partition of the topic and commits nothing. With \
            --group, joins that consumer group (sharing the partitions with its other members, \
            any Kafka client) and commits what it printed. Stops after --max-messages records, \
            when no record came for --timeout-ms, or on SIGINT/SIGTERM, committing first.

            --format text prints each value as a line (null values as "null"; --print-key puts \
            the key and a tab before it). --format json prints one object per line:
              {"topic":T,"partition":P,"offset":O,"timestamp":MS,"key":K,"value":V,
               "headers":[{"key":HK,"value":HV},...]}
            K, V and HV are strings, or null for a null key/value. Bytes that are not valid \
            UTF-8 are given base64-encoded, marked by a sibling field "key_encoding", \
            "value_encoding" (in a header object: "value_encoding") whose value is "base64".
            """
    )

    enum Format: String, ExpressibleByArgument, CaseIterable {
        case text, json
    }

    @OptionGroup var connection: ConnectionOptions
    @Argument(help: "The topic to read.") var topic: String
    @Option(help: "Consume as a member of this consumer group.") var group: String?
    @Flag(help: "Start from the earliest record when there is no committed offset (else: only new records).")
    var fromBeginning = false
    @Option(help: "Stop after this many records.") var maxMessages: Int?
    @Option(help: "Stop when no record came for this many milliseconds.") var timeoutMs: Int?
    @Option(help: "text or json.") var format: Format = .text
    @Flag(help: "In text format, print the key and a tab before each value.") var printKey = false
    @Option(help: "Comma-separated assignors in order of preference: range, roundrobin, cooperative-sticky (with --group).")
    var assignmentStrategy: String?

    func validate() throws {
        if let maxMessages, maxMessages <= 0 { throw ValidationError("--max-messages must be positive") }
        if let timeoutMs, timeoutMs <= 0 { throw ValidationError("--timeout-ms must be positive") }
        if group == nil, assignmentStrategy != nil { throw ValidationError("--assignment-strategy needs --group") }
        _ = try strategies()
    }

    func strategies() throws -> [PartitionAssignmentStrategy]? {
        try assignmentStrategy.map { list in
            try list.split(separator: ",").map { name in
                guard let s = PartitionAssignmentStrategy(rawValue: name.trimmingCharacters(in: .whitespaces)) else {
                    throw ValidationError("--assignment-strategy: unknown assignor '\(name)' (range, roundrobin, cooperative-sticky)")
                }
                return s
            }
        }
    }

    func run() async throws {
        let logger = cliLogger("tributary.consume")
        var configuration = KafkaConsumer.Configuration(bootstrapServers: connection.servers, groupId: group)
        configuration.clientId = "tributary-console-consumer"
        configuration.autoOffsetReset = fromBeginning ? .earliest : .latest
        configuration.enableAutoCommit = group != nil
        if let strategies = try strategies() { configuration.partitionAssignmentStrategy = strategies }
        let consumer: KafkaConsumer
        do {
            consumer = try KafkaConsumer(configuration: configuration, logger: logger)
            if group != nil {
                // The group protocol retries an unreachable cluster forever; say so at once instead.
                try await checkReachable()
                try consumer.subscribe(topics: [topic])
            } else {
                try consumer.assign(partitions: try await partitions())
            }
        } catch let error as CLIError {
            throw error
        } catch {
            throw CLIError("\(error)")
        }
        let printer = RecordPrinter(consumer: consumer, maxMessages: maxMessages, timeout: timeoutMs.map { .milliseconds($0) },
                                    format: format, printKey: printKey)
        // Reverse order on shutdown: the printer stops first, then the consumer commits
        // what was printed and leaves the group.
        let services = ServiceGroup(configuration: .init(
            services: [.init(service: consumer),
                       .init(service: printer, successTerminationBehavior: .gracefullyShutdownGroup,
                             failureTerminationBehavior: .gracefullyShutdownGroup)],
            gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        do {
            try await services.run()
        } catch {
            throw CLIError("\(error)")
        }
        FileHandle.standardError.write(Data("Processed a total of \(printer.count.withLockedValue { $0 }) messages\n".utf8))
    }

    private func checkReachable() async throws {
        let admin = try connection.admin()
        do {
            _ = try await admin.cluster.refreshMetadata(topics: [])
        } catch {
            await admin.close()
            throw CLIError("\(error)")
        }
        await admin.close()
    }

    private func partitions() async throws -> [TopicPartition] {
        let admin = try connection.admin()
        let described: [KafkaAdmin.TopicDescription]
        do {
            described = try await admin.describeTopics([topic])
        } catch {
            await admin.close()
            throw CLIError("\(error)")
        }
        await admin.close()
        guard let description = described.first, !description.partitions.isEmpty else {
            throw CLIError("topic '\(topic)' does not exist")
        }
        return description.partitions.map { TopicPartition(topic: topic, partition: $0.partition) }
    }
}

/// Polls the consumer and writes records to standard output until enough were printed,
/// none came within the timeout, or graceful shutdown.
struct RecordPrinter: Service {
    let consumer: KafkaConsumer
    let maxMessages: Int?
    let timeout: Duration?
    let format: Consume.Format
    let printKey: Bool
    let count = NIOLockedValueBox(0)

    func run() async throws {
        try await cancelWhenGracefulShutdown {
            try await printRecords()
        }
    }

    private func printRecords() async throws {
        var printed = 0
        var out = ""
        while !Task.isCancelled {
            let records = try await consumer.poll(timeout: timeout ?? .seconds(1))
            if records.isEmpty {
                if timeout != nil { break }
                continue
            }
            var take = records.count
            if let maxMessages { take = min(take, maxMessages - printed) }
            out.removeAll(keepingCapacity: true)
            for record in records.prefix(take) {
                switch format {
                case .text: Self.appendText(record, printKey: printKey, to: &out)
                case .json: Self.appendJSON(record, to: &out)
                }
            }
            FileHandle.standardOutput.write(Data(out.utf8))
            printed += take
            count.withLockedValue { $0 = printed }
            if take < records.count {
                // poll counted the whole batch as returned; move back to the first record
                // not printed, per partition, so the commit on close covers only what was.
                var firstUnprinted: [TopicPartition: Int64] = [:]
                for r in records[take...] where firstUnprinted[r.topicPartition] == nil {
                    firstUnprinted[r.topicPartition] = r.offset
                }
                for (tp, offset) in firstUnprinted { consumer.seek(tp, to: offset) }
            }
            if let maxMessages, printed >= maxMessages { break }
        }
    }

    static func appendText(_ record: ConsumerRecord, printKey: Bool, to out: inout String) {
        if printKey {
            out += record.keyString ?? "null"
            out += "\t"
        }
        out += record.valueString ?? "null"
        out += "\n"
    }

    static func appendJSON(_ record: ConsumerRecord, to out: inout String) {
        out += "{\"topic\":"
        appendJSONString(record.topic, to: &out)
        out += ",\"partition\":\(record.partition),\"offset\":\(record.offset),\"timestamp\":\(record.timestamp)"
        appendBytesField("key", record.key, to: &out)
        appendBytesField("value", record.value, to: &out)
        out += ",\"headers\":["
        for (i, h) in record.headers.enumerated() {
            if i > 0 { out += "," }
            out += "{\"key\":"
            appendJSONString(h.key, to: &out)
            appendBytesField("value", h.value, to: &out)
            out += "}"
        }
        out += "]}\n"
    }

    /// `,"name":...` with the bytes as text, or base64 plus `"name_encoding":"base64"`
    /// when they are not UTF-8.
    static func appendBytesField(_ name: String, _ bytes: ByteBuffer?, to out: inout String) {
        out += ",\"\(name)\":"
        guard let bytes else {
            out += "null"
            return
        }
        if let text = String(validating: bytes.readableBytesView, as: UTF8.self) {
            appendJSONString(text, to: &out)
        } else {
            out += "\"" + Data(bytes.readableBytesView).base64EncodedString() + "\",\"\(name)_encoding\":\"base64\""
        }
    }

    static func appendJSONString(_ s: String, to out: inout String) {
        out += "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        out += "\""
    }
}
