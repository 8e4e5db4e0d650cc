import Foundation

/// A version range as the definitions write it: "0+", "3-7", "5", "none".
struct VersionRange: Equatable {
    var low: Int
    var high: Int?  // nil: open ended
    var isNone: Bool

    static let none = VersionRange(low: 0, high: nil, isNone: true)

    init(low: Int, high: Int?, isNone: Bool = false) {
        self.low = low
        self.high = high
        self.isNone = isNone
    }

    init(parsing text: String) throws {
        let t = text.trimmingCharacters(in: .whitespaces)
        if t == "none" {
            self = .none
        } else if t.hasSuffix("+") {
            guard let low = Int(t.dropLast()) else { throw GeneratorError("bad version range '\(text)'") }
            self.init(low: low, high: nil)
        } else if let dash = t.firstIndex(of: "-") {
            guard let low = Int(t[..<dash]), let high = Int(t[t.index(after: dash)...]) else {
                throw GeneratorError("bad version range '\(text)'")
            }
            self.init(low: low, high: high)
        } else {
            guard let v = Int(t) else { throw GeneratorError("bad version range '\(text)'") }
            self.init(low: v, high: v)
        }
    }

    func contains(_ v: Int) -> Bool {
        !isNone && v >= low && (high.map { v <= $0 } ?? true)
    }

    /// A Swift condition on `version` that is true inside this range, given the versions
    /// the message can have at all; nil when always true, "false" when never.
    func condition(within valid: VersionRange) -> String? {
        if isNone { return "false" }
        let validHigh = valid.high ?? Int.max
        let high = self.high ?? Int.max
        if low > validHigh || high < valid.low { return "false" }
        var parts: [String] = []
        if low > valid.low { parts.append("version >= \(low)") }
        if high < validHigh { parts.append("version <= \(high)") }
        if parts.isEmpty { return nil }
        if low == high { return "version == \(low)" }
        return parts.joined(separator: " && ")
    }

    func intersects(_ other: VersionRange) -> Bool {
        if isNone || other.isNone { return false }
        let a = high ?? Int.max, b = other.high ?? Int.max
        return max(low, other.low) <= min(a, b)
    }
}

public struct GeneratorError: Error, CustomStringConvertible {
    public var description: String
    init(_ d: String) { description = d }
}

indirect enum FieldType: Equatable {
    case int8, int16, int32, int64, uint16, float64, bool, string, bytes, uuid, records
    case array(FieldType)
    case structure(String)

    init(parsing t: String) {
        if t.hasPrefix("[]") { self = .array(FieldType(parsing: String(t.dropFirst(2)))); return }
        switch t {
        case "int8": self = .int8
        case "int16": self = .int16
        case "int32": self = .int32
        case "int64": self = .int64
        case "uint16": self = .uint16
        case "float64": self = .float64
        case "bool": self = .bool
        case "string": self = .string
        case "bytes": self = .bytes
        case "uuid": self = .uuid
        case "records": self = .records
        default: self = .structure(t)
        }
    }

    var isArray: Bool { if case .array = self { return true } else { return false } }

    var structName: String? {
        switch self {
        case .structure(let n): return n
        case .array(let inner): return inner.structName
        default: return nil
        }
    }

    /// The smallest number of bytes one value can take: bounds array counts on decode.
    var minimumSize: Int {
        switch self {
        case .int8, .bool: return 1
        case .int16, .uint16: return 2
        case .int32: return 4
        case .int64, .float64: return 8
        case .uuid: return 16
        case .string, .bytes, .records, .array, .structure: return 1
        }
    }
}

final class Field {
    let name: String
    let type: FieldType
    let versions: VersionRange
    let nullableVersions: VersionRange
    let taggedVersions: VersionRange
    let tag: Int?
    let ignorable: Bool
    let defaultText: String?
    let about: String?
    /// Field-level override (RequestHeader.ClientId keeps its 2-byte length when flexible).
    let flexibleOverride: VersionRange?
    let fields: [Field]

    init(json: [String: Any]) throws {
        name = json["name"] as! String
        type = FieldType(parsing: json["type"] as! String)
        versions = try VersionRange(parsing: json["versions"] as? String ?? "none")
        nullableVersions = try (json["nullableVersions"] as? String).map(VersionRange.init(parsing:)) ?? .none
        taggedVersions = try (json["taggedVersions"] as? String).map(VersionRange.init(parsing:)) ?? .none
        tag = json["tag"] as? Int
        ignorable = json["ignorable"] as? Bool ?? false
        if let d = json["default"] {
            defaultText = (d as? String) ?? "\(d)"
        } else {
            defaultText = nil
        }
        about = json["about"] as? String
        flexibleOverride = try (json["flexibleVersions"] as? String).map(VersionRange.init(parsing:))
        fields = try (json["fields"] as? [[String: Any]] ?? []).map(Field.init(json:))
    }

    var isTagged: Bool { tag != nil }

    /// Optional in Swift when any version allows null or the default is null.
    var isOptional: Bool {
        if !nullableVersions.isNone { return true }
        return defaultText == "null"
    }
}

struct StructDefinition {
    let name: String
    let fields: [Field]
}

final class MessageSpec {
    let fileName: String
    let name: String
    let kind: String  // request, response, header, data
    let apiKey: Int?
    let validVersions: VersionRange
    let flexibleVersions: VersionRange
    let fields: [Field]
    let commonStructs: [StructDefinition]
    let about: [String]

    init(fileName: String, text: String) throws {
        self.fileName = fileName
        // Only whole-line `//` comments occur in the definitions; keep the leading
        // comment of the body as documentation.
        var jsonLines: [String] = []
        var comments: [String] = []
        var seenBrace = false
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.hasPrefix("//") {
                if seenBrace { comments.append(String(trimmed.dropFirst(2)).trimmingCharacters(in: .whitespaces)) }
                continue
            }
            if trimmed.hasPrefix("{") { seenBrace = true }
            jsonLines.append(String(line))
        }
        about = comments
        let data = Data(jsonLines.joined(separator: "\n").utf8)
        guard let json = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw GeneratorError("\(fileName): not a JSON object")
        }
        name = json["name"] as! String
        kind = json["type"] as! String
        apiKey = json["apiKey"] as? Int
        validVersions = try VersionRange(parsing: json["validVersions"] as! String)
        flexibleVersions = try VersionRange(parsing: json["flexibleVersions"] as? String ?? "none")
        fields = try (json["fields"] as? [[String: Any]] ?? []).map(Field.init(json:))
        commonStructs = try (json["commonStructs"] as? [[String: Any]] ?? []).map {
            StructDefinition(name: $0["name"] as! String, fields: try ($0["fields"] as! [[String: Any]]).map(Field.init(json:)))
        }
    }

    /// Every struct the message defines, in order of first appearance, the message itself first.
    func allStructs() -> [StructDefinition] {
        var out: [StructDefinition] = []
        var seen = Set<String>()
        func visit(_ fields: [Field]) {
            for f in fields where !f.fields.isEmpty {
                if let n = f.type.structName, !seen.contains(n) {
                    seen.insert(n)
                    out.append(StructDefinition(name: n, fields: f.fields))
                }
                visit(f.fields)
            }
        }
        visit(fields)
        for cs in commonStructs where !seen.contains(cs.name) {
            seen.insert(cs.name)
            out.append(cs)
            visit(cs.fields)
        }
        return out
    }
}
