// Kafka's protocol error codes, transcribed from Apache Kafka 3.9's
// `org.apache.kafka.common.protocol.Errors` (codes -1 through 127). The names, codes and
// default messages are Kafka's; "retriable" is whether the code's exception class extends
// `org.apache.kafka.common.errors.RetriableException` (directly, or through
// `InvalidMetadataException`), which is what the "Retriable" column of Kafka's protocol
// documentation reports.

/// A Kafka protocol error code, as sent on the wire in responses.
///
/// This is a thin wrapper around the `Int16` every response's `ErrorCode` field carries, so any
/// value read off the wire is representable, including codes newer than the table below. Codes
/// Kafka 3.9 defines have a `static let` named after the Java enum constant in lowerCamelCase
/// (`OFFSET_OUT_OF_RANGE` is ``offsetOutOfRange``); ``name``, ``isRetriable`` and
/// ``defaultMessage`` look the code up in that table.
///
/// `KafkaErrorCode.none` (0) means success. In an `Optional<KafkaErrorCode>` context write
/// `KafkaErrorCode.none` in full, since a bare `.none` there is `Optional.none`.
public struct KafkaErrorCode: RawRepresentable, Sendable, Hashable, CustomStringConvertible {
    /// The code as carried in a response's `ErrorCode` field.
    public var rawValue: Int16

    /// Wraps a code; any `Int16` is accepted, known to the table or not.
    @inlinable
    public init(rawValue: Int16) {
        self.rawValue = rawValue
    }

    /// `UNKNOWN_SERVER_ERROR` (-1).
    public static let unknownServerError = KafkaErrorCode(rawValue: -1)
    /// `NONE` (0).
    public static let none = KafkaErrorCode(rawValue: 0)
    /// `OFFSET_OUT_OF_RANGE` (1).
    public static let offsetOutOfRange = KafkaErrorCode(rawValue: 1)
    /// `CORRUPT_MESSAGE` (2).
    public static let corruptMessage = KafkaErrorCode(rawValue: 2)
    /// `UNKNOWN_TOPIC_OR_PARTITION` (3).
    public static let unknownTopicOrPartition = KafkaErrorCode(rawValue: 3)
    /// `INVALID_FETCH_SIZE` (4).
    public static let invalidFetchSize = KafkaErrorCode(rawValue: 4)
    /// `LEADER_NOT_AVAILABLE` (5).
    public static let leaderNotAvailable = KafkaErrorCode(rawValue: 5)
    /// `NOT_LEADER_OR_FOLLOWER` (6).
    public static let notLeaderOrFollower = KafkaErrorCode(rawValue: 6)
    /// `REQUEST_TIMED_OUT` (7).
    public static let requestTimedOut = KafkaErrorCode(rawValue: 7)
    /// `BROKER_NOT_AVAILABLE` (8).
    public static let brokerNotAvailable = KafkaErrorCode(rawValue: 8)
    /// `REPLICA_NOT_AVAILABLE` (9).
    public static let replicaNotAvailable = KafkaErrorCode(rawValue: 9)
    /// `MESSAGE_TOO_LARGE` (10).
    public static let messageTooLarge = KafkaErrorCode(rawValue: 10)
    /// `STALE_CONTROLLER_EPOCH` (11).
    public static let staleControllerEpoch = KafkaErrorCode(rawValue: 11)
    /// `OFFSET_METADATA_TOO_LARGE` (12).
    public static let offsetMetadataTooLarge = KafkaErrorCode(rawValue: 12)
    /// `NETWORK_EXCEPTION` (13).
    public static let networkException = KafkaErrorCode(rawValue: 13)
    /// `COORDINATOR_LOAD_IN_PROGRESS` (14).
    public static let coordinatorLoadInProgress = KafkaErrorCode(rawValue: 14)
    /// `COORDINATOR_NOT_AVAILABLE` (15).
    public static let coordinatorNotAvailable = KafkaErrorCode(rawValue: 15)
    /// `NOT_COORDINATOR` (16).
    public static let notCoordinator = KafkaErrorCode(rawValue: 16)
    /// `INVALID_TOPIC_EXCEPTION` (17).
    public static let invalidTopicException = KafkaErrorCode(rawValue: 17)
    /// `RECORD_LIST_TOO_LARGE` (18).
    public static let recordListTooLarge = KafkaErrorCode(rawValue: 18)
    /// `NOT_ENOUGH_REPLICAS` (19).
    public static let notEnoughReplicas = KafkaErrorCode(rawValue: 19)
    /// `NOT_ENOUGH_REPLICAS_AFTER_APPEND` (20).
    public static let notEnoughReplicasAfterAppend = KafkaErrorCode(rawValue: 20)
    /// `INVALID_REQUIRED_ACKS` (21).
    public static let invalidRequiredAcks = KafkaErrorCode(rawValue: 21)
    /// `ILLEGAL_GENERATION` (22).
    public static let illegalGeneration = KafkaErrorCode(rawValue: 22)
    /// `INCONSISTENT_GROUP_PROTOCOL` (23).
    public static let inconsistentGroupProtocol = KafkaErrorCode(rawValue: 23)
    /// `INVALID_GROUP_ID` (24).
    public static let invalidGroupId = KafkaErrorCode(rawValue: 24)
    /// `UNKNOWN_MEMBER_ID` (25).
    public static let unknownMemberId = KafkaErrorCode(rawValue: 25)
    /// `INVALID_SESSION_TIMEOUT` (26).
    public static let invalidSessionTimeout = KafkaErrorCode(rawValue: 26)
    /// `REBALANCE_IN_PROGRESS` (27).
    public static let rebalanceInProgress = KafkaErrorCode(rawValue: 27)
    /// `INVALID_COMMIT_OFFSET_SIZE` (28).
    public static let invalidCommitOffsetSize = KafkaErrorCode(rawValue: 28)
    /// `TOPIC_AUTHORIZATION_FAILED` (29).
    public static let topicAuthorizationFailed = KafkaErrorCode(rawValue: 29)
    /// `GROUP_AUTHORIZATION_FAILED` (30).
    public static let groupAuthorizationFailed = KafkaErrorCode(rawValue: 30)
    /// `CLUSTER_AUTHORIZATION_FAILED` (31).
    public static let clusterAuthorizationFailed = KafkaErrorCode(rawValue: 31)
    /// `INVALID_TIMESTAMP` (32).
    public static let invalidTimestamp = KafkaErrorCode(rawValue: 32)
    /// `UNSUPPORTED_SASL_MECHANISM` (33).
    public static let unsupportedSaslMechanism = KafkaErrorCode(rawValue: 33)
    /// `ILLEGAL_SASL_STATE` (34).
    public static let illegalSaslState = KafkaErrorCode(rawValue: 34)
    /// `UNSUPPORTED_VERSION` (35).
    public static let unsupportedVersion = KafkaErrorCode(rawValue: 35)
    /// `TOPIC_ALREADY_EXISTS` (36).
    public static let topicAlreadyExists = KafkaErrorCode(rawValue: 36)
    /// `INVALID_PARTITIONS` (37).
    public static let invalidPartitions = KafkaErrorCode(rawValue: 37)
    /// `INVALID_REPLICATION_FACTOR` (38).
    public static let invalidReplicationFactor = KafkaErrorCode(rawValue: 38)
    /// `INVALID_REPLICA_ASSIGNMENT` (39).
    public static let invalidReplicaAssignment = KafkaErrorCode(rawValue: 39)
    /// `INVALID_CONFIG` (40).
    public static let invalidConfig = KafkaErrorCode(rawValue: 40)
    /// `NOT_CONTROLLER` (41).
    public static let notController = KafkaErrorCode(rawValue: 41)
    /// `INVALID_REQUEST` (42).
    public static let invalidRequest = KafkaErrorCode(rawValue: 42)
    /// `UNSUPPORTED_FOR_MESSAGE_FORMAT` (43).
    public static let unsupportedForMessageFormat = KafkaErrorCode(rawValue: 43)
    /// `POLICY_VIOLATION` (44).
    public static let policyViolation = KafkaErrorCode(rawValue: 44)
    /// `OUT_OF_ORDER_SEQUENCE_NUMBER` (45).
    public static let outOfOrderSequenceNumber = KafkaErrorCode(rawValue: 45)
    /// `DUPLICATE_SEQUENCE_NUMBER` (46).
    public static let duplicateSequenceNumber = KafkaErrorCode(rawValue: 46)
    /// `INVALID_PRODUCER_EPOCH` (47).
    public static let invalidProducerEpoch = KafkaErrorCode(rawValue: 47)
    /// `INVALID_TXN_STATE` (48).
    public static let invalidTxnState = KafkaErrorCode(rawValue: 48)
    /// `INVALID_PRODUCER_ID_MAPPING` (49).
    public static let invalidProducerIdMapping = KafkaErrorCode(rawValue: 49)
    /// `INVALID_TRANSACTION_TIMEOUT` (50).
    public static let invalidTransactionTimeout = KafkaErrorCode(rawValue: 50)
    /// `CONCURRENT_TRANSACTIONS` (51).
    public static let concurrentTransactions = KafkaErrorCode(rawValue: 51)
    /// `TRANSACTION_COORDINATOR_FENCED` (52).
    public static let transactionCoordinatorFenced = KafkaErrorCode(rawValue: 52)
    /// `TRANSACTIONAL_ID_AUTHORIZATION_FAILED` (53).
    public static let transactionalIdAuthorizationFailed = KafkaErrorCode(rawValue: 53)
    /// `SECURITY_DISABLED` (54).
    public static let securityDisabled = KafkaErrorCode(rawValue: 54)
    /// `OPERATION_NOT_ATTEMPTED` (55).
    public static let operationNotAttempted = KafkaErrorCode(rawValue: 55)
    /// `KAFKA_STORAGE_ERROR` (56).
    public static let kafkaStorageError = KafkaErrorCode(rawValue: 56)
    /// `LOG_DIR_NOT_FOUND` (57).
    public static let logDirNotFound = KafkaErrorCode(rawValue: 57)
    /// `SASL_AUTHENTICATION_FAILED` (58).
    public static let saslAuthenticationFailed = KafkaErrorCode(rawValue: 58)
    /// `UNKNOWN_PRODUCER_ID` (59).
    public static let unknownProducerId = KafkaErrorCode(rawValue: 59)
    /// `REASSIGNMENT_IN_PROGRESS` (60).
    public static let reassignmentInProgress = KafkaErrorCode(rawValue: 60)
    /// `DELEGATION_TOKEN_AUTH_DISABLED` (61).
    public static let delegationTokenAuthDisabled = KafkaErrorCode(rawValue: 61)
    /// `DELEGATION_TOKEN_NOT_FOUND` (62).
    public static let delegationTokenNotFound = KafkaErrorCode(rawValue: 62)
    /// `DELEGATION_TOKEN_OWNER_MISMATCH` (63).
    public static let delegationTokenOwnerMismatch = KafkaErrorCode(rawValue: 63)
    /// `DELEGATION_TOKEN_REQUEST_NOT_ALLOWED` (64).
    public static let delegationTokenRequestNotAllowed = KafkaErrorCode(rawValue: 64)
    /// `DELEGATION_TOKEN_AUTHORIZATION_FAILED` (65).
    public static let delegationTokenAuthorizationFailed = KafkaErrorCode(rawValue: 65)
    /// `DELEGATION_TOKEN_EXPIRED` (66).
    public static let delegationTokenExpired = KafkaErrorCode(rawValue: 66)
    /// `INVALID_PRINCIPAL_TYPE` (67).
    public static let invalidPrincipalType = KafkaErrorCode(rawValue: 67)
    /// `NON_EMPTY_GROUP` (68).
    public static let nonEmptyGroup = KafkaErrorCode(rawValue: 68)
    /// `GROUP_ID_NOT_FOUND` (69).
    public static let groupIdNotFound = KafkaErrorCode(rawValue: 69)
    /// `FETCH_SESSION_ID_NOT_FOUND` (70).
    public static let fetchSessionIdNotFound = KafkaErrorCode(rawValue: 70)
    /// `INVALID_FETCH_SESSION_EPOCH` (71).
    public static let invalidFetchSessionEpoch = KafkaErrorCode(rawValue: 71)
    /// `LISTENER_NOT_FOUND` (72).
    public static let listenerNotFound = KafkaErrorCode(rawValue: 72)
    /// `TOPIC_DELETION_DISABLED` (73).
    public static let topicDeletionDisabled = KafkaErrorCode(rawValue: 73)
    /// `FENCED_LEADER_EPOCH` (74).
    public static let fencedLeaderEpoch = KafkaErrorCode(rawValue: 74)
    /// `UNKNOWN_LEADER_EPOCH` (75).
    public static let unknownLeaderEpoch = KafkaErrorCode(rawValue: 75)
    /// `UNSUPPORTED_COMPRESSION_TYPE` (76).
    public static let unsupportedCompressionType = KafkaErrorCode(rawValue: 76)
    /// `STALE_BROKER_EPOCH` (77).
    public static let staleBrokerEpoch = KafkaErrorCode(rawValue: 77)
    /// `OFFSET_NOT_AVAILABLE` (78).
    public static let offsetNotAvailable = KafkaErrorCode(rawValue: 78)
    /// `MEMBER_ID_REQUIRED` (79).
    public static let memberIdRequired = KafkaErrorCode(rawValue: 79)
    /// `PREFERRED_LEADER_NOT_AVAILABLE` (80).
    public static let preferredLeaderNotAvailable = KafkaErrorCode(rawValue: 80)
    /// `GROUP_MAX_SIZE_REACHED` (81).
    public static let groupMaxSizeReached = KafkaErrorCode(rawValue: 81)
    /// `FENCED_INSTANCE_ID` (82).
    public static let fencedInstanceId = KafkaErrorCode(rawValue: 82)
    /// `ELIGIBLE_LEADERS_NOT_AVAILABLE` (83).
    public static let eligibleLeadersNotAvailable = KafkaErrorCode(rawValue: 83)
    /// `ELECTION_NOT_NEEDED` (84).
    public static let electionNotNeeded = KafkaErrorCode(rawValue: 84)
    /// `NO_REASSIGNMENT_IN_PROGRESS` (85).
    public static let noReassignmentInProgress = KafkaErrorCode(rawValue: 85)
    /// `GROUP_SUBSCRIBED_TO_TOPIC` (86).
    public static let groupSubscribedToTopic = KafkaErrorCode(rawValue: 86)
    /// `INVALID_RECORD` (87).
    public static let invalidRecord = KafkaErrorCode(rawValue: 87)
    /// `UNSTABLE_OFFSET_COMMIT` (88).
    public static let unstableOffsetCommit = KafkaErrorCode(rawValue: 88)
    /// `THROTTLING_QUOTA_EXCEEDED` (89).
    public static let throttlingQuotaExceeded = KafkaErrorCode(rawValue: 89)
    /// `PRODUCER_FENCED` (90).
    public static let producerFenced = KafkaErrorCode(rawValue: 90)
    /// `RESOURCE_NOT_FOUND` (91).
    public static let resourceNotFound = KafkaErrorCode(rawValue: 91)
    /// `DUPLICATE_RESOURCE` (92).
    public static let duplicateResource = KafkaErrorCode(rawValue: 92)
    /// `UNACCEPTABLE_CREDENTIAL` (93).
    public static let unacceptableCredential = KafkaErrorCode(rawValue: 93)
    /// `INCONSISTENT_VOTER_SET` (94).
    public static let inconsistentVoterSet = KafkaErrorCode(rawValue: 94)
    /// `INVALID_UPDATE_VERSION` (95).
    public static let invalidUpdateVersion = KafkaErrorCode(rawValue: 95)
    /// `FEATURE_UPDATE_FAILED` (96).
    public static let featureUpdateFailed = KafkaErrorCode(rawValue: 96)
    /// `PRINCIPAL_DESERIALIZATION_FAILURE` (97).
    public static let principalDeserializationFailure = KafkaErrorCode(rawValue: 97)
    /// `SNAPSHOT_NOT_FOUND` (98).
    public static let snapshotNotFound = KafkaErrorCode(rawValue: 98)
    /// `POSITION_OUT_OF_RANGE` (99).
    public static let positionOutOfRange = KafkaErrorCode(rawValue: 99)
    /// `UNKNOWN_TOPIC_ID` (100).
    public static let unknownTopicId = KafkaErrorCode(rawValue: 100)
    /// `DUPLICATE_BROKER_REGISTRATION` (101).
    public static let duplicateBrokerRegistration = KafkaErrorCode(rawValue: 101)
    /// `BROKER_ID_NOT_REGISTERED` (102).
    public static let brokerIdNotRegistered = KafkaErrorCode(rawValue: 102)
    /// `INCONSISTENT_TOPIC_ID` (103).
    public static let inconsistentTopicId = KafkaErrorCode(rawValue: 103)
    /// `INCONSISTENT_CLUSTER_ID` (104).
    public static let inconsistentClusterId = KafkaErrorCode(rawValue: 104)
    /// `TRANSACTIONAL_ID_NOT_FOUND` (105).
    public static let transactionalIdNotFound = KafkaErrorCode(rawValue: 105)
    /// `FETCH_SESSION_TOPIC_ID_ERROR` (106).
    public static let fetchSessionTopicIdError = KafkaErrorCode(rawValue: 106)
    /// `INELIGIBLE_REPLICA` (107).
    public static let ineligibleReplica = KafkaErrorCode(rawValue: 107)
    /// `NEW_LEADER_ELECTED` (108).
    public static let newLeaderElected = KafkaErrorCode(rawValue: 108)
    /// `OFFSET_MOVED_TO_TIERED_STORAGE` (109).
    public static let offsetMovedToTieredStorage = KafkaErrorCode(rawValue: 109)
    /// `FENCED_MEMBER_EPOCH` (110).
    public static let fencedMemberEpoch = KafkaErrorCode(rawValue: 110)
    /// `UNRELEASED_INSTANCE_ID` (111).
    public static let unreleasedInstanceId = KafkaErrorCode(rawValue: 111)
    /// `UNSUPPORTED_ASSIGNOR` (112).
    public static let unsupportedAssignor = KafkaErrorCode(rawValue: 112)
    /// `STALE_MEMBER_EPOCH` (113).
    public static let staleMemberEpoch = KafkaErrorCode(rawValue: 113)
    /// `MISMATCHED_ENDPOINT_TYPE` (114).
    public static let mismatchedEndpointType = KafkaErrorCode(rawValue: 114)
    /// `UNSUPPORTED_ENDPOINT_TYPE` (115).
    public static let unsupportedEndpointType = KafkaErrorCode(rawValue: 115)
    /// `UNKNOWN_CONTROLLER_ID` (116).
    public static let unknownControllerId = KafkaErrorCode(rawValue: 116)
    /// `UNKNOWN_SUBSCRIPTION_ID` (117).
    public static let unknownSubscriptionId = KafkaErrorCode(rawValue: 117)
    /// `TELEMETRY_TOO_LARGE` (118).
    public static let telemetryTooLarge = KafkaErrorCode(rawValue: 118)
    /// `INVALID_REGISTRATION` (119).
    public static let invalidRegistration = KafkaErrorCode(rawValue: 119)
    /// `TRANSACTION_ABORTABLE` (120).
    public static let transactionAbortable = KafkaErrorCode(rawValue: 120)
    /// `INVALID_RECORD_STATE` (121).
    public static let invalidRecordState = KafkaErrorCode(rawValue: 121)
    /// `SHARE_SESSION_NOT_FOUND` (122).
    public static let shareSessionNotFound = KafkaErrorCode(rawValue: 122)
    /// `INVALID_SHARE_SESSION_EPOCH` (123).
    public static let invalidShareSessionEpoch = KafkaErrorCode(rawValue: 123)
    /// `FENCED_STATE_EPOCH` (124).
    public static let fencedStateEpoch = KafkaErrorCode(rawValue: 124)
    /// `INVALID_VOTER_KEY` (125).
    public static let invalidVoterKey = KafkaErrorCode(rawValue: 125)
    /// `DUPLICATE_VOTER` (126).
    public static let duplicateVoter = KafkaErrorCode(rawValue: 126)
    /// `VOTER_NOT_FOUND` (127).
    public static let voterNotFound = KafkaErrorCode(rawValue: 127)

    /// The Java enum name, e.g. `"OFFSET_OUT_OF_RANGE"`; `"UNKNOWN_CODE_<n>"` for codes not in
    /// the table.
    public var name: String {
        Self.table[rawValue]?.name ?? "UNKNOWN_CODE_\(rawValue)"
    }

    /// Whether Kafka marks the exception as retriable (RetriableException subclasses): the same
    /// request may succeed if sent again, possibly after refreshing metadata. False for ``none``
    /// and for codes not in the table (Kafka turns those into the non-retriable
    /// `UnknownServerException`).
    public var isRetriable: Bool {
        Self.table[rawValue]?.retriable ?? false
    }

    /// Kafka's default message for the code. Empty for ``none``; for codes not in the table,
    /// the message of ``unknownServerError``, which is what Kafka's `Errors.forCode` maps them to.
    public var defaultMessage: String {
        Self.table[rawValue]?.message ?? Self.unknownServerError.defaultMessage
    }

    /// Whether the code is one Kafka 3.9 defines.
    public var isKnown: Bool {
        Self.table[rawValue] != nil
    }

    /// Every code Kafka 3.9 defines, in ascending order, ``unknownServerError`` first.
    public static var allKnown: [KafkaErrorCode] {
        table.keys.sorted().map(KafkaErrorCode.init(rawValue:))
    }

    /// `"NAME (code)"`, e.g. `"OFFSET_OUT_OF_RANGE (1)"`.
    public var description: String {
        "\(name) (\(rawValue))"
    }

    private struct Entry: Sendable {
        let name: String
        let retriable: Bool
        let message: String

        init(_ name: String, retriable: Bool, _ message: String) {
            self.name = name
            self.retriable = retriable
            self.message = message
        }
    }

    /// The single source for names, retriability and messages, keyed by code.
    private static let table: [Int16: Entry] = [
        -1: Entry("UNKNOWN_SERVER_ERROR", retriable: false, "The server experienced an unexpected error when processing the request."),
        0: Entry("NONE", retriable: false, ""),
        1: Entry("OFFSET_OUT_OF_RANGE", retriable: false, "The requested offset is not within the range of offsets maintained by the server."),
        2: Entry("CORRUPT_MESSAGE", retriable: true, "This message has failed its CRC checksum, exceeds the valid size, has a null key for a compacted topic, or is otherwise corrupt."),
        3: Entry("UNKNOWN_TOPIC_OR_PARTITION", retriable: true, "This server does not host this topic-partition."),
        4: Entry("INVALID_FETCH_SIZE", retriable: false, "The requested fetch size is invalid."),
        5: Entry("LEADER_NOT_AVAILABLE", retriable: true, "There is no leader for this topic-partition as we are in the middle of a leadership election."),
        6: Entry("NOT_LEADER_OR_FOLLOWER", retriable: true, "For requests intended only for the leader, this error indicates that the broker is not the current leader. For requests intended for any replica, this error indicates that the broker is not a replica of the topic partition."),
        7: Entry("REQUEST_TIMED_OUT", retriable: true, "The request timed out."),
        8: Entry("BROKER_NOT_AVAILABLE", retriable: false, "The broker is not available."),
        9: Entry("REPLICA_NOT_AVAILABLE", retriable: true, "The replica is not available for the requested topic-partition. Produce/Fetch requests and other requests intended only for the leader or follower return NOT_LEADER_OR_FOLLOWER if the broker is not a replica of the topic-partition."),
        10: Entry("MESSAGE_TOO_LARGE", retriable: false, "The request included a message larger than the max message size the server will accept."),
        11: Entry("STALE_CONTROLLER_EPOCH", retriable: false, "The controller moved to another broker."),
        12: Entry("OFFSET_METADATA_TOO_LARGE", retriable: false, "The metadata field of the offset request was too large."),
        13: Entry("NETWORK_EXCEPTION", retriable: true, "The server disconnected before a response was received."),
        14: Entry("COORDINATOR_LOAD_IN_PROGRESS", retriable: true, "The coordinator is loading and hence can't process requests."),
        15: Entry("COORDINATOR_NOT_AVAILABLE", retriable: true, "The coordinator is not available."),
        16: Entry("NOT_COORDINATOR", retriable: true, "This is not the correct coordinator."),
        17: Entry("INVALID_TOPIC_EXCEPTION", retriable: false, "The request attempted to perform an operation on an invalid topic."),
        18: Entry("RECORD_LIST_TOO_LARGE", retriable: false, "The request included message batch larger than the configured segment size on the server."),
        19: Entry("NOT_ENOUGH_REPLICAS", retriable: true, "Messages are rejected since there are fewer in-sync replicas than required."),
        20: Entry("NOT_ENOUGH_REPLICAS_AFTER_APPEND", retriable: true, "Messages are written to the log, but to fewer in-sync replicas than required."),
        21: Entry("INVALID_REQUIRED_ACKS", retriable: false, "Produce request specified an invalid value for required acks."),
        22: Entry("ILLEGAL_GENERATION", retriable: false, "Specified group generation id is not valid."),
        23: Entry("INCONSISTENT_GROUP_PROTOCOL", retriable: false, "The group member's supported protocols are incompatible with those of existing members or first group member tried to join with empty protocol type or empty protocol list."),
        24: Entry("INVALID_GROUP_ID", retriable: false, "The configured groupId is invalid."),
        25: Entry("UNKNOWN_MEMBER_ID", retriable: false, "The coordinator is not aware of this member."),
        26: Entry("INVALID_SESSION_TIMEOUT", retriable: false, "The session timeout is not within the range allowed by the broker (as configured by group.min.session.timeout.ms and group.max.session.timeout.ms)."),
        27: Entry("REBALANCE_IN_PROGRESS", retriable: false, "The group is rebalancing, so a rejoin is needed."),
        28: Entry("INVALID_COMMIT_OFFSET_SIZE", retriable: false, "The committing offset data size is not valid."),
        29: Entry("TOPIC_AUTHORIZATION_FAILED", retriable: false, "Topic authorization failed."),
        30: Entry("GROUP_AUTHORIZATION_FAILED", retriable: false, "Group authorization failed."),
        31: Entry("CLUSTER_AUTHORIZATION_FAILED", retriable: false, "Cluster authorization failed."),
        32: Entry("INVALID_TIMESTAMP", retriable: false, "The timestamp of the message is out of acceptable range."),
        33: Entry("UNSUPPORTED_SASL_MECHANISM", retriable: false, "The broker does not support the requested SASL mechanism."),
        34: Entry("ILLEGAL_SASL_STATE", retriable: false, "Request is not valid given the current SASL state."),
        35: Entry("UNSUPPORTED_VERSION", retriable: false, "The version of API is not supported."),
        36: Entry("TOPIC_ALREADY_EXISTS", retriable: false, "Topic with this name already exists."),
        37: Entry("INVALID_PARTITIONS", retriable: false, "Number of partitions is below 1."),
        38: Entry("INVALID_REPLICATION_FACTOR", retriable: false, "Replication factor is below 1 or larger than the number of available brokers."),
        39: Entry("INVALID_REPLICA_ASSIGNMENT", retriable: false, "Replica assignment is invalid."),
        40: Entry("INVALID_CONFIG", retriable: false, "Configuration is invalid."),
        41: Entry("NOT_CONTROLLER", retriable: true, "This is not the correct controller for this cluster."),
        42: Entry("INVALID_REQUEST", retriable: false, "This most likely occurs because of a request being malformed by the client library or the message was sent to an incompatible broker. See the broker logs for more details."),
        43: Entry("UNSUPPORTED_FOR_MESSAGE_FORMAT", retriable: false, "The message format version on the broker does not support the request."),
        44: Entry("POLICY_VIOLATION", retriable: false, "Request parameters do not satisfy the configured policy."),
        45: Entry("OUT_OF_ORDER_SEQUENCE_NUMBER", retriable: false, "The broker received an out of order sequence number."),
        46: Entry("DUPLICATE_SEQUENCE_NUMBER", retriable: false, "The broker received a duplicate sequence number."),
        47: Entry("INVALID_PRODUCER_EPOCH", retriable: false, "Producer attempted to produce with an old epoch."),
        48: Entry("INVALID_TXN_STATE", retriable: false, "The producer attempted a transactional operation in an invalid state."),
        49: Entry("INVALID_PRODUCER_ID_MAPPING", retriable: false, "The producer attempted to use a producer id which is not currently assigned to its transactional id."),
        50: Entry("INVALID_TRANSACTION_TIMEOUT", retriable: false, "The transaction timeout is larger than the maximum value allowed by the broker (as configured by transaction.max.timeout.ms)."),
        51: Entry("CONCURRENT_TRANSACTIONS", retriable: true, "The producer attempted to update a transaction while another concurrent operation on the same transaction was ongoing."),
        52: Entry("TRANSACTION_COORDINATOR_FENCED", retriable: false, "Indicates that the transaction coordinator sending a WriteTxnMarker is no longer the current coordinator for a given producer."),
        53: Entry("TRANSACTIONAL_ID_AUTHORIZATION_FAILED", retriable: false, "Transactional Id authorization failed."),
        54: Entry("SECURITY_DISABLED", retriable: false, "Security features are disabled."),
        55: Entry("OPERATION_NOT_ATTEMPTED", retriable: false, "The broker did not attempt to execute this operation. This may happen for batched RPCs where some operations in the batch failed, causing the broker to respond without trying the rest."),
        56: Entry("KAFKA_STORAGE_ERROR", retriable: true, "Disk error when trying to access log file on the disk."),
        57: Entry("LOG_DIR_NOT_FOUND", retriable: false, "The user-specified log directory is not found in the broker config."),
        58: Entry("SASL_AUTHENTICATION_FAILED", retriable: false, "SASL Authentication failed."),
        59: Entry("UNKNOWN_PRODUCER_ID", retriable: false, "This exception is raised by the broker if it could not locate the producer metadata associated with the producerId in question. This could happen if, for instance, the producer's records were deleted because their retention time had elapsed. Once the last records of the producerId are removed, the producer's metadata is removed from the broker, and future appends by the producer will return this exception."),
        60: Entry("REASSIGNMENT_IN_PROGRESS", retriable: false, "A partition reassignment is in progress."),
        61: Entry("DELEGATION_TOKEN_AUTH_DISABLED", retriable: false, "Delegation Token feature is not enabled."),
        62: Entry("DELEGATION_TOKEN_NOT_FOUND", retriable: false, "Delegation Token is not found on server."),
        63: Entry("DELEGATION_TOKEN_OWNER_MISMATCH", retriable: false, "Specified Principal is not valid Owner/Renewer."),
        64: Entry("DELEGATION_TOKEN_REQUEST_NOT_ALLOWED", retriable: false, "Delegation Token requests are not allowed on PLAINTEXT/1-way SSL channels and on delegation token authenticated channels."),
        65: Entry("DELEGATION_TOKEN_AUTHORIZATION_FAILED", retriable: false, "Delegation Token authorization failed."),
        66: Entry("DELEGATION_TOKEN_EXPIRED", retriable: false, "Delegation Token is expired."),
        67: Entry("INVALID_PRINCIPAL_TYPE", retriable: false, "Supplied principalType is not supported."),
        68: Entry("NON_EMPTY_GROUP", retriable: false, "The group is not empty."),
        69: Entry("GROUP_ID_NOT_FOUND", retriable: false, "The group id does not exist."),
        70: Entry("FETCH_SESSION_ID_NOT_FOUND", retriable: true, "The fetch session ID was not found."),
        71: Entry("INVALID_FETCH_SESSION_EPOCH", retriable: true, "The fetch session epoch is invalid."),
        72: Entry("LISTENER_NOT_FOUND", retriable: true, "There is no listener on the leader broker that matches the listener on which metadata request was processed."),
        73: Entry("TOPIC_DELETION_DISABLED", retriable: false, "Topic deletion is disabled."),
        74: Entry("FENCED_LEADER_EPOCH", retriable: true, "The leader epoch in the request is older than the epoch on the broker."),
        75: Entry("UNKNOWN_LEADER_EPOCH", retriable: true, "The leader epoch in the request is newer than the epoch on the broker."),
        76: Entry("UNSUPPORTED_COMPRESSION_TYPE", retriable: false, "The requesting client does not support the compression type of given partition."),
        77: Entry("STALE_BROKER_EPOCH", retriable: false, "Broker epoch has changed."),
        78: Entry("OFFSET_NOT_AVAILABLE", retriable: true, "The leader high watermark has not caught up from a recent leader election so the offsets cannot be guaranteed to be monotonically increasing."),
        79: Entry("MEMBER_ID_REQUIRED", retriable: false, "The group member needs to have a valid member id before actually entering a consumer group."),
        80: Entry("PREFERRED_LEADER_NOT_AVAILABLE", retriable: true, "The preferred leader was not available."),
        81: Entry("GROUP_MAX_SIZE_REACHED", retriable: false, "The consumer group has reached its max size."),
        82: Entry("FENCED_INSTANCE_ID", retriable: false, "The broker rejected this static consumer since another consumer with the same group.instance.id has registered with a different member.id."),
        83: Entry("ELIGIBLE_LEADERS_NOT_AVAILABLE", retriable: true, "Eligible topic partition leaders are not available."),
        84: Entry("ELECTION_NOT_NEEDED", retriable: true, "Leader election not needed for topic partition."),
        85: Entry("NO_REASSIGNMENT_IN_PROGRESS", retriable: false, "No partition reassignment is in progress."),
        86: Entry("GROUP_SUBSCRIBED_TO_TOPIC", retriable: false, "Deleting offsets of a topic is forbidden while the consumer group is actively subscribed to it."),
        87: Entry("INVALID_RECORD", retriable: false, "This record has failed the validation on broker and hence will be rejected."),
        88: Entry("UNSTABLE_OFFSET_COMMIT", retriable: true, "There are unstable offsets that need to be cleared."),
        89: Entry("THROTTLING_QUOTA_EXCEEDED", retriable: true, "The throttling quota has been exceeded."),
        90: Entry("PRODUCER_FENCED", retriable: false, "There is a newer producer with the same transactionalId which fences the current one."),
        91: Entry("RESOURCE_NOT_FOUND", retriable: false, "A request illegally referred to a resource that does not exist."),
        92: Entry("DUPLICATE_RESOURCE", retriable: false, "A request illegally referred to the same resource twice."),
        93: Entry("UNACCEPTABLE_CREDENTIAL", retriable: false, "Requested credential would not meet criteria for acceptability."),
        94: Entry("INCONSISTENT_VOTER_SET", retriable: false, "Indicates that the either the sender or recipient of a voter-only request is not one of the expected voters."),
        95: Entry("INVALID_UPDATE_VERSION", retriable: false, "The given update version was invalid."),
        96: Entry("FEATURE_UPDATE_FAILED", retriable: false, "Unable to update finalized features due to an unexpected server error."),
        97: Entry("PRINCIPAL_DESERIALIZATION_FAILURE", retriable: false, "Request principal deserialization failed during forwarding. This indicates an internal error on the broker cluster security setup."),
        98: Entry("SNAPSHOT_NOT_FOUND", retriable: false, "Requested snapshot was not found."),
        99: Entry("POSITION_OUT_OF_RANGE", retriable: false, "Requested position is not greater than or equal to zero, and less than the size of the snapshot."),
        100: Entry("UNKNOWN_TOPIC_ID", retriable: true, "This server does not host this topic ID."),
        101: Entry("DUPLICATE_BROKER_REGISTRATION", retriable: false, "This broker ID is already in use."),
        102: Entry("BROKER_ID_NOT_REGISTERED", retriable: false, "The given broker ID was not registered."),
        103: Entry("INCONSISTENT_TOPIC_ID", retriable: true, "The log's topic ID did not match the topic ID in the request."),
        104: Entry("INCONSISTENT_CLUSTER_ID", retriable: false, "The clusterId in the request does not match that found on the server."),
        105: Entry("TRANSACTIONAL_ID_NOT_FOUND", retriable: false, "The transactionalId could not be found."),
        106: Entry("FETCH_SESSION_TOPIC_ID_ERROR", retriable: true, "The fetch session encountered inconsistent topic ID usage."),
        107: Entry("INELIGIBLE_REPLICA", retriable: false, "The new ISR contains at least one ineligible replica."),
        108: Entry("NEW_LEADER_ELECTED", retriable: false, "The AlterPartition request successfully updated the partition state but the leader has changed."),
        109: Entry("OFFSET_MOVED_TO_TIERED_STORAGE", retriable: false, "The requested offset is moved to tiered storage."),
        110: Entry("FENCED_MEMBER_EPOCH", retriable: false, "The member epoch is fenced by the group coordinator. The member must abandon all its partitions and rejoin."),
        111: Entry("UNRELEASED_INSTANCE_ID", retriable: false, "The instance ID is still used by another member in the consumer group. That member must leave first."),
        112: Entry("UNSUPPORTED_ASSIGNOR", retriable: false, "The assignor or its version range is not supported by the consumer group."),
        113: Entry("STALE_MEMBER_EPOCH", retriable: false, "The member epoch is stale. The member must retry after receiving its updated member epoch via the ConsumerGroupHeartbeat API."),
        114: Entry("MISMATCHED_ENDPOINT_TYPE", retriable: false, "The request was sent to an endpoint of the wrong type."),
        115: Entry("UNSUPPORTED_ENDPOINT_TYPE", retriable: false, "This endpoint type is not supported yet."),
        116: Entry("UNKNOWN_CONTROLLER_ID", retriable: false, "This controller ID is not known."),
        117: Entry("UNKNOWN_SUBSCRIPTION_ID", retriable: false, "Client sent a push telemetry request with an invalid or outdated subscription ID."),
        118: Entry("TELEMETRY_TOO_LARGE", retriable: false, "Client sent a push telemetry request larger than the maximum size the broker will accept."),
        119: Entry("INVALID_REGISTRATION", retriable: false, "The controller has considered the broker registration to be invalid."),
        120: Entry("TRANSACTION_ABORTABLE", retriable: false, "The server encountered an error with the transaction. The client can abort the transaction to continue using this transactional ID."),
        121: Entry("INVALID_RECORD_STATE", retriable: false, "The record state is invalid. The acknowledgement of delivery could not be completed."),
        122: Entry("SHARE_SESSION_NOT_FOUND", retriable: true, "The share session was not found."),
        123: Entry("INVALID_SHARE_SESSION_EPOCH", retriable: true, "The share session epoch is invalid."),
        124: Entry("FENCED_STATE_EPOCH", retriable: false, "The share coordinator rejected the request because the share-group state epoch did not match."),
        125: Entry("INVALID_VOTER_KEY", retriable: false, "The voter key doesn't match the receiving replica's key."),
        126: Entry("DUPLICATE_VOTER", retriable: false, "The voter is already part of the set of voters."),
        127: Entry("VOTER_NOT_FOUND", retriable: false, "The voter is not part of the set of voters."),
    ]
}
