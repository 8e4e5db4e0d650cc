import NIOCore
import XCTest
@testable import Lake

final class LakeRowTests: XCTestCase {
    private func build(_ builder: inout LakeRowBuilder, _ value: String?, key: String? = nil, offset: Int64 = 0,
                       keepNonJSON: Bool = true) -> LakeRowBuilder.Outcome {
        builder.build(topic: "t", partition: 0, offset: offset, timestamp: 1_700_000_000_000, key: key.map { ByteBuffer(string: $0) },
                      value: value.map { ByteBuffer(string: $0) }, keepNonJSON: keepNonJSON)
    }

    private func row(_ outcome: LakeRowBuilder.Outcome) -> LakeRow? {
        if case .row(let r) = outcome { return r }
        return nil
    }

    func testSchemaIsInferredAndWidened() throws {
        var b = LakeRowBuilder()
        let first = try XCTUnwrap(row(build(&b, #"{"n": 1, "t": 21, "ok": true, "s": "x", "nested": {"a": [1, 2]}, "none": null}"#, key: "k")))
        XCTAssertEqual(b.schema.columns.map(\.name), ["_topic", "_partition", "_offset", "_timestamp", "_key", "n", "t", "ok", "s", "nested"])
        XCTAssertEqual(b.schema.columns.suffix(5).map(\.type), [.int64, .int64, .boolean, .string, .string])
        XCTAssertEqual(first.values.suffix(5), [.int64(1), .int64(21), .boolean(true), .string("x"), .json(#"{"a": [1, 2]}"#)])
        XCTAssertEqual(first.values[4], .string("k"))
        _ = build(&b, #"{"n": 2, "t": 21.5, "ok": "maybe", "none": 3}"#)
        XCTAssertEqual(b.schema.columns.map(\.type).suffix(6), [.int64, .double, .string, .string, .string, .int64])
        XCTAssertEqual(LakeValue.int64(21).coerced(to: .double), .double(21))
        XCTAssertEqual(LakeValue.boolean(true).coerced(to: .string), .string("true"))
        XCTAssertEqual(LakeValue.double(21.5).coerced(to: .string), .string("21.5"))
        XCTAssertNil(LakeValue.double(1.5).coerced(to: .int64))
        _ = build(&b, #"{"n": "two"}"#)
        XCTAssertEqual(b.schema.columns[5].type, .string, "int64 and string widen to string")
    }

    func testValuesThatAreNotJSONObjectsGoToValueOrNowhere() throws {
        var b = LakeRowBuilder()
        for text in ["plain text", "[1,2]", "42", #"{"a": 1"#, #"{"a": 1} x"#, ""] {
            guard case .notJSON(let reason, let r?) = build(&b, text) else { return XCTFail("'\(text)' should not parse") }
            XCTAssertTrue(reason.hasPrefix("value is not a JSON object"), reason)
            XCTAssertEqual(r[b.schema.position(of: "_value")!], .bytes(Array(text.utf8)))
        }
        guard case .notJSON(_, nil) = build(&b, "nope", keepNonJSON: false) else { return XCTFail() }
        // A null value (tombstone) is a row with the Kafka columns only.
        XCTAssertEqual(row(build(&b, nil))?.values.count, 5)
    }

    func testJSONEscapesNumbersAndRenamedKafkaFields() throws {
        var b = LakeRowBuilder()
        let r = try XCTUnwrap(row(build(&b, #"{"s": "a\"b\\c\nd\u00e9\ud83d\ude00", "big": 99999999999999999999, "e": 1e3, "_offset": 5}"#)))
        XCTAssertEqual(r[b.schema.position(of: "s")!], .string("a\"b\\c\ndé😀"))
        XCTAssertEqual(r[b.schema.position(of: "big")!], .double(1e20))
        XCTAssertEqual(r[b.schema.position(of: "e")!], .double(1000))
        XCTAssertEqual(r[b.schema.position(of: "_offset_field")!], .int64(5))
        XCTAssertEqual(r[2], .int64(0), "the Kafka offset is not overwritten")
    }

    func testWideObjectsAndRepeatedNamesKeepTheLastValue() throws {
        var b = LakeRowBuilder()
        let fields = (0..<40).map { #""f\#($0)": \#($0)"# } + [#""f3": "again""#, #""f30": "again""#]
        let r = try XCTUnwrap(row(build(&b, "{" + fields.joined(separator: ",") + "}")))
        XCTAssertEqual(b.schema.columns.count, 5 + 40)
        XCTAssertEqual(r[b.schema.position(of: "f3")!], .string("again"))
        XCTAssertEqual(r[b.schema.position(of: "f30")!], .string("again"))
        XCTAssertEqual(r[b.schema.position(of: "f39")!], .int64(39))
    }

    func testDeeplyNestedValuesAreRefused() {
        var b = LakeRowBuilder()
        let deep = #"{"a": "# + String(repeating: "[", count: 1000) + String(repeating: "]", count: 1000) + "}"
        guard case .notJSON(let reason, _) = build(&b, deep) else { return XCTFail("deep nesting must be refused") }
        XCTAssertTrue(reason.contains("nested deeper than"), reason)
    }

    func testTimeFieldAndCalendar() throws {
        var b = LakeRowBuilder(timeField: "at")
        XCTAssertEqual(row(build(&b, #"{"at": "2024-02-29T23:59:59.500Z"}"#))?.time, 1_709_251_199_500)
        XCTAssertEqual(row(build(&b, #"{"at": 1000}"#))?.time, 1000)
        XCTAssertEqual(row(build(&b, #"{"x": 1}"#))?.time, 1_700_000_000_000, "without the field: the record timestamp")
        XCTAssertEqual(LakeValue.iso8601(1_709_251_199_500), "2024-02-29T23:59:59.500Z")
        XCTAssertEqual(LakeValue.iso8601(-1), "1969-12-31T23:59:59.999Z")
    }

    func testCSVQuotesAsRFC4180() {
        var out = ByteBuffer()
        CSVEncoder.writeRecord(["plain", "a,b", "say \"hi\"", "two\nlines", " padded", ""], into: &out)
        XCTAssertEqual(String(buffer: out), "plain,\"a,b\",\"say \"\"hi\"\"\",\"two\nlines\",\" padded\",\r\n")
    }

    func testJSONLinesKeepNestedValues() {
        var schema = LakeSchema()
        _ = schema.observe("n", .json("[1,2]"))
        _ = schema.observe("s", .string("q\"\u{1}"))
        var out = ByteBuffer()
        JSONLinesEncoder.writeRow(LakeRow(values: [.string("t"), .int64(0), .int64(7), .timestampMillis(0), .null, .json("[1,2]"), .string("q\"\u{1}")],
                                          time: 0, estimatedBytes: 0), schema: schema, into: &out)
        XCTAssertEqual(String(buffer: out),
                       #"{"_topic":"t","_partition":0,"_offset":7,"_timestamp":"1970-01-01T00:00:00.000Z","n":[1,2],"s":"q\"\u0001"}"# + "\n")
    }

    func testObjectNamesParse() {
        let key = LakeObjectName.key(topic: "weather", partitionPath: "date=2024-01-01", partition: 3, firstOffset: 10, lastOffset: 99, format: .parquet)
        XCTAssertEqual(key, "weather/date=2024-01-01/part-3-10-99.parquet")
        let name = LakeObjectName(key: key, format: .parquet)
        XCTAssertEqual(name?.partition, 3)
        XCTAssertEqual(name?.firstOffset, 10)
        XCTAssertEqual(name?.lastOffset, 99)
        XCTAssertNil(LakeObjectName(key: key, format: .csv))
        XCTAssertNil(LakeObjectName(key: "weather/_manifest.parquet.json", format: .parquet))
        XCTAssertEqual(ExportSession.escapePathValue("a/b c"), "a%2Fb%20c")
        XCTAssertEqual(ExportSession.escapePathValue(nil), "__HIVE_DEFAULT_PARTITION__")
    }
}
