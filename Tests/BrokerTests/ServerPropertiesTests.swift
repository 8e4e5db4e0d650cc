import Broker
import XCTest

final class ServerPropertiesTests: XCTestCase {
    func testKafkaNamesMapToTheConfiguration() throws {
        let text = """
        # a Kafka server.properties
        broker.id=3
        listeners=PLAINTEXT://0.0.0.0:19092
        advertised.listeners=PLAINTEXT://kafka.local:9093
        log.dirs=/var/lib/kafka,/other
        num.partitions=6
        auto.create.topics.enable=false
        log.retention.hours=24
        log.retention.bytes=1073741824
        log.segment.bytes=104857600
        log.flush.interval.messages=10000
        log.flush.interval.ms=1000
        message.max.bytes=2000000
        socket.request.max.bytes=50000000
        zookeeper.connect=localhost:2181
        """
        let (c, warnings) = try ServerProperties.apply(text, to: BrokerConfiguration())
        XCTAssertEqual(c.nodeId, 3)
        XCTAssertEqual(c.host, "0.0.0.0")
        XCTAssertEqual(c.port, 19092)
        XCTAssertEqual(c.advertisedHost, "kafka.local")
        XCTAssertEqual(c.advertisedPort, 9093)
        XCTAssertEqual(c.dataDirectory, "/var/lib/kafka")
        XCTAssertEqual(c.numPartitions, 6)
        XCTAssertFalse(c.autoCreateTopics)
        XCTAssertEqual(c.logDefaults.retentionMs, 24 * 3_600_000)
        XCTAssertEqual(c.logDefaults.retentionBytes, 1_073_741_824)
        XCTAssertEqual(c.logDefaults.segmentBytes, 104_857_600)
        XCTAssertEqual(c.logDefaults.flushMessages, 10_000)
        XCTAssertEqual(c.logDefaults.flushMs, 1000)
        XCTAssertEqual(c.logDefaults.maxMessageBytes, 2_000_000)
        XCTAssertEqual(c.socketRequestMaxBytes, 50_000_000)
        XCTAssertTrue(warnings.contains { $0.contains("zookeeper.connect") })
        XCTAssertTrue(warnings.contains { $0.contains("log.dirs") })
    }

    func testMillisecondsWinOverHoursWhateverTheOrder() throws {
        let (c, _) = try ServerProperties.apply("log.retention.ms=5000\nlog.retention.hours=1\n", to: BrokerConfiguration())
        XCTAssertEqual(c.logDefaults.retentionMs, 5000)
        let (forever, _) = try ServerProperties.apply("log.retention.hours=-1\n", to: BrokerConfiguration())
        XCTAssertEqual(forever.logDefaults.retentionMs, -1)
    }

    func testInvalidValuesNameTheKey() {
        for (text, key) in [("num.partitions=zero", "num.partitions"), ("auto.create.topics.enable=yes", "auto.create.topics.enable"),
                            ("listeners=SSL://h:1", "listeners"), ("log.segment.bytes=1", "log.segment.bytes"), ("garbage line", "garbage")] {
            XCTAssertThrowsError(try ServerProperties.apply(text, to: BrokerConfiguration())) { error in
                XCTAssertTrue("\(error)".contains(key), "\(error) should name \(key)")
            }
        }
    }
}
