import Foundation
import LogStore
import NIOConcurrencyHelpers

/// Hands out producer ids that stay unique across restarts: ids are reserved in blocks
/// whose end is persisted before any id of the block is used.
final class ProducerIdManager: Sendable {
    private struct State {
        var next: Int64
        var blockEnd: Int64
    }
    private let state: NIOLockedValueBox<State>
    private let path: String
    static let blockSize: Int64 = 1000

    init(dataDirectory: String) throws {
        path = dataDirectory + "/producer-id-block"
        var start: Int64 = 0
        if let bytes = try FileSystem.readFile(path), let v = Int64(String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)) {
            start = v
        }
        try FileSystem.writeAtomically(path, Array("\(start + Self.blockSize)\n".utf8))
        state = NIOLockedValueBox(State(next: start, blockEnd: start + Self.blockSize))
    }

    func nextProducerId() throws -> Int64 {
        try state.withLockedValue { s in
            if s.next >= s.blockEnd {
                try FileSystem.writeAtomically(path, Array("\(s.blockEnd + Self.blockSize)\n".utf8))
                s.blockEnd += Self.blockSize
            }
            defer { s.next += 1 }
            return s.next
        }
    }
}
