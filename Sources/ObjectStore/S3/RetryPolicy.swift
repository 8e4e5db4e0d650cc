import NIOCore

/// How often and how patiently the S3 store retries a request that failed in a way
/// worth retrying: 5xx, 429 and 503 SlowDown, connection errors and timeouts, and
/// answers that fail an integrity check.
///
/// Delays grow exponentially with "full jitter" (a uniform random delay between zero
/// and the capped exponential), which AWS recommends because it spreads out clients
/// that were throttled at the same moment instead of having them retry in lockstep.
public struct RetryPolicy: Sendable, Hashable {
    /// Total attempts, the first included. Default 8: with the default delays a request
    /// rides out about 25 seconds of throttling or an endpoint restart at worst.
    public var maxAttempts: Int
    /// The cap of the first retry's delay; each later one doubles it. Default 100 ms.
    public var baseDelay: TimeAmount
    /// No delay is longer than this. Default 20 s.
    public var maxDelay: TimeAmount

    public init(maxAttempts: Int = 8, baseDelay: TimeAmount = .milliseconds(100), maxDelay: TimeAmount = .seconds(20)) {
        self.maxAttempts = maxAttempts
        self.baseDelay = baseDelay
        self.maxDelay = maxDelay
    }

    /// Never retry: every failure reaches the caller at once.
    public static let none = RetryPolicy(maxAttempts: 1)

    /// The upper bound of the delay before attempt `attempt` (2 for the first retry).
    public func delayCap(beforeAttempt attempt: Int) -> TimeAmount {
        let doublings = min(max(attempt - 2, 0), 40)
        let (product, overflow) = baseDelay.nanoseconds.multipliedReportingOverflow(by: Int64(1) << doublings)
        return .nanoseconds(overflow ? maxDelay.nanoseconds : min(product, maxDelay.nanoseconds))
    }

    /// A random delay in `0...delayCap(beforeAttempt:)`.
    public func delay<Generator: RandomNumberGenerator>(beforeAttempt attempt: Int, using generator: inout Generator) -> TimeAmount {
        let cap = delayCap(beforeAttempt: attempt).nanoseconds
        return .nanoseconds(cap <= 0 ? 0 : Int64.random(in: 0...cap, using: &generator))
    }
}
