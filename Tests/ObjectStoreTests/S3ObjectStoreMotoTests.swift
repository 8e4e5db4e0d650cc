import Crypto
import Foundation
import Logging
import NIOCore
@testable import ObjectStore
import XCTest

/// The S3 store against a real `moto_server` on loopback, with signatures verified, and
/// through a proxy that injects 500s, 503 SlowDowns and broken connections.
///
/// Skipped, saying why, when python3 or moto is missing (`scripts/setup-test-deps`
/// installs them).
final class S3ObjectStoreMotoTests: XCTestCase {
    private var harness: MotoHarness!
    private var stores: [S3ObjectStore] = []

    override func setUpWithError() throws {
        // Synchronous on purpose: the servers are spawned from XCTest's main thread, which
        // outlives them (see MotoHarness.spawn).
        harness = try MotoHarness.shared()
    }

    override func tearDown() async throws {
        _ = try? await harness?.arm([])
        for store in stores { try await store.shutdown() }
        stores = []
    }

    override class func tearDown() {
        MotoHarness.stopShared()
        super.tearDown()
    }

    /// A store on a fresh bucket; through the fault proxy unless `direct`.
    private func makeStore(direct: Bool = false, prefix: String = "", configure: (inout S3ObjectStore.Configuration) -> Void = { _ in })
        async throws -> S3ObjectStore {
        var configuration = S3ObjectStore.Configuration(
            bucket: "tributary-\(UUID().uuidString.lowercased().prefix(13))", keyPrefix: prefix, region: "us-east-1",
            endpoint: direct ? harness.motoEndpoint : harness.proxyEndpoint, credentials: harness.credentials)
        configuration.retry = RetryPolicy(maxAttempts: 6, baseDelay: .milliseconds(10), maxDelay: .milliseconds(200))
        configure(&configuration)
        var logger = Logger(label: "tributary.objectstore.test")
        logger.logLevel = .info
        let store = try S3ObjectStore(configuration: configuration, logger: logger)
        stores.append(store)
        try await store.createBucket()
        return store
    }

    private func bytes(_ count: Int, seed: UInt64 = 1) -> ByteBuffer {
        var state = seed &* 0x9E37_79B9_7F4A_7C15
        var buffer = ByteBufferAllocator().buffer(capacity: count)
        for _ in 0..<count / 8 {
            state ^= state << 13
            state ^= state >> 7
            state ^= state << 17
            buffer.writeInteger(state)
        }
        while buffer.readableBytes < count { buffer.writeInteger(UInt8(truncatingIfNeeded: buffer.readableBytes)) }
        return buffer
    }

    private func sha256(_ buffer: ByteBuffer) -> String {
        SHA256.hash(data: Array(buffer.readableBytesView)).map { String(format: "%02x", $0) }.joined()
    }

    // MARK: Operations

    func testPutGetRangeHeadListDelete() async throws {
        let store = try await makeStore(direct: true)
        let body = bytes(100_000)
        try await store.put(key: "weather/0/00000000000000000000.log", body: body)
        try await store.put(key: "weather/0/00000000000000000000.index", body: bytes(80, seed: 2))
        try await store.put(key: "weather/1/00000000000000000000.log", body: ByteBuffer())

        let whole = try await store.get(key: "weather/0/00000000000000000000.log")
        XCTAssertEqual(whole, body)
        let range = try await store.get(key: "weather/0/00000000000000000000.log", range: 4096..<8192)
        XCTAssertEqual(range, body.getSlice(at: 4096, length: 4096))
        let last = try await store.get(key: "weather/0/00000000000000000000.log", range: 99_999..<100_000)
        XCTAssertEqual(last, body.getSlice(at: 99_999, length: 1))
        let empty = try await store.get(key: "weather/1/00000000000000000000.log")
        XCTAssertEqual(empty.readableBytes, 0)
        await assertThrows(.invalidRange) { _ = try await store.get(key: "weather/0/00000000000000000000.log", range: 99_000..<100_001) }
        await assertThrows(.invalidRange) { _ = try await store.get(key: "weather/0/00000000000000000000.log", range: 200_000..<200_010) }
        await assertThrows(.notFound) { _ = try await store.get(key: "weather/9/missing.log") }

        let head = try await store.head(key: "weather/0/00000000000000000000.log")
        XCTAssertEqual(head?.size, 100_000)
        let md5 = Insecure.MD5.hash(data: Array(body.readableBytesView)).map { String(format: "%02x", $0) }.joined()
        XCTAssertEqual(head?.etag, "\"\(md5)\"", "S3's ETag of a single-part object is its MD5")
        let missing = try await store.head(key: "weather/9/missing.log")
        XCTAssertNil(missing)

        let listed = try await store.list(prefix: "weather/0/")
        XCTAssertEqual(listed.map(\.key), ["weather/0/00000000000000000000.index", "weather/0/00000000000000000000.log"])
        XCTAssertEqual(listed.map(\.size), [80, 100_000])
        let all = try await store.list(prefix: "")
        XCTAssertEqual(all.count, 3)

        try await store.delete(key: "weather/0/00000000000000000000.log")
        try await store.delete(key: "weather/0/00000000000000000000.log")
        let afterDelete = try await store.head(key: "weather/0/00000000000000000000.log")
        XCTAssertNil(afterDelete)
        let remaining = try await store.list(prefix: "weather/")
        XCTAssertEqual(remaining.map(\.key), ["weather/0/00000000000000000000.index", "weather/1/00000000000000000000.log"])
    }

    func testKeysWithCharactersThatNeedEncoding() async throws {
        let store = try await makeStore(direct: true)
        let keys = ["topic with spaces/0/a", "plus+and=equals&amp/b", "unicode-ሴ-ü/c", "tilde~star*(paren)/d"]
        for (i, key) in keys.enumerated() { try await store.put(key: key, body: bytes(10 + i)) }
        for (i, key) in keys.enumerated() {
            let read = try await store.get(key: key)
            XCTAssertEqual(read, bytes(10 + i), key)
        }
        let listed = try await store.list(prefix: "")
        XCTAssertEqual(Set(listed.map(\.key)), Set(keys))
        let plus = try await store.list(prefix: "plus+")
        XCTAssertEqual(plus.map(\.key), ["plus+and=equals&amp/b"])
    }

    func testListingPagesThroughContinuationTokens() async throws {
        let store = try await makeStore(direct: true) { $0.listPageSize = 7 }
        let keys = (0..<53).map { String(format: "t/0/%020d.log", $0 * 1000) }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (i, key) in keys.enumerated() {
                group.addTask { try await store.put(key: key, body: ByteBuffer(repeating: 1, count: i)) }
            }
            try await group.waitForAll()
        }
        try await store.put(key: "t/1/other.log", body: ByteBuffer(repeating: 1, count: 1))
        let listed = try await store.list(prefix: "t/0/")
        XCTAssertEqual(listed.map(\.key), keys, "every key once, in order, across 8 pages of 7")
        XCTAssertEqual(listed.map(\.size), Array(0..<53))
    }

    func testKeyPrefixIsAddedAndStripped() async throws {
        let store = try await makeStore(direct: true, prefix: "cluster-a/tier")
        try await store.put(key: "t/0/a", body: bytes(5))
        let listed = try await store.list(prefix: "t/")
        XCTAssertEqual(listed.map(\.key), ["t/0/a"])
        // The same bucket without the prefix sees where the object really is.
        var raw = store.configuration
        raw.keyPrefix = ""
        let unprefixed = try S3ObjectStore(configuration: raw, logger: Logger(label: "test"))
        stores.append(unprefixed)
        let rawListing = try await unprefixed.list(prefix: "")
        XCTAssertEqual(rawListing.map(\.key), ["cluster-a/tier/t/0/a"])
    }

    func testMultipartUploadOfAFileIn5MiBParts() async throws {
        let store = try await makeStore(direct: true)
        let body = bytes(20 * (1 << 20) + 123_457)
        let path = harness.directory.appendingPathComponent("segment-\(UUID().uuidString).log").path
        try Data(body.readableBytesView).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }

        try await store.putFile(key: "big/00000000000000000000.log", path: path, partSize: 5 << 20)
        let head = try await store.head(key: "big/00000000000000000000.log")
        XCTAssertEqual(head?.size, body.readableBytes)
        XCTAssertTrue(head?.etag?.hasSuffix("-5\"") ?? false, "five parts: \(head?.etag ?? "nil")")
        let read = try await store.get(key: "big/00000000000000000000.log")
        XCTAssertEqual(sha256(read), sha256(body))
        let tail = try await store.get(key: "big/00000000000000000000.log", range: (20 << 20)..<(20 << 20) + 123_457)
        XCTAssertEqual(tail, body.getSlice(at: 20 << 20, length: 123_457))
    }

    func testPutSwitchesToMultipartAboveTheThreshold() async throws {
        let store = try await makeStore(direct: true) {
            $0.multipartThreshold = 6 << 20
            $0.partSize = 5 << 20
        }
        let body = bytes(11 << 20, seed: 7)
        try await store.put(key: "buffer/large", body: body)
        let head = try await store.head(key: "buffer/large")
        XCTAssertTrue(head?.etag?.hasSuffix("-3\"") ?? false, "\(head?.etag ?? "nil")")
        let read = try await store.get(key: "buffer/large")
        XCTAssertEqual(sha256(read), sha256(body))
    }

    // MARK: Credentials

    func testAWrongSecretIsAccessDeniedWithoutRetrying() async throws {
        _ = try await makeStore(direct: true)
        var configuration = S3ObjectStore.Configuration(bucket: "tributary-denied", endpoint: harness.motoEndpoint,
                                                        credentials: .init(accessKeyID: harness.credentials.accessKeyID,
                                                                           secretAccessKey: "wrong-secret"))
        configuration.retry = RetryPolicy(maxAttempts: 5, baseDelay: .milliseconds(10))
        let store = try S3ObjectStore(configuration: configuration, logger: Logger(label: "test"))
        stores.append(store)
        do {
            try await store.put(key: "k", body: bytes(10))
            XCTFail("moto accepted a bad signature")
        } catch let error as ObjectStoreError {
            XCTAssertEqual(error.code, .accessDenied, "\(error)")
            XCTAssertEqual(error.attempts, 1, "not retried")
            XCTAssertEqual(error.httpStatus, 403)
        }
    }

    func testTemporaryCredentialsSendTheirSessionToken() async throws {
        let bootstrap = try await makeStore(direct: true)
        func store(_ credentials: AWSCredentials) throws -> S3ObjectStore {
            let store = try S3ObjectStore(configuration: .init(bucket: bootstrap.configuration.bucket, endpoint: harness.motoEndpoint,
                                                               credentials: credentials), logger: Logger(label: "test"))
            stores.append(store)
            return store
        }
        let session = try store(harness.sessionCredentials)
        try await session.put(key: "from-role", body: bytes(64))
        let read = try await session.get(key: "from-role")
        XCTAssertEqual(read, bytes(64))

        var wrongToken = harness.sessionCredentials
        wrongToken.sessionToken = "not-the-token"
        // (A GET, not a HEAD: a HEAD's error has no body to name InvalidToken.)
        await assertThrows(.accessDenied) { _ = try await store(wrongToken).get(key: "from-role") }
        await assertThrows(.accessDenied) { try await store(wrongToken).put(key: "from-role", body: self.bytes(1)) }
    }

    func testStoreFromURLAndEnvironment() async throws {
        let bootstrap = try await makeStore(direct: true)
        let environment = ["AWS_ACCESS_KEY_ID": harness.credentials.accessKeyID, "AWS_SECRET_ACCESS_KEY": harness.credentials.secretAccessKey,
                           "AWS_REGION": "us-east-1", "AWS_ENDPOINT_URL": harness.motoEndpoint, "HOME": harness.directory.path]
        let store = try XCTUnwrap(try ObjectStoreURL(parsing: "s3://\(bootstrap.configuration.bucket)/from-url")
            .makeStore(environment: environment, logger: Logger(label: "test")) as? S3ObjectStore)
        stores.append(store)
        try await store.put(key: "a/b", body: bytes(3))
        let viaBootstrap = try await bootstrap.list(prefix: "")
        XCTAssertEqual(viaBootstrap.map(\.key), ["from-url/a/b"])
        let read = try await store.get(key: "a/b")
        XCTAssertEqual(read, bytes(3))
    }

    // MARK: Faults

    func testRetriesThroughSlowDownAndInternalErrors() async throws {
        let store = try await makeStore()
        try await harness.arm(["503", "503", "500", "503"])
        let body = bytes(300_000)
        try await store.put(key: "f/put", body: body)
        var stats = try await harness.faultStats()
        XCTAssertEqual(stats.injected, 4)
        XCTAssertEqual(stats.forwarded, 1, "only the successful attempt reached moto")

        try await harness.arm(["500", "503"])
        let read = try await store.get(key: "f/put")
        XCTAssertEqual(read, body)
        try await harness.arm(["503"])
        let head = try await store.head(key: "f/put")
        XCTAssertEqual(head?.size, body.readableBytes)
        try await harness.arm(["503", "500"])
        let listed = try await store.list(prefix: "f/")
        XCTAssertEqual(listed.map(\.key), ["f/put"])
        try await harness.arm(["503"])
        try await store.delete(key: "f/put")
        stats = try await harness.faultStats()
        XCTAssertEqual(stats.pending, [])
        let gone = try await store.head(key: "f/put")
        XCTAssertNil(gone)
    }

    func testRetriesThroughDroppedConnectionsTruncatedBodiesAndLostAnswers() async throws {
        let store = try await makeStore()
        let body = bytes(2 << 20, seed: 3)
        // Dropped before moto saw it, and acted on by moto but the answer lost.
        try await harness.arm(["drop", "lose", "drop"])
        try await store.put(key: "d/object", body: body)
        var stats = try await harness.faultStats()
        XCTAssertEqual(stats.injected, 3)
        // Half a body, then the connection closes: the GET is retried, never returned short.
        try await harness.arm(["truncate", "truncate"])
        let read = try await store.get(key: "d/object")
        XCTAssertEqual(sha256(read), sha256(body))
        try await harness.arm(["truncate"])
        let range = try await store.get(key: "d/object", range: 1000..<500_000)
        XCTAssertEqual(range, body.getSlice(at: 1000, length: 499_000))
        stats = try await harness.faultStats()
        XCTAssertEqual(stats.injected, 1)
    }

    func testMultipartUploadRidesOutFaultsOnPartsAndOnCompletion() async throws {
        let store = try await makeStore {
            $0.maxConcurrentParts = 2
            $0.multipartThreshold = 5 << 20
        }
        let body = bytes(16 << 20, seed: 5)
        let path = harness.directory.appendingPathComponent("faulty-\(UUID().uuidString).log").path
        try Data(body.readableBytesView).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }

        // Faults on the UploadPart requests only.
        try await harness.arm(["503", "drop", "500", "503", "lose"], match: "partNumber=")
        try await store.putFile(key: "mp/a", path: path, partSize: 5 << 20)
        var stats = try await harness.faultStats()
        XCTAssertEqual(stats.injected, 5)
        var read = try await store.get(key: "mp/a")
        XCTAssertEqual(sha256(read), sha256(body))

        // CompleteMultipartUpload applied but its answer lost. moto completes the same
        // upload again on the retry; S3 may answer NoSuchUpload instead (injected here),
        // and then the store confirms the object (size and multipart ETag) rather than fail.
        let complete = "POST /\(store.configuration.bucket)/mp/b?uploadId="
        try await harness.arm(["lose"], match: complete)
        try await store.putFile(key: "mp/b", path: path, partSize: 5 << 20)
        stats = try await harness.faultStats()
        XCTAssertEqual(stats.injected, 1)
        read = try await store.get(key: "mp/b")
        XCTAssertEqual(sha256(read), sha256(body))

        try await harness.arm(["lose", "404:NoSuchUpload"], match: "POST /\(store.configuration.bucket)/mp/c?uploadId=")
        try await store.putFile(key: "mp/c", path: path, partSize: 5 << 20)
        stats = try await harness.faultStats()
        XCTAssertEqual(stats.injected, 2)
        read = try await store.get(key: "mp/c")
        XCTAssertEqual(sha256(read), sha256(body))

        // NoSuchUpload on the first attempt means the upload really is gone: an error.
        try await harness.arm(["404:NoSuchUpload"], match: "POST /\(store.configuration.bucket)/mp/d?uploadId=")
        await assertThrows(.notFound) { try await store.putFile(key: "mp/d", path: path, partSize: 5 << 20) }
        let missing = try await store.head(key: "mp/d")
        XCTAssertNil(missing)
    }

    func testFaultsBeyondTheRetryBudgetGiveAClearErrorAndLeaveNothingBehind() async throws {
        let store = try await makeStore {
            $0.retry = RetryPolicy(maxAttempts: 3, baseDelay: .milliseconds(5), maxDelay: .milliseconds(20))
            $0.multipartThreshold = 5 << 20
        }
        try await harness.arm(Array(repeating: "503", count: 10))
        do {
            try await store.put(key: "x/never", body: bytes(1000))
            XCTFail("put succeeded through persistent 503s")
        } catch let error as ObjectStoreError {
            XCTAssertEqual(error.code, .throttled)
            XCTAssertEqual(error.attempts, 3)
            XCTAssertEqual(error.httpStatus, 503)
            XCTAssertEqual(error.serviceCode, "SlowDown")
            XCTAssertEqual(error.key, "x/never")
            XCTAssertTrue(error.description.contains("after 3 attempts"), error.description)
            XCTAssertTrue(error.description.contains("retry budget"), error.description)
        }
        var stats = try await harness.faultStats()
        XCTAssertEqual(stats.injected, 3)

        try await harness.arm(Array(repeating: "drop", count: 10))
        do {
            _ = try await store.get(key: "x/never")
            XCTFail("get succeeded through dropped connections")
        } catch let error as ObjectStoreError {
            XCTAssertEqual(error.code, .network, "\(error)")
            XCTAssertEqual(error.attempts, 3)
        }

        // A multipart upload whose part keeps failing is aborted: no object, no upload left.
        let body = bytes(11 << 20, seed: 9)
        let path = harness.directory.appendingPathComponent("doomed-\(UUID().uuidString).log").path
        try Data(body.readableBytesView).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        try await harness.arm(Array(repeating: "500", count: 3), match: "partNumber=2&")
        await assertThrows(.server) { try await store.putFile(key: "x/doomed", path: path, partSize: 5 << 20) }
        stats = try await harness.faultStats()
        XCTAssertEqual(stats.injected, 3)
        try await harness.arm([])
        let head = try await store.head(key: "x/never")
        XCTAssertNil(head, "nothing partial at the key")
        let doomed = try await store.head(key: "x/doomed")
        XCTAssertNil(doomed)
        let uploads = try await store.listMultipartUploads()
        XCTAssertEqual(uploads, [], "the failed upload was aborted")
    }
}
