import Foundation
import XCTest
@testable import Lake

/// Runs `python3 -c script args...` and returns its stdout; fails the test with stderr
/// when the script fails. Skips only when python3 itself is missing: pyarrow and duckdb
/// are required (scripts/setup-test-deps installs them), so their absence fails.
func runPython(_ script: String, arguments: [String] = [], file: StaticString = #filePath, line: UInt = #line) throws -> String {
    guard let python = findExecutable("python3") else {
        throw XCTSkip("python3 is not installed; the Lake tests read Parquet files back with pyarrow and duckdb")
    }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: python)
    process.arguments = ["-c", script] + arguments
    let out = Pipe()
    // stderr goes to a file so a chatty script cannot block on a full pipe.
    let errURL = FileManager.default.temporaryDirectory.appendingPathComponent("lake-python-\(UUID().uuidString).err")
    FileManager.default.createFile(atPath: errURL.path, contents: nil)
    let err = try FileHandle(forWritingTo: errURL)
    defer { try? FileManager.default.removeItem(at: errURL) }
    process.standardOutput = out
    process.standardError = err
    try process.run()
    let stdout = out.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    try? err.close()
    let stderr = (try? Data(contentsOf: errURL)) ?? Data()
    let text = String(decoding: stdout, as: UTF8.self)
    guard process.terminationStatus == 0 else {
        XCTFail("python3 failed (\(process.terminationStatus)):\n\(String(decoding: stderr, as: UTF8.self))", file: file, line: line)
        throw LakeError(.io, "python3 failed")
    }
    return text
}

func findExecutable(_ name: String) -> String? {
    for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
        let path = "\(dir)/\(name)"
        if FileManager.default.isExecutableFile(atPath: path) { return path }
    }
    return nil
}

/// A fresh directory under the temporary directory, removed by the test's teardown.
func makeTemporaryDirectory(_ testCase: XCTestCase) throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("tributary-lake-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    testCase.addTeardownBlock { try? FileManager.default.removeItem(at: url) }
    return url
}

/// Decodes the JSON a Python script printed.
func decodeJSON<T: Decodable>(_ type: T.Type, _ text: String) throws -> T {
    try JSONDecoder().decode(T.self, from: Data(text.utf8))
}
