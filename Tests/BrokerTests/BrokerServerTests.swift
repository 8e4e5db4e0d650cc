import Broker
import Foundation
import KafkaClient
import KafkaProtocol
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import TributaryTestSupport
import XCTest

/// The in-process broker of TributaryTestSupport; BrokerTests' restart tests keep its data.
typealias TestBroker = InProcessBroker

func batch(_ values: [String], timestamp: Int64 = Int64(Date().timeIntervalSince1970 * 1000)) -> ByteBuffer {
    var builder = RecordBatchBuilder(baseTimestamp: timestamp)
    for v in values { builder.append(key: nil, value: ByteBuffer(string: v)) }
    return builder.build().buffer
}

func produce(_ c: KafkaConnection, topic: String, _ values: [String], acks: Int16 = -1) async throws -> ProduceResponse.PartitionProduceResponse {
    let response = try await c.send(ProduceRequest(acks: acks, timeoutMs: 5000, topicData: [
        .init(name: topic, partitionData: [.init(index: 0, records: batch(values))]),
    ]))
    return response.responses[0].partitionResponses[0]
}

func fetch(_ c: KafkaConnection, topic: String, offset: Int64, maxWaitMs: Int32 = 0, minBytes: Int32 = 0) async throws -> FetchResponse.PartitionData {
    let response = try await c.send(FetchRequest(maxWaitMs: maxWaitMs, minBytes: minBytes, maxBytes: 1 << 20, topics: [
        .init(topic: topic, partitions: [.init(partition: 0, fetchOffset: offset, partitionMaxBytes: 1 << 20)]),
    ]), version: 12)
    return response.responses[0].partitions[0]
}

func values(_ records: ByteBuffer?) throws -> [String] {
    var reader = RecordBatchReader(records ?? ByteBuffer())
    var out: [String] = []
    while let b = try reader.next() {
        var it = try b.records()
        while let r = try it.next() { out.append(String(buffer: r.value!)) }
    }
    return out
}

final class BrokerServerTests: XCTestCase {
    func testApiVersionsAdvertisesWhatIsImplemented() async throws {
        let broker = try await TestBroker()
        defer { broker.removeData() }
        let c = try await broker.connect()
        XCTAssertEqual(c.brokerVersions(.produce), 3...11)
        XCTAssertEqual(c.brokerVersions(.fetch), 4...17)
        XCTAssertEqual(c.brokerVersions(.joinGroup), 0...9)
        XCTAssertNil(c.brokerVersions(.endTxn), "transactions are not implemented, so not advertised")
        for v in ApiVersionsRequest.validVersions {
            let r = try await c.send(ApiVersionsRequest(clientSoftwareName: "t", clientSoftwareVersion: "1"), version: v)
            XCTAssertEqual(r.errorCode, 0)
            XCTAssertTrue(r.apiKeys.contains { $0.apiKey == APIKey.metadata.rawValue && $0.maxVersion == 12 })
        }
        c.close()
        await broker.stop()
    }

    func testUnknownApiVersionsVersionGetsAV0ErrorWithOurRanges() async throws {
        let broker = try await TestBroker()
        defer { broker.removeData() }
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: "127.0.0.1", port: broker.port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(KafkaFrameDecoder(maximumFrameSize: 1 << 20)))
                    return try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        try await channel.executeThenClose { inbound, outbound in
            var frame = ByteBuffer()
            frame.writeInteger(Int32(0))
            // A v2 header naming ApiVersions v99, as a client from the future would send.
            try RequestHeader(requestApiKey: 18, requestApiVersion: 99, correlationId: 42, clientId: "future").encode(into: &frame, version: 2)
            frame.writeInteger(UInt8(0))  // empty body tagged fields
            frame.setInteger(Int32(frame.readableBytes - 4), at: 0)
            try await outbound.write(frame)
            var iterator = inbound.makeAsyncIterator()
            var response = try await iterator.next()!
            XCTAssertEqual(response.readInteger(as: Int32.self), 42)  // v0 header: correlation id only
            let body = try ApiVersionsResponse(from: &response, version: 0)
            XCTAssertEqual(body.errorCode, KafkaErrorCode.unsupportedVersion.rawValue)
            XCTAssertTrue(body.apiKeys.contains { $0.apiKey == 18 && $0.maxVersion == 4 })
        }
        await broker.stop()
    }

    func testProduceThenFetchOverTheWire() async throws {
        let broker = try await TestBroker()
        defer { broker.removeData() }
        let c = try await broker.connect()
        let meta = try await c.send(MetadataRequest(topics: [.init(name: "t")], allowAutoTopicCreation: true))
        XCTAssertEqual(meta.topics[0].errorCode, 0, "auto-created")
        XCTAssertEqual(meta.brokers.first?.port, Int32(broker.port))
        let p = try await produce(c, topic: "t", ["a", "b", "c"])
        XCTAssertEqual(p.errorCode, 0)
        XCTAssertEqual(p.baseOffset, 0)
        let f = try await fetch(c, topic: "t", offset: 0)
        XCTAssertEqual(f.highWatermark, 3)
        XCTAssertEqual(try values(f.records), ["a", "b", "c"])
        let out = try await fetch(c, topic: "t", offset: 4)
        XCTAssertEqual(out.errorCode, KafkaErrorCode.offsetOutOfRange.rawValue)
        c.close()
        await broker.stop()
    }

    func testFetchOfManyPartitionsSplicesEveryFileSliceAtOldAndFlexibleVersions() async throws {
        let broker = try await TestBroker()
        defer { broker.removeData() }
        let c = try await broker.connect()
        _ = try await c.send(CreateTopicsRequest(topics: [.init(name: "m", numPartitions: 3, replicationFactor: 1)]))
        for p in Int32(0)..<3 {
            for round in 0..<3 {
                let values = (0..<4).map { "p\(p)-r\(round)-\($0)" }
                let r = try await c.send(ProduceRequest(acks: 1, timeoutMs: 1000, topicData: [
                    .init(name: "m", partitionData: [.init(index: p, records: batch(values))]),
                ]))
                XCTAssertEqual(r.responses[0].partitionResponses[0].errorCode, 0)
            }
        }
        for version: Int16 in [4, 11, 12] {
            let response = try await c.send(FetchRequest(maxWaitMs: 0, minBytes: 0, maxBytes: 1 << 20, topics: [
                .init(topic: "m", partitions: (0..<3).map { .init(partition: $0, fetchOffset: 0, partitionMaxBytes: 1 << 20) }),
            ]), version: version)
            XCTAssertEqual(response.responses[0].partitions.count, 3)
            for (p, data) in response.responses[0].partitions.enumerated() {
                XCTAssertEqual(try values(data.records).count, 12, "v\(version) partition \(p)")
                XCTAssertEqual(try values(data.records).first, "p\(p)-r0-0")
                XCTAssertEqual(data.highWatermark, 12)
            }
        }
        // A partition limit smaller than one batch still returns that whole batch (KIP-74).
        let small = try await c.send(FetchRequest(maxWaitMs: 0, minBytes: 0, maxBytes: 1 << 20, topics: [
            .init(topic: "m", partitions: [.init(partition: 1, fetchOffset: 5, partitionMaxBytes: 10)]),
        ]), version: 12)
        XCTAssertEqual(try values(small.responses[0].partitions[0].records), (0..<4).map { "p1-r1-\($0)" })
        c.close()
        await broker.stop()
    }

    func testPipelinedRequestsAreAnsweredInOrder() async throws {
        let broker = try await TestBroker()
        defer { broker.removeData() }
        let c = try await broker.connect()
        _ = try await c.send(CreateTopicsRequest(topics: [.init(name: "p", numPartitions: 1, replicationFactor: 1)]))
        // Fire many produces without waiting: offsets must follow send order.
        let responses = try await withThrowingTaskGroup(of: (Int, Int64).self) { group in
            for i in 0..<50 {
                group.addTask {
                    let r = try await produce(c, topic: "p", ["v\(i)"], acks: i % 2 == 0 ? -1 : 1)
                    return (i, r.baseOffset)
                }
                try await Task.sleep(for: .microseconds(100))
            }
            var all: [(Int, Int64)] = []
            for try await r in group { all.append(r) }
            return all
        }
        XCTAssertEqual(Set(responses.map(\.1)), Set(0..<50))
        let f = try await fetch(c, topic: "p", offset: 0)
        XCTAssertEqual(try values(f.records).count, 50)
        c.close()
        await broker.stop()
    }

    func testLongPollingFetchWakesWhenDataArrives() async throws {
        let broker = try await TestBroker()
        defer { broker.removeData() }
        let consumer = try await broker.connect()
        let producer = try await broker.connect()
        _ = try await consumer.send(CreateTopicsRequest(topics: [.init(name: "w", numPartitions: 1, replicationFactor: 1)]))
        let start = ContinuousClock.now
        async let fetched = fetch(consumer, topic: "w", offset: 0, maxWaitMs: 10_000, minBytes: 1)
        try await Task.sleep(for: .milliseconds(200))
        _ = try await produce(producer, topic: "w", ["hello"])
        let f = try await fetched
        XCTAssertEqual(try values(f.records), ["hello"])
        XCTAssertLessThan(ContinuousClock.now - start, .seconds(5), "woke on the append, not at max wait")
        // And with nothing to read, it waits about max_wait_ms.
        let t0 = ContinuousClock.now
        let empty = try await fetch(consumer, topic: "w", offset: 1, maxWaitMs: 300, minBytes: 1)
        XCTAssertEqual(try values(empty.records), [])
        XCTAssertGreaterThanOrEqual(ContinuousClock.now - t0, .milliseconds(250))
        consumer.close()
        producer.close()
        await broker.stop()
    }

    func testOversizedFrameClosesOnlyThatConnection() async throws {
        let broker = try await TestBroker { $0.socketRequestMaxBytes = 1024 }
        defer { broker.removeData() }
        let good = try await broker.connect()
        let bad = try await broker.connect()
        do {
            _ = try await produce(bad, topic: "big", [String(repeating: "x", count: 4096)])
            XCTFail("an oversized request must not be answered")
        } catch let error as KafkaClientError {
            XCTAssertEqual(error.code, .connectionClosed)
        }
        let ok = try await good.send(MetadataRequest(topics: []))
        XCTAssertEqual(ok.brokers.count, 1)
        good.close()
        await broker.stop()
    }

    func testConnectionsBeyondMaxConnectionsAreClosed() async throws {
        let broker = try await TestBroker { $0.maxConnections = 2 }
        defer { broker.removeData() }
        let a = try await broker.connect()
        let b = try await broker.connect()
        do {
            _ = try await broker.connect()
            XCTFail("a third connection must be refused")
        } catch let error as KafkaClientError {
            XCTAssertEqual(error.code, .connectionClosed)
        }
        a.close()
        try await Task.sleep(for: .milliseconds(200))
        let c = try await broker.connect()
        let metadata = try await c.send(MetadataRequest(topics: []))
        XCTAssertEqual(metadata.brokers.count, 1)
        b.close()
        c.close()
        await broker.stop()
    }

    func testTheGlobalRequestByteBudgetIsSharedWithoutDeadlock() async throws {
        let broker = try await TestBroker {
            $0.queuedMaxRequestBytes = 4096
            $0.connectionMaxInFlightBytes = 3000
        }
        defer { broker.removeData() }
        let setup = try await broker.connect()
        _ = try await setup.send(CreateTopicsRequest(topics: [.init(name: "budget", numPartitions: 1, replicationFactor: 1)]))
        let port = broker.port
        let connections = try await withThrowingTaskGroup(of: KafkaConnection.self) { group in
            for _ in 0..<3 { group.addTask { try await KafkaConnection.connect(host: "127.0.0.1", port: port) } }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        let value = String(repeating: "x", count: 1500)
        let offsets = try await withThrowingTaskGroup(of: Int64.self) { group in
            for (i, c) in connections.enumerated() {
                for j in 0..<20 {
                    group.addTask { try await produce(c, topic: "budget", ["\(i)-\(j)-\(value)"], acks: 1).baseOffset }
                }
            }
            return try await group.reduce(into: [Int64]()) { $0.append($1) }
        }
        XCTAssertEqual(Set(offsets), Set(0..<60))
        for c in connections + [setup] { c.close() }
        await broker.stop()
    }

    func testMalformedRequestClosesOnlyThatConnection() async throws {
        let broker = try await TestBroker()
        defer { broker.removeData() }
        let good = try await broker.connect()
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: "127.0.0.1", port: broker.port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        try await channel.executeThenClose { inbound, outbound in
            // Metadata v1 with an array count far beyond the bytes that follow.
            var frame = ByteBuffer()
            frame.writeInteger(Int32(0))
            try RequestHeader(requestApiKey: 3, requestApiVersion: 1, correlationId: 1, clientId: "x").encode(into: &frame, version: 1)
            frame.writeInteger(Int32(1_000_000))
            frame.setInteger(Int32(frame.readableBytes - 4), at: 0)
            try await outbound.write(frame)
            var iterator = inbound.makeAsyncIterator()
            let next = try await iterator.next()
            XCTAssertNil(next, "the broker closes the connection without answering")
        }
        let ok = try await good.send(MetadataRequest(topics: []))
        XCTAssertEqual(ok.brokers.count, 1)
        good.close()
        await broker.stop()
    }

    func testCreateTopicsExplainsSingleNodeReplication() async throws {
        let broker = try await TestBroker()
        defer { broker.removeData() }
        let c = try await broker.connect()
        let r = try await c.send(CreateTopicsRequest(topics: [
            .init(name: "r3", numPartitions: 3, replicationFactor: 3),
            .init(name: "bad/name", numPartitions: 1, replicationFactor: 1),
            .init(name: "cfg", numPartitions: 1, replicationFactor: 1, configs: [.init(name: "retention.ms", value: "soon")]),
            .init(name: "ok", numPartitions: 2, replicationFactor: 1, configs: [.init(name: "retention.ms", value: "1000")]),
        ]))
        XCTAssertEqual(r.topics[0].errorCode, KafkaErrorCode.invalidReplicationFactor.rawValue)
        XCTAssertTrue(r.topics[0].errorMessage?.contains("single-node") ?? false)
        XCTAssertEqual(r.topics[1].errorCode, KafkaErrorCode.invalidTopicException.rawValue)
        XCTAssertEqual(r.topics[2].errorCode, KafkaErrorCode.invalidConfig.rawValue)
        XCTAssertEqual(r.topics[3].errorCode, 0)
        let again = try await c.send(CreateTopicsRequest(topics: [.init(name: "ok", numPartitions: 1, replicationFactor: 1)]))
        XCTAssertEqual(again.topics[0].errorCode, KafkaErrorCode.topicAlreadyExists.rawValue)
        c.close()
        await broker.stop()
    }

    func testTopicsConfigsAndDataSurviveARestart() async throws {
        let first = try await TestBroker(removesDataOnStop: false)
        defer { first.removeData() }
        var c = try await first.connect()
        let created = try await c.send(CreateTopicsRequest(topics: [
            .init(name: "keep", numPartitions: 2, replicationFactor: 1, configs: [.init(name: "retention.ms", value: "123456")]),
        ]))
        let id = created.topics[0].topicId
        _ = try await produce(c, topic: "keep", ["1", "2"])
        c.close()
        await first.stop()

        let second = try await TestBroker(directory: first.directory)
        c = try await second.connect()
        let meta = try await c.send(MetadataRequest(topics: [.init(name: "keep")], allowAutoTopicCreation: false))
        XCTAssertEqual(meta.topics[0].topicId, id)
        XCTAssertEqual(meta.topics[0].partitions.count, 2)
        let configs = try await c.send(DescribeConfigsRequest(resources: [.init(resourceType: 2, resourceName: "keep", configurationKeys: ["retention.ms"])]))
        XCTAssertEqual(configs.results[0].configs.first?.value, "123456")
        let kept = try await fetch(c, topic: "keep", offset: 0)
        XCTAssertEqual(try values(kept.records), ["1", "2"])
        c.close()
        await second.stop()
    }

    func testListOffsetsEarliestLatestAndByTime() async throws {
        let broker = try await TestBroker()
        defer { broker.removeData() }
        let c = try await broker.connect()
        _ = try await c.send(CreateTopicsRequest(topics: [.init(name: "lo", numPartitions: 1, replicationFactor: 1)]))
        var b1 = RecordBatchBuilder(baseTimestamp: 1_000)
        b1.append(key: nil, value: ByteBuffer(string: "a"))
        var b2 = RecordBatchBuilder(baseTimestamp: 5_000)
        b2.append(key: nil, value: ByteBuffer(string: "b"))
        for b in [b1, b2] {
            _ = try await c.send(ProduceRequest(acks: 1, timeoutMs: 1000, topicData: [.init(name: "lo", partitionData: [.init(index: 0, records: b.build().buffer)])]))
        }
        func list(_ ts: Int64) async throws -> Int64 {
            let r = try await c.send(ListOffsetsRequest(replicaId: -1, topics: [.init(name: "lo", partitions: [.init(partitionIndex: 0, timestamp: ts)])]))
            return r.topics[0].partitions[0].offset
        }
        let earliest = try await list(-2)
        let latest = try await list(-1)
        let byTime = try await list(3_000)
        let past = try await list(9_000)
        XCTAssertEqual([earliest, latest, byTime, past], [0, 2, 1, -1])
        c.close()
        await broker.stop()
    }

    func testDeleteRecordsAndIncrementalAlterConfigs() async throws {
        let broker = try await TestBroker()
        defer { broker.removeData() }
        let c = try await broker.connect()
        _ = try await c.send(CreateTopicsRequest(topics: [.init(name: "d", numPartitions: 1, replicationFactor: 1)]))
        _ = try await produce(c, topic: "d", ["1", "2", "3"])
        let del = try await c.send(DeleteRecordsRequest(topics: [.init(name: "d", partitions: [.init(partitionIndex: 0, offset: 2)])]))
        XCTAssertEqual(del.topics[0].partitions[0].lowWatermark, 2)
        let f = try await fetch(c, topic: "d", offset: 0)
        XCTAssertEqual(f.errorCode, KafkaErrorCode.offsetOutOfRange.rawValue)
        XCTAssertEqual(f.logStartOffset, 2)
        let alter = try await c.send(IncrementalAlterConfigsRequest(resources: [
            .init(resourceType: 2, resourceName: "d", configs: [.init(name: "cleanup.policy", configOperation: 2, value: "compact")]),
        ]))
        XCTAssertEqual(alter.responses[0].errorCode, 0)
        let described = try await c.send(DescribeConfigsRequest(resources: [.init(resourceType: 2, resourceName: "d", configurationKeys: ["cleanup.policy"])]))
        XCTAssertEqual(described.results[0].configs.first?.value, "delete,compact")
        let bad = try await c.send(IncrementalAlterConfigsRequest(resources: [
            .init(resourceType: 2, resourceName: "d", configs: [.init(name: "no.such.config", configOperation: 0, value: "1")]),
        ]))
        XCTAssertEqual(bad.responses[0].errorCode, KafkaErrorCode.invalidConfig.rawValue)
        c.close()
        await broker.stop()
    }
}
