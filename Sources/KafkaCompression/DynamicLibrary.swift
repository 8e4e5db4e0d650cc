#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A shared library opened with `dlopen` and kept open for the life of the process.
///
/// Loading at run time instead of linking is what lets `swift build` work on a machine
/// without the codec's -dev package: only the runtime `.so` is needed, and only by
/// processes that actually meet that codec.
struct DynamicLibrary: @unchecked Sendable {
    // @unchecked: the handle is written once in `open` and never closed, so sharing it
    // between threads is sharing an immutable value.
    let handle: UnsafeMutableRawPointer
    let path: String

    /// Opens the first of `candidates` that loads; the failure lists every name tried.
    static func open(_ candidates: [String]) -> Result<DynamicLibrary, DynamicLibraryError> {
        var reasons: [String] = []
        for name in candidates {
            if let handle = dlopen(name, RTLD_NOW | RTLD_LOCAL) {
                return .success(DynamicLibrary(handle: handle, path: name))
            }
            reasons.append(dlerror().map { String(cString: $0) } ?? "\(name): not found")
        }
        return .failure(DynamicLibraryError(message: reasons.joined(separator: "; ")))
    }

    /// Looks up a C function and casts it to its Swift `@convention(c)` type.
    ///
    /// The cast is only as right as `type`: every signature passed here is written out
    /// next to its C prototype.
    func function<T>(_ name: String, as type: T.Type) throws(DynamicLibraryError) -> T {
        guard let symbol = dlsym(handle, name) else {
            throw DynamicLibraryError(message: "\(path) has no symbol \(name)")
        }
        return unsafeBitCast(symbol, to: T.self)
    }
}

struct DynamicLibraryError: Error, Sendable, CustomStringConvertible {
    var message: String
    var description: String { message }
}
