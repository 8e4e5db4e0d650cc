import KafkaProtocol
import NIOCore

/// Kafka's zstd codec: zstd frames, through the system libzstd loaded at run time.
///
/// Decompression streams (`ZSTD_decompressStream`) because librdkafka and the Java client
/// write frames without a content size, and because streaming lets `BoundedOutput` stop
/// at the caller's limit whatever size a frame claims.
enum Zstd {
    /// Kafka's default `compression.zstd.level`.
    static let defaultLevel = 3

    static func compress(_ input: ByteBuffer, level: Int?) throws -> ByteBuffer {
        let zstd = try ZstdLibrary.shared.get()
        let level = level ?? defaultLevel
        let maxLevel = Int(zstd.maxCLevel())
        // zstd's fastest negative level is -(1 << 17); 0 means its default.
        guard (-(1 << 17)...maxLevel).contains(level) else {
            throw KafkaCompressionError(.invalidArgument, codec: .zstd, "zstd level \(level) is not in -131072...\(maxLevel)")
        }
        let bound = zstd.compressBound(input.readableBytes)
        var out = ByteBufferAllocator().buffer(capacity: bound)
        try input.withNonNullReadableBytes { base, count in
            _ = try out.writeWithUnsafeMutableBytes(minimumWritableBytes: bound) { dst in
                let result = zstd.compress(dst.baseAddress!, dst.count, base, count, CInt(level))
                guard zstd.isError(result) == 0 else {
                    throw KafkaCompressionError(.compressionFailed, codec: .zstd, zstd.errorName(result))
                }
                return result
            }
        }
        return out
    }

    static func decompress(_ input: ByteBuffer, maximumSize: Int) throws -> ByteBuffer {
        let zstd = try ZstdLibrary.shared.get()
        guard let stream = zstd.createDStream() else {
            throw KafkaCompressionError(.compressionFailed, codec: .zstd, "ZSTD_createDStream failed")
        }
        defer { _ = zstd.freeDStream(stream) }
        let initResult = zstd.initDStream(stream)
        guard zstd.isError(initResult) == 0 else {
            throw KafkaCompressionError(.compressionFailed, codec: .zstd, zstd.errorName(initResult))
        }

        var out = BoundedOutput(limit: maximumSize, sizeHint: input.readableBytes * 4 + 4096)
        // ZSTD_inBuffer { const void *src; size_t size; size_t pos; } then ZSTD_outBuffer
        // { void *dst; size_t size; size_t pos; }: six machine words, no padding.
        try withUnsafeTemporaryAllocation(of: Int.self, capacity: 6) { words in
            let inBuffer = UnsafeMutableRawPointer(words.baseAddress!)
            let outBuffer = UnsafeMutableRawPointer(words.baseAddress! + 3)
            try input.withNonNullReadableBytes { base, count in
                words[0] = Int(bitPattern: base)
                words[1] = count
                words[2] = 0
                while true {
                    let consumedBefore = words[2]
                    var result = 0
                    var filledOutput = false
                    var produced = 0
                    if out.room > 0 {
                        try out.write { dst in
                            words[3] = Int(bitPattern: dst.baseAddress!)
                            words[4] = dst.count
                            words[5] = 0
                            result = zstd.decompressStream(stream, outBuffer, inBuffer)
                            produced = words[5]
                            filledOutput = produced == dst.count
                            return produced
                        }
                    } else {
                        // Full: one more byte of output means the data is over the limit.
                        var probe: UInt8 = 0
                        withUnsafeMutablePointer(to: &probe) { p in
                            words[3] = Int(bitPattern: p)
                            words[4] = 1
                            words[5] = 0
                            result = zstd.decompressStream(stream, outBuffer, inBuffer)
                        }
                        if words[5] != 0 {
                            throw KafkaCompressionError(.outputTooLarge, codec: .zstd, "more than \(maximumSize) bytes")
                        }
                    }
                    guard zstd.isError(result) == 0 else {
                        throw KafkaCompressionError(.corruptInput, codec: .zstd, zstd.errorName(result))
                    }
                    let inputDone = words[2] == count
                    if result == 0 && inputDone { return }  // last frame decoded and flushed
                    if inputDone && !filledOutput && result != 0 {
                        throw KafkaCompressionError(.corruptInput, codec: .zstd, "truncated zstd frame")
                    }
                    if words[2] == consumedBefore && produced == 0 && !filledOutput && result != 0 {
                        throw KafkaCompressionError(.corruptInput, codec: .zstd, "decoder made no progress")
                    }
                }
            }
        }
        return out.buffer
    }
}

/// libzstd's functions, resolved once per process.
struct ZstdLibrary: @unchecked Sendable {
    // @unchecked: immutable C function pointers; libzstd is thread-safe as long as each
    // stream is used by one thread, which every caller here guarantees.

    // size_t ZSTD_compressBound(size_t srcSize)
    typealias CompressBound = @convention(c) (Int) -> Int
    // size_t ZSTD_compress(void *dst, size_t dstCapacity, const void *src, size_t srcSize, int level)
    typealias Compress = @convention(c) (UnsafeMutableRawPointer, Int, UnsafeRawPointer, Int, CInt) -> Int
    // unsigned ZSTD_isError(size_t code)
    typealias IsError = @convention(c) (Int) -> CUnsignedInt
    // const char *ZSTD_getErrorName(size_t code)
    typealias ErrorName = @convention(c) (Int) -> UnsafePointer<CChar>
    // int ZSTD_maxCLevel(void)
    typealias MaxLevel = @convention(c) () -> CInt
    // ZSTD_DStream *ZSTD_createDStream(void)
    typealias CreateDStream = @convention(c) () -> OpaquePointer?
    // size_t ZSTD_freeDStream(ZSTD_DStream *); size_t ZSTD_initDStream(ZSTD_DStream *)
    typealias DStreamCall = @convention(c) (OpaquePointer) -> Int
    // size_t ZSTD_decompressStream(ZSTD_DStream *, ZSTD_outBuffer *output, ZSTD_inBuffer *input)
    typealias DecompressStream = @convention(c) (OpaquePointer, UnsafeMutableRawPointer, UnsafeMutableRawPointer) -> Int

    let compressBound: CompressBound
    let compress: Compress
    let isError: IsError
    let getErrorName: ErrorName
    let maxCLevel: MaxLevel
    let createDStream: CreateDStream
    let freeDStream: DStreamCall
    let initDStream: DStreamCall
    let decompressStream: DecompressStream

    func errorName(_ code: Int) -> String { String(cString: getErrorName(code)) }

    static let candidates: [String] = {
        #if canImport(Darwin)
        return ["libzstd.1.dylib", "/opt/homebrew/lib/libzstd.1.dylib", "/usr/local/lib/libzstd.1.dylib"]
        #else
        return ["libzstd.so.1", "libzstd.so"]
        #endif
    }()

    static let shared = load(candidates)

    static func load(_ candidates: [String]) -> Result<ZstdLibrary, KafkaCompressionError> {
        do {
            let library = try DynamicLibrary.open(candidates).get()
            return .success(ZstdLibrary(
                compressBound: try library.function("ZSTD_compressBound", as: CompressBound.self),
                compress: try library.function("ZSTD_compress", as: Compress.self),
                isError: try library.function("ZSTD_isError", as: IsError.self),
                getErrorName: try library.function("ZSTD_getErrorName", as: ErrorName.self),
                maxCLevel: try library.function("ZSTD_maxCLevel", as: MaxLevel.self),
                createDStream: try library.function("ZSTD_createDStream", as: CreateDStream.self),
                freeDStream: try library.function("ZSTD_freeDStream", as: DStreamCall.self),
                initDStream: try library.function("ZSTD_initDStream", as: DStreamCall.self),
                decompressStream: try library.function("ZSTD_decompressStream", as: DecompressStream.self)
            ))
        } catch {
            return .failure(KafkaCompressionError(
                .libraryUnavailable, codec: .zstd,
                "cannot load libzstd (\(error)); install the zstd runtime (Debian: apt-get install libzstd1)"))
        }
    }
}
