import Foundation
import NIOCore
import XCTest
@testable import Streams

final class WindowTests: XCTestCase {
    func testCountWindowsArePerPartitionAndNumberedFromOne() throws {
        var w = try Windower(spec: .count(3), aggregation: Sum<Double> { $0 })
        var out: [WindowResult<Double>] = []
        for (i, p) in [0, 1, 0, 0, 1, 0, 0, 0, 1].enumerated() {
            w.add(Double(i), partition: Int32(p), eventTime: 0, closed: &out)
        }
        XCTAssertEqual(out.map(\.partition), [0, 0, 1])
        XCTAssertEqual(out.map(\.id), [1, 2, 1])
        XCTAssertEqual(out.map(\.value), [5.0, 18.0, 13.0])
        XCTAssertEqual(w.state.openWindows, 0)
    }

    func testKeyedCountWindows() throws {
        var w = try Windower(spec: .count(2), aggregation: Count<String>())
        var out: [WindowResult<Int>] = []
        for k in ["a", "b", "a", "c", "b"] { w.add(k, partition: 0, key: k, eventTime: 0, closed: &out) }
        XCTAssertEqual(out.map(\.key), ["a", "b"])
        XCTAssertEqual(w.state.openWindows, 1)
    }

    func testTumblingWindowsCloseAfterLatenessAndDropLateElements() throws {
        var w = try Windower(spec: .tumbling(sizeMs: 10, allowedLatenessMs: 5), aggregation: Both(Count<Int64>(), Max<Int64> { Double($0) }))
        var out: [WindowResult<(Int, Double?)>] = []
        for t: Int64 in [1, 3, 12, 9, 14] { w.add(t, partition: 0, eventTime: t, closed: &out) }
        XCTAssertTrue(out.isEmpty, "[0,10) stays open until the watermark reaches 15")
        w.add(15, partition: 0, eventTime: 15, closed: &out)
        XCTAssertEqual(out.map(\.start), [0])
        XCTAssertEqual(out.first?.value.0, 3)
        XCTAssertEqual(out.first?.value.1, 9)
        w.add(2, partition: 0, eventTime: 2, closed: &out)  // its window has closed
        XCTAssertEqual(w.state.lateDropped, 1)
        w.closeAll(into: &out)
        XCTAssertEqual(out.map(\.start), [0, 10])
        XCTAssertEqual(out.last?.count, 3)
    }

    func testHoppingWindowsHoldEachElementSizeOverAdvanceTimes() throws {
        var w = try Windower(spec: .hopping(sizeMs: 10, advanceMs: 5), aggregation: Count<Int>())
        var out: [WindowResult<Int>] = []
        for t: Int64 in [0, 4, 5, 9, 10, 30] { w.add(0, partition: 0, eventTime: t, closed: &out) }
        XCTAssertEqual(out.map { [$0.start!, $0.end!] }, [[-5, 5], [0, 10], [5, 15], [10, 20]])
        XCTAssertEqual(out.map(\.value), [2, 4, 3, 1])
    }

    func testCalendarMonthsAndWeeksFromMonday() throws {
        let jan31 = daysFromCivil(2026, 1, 31) * 86_400_000 + 3_600_000
        let months = WindowSpec.calendarMonths().windows(containing: jan31)
        XCTAssertEqual(calendarDayLabel(months[0].start), "2026-01-01")
        XCTAssertEqual(calendarDayLabel(months[0].end), "2026-02-01")
        let weeks = WindowSpec.tumbling(sizeMs: 7 * 86_400_000, offsetMs: 4 * 86_400_000).windows(containing: jan31)
        XCTAssertEqual(calendarDayLabel(weeks[0].start), "2026-01-26")  // a Monday
        XCTAssertEqual(calendarMonthLabel(daysFromCivil(2024, 2, 29) * 86_400_000), "2024-02")
        XCTAssertEqual(civil(fromDays: daysFromCivil(1969, 12, 31)).day, 31)
    }

    func testInvalidSpecsAreRefused() {
        XCTAssertThrowsError(try Windower(spec: .count(0), aggregation: Count<Int>()))
        XCTAssertThrowsError(try Windower(spec: .hopping(sizeMs: 5, advanceMs: 10), aggregation: Count<Int>()))
    }

    func testWindowStateRoundTripsThroughJSON() throws {
        var w = try Windower(spec: .count(30), aggregation: WeatherAverages())
        var out: [WindowResult<WeatherAverages.Means>] = []
        for i in 0..<40 { w.add(WeatherReading(recordId: Int64(i), temperature: 0.1, co: 100, humidity: 50), partition: 0, eventTime: 0, closed: &out) }
        let data = try checkpointEncoder.encode(w.state)
        var restored = try Windower(spec: .count(30), aggregation: WeatherAverages(),
                                    state: checkpointDecoder.decode(WindowState<WeatherAverages.State>.self, from: data))
        for i in 40..<60 { restored.add(WeatherReading(recordId: Int64(i), temperature: 0.1, co: 100, humidity: 50), partition: 0, eventTime: 0, closed: &out) }
        XCTAssertEqual(out.map(\.id), [1, 2])
        // Continuing from the restored state adds in the same order as an unbroken run.
        var sum = 0.0
        for _ in 0..<30 { sum += 0.1 }
        XCTAssertEqual(out[1].value.temperature, sum / 30)
    }

    func testWeatherJSONParsesLikePython() throws {
        let r = try WeatherReading(json: .init(string: #"{"record_id": 7, "temperature": -3.3, "CO_concentration": 700, "humidity": 55}"#))
        XCTAssertEqual(r, WeatherReading(recordId: 7, temperature: -3.3, co: 700, humidity: 55))
        XCTAssertEqual(r.json, #"{"record_id": 7, "temperature": -3.3, "CO_concentration": 700, "humidity": 55}"#)
        let keyed = try WeatherReading(json: .init(string: #"{"record_id":1,"temperature":20,"CO_concentration":50,"humidity":1,"device_id":"station-1","timestamp":1767225600000}"#))
        XCTAssertEqual(keyed.temperature, 20)
        XCTAssertEqual(keyed.deviceId, "station-1")
        XCTAssertEqual(keyed.timestamp, 1_767_225_600_000)
        // Escapes take the full parser.
        let escaped = try WeatherReading(json: .init(string: #"{"temperature": 1.5, "CO_concentration": 60, "humidity": 2, "device_id": "a\"b"}"#))
        XCTAssertEqual(escaped.deviceId, "a\"b")
        XCTAssertThrowsError(try WeatherReading(json: .init(string: #"{"temperature": 1.5}"#)))
        XCTAssertThrowsError(try WeatherReading(json: .init(string: "not json")))
    }

    func testTutorialLayoutAndGeneralParserAgree() throws {
        var sim = WeatherSimulation(seed: 4)
        for _ in 0..<5000 {
            let r = sim.next()
            XCTAssertEqual(try WeatherReading(json: ByteBuffer(string: r.json)), r)
            // Same values in another layout take the general parser.
            let compact = r.json.replacingOccurrences(of: ": ", with: ":").replacingOccurrences(of: ", ", with: ",")
            XCTAssertEqual(try WeatherReading(json: ByteBuffer(string: compact)), r)
        }
        // Python's long reprs (17 significant digits) and exponents fall back to strtod.
        let odd = try WeatherReading(json: ByteBuffer(string: #"{"record_id": 1, "temperature": 89.60000000000001, "CO_concentration": 5, "humidity": 6}"#))
        XCTAssertEqual(odd.temperature, 89.60000000000001)
        let exp = try WeatherReading(json: ByteBuffer(string: #"{"record_id": 1, "temperature": 1e-05, "CO_concentration": -5, "humidity": 6}"#))
        XCTAssertEqual(exp.temperature, 1e-05)
        XCTAssertEqual(exp.co, -5)
    }

    func testFastDecimalParsingEqualsStrtod() {
        var rng = SplitMix64(seed: 3)
        var texts = ["0.0", "-0.0", "35.0", "-10.0", "0.1", "123456789012.345", "999999999999999", "1.000000000000001"]
        for _ in 0..<20000 {
            let digits = String(rng.next() % 1_000_000_000_000_000)
            let point = Int(rng.next() % UInt64(digits.count + 1))
            let sign = rng.next() % 2 == 0 ? "-" : ""
            let i = digits.index(digits.startIndex, offsetBy: point)
            texts.append(sign + (point == 0 ? "0" : String(digits[..<i])) + "." + (point == digits.count ? "0" : String(digits[i...])))
        }
        for text in texts {
            let fast = Array(text.utf8).withUnsafeBytes { fastDecimal($0) }
            guard let fast else { continue }  // more than 15 digits: strtod's job
            XCTAssertEqual(fast.bitPattern, strtod(text, nil).bitPattern, text)
        }
    }

    func testStationWalkStaysInBoundsAndIsDeterministic() {
        var a = WeatherSimulation(seed: 9)
        var b = WeatherSimulation(seed: 9)
        var previous = a.next()
        XCTAssertEqual(previous, b.next())
        for _ in 0..<5000 {
            let r = a.next()
            XCTAssertEqual(r, b.next())
            XCTAssert((-10...35).contains(r.temperature) && pythonRound(r.temperature, ndigits: 1) == r.temperature)
            XCTAssert((1...100).contains(r.humidity) && (50...1500).contains(r.co))
            XCTAssertLessThanOrEqual(Swift.abs(r.temperature - previous.temperature), 5.05)
            XCTAssertLessThanOrEqual(Swift.abs(r.humidity - previous.humidity), 20)
            XCTAssertLessThanOrEqual(Swift.abs(r.co - previous.co), 100)
            previous = r
        }
    }
}
