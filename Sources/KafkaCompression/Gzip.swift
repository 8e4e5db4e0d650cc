import KafkaProtocol
import NIOCore

/// Kafka's gzip codec: a gzip stream (RFC 1952), through the system zlib loaded at run time.
///
/// Kafka's gzip is gzip framing, not zlib's: `compress2`/`uncompress` would write a zlib
/// header, so this uses `deflateInit2_`/`inflateInit2_` with windowBits 31 (gzip) and 47
/// (gzip or zlib, detected), the only entry points that choose the framing.
enum Gzip {
    static func compress(_ input: ByteBuffer, level: Int?) throws -> ByteBuffer {
        let zlib = try Zlib.shared.get()
        let level = level ?? -1  // Z_DEFAULT_COMPRESSION, zlib's 6, as Kafka's default
        guard (-1...9).contains(level) else {
            throw KafkaCompressionError(.invalidArgument, codec: .gzip, "gzip level \(level) is not in -1...9")
        }
        let stream = ZStream()
        let initResult = zlib.deflateInit2(stream.pointer, CInt(level), Zlib.deflated, 15 + 16, 8, 0,
                                           zlib.version, CInt(ZStream.size))
        guard initResult == Zlib.ok else {
            throw KafkaCompressionError(.compressionFailed, codec: .gzip, "deflateInit2_ returned \(initResult)")
        }
        defer { _ = zlib.deflateEnd(stream.pointer) }

        let bound = Int(zlib.deflateBound(stream.pointer, CUnsignedLong(input.readableBytes)))
        var out = ByteBufferAllocator().buffer(capacity: bound)
        try input.withNonNullReadableBytes { base, count in
            stream.nextIn = base
            stream.availIn = UInt32(count)
            _ = try out.writeWithUnsafeMutableBytes(minimumWritableBytes: bound) { dst in
                stream.nextOut = dst.baseAddress!
                stream.availOut = UInt32(clamping: dst.count)
                // deflateBound makes one Z_FINISH call enough.
                let result = zlib.deflate(stream.pointer, Zlib.finish)
                guard result == Zlib.streamEnd else {
                    throw KafkaCompressionError(.compressionFailed, codec: .gzip, "deflate returned \(result)\(stream.messageSuffix)")
                }
                return Int(UInt32(clamping: dst.count) - stream.availOut)
            }
        }
        return out
    }

    static func decompress(_ input: ByteBuffer, maximumSize: Int) throws -> ByteBuffer {
        let zlib = try Zlib.shared.get()
        let stream = ZStream()
        let initResult = zlib.inflateInit2(stream.pointer, 15 + 32, zlib.version, CInt(ZStream.size))
        guard initResult == Zlib.ok else {
            throw KafkaCompressionError(.compressionFailed, codec: .gzip, "inflateInit2_ returned \(initResult)")
        }
        defer { _ = zlib.inflateEnd(stream.pointer) }

        var out = BoundedOutput(limit: maximumSize, sizeHint: input.readableBytes * 4 + 4096)
        try input.withNonNullReadableBytes { base, count in
            stream.nextIn = base
            stream.availIn = UInt32(count)
            while true {
                var result: CInt
                if out.room > 0 {
                    result = Zlib.ok
                    try out.write { dst in
                        let offered = UInt32(clamping: dst.count)
                        stream.nextOut = dst.baseAddress!
                        stream.availOut = offered
                        result = zlib.inflate(stream.pointer, Zlib.noFlush)
                        return Int(offered - stream.availOut)
                    }
                } else {
                    // Full: one more byte of output means the data is over the limit; none
                    // means the stream ends here (the probe consumes the gzip trailer).
                    var probe: UInt8 = 0
                    result = withUnsafeMutablePointer(to: &probe) { p in
                        stream.nextOut = UnsafeMutableRawPointer(p)
                        stream.availOut = 1
                        return zlib.inflate(stream.pointer, Zlib.noFlush)
                    }
                    if stream.availOut == 0 {
                        throw KafkaCompressionError(.outputTooLarge, codec: .gzip, "more than \(maximumSize) bytes")
                    }
                }
                switch result {
                case Zlib.ok:
                    continue
                case Zlib.streamEnd:
                    // Like Java's GZIPInputStream: concatenated members are read on, any
                    // other trailing bytes ignored.
                    let rest = Int(stream.availIn)
                    if rest >= 2, let next = stream.nextIn,
                       next.load(as: UInt8.self) == 0x1f, next.load(fromByteOffset: 1, as: UInt8.self) == 0x8b {
                        _ = zlib.inflateReset(stream.pointer)
                        continue
                    }
                    return
                case Zlib.bufError where stream.availIn == 0:
                    throw KafkaCompressionError(.corruptInput, codec: .gzip, "truncated gzip stream")
                case Zlib.needDict:
                    throw KafkaCompressionError(.corruptInput, codec: .gzip, "stream needs a preset dictionary")
                default:
                    throw KafkaCompressionError(.corruptInput, codec: .gzip, "inflate returned \(result)\(stream.messageSuffix)")
                }
            }
        }
        return out.buffer
    }
}

/// zlib's functions, resolved once per process.
struct Zlib: @unchecked Sendable {
    // @unchecked: immutable C function pointers; zlib functions are thread-safe as long as
    // each z_stream is used by one thread, which every caller here guarantees.

    // int deflateInit2_(z_streamp, int level, int method, int windowBits, int memLevel,
    //                   int strategy, const char *version, int stream_size)
    typealias DeflateInit2 = @convention(c) (UnsafeMutableRawPointer, CInt, CInt, CInt, CInt, CInt, UnsafePointer<CChar>, CInt) -> CInt
    // int inflateInit2_(z_streamp, int windowBits, const char *version, int stream_size)
    typealias InflateInit2 = @convention(c) (UnsafeMutableRawPointer, CInt, UnsafePointer<CChar>, CInt) -> CInt
    // int deflate(z_streamp, int flush); int inflate(z_streamp, int flush)
    typealias Step = @convention(c) (UnsafeMutableRawPointer, CInt) -> CInt
    // int deflateEnd(z_streamp); int inflateEnd(z_streamp); int inflateReset(z_streamp)
    typealias End = @convention(c) (UnsafeMutableRawPointer) -> CInt
    // uLong deflateBound(z_streamp, uLong sourceLen)
    typealias Bound = @convention(c) (UnsafeMutableRawPointer, CUnsignedLong) -> CUnsignedLong
    // const char *zlibVersion(void)
    typealias Version = @convention(c) () -> UnsafePointer<CChar>

    static let ok: CInt = 0, streamEnd: CInt = 1, needDict: CInt = 2, bufError: CInt = -5
    static let noFlush: CInt = 0, finish: CInt = 4, deflated: CInt = 8

    let deflateInit2: DeflateInit2
    let deflate: Step
    let deflateEnd: End
    let deflateBound: Bound
    let inflateInit2: InflateInit2
    let inflate: Step
    let inflateReset: End
    let inflateEnd: End
    /// The library's own version string: the `*Init_` functions check it against their
    /// major version and `stream_size` against their z_stream, so a layout mismatch fails
    /// at init instead of corrupting memory.
    let version: UnsafePointer<CChar>

    static let candidates: [String] = {
        #if canImport(Darwin)
        return ["libz.1.dylib", "/usr/lib/libz.1.dylib", "libz.dylib"]
        #else
        return ["libz.so.1", "libz.so"]
        #endif
    }()

    static let shared = load(candidates)

    static func load(_ candidates: [String]) -> Result<Zlib, KafkaCompressionError> {
        guard ZStream.layoutSupported else {
            return .failure(KafkaCompressionError(.libraryUnavailable, codec: .gzip, "z_stream layout is only known for 64-bit platforms"))
        }
        do {
            let library = try DynamicLibrary.open(candidates).get()
            let versionFunction = try library.function("zlibVersion", as: Version.self)
            return .success(Zlib(
                deflateInit2: try library.function("deflateInit2_", as: DeflateInit2.self),
                deflate: try library.function("deflate", as: Step.self),
                deflateEnd: try library.function("deflateEnd", as: End.self),
                deflateBound: try library.function("deflateBound", as: Bound.self),
                inflateInit2: try library.function("inflateInit2_", as: InflateInit2.self),
                inflate: try library.function("inflate", as: Step.self),
                inflateReset: try library.function("inflateReset", as: End.self),
                inflateEnd: try library.function("inflateEnd", as: End.self),
                version: versionFunction()
            ))
        } catch {
            return .failure(KafkaCompressionError(
                .libraryUnavailable, codec: .gzip,
                "cannot load zlib (\(error)); install the zlib runtime (Debian: apt-get install zlib1g)"))
        }
    }
}

/// A zlib `z_stream` in raw memory, with its fields at the offsets C gives them.
///
/// zlib.h is not available at build time, so the struct is declared by hand. On LP64
/// (x86_64 and aarch64 Linux, macOS) it is 112 bytes:
///
///     0 next_in  8 avail_in(uInt)  16 total_in(uLong)  24 next_out  32 avail_out(uInt)
///     40 total_out  48 msg  56 state  64 zalloc  72 zfree  80 opaque  88 data_type(int)
///     96 adler  104 reserved
///
/// zalloc/zfree/opaque stay zero, which selects zlib's own malloc/free.
final class ZStream {
    static let size = 112
    static let layoutSupported = MemoryLayout<UnsafeRawPointer>.size == 8 && MemoryLayout<CUnsignedLong>.size == 8
    private static let nextInOffset = 0, availInOffset = 8, nextOutOffset = 24, availOutOffset = 32, msgOffset = 48

    let pointer: UnsafeMutableRawPointer

    init() {
        pointer = UnsafeMutableRawPointer.allocate(byteCount: Self.size, alignment: 16)
        pointer.initializeMemory(as: UInt8.self, repeating: 0, count: Self.size)
    }

    deinit { pointer.deallocate() }

    var nextIn: UnsafeRawPointer? {
        get { pointer.load(fromByteOffset: Self.nextInOffset, as: UnsafeRawPointer?.self) }
        set { pointer.storeBytes(of: newValue, toByteOffset: Self.nextInOffset, as: UnsafeRawPointer?.self) }
    }
    var availIn: UInt32 {
        get { pointer.load(fromByteOffset: Self.availInOffset, as: UInt32.self) }
        set { pointer.storeBytes(of: newValue, toByteOffset: Self.availInOffset, as: UInt32.self) }
    }
    var nextOut: UnsafeMutableRawPointer? {
        get { pointer.load(fromByteOffset: Self.nextOutOffset, as: UnsafeMutableRawPointer?.self) }
        set { pointer.storeBytes(of: newValue, toByteOffset: Self.nextOutOffset, as: UnsafeMutableRawPointer?.self) }
    }
    var availOut: UInt32 {
        get { pointer.load(fromByteOffset: Self.availOutOffset, as: UInt32.self) }
        set { pointer.storeBytes(of: newValue, toByteOffset: Self.availOutOffset, as: UInt32.self) }
    }
    /// zlib's last error message, formatted to append to ours.
    var messageSuffix: String {
        guard let msg = pointer.load(fromByteOffset: Self.msgOffset, as: UnsafePointer<CChar>?.self) else { return "" }
        return " (\(String(cString: msg)))"
    }
}
