import Foundation
import KafkaProtocol
import NIOCore
import XCTest

/// The captured client fixtures in `Fixtures/` (see its README.md): raw request frames and
/// record batches, each with a `.json` sidecar describing what an independent decoder saw.
enum Fixture {
    struct Missing: Error, CustomStringConvertible {
        var name: String
        var description: String { "fixture \(name) is not in the test bundle" }
    }

    static func url(_ name: String, _ ext: String) throws -> URL {
        guard let url = Bundle.module.url(forResource: name, withExtension: ext, subdirectory: "Fixtures") else {
            throw Missing(name: "\(name).\(ext)")
        }
        return url
    }

    static func bytes(_ name: String) throws -> [UInt8] {
        Array(try Data(contentsOf: url(name, "bin")))
    }

    static func buffer(_ name: String) throws -> ByteBuffer {
        ByteBuffer(bytes: try bytes(name))
    }

    static func sidecar(_ name: String) throws -> JSON {
        try JSONDecoder().decode(JSON.self, from: Data(contentsOf: url(name, "json")))
    }

    static func manifest() throws -> JSON {
        try JSONDecoder().decode(JSON.self, from: Data(contentsOf: url("manifest", "json")))
    }

    /// Fixture names (without `.bin`) of one kind, "request" or "batch", as the manifest lists them.
    static func names(kind: String) throws -> [String] {
        let names = try manifest()["files"].arrayValue
            .filter { $0["kind"].string == kind }
            .compactMap { $0["file"].string.map { String($0.dropLast(".bin".count)) } }
        // An empty list would make every loop over it pass vacuously.
        guard !names.isEmpty else { throw Missing(name: "any \(kind) fixture in manifest.json") }
        return names
    }
}

/// Just enough JSON to read the sidecars: untyped, with subscripts that yield `.null`
/// for anything absent, so a lookup chain never traps.
enum JSON: Decodable, Equatable, CustomStringConvertible {
    case null
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case string(String)
    case array([JSON])
    case object([String: JSON])

    init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let v = try? c.decode(Bool.self) { self = .bool(v) }
        else if let v = try? c.decode(Int64.self) { self = .int(v) }
        else if let v = try? c.decode(Double.self) { self = .double(v) }
        else if let v = try? c.decode(String.self) { self = .string(v) }
        else if let v = try? c.decode([JSON].self) { self = .array(v) }
        else { self = .object(try c.decode([String: JSON].self)) }
    }

    subscript(key: String) -> JSON {
        if case .object(let o) = self { return o[key] ?? .null }
        return .null
    }

    subscript(index: Int) -> JSON {
        if case .array(let a) = self, a.indices.contains(index) { return a[index] }
        return .null
    }

    /// Whether an object has `key` at all (a present null counts).
    func has(_ key: String) -> Bool {
        if case .object(let o) = self { return o[key] != nil }
        return false
    }

    var isNull: Bool { self == .null }
    var string: String? { if case .string(let s) = self { return s }; return nil }
    var bool: Bool? { if case .bool(let b) = self { return b }; return nil }
    var int: Int64? { if case .int(let i) = self { return i }; return nil }
    var arrayValue: [JSON] { if case .array(let a) = self { return a }; return [] }
    var objectValue: [String: JSON] { if case .object(let o) = self { return o }; return [:] }

    /// Bytes written by the capture tool as `{"length": n, "hex": "..."}` or as a bare hex string.
    var hexBytes: [UInt8]? {
        guard let hex = self["hex"].string ?? self.string else { return nil }
        return Array(hexString: hex)
    }

    var description: String {
        switch self {
        case .null: return "null"
        case .bool(let b): return "\(b)"
        case .int(let i): return "\(i)"
        case .double(let d): return "\(d)"
        case .string(let s): return "\"\(s)\""
        case .array(let a): return "[" + a.map(\.description).joined(separator: ", ") + "]"
        case .object(let o): return "{" + o.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }.joined(separator: ", ") + "}"
        }
    }
}

extension Array where Element == UInt8 {
    init?(hexString: String) {
        let digits = Array(hexString.utf8)
        guard digits.count % 2 == 0 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(digits.count / 2)
        var i = 0
        while i < digits.count {
            guard let hi = Self.nibble(digits[i]), let lo = Self.nibble(digits[i + 1]) else { return nil }
            out.append(hi << 4 | lo)
            i += 2
        }
        self = out
    }

    private static func nibble(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}

extension KafkaUUID {
    /// Parses the canonical 8-4-4-4-12 hex form the sidecars use.
    init?(canonical: String) {
        guard let bytes = [UInt8](hexString: canonical.replacingOccurrences(of: "-", with: "")) else { return nil }
        self.init(bytes: bytes)
    }
}

extension AnyKafkaRequest {
    /// The decoded request inside the enum, whatever its API: the enum's one associated
    /// value, so tests can encode and inspect any case without a 44-way switch.
    var message: any KafkaRequest {
        guard let payload = Mirror(reflecting: self).children.first?.value as? any KafkaRequest else {
            preconditionFailure("AnyKafkaRequest case without a KafkaRequest payload: \(self)")
        }
        return payload
    }
}

/// Asserts two byte sequences are equal, naming the first differing offset so a failure
/// in a 400-byte frame says where to look.
func assertBytesEqual(
    _ actual: [UInt8], _ expected: [UInt8], _ message: @autoclosure () -> String = "",
    file: StaticString = #filePath, line: UInt = #line
) {
    guard actual != expected else { return }
    let firstDifference = zip(actual, expected).enumerated().first { $0.element.0 != $0.element.1 }?.offset
        ?? Swift.min(actual.count, expected.count)
    func show(_ bytes: [UInt8]) -> String {
        let window = bytes[Swift.min(firstDifference, bytes.count)..<Swift.min(firstDifference + 8, bytes.count)]
        return window.map { String(format: "%02x", $0) }.joined(separator: " ")
    }
    XCTFail(
        "\(message()): \(actual.count) bytes vs \(expected.count) expected; first difference at offset \(firstDifference): [\(show(actual))] vs [\(show(expected))]",
        file: file, line: line)
}

/// Sebastiano Vigna's SplitMix64: a tiny deterministic generator, so a failure reproduces.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) {
        state = seed
    }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
