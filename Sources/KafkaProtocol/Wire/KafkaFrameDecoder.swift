import NIOCore

/// Splits a byte stream into Kafka frames (a 4-byte size, then that many bytes).
///
/// The size is checked against `maximumFrameSize` before any of the frame is buffered,
/// so a hostile or confused peer cannot make us allocate what it claims.
public struct KafkaFrameDecoder: NIOSingleStepByteToMessageDecoder {
    public typealias InboundOut = ByteBuffer

    public struct FrameTooLarge: Error, Sendable, CustomStringConvertible {
        public var size: Int32
        public var maximum: Int
        public var description: String {
            size < 0 ? "negative frame size \(size)" : "frame of \(size) bytes exceeds the limit of \(maximum) bytes"
        }
    }

    public let maximumFrameSize: Int

    public init(maximumFrameSize: Int) {
        self.maximumFrameSize = maximumFrameSize
    }

    public mutating func decode(buffer: inout ByteBuffer) throws -> ByteBuffer? {
        guard let size = buffer.getInteger(at: buffer.readerIndex, as: Int32.self) else { return nil }
        guard size >= 0, Int(size) <= maximumFrameSize else {
            throw FrameTooLarge(size: size, maximum: maximumFrameSize)
        }
        guard buffer.readableBytes >= 4 + Int(size) else { return nil }
        buffer.moveReaderIndex(forwardBy: 4)
        return buffer.readSlice(length: Int(size))
    }

    public mutating func decodeLast(buffer: inout ByteBuffer, seenEOF: Bool) throws -> ByteBuffer? {
        try decode(buffer: &buffer)
    }
}
