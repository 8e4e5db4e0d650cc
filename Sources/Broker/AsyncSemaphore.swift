import NIOConcurrencyHelpers

/// A weighted counting semaphore for async code. Bounds how many pipelined requests (or
/// request bytes) may be in flight, so a client cannot make us buffer without limit.
/// Waiters are served first come, first served.
final class AsyncSemaphore: Sendable {
    private struct State {
        var permits: Int
        var closed = false
        var waiters: [(count: Int, continuation: CheckedContinuation<Void, Never>)] = []
    }
    private let state: NIOLockedValueBox<State>
    /// The most one `acquire` may take, so a single large request can always proceed.
    let capacity: Int

    init(permits: Int) {
        capacity = permits
        state = NIOLockedValueBox(State(permits: permits))
    }

    /// Takes `count` permits (at most `capacity`), waiting while they are not free.
    func acquire(_ count: Int = 1) async {
        let count = min(count, capacity)
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let ready = state.withLockedValue { s -> Bool in
                if s.closed { return true }
                if s.waiters.isEmpty && s.permits >= count {
                    s.permits -= count
                    return true
                }
                s.waiters.append((count, c))
                return false
            }
            if ready { c.resume() }
        }
    }

    /// Lets every current and future `acquire` through (the connection is ending).
    func close() {
        let waiters = state.withLockedValue { s -> [CheckedContinuation<Void, Never>] in
            s.closed = true
            defer { s.waiters = [] }
            return s.waiters.map(\.continuation)
        }
        for w in waiters { w.resume() }
    }

    func release(_ count: Int = 1) {
        let count = min(count, capacity)
        let ready = state.withLockedValue { s -> [CheckedContinuation<Void, Never>] in
            s.permits += count
            var out: [CheckedContinuation<Void, Never>] = []
            while let first = s.waiters.first, first.count <= s.permits {
                s.permits -= first.count
                out.append(first.continuation)
                s.waiters.removeFirst()
            }
            return out
        }
        for c in ready { c.resume() }
    }
}
