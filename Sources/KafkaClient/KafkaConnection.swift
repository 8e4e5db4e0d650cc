import Foundation
import KafkaProtocol
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// One connection to one broker: pipelined requests matched to responses by correlation
/// id, API versions negotiated on connect, a timeout per request.
public final class KafkaConnection: Sendable {
    public let host: String
    public let port: Int
    public let clientId: String
    private let channel: any Channel
    private let versions: NIOLockedValueBox<[Int16: ClosedRange<Int16>]>
    private let nextCorrelationId = NIOLockedValueBox<Int32>(0)
    public let requestTimeout: Duration

    private init(host: String, port: Int, clientId: String, channel: any Channel, requestTimeout: Duration) {
        self.host = host
        self.port = port
        self.clientId = clientId
        self.channel = channel
        self.requestTimeout = requestTimeout
        self.versions = NIOLockedValueBox([:])
    }

    /// Connects and negotiates API versions (ApiVersions v3, falling back to v0 when the
    /// broker is older and answers UNSUPPORTED_VERSION).
    public static func connect(
        host: String, port: Int, clientId: String = "tributary",
        requestTimeout: Duration = .seconds(30), connectTimeout: Duration = .seconds(10),
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async throws -> KafkaConnection {
        let channel: any Channel
        do {
            channel = try await ClientBootstrap(group: eventLoopGroup)
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                .connectTimeout(.milliseconds(Int64(connectTimeout.components.seconds * 1000 + connectTimeout.components.attoseconds / 1_000_000_000_000_000)))
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(KafkaFrameDecoder(maximumFrameSize: Int(Int32.max))))
                        try channel.pipeline.syncOperations.addHandler(ResponseMatcher())
                    }
                }
                .connect(host: host, port: port).get()
        } catch {
            throw KafkaClientError(.noBrokerReachable, "cannot connect to \(host):\(port): \(Self.reason(error))")
        }
        let connection = KafkaConnection(host: host, port: port, clientId: clientId, channel: channel, requestTimeout: requestTimeout)
        do {
            try await connection.negotiateVersions()
        } catch {
            connection.close()
            throw error
        }
        return connection
    }

    /// The operating system's words for a failed connect ("Connection refused"), not
    /// NIO's nested error values.
    static func reason(_ error: any Error) -> String {
        var error = error
        if let e = error as? NIOConnectionError, let first = e.connectionErrors.first?.error { error = first }
        if let e = error as? IOError { return String(cString: strerror(e.errnoCode)) }
        return "\(error)"
    }

    private func negotiateVersions() async throws {
        var response = try await send(ApiVersionsRequest(clientSoftwareName: "tributary-swift", clientSoftwareVersion: "0.1"), version: 3)
        if response.errorCode == KafkaErrorCode.unsupportedVersion.rawValue {
            response = try await send(ApiVersionsRequest(), version: 0)
        }
        guard response.errorCode == 0 else {
            throw KafkaClientError(.brokerError, "ApiVersions failed: \(KafkaErrorCode(rawValue: response.errorCode))",
                                   kafkaCode: KafkaErrorCode(rawValue: response.errorCode))
        }
        versions.withLockedValue { v in
            for key in response.apiKeys { v[key.apiKey] = key.minVersion...key.maxVersion }
        }
    }

    /// The broker's version range for `api`, or nil when it does not offer the API.
    public func brokerVersions(_ api: APIKey) -> ClosedRange<Int16>? {
        versions.withLockedValue { $0[api.rawValue] }
    }

    /// The highest version both sides support.
    public func version<R: KafkaRequest>(for type: R.Type, upTo ours: Int16 = R.validVersions.upperBound) throws -> Int16 {
        guard let theirs = brokerVersions(R.apiKey) else {
            throw KafkaClientError(.unsupportedVersion, "the broker at \(host):\(port) does not support \(R.apiKey.name)")
        }
        let high = min(theirs.upperBound, ours, R.validVersions.upperBound)
        let low = max(theirs.lowerBound, R.validVersions.lowerBound)
        guard high >= low else {
            throw KafkaClientError(.unsupportedVersion, "no common version of \(R.apiKey.name): broker \(theirs), client \(R.validVersions)")
        }
        return high
    }

    /// Sends `request` at the highest common version and waits for its response.
    public func send<R: KafkaRequest>(_ request: R) async throws -> R.Response {
        try await send(request, version: try version(for: R.self))
    }

    /// Sends `request` at `version` and waits for the response.
    public func send<R: KafkaRequest>(_ request: R, version: Int16) async throws -> R.Response {
        try await send(request, version: version, timeout: nil)
    }

    /// Sends `request` at `version` and waits up to `timeout` (nil: the connection's
    /// request timeout); JoinGroup, for one, may legitimately wait for a whole rebalance.
    public func send<R: KafkaRequest>(_ request: R, version: Int16, timeout: Duration?) async throws -> R.Response {
        var body = try await exchange(request, version: version, expectResponse: true, timeout: timeout)!
        return try Self.decodeResponse(R.self, from: &body, version: version)
    }

    /// Writes `request` before returning and gives back the pending response.
    ///
    /// Unlike `send`, which may reach the socket in any order when called from several
    /// tasks, requests written by one caller with this method reach the broker in call
    /// order; an idempotent producer's pipelined batches depend on that. `expectResponse`
    /// false is for Produce with acks=0: the future completes once the bytes are written.
    func write<R: KafkaRequest>(_ request: R, version: Int16, expectResponse: Bool = true, frameCapacity: Int = 256) throws -> EventLoopFuture<ByteBuffer?> {
        try startExchange(request, version: version, expectResponse: expectResponse, timeout: nil, frameCapacity: frameCapacity)
    }

    static func decodeResponse<R: KafkaRequest>(_ type: R.Type, from body: inout ByteBuffer, version: Int16) throws -> R.Response {
        do {
            return try R.Response(from: &body, version: version)
        } catch {
            throw KafkaClientError(.malformedResponse, "\(R.apiKey.name) v\(version): \(error)")
        }
    }

    /// Sends a request that has no response (Produce with acks=0).
    public func sendWithoutResponse<R: KafkaRequest>(_ request: R, version: Int16) async throws {
        _ = try await exchange(request, version: version, expectResponse: false)
    }

    private func exchange<R: KafkaRequest>(_ request: R, version: Int16, expectResponse: Bool, timeout: Duration? = nil) async throws -> ByteBuffer? {
        try await startExchange(request, version: version, expectResponse: expectResponse, timeout: timeout, frameCapacity: 256).get()
    }

    private func startExchange<R: KafkaRequest>(_ request: R, version: Int16, expectResponse: Bool, timeout: Duration?,
                                                frameCapacity: Int) throws -> EventLoopFuture<ByteBuffer?> {
        let correlationId = nextCorrelationId.withLockedValue { id -> Int32 in
            id = id == Int32.max ? 0 : id + 1
            return id
        }
        var frame = channel.allocator.buffer(capacity: frameCapacity)
        try encodeRequestFrame(request, version: version, correlationId: correlationId, clientId: clientId, into: &frame)
        let promise = channel.eventLoop.makePromise(of: ByteBuffer?.self)
        let pending = PendingRequest(correlationId: correlationId, headerVersion: R.apiKey.responseHeaderVersion(apiVersion: version),
                                     expectResponse: expectResponse, promise: promise)
        let timeout = timeout ?? requestTimeout
        let scheduled = channel.eventLoop.scheduleTask(in: .nanoseconds(Int64(timeout.components.seconds) * 1_000_000_000 + timeout.components.attoseconds / 1_000_000_000)) {
            promise.fail(KafkaClientError(.requestTimedOut, "\(R.apiKey.name) to \(self.host):\(self.port) got no answer within \(timeout)"))
        }
        promise.futureResult.whenComplete { _ in scheduled.cancel() }
        // A write to a channel that already closed never reaches ResponseMatcher; without
        // this the request would wait for its timeout instead of failing at once.
        let written = channel.eventLoop.makePromise(of: Void.self)
        written.futureResult.whenFailure { error in
            promise.fail(KafkaClientError(.connectionClosed, "cannot write to \(self.host):\(self.port): \(error)"))
        }
        channel.writeAndFlush(OutboundRequest(frame: frame, pending: pending), promise: written)
        return promise.futureResult
    }

    public var isActive: Bool { channel.isActive }

    public func close() {
        channel.close(promise: nil)
    }
}

struct PendingRequest {
    var correlationId: Int32
    var headerVersion: Int16
    var expectResponse: Bool
    var promise: EventLoopPromise<ByteBuffer?>
}

struct OutboundRequest {
    var frame: ByteBuffer
    var pending: PendingRequest
}

/// Pairs response frames with waiting requests by correlation id. Lives on the
/// channel's event loop, so its state needs no lock.
final class ResponseMatcher: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = OutboundRequest
    typealias OutboundOut = ByteBuffer

    private var pending: [Int32: PendingRequest] = [:]

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let request = unwrapOutboundIn(data)
        if request.pending.expectResponse {
            pending[request.pending.correlationId] = request.pending
        }
        let completion = request.pending.promise
        let expect = request.pending.expectResponse
        let writePromise = context.eventLoop.makePromise(of: Void.self)
        writePromise.futureResult.whenComplete { result in
            switch result {
            case .success:
                if !expect { completion.succeed(nil) }
            case .failure(let error):
                completion.fail(KafkaClientError(.connectionClosed, "write failed: \(error)"))
            }
        }
        context.write(wrapOutboundOut(request.frame), promise: writePromise)
        promise?.succeed()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var frame = unwrapInboundIn(data)
        guard let correlationId = frame.readInteger(as: Int32.self), let request = pending.removeValue(forKey: correlationId) else {
            context.fireErrorCaught(KafkaClientError(.malformedResponse, "response with an unknown correlation id"))
            context.close(promise: nil)
            return
        }
        if request.headerVersion >= 1 {
            do {
                _ = try frame.kafkaReadTaggedFields(field: "ResponseHeader._tagged_fields") { _, _ in false }
            } catch {
                request.promise.fail(KafkaClientError(.malformedResponse, "bad response header: \(error)"))
                return
            }
        }
        request.promise.succeed(frame)
    }

    func channelInactive(context: ChannelHandlerContext) {
        failAll(KafkaClientError(.connectionClosed, "the broker closed the connection"))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        failAll(KafkaClientError(.connectionClosed, "\(error)"))
        context.close(promise: nil)
    }

    private func failAll(_ error: KafkaClientError) {
        let waiting = pending
        pending = [:]
        for (_, r) in waiting { r.promise.fail(error) }
    }
}
