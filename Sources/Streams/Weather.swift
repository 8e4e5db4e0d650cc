import Foundation
import KafkaClient
import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// The tutorial's weather station and its two aggregations, shared by
// `tributary weather`, `tributary demo` and the tests.

/// One reading of the tutorial's weather station: the JSON object
/// `{"record_id": 1, "temperature": 20.0, "CO_concentration": 700, "humidity": 55}`,
/// with `device_id` and `timestamp` (ms since the epoch) when the station simulates
/// several devices.
public struct WeatherReading: Sendable, Hashable {
    public var recordId: Int64
    public var temperature: Double
    /// Integers in the tutorial's JSON; Doubles here hold them exactly (below 2^53), so
    /// sums and means equal Python's int arithmetic.
    public var co: Double
    public var humidity: Double
    public var deviceId: String?
    public var timestamp: Int64?

    public init(recordId: Int64, temperature: Double, co: Double, humidity: Double, deviceId: String? = nil, timestamp: Int64? = nil) {
        self.recordId = recordId
        self.temperature = temperature
        self.co = co
        self.humidity = humidity
        self.deviceId = deviceId
        self.timestamp = timestamp
    }

    /// Parses the JSON as Python's `json.loads` reads numbers: integers exactly, other
    /// numbers correctly rounded (`strtod`, as Python's `float()`).
    ///
    /// A flat object is parsed by hand (one pass, no allocation besides `device_id`);
    /// anything else goes through `JSONSerialization`. Throws for a missing field or a
    /// value that is not JSON.
    public init(json: __shared ByteBuffer?) throws {
        guard let ok = json?.withUnsafeReadableBytes({ fields in FlatJSON.parsed(fields) }) else {
            throw StreamsError(.invalidRecord, "a weather record without a value")
        }
        var fields = ok
        if !fields.complete { fields = try FlatJSON(fallback: Data(json!.readableBytesView)) }
        guard let t = fields.temperature, let co = fields.co, let h = fields.humidity else {
            throw StreamsError(.invalidRecord, "a weather record needs temperature, CO_concentration and humidity: \(String(buffer: json!).prefix(200))")
        }
        self.init(recordId: fields.recordId ?? 0, temperature: t, co: co, humidity: h, deviceId: fields.deviceId, timestamp: fields.timestamp)
    }

    /// Parses a record's value in place (no copy of the record or its buffer).
    public init(record: __shared ConsumerRecord) throws {
        try self.init(json: record.value)
    }

    /// The JSON the tutorial's producer sends (`json.dumps` of its dict: `": "` and
    /// `", "` separators, floats as Python prints them), plus `device_id` and
    /// `timestamp` when set.
    public var json: String {
        var s = "{\"record_id\": \(recordId), \"temperature\": \(pythonRepr(temperature)), "
            + "\"CO_concentration\": \(Int(co)), \"humidity\": \(Int(humidity))"
        if let deviceId { s += ", \"device_id\": \"\(deviceId)\"" }
        if let timestamp { s += ", \"timestamp\": \(timestamp)" }
        return s + "}"
    }
}

/// The fields of a flat JSON object the weather pipeline needs.
struct FlatJSON {
    var recordId: Int64?
    var temperature: Double?
    var co: Double?
    var humidity: Double?
    var deviceId: String?
    var timestamp: Int64?
    /// False when the fast parser gave up and the full one must read the value.
    var complete = true

    init() {}

    static func parsed(_ bytes: UnsafeRawBufferPointer) -> FlatJSON {
        var f = FlatJSON()
        if f.parseTutorialLayout(bytes) { return f }
        f = FlatJSON()
        f.complete = f.parse(bytes)
        return f
    }

    /// The exact bytes `json.dumps` gives for the tutorial's dict,
    /// `{"record_id": N, "temperature": X, "CO_concentration": N, "humidity": N}`: matched
    /// by constant pieces, numbers read as in `parse`. False for anything else.
    @inline(__always)
    mutating func parseTutorialLayout(_ b: UnsafeRawBufferPointer) -> Bool {
        var i = 0
        @inline(__always) func expect(_ piece: StaticString) -> Bool {
            let n = piece.utf8CodeUnitCount
            guard i + n <= b.count, memcmp(b.baseAddress! + i, piece.utf8Start, n) == 0 else { return false }
            i += n
            return true
        }
        @inline(__always) func integer() -> Int64? {
            var negative = false
            if i < b.count, b[i] == UInt8(ascii: "-") { negative = true; i += 1 }
            let start = i
            var v: Int64 = 0
            while i < b.count, b[i] >= UInt8(ascii: "0"), b[i] <= UInt8(ascii: "9"), i - start < 18 {
                v = v * 10 + Int64(b[i] - UInt8(ascii: "0"))
                i += 1
            }
            guard i > start, i < b.count, b[i] == UInt8(ascii: ",") || b[i] == UInt8(ascii: "}") else { return nil }
            return negative ? -v : v
        }
        guard expect(#"{"record_id": "#), let id = integer(), expect(#", "temperature": "#) else { return false }
        let start = i
        while i < b.count, b[i] != UInt8(ascii: ",") { i += 1 }
        guard let t = fastDecimal(UnsafeRawBufferPointer(rebasing: b[start..<i])) else { return false }
        guard expect(#", "CO_concentration": "#), let co = integer(), expect(#", "humidity": "#), let h = integer(),
              expect("}"), i == b.count else { return false }
        recordId = id
        temperature = t
        self.co = Double(co)
        humidity = Double(h)
        return true
    }

    init(fallback data: Data) throws {
        guard let object = (try? JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])) as? [String: Any] else {
            throw StreamsError(.invalidRecord, "not a JSON object: \(String(decoding: data.prefix(200), as: UTF8.self))")
        }
        func number(_ k: String) -> Double? { (object[k] as? NSNumber).map { $0.doubleValue } }
        recordId = (object["record_id"] as? NSNumber)?.int64Value
        temperature = number("temperature")
        co = number("CO_concentration")
        humidity = number("humidity")
        deviceId = object["device_id"] as? String
        timestamp = (object["timestamp"] as? NSNumber)?.int64Value
    }

    /// Parses `{"k": v, ...}` with number, string (no escapes), true/false/null values;
    /// false for anything else, so the caller falls back to the full parser.
    mutating func parse(_ b: UnsafeRawBufferPointer) -> Bool {
        var i = 0
        let n = b.count
        @inline(__always) func skipSpace(_ i: inout Int) { while i < n, b[i] == 0x20 || b[i] == 0x0A || b[i] == 0x0D || b[i] == 0x09 { i += 1 } }
        skipSpace(&i)
        guard i < n, b[i] == UInt8(ascii: "{") else { return false }
        i += 1
        skipSpace(&i)
        if i < n, b[i] == UInt8(ascii: "}") { return true }
        while true {
            skipSpace(&i)
            guard i < n, b[i] == UInt8(ascii: "\"") else { return false }
            i += 1
            let keyStart = i
            while i < n, b[i] != UInt8(ascii: "\"") {
                if b[i] == UInt8(ascii: "\\") { return false }
                i += 1
            }
            guard i < n else { return false }
            let key = UnsafeRawBufferPointer(rebasing: b[keyStart..<i])
            i += 1
            skipSpace(&i)
            guard i < n, b[i] == UInt8(ascii: ":") else { return false }
            i += 1
            skipSpace(&i)
            guard i < n else { return false }
            let c = b[i]
            if c == UInt8(ascii: "\"") {
                i += 1
                let start = i
                while i < n, b[i] != UInt8(ascii: "\"") {
                    if b[i] == UInt8(ascii: "\\") { return false }
                    i += 1
                }
                guard i < n else { return false }
                if FieldName(key) == .deviceId {
                    deviceId = String(decoding: UnsafeRawBufferPointer(rebasing: b[start..<i]), as: UTF8.self)
                }
                i += 1
            } else if c == UInt8(ascii: "t") || c == UInt8(ascii: "f") || c == UInt8(ascii: "n") {
                while i < n, b[i] >= UInt8(ascii: "a"), b[i] <= UInt8(ascii: "z") { i += 1 }
            } else {
                let start = i
                var isInteger = true
                while i < n {
                    let d = b[i]
                    if d >= UInt8(ascii: "0") && d <= UInt8(ascii: "9") || d == UInt8(ascii: "-") {
                    } else if d == UInt8(ascii: ".") || d == UInt8(ascii: "e") || d == UInt8(ascii: "E") || d == UInt8(ascii: "+") {
                        isInteger = false
                    } else {
                        break
                    }
                    i += 1
                }
                guard i > start, i - start < 64 else { return false }
                let text = UnsafeRawBufferPointer(rebasing: b[start..<i])
                var intValue: Int64 = 0
                var value: Double
                if isInteger, i - start <= 18 {
                    var negative = false
                    for (j, d) in text.enumerated() {
                        if d == UInt8(ascii: "-") {
                            guard j == 0, text.count > 1 else { return false }
                            negative = true
                        } else {
                            intValue = intValue * 10 + Int64(d - UInt8(ascii: "0"))
                        }
                    }
                    if negative { intValue = -intValue }
                    value = Double(intValue)
                } else if let fast = fastDecimal(text) {
                    value = fast
                    intValue = Int64(exactly: value.rounded(.towardZero)) ?? 0
                } else {
                    // strtod: correctly rounded, as Python's float().
                    var buffer: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0, 0, 0)
                    var end: Int = 0
                    value = withUnsafeMutableBytes(of: &buffer) { raw in
                        raw.copyMemory(from: text)
                        raw[text.count] = 0
                        let base = raw.baseAddress!.assumingMemoryBound(to: CChar.self)
                        var endPointer: UnsafeMutablePointer<CChar>?
                        let v = strtod(base, &endPointer)
                        end = endPointer.map { $0 - base } ?? 0
                        return v
                    }
                    guard end == text.count else { return false }
                    intValue = Int64(exactly: value.rounded(.towardZero)) ?? 0
                }
                switch FieldName(key) {
                case .temperature: temperature = value
                case .co: co = value
                case .humidity: humidity = value
                case .recordId: recordId = intValue
                case .timestamp: timestamp = intValue
                default: break
                }
            }
            skipSpace(&i)
            guard i < n else { return false }
            if b[i] == UInt8(ascii: ",") { i += 1; continue }
            guard b[i] == UInt8(ascii: "}") else { return false }
            i += 1
            skipSpace(&i)
            return i == n
        }
    }
}

/// The weather fields, recognised by length and a few bytes instead of a string compare.
enum FieldName {
    case temperature, co, humidity, recordId, timestamp, deviceId, other

    @inline(__always)
    init(_ key: UnsafeRawBufferPointer) {
        func equals(_ name: StaticString) -> Bool {
            name.utf8CodeUnitCount == key.count && memcmp(key.baseAddress!, name.utf8Start, key.count) == 0
        }
        switch key.count {
        case 11: self = equals("temperature") ? .temperature : .other
        case 16: self = equals("CO_concentration") ? .co : .other
        case 8: self = equals("humidity") ? .humidity : .other
        case 9: self = equals("record_id") ? .recordId : equals("timestamp") ? .timestamp : equals("device_id") ? .deviceId : .other
        default: self = .other
        }
    }
}

private let exactPowersOfTen: [Double] = (0...22).map { pow(10, Double($0)) }

/// `[-]digits.digits` with at most 15 significant digits: the integer of all digits
/// and the power of ten to divide by are both exact Doubles, so one division rounds
/// correctly (Clinger's fast path) and equals `strtod`. Nil for anything else.
@inline(__always)
func fastDecimal(_ text: UnsafeRawBufferPointer) -> Double? {
    var i = 0
    var negative = false
    if text.first == UInt8(ascii: "-") {
        negative = true
        i = 1
    }
    var mantissa: Int64 = 0
    var digits = 0
    var fraction = 0
    var seenDot = false
    while i < text.count {
        let c = text[i]
        if c == UInt8(ascii: ".") {
            guard !seenDot else { return nil }
            seenDot = true
        } else if c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9") {
            mantissa = mantissa * 10 + Int64(c - UInt8(ascii: "0"))
            digits += 1
            if seenDot { fraction += 1 }
            guard digits <= 15 else { return nil }
        } else {
            return nil
        }
        i += 1
    }
    guard digits > 0, fraction <= 22 else { return nil }
    let value = Double(mantissa) / exactPowersOfTen[fraction]
    return negative ? -value : value
}

/// The means of a window of readings, as the tutorial computes them: each field summed
/// left to right in record order, divided by the count.
public struct WeatherAverages: Aggregation {
    public struct State: Codable, Sendable {
        public var temperature: Double = 0
        public var co: Double = 0
        public var humidity: Double = 0
    }
    public struct Means: Sendable, Hashable {
        public var temperature: Double
        public var co: Double
        public var humidity: Double
    }
    public init() {}
    public func initialState() -> State { State() }
    @inline(__always)
    public func add(_ r: WeatherReading, to state: inout State) {
        state.temperature += r.temperature
        state.co += r.co
        state.humidity += r.humidity
    }
    public func result(of state: State, count: Int) -> Means {
        let n = Double(count)
        return Means(temperature: state.temperature / n, co: state.co / n, humidity: state.humidity / n)
    }
}

/// The tutorial's output formats.
public enum WeatherFormat: String, Sendable, CaseIterable {
    /// `weather_aggregation.txt`: `id,avg_temp,avg_co,avg_humidity,` per window on one
    /// comma-terminated line.
    case txt
    /// `weather_aggregation.csv`: a `week_id,...` header then one line per window.
    case csv
    /// Parquet files (one per checkpoint) under the output directory or prefix, with the
    /// columns of the CSV: the id (int64, or string for event-time windows), `avg_temp`
    /// (double), `avg_co` and `avg_humidity` (int64).
    case parquet
}

/// The temperature unit of the output.
public enum TemperatureUnit: String, Sendable, CaseIterable {
    /// `round(avg, 1)`.
    case celsius
    /// `round(avg * 1.8, 1) + 32`, exactly the tutorial's expression.
    case fahrenheit
}

/// The tutorial's row layout for a window of readings.
public func weatherRowFormat(window: String, unit: TemperatureUnit, format: WeatherFormat,
                             label: (@Sendable (WindowResult<WeatherAverages.Means>) -> String)? = nil) -> RowFormat<WeatherAverages.Means> {
    let idColumn = window == "monthly" ? "month_id" : "week_id"
    return RowFormat(header: format == .csv ? "\(idColumn),avg_temp,avg_co,avg_humidity\n" : nil) { r in
        let m = r.value
        let temperature = unit == .celsius ? pythonRound(m.temperature, ndigits: 1) : pythonRound(m.temperature * 1.8, ndigits: 1) + 32
        let id = label?(r) ?? String(r.id)
        let row = "\(id),\(pythonRepr(temperature)),\(pythonRound(m.co)),\(pythonRound(m.humidity))"
        return format == .txt ? row + "," : row + "\n"
    }
}

// MARK: the station

/// The tutorial's weather station: bounded random walks of temperature (-10..35 °C, at
/// most 5 per step, one decimal), humidity (1..100, at most 20) and CO (50..1500, at
/// most 100), with the same formulas as `producer.py`.
///
/// Deterministic for a seed, but not Python's Mersenne Twister: the same seed gives the
/// same readings in every Tributary build, not the ones Python's `random.seed` would.
public struct WeatherStation: Sendable {
    var rng: SplitMix64
    var temperature: Double
    var humidity: Int
    var co: Int

    public init(seed: UInt64) {
        rng = SplitMix64(seed: seed)
        temperature = 0
        humidity = 0
        co = 0
        temperature = pythonRound(uniform(-10, 35), ndigits: 1)
        humidity = randint(1, 100)
        co = randint(50, 1500)
    }

    /// The next reading (the station's state moves on).
    public mutating func next(recordId: Int64) -> WeatherReading {
        let lowT = temperature - 5 < -10 ? -10 : temperature - 5
        let highT = temperature + 5 > 35 ? 35 : temperature + 5
        temperature = pythonRound(uniform(lowT, highT), ndigits: 1)
        humidity = randint(humidity - 20 < 1 ? 1 : humidity - 20, humidity + 20 > 100 ? 100 : humidity + 20)
        co = randint(co - 100 < 50 ? 50 : co - 100, co + 100 > 1500 ? 1500 : co + 100)
        return WeatherReading(recordId: recordId, temperature: temperature, co: Double(co), humidity: Double(humidity))
    }

    /// Python's `random.uniform(a, b)`: `a + (b - a) * random()`.
    mutating func uniform(_ a: Double, _ b: Double) -> Double {
        a + (b - a) * Double(rng.next() >> 11) * 0x1p-53
    }

    /// Python's `random.randint(a, b)`: uniform over `a...b`, by rejection (no modulo bias).
    mutating func randint(_ a: Int, _ b: Int) -> Int {
        let span = UInt64(b - a + 1)
        let mask = UInt64.max >> UInt64(span.leadingZeroBitCount)
        while true {
            let v = rng.next() & mask
            if v < span { return a + Int(v) }
        }
    }
}

/// SplitMix64: small, fast and good enough for a simulation.
struct SplitMix64: Sendable {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Several stations, one per device, with event timestamps: device `d` sends one
/// reading a day starting at `start`; record ids count across devices.
public struct WeatherSimulation: Sendable {
    public var devices: Int?
    var stations: [WeatherStation]
    public var start: Int64
    public private(set) var produced: Int64 = 0

    /// - Parameters:
    ///   - devices: nil for the tutorial's single station without `device_id`/`timestamp`.
    ///   - start: the first event time (ms); 2026-01-01T00:00Z by default.
    public init(seed: UInt64, devices: Int? = nil, start: Int64 = 1_767_225_600_000) {
        self.devices = devices
        self.start = start
        if let devices {
            stations = (0..<devices).map { WeatherStation(seed: seed &+ UInt64($0) &* 0x9E37_79B9) }
        } else {
            stations = [WeatherStation(seed: seed)]
        }
    }

    /// The next reading; `device_id` is `station-<n>` (n from 1) when there are devices.
    public mutating func next() -> WeatherReading {
        let index = Int(produced % Int64(stations.count))
        let day = produced / Int64(stations.count)
        produced += 1
        var r = stations[index].next(recordId: produced)
        if devices != nil {
            r.deviceId = "station-\(index + 1)"
            r.timestamp = start + day * 86_400_000
        }
        return r
    }
}
