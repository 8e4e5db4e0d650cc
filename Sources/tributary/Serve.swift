import ArgumentParser
import Broker
import Foundation
import Logging
import ObjectStore
import ServiceLifecycle

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the broker.",
        discussion: "Defaults: listen on 127.0.0.1:9092, data in ./tributary-data. A Kafka server.properties file is accepted; command-line options win over it."
    )

    @Option(name: .long, help: "A Kafka server.properties file.")
    var config: String?

    @Option(name: .long, help: "The data directory (log.dirs).")
    var dataDir: String?

    @Option(name: .long, help: "HOST:PORT to listen on (listeners).")
    var listen: String?

    @Option(name: .long, help: "HOST:PORT clients are told to connect to (advertised.listeners).")
    var advertisedListener: String?

    @Option(name: .long, help: ArgumentHelp("Tier closed segments of every topic to this store: file:///path or s3://bucket/prefix (remote.storage.url, and remote.storage.enable on by default).", valueName: "url"))
    var tierTo: String?

    @Option(name: .long, help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel: String = "info"

    func validate() throws {
        guard Logger.Level(rawValue: logLevel) != nil else {
            throw ValidationError("--log-level must be one of trace, debug, info, notice, warning, error, critical")
        }
        if let listen { _ = try hostPort("--listen", listen) }
        if let advertisedListener { _ = try hostPort("--advertised-listener", advertisedListener) }
        if let tierTo {
            do {
                _ = try ObjectStoreURL(parsing: tierTo)
            } catch {
                throw ValidationError("--tier-to: \(error)")
            }
        }
    }

    private func hostPort(_ name: String, _ value: String) throws -> (String, Int) {
        do {
            return try ServerProperties.hostPort(name, value)
        } catch {
            throw ValidationError("\(error)")
        }
    }

    func run() async throws {
        let level = Logger.Level(rawValue: logLevel)!
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "tributary")
        var configuration = BrokerConfiguration()
        if let config {
            let text: String
            do {
                text = try String(contentsOfFile: config, encoding: .utf8)
            } catch {
                throw CLIError("cannot read \(config): \(error.localizedDescription)")
            }
            do {
                let (parsed, warnings) = try ServerProperties.apply(text, to: configuration)
                configuration = parsed
                for w in warnings { logger.warning("\(config): \(w)") }
            } catch {
                throw CLIError("\(config): \(error)")
            }
        }
        if let dataDir { configuration.dataDirectory = dataDir }
        if let listen { (configuration.host, configuration.port) = try hostPort("--listen", listen) }
        if let advertisedListener {
            let (h, p) = try hostPort("--advertised-listener", advertisedListener)
            configuration.advertisedHost = h
            configuration.advertisedPort = p
        }
        if let tierTo {
            configuration.remoteStorageURL = tierTo
            configuration.logDefaults.remoteStorageEnable = true
        }
        let broker = try Broker(configuration: configuration, logger: logger)
        let group = ServiceGroup(
            configuration: .init(services: broker.services.map { .init(service: $0) },
                                 gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        )
        do {
            try await group.run()
        } catch {
            broker.shutdown()
            throw error
        }
        broker.shutdown()
    }
}
