import Foundation
import KafkaCodegen

// kafka-codegen: generates Tributary's Kafka protocol codecs from Apache Kafka's
// message definitions.
//
//     swift run kafka-codegen ../shared/kafka-protocol Sources/KafkaProtocol/Generated \
//         --samples Tests/KafkaProtocolTests/GeneratedSamples.swift
//
// One Swift file per API (request and response together), one per header and data
// type, and APIKey.swift with the key enum and version table.

let arguments = CommandLine.arguments
guard arguments.count == 3 || (arguments.count == 5 && arguments[3] == "--samples") else {
    FileHandle.standardError.write(Data("usage: kafka-codegen DEFINITIONS_DIR OUTPUT_DIR [--samples TEST_FILE]\n".utf8))
    exit(2)
}
do {
    let files = try Generator(definitions: URL(fileURLWithPath: arguments[1])).generate()
    let output = URL(fileURLWithPath: arguments[2])
    try FileManager.default.createDirectory(at: output, withIntermediateDirectories: true)
    // Remove stale generated files so a deleted definition does not linger.
    for existing in try FileManager.default.contentsOfDirectory(atPath: output.path) where existing.hasSuffix(".swift") {
        if files[existing] == nil { try FileManager.default.removeItem(at: output.appendingPathComponent(existing)) }
    }
    for (name, text) in files.sorted(by: { $0.key < $1.key }) {
        try Data(text.utf8).write(to: output.appendingPathComponent(name))
    }
    if arguments.count == 5 {
        let samples = try Generator(definitions: URL(fileURLWithPath: arguments[1])).generateSamples()
        try Data(samples.utf8).write(to: URL(fileURLWithPath: arguments[4]))
    }
    print("kafka-codegen: wrote \(files.count) files to \(output.path)")
} catch {
    FileHandle.standardError.write(Data("kafka-codegen: error: \(error)\n".utf8))
    exit(1)
}
