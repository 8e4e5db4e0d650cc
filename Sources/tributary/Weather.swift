import ArgumentParser
import Foundation
import Logging
import Streams

/// The tutorial's weather station and aggregations, built in.
struct Weather: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The tutorial's weather pipeline: simulate the station, aggregate its readings.",
        subcommands: [Simulate.self, Aggregate.self]
    )

    struct Simulate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Send the tutorial's weather readings to a topic.",
            discussion: """
            The same bounded random walk and JSON as the tutorial's producer.py. With --seed the \
            readings are the same on every run (from Tributary's own generator, not Python's). \
            With --devices, each reading carries a device_id (also the record key) and an event \
            timestamp (one reading per device per day from 2026-01-01). Without --count or \
            --rate it sends one reading a second forever, as producer.py does.
            """
        )

        @OptionGroup var connection: ConnectionOptions
        @Option(help: "The topic.") var topic = "weather"
        @Option(help: "Readings to send, then exit.") var count: Int64?
        @Option(help: "Readings per second (e.g. 100 or 100/s).") var rate: String?
        @Option(help: "Simulated devices (adds device_id and timestamp).") var devices: Int?
        @Option(help: "Seed of the random walk.") var seed: UInt64?

        func validate() throws {
            if let count, count < 0 { throw ValidationError("--count must be >= 0") }
            if let devices, devices < 1 { throw ValidationError("--devices must be >= 1") }
            if rate != nil, try parsedRate() == nil { throw ValidationError("--rate must be a positive number of readings per second, e.g. 100/s") }
        }

        func parsedRate() throws -> Double? {
            guard var text = rate else { return nil }
            if text.hasSuffix("/s") { text.removeLast(2) }
            guard let r = Double(text), r > 0, r.isFinite else { return nil }
            return r
        }

        func run() async throws {
            var simulator = WeatherSimulator(bootstrapServers: connection.servers)
            simulator.topic = topic
            simulator.seed = seed ?? UInt64.random(in: 0...UInt64.max)
            simulator.devices = devices
            simulator.count = count
            simulator.rate = try parsedRate() ?? (count == nil ? 1 : nil)
            let sent: Int64
            do {
                sent = try await simulator.run()
            } catch {
                throw CLIError("weather simulate: \(error)")
            }
            print("sent \(sent) readings to \(topic)")
        }
    }

    struct Aggregate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Aggregate weather readings as the tutorial's consumers do, exactly once.",
            discussion: """
            monthly: windows of 30 readings, 'month_id,avg_temp,avg_co,avg_humidity,' on one line \
            (weather_aggregation.txt). weekly: windows of 7, Fahrenheit, CSV with a header \
            (weather_aggregation.csv). Numbers are the Python scripts' to the byte. \
            A checkpoint (<output>.checkpoint.json) is kept with the output: a restart continues \
            after the last checkpointed window, with no row lost or repeated. --from-beginning \
            rebuilds the output in place; --reprocess builds a new one beside it from offset 0 and \
            swaps it in once caught up, leaving the old one untouched until then. Without \
            --stop-at-end it follows the topic until interrupted.
            """
        )

        @OptionGroup var connection: ConnectionOptions
        @Option(help: "The topic.") var topic = "weather"
        @Option(help: "monthly (30 readings) or weekly (7 readings).") var window: String
        @Option(help: "celsius or fahrenheit (default: celsius monthly, fahrenheit weekly).") var unit: String?
        @Option(help: "txt, csv or parquet (default: txt monthly, csv weekly).") var format: String?
        @Option(help: "A path, file:///dir/name or s3://bucket/key (default: weather_aggregation.txt|csv).") var output: String?
        @Option(help: "The consumer group its position is committed to (default: weather-<window>).") var group: String?
        @Flag(help: "Delete the output and rebuild it from offset 0.") var fromBeginning = false
        @Flag(help: "Build a new output from offset 0 beside the old one, then swap it in.") var reprocess = false
        @Flag(help: "Exit once caught up with the end offsets seen at start.") var stopAtEnd = false
        @Flag(help: "Write one object per checkpoint under --output (a directory or prefix) instead of rewriting one.") var parts = false
        @Flag(help: "Window by the readings' timestamps (calendar months, weeks from Monday) per device.") var eventTime = false
        @Option(help: "Longest time in ms between checkpoints; 0 checkpoints after every window.") var commitIntervalMs = 1000
        @Option(help: "trace, debug, info, notice, warning, error or critical.") var logLevel = "warning"

        func validate() throws {
            guard WeatherPipeline.Window(rawValue: window) != nil else { throw ValidationError("--window must be monthly or weekly") }
            if let unit, TemperatureUnit(rawValue: unit) == nil { throw ValidationError("--unit must be celsius or fahrenheit") }
            if let format, WeatherFormat(rawValue: format) == nil { throw ValidationError("--format must be txt, csv or parquet") }
            if fromBeginning && reprocess { throw ValidationError("--from-beginning and --reprocess exclude each other") }
            if commitIntervalMs < 0 { throw ValidationError("--commit-interval-ms must be >= 0") }
            guard Logger.Level(rawValue: logLevel) != nil else { throw ValidationError("--log-level must be a log level") }
        }

        func run() async throws {
            let level = Logger.Level(rawValue: logLevel)!
            LoggingSystem.bootstrap { label in
                var handler = StreamLogHandler.standardError(label: label)
                handler.logLevel = level
                return handler
            }
            var pipeline = WeatherPipeline(
                bootstrapServers: connection.servers, window: WeatherPipeline.Window(rawValue: window)!,
                unit: unit.flatMap(TemperatureUnit.init(rawValue:)), format: format.flatMap(WeatherFormat.init(rawValue:)),
                output: output, groupId: group)
            pipeline.topic = topic
            pipeline.mode = fromBeginning ? .fromBeginning : reprocess ? .reprocess : .resume
            pipeline.stopAtEnd = stopAtEnd
            pipeline.eventTime = eventTime
            pipeline.appendParts = parts
            pipeline.commitInterval = .milliseconds(commitIntervalMs)
            let summary: RunSummary
            do {
                summary = try await pipeline.run(logger: Logger(label: "weather"))
            } catch {
                throw CLIError("weather aggregate: \(error)")
            }
            let offsets = summary.offsets.sorted { $0.key < $1.key }.map { "\($0.key):\($0.value)" }.joined(separator: ",")
            print("\(pipeline.output): \(summary.windowsEmitted) windows, \(summary.outputLength) bytes; "
                + "read \(summary.recordsRead) records this run; next offsets \(offsets)")
        }
    }
}
