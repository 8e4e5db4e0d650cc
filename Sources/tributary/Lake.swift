import ArgumentParser
import Foundation
import Lake
import Logging
import ObjectStore
#if canImport(Glibc)
import Glibc
#endif

/// `tributary lake`: topics to tables in a local directory or an S3-compatible store.
struct LakeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lake",
        abstract: "Export topics to Parquet, CSV or JSON-lines files that query engines read.",
        subcommands: [Export.self]
    )

    struct Export: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Export a topic to files, exactly once: keys TOPIC/[k=v/]part-<partition>-<first>-<last>.<ext> and a manifest.",
            discussion: """
                Offsets are committed to --group (and written to TOPIC/_manifest.FORMAT.json) only after the
                files are stored, so a rerun resumes where the last one stopped and a crash rewrites files
                instead of duplicating rows. Without --follow the export stops at the end offsets it saw
                at start. S3 credentials come from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION
                and AWS_ENDPOINT_URL.
                """
        )

        @Argument(help: "The topic to export.") var topic: String
        @Option(help: "Where to write: file:///path or s3://bucket/prefix.") var to: String
        @Option(help: "parquet, csv or jsonl.") var format: String = "parquet"
        @Option(name: .long, help: "Comma-separated HOST:PORT list of brokers to bootstrap from.")
        var bootstrapServer: String = "127.0.0.1:9092"
        @Option(help: "Consumer group to resume from and commit to (the manifest alone without one).") var group: String?
        @Flag(help: "With no position in the manifest or group, start at the beginning of the log (default: its end).")
        var fromBeginning = false
        @Flag(help: "Keep exporting new records until interrupted (SIGINT/SIGTERM finish the open files).") var follow = false
        @Option(help: "none, date, hour, or a JSON field name: Hive-style directories.") var partitionBy: String = "none"
        @Option(help: "JSON field with the record time (epoch ms or ISO-8601) for partitioning and --roll-after; default the Kafka timestamp.")
        var timeField: String?
        @Option(help: "Roll a file at this many rows.") var maxRows: Int = 1_000_000
        @Option(help: "Roll a file at about this much data before compression (e.g. 64MB).") var maxBytes: String = "128MB"
        @Option(help: "Roll a file before a record this much later (record time) than its first, e.g. 1h.") var rollAfter: String?
        @Option(help: "Roll a partition's files after this long without records, e.g. 30s (default 60s with --follow).")
        var idleRoll: String?
        @Option(help: "Send values that are not JSON objects to this topic instead of a _value column.") var deadLetter: String?
        @Option(help: "Parquet page compression: snappy, zstd or none.") var compression: String = "snappy"
        @Flag(help: "No progress and no summary.") var quiet = false

        func validate() throws {
            guard LakeFormat(rawValue: format) != nil else { throw ValidationError("--format must be parquet, csv or jsonl") }
            guard maxRows > 0 else { throw ValidationError("--max-rows must be positive") }
            _ = try parseSize(maxBytes, option: "--max-bytes")
            if let rollAfter { _ = try parseDuration(rollAfter, option: "--roll-after") }
            if let idleRoll { _ = try parseDuration(idleRoll, option: "--idle-roll") }
            guard ["snappy", "zstd", "none", "uncompressed"].contains(compression) else {
                throw ValidationError("--compression must be snappy, zstd or none")
            }
            do { _ = try LakeExporter.PartitionBy(parsing: partitionBy) } catch { throw ValidationError("\(error)") }
            do { _ = try ObjectStoreURL(parsing: to) } catch { throw ValidationError("--to: \(error)") }
        }

        func run() async throws {
            var logger = Logger(label: "tributary.lake", factory: { StreamLogHandler.standardError(label: $0) })
            logger.logLevel = .error
            var configuration = LakeExporter.Configuration(topic: topic, bootstrapServers: bootstrapServer.split(separator: ",").map(String.init))
            configuration.format = LakeFormat(rawValue: format)!
            configuration.group = group
            configuration.fromBeginning = fromBeginning
            configuration.follow = follow
            configuration.partitionBy = try LakeExporter.PartitionBy(parsing: partitionBy)
            configuration.timeField = timeField
            configuration.maxRows = maxRows
            configuration.maxBytes = try parseSize(maxBytes, option: "--max-bytes")
            configuration.rollAfter = try rollAfter.map { try parseDuration($0, option: "--roll-after") }
            configuration.idleRoll = try idleRoll.map { try parseDuration($0, option: "--idle-roll") }
            configuration.deadLetterTopic = deadLetter
            configuration.parquet.compression = compression == "zstd" ? .zstd : compression == "snappy" ? .snappy : .uncompressed

            let store = try ObjectStoreURL(parsing: to).makeStore(logger: logger)
            let exporter = try LakeExporter(configuration: configuration, store: store, logger: logger)
            // SIGINT/SIGTERM finish the open files and commit rather than dropping them.
            signal(SIGINT, SIG_IGN)
            signal(SIGTERM, SIG_IGN)
            let sources = [SIGINT, SIGTERM].map { sig in
                let source = DispatchSource.makeSignalSource(signal: sig)
                source.setEventHandler { exporter.stop() }
                source.resume()
                return source
            }
            defer { sources.forEach { $0.cancel() } }

            let interactive = !quiet && isatty(STDERR_FILENO) == 1
            let summary: LakeExporter.Summary
            var onProgress: (@Sendable (LakeExporter.Progress) -> Void)?
            if interactive {
                onProgress = { p in
                    let line = "\r\u{1B}[K" + Export.progressLine(p)
                    FileHandle.standardError.write(Data(line.utf8))
                }
            }
            do {
                summary = try await exporter.run(progress: onProgress)
            } catch {
                try? await store.shutdown()
                throw CLIError("lake export failed: \(error)")
            }
            try await store.shutdown()
            if interactive { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
            guard !quiet else { return }
            let p = summary.progress
            let seconds = max(0.001, Double(p.elapsed.components.seconds) + Double(p.elapsed.components.attoseconds) / 1e18)
            print("exported \(p.records) records of \(topic) to \(p.filesWritten) file(s), \(Self.bytes(p.bytesWritten)), in "
                + String(format: "%.1f s (%.0f records/s)", seconds, Double(p.records) / seconds))
            for (partition, range) in summary.ranges.sorted(by: { $0.key < $1.key }) {
                print("  partition \(partition): offsets \(range.lowerBound)..<\(range.upperBound)")
            }
            if p.nonJSON > 0 {
                print("  \(p.nonJSON) value(s) were not JSON objects" + (deadLetter.map { ": sent to \($0)" } ?? ": kept in _value"))
            }
            if summary.orphansDeleted > 0 { print("  removed \(summary.orphansDeleted) object(s) left by an interrupted run") }
            print("  lag \(p.lag)")
            if p.records == 0 && !fromBeginning && group == nil {
                print("  nothing to export: no earlier position; use --from-beginning to start at the beginning of the log")
            }
        }

        static func progressLine(_ p: LakeExporter.Progress) -> String {
            "records \(p.records)  written \(bytes(p.bytesWritten))  files \(p.filesWritten)  lag \(p.lag)"
                + (p.nonJSON > 0 ? "  non-JSON \(p.nonJSON)" : "")
        }

        static func bytes(_ n: Int) -> String {
            n >= 1 << 20 ? String(format: "%.1f MB", Double(n) / 1_048_576) : n >= 1024 ? String(format: "%.1f KB", Double(n) / 1024) : "\(n) B"
        }
    }
}

/// `30s`, `500ms`, `5m`, `2h`, `1d`, or plain seconds.
func parseDuration(_ text: String, option: String) throws -> Duration {
    let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600), ("d", 86_400)]
    for (suffix, scale) in units where text.hasSuffix(suffix) {
        if let v = Double(text.dropLast(suffix.count)), v > 0 { return .milliseconds(Int64(v * scale * 1000)) }
    }
    if let v = Double(text), v > 0 { return .milliseconds(Int64(v * 1000)) }
    throw ValidationError("\(option): '\(text)' is not a positive duration (e.g. 500ms, 30s, 5m, 1h)")
}

/// `1048576`, `64KB`, `64MB`, `1GB` (binary multiples; KiB/MiB/GiB also accepted).
func parseSize(_ text: String, option: String) throws -> Int {
    let upper = text.uppercased()
    let units: [(String, Int)] = [("KIB", 1 << 10), ("MIB", 1 << 20), ("GIB", 1 << 30), ("KB", 1 << 10), ("MB", 1 << 20), ("GB", 1 << 30),
                                  ("K", 1 << 10), ("M", 1 << 20), ("G", 1 << 30), ("B", 1)]
    for (suffix, scale) in units where upper.hasSuffix(suffix) {
        if let v = Double(upper.dropLast(suffix.count)), v > 0 { return Int(v * Double(scale)) }
    }
    if let v = Int(text), v > 0 { return v }
    throw ValidationError("\(option): '\(text)' is not a positive size (e.g. 64MB)")
}
