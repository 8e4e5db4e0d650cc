import Foundation
import KafkaClient
import Lake
import Logging
import ObjectStore

/// The tutorial's aggregation as a pipeline: what `tributary weather aggregate` and
/// `tributary demo` run.
public struct WeatherPipeline: Sendable {
    public enum Window: String, Sendable, CaseIterable {
        /// 30 records (or a calendar month of event time).
        case monthly
        /// 7 records (or a week of event time, Monday to Sunday).
        case weekly
    }
    public enum Mode: String, Sendable {
        /// Continue the output after its checkpoint.
        case resume
        /// Delete the output and rebuild it in place from offset 0.
        case fromBeginning
        /// Build a new output beside the old one from offset 0 and swap it in.
        case reprocess
    }

    public var bootstrapServers: [String]
    public var topic = "weather"
    public var window: Window
    public var unit: TemperatureUnit
    public var format: WeatherFormat
    /// A local path, `file:///dir/name`, or `s3://bucket/dir/name`.
    public var output: String
    public var groupId: String?
    public var mode: Mode = .resume
    public var stopAtEnd = false
    public var commitInterval: Duration = .seconds(1)
    /// Windows on the readings' `timestamp` field per `device_id` (calendar months, or
    /// weeks from Monday) instead of counts of records.
    public var eventTime = false
    public var onProgress: (@Sendable (RunProgress) -> Void)?
    /// Write one object per checkpoint under `output` (a directory or prefix) instead of
    /// rewriting one object; always so for Parquet.
    public var appendParts = false
    /// Records per poll (progress is reported after each).
    public var maxPollRecords = 10_000

    /// The tutorial's defaults: monthly in Celsius to `weather_aggregation.txt`, weekly in
    /// Fahrenheit to `weather_aggregation.csv`; the group `weather-<window>`.
    public init(bootstrapServers: [String], window: Window, unit: TemperatureUnit? = nil, format: WeatherFormat? = nil,
                output: String? = nil, groupId: String? = nil) {
        self.bootstrapServers = bootstrapServers
        self.window = window
        self.unit = unit ?? (window == .monthly ? .celsius : .fahrenheit)
        let format = format ?? (window == .monthly ? .txt : .csv)
        self.format = format
        self.output = output ?? (format == .parquet ? "weather_aggregation" : "weather_aggregation.\(format.rawValue)")
        self.groupId = groupId ?? "weather-\(window.rawValue)"
    }

    var spec: WindowSpec {
        switch (window, eventTime) {
        case (.monthly, false): return .count(30)
        case (.weekly, false): return .count(7)
        case (.monthly, true): return .calendarMonths(allowedLatenessMs: 86_400_000)
        // 1970-01-01 was a Thursday: weeks from Monday start 4 days later.
        case (.weekly, true): return .tumbling(sizeMs: 7 * 86_400_000, offsetMs: 4 * 86_400_000, allowedLatenessMs: 86_400_000)
        }
    }

    /// What the checkpoint calls this logic; changing any part needs a rebuild.
    var pipelineName: String {
        "weather \(window.rawValue)\(eventTime ? " event-time" : "") \(unit.rawValue) \(format.rawValue)"
    }

    /// The stream: parse, window, average.
    public var stream: WindowedStream<WeatherAverages> {
        let source = StreamSource(bootstrapServers: bootstrapServers, topic: topic, groupId: groupId)
        // A concrete closure over the record: no reabstraction thunk copying each record.
        let readings = Stream<WeatherReading>(source: source) { try WeatherReading(record: $0) }
        if eventTime {
            return readings.window(spec, key: { $0.deviceId }, eventTime: { $0.timestamp }, aggregate: WeatherAverages())
        }
        return readings.window(spec, aggregate: WeatherAverages())
    }

    /// The row layout; event-time windows are labelled by date (and device).
    public var rowFormat: RowFormat<WeatherAverages.Means> {
        guard eventTime else { return weatherRowFormat(window: window.rawValue, unit: unit, format: format) }
        let monthly = window == .monthly
        return weatherRowFormat(window: window.rawValue, unit: unit, format: format) { r in
            let date = monthly ? calendarMonthLabel(r.id) : calendarDayLabel(r.id)
            return r.key.map { "\($0)/\(date)" } ?? date
        }
    }

    /// Runs it into `output` as `mode` says.
    /// The Parquet columns of the weather rows.
    public var parquetSchema: ParquetSchema {
        ParquetSchema(columns: [
            ParquetColumn(name: window == .monthly ? "month_id" : "week_id", type: eventTime ? .string : .int64),
            ParquetColumn(name: "avg_temp", type: .double),
            ParquetColumn(name: "avg_co", type: .int64),
            ParquetColumn(name: "avg_humidity", type: .int64),
        ])
    }

    public func run(logger: Logger = Logger(label: "weather")) async throws -> RunSummary {
        var options = RunOptions()
        options.stopAtEnd = stopAtEnd
        options.commitInterval = commitInterval
        options.pipelineName = pipelineName
        options.onProgress = onProgress
        options.maxPollRecords = maxPollRecords
        options.start = mode == .fromBeginning ? .fromBeginning : .resume
        if appendParts || format == .parquet {
            guard mode != .reprocess else {
                throw StreamsError(.invalidArgument, "--reprocess swaps one object; with parts (or Parquet) use --from-beginning, or reprocess into another output")
            }
            let (store, prefix) = try Self.makeStore(output, directory: true, logger: logger)
            let encoding: PartsSink.Encoding = format == .parquet
                ? .parquet(parquetSchema) : .text(fileExtension: format.rawValue, header: rowFormat.header)
            let sink = PartsSink(store: store, prefix: prefix, encoding: encoding, location: output)
            do {
                let summary = try await stream.run(into: sink, format: rowFormat, options: options, logger: logger)
                try await store.shutdown()
                return summary
            } catch {
                try? await store.shutdown()
                throw error
            }
        }
        let (sink, store) = try Self.makeSink(output, logger: logger)
        do {
            // Concrete sink types, so the run loop is specialized (no generic metadata per record).
            let summary: RunSummary
            if let file = sink as? FileSink {
                summary = try await run(stream, into: file, options: options, logger: logger)
            } else if let object = sink as? ObjectSink {
                summary = try await run(stream, into: object, options: options, logger: logger)
            } else {
                summary = try await run(stream, into: sink, options: options, logger: logger)
            }
            try await store?.shutdown()
            return summary
        } catch {
            try? await store?.shutdown()
            throw error
        }
    }

    private func run<S: ReplaceableSink>(_ stream: WindowedStream<WeatherAverages>, into sink: S, options: RunOptions,
                                         logger: Logger) async throws -> RunSummary {
        mode == .reprocess
            ? try await stream.reprocess(into: sink, format: rowFormat, options: options, logger: logger)
            : try await stream.run(into: sink, format: rowFormat, options: options, logger: logger)
    }

    /// A sink for an output name: a `FileSink` for a path, an `ObjectSink` for
    /// `file:///dir/name` (a `LocalObjectStore` rooted at `dir`) or `s3://bucket/dir/name`
    /// (S3 configured from the AWS environment, `AWS_ENDPOINT_URL` included). Returns the
    /// store too, to shut down after the run.
    public static func makeSink(_ output: String, logger: Logger) throws -> (any ReplaceableSink, (any ObjectStore)?) {
        guard output.hasPrefix("s3://") || output.hasPrefix("file://") else {
            guard !output.isEmpty, !output.hasSuffix("/") else {
                throw StreamsError(.invalidArgument, "--output needs a file name, got '\(output)'")
            }
            return (FileSink(path: output), nil)
        }
        let (store, key) = try makeStore(output, directory: false, logger: logger)
        return (ObjectSink(store: store, key: key, location: output), store)
    }

    /// The store holding `output` and the key in it: the last path segment is the key; a
    /// plain path with `directory` is a local store rooted at the path itself.
    static func makeStore(_ output: String, directory: Bool, logger: Logger) throws -> (any ObjectStore, String) {
        if directory, !(output.hasPrefix("s3://") || output.hasPrefix("file://")) {
            let root = URL(fileURLWithPath: output).standardizedFileURL.path
            try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
            return (try LocalObjectStore(root: root), "")
        }
        guard var components = URLComponents(string: output) else {
            throw StreamsError(.invalidArgument, "'\(output)' is not a URL")
        }
        let path = components.path
        guard let slash = path.lastIndex(of: "/"), path.index(after: slash) < path.endIndex else {
            throw StreamsError(.invalidArgument, "'\(output)' names no object (expected s3://bucket/name or file:///dir/name)")
        }
        let key = String(path[path.index(after: slash)...])
        components.path = String(path[..<slash])
        if components.scheme == "file", components.path.isEmpty { components.path = "/" }
        guard let storeText = components.string else { throw StreamsError(.invalidArgument, "'\(output)' is not a URL") }
        let url: ObjectStoreURL
        do {
            url = try ObjectStoreURL(parsing: storeText)
        } catch {
            throw StreamsError(.invalidArgument, "--output \(output): \(error)")
        }
        if case .local(let dir) = url {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        }
        return (try url.makeStore(logger: logger), key)
    }
}

/// Sends simulated readings to a topic with an idempotent producer (acks=all).
public struct WeatherSimulator: Sendable {
    public var bootstrapServers: [String]
    public var topic = "weather"
    public var seed: UInt64 = 1
    /// Devices with `device_id` keys and event timestamps; nil for the tutorial's station.
    public var devices: Int?
    /// Readings to send; nil for no end.
    public var count: Int64?
    /// Readings per second; nil for as fast as the broker takes them.
    public var rate: Double?
    public var onProgress: (@Sendable (Int64) -> Void)?

    public init(bootstrapServers: [String]) {
        self.bootstrapServers = bootstrapServers
    }

    /// Sends until `count` readings are acknowledged (or the task is cancelled); returns
    /// how many were sent. Throws the first delivery failure.
    public func run() async throws -> Int64 {
        var configuration = KafkaProducer.Configuration(bootstrapServers: bootstrapServers)
        configuration.enableIdempotence = true
        configuration.acks = .all
        configuration.lingerMs = rate == nil ? 5 : 0
        // Full speed: large batches, which are also cheaper for every reader of the topic.
        if rate == nil { configuration.batchSize = 512 << 10 }
        let producer = try KafkaProducer(configuration: configuration)
        let runner = Task { try await producer.run() }
        let failure = LockedBox<KafkaClientError?>(nil)
        var simulation = WeatherSimulation(seed: seed, devices: devices)
        let started = ContinuousClock.now
        var sent: Int64 = 0
        do {
            while count.map({ sent < $0 }) ?? true, !Task.isCancelled {
                if let error = failure.withLock({ $0 }) { throw error }
                if let rate {
                    let due = started + .seconds(Double(sent) / rate)
                    if due > .now {
                        await producer.flush()
                        try await Task.sleep(until: due)
                    }
                }
                let reading = simulation.next()
                try await producer.sendAndForget(topic: topic, key: reading.deviceId, value: reading.json) { result in
                    if case .failure(let error) = result { failure.withLock { $0 = $0 ?? error } }
                }
                sent += 1
                if sent % 10_000 == 0 || rate != nil { onProgress?(sent) }
            }
            await producer.close()
            try await runner.value
        } catch {
            runner.cancel()
            _ = try? await runner.value
            throw error
        }
        if let error = failure.withLock({ $0 }) { throw error }
        onProgress?(sent)
        return sent
    }
}
