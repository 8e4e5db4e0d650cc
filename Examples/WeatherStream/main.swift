// The tutorial's monthly consumer, written with the Streams API instead of a hand-rolled
// loop. Run a broker and the station first:
//
//   swift run -c release tributary serve &
//   swift run -c release tributary weather simulate --count 3000 --seed 1 --devices 1
//   swift run -c release weather-example 127.0.0.1:9092
//
// It writes monthly.txt exactly as consumer_monthly.py writes weather_aggregation.txt,
// plus hottest.csv: the hottest reading of every 10 days of the readings' event time
// (the `timestamp` field `--devices` adds: one reading a day). Both outputs keep a checkpoint beside them (<name>.checkpoint.json), so
// running the example again continues where it stopped instead of appending duplicates.

import Foundation
import Streams

let bootstrap = CommandLine.arguments.dropFirst().first ?? "127.0.0.1:9092"
let source = StreamSource(bootstrapServers: [bootstrap], topic: "weather", groupId: "weather-example")

// Records to readings. A record that is not a reading stops the pipeline with its offset.
let readings = Stream(source: source).map { record in try WeatherReading(json: record.value) }

// 1. The tutorial's logic: every 30 readings, the averages, on one comma-terminated line.
//    WeatherAverages sums in record order and divides, as Python's sum()/len() does;
//    pythonRound and pythonRepr print what Python's round() and str() print.
let monthly = readings.window(.count(30), aggregate: WeatherAverages())
let monthlyLine = RowFormat<WeatherAverages.Means> { window in
    let m = window.value
    return "\(window.id),\(pythonRepr(pythonRound(m.temperature, ndigits: 1))),\(pythonRound(m.co)),\(pythonRound(m.humidity)),"
}

// 2. Something the tutorial did not do: the hottest reading per 10 days of event time,
//    with records up to a day late still counted. Max is one of the built-in aggregations;
//    Both runs two of them side by side.
let tenDays: Int64 = 10 * 86_400_000
let hottest = readings.window(.tumbling(sizeMs: tenDays, allowedLatenessMs: 86_400_000),
                              eventTime: { $0.timestamp },  // nil: the record's timestamp
                              aggregate: Both(Max<WeatherReading> { $0.temperature }, Count<WeatherReading>()))
let hottestRow = RowFormat<(Double?, Int)>(header: "period_start,max_temp,readings\n") { window in
    "\(calendarDayLabel(window.start!)),\(window.value.0.map(pythonRepr) ?? ""),\(window.value.1)\n"
}

// Read up to the end of the topic as it is now, then stop (leave stopAtEnd off to follow
// the station forever, as the Python consumer does).
var options = RunOptions()
options.stopAtEnd = true

let months = try await monthly.run(into: FileSink(path: "monthly.txt"), format: monthlyLine, options: options)
print("monthly.txt: \(months.windowsEmitted) months, next offsets \(months.offsets)")

options.pipelineName = "hottest per 10 days"
let periods = try await hottest.run(into: FileSink(path: "hottest.csv"), format: hottestRow, options: options)
print("hottest.csv: \(periods.windowsEmitted) periods (\(periods.lateDropped) readings too late)")
