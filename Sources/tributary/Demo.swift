import ArgumentParser
import Broker
import Foundation
import KafkaClient
import Logging
import ObjectStore
import Streams

/// The tutorial's story in one command, on a broker started in this process.
struct Demo: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Tell the tutorial's story end to end on an embedded broker.",
        discussion: """
        Starts a broker in this process, simulates a weather station sending one reading a \
        day for --days days, aggregates them by month (the tutorial's first consumer), then \
        changes the business logic: reprocesses the whole history from offset 0 into a weekly \
        Fahrenheit CSV in the lake, and draws the weekly temperatures. Everything is kept under \
        --data-dir (replaced on the next run).
        """
    )

    @Option(help: "Where the broker's log, the outputs and the lake go.") var dataDir = "tributary-demo"
    @Option(help: "Days of readings to simulate (one reading a day).") var days = 3650
    @Option(help: "The lake: file:///dir or s3://bucket/prefix (default: <data-dir>/lake).") var lake: String?
    @Option(help: "Seed of the simulated station.") var seed: UInt64 = 2024

    func validate() throws {
        guard days >= 7 else { throw ValidationError("--days must be at least 7 (one week)") }
        if let lake, !(lake.hasPrefix("file://") || lake.hasPrefix("s3://")) {
            throw ValidationError("--lake must be a file:///dir or s3://bucket/prefix URL")
        }
    }

    func run() async throws {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = .error
            return handler
        }
        let logger = Logger(label: "demo")
        let root = URL(fileURLWithPath: dataDir).standardizedFileURL.path
        try prepare(root)
        let lakeURL = lake.map { $0.hasSuffix("/") ? String($0.dropLast()) : $0 } ?? "file://\(root)/lake"
        let monthlyPath = root + "/weather_aggregation.txt"
        let weeklyURL = lakeURL + "/weather_aggregation.csv"

        var configuration = BrokerConfiguration()
        configuration.port = 0
        configuration.dataDirectory = root + "/broker"
        configuration.groups.initialRebalanceDelayMs = 0
        let broker = try Broker(configuration: configuration, logger: logger)
        let services = broker.services
        let brokerTask = Task {
            try await withThrowingDiscardingTaskGroup { group in
                for service in services { group.addTask { try await service.run() } }
            }
        }
        defer { broker.shutdown() }
        let port = try await broker.listener.boundPort()
        let servers = ["127.0.0.1:\(port)"]
        print("Tributary demo: the tutorial's weather pipeline")
        print("  broker   127.0.0.1:\(port) (in this process), log in \(configuration.dataDirectory)\n")

        // 1. The station.
        print("1. The weather station sends one reading a day for \(days) days to topic 'weather'.")
        let admin = try KafkaAdmin(bootstrapServers: servers)
        try await admin.createTopic("weather", partitions: 1)
        await admin.close()
        var simulator = WeatherSimulator(bootstrapServers: servers)
        simulator.seed = seed
        simulator.count = Int64(days)
        let produceBar = ProgressBar(label: "   producing", total: Int64(days))
        simulator.onProgress = { produceBar.update($0) }
        let sent = try await simulator.run()
        produceBar.finish()
        var example = WeatherSimulation(seed: seed)
        print("   \(sent) readings, e.g. \(example.next().json)\n")

        // 2. The monthly consumer.
        print("2. The first consumer: every 30 readings, the month's averages, appended to a text file.")
        var monthly = WeatherPipeline(bootstrapServers: servers, window: .monthly, output: monthlyPath)
        monthly.stopAtEnd = true
        let monthlyBar = ProgressBar(label: "   aggregating", total: Int64(days))
        monthly.onProgress = { monthlyBar.update($0.recordsRead) }
        let m = try await monthly.run(logger: logger)
        monthlyBar.finish()
        let monthlyText = try String(contentsOfFile: monthlyPath, encoding: .utf8)
        let fields = monthlyText.split(separator: ",", omittingEmptySubsequences: false)
        let firstMonths = stride(from: 0, to: min(fields.count - 1, 12), by: 4).map { fields[$0..<min($0 + 4, fields.count)].joined(separator: ",") + "," }
        print("   \(m.windowsEmitted) months in \(monthlyPath) (\(m.outputLength) bytes, one line):")
        print("   " + firstMonths.joined() + (m.windowsEmitted > 3 ? "..." : "") + "\n")

        // 3. The business logic changes.
        print("3. The business logic changes: weekly averages, in Fahrenheit, as CSV, in the lake.")
        print("   Kafka kept every reading, so the new consumer replays the topic from offset 0.")
        var weekly = WeatherPipeline(bootstrapServers: servers, window: .weekly, output: weeklyURL)
        weekly.mode = .reprocess
        weekly.stopAtEnd = true
        let weeklyBar = ProgressBar(label: "   reprocessing", total: Int64(days))
        weekly.onProgress = { weeklyBar.update($0.recordsRead) }
        let w = try await weekly.run(logger: logger)
        weeklyBar.finish()
        let csv = try await readObject(weeklyURL, logger: logger)
        let lines = csv.split(separator: "\n")
        print("   \(w.windowsEmitted) weeks in \(weeklyURL) (\(w.outputLength) bytes):")
        for line in lines.prefix(4) { print("     " + line) }
        if lines.count > 4 { print("     ... \(lines.count - 4) more rows") }
        print()

        // 4. The chart.
        let temperatures = lines.dropFirst().compactMap { line -> Double? in
            let cells = line.split(separator: ",")
            return cells.count > 1 ? Double(cells[1]) : nil
        }
        print("4. Weekly average temperature (°F), \(temperatures.count) weeks:")
        for row in terminalChart(temperatures, width: 64, height: 10) { print("   " + row) }
        print()

        print("Where everything is:")
        print("  topic 'weather'       \(sent) records, \(configuration.dataDirectory)/weather-0/")
        print("  monthly output        \(monthlyPath)  (checkpoint: \(monthlyPath).checkpoint.json)")
        print("  weekly output (lake)  \(weeklyURL)  (checkpoint: \(weeklyURL).checkpoint.json)")
        print("  consumer groups       weather-monthly, weather-weekly (positions committed after each checkpoint)")
        print("\nRun it yourself against a broker: `tributary serve`, then")
        print("  tributary weather simulate --bootstrap-server 127.0.0.1:9092 --topic weather --rate 10/s")
        print("  tributary weather aggregate --bootstrap-server 127.0.0.1:9092 --topic weather --window monthly")
        print("  tributary weather aggregate --bootstrap-server 127.0.0.1:9092 --topic weather --window weekly --reprocess")

        brokerTask.cancel()
        _ = try? await brokerTask.value
    }

    /// Makes `root` an empty demo directory; refuses to empty a directory that is not one.
    private func prepare(_ root: String) throws {
        let fm = FileManager.default
        let marker = root + "/.tributary-demo"
        if fm.fileExists(atPath: root) {
            let contents = try fm.contentsOfDirectory(atPath: root)
            if !contents.isEmpty {
                guard fm.fileExists(atPath: marker) else {
                    throw CLIError("\(root) is not empty and was not made by `tributary demo`; choose another --data-dir")
                }
                for item in contents { try fm.removeItem(atPath: root + "/" + item) }
            }
        }
        try fm.createDirectory(atPath: root, withIntermediateDirectories: true)
        _ = fm.createFile(atPath: marker, contents: Data())
    }

    private func readObject(_ url: String, logger: Logger) async throws -> String {
        let (sink, store) = try WeatherPipeline.makeSink(url, logger: logger)
        guard let objectSink = sink as? ObjectSink else { return "" }
        let body = try await objectSink.store.get(key: objectSink.key)
        try await store?.shutdown()
        return String(buffer: body)
    }
}

/// A one-line progress bar on a terminal; silent when stdout is not one.
final class ProgressBar: @unchecked Sendable {
    // @unchecked: `lastDrawn` is guarded by `lock`; updates come from the pipeline's task.
    private let label: String
    private let total: Int64
    private let enabled = isatty(STDOUT_FILENO) == 1
    private let lock = NSLock()
    private var lastDrawn = ContinuousClock.now - .seconds(1)
    private let started = ContinuousClock.now

    init(label: String, total: Int64) {
        self.label = label
        self.total = max(total, 1)
    }

    func update(_ done: Int64, force: Bool = false) {
        guard enabled else { return }
        lock.lock()
        defer { lock.unlock() }
        let now = ContinuousClock.now
        guard force || now - lastDrawn >= .milliseconds(100) else { return }
        lastDrawn = now
        let fraction = min(1, Double(done) / Double(total))
        let width = 30
        let filled = Int(fraction * Double(width))
        let bar = String(repeating: "█", count: filled) + String(repeating: "░", count: width - filled)
        let elapsed = Double((now - started).components.attoseconds) / 1e18 + Double((now - started).components.seconds)
        let rate = elapsed > 0 ? Double(done) / elapsed : 0
        let line = "\(label) \(bar) \(Int(fraction * 100))% \(done)/\(total)  \(Int(rate)) records/s"
        FileHandle.standardOutput.write(Data(("\r" + line).utf8))
    }

    func finish() {
        guard enabled else { return }
        update(total, force: true)
        FileHandle.standardOutput.write(Data("\n".utf8))
    }
}

/// A bar chart of `values` in `height` rows of at most `width` columns; values are
/// averaged into columns when there are more of them than columns.
func terminalChart(_ values: [Double], width: Int, height: Int) -> [String] {
    guard !values.isEmpty else { return ["(no data)"] }
    let columns = min(width, values.count)
    var buckets: [Double] = []
    for c in 0..<columns {
        let lo = c * values.count / columns
        let hi = max(lo + 1, (c + 1) * values.count / columns)
        let slice = values[lo..<hi]
        buckets.append(slice.reduce(0, +) / Double(slice.count))
    }
    let low = buckets.min()!
    let high = buckets.max()!
    let span = max(high - low, 1e-9)
    let eighths = ["", "▁", "▂", "▃", "▄", "▅", "▆", "▇"]
    var rows: [String] = []
    for r in stride(from: height - 1, through: 0, by: -1) {
        var line = ""
        for b in buckets {
            let level = (b - low) / span * Double(height - 1) + 1  // 1 ... height, in rows
            let fill = level - Double(r)
            line += fill >= 1 ? "█" : fill > 0 ? (eighths[Int(fill * 8)].isEmpty ? " " : eighths[Int(fill * 8)]) : " "
        }
        let axis = r == height - 1 ? String(format: "%6.1f ┤", high) : r == 0 ? String(format: "%6.1f ┤", low) : "       │"
        rows.append(axis + line)
    }
    rows.append("       └" + String(repeating: "─", count: buckets.count))
    let perColumn = Double(values.count) / Double(columns)
    rows.append("        week 1" + String(repeating: " ", count: max(1, buckets.count - 14 - String(values.count).count))
                + "week \(values.count)" + (perColumn > 1 ? String(format: "  (%.1f weeks per column)", perColumn) : ""))
    return rows
}
