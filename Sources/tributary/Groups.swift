import ArgumentParser
import Foundation
import KafkaClient

struct Groups: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List, describe, delete consumer groups and reset their offsets (as kafka-consumer-groups.sh).",
        subcommands: [List.self, Describe.self, Delete.self, ResetOffsets.self]
    )

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List consumer groups.")
        @OptionGroup var connection: ConnectionOptions
        @Flag(help: "Show each group's state.") var state = false

        func run() async throws {
            let admin = try connection.admin()
            for g in try await admin.listGroups() {
                print(state ? "\(g.groupId)\t\(g.state)" : g.groupId)
            }
            await admin.close()
        }
    }

    struct Describe: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a group's committed offsets, log-end offsets, lag and members.")
        @OptionGroup var connection: ConnectionOptions
        @Option(help: "The group.") var group: String

        func run() async throws {
            let admin = try connection.admin()
            let description = try await admin.describeGroup(group)
            let committed = try await admin.committedOffsets(group)
            var owner: [KafkaAdmin.TopicPartition: KafkaAdmin.GroupMember] = [:]
            for m in description.members {
                for (topic, partitions) in m.assignment {
                    for p in partitions { owner[.init(topic: topic, partition: p)] = m }
                }
            }
            let partitions = Set(committed.keys).union(owner.keys).sorted()
            let ends = partitions.isEmpty ? [:] : try await admin.listOffsets(partitions, at: -1)
            print("Group \(group) is \(description.state) with \(description.members.count) member(s).")
            var rows = [["GROUP", "TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG", "CONSUMER-ID", "HOST", "CLIENT-ID"]]
            for tp in partitions {
                let current = committed[tp]
                let end = ends[tp]
                let lag = current.flatMap { c in end.map { max(0, $0 - c) } }
                let m = owner[tp]
                rows.append([group, tp.topic, String(tp.partition), current.map(String.init) ?? "-", end.map(String.init) ?? "-",
                             lag.map(String.init) ?? "-", m?.memberId ?? "-", m?.clientHost ?? "-", m?.clientId ?? "-"])
            }
            printTable(rows)
            await admin.close()
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete groups and their committed offsets (the groups must have no members).")
        @OptionGroup var connection: ConnectionOptions
        @Option(name: .customLong("group"), help: "A group; repeatable.") var groups: [String]

        func run() async throws {
            let admin = try connection.admin()
            try await admin.deleteGroups(groups)
            await admin.close()
            for g in groups { print("Deleted group \(g).") }
        }
    }

    struct ResetOffsets: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "reset-offsets",
            abstract: "Move a group's committed offsets, e.g. back to the beginning to reprocess a topic.",
            discussion: "The group must have no active members: stop its consumers first. Topics are TOPIC or TOPIC:P1,P2."
        )
        @OptionGroup var connection: ConnectionOptions
        @Option(help: "The group.") var group: String
        @Option(name: .customLong("topic"), help: "A topic (TOPIC or TOPIC:0,1); repeatable.") var topics: [String]
        @Flag(help: "To each partition's log start offset.") var toEarliest = false
        @Flag(help: "To each partition's log end offset.") var toLatest = false
        @Option(help: "To the first offset at or after this time (ISO 8601, e.g. 2026-11-01T00:00:00Z).") var toDatetime: String?
        // .unconditional: "-100" is a value, not an unknown flag.
        @Option(parsing: .unconditional, help: "To this offset (clamped to the log's range).") var toOffset: Int64?
        @Option(parsing: .unconditional, help: "Move each committed offset by N (negative: back), clamped to the log's range.") var shiftBy: Int64?
        @Flag(help: "Show the new offsets without committing them.") var dryRun = false

        func validate() throws {
            let modes = [toEarliest, toLatest, toDatetime != nil, toOffset != nil, shiftBy != nil].filter { $0 }.count
            guard modes == 1 else {
                throw ValidationError("choose exactly one of --to-earliest, --to-latest, --to-datetime, --to-offset, --shift-by")
            }
            if let toDatetime, parseDate(toDatetime) == nil {
                throw ValidationError("--to-datetime: cannot read '\(toDatetime)' as ISO 8601 (e.g. 2026-11-01T00:00:00Z)")
            }
            _ = try parsedTopics()
        }

        func parsedTopics() throws -> [(String, [Int32]?)] {
            try topics.map { spec in
                let parts = spec.split(separator: ":", maxSplits: 1)
                guard let name = parts.first, !name.isEmpty else { throw ValidationError("--topic: empty topic name") }
                guard parts.count == 2 else { return (String(name), nil) }
                let partitions = parts[1].split(separator: ",").compactMap { Int32($0) }
                guard !partitions.isEmpty else { throw ValidationError("--topic \(spec): expected TOPIC:P1,P2") }
                return (String(name), partitions)
            }
        }

        func run() async throws {
            let admin = try connection.admin()
            let description = try await admin.describeGroup(group)
            guard description.members.isEmpty || ["Empty", "Dead"].contains(description.state) else {
                throw CLIError("group '\(group)' is active (\(description.state), \(description.members.count) member(s)); stop its consumers before resetting offsets")
            }
            var partitions: [KafkaAdmin.TopicPartition] = []
            for (topic, chosen) in try parsedTopics() {
                let all = try await admin.describeTopics([topic]).first?.partitions.map(\.partition) ?? []
                for p in chosen ?? all {
                    guard all.contains(p) else { throw CLIError("topic '\(topic)' has no partition \(p)") }
                    partitions.append(.init(topic: topic, partition: p))
                }
            }
            let earliest = try await admin.listOffsets(partitions, at: -2)
            let latest = try await admin.listOffsets(partitions, at: -1)
            let committed = try await admin.committedOffsets(group)
            var target: [KafkaAdmin.TopicPartition: Int64] = [:]
            if toEarliest {
                target = earliest
            } else if toLatest {
                target = latest
            } else if let toDatetime, let date = parseDate(toDatetime) {
                target = try await admin.listOffsets(partitions, at: Int64(date.timeIntervalSince1970 * 1000))
            } else {
                for tp in partitions {
                    let wanted = toOffset ?? ((committed[tp] ?? earliest[tp]!) + shiftBy!)
                    target[tp] = min(max(wanted, earliest[tp]!), latest[tp]!)
                }
            }
            var rows = [["GROUP", "TOPIC", "PARTITION", "OLD-OFFSET", "NEW-OFFSET"]]
            for tp in partitions.sorted() {
                rows.append([group, tp.topic, String(tp.partition), committed[tp].map(String.init) ?? "-", String(target[tp]!)])
            }
            printTable(rows)
            if dryRun {
                print("Dry run: nothing committed.")
            } else {
                try await admin.alterCommittedOffsets(group, target)
                print("Committed new offsets for group \(group).")
            }
            await admin.close()
        }
    }
}

/// ISO 8601 with or without fractional seconds and zone (no zone: UTC).
func parseDate(_ text: String) -> Date? {
    let withZone = ISO8601DateFormatter()
    withZone.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
    if let d = withZone.date(from: text) { return d }
    withZone.formatOptions = [.withInternetDateTime]
    if let d = withZone.date(from: text) { return d }
    let local = DateFormatter()
    local.locale = Locale(identifier: "en_US_POSIX")
    local.timeZone = TimeZone(identifier: "UTC")
    for format in ["yyyy-MM-dd'T'HH:mm:ss.SSS", "yyyy-MM-dd'T'HH:mm:ss", "yyyy-MM-dd"] {
        local.dateFormat = format
        if let d = local.date(from: text) { return d }
    }
    return nil
}

/// Prints rows as aligned columns.
func printTable(_ rows: [[String]]) {
    guard let first = rows.first else { return }
    var widths = first.map(\.count)
    for row in rows {
        for (i, cell) in row.enumerated() { widths[i] = max(widths[i], cell.count) }
    }
    for row in rows {
        print(row.enumerated().map { $0.element.padding(toLength: widths[$0.offset], withPad: " ", startingAt: 0) }
            .joined(separator: "  ").trimmingCharacters(in: .whitespaces))
    }
}
