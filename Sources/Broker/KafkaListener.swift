import KafkaProtocol
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import ServiceLifecycle

/// Accepts Kafka connections and serves each one: frames in, responses out, in request
/// order. A connection whose request cannot be decoded is closed with a logged reason;
/// other connections are unaffected.
public final class KafkaListener: Service, @unchecked Sendable {
    // @unchecked: `makeHandler` is set once by Broker.init before `run` is called.
    let configuration: BrokerConfiguration
    let eventLoopGroup: MultiThreadedEventLoopGroup
    let logger: Logger
    var makeHandler: (@Sendable (Int) -> RequestHandler)!
    /// Runs before the port is bound (tiered-storage restore), so no client sees a
    /// partition before it is ready.
    var beforeBind: (@Sendable () async throws -> Void)?
    private let bound: EventLoopPromise<Int>
    /// Requests of one connection that may be in flight at once (read but not answered).
    static let maximumInFlightRequests = 128

    init(configuration: BrokerConfiguration, eventLoopGroup: MultiThreadedEventLoopGroup, logger: Logger) {
        self.configuration = configuration
        self.eventLoopGroup = eventLoopGroup
        self.logger = logger
        self.bound = eventLoopGroup.any().makePromise(of: Int.self)
    }

    /// The port actually bound (useful with port 0). Waits until the listener is up.
    public func boundPort() async throws -> Int {
        try await bound.futureResult.get()
    }

    public func run() async throws {
        let maxFrame = configuration.socketRequestMaxBytes
        let server: NIOAsyncChannel<NIOAsyncChannel<ByteBuffer, ByteBuffer>, Never>
        do {
            if let beforeBind { try await beforeBind() }
            server = try await ServerBootstrap(group: eventLoopGroup)
                .serverChannelOption(.backlog, value: 256)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
                .childChannelOption(.maxMessagesPerRead, value: 16)
                .bind(host: configuration.host, port: configuration.port) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(
                            ByteToMessageHandler(KafkaFrameDecoder(maximumFrameSize: maxFrame)))
                        return try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                    }
                }
        } catch {
            bound.fail(error)
            throw error
        }
        let port = server.channel.localAddress?.port ?? configuration.port
        let handler = makeHandler(port)
        let globalBytes = configuration.queuedMaxRequestBytes > 0 ? AsyncSemaphore(permits: configuration.queuedMaxRequestBytes) : nil
        let connections = NIOLockedValueBox(0)
        let maxConnections = configuration.maxConnections
        logger.info("listening", metadata: ["address": "\(configuration.host):\(port)",
                                            "advertised": "\(configuration.effectiveAdvertisedHost):\(configuration.advertisedPort ?? port)",
                                            "data.dir": "\(configuration.dataDirectory)"])
        bound.succeed(port)
        let serverChannel = server.channel
        try await withGracefulShutdownHandler {
            try await withThrowingDiscardingTaskGroup { group in
                try await server.executeThenClose { inbound in
                    for try await connection in inbound {
                        let admitted = connections.withLockedValue { n -> Bool in
                            guard n < maxConnections else { return false }
                            n += 1
                            return true
                        }
                        guard admitted else {
                            self.logger.warning("refusing connection: max.connections reached", metadata: [
                                "peer": "\(connection.channel.remoteAddress.map { "\($0)" } ?? "unknown")", "max.connections": "\(maxConnections)"])
                            // executeThenClose finishes the channel's writer and closes it.
                            try? await connection.executeThenClose { _, _ in }
                            continue
                        }
                        group.addTask {
                            defer { connections.withLockedValue { $0 -= 1 } }
                            await self.serve(connection, handler: handler, globalBytes: globalBytes)
                        }
                    }
                }
                // The listening socket is closed: stop serving existing connections too.
                group.cancelAll()
            }
        } onGracefulShutdown: {
            serverChannel.close(promise: nil)
        }
    }

    /// Writes a response's parts in order: bytes as they are, file slices as FileRegions
    /// (sendfile) over a duplicate of the segment's descriptor, closed once written.
    /// Writes go straight to the channel (not the async writer) so that byte and file
    /// parts keep their order, and so we know when a descriptor may be closed.
    static func write(_ frame: ResponseFrame, to channel: any Channel) async throws {
        var handles: [NIOFileHandle] = []
        defer {
            for h in handles { try? h.close() }
        }
        var last: EventLoopFuture<Void>?
        for part in frame.parts {
            switch part {
            case .bytes(let b):
                last = channel.write(IOData.byteBuffer(b))
            case .file(let slice):
                let handle = NIOFileHandle(_deprecatedTakingOwnershipOfDescriptor: try slice.duplicateDescriptor())
                handles.append(handle)
                let region = FileRegion(fileHandle: handle, readerIndex: slice.position, endIndex: slice.position + slice.length)
                last = channel.write(IOData.fileRegion(region))
            }
        }
        channel.flush()
        try await last?.get()
    }

    /// Requests of a connection are read and started in order (so appends keep the
    /// order the client sent them in) while earlier ones may still be waiting on an
    /// fsync or a long poll; responses are written strictly in request order.
    private func serve(_ connection: NIOAsyncChannel<ByteBuffer, ByteBuffer>, handler: RequestHandler, globalBytes: AsyncSemaphore?) async {
        let peer = connection.channel.remoteAddress.map { "\($0)" } ?? "unknown"
        // Kafka reports a member's host as "/address".
        let clientHost = connection.channel.remoteAddress?.ipAddress.map { "/" + $0 } ?? ""
        do {
            try await connection.executeThenClose { inbound, outbound in
                let (pending, continuation) = AsyncStream<(PendingResponse, Int)>.makeStream()
                let window = AsyncSemaphore(permits: Self.maximumInFlightRequests)
                // Bytes of requests read but not yet answered, per connection and in all.
                let connectionBytes = AsyncSemaphore(permits: self.configuration.connectionMaxInFlightBytes)
                // What this connection holds of the global budget, returned in full when it ends
                // (requests still queued then are never answered).
                let heldGlobally = NIOLockedValueBox(0)
                defer {
                    let held = heldGlobally.withLockedValue { h in defer { h = 0 }; return h }
                    if held > 0 { globalBytes?.release(held) }
                }
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask {
                        defer { continuation.finish() }
                        for try await frame in inbound {
                            let size = frame.readableBytes
                            await window.acquire()
                            await connectionBytes.acquire(size)
                            if let globalBytes {
                                await globalBytes.acquire(size)
                                heldGlobally.withLockedValue { $0 += min(size, globalBytes.capacity) }
                            }
                            continuation.yield((try await handler.handle(frame: frame, clientHost: clientHost), size))
                        }
                    }
                    group.addTask {
                        defer {
                            window.close()
                            connectionBytes.close()
                        }
                        for await (response, size) in pending {
                            defer {
                                window.release()
                                connectionBytes.release(size)
                                if let globalBytes {
                                    heldGlobally.withLockedValue { $0 -= min(size, globalBytes.capacity) }
                                    globalBytes.release(size)
                                }
                            }
                            if let frame = try await response.resolve() {
                                try await Self.write(frame, to: connection.channel)
                            }
                        }
                    }
                    do {
                        try await group.next()
                        try await group.next()
                    } catch {
                        group.cancelAll()
                        connection.channel.close(promise: nil)
                        throw error
                    }
                }
            }
        } catch let error as KafkaFrameDecoder.FrameTooLarge {
            logger.warning("closing connection: request too large", metadata: ["peer": "\(peer)", "reason": "\(error)"])
        } catch let error as KafkaProtocolError {
            logger.warning("closing connection: malformed request", metadata: ["peer": "\(peer)", "reason": "\(error)"])
        } catch let error as RequestError {
            logger.warning("closing connection: unsupported request", metadata: ["peer": "\(peer)", "reason": "\(error)"])
        } catch let error as ChannelError where error == .ioOnClosedChannel || error == .alreadyClosed {
            logger.debug("connection closed", metadata: ["peer": "\(peer)"])
        } catch {
            logger.debug("connection ended", metadata: ["peer": "\(peer)", "reason": "\(error)"])
        }
    }
}
