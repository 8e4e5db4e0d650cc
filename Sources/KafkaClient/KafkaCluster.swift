import Foundation
import KafkaProtocol
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// The brokers of a cluster as the client sees them: bootstrap, metadata, and one
/// connection per broker, opened on first use and reopened when it breaks.
public actor KafkaCluster {
    public struct Broker: Sendable, Hashable {
        public var nodeId: Int32
        public var host: String
        public var port: Int
    }

    public let bootstrapServers: [(host: String, port: Int)]
    public let clientId: String
    public let requestTimeout: Duration
    private let eventLoopGroup: any EventLoopGroup
    private var connections: [Int32: KafkaConnection] = [:]
    private var bootstrapConnection: KafkaConnection?
    public private(set) var brokers: [Int32: Broker] = [:]
    public private(set) var controllerId: Int32 = -1
    public private(set) var clusterId: String?

    /// `reconnect.backoff.ms`: the pause before reconnecting to a broker after a failed
    /// attempt, doubled after each further failure in a row.
    public let reconnectBackoffMs: Int
    /// `reconnect.backoff.max.ms`: the cap of that pause (before ±20% jitter).
    public let reconnectBackoffMaxMs: Int
    /// Per `host:port`: when the next connection attempt may start.
    private(set) var backoffs: [String: ReconnectBackoff] = [:]
    /// Per `host:port`: why the last attempt failed, repeated while it backs off.
    private var lastConnectErrors: [String: KafkaClientError] = [:]
    /// Per `host:port`: when the last attempts started (the last 64), for tests.
    private(set) var connectAttempts: [String: [NIODeadline]] = [:]

    /// `bootstrapServers` as `host:port` strings (Kafka's `bootstrap.servers`).
    ///
    /// A broker that refused a connection is not tried again for `reconnectBackoffMs`,
    /// then twice as long after each further failure up to `reconnectBackoffMaxMs` (with
    /// ±20% jitter, as the Java client); meanwhile asking for its connection fails at
    /// once with `.noBrokerReachable`, which callers treat as retriable.
    public init(bootstrapServers: [String], clientId: String = "tributary", requestTimeout: Duration = .seconds(30),
                reconnectBackoffMs: Int = 50, reconnectBackoffMaxMs: Int = 1000,
                eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) throws {
        self.bootstrapServers = try bootstrapServers.map(Self.parse)
        guard !self.bootstrapServers.isEmpty else {
            throw KafkaClientError(.invalidArgument, "no bootstrap servers given")
        }
        guard reconnectBackoffMs >= 0, reconnectBackoffMaxMs >= 0 else {
            throw KafkaClientError(.invalidArgument, "reconnectBackoffMs and reconnectBackoffMaxMs must not be negative")
        }
        self.clientId = clientId
        self.requestTimeout = requestTimeout
        self.reconnectBackoffMs = reconnectBackoffMs
        self.reconnectBackoffMaxMs = reconnectBackoffMaxMs
        self.eventLoopGroup = eventLoopGroup
    }

    static func parse(_ server: String) throws -> (host: String, port: Int) {
        var s = server.trimmingCharacters(in: .whitespaces)
        if let r = s.range(of: "://") { s = String(s[r.upperBound...]) }
        guard let colon = s.lastIndex(of: ":"), let port = Int(s[s.index(after: colon)...]), (1...65535).contains(port) else {
            throw KafkaClientError(.invalidArgument, "bootstrap server '\(server)' is not HOST:PORT")
        }
        var host = String(s[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        return (host, port)
    }

    /// A working connection to any broker: the bootstrap servers in order, then known brokers.
    public func anyConnection() async throws -> KafkaConnection {
        if let c = bootstrapConnection, c.isActive { return c }
        if let c = connections.values.first(where: \.isActive) { return c }
        var failures: [String] = []
        var tried: Set<String> = []
        let candidates = bootstrapServers.map { ($0.host, $0.port) } + brokers.values.sorted { $0.nodeId < $1.nodeId }.map { ($0.host, $0.port) }
        for (host, port) in candidates where tried.insert("\(host):\(port)").inserted {
            do {
                let c = try await connect(host: host, port: port)
                bootstrapConnection = c
                return c
            } catch {
                failures.append((error as? KafkaClientError)?.message ?? "\(host):\(port): \(error)")
            }
        }
        throw KafkaClientError(.noBrokerReachable, failures.joined(separator: "; "))
    }

    /// Connects to `host:port` unless it is backing off after failed attempts.
    private func connect(host: String, port: Int) async throws -> KafkaConnection {
        let key = "\(host):\(port)"
        let now = NIODeadline.now()
        if let wait = backoffs[key]?.remaining(now: now) {
            let why = lastConnectErrors[key].map { $0.message } ?? "cannot connect to \(key)"
            throw KafkaClientError(.noBrokerReachable, "\(why) (next attempt in \(max(1, wait.nanoseconds / 1_000_000)) ms)")
        }
        connectAttempts[key, default: []].append(now)
        if connectAttempts[key]!.count > 64 { connectAttempts[key]!.removeFirst() }
        do {
            let c = try await KafkaConnection.connect(host: host, port: port, clientId: clientId,
                                                      requestTimeout: requestTimeout, eventLoopGroup: eventLoopGroup)
            backoffs[key] = nil
            lastConnectErrors[key] = nil
            return c
        } catch {
            let failure = error as? KafkaClientError ?? KafkaClientError(.noBrokerReachable, "cannot connect to \(key): \(error)")
            var backoff = backoffs[key] ?? ReconnectBackoff(baseMs: reconnectBackoffMs, maxMs: reconnectBackoffMaxMs)
            backoff.recordFailure(now: .now(), random: Double.random(in: 0...1))
            backoffs[key] = backoff
            lastConnectErrors[key] = failure
            throw failure
        }
    }

    /// The connection to broker `nodeId`, from the last metadata.
    public func connection(to nodeId: Int32) async throws -> KafkaConnection {
        if let c = connections[nodeId], c.isActive { return c }
        if brokers[nodeId] == nil { _ = try await refreshMetadata(topics: []) }
        guard let broker = brokers[nodeId] else {
            throw KafkaClientError(.noBrokerReachable, "broker \(nodeId) is not in the cluster metadata")
        }
        let c = try await connect(host: broker.host, port: broker.port)
        connections[nodeId] = c
        return c
    }

    /// The controller's connection (where topic changes go), or any broker when unknown.
    public func controllerConnection() async throws -> KafkaConnection {
        if controllerId < 0 { _ = try await refreshMetadata(topics: []) }
        if controllerId >= 0, let c = try? await connection(to: controllerId) { return c }
        return try await anyConnection()
    }

    /// Fetches metadata for `topics` (nil: all) and updates the broker list.
    @discardableResult
    public func refreshMetadata(topics: [String]?, allowAutoCreate: Bool = false) async throws -> MetadataResponse {
        let c = try await anyConnection()
        let request = MetadataRequest(topics: topics.map { $0.map { .init(name: $0) } }, allowAutoTopicCreation: allowAutoCreate)
        let response = try await c.send(request, version: try c.version(for: MetadataRequest.self, upTo: 12))
        brokers = Dictionary(uniqueKeysWithValues: response.brokers.map { ($0.nodeId, Broker(nodeId: $0.nodeId, host: $0.host, port: Int($0.port))) })
        controllerId = response.controllerId
        clusterId = response.clusterId
        return response
    }

    public func close() {
        bootstrapConnection?.close()
        for c in connections.values { c.close() }
        connections = [:]
        bootstrapConnection = nil
    }
}

