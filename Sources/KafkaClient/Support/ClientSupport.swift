import Foundation
import KafkaProtocol
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// A partition of a topic, as the producer, consumer and admin name it.
public typealias TopicPartition = KafkaAdmin.TopicPartition

/// A record header: a string key and optional bytes, as Kafka defines them.
public typealias KafkaHeader = Record.Header

extension KafkaClientError.Code {
    /// The producer or consumer was closed before the operation could finish.
    public static let closed = Self(raw: "closed")
    /// A record could not be delivered within `deliveryTimeoutMs` or `retries`.
    public static let deliveryFailed = Self(raw: "delivery failed")
    /// A record is larger than `maxRequestSize` or `bufferMemory` allows.
    public static let recordTooLarge = Self(raw: "record too large")
    /// A partition has no committed offset and `autoOffsetReset` is `.none`, or the
    /// fetch position is out of range with that policy.
    public static let noOffset = Self(raw: "no offset")
    /// A commit was refused because the group rebalanced; the records since the last
    /// commit may be delivered to another member.
    public static let commitFailed = Self(raw: "commit failed")
    /// The consumer group refused this member for good (e.g. a fenced static member).
    public static let groupFailed = Self(raw: "group membership failed")
    /// Metadata for a topic could not be obtained within `maxBlockMs`.
    public static let metadataTimedOut = Self(raw: "metadata timed out")
    /// `send` waited `maxBlockMs` for `bufferMemory` to free up: the cluster accepts
    /// records more slowly than they are sent, or not at all.
    public static let bufferMemoryTimedOut = Self(raw: "buffer memory timed out")
}

extension KafkaClientError {
    /// The error for a Kafka error code answered by a broker.
    static func broker(_ code: KafkaErrorCode, _ what: String, message: String? = nil) -> KafkaClientError {
        KafkaClientError(.brokerError, "\(what): \(message ?? code.defaultMessage) (\(code.name))", kafkaCode: code)
    }

    /// Whether retrying the same request may succeed: connection trouble, timeouts and
    /// the codes Kafka marks retriable.
    var isRetriable: Bool {
        switch code {
        case .connectionClosed, .requestTimedOut, .noBrokerReachable: return true
        case .brokerError: return kafkaCode?.isRetriable ?? false
        default: return false
        }
    }
}

/// Logger metadata keys used by the producer and consumer, in one place.
enum LogKey {
    static let topic = "kafka.topic"
    static let partition = "kafka.partition"
    static let node = "kafka.node"
    static let group = "kafka.group"
    static let member = "kafka.member"
    static let generation = "kafka.generation"
    static let error = "kafka.error"
    static let offset = "kafka.offset"
}

/// Kafka error codes the client reacts to that the generated table names only by number.
extension KafkaErrorCode {
    static let unknownProducerId = KafkaErrorCode(rawValue: 59)
    static let memberIdRequired = KafkaErrorCode(rawValue: 79)
    static let fencedInstanceId = KafkaErrorCode(rawValue: 82)
    static let unstableOffsetCommit = KafkaErrorCode(rawValue: 88)
}

/// Wall-clock milliseconds since the epoch: Kafka's record timestamps.
@inline(__always)
func currentTimeMillis() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
}

extension TimeAmount {
    static func ms(_ value: Int) -> TimeAmount { .milliseconds(Int64(value)) }
}

/// Wakes one waiting loop. A ring while nobody waits is remembered, so a loop that
/// checks its state and then waits never misses the change that happened in between.
final class Doorbell: Sendable {
    private struct State {
        var rung = false
        var waiter: CheckedContinuation<Void, Never>?
        var timer: Scheduled<Void>?
    }

    private let state = NIOLockedValueBox(State())
    private let eventLoop: any EventLoop

    init(eventLoop: any EventLoop = MultiThreadedEventLoopGroup.singleton.next()) {
        self.eventLoop = eventLoop
    }

    func ring() {
        let (waiter, timer) = state.withLockedValue { s -> (CheckedContinuation<Void, Never>?, Scheduled<Void>?) in
            guard let w = s.waiter else {
                s.rung = true
                return (nil, nil)
            }
            s.waiter = nil
            defer { s.timer = nil }
            return (w, s.timer)
        }
        timer?.cancel()
        waiter?.resume()
    }

    /// Returns when rung (or rung since the last wait), at `deadline`, or when the task
    /// is cancelled. Spurious returns are possible; callers re-check their state.
    func wait(until deadline: NIODeadline?) async {
        if let deadline, deadline <= .now() { return }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                let ready = state.withLockedValue { s -> Bool in
                    if s.rung || Task.isCancelled {
                        s.rung = false
                        return true
                    }
                    precondition(s.waiter == nil, "one waiter per doorbell")
                    s.waiter = c
                    return false
                }
                if ready {
                    c.resume()
                    return
                }
                if let deadline {
                    let timer = eventLoop.scheduleTask(deadline: deadline) { [self] in ring() }
                    let stale = state.withLockedValue { s -> Bool in
                        guard s.waiter != nil else { return true }
                        s.timer = timer
                        return false
                    }
                    if stale { timer.cancel() }
                }
            }
        } onCancel: {
            ring()
        }
    }
}

/// A small, fast pseudo-random generator for choosing sticky partitions: the system
/// generator costs a syscall per call on Linux, and this needs no cryptographic quality.
struct XorShiftGenerator: RandomNumberGenerator {
    private var state: UInt64

    init() {
        var seed: UInt64 = 0
        while seed == 0 { seed = UInt64.random(in: 1...UInt64.max) }
        state = seed
    }

    mutating func next() -> UInt64 {
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        return state
    }
}
