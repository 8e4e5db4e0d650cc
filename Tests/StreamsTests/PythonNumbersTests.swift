import Foundation
import XCTest
@testable import Streams

/// Compares pythonRound/pythonRepr with this machine's python3 on many values.
final class PythonNumbersTests: XCTestCase {
    /// Runs python3 on `values` (sent as bit patterns) and returns, per value,
    /// `repr(x)`, `repr(round(x, 1))`, `str(round(x))` (or "-" where Python raises),
    /// and the weekly consumer's `str(round(x * 1.8, 1) + 32)`.
    func python(_ values: [Double]) throws -> [[String]] {
        let script = """
        import sys, struct
        for line in sys.stdin:
            x = struct.unpack('<d', struct.pack('<Q', int(line)))[0]
            try:
                r0 = str(round(x))
            except (OverflowError, ValueError):
                r0 = '-'
            print(repr(x), repr(round(x, 1)), r0, str(round(x * 1.8, 1) + 32), sep='\\t')
        """
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", script]
        let input = Pipe()
        let output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        try process.run()
        let text = values.map { String($0.bitPattern) }.joined(separator: "\n") + "\n"
        // Write from another thread so a full stdout pipe cannot deadlock us.
        let writer = Thread {
            input.fileHandleForWriting.write(Data(text.utf8))
            try? input.fileHandleForWriting.close()
        }
        writer.start()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0)
        return String(decoding: data, as: UTF8.self).split(separator: "\n").map { $0.split(separator: "\t").map(String.init) }
    }

    func testRoundAndReprMatchPython() throws {
        var rng = SplitMix64(seed: 42)
        var values: [Double] = [
            0.25, 0.35, 2.675, 0.05, 0.15, 1.25, -0.25, -2.675, 0.5, 1.5, 2.5, -0.5, -1.5, 0.0, -0.0, -0.04,
            20.0, 89.60000000000001, 1e16, 1e15, 123456789012345.6, 1e-4, 1e-5, 0.0001234, 1.5e-5, 5e-324,
            1.7976931348623157e308, 2.2250738585072014e-308, 1e22, 1e-7, 100.0, 0.1, 0.2, 0.30000000000000004,
            .infinity, -.infinity, 9007199254740993, 4.35, 4.45, 64.45, 77.75, -9.95, 34.95,
        ]
        for _ in 0..<3000 {
            // Weather-like means, ties at one decimal, and arbitrary bit patterns.
            let n = Double(Int(rng.next() % 30) + 1)
            values.append(Double(Int64(rng.next() % 9001) - 4500) / 10 / n)
            values.append(Double(Int64(rng.next() % 2001) - 1000) / 20)
            values.append(Double(bitPattern: rng.next()))
        }
        values = values.filter { !$0.isNaN }
        let expected = try python(values)
        XCTAssertEqual(expected.count, values.count)
        var failures = 0
        for (x, e) in zip(values, expected) where failures < 20 {
            guard e.count == 4 else { XCTFail("bad python line \(e)"); return }
            let repr = pythonRepr(x)
            let r1 = pythonRepr(pythonRound(x, ndigits: 1))
            let r0 = x.isFinite && Swift.abs(x) < 9e18 ? String(pythonRound(x)) : "-"
            let f = pythonRepr(pythonRound(x * 1.8, ndigits: 1) + 32)
            if repr != e[0] || r1 != e[1] || (r0 != "-" && r0 != e[2]) || f != e[3] {
                failures += 1
                XCTFail("\(x.bitPattern): swift \(repr) \(r1) \(r0) \(f), python \(e)")
            }
        }
    }

    func testKnownValues() {
        XCTAssertEqual(pythonRound(2.675, ndigits: 1), 2.7)
        XCTAssertEqual(pythonRound(0.25, ndigits: 1), 0.2)
        XCTAssertEqual(pythonRound(0.35, ndigits: 1), 0.3)  // 0.35 is 0.34999...
        XCTAssertEqual(pythonRound(2.5), 2)
        XCTAssertEqual(pythonRound(3.5), 4)
        XCTAssertEqual(pythonRound(-2.5), -2)
        XCTAssertEqual(pythonRepr(20), "20.0")
        XCTAssertEqual(pythonRepr(1e16), "1e+16")
        XCTAssertEqual(pythonRepr(1e-5), "1e-05")
        XCTAssertEqual(pythonRepr(0.0001), "0.0001")
        XCTAssertEqual(pythonRepr(-0.0), "-0.0")
        XCTAssertEqual(pythonRepr(57.6 + 32), "89.6")
        XCTAssertEqual(pythonRepr(pythonRound(32.0 * 1.8, ndigits: 1) + 32), "89.6")
    }
}

final class PythonRoundPathsTests: XCTestCase {
    /// The FMA path of round(x, 1) agrees with printf + strtod on ties and near-ties.
    func testOneDigitFastPathEqualsPrintf() {
        var rng = SplitMix64(seed: 77)
        var values: [Double] = [0.05, 0.15, 0.25, 0.35, 0.45, 2.675, -0.05, -0.25, 1e13 + 0.05, 0.049999999999999996]
        for _ in 0..<200_000 {
            let k = Double(Int64(rng.next() % 2_000_001) - 1_000_000)
            let tie = (k + 0.5) / 10
            values += [tie, tie.nextUp, tie.nextDown, Double(Int64(rng.next() % 90_001) - 45_000) / 7 / 10,
                       Double(bitPattern: rng.next() & 0x42FF_FFFF_FFFF_FFFF)]
        }
        for x in values where x.isFinite && Swift.abs(x) < 1e14 {
            XCTAssertEqual(pythonRoundOneDigit(x).bitPattern, pythonRoundByPrintf(x, ndigits: 1).bitPattern, "\(x)")
        }
    }
}
