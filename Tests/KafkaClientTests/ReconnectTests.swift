import Foundation
@testable import KafkaClient
import NIOCore
import NIOPosix
import XCTest

final class ReconnectTests: XCTestCase {
    func testBackoffDoublesUpToTheCapAndResetsOnSuccess() {
        var backoff = ReconnectBackoff(baseMs: 50, maxMs: 1000)
        let t0 = NIODeadline.uptimeNanoseconds(5_000_000_000)
        XCTAssertNil(backoff.remaining(now: t0))
        // random 0.5: the jitter factor is exactly 1.
        let delays = (0..<8).map { _ in backoff.recordFailure(now: t0, random: 0.5).nanoseconds / 1_000_000 }
        XCTAssertEqual(delays, [50, 100, 200, 400, 800, 1000, 1000, 1000])
        XCTAssertEqual(backoff.remaining(now: t0 + .milliseconds(400)), .milliseconds(600))
        XCTAssertNil(backoff.remaining(now: t0 + .milliseconds(1000)))
        backoff.recordSuccess()
        XCTAssertNil(backoff.remaining(now: t0))
        XCTAssertEqual(backoff.recordFailure(now: t0, random: 0.5), .milliseconds(50))
    }

    func testBackoffJitterStaysWithinTwentyPercent() {
        XCTAssertEqual(ReconnectBackoff.delayMs(failures: 1, baseMs: 50, maxMs: 1000, random: 0), 40, accuracy: 1e-9)
        XCTAssertEqual(ReconnectBackoff.delayMs(failures: 1, baseMs: 50, maxMs: 1000, random: 1), 60, accuracy: 1e-9)
        XCTAssertEqual(ReconnectBackoff.delayMs(failures: 40, baseMs: 50, maxMs: 1000, random: 1), 1200, accuracy: 1e-9)
        XCTAssertEqual(ReconnectBackoff.delayMs(failures: Int.max, baseMs: 50, maxMs: 1000, random: 0.5), 1000, accuracy: 1e-9)
        XCTAssertEqual(ReconnectBackoff.delayMs(failures: 3, baseMs: 0, maxMs: 1000, random: 0.5), 0)
        var seen: [Double] = []
        for _ in 0..<200 {
            let d = ReconnectBackoff.delayMs(failures: 2, baseMs: 50, maxMs: 1000, random: Double.random(in: 0...1))
            XCTAssert((80...120).contains(d), "\(d)")
            seen.append(d)
        }
        XCTAssertGreaterThan(Set(seen).count, 1, "the jitter varies")
    }

    /// A port on 127.0.0.1 that nothing listens on (bound, then closed).
    private func closedPort() async throws -> Int {
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .bind(host: "127.0.0.1", port: 0).get()
        let port = channel.localAddress!.port!
        try await channel.close()
        return port
    }

    func testRefusedConnectionsBackOffExponentiallyThenReconnectOnceABrokerListens() async throws {
        let port = try await closedPort()
        let key = "127.0.0.1:\(port)"
        let cluster = try KafkaCluster(bootstrapServers: [key], reconnectBackoffMs: 20, reconnectBackoffMaxMs: 320)
        // Ask as often as the producer's and consumer's retry loops would, and more: the
        // cluster itself spaces the real attempts.
        var refusedInBackoff = 0
        let deadline = ContinuousClock.now + .seconds(30)
        while await cluster.connectAttempts[key, default: []].count < 7 {
            guard ContinuousClock.now < deadline else { return XCTFail("fewer than 7 attempts in 30 s") }
            do {
                _ = try await cluster.anyConnection()
                return XCTFail("connected to a port nothing listens on")
            } catch let error as KafkaClientError {
                XCTAssertEqual(error.code, .noBrokerReachable)
                XCTAssert(error.message.contains(key), error.message)
                if error.message.contains("next attempt in") { refusedInBackoff += 1 }
            }
            try await Task.sleep(for: .milliseconds(2))
        }
        XCTAssertGreaterThan(refusedInBackoff, 0, "calls during the backoff fail without an attempt")
        let attempts = await cluster.connectAttempts[key]!
        let gapsMs = zip(attempts.dropFirst(), attempts).map { Double(($0 - $1).nanoseconds) / 1e6 }
        // Each gap is at least the backoff's lower bound (base * 2^i, capped, minus 20%);
        // a slow machine only makes gaps longer.
        for (i, gap) in gapsMs.enumerated() {
            let bound = 0.8 * Double(min(20 << i, 320))
            XCTAssertGreaterThanOrEqual(gap, bound, "gap \(i) in \(gapsMs)")
        }
        XCTAssertGreaterThan(gapsMs.suffix(2).min()!, gapsMs.prefix(2).min()!, "gaps grow: \(gapsMs)")
        let failures = await cluster.backoffs[key]?.failures
        XCTAssertEqual(failures, attempts.count)

        // A broker comes up on that port: the client connects at its next attempt and works.
        let broker = try await TestBroker { $0.port = port }
        try await eventually("the client reconnects", seconds: 20) {
            (try? await cluster.anyConnection()) != nil
        }
        let metadata = try await cluster.refreshMetadata(topics: [])
        XCTAssertEqual(metadata.brokers.map(\.port), [Int32(port)])
        let backoffAfterSuccess = await cluster.backoffs[key]
        XCTAssertNil(backoffAfterSuccess, "a successful connection resets the backoff")
        await cluster.close()
        await broker.stop()
    }

    func testNoReachableBootstrapServerIsAClearError() async throws {
        let ports = [try await closedPort(), try await closedPort()]
        let servers = ports.map { "127.0.0.1:\($0)" }
        let admin = try KafkaAdmin(bootstrapServers: servers)
        do {
            _ = try await admin.listTopics()
            XCTFail("no broker listens")
        } catch let error as KafkaClientError {
            XCTAssertEqual(error.code, .noBrokerReachable)
            for s in servers { XCTAssert(error.description.contains(s), error.description) }
            XCTAssert(error.description.lowercased().contains("refused"), error.description)
        }
        await admin.close()

        var config = KafkaProducer.Configuration(bootstrapServers: servers)
        config.maxBlockMs = 500
        let producer = try KafkaProducer(configuration: config)
        let runner = Task { try await producer.run() }
        do {
            _ = try await producer.send(topic: "anything", value: "x")
            XCTFail("no broker listens")
        } catch let error as KafkaClientError {
            XCTAssertEqual(error.code, .metadataTimedOut)
            XCTAssert(servers.contains { error.description.contains($0) }, error.description)
        }
        await producer.close()
        try await runner.value
    }
}
