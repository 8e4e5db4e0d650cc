import NIOConcurrencyHelpers

/// A counting semaphore for async code: bounds how many pipelined requests a connection
/// may have in flight, so a client cannot make us buffer without limit.
final class AsyncSemaphore: Sendable {
    private struct State {
        var permits: Int
        var closed = false
        var waiters: [CheckedContinuation<Void, Never>] = []
    }
    private let state: NIOLockedValueBox<State>

    init(permits: Int) {
        state = NIOLockedValueBox(State(permits: permits))
    }

    func acquire() async {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let ready = state.withLockedValue { s -> Bool in
                if s.closed { return true }
                if s.permits > 0 {
                    s.permits -= 1
                    return true
                }
                s.waiters.append(c)
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
            return s.waiters
        }
        for w in waiters { w.resume() }
    }

    func release() {
        let waiter = state.withLockedValue { s -> CheckedContinuation<Void, Never>? in
            if s.waiters.isEmpty {
                s.permits += 1
                return nil
            }
            return s.waiters.removeFirst()
        }
        waiter?.resume()
    }
}
