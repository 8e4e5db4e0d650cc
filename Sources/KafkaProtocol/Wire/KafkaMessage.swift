import NIOCore

/// A value that reads and writes itself in the Kafka wire format at a given version.
public protocol KafkaMessage: Sendable, Hashable {
    init(from buffer: inout ByteBuffer, version: Int16) throws
    func encode(into buffer: inout ByteBuffer, version: Int16) throws
    static var validVersions: ClosedRange<Int16> { get }
    static var firstFlexibleVersion: Int16? { get }
}

/// A request body; its header is `RequestHeader`.
public protocol KafkaRequest: KafkaMessage {
    associatedtype Response: KafkaResponse
    static var apiKey: APIKey { get }
}

/// A response body; its header is `ResponseHeader`.
public protocol KafkaResponse: KafkaMessage {
    static var apiKey: APIKey { get }
}

extension KafkaMessage {
    /// Whether `version` uses the flexible encoding.
    public static func isFlexible(_ version: Int16) -> Bool {
        firstFlexibleVersion.map { version >= $0 } ?? false
    }
}
