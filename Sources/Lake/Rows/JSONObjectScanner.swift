/// Parses a record value that should be a JSON object into its top-level fields.
///
/// Scalars keep their JSON kind (a number with a fraction or exponent is a double, one
/// without is an int64 unless it overflows); nested objects and arrays are kept as their
/// JSON text, unchanged. Written for the export's hot path: one pass over the bytes, no
/// Foundation, strict RFC 8259 grammar.
struct JSONObjectScanner {
    enum Value: Equatable {
        case null
        case bool(Bool)
        case int(Int64)
        case double(Double)
        case string(String)
        /// A nested object or array, as JSON text.
        case json(String)
    }

    struct ParseError: Error, CustomStringConvertible {
        var message: String
        var offset: Int
        var description: String { "\(message) at byte \(offset)" }
    }

    /// The fields of the object in `bytes`, in document order (a repeated name keeps
    /// its last value, as JavaScript does); throws when `bytes` is not one JSON object.
    static func parseObject(_ bytes: UnsafeRawBufferPointer) throws -> [(String, Value)] {
        var s = JSONObjectScanner(bytes: bytes)
        s.skipWhitespace()
        guard s.peek() == UInt8(ascii: "{") else { throw s.error(s.i >= bytes.count ? "empty value" : "not a JSON object") }
        s.i += 1
        var fields: [(String, Value)] = []
        var index: [String: Int] = [:]
        s.skipWhitespace()
        if s.peek() == UInt8(ascii: "}") {
            s.i += 1
        } else {
            while true {
                s.skipWhitespace()
                guard s.peek() == UInt8(ascii: "\"") else { throw s.error("expected a field name") }
                let name = try s.parseString()
                s.skipWhitespace()
                guard s.peek() == UInt8(ascii: ":") else { throw s.error("expected ':'") }
                s.i += 1
                s.skipWhitespace()
                let value = try s.parseValue()
                // Linear search while small; an index once objects are wide, so a record
                // with thousands of fields stays linear in its size.
                if fields.count < 16 {
                    if let existing = fields.firstIndex(where: { $0.0 == name }) {
                        fields[existing].1 = value
                    } else {
                        fields.append((name, value))
                    }
                } else {
                    if index.isEmpty { for (k, f) in fields.enumerated() { index[f.0] = k } }
                    if let existing = index[name] {
                        fields[existing].1 = value
                    } else {
                        index[name] = fields.count
                        fields.append((name, value))
                    }
                }
                s.skipWhitespace()
                if s.peek() == UInt8(ascii: ",") { s.i += 1; continue }
                if s.peek() == UInt8(ascii: "}") { s.i += 1; break }
                throw s.error("expected ',' or '}'")
            }
        }
        s.skipWhitespace()
        guard s.i == bytes.count else { throw s.error("trailing characters after the object") }
        return fields
    }

    private let bytes: UnsafeRawBufferPointer
    private var i = 0
    private var depth = 0
    /// Deeper nesting is refused rather than risking the stack.
    static let maxDepth = 256

    private init(bytes: UnsafeRawBufferPointer) {
        self.bytes = bytes
    }

    private func peek() -> UInt8? { i < bytes.count ? bytes[i] : nil }

    private func error(_ message: String) -> ParseError { ParseError(message: message, offset: i) }

    private mutating func skipWhitespace() {
        while i < bytes.count {
            switch bytes[i] {
            case 0x20, 0x09, 0x0A, 0x0D: i += 1
            default: return
            }
        }
    }

    private mutating func parseValue() throws -> Value {
        guard let c = peek() else { throw error("unexpected end") }
        switch c {
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "{"), UInt8(ascii: "["):
            let start = i
            try skipComposite()
            return .json(String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<i]), as: UTF8.self))
        case UInt8(ascii: "t"): try literal("true"); return .bool(true)
        case UInt8(ascii: "f"): try literal("false"); return .bool(false)
        case UInt8(ascii: "n"): try literal("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try parseNumber()
        default: throw error("unexpected character")
        }
    }

    private mutating func literal(_ word: StaticString) throws {
        let n = word.utf8CodeUnitCount
        guard i + n <= bytes.count else { throw error("unexpected end") }
        for k in 0..<n where bytes[i + k] != word.utf8Start[k] { throw error("invalid literal") }
        i += n
    }

    private mutating func parseNumber() throws -> Value {
        let start = i
        var isInteger = true
        if peek() == UInt8(ascii: "-") { i += 1 }
        guard let first = peek(), first >= 0x30 && first <= 0x39 else { throw error("invalid number") }
        if first == 0x30 {
            i += 1
        } else {
            while let d = peek(), d >= 0x30 && d <= 0x39 { i += 1 }
        }
        if peek() == UInt8(ascii: ".") {
            isInteger = false
            i += 1
            guard let d = peek(), d >= 0x30 && d <= 0x39 else { throw error("invalid number") }
            while let d = peek(), d >= 0x30 && d <= 0x39 { i += 1 }
        }
        if peek() == UInt8(ascii: "e") || peek() == UInt8(ascii: "E") {
            isInteger = false
            i += 1
            if peek() == UInt8(ascii: "+") || peek() == UInt8(ascii: "-") { i += 1 }
            guard let d = peek(), d >= 0x30 && d <= 0x39 else { throw error("invalid number") }
            while let d = peek(), d >= 0x30 && d <= 0x39 { i += 1 }
        }
        let text = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<i]), as: UTF8.self)
        if isInteger, let v = Int64(text) { return .int(v) }
        guard let d = Double(text) else { throw error("invalid number") }
        return .double(d)
    }

    private mutating func parseString() throws -> String {
        i += 1  // opening quote
        let start = i
        // Fast path: no escapes.
        while i < bytes.count {
            let c = bytes[i]
            if c == UInt8(ascii: "\"") {
                let s = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<i]), as: UTF8.self)
                i += 1
                return s
            }
            if c == UInt8(ascii: "\\") { break }
            if c < 0x20 { throw error("control character in string") }
            i += 1
        }
        var out = Array(UnsafeRawBufferPointer(rebasing: bytes[start..<i]))
        while i < bytes.count {
            let c = bytes[i]
            switch c {
            case UInt8(ascii: "\""):
                i += 1
                return String(decoding: out, as: UTF8.self)
            case UInt8(ascii: "\\"):
                i += 1
                guard let e = peek() else { throw error("unexpected end") }
                i += 1
                switch e {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(e)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0C)
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "u"):
                    var scalar = try hex4()
                    if (0xD800..<0xDC00).contains(scalar), peek() == UInt8(ascii: "\\"), i + 1 < bytes.count, bytes[i + 1] == UInt8(ascii: "u") {
                        i += 2
                        let low = try hex4()
                        guard (0xDC00..<0xE000).contains(low) else { throw error("invalid surrogate pair") }
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    }
                    let u = Unicode.Scalar(scalar) ?? "\u{FFFD}"
                    out.append(contentsOf: Array(String(Character(u)).utf8))
                default: throw error("invalid escape")
                }
            default:
                if c < 0x20 { throw error("control character in string") }
                out.append(c)
                i += 1
            }
        }
        throw error("unterminated string")
    }

    private mutating func hex4() throws -> UInt32 {
        guard i + 4 <= bytes.count else { throw error("unexpected end") }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let c = bytes[i]
            let d: UInt32
            switch c {
            case 0x30...0x39: d = UInt32(c - 0x30)
            case 0x41...0x46: d = UInt32(c - 0x41 + 10)
            case 0x61...0x66: d = UInt32(c - 0x61 + 10)
            default: throw error("invalid \\u escape")
            }
            v = v << 4 | d
            i += 1
        }
        return v
    }

    /// Skips a nested object or array, checking its grammar.
    private mutating func skipComposite() throws {
        let open = bytes[i]
        depth += 1
        defer { depth -= 1 }
        guard depth <= Self.maxDepth else { throw error("nested deeper than \(Self.maxDepth) levels") }
        i += 1
        skipWhitespace()
        let close = open == UInt8(ascii: "{") ? UInt8(ascii: "}") : UInt8(ascii: "]")
        if peek() == close { i += 1; return }
        while true {
            skipWhitespace()
            if open == UInt8(ascii: "{") {
                guard peek() == UInt8(ascii: "\"") else { throw error("expected a field name") }
                _ = try parseString()
                skipWhitespace()
                guard peek() == UInt8(ascii: ":") else { throw error("expected ':'") }
                i += 1
                skipWhitespace()
            }
            _ = try parseValue()
            skipWhitespace()
            if peek() == UInt8(ascii: ",") { i += 1; continue }
            if peek() == close { i += 1; return }
            throw error("expected ',' or '\(Character(Unicode.Scalar(close)))'")
        }
    }
}
