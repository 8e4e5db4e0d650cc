import ArgumentParser
import KafkaClient

/// How admin subcommands reach a cluster: any Kafka-compatible broker.
struct ConnectionOptions: ParsableArguments {
    @Option(name: .long, help: "Comma-separated HOST:PORT list of brokers to bootstrap from.")
    var bootstrapServer: String = "127.0.0.1:9092"

    var servers: [String] { bootstrapServer.split(separator: ",").map(String.init) }

    func admin() throws -> KafkaAdmin {
        try KafkaAdmin(bootstrapServers: servers)
    }
}

/// Parses repeated `--config key=value` options.
func parseConfigs(_ items: [String]) throws -> [String: String] {
    var out: [String: String] = [:]
    for item in items {
        guard let eq = item.firstIndex(of: "="), eq != item.startIndex else {
            throw ValidationError("--config expects KEY=VALUE, got '\(item)'")
        }
        out[String(item[..<eq])] = String(item[item.index(after: eq)...])
    }
    return out
}

/// An error from a subcommand's work (not its arguments): printed as one line, exit 1.
struct CLIError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
