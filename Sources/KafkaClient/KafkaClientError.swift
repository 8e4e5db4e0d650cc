/// The one error type of the KafkaClient module.
public struct KafkaClientError: Error, Sendable, CustomStringConvertible {
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        let raw: String
        public var description: String { raw }
        /// No broker in the bootstrap list could be reached.
        public static let noBrokerReachable = Code(raw: "no broker reachable")
        /// The connection closed or failed while requests were waiting.
        public static let connectionClosed = Code(raw: "connection closed")
        /// The broker did not answer within the request timeout.
        public static let requestTimedOut = Code(raw: "request timed out")
        /// Neither side has a version of the API in common.
        public static let unsupportedVersion = Code(raw: "unsupported version")
        /// The broker answered with a Kafka error code.
        public static let brokerError = Code(raw: "broker error")
        /// The response could not be decoded.
        public static let malformedResponse = Code(raw: "malformed response")
        /// The caller asked for something invalid.
        public static let invalidArgument = Code(raw: "invalid argument")
    }

    public var code: Code
    public var message: String
    /// The Kafka error code, for `.brokerError`.
    public var kafkaCode: KafkaErrorCodeValue?

    public init(_ code: Code, _ message: String, kafkaCode: KafkaErrorCodeValue? = nil) {
        self.code = code
        self.message = message
        self.kafkaCode = kafkaCode
    }

    public var description: String { "\(code): \(message)" }
}

import KafkaProtocol
public typealias KafkaErrorCodeValue = KafkaErrorCode
