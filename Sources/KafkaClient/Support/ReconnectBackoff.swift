import NIOCore

/// How often the client may try to connect to one broker after attempts failed: the Java
/// client's `reconnect.backoff.ms` / `reconnect.backoff.max.ms`.
///
/// After the n-th failure in a row the next attempt waits `base * 2^(n-1)`, capped at
/// `max`, times a random factor in 0.8...1.2 so that many clients cut off together do not
/// come back in lockstep. A successful connection resets it. Plain values, no clock:
/// the caller passes the time and the jitter.
struct ReconnectBackoff: Sendable, Hashable {
    /// The first delay, in milliseconds.
    var baseMs: Int
    /// The largest delay before jitter, in milliseconds.
    var maxMs: Int
    /// The relative spread of the random factor (0.2: ±20%, as Java).
    static let jitter = 0.2

    private(set) var failures = 0
    /// When the next attempt may start; nil when one may start now.
    private(set) var nextAttempt: NIODeadline?

    init(baseMs: Int, maxMs: Int) {
        self.baseMs = baseMs
        self.maxMs = max(baseMs, maxMs)
    }

    /// How long the caller must still wait before connecting, or nil when it may now.
    func remaining(now: NIODeadline) -> TimeAmount? {
        guard let nextAttempt, now < nextAttempt else { return nil }
        return nextAttempt - now
    }

    /// Records a failed attempt that ended at `now`; returns the delay before the next.
    /// `random` is in 0...1 (drawn by the caller so tests can fix it).
    @discardableResult
    mutating func recordFailure(now: NIODeadline, random: Double) -> TimeAmount {
        failures += 1
        let delay = Self.delayMs(failures: failures, baseMs: baseMs, maxMs: maxMs, random: random)
        let next = now + .nanoseconds(Int64(delay * 1_000_000))
        nextAttempt = next
        return next - now
    }

    /// A connection succeeded: the next failure starts again from `baseMs`.
    mutating func recordSuccess() {
        failures = 0
        nextAttempt = nil
    }

    /// The delay after `failures` failures in a row, in milliseconds.
    static func delayMs(failures: Int, baseMs: Int, maxMs: Int, random: Double) -> Double {
        guard failures > 0, baseMs > 0 else { return 0 }
        // 2^(failures-1) without overflow: past the cap the exponent no longer matters.
        let exponent = min(failures - 1, 62)
        let term = min(Double(baseMs) * Double(sign: .plus, exponent: exponent, significand: 1), Double(max(baseMs, maxMs)))
        let factor = 1 - jitter + 2 * jitter * min(max(random, 0), 1)
        return term * factor
    }
}
