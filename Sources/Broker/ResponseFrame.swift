import KafkaProtocol
import LogStore
import NIOCore

/// A response ready to write: byte parts and file slices in order. Fetch responses carry
/// their record batches as file slices, sent with sendfile instead of being copied.
public struct ResponseFrame: Sendable {
    public enum Part: Sendable {
        case bytes(ByteBuffer)
        case file(FileSlice)
    }
    public var parts: [Part]

    public init(_ bytes: ByteBuffer) {
        parts = [.bytes(bytes)]
    }

    init(parts: [Part]) {
        self.parts = parts
    }

    /// The whole frame as bytes (copies the file slices); for tests and small responses.
    public func collect() throws -> ByteBuffer {
        var out = ByteBuffer()
        for part in parts {
            switch part {
            case .bytes(var b): out.writeBuffer(&b)
            case .file(let slice):
                var b = try slice.readBytes()
                out.writeBuffer(&b)
            }
        }
        return out
    }

    /// Encodes a response whose `records` fields are to be filled from `slices`, in the
    /// order the encoder writes them. Each partition's records are first encoded as a
    /// 16-byte marker; the encoded frame is then cut at the markers and the file slices
    /// spliced in, with their length prefixes rewritten and the frame size corrected.
    static func encode<R: KafkaResponse>(
        _ response: R, version: Int16, correlationId: Int32, slices: [FileSlice?],
        setRecords: (inout R, [ByteBuffer?]) -> Void
    ) throws -> ResponseFrame {
        var nonce = SystemRandomNumberGenerator()
        let tag = nonce.next() as UInt64
        var markers: [ByteBuffer?] = []
        for (i, slice) in slices.enumerated() {
            guard slice != nil else {
                markers.append(nil)
                continue
            }
            var m = ByteBuffer()
            m.writeInteger(tag)
            m.writeInteger(UInt64(i))
            markers.append(m)
        }
        var withMarkers = response
        setRecords(&withMarkers, markers)
        var frame = ByteBuffer()
        try encodeResponseFrame(withMarkers, version: version, correlationId: correlationId, into: &frame)
        guard slices.contains(where: { $0 != nil }) else { return ResponseFrame(frame) }

        let compact = R.isFlexible(version)
        var parts: [Part] = []
        var cursor = frame.readerIndex + 4  // the size prefix is rewritten at the end
        var sizeDelta = 0
        var searchFrom = cursor
        for (i, slice) in slices.enumerated() {
            guard let slice else { continue }
            var marker = ByteBuffer()
            marker.writeInteger(tag)
            marker.writeInteger(UInt64(i))
            guard let at = Self.find(marker, in: frame, from: searchFrom) else {
                throw KafkaProtocolError(.corruptRecordBatch, "internal: records marker \(i) not found in the encoded response")
            }
            let oldPrefix = compact ? ByteBuffer.unsignedVarintSize(17) : 4
            parts.append(.bytes(frame.getSlice(at: cursor, length: at - oldPrefix - cursor)!))
            var prefix = ByteBuffer()
            if compact {
                prefix.writeUnsignedVarint(UInt32(slice.length + 1))
            } else {
                prefix.writeInteger(Int32(slice.length))
            }
            sizeDelta += prefix.readableBytes - oldPrefix + slice.length - 16
            parts.append(.bytes(prefix))
            parts.append(.file(slice))
            cursor = at + 16
            searchFrom = cursor
        }
        parts.append(.bytes(frame.getSlice(at: cursor, length: frame.writerIndex - cursor)!))
        var size = ByteBuffer()
        size.writeInteger(Int32(frame.readableBytes - 4 + sizeDelta))
        parts.insert(.bytes(size), at: 0)
        return ResponseFrame(parts: parts)
    }

    private static func find(_ needle: ByteBuffer, in haystack: ByteBuffer, from: Int) -> Int? {
        let n = Array(needle.readableBytesView)
        return haystack.withUnsafeReadableBytes { raw -> Int? in
            let base = haystack.readerIndex
            var i = from - base
            let last = raw.count - n.count
            while i <= last {
                if raw[i] == n[0] {
                    var match = true
                    for k in 1..<n.count where raw[i + k] != n[k] {
                        match = false
                        break
                    }
                    if match { return base + i }
                }
                i += 1
            }
            return nil
        }
    }
}
