import Foundation

/// Turns one API's request and response definitions into one Swift file.
struct Emitter {
    private var out: [String] = []
    private var indent = 0
    /// Nested struct names are qualified with this, so lookups never depend on scope.
    var messageName = ""

    static let keywords: Set<String> = [
        "protocol", "default", "internal", "operator", "public", "private", "static", "class", "struct",
        "enum", "func", "var", "let", "import", "in", "is", "as", "self", "Self", "Type", "throws", "try",
        "return", "switch", "case", "where", "while", "for", "repeat", "if", "else", "guard", "defer",
        "init", "deinit", "subscript", "extension", "typealias", "associatedtype", "true", "false", "nil",
    ]

    static func propertyName(_ name: String) -> String {
        let chars = Array(name)
        var upperRun = 0
        while upperRun < chars.count, chars[upperRun].isUppercase { upperRun += 1 }
        let result: String
        if upperRun <= 1 || upperRun == chars.count {
            result = chars.prefix(max(upperRun, 1)).map { $0.lowercased() }.joined() + String(chars.dropFirst(max(upperRun, 1)))
        } else {
            // "ISRNodes" -> "isrNodes": keep the capital that starts the next word.
            result = chars.prefix(upperRun - 1).map { $0.lowercased() }.joined() + String(chars.dropFirst(upperRun - 1))
        }
        return keywords.contains(result) ? "`\(result)`" : result
    }

    static func bare(_ name: String) -> String { name.replacingOccurrences(of: "`", with: "") }

    mutating func line(_ s: String = "") {
        out.append(s.isEmpty ? "" : String(repeating: "    ", count: indent) + s)
    }

    mutating func block(_ head: String, _ body: (inout Emitter) throws -> Void) rethrows {
        line(head + " {")
        indent += 1
        try body(&self)
        indent -= 1
        line("}")
    }

    mutating func doc(_ text: String?) {
        guard let text, !text.isEmpty else { return }
        for l in text.split(separator: "\n") { line("/// \(l.trimmingCharacters(in: .whitespaces))") }
    }

    var text: String { out.joined(separator: "\n") + "\n" }

    // MARK: types and defaults

    func swiftBaseType(_ t: FieldType) -> String {
        switch t {
        case .int8: return "Int8"
        case .int16: return "Int16"
        case .int32: return "Int32"
        case .int64: return "Int64"
        case .uint16: return "UInt16"
        case .float64: return "Double"
        case .bool: return "Bool"
        case .string: return "String"
        case .bytes, .records: return "ByteBuffer"
        case .uuid: return "KafkaUUID"
        case .array(let inner): return "[\(swiftBaseType(inner))]"
        case .structure(let name): return "\(messageName).\(name)"
        }
    }

    func swiftType(_ f: Field) -> String {
        swiftBaseType(f.type) + (f.isOptional ? "?" : "")
    }

    func defaultExpression(_ f: Field) throws -> String {
        let d = f.defaultText
        if d == "null" {
            guard f.isOptional else { throw GeneratorError("\(f.name): null default on a non-nullable field") }
            return "nil"
        }
        switch f.type {
        case .int8, .int16, .int32, .int64, .uint16:
            guard let d, !d.isEmpty else { return "0" }
            return d
        case .float64:
            guard let d, !d.isEmpty else { return "0" }
            return d.contains(".") ? d : d + ".0"
        case .bool:
            return (d?.lowercased() == "true") ? "true" : "false"
        case .string:
            return "\"\(d ?? "")\""
        case .bytes, .records:
            return f.type == .records && f.isOptional ? "nil" : "ByteBuffer()"
        case .uuid:
            return ".zero"
        case .array:
            return "[]"
        case .structure(let name):
            return "\(messageName).\(name)()"
        }
    }

    // MARK: encode and decode expressions

    func nullableCondition(_ f: Field, _ valid: VersionRange) -> String {
        // Judge nullability only over the versions the field exists in.
        let low = max(valid.low, f.versions.low)
        let highs = [valid.high, f.versions.high].compactMap { $0 }
        let effective = VersionRange(low: low, high: highs.min())
        return f.nullableVersions.condition(within: effective) ?? "true"
    }

    func compactExpression(_ f: Field, _ message: MessageSpec) -> String {
        if let o = f.flexibleOverride, o.isNone { return "false" }
        return message.flexibleVersions.isNone ? "false" : "flexible"
    }

    /// A statement writing `value` of type `type` to `buffer`.
    func encodeStatement(_ type: FieldType, value: String, optional: Bool, buffer: String, compact: String,
                         nullable: String, path: String) -> String {
        switch type {
        case .int8, .int16, .int32, .int64, .uint16:
            return "\(buffer).writeInteger(\(value))"
        case .float64:
            return "\(buffer).kafkaWriteFloat64(\(value))"
        case .bool:
            return "\(buffer).kafkaWriteBool(\(value))"
        case .uuid:
            return "\(buffer).kafkaWriteUUID(\(value))"
        case .string:
            return optional
                ? "try \(buffer).kafkaWriteNullableString(\(value), compact: \(compact), nullable: \(nullable), field: \"\(path)\")"
                : "\(buffer).kafkaWriteString(\(value), compact: \(compact))"
        case .bytes, .records:
            return optional
                ? "try \(buffer).kafkaWriteNullableBytes(\(value), compact: \(compact), nullable: \(nullable), field: \"\(path)\")"
                : "\(buffer).kafkaWriteBytes(\(value), compact: \(compact))"
        case .structure:
            return optional
                ? "try \(buffer).kafkaWriteNullableStruct(\(value), nullable: \(nullable), field: \"\(path)\") { try $1.encode(into: &$0, version: version) }"
                : "try \(value).encode(into: &\(buffer), version: version)"
        case .array(let inner):
            let element = encodeStatement(inner, value: "$1", optional: false, buffer: "$0", compact: compact,
                                          nullable: "false", path: path)
            return "try \(buffer).kafkaWriteArray(\(value), compact: \(compact), nullable: \(optional ? nullable : "false"), field: \"\(path)\") { \(element) }"
        }
    }

    /// An expression reading a value of `type` from `buffer`.
    func decodeExpression(_ type: FieldType, optional: Bool, buffer: String, compact: String, nullable: String,
                          path: String) -> String {
        func pick(_ nullableRead: String, _ plainRead: String) -> String {
            guard optional else { return plainRead }
            switch nullable {
            case "true": return nullableRead
            case "false": return plainRead
            default: return "(\(nullable) ? \(nullableRead) : \(plainRead))"
            }
        }
        switch type {
        case .int8, .int16, .int32, .int64, .uint16:
            return "try \(buffer).kafkaReadInteger(as: \(swiftBaseType(type)).self, field: \"\(path)\")"
        case .float64:
            return "try \(buffer).kafkaReadFloat64(field: \"\(path)\")"
        case .bool:
            return "try \(buffer).kafkaReadBool(field: \"\(path)\")"
        case .uuid:
            return "try \(buffer).kafkaReadUUID(field: \"\(path)\")"
        case .string:
            return "try " + pick("\(buffer).kafkaReadNullableString(compact: \(compact), field: \"\(path)\")",
                                 "\(buffer).kafkaReadString(compact: \(compact), field: \"\(path)\")")
        case .bytes, .records:
            return "try " + pick("\(buffer).kafkaReadNullableBytes(compact: \(compact), field: \"\(path)\")",
                                 "\(buffer).kafkaReadBytes(compact: \(compact), field: \"\(path)\")")
        case .structure(let name):
            let plain = "\(messageName).\(name)(from: &\(buffer), version: version)"
            guard optional else { return "try " + plain }
            let nullableRead = "\(buffer).kafkaReadNullableStruct(field: \"\(path)\") { try \(messageName).\(name)(from: &$0, version: version) }"
            return "try " + pick(nullableRead, plain)
        case .array(let inner):
            let element = decodeExpression(inner, optional: false, buffer: "$0", compact: compact, nullable: "false", path: path)
            let args = "compact: \(compact), minElementSize: \(inner.minimumSize), field: \"\(path)\""
            return "try " + pick("\(buffer).kafkaReadArray(\(args)) { \(element) }",
                                 "\(buffer).kafkaReadNonNullArray(\(args)) { \(element) }")
        }
    }

    // MARK: structs

    mutating func emitStruct(_ def: StructDefinition, message: MessageSpec, isMessage: Bool, about: [String]) throws {
        let valid = message.validVersions
        let flexible = !message.flexibleVersions.isNone
        for f in def.fields where f.isTagged {
            guard f.taggedVersions == f.versions else {
                throw GeneratorError("\(message.name).\(f.name): tagged in only some of its versions")
            }
        }
        if isMessage {
            for l in about where !l.isEmpty { line("/// \(l)") }
        }
        try block("public struct \(def.name): Sendable, Hashable") { e in
            for f in def.fields {
                e.doc(f.about)
                if !f.versions.isNone {
                    e.line("/// Versions \(Self.describe(f.versions))\(f.isTagged ? ", tagged (tag \(f.tag!))" : "").")
                }
                e.line("public var \(Self.propertyName(f.name)): \(e.swiftType(f))")
            }
            if flexible {
                e.line("/// Tagged fields this codec does not know, kept to be written back unchanged.")
                e.line("public var unknownTaggedFields: [UnknownTaggedField]")
            }
            e.line()
            var params = try def.fields.map { "\(Self.propertyName($0.name)): \(e.swiftType($0)) = \(try e.defaultExpression($0))" }
            if flexible { params.append("unknownTaggedFields: [UnknownTaggedField] = []") }
            e.line("public init(")
            e.indent += 1
            for (i, p) in params.enumerated() { e.line(p + (i == params.count - 1 ? "" : ",")) }
            e.indent -= 1
            e.block(")") { e in
                for f in def.fields {
                    let n = Self.propertyName(f.name)
                    e.line("self.\(n) = \(Self.bare(n))")
                }
                if flexible { e.line("self.unknownTaggedFields = unknownTaggedFields") }
            }
        }
        line()
        try emitCodec(def, message: message, isMessage: isMessage, valid: valid)
    }

    static func describe(_ r: VersionRange) -> String {
        if let h = r.high { return h == r.low ? "\(h)" : "\(r.low)-\(h)" }
        return "\(r.low)+"
    }

    mutating func emitCodec(_ def: StructDefinition, message: MessageSpec, isMessage: Bool, valid: VersionRange) throws {
        try block("extension \(isMessage ? def.name : "\(message.name).\(def.name)")") { e in
            e.doc("Writes this value as the given version lays it out.")
            if isMessage {
                // Messages check the version and name the API in any error; their nested
                // structs only write fields.
                e.block("public func encode(into buffer: inout ByteBuffer, version: Int16) throws") { e in
                    e.block("guard Self.validVersions.contains(version) else") { e in
                        e.line("throw KafkaProtocolError(.unsupportedVersion, api: \"\(message.name)\", version: version)")
                    }
                    e.block("do") { e in e.line("try self.encodeFields(into: &buffer, version: version)") }
                    e.block("catch let error as KafkaProtocolError") { e in
                        e.line("throw error.within(api: \"\(message.name)\", version: version)")
                    }
                }
                e.line()
                try e.block("func encodeFields(into buffer: inout ByteBuffer, version: Int16) throws") { e in
                    try e.emitEncodeBody(def, message: message, valid: valid)
                }
            } else {
                try e.block("public func encode(into buffer: inout ByteBuffer, version: Int16) throws") { e in
                    try e.emitEncodeBody(def, message: message, valid: valid)
                }
            }
            e.line()
            e.doc("Reads a value laid out as the given version; the buffer must hold all of it.")
            if isMessage {
                e.block("public init(from buffer: inout ByteBuffer, version: Int16) throws") { e in
                    e.block("guard Self.validVersions.contains(version) else") { e in
                        e.line("throw KafkaProtocolError(.unsupportedVersion, api: \"\(message.name)\", version: version)")
                    }
                    e.line("self.init()")
                    e.block("do") { e in e.line("try self.decodeFields(from: &buffer, version: version)") }
                    e.block("catch let error as KafkaProtocolError") { e in
                        e.line("throw error.within(api: \"\(message.name)\", version: version)")
                    }
                }
                e.line()
                e.block("mutating func decodeFields(from buffer: inout ByteBuffer, version: Int16) throws") { e in
                    e.emitDecodeBody(def, message: message, valid: valid)
                }
            } else {
                e.block("public init(from buffer: inout ByteBuffer, version: Int16) throws") { e in
                    e.line("self.init()")
                    e.emitDecodeBody(def, message: message, valid: valid)
                }
            }
        }
        line()
    }

    mutating func emitEncodeBody(_ def: StructDefinition, message: MessageSpec, valid: VersionRange) throws {
        let flexible = !message.flexibleVersions.isNone
        if flexible { line("let flexible = \(message.flexibleVersions.condition(within: valid) ?? "true")") }
        for f in def.fields where !f.isTagged {
            let n = "self." + Self.propertyName(f.name)
            let path = "\(def.name).\(f.name)"
            let stmt = encodeStatement(f.type, value: n, optional: f.isOptional, buffer: "buffer",
                                       compact: compactExpression(f, message),
                                       nullable: nullableCondition(f, valid), path: path)
            switch f.versions.condition(within: valid) {
            case nil:
                line(stmt)
            case "false":
                continue
            case let cond?:
                block("if \(cond)") { e in e.line(stmt) }
                if !f.ignorable {
                    // Dropping a value the peer cannot receive would be silent data loss.
                    try block("else if \(n) != \(try defaultExpression(f))") { e in
                        e.line("throw KafkaProtocolError(.unsupportedField, \"a non-default value cannot be sent at this version\", field: \"\(path)\")")
                    }
                }
            }
        }
        guard flexible else { return }
        try block("if flexible") { e in
            e.line("var tagged = TaggedFieldsWriter()")
            for f in def.fields where f.isTagged {
                let n = "self." + Self.propertyName(f.name)
                let stmt = e.encodeStatement(f.type, value: n, optional: f.isOptional, buffer: "$0", compact: "true",
                                             nullable: e.nullableCondition(f, valid), path: "\(def.name).\(f.name)")
                // Tagged fields at their default are omitted: old librdkafka misreads them.
                var conds = ["\(n) != \(try e.defaultExpression(f))"]
                if let c = f.versions.condition(within: valid) { conds.insert(c, at: 0) }
                e.block("if \(conds.joined(separator: " && "))") { e in
                    e.line("\(stmt.hasPrefix("try") ? "try " : "")tagged.add(tag: \(f.tag!)) { \(stmt) }")
                }
            }
            e.line("tagged.add(self.unknownTaggedFields)")
            e.line("tagged.write(into: &buffer)")
        }
    }

    mutating func emitDecodeBody(_ def: StructDefinition, message: MessageSpec, valid: VersionRange) {
        let flexible = !message.flexibleVersions.isNone
        if flexible { line("let flexible = \(message.flexibleVersions.condition(within: valid) ?? "true")") }
        for f in def.fields where !f.isTagged {
            let n = "self." + Self.propertyName(f.name)
            let expr = decodeExpression(f.type, optional: f.isOptional, buffer: "buffer",
                                        compact: compactExpression(f, message),
                                        nullable: nullableCondition(f, valid), path: "\(def.name).\(f.name)")
            switch f.versions.condition(within: valid) {
            case nil: line("\(n) = \(expr)")
            case "false": continue
            case let c?: block("if \(c)") { e in e.line("\(n) = \(expr)") }
            }
        }
        guard flexible else { return }
        block("if flexible") { e in
            let tagged = def.fields.filter(\.isTagged)
            let path = "\(def.name)._tagged_fields"
            if tagged.isEmpty {
                e.line("self.unknownTaggedFields = try buffer.kafkaReadTaggedFields(field: \"\(path)\") { _, _ in false }")
                return
            }
            e.line("self.unknownTaggedFields = try buffer.kafkaReadTaggedFields(field: \"\(path)\") { tag, buffer in")
            e.indent += 1
            defer {
                e.indent -= 1
                e.line("}")
            }
            do {
                e.block("switch tag") { e in
                    for f in tagged {
                        let n = "self." + Self.propertyName(f.name)
                        let expr = e.decodeExpression(f.type, optional: f.isOptional, buffer: "buffer", compact: "true",
                                                      nullable: e.nullableCondition(f, valid), path: "\(def.name).\(f.name)")
                        let cond = f.versions.condition(within: valid).map { " where \($0)" } ?? ""
                        e.line("case \(f.tag!)\(cond):")
                        e.line("    \(n) = \(expr)")
                        e.line("    return true")
                    }
                    e.line("default:")
                    e.line("    return false")
                }
            }
        }
    }

    // MARK: files

    mutating func emitMessage(_ spec: MessageSpec) throws {
        messageName = spec.name
        let root = StructDefinition(name: spec.name, fields: spec.fields)
        try emitStruct(root, message: spec, isMessage: true, about: spec.about)
        let nested = spec.allStructs()
        if !nested.isEmpty {
            try block("extension \(spec.name)") { e in
                for (i, def) in nested.enumerated() {
                    if i > 0 { e.line() }
                    try e.emitStructDeclarationOnly(def, message: spec)
                }
            }
            line()
            for def in nested {
                try emitCodec(def, message: spec, isMessage: false, valid: spec.validVersions)
            }
        }
        line("extension \(spec.name) {")
        indent += 1
        line("/// The versions the definition declares.")
        line("public static let validVersions: ClosedRange<Int16> = \(spec.validVersions.low)...\(spec.validVersions.high ?? 32767)")
        line("/// The first flexible version, or nil when none is.")
        line("public static let firstFlexibleVersion: Int16? = \(spec.flexibleVersions.isNone ? "nil" : String(spec.flexibleVersions.low))")
        indent -= 1
        line("}")
        line()
    }

    mutating func emitStructDeclarationOnly(_ def: StructDefinition, message: MessageSpec) throws {
        // Reuse emitStruct's declaration half by emitting into a scratch emitter.
        var scratch = Emitter()
        scratch.indent = indent
        scratch.messageName = messageName
        try scratch.emitStruct(def, message: message, isMessage: false, about: [])
        // emitStruct also emits the codec extension; keep only the struct declaration.
        var lines = scratch.out
        if let end = lines.firstIndex(where: { $0 == String(repeating: "    ", count: indent) + "}" }) {
            lines = Array(lines[...end])
        }
        out.append(contentsOf: lines)
    }
}
