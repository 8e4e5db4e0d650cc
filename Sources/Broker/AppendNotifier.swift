import NIOConcurrencyHelpers

/// Wakes long-polling fetches when data arrives. A sequence number closes the race between
/// "read found too little" and "start waiting": a waiter passes the number it saw and
/// returns at once if an append happened since.
final class AppendNotifier: Sendable {
    private struct State {
        var sequence: UInt64 = 0
        var nextId: UInt64 = 0
        var waiters: [UInt64: CheckedContinuation<Void, Never>] = [:]
    }
    private let state = NIOLockedValueBox(State())

    var sequence: UInt64 { state.withLockedValue { $0.sequence } }

    func notifyAll() {
        let waiters = state.withLockedValue { s -> [CheckedContinuation<Void, Never>] in
            s.sequence &+= 1
            let w = Array(s.waiters.values)
            s.waiters.removeAll()
            return w
        }
        for w in waiters { w.resume() }
    }

    /// Returns after the next append following `sequence`, or after `timeout`.
    func wait(since sequence: UInt64, timeout: Duration) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.waitForAppend(since: sequence) }
            group.addTask { try? await Task.sleep(for: timeout) }
            await group.next()
            group.cancelAll()
        }
    }

    private func waitForAppend(since sequence: UInt64) async {
        let id = state.withLockedValue { s -> UInt64 in
            s.nextId += 1
            return s.nextId
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                let resumeNow = state.withLockedValue { s -> Bool in
                    if s.sequence != sequence || Task.isCancelled { return true }
                    s.waiters[id] = c
                    return false
                }
                if resumeNow { c.resume() }
            }
        } onCancel: {
            let c = state.withLockedValue { $0.waiters.removeValue(forKey: id) }
            c?.resume()
        }
    }
}
