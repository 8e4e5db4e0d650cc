import KafkaCompression
import KafkaProtocol
import NIOCore

extension KafkaProducer {
    /// How many replicas must have a batch before the broker answers (Kafka's `acks`).
    public enum Acks: Int16, Sendable, Hashable {
        /// `acks=0`: the broker never answers; offsets are unknown (-1) and nothing is retried.
        case zero = 0
        /// `acks=1`: the leader has written the batch.
        case one = 1
        /// `acks=all` (-1): every in-sync replica has the batch (on Tributary: it is fsynced).
        case all = -1
    }

    /// The producer's settings. Names and defaults follow the Java client's
    /// (`linger.ms` is `lingerMs`, ...), so a Java configuration carries over unchanged.
    public struct Configuration: Sendable {
        /// `bootstrap.servers`: `host:port` of one or more brokers to learn the cluster from.
        public var bootstrapServers: [String]
        /// `client.id`, sent with every request; shows up in broker logs and quotas.
        public var clientId = "tributary-producer"
        /// `acks`. Default `.all`, as in the Java client since Kafka 3.0.
        public var acks: Acks = .all
        /// `linger.ms`: how long a partition's batch waits for more records before it is
        /// sent. Default 5, the Java default since Kafka 4.0: a few milliseconds of delay
        /// buys much larger batches under load.
        public var lingerMs = 5
        /// `batch.size`: a partition's batch is sent once it holds this many bytes
        /// (uncompressed). Default 16384, the Java default, so batches and memory use
        /// match what Java users tuned for; raise it (librdkafka uses 1 MB) for bulk
        /// throughput, since every batch costs one request per partition.
        public var batchSize = 16384
        /// `enable.idempotence`: the broker deduplicates retried batches by producer id
        /// and per-partition sequence number, so retries never write a record twice.
        /// Default true. Takes effect only with `acks = .all`, as in the Java client
        /// (which turns it off when acks is set to anything else).
        public var enableIdempotence = true
        /// `retries`: how often a batch is resent after a retriable error; bounded in
        /// time by `deliveryTimeoutMs`. Default Int32.max, as in Java.
        public var retries = Int(Int32.max)
        /// `retry.backoff.ms`: the pause before a batch is retried. Default 100.
        public var retryBackoffMs = 100
        /// `reconnect.backoff.ms`: the pause before reconnecting to a broker whose last
        /// connection attempt failed; doubles with each further failure. Default 50.
        public var reconnectBackoffMs = 50
        /// `reconnect.backoff.max.ms`: the cap of that pause (jittered ±20%). Default 1000.
        public var reconnectBackoffMaxMs = 1000
        /// `delivery.timeout.ms`: the upper bound, from `send`, on reporting a record's
        /// success or failure, retries included. Default 120000.
        public var deliveryTimeoutMs = 120_000
        /// `request.timeout.ms`: how long one request may wait for its answer. Default 30000.
        public var requestTimeoutMs = 30_000
        /// `compression.type`. Default `.none`.
        public var compression: CompressionCodec = .none
        /// `compression.<codec>.level`, or nil for the codec's default.
        public var compressionLevel: Int? = nil
        /// `buffer.memory`: bytes of records waiting to be delivered; `send` suspends
        /// while they would exceed it (back-pressure). Default 32 MiB.
        public var bufferMemory = 32 << 20
        /// `max.in.flight.requests.per.connection`. Default 5, the most idempotence allows
        /// (the broker remembers the last five batches per producer and partition).
        public var maxInFlightRequestsPerConnection = 5
        /// `max.request.size`: the largest record (and request) the producer sends.
        /// Default 1048576.
        public var maxRequestSize = 1_048_576
        /// `max.block.ms`: how long `send` and `sendAndForget` wait for a topic's metadata,
        /// and again for `bufferMemory` to have room, before they throw. Default 60000.
        public var maxBlockMs = 60_000
        /// `metadata.max.age.ms`: metadata is refreshed at least this often. Default 300000.
        public var metadataMaxAgeMs = 300_000
        /// Whether records sent with `sendAndForget` report to `deliveryReports`. Default
        /// false: reports nobody reads would pile up in memory.
        public var deliveryReports = false

        public init(bootstrapServers: [String]) {
            self.bootstrapServers = bootstrapServers
        }

        /// Whether batches carry a producer id and sequences.
        var isIdempotent: Bool { enableIdempotence && acks == .all }

        func validate() throws {
            func check(_ ok: Bool, _ what: String) throws {
                if !ok { throw KafkaClientError(.invalidArgument, what) }
            }
            try check(!bootstrapServers.isEmpty, "bootstrapServers is empty")
            try check(lingerMs >= 0, "lingerMs must not be negative")
            try check(batchSize >= 0, "batchSize must not be negative")
            try check(retries >= 0, "retries must not be negative")
            try check(retryBackoffMs >= 0, "retryBackoffMs must not be negative")
            try check(reconnectBackoffMs >= 0 && reconnectBackoffMaxMs >= 0, "reconnectBackoffMs and reconnectBackoffMaxMs must not be negative")
            try check(requestTimeoutMs > 0, "requestTimeoutMs must be positive")
            try check(deliveryTimeoutMs >= lingerMs + requestTimeoutMs,
                      "deliveryTimeoutMs must be at least lingerMs + requestTimeoutMs, as in the Java client")
            try check(bufferMemory > 0, "bufferMemory must be positive")
            try check(maxRequestSize > 0, "maxRequestSize must be positive")
            try check(maxInFlightRequestsPerConnection >= 1, "maxInFlightRequestsPerConnection must be at least 1")
            try check(!isIdempotent || maxInFlightRequestsPerConnection <= 5,
                      "idempotence needs maxInFlightRequestsPerConnection <= 5")
            if let error = CompressionCodecs.availabilityError(compression) {
                throw KafkaClientError(.invalidArgument, "compression \(compression) is not available: \(error)")
            }
        }
    }

    /// Where and when a record was written.
    public struct RecordMetadata: Sendable, Hashable {
        public var topic: String
        public var partition: Int32
        /// The record's offset, or -1 with `acks = .zero` (the broker does not say).
        public var offset: Int64
        /// The record's timestamp: the one sent, or the broker's when the topic uses
        /// LogAppendTime.
        public var timestamp: Int64
    }

    /// The outcome of a record sent with `sendAndForget`, on `deliveryReports`.
    public struct DeliveryReport: Sendable {
        /// The id `sendAndForget` returned for the record.
        public var id: UInt64
        public var topic: String
        /// The partition, or -1 when the record failed before one was chosen.
        public var partition: Int32
        public var result: Result<RecordMetadata, KafkaClientError>
    }
}

/// A record to send.
public struct ProducerRecord: Sendable {
    public var topic: String
    /// The partition; nil lets the partitioner choose (murmur2 of the key, or sticky
    /// for records without one).
    public var partition: Int32?
    public var key: ByteBuffer?
    public var value: ByteBuffer?
    public var headers: [KafkaHeader]
    /// Milliseconds since the epoch; nil for the time of `send`.
    public var timestamp: Int64?

    public init(topic: String, partition: Int32? = nil, key: ByteBuffer? = nil, value: ByteBuffer?,
                headers: [KafkaHeader] = [], timestamp: Int64? = nil) {
        self.topic = topic
        self.partition = partition
        self.key = key
        self.value = value
        self.headers = headers
        self.timestamp = timestamp
    }

    public init(topic: String, partition: Int32? = nil, key: String?, value: String?,
                headers: [KafkaHeader] = [], timestamp: Int64? = nil) {
        self.init(topic: topic, partition: partition, key: key.map { ByteBuffer(string: $0) },
                  value: value.map { ByteBuffer(string: $0) }, headers: headers, timestamp: timestamp)
    }

    /// An upper bound of the record's encoded size, which memory accounting and batch
    /// sizing use: varints are counted at their widest.
    var estimatedSize: Int { Self.estimatedSize(key: key, value: value, headers: headers) }

    @inline(__always)
    static func estimatedSize(key: ByteBuffer?, value: ByteBuffer?, headers: [KafkaHeader]) -> Int {
        var size = 21 + (key?.readableBytes ?? 0) + (value?.readableBytes ?? 0)
        for h in headers { size += 10 + h.key.utf8.count + (h.value?.readableBytes ?? 0) }
        return size
    }
}
