import XCTest

@testable import KafkaProtocol

final class KafkaErrorCodeTests: XCTestCase {
    func testUnknownTopicOrPartitionIsRetriable() {
        let code = KafkaErrorCode(rawValue: 3)
        XCTAssertEqual(code, .unknownTopicOrPartition)
        XCTAssertEqual(code.name, "UNKNOWN_TOPIC_OR_PARTITION")
        XCTAssertTrue(code.isRetriable)
        XCTAssertEqual(code.defaultMessage, "This server does not host this topic-partition.")
        XCTAssertEqual(code.description, "UNKNOWN_TOPIC_OR_PARTITION (3)")
    }

    func testOffsetOutOfRangeIsNotRetriable() {
        let code = KafkaErrorCode.offsetOutOfRange
        XCTAssertEqual(code.rawValue, 1)
        XCTAssertEqual(code.name, "OFFSET_OUT_OF_RANGE")
        XCTAssertFalse(code.isRetriable)
    }

    func testNamedCodes() {
        XCTAssertEqual(KafkaErrorCode.unknownServerError.rawValue, -1)
        XCTAssertEqual(KafkaErrorCode.unknownServerError.name, "UNKNOWN_SERVER_ERROR")
        XCTAssertEqual(KafkaErrorCode.none.rawValue, 0)
        XCTAssertEqual(KafkaErrorCode.none.name, "NONE")
        XCTAssertEqual(KafkaErrorCode.none.defaultMessage, "")
        XCTAssertEqual(KafkaErrorCode(rawValue: 35).name, "UNSUPPORTED_VERSION")
        XCTAssertEqual(KafkaErrorCode.unsupportedVersion.rawValue, 35)
        XCTAssertEqual(KafkaErrorCode(rawValue: 79).name, "MEMBER_ID_REQUIRED")
        XCTAssertEqual(KafkaErrorCode.memberIdRequired.rawValue, 79)
        XCTAssertEqual(KafkaErrorCode.notLeaderOrFollower.rawValue, 6)
        XCTAssertEqual(KafkaErrorCode.invalidTopicException.rawValue, 17)
        XCTAssertEqual(KafkaErrorCode.unknownTopicId.rawValue, 100)
        XCTAssertEqual(KafkaErrorCode.voterNotFound.name, "VOTER_NOT_FOUND")
    }

    func testCorruptMessageIsRetriable() {
        // CorruptRecordException extends RetriableException.
        XCTAssertTrue(KafkaErrorCode.corruptMessage.isRetriable)
        XCTAssertEqual(KafkaErrorCode.corruptMessage.rawValue, 2)
    }

    func testUnknownCode() {
        let code = KafkaErrorCode(rawValue: 9999)
        XCTAssertEqual(code.name, "UNKNOWN_CODE_9999")
        XCTAssertFalse(code.isRetriable)
        XCTAssertFalse(code.isKnown)
        XCTAssertEqual(code.defaultMessage, KafkaErrorCode.unknownServerError.defaultMessage)
        XCTAssertEqual(code.description, "UNKNOWN_CODE_9999 (9999)")
        XCTAssertEqual(KafkaErrorCode(rawValue: -2).name, "UNKNOWN_CODE_-2")
    }

    func testTableCoversKafka39() {
        // Kafka 3.9 defines every code from -1 through 127 and nothing past it.
        XCTAssertEqual(KafkaErrorCode.allKnown.map(\.rawValue), Array(-1...127))
        XCTAssertFalse(KafkaErrorCode(rawValue: 128).isKnown)
        XCTAssertEqual(Set(KafkaErrorCode.allKnown.map(\.name)).count, KafkaErrorCode.allKnown.count)
        for code in KafkaErrorCode.allKnown where code != KafkaErrorCode.none {
            XCTAssertFalse(code.defaultMessage.isEmpty, "\(code) has no message")
        }
    }

    func testRetriableSet() {
        let retriable: [KafkaErrorCode] = [
            .corruptMessage, .unknownTopicOrPartition, .leaderNotAvailable, .notLeaderOrFollower,
            .requestTimedOut, .replicaNotAvailable, .networkException, .coordinatorLoadInProgress,
            .coordinatorNotAvailable, .notCoordinator, .notEnoughReplicas, .notEnoughReplicasAfterAppend,
            .notController, .concurrentTransactions, .kafkaStorageError, .fetchSessionIdNotFound,
            .invalidFetchSessionEpoch, .listenerNotFound, .fencedLeaderEpoch, .unknownLeaderEpoch,
            .offsetNotAvailable, .preferredLeaderNotAvailable, .eligibleLeadersNotAvailable,
            .electionNotNeeded, .unstableOffsetCommit, .throttlingQuotaExceeded, .unknownTopicId,
            .inconsistentTopicId, .fetchSessionTopicIdError, .shareSessionNotFound,
            .invalidShareSessionEpoch,
        ]
        XCTAssertEqual(Set(KafkaErrorCode.allKnown.filter(\.isRetriable)), Set(retriable))
    }
}
