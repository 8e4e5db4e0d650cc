import Broker
import Foundation
import KafkaClient
import Logging

/// A real broker started in-process on a free loopback port with a fresh data directory,
/// for the test targets that need one (they cannot import each other, so it lives here).
///
/// Groups form at once (`group.initial.rebalance.delay.ms` 0 instead of Kafka's 3 s);
/// `configure` sees and may change that.
public final class InProcessBroker: @unchecked Sendable {
    // @unchecked: set once in init and only read afterwards, from the test's own task.
    public let directory: String
    public private(set) var broker: Broker!
    public private(set) var port = 0
    private var task: Task<Void, any Error>!
    private let removesDataOnStop: Bool

    /// - Parameters:
    ///   - directory: the data directory; a new temporary one when nil.
    ///   - removesDataOnStop: `stop()` also deletes the data directory. Pass false to start
    ///     another broker on the same directory afterwards.
    public init(directory: String? = nil, removesDataOnStop: Bool = true, label: String = "test-broker",
                configure: (inout BrokerConfiguration) -> Void = { _ in }) async throws {
        self.directory = directory ?? NSTemporaryDirectory() + "tributary-test-\(UUID().uuidString)"
        self.removesDataOnStop = removesDataOnStop
        var config = BrokerConfiguration()
        config.port = 0
        config.dataDirectory = self.directory
        config.groups.initialRebalanceDelayMs = 0
        configure(&config)
        broker = try Broker(configuration: config, logger: Logger(label: label))
        let services = broker.services
        task = Task {
            try await withThrowingDiscardingTaskGroup { group in
                for service in services { group.addTask { try await service.run() } }
            }
        }
        port = try await broker.listener.boundPort()
    }

    public var bootstrap: [String] { ["127.0.0.1:\(port)"] }

    /// A new connection (the caller closes it).
    public func connect() async throws -> KafkaConnection {
        try await KafkaConnection.connect(host: "127.0.0.1", port: port)
    }

    public func admin() throws -> KafkaAdmin { try KafkaAdmin(bootstrapServers: bootstrap) }

    public func createTopic(_ name: String, partitions: Int32, configs: [String: String] = [:]) async throws {
        let admin = try admin()
        try await admin.createTopic(name, partitions: partitions, configs: configs)
        await admin.close()
    }

    /// Stops the services, flushes and checkpoints the logs (and removes the data unless
    /// told otherwise at init).
    public func stop() async {
        task.cancel()
        _ = try? await task.value
        broker.shutdown()
        if removesDataOnStop { removeData() }
    }

    public func removeData() {
        try? FileManager.default.removeItem(atPath: directory)
    }
}
