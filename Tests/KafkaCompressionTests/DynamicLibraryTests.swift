@testable import KafkaCompression
import XCTest

/// gzip and zstd load their system libraries at run time; when that fails the error must
/// say what was tried and what to install, not crash or fail later in an unclear way.
final class DynamicLibraryTests: XCTestCase {
    func testAMissingLibraryNamesEveryCandidateTried() {
        guard case .failure(let error) = DynamicLibrary.open(["libtributary-missing.so.1", "libtributary-absent.so"]) else {
            return XCTFail("a library that does not exist loaded")
        }
        XCTAssert(error.message.contains("libtributary-missing.so.1"), error.message)
        XCTAssert(error.message.contains("libtributary-absent.so"), error.message)
    }

    func testAMissingZlibOrZstdIsLibraryUnavailableWithTheInstallHint() {
        guard case .failure(let gzip) = Zlib.load(["libtributary-missing-z.so.1"]),
              case .failure(let zstd) = ZstdLibrary.load(["libtributary-missing-zstd.so.1"]) else {
            return XCTFail("a library that does not exist loaded")
        }
        XCTAssertEqual(gzip.code, .libraryUnavailable)
        XCTAssertEqual(gzip.codec, .gzip)
        XCTAssert(gzip.description.contains("zlib1g"), gzip.description)
        XCTAssertEqual(zstd.code, .libraryUnavailable)
        XCTAssertEqual(zstd.codec, .zstd)
        XCTAssert(zstd.description.contains("libzstd1"), zstd.description)
    }

    func testALibraryWithoutTheSymbolIsUnavailable() {
        // libz loads but has no zstd functions: a wrong or too old library is refused whole.
        guard case .failure(let error) = ZstdLibrary.load(Zlib.candidates) else {
            return XCTFail("zlib was accepted as libzstd")
        }
        XCTAssertEqual(error.code, .libraryUnavailable)
        XCTAssert(error.message.contains("ZSTD_"), error.message)
    }
}
