import AsyncHTTPClient
import Crypto
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
#if canImport(Glibc)
import Glibc
#endif

/// An object store in an S3 bucket (AWS, or any S3-compatible endpoint: MinIO, Ceph,
/// R2, moto) over the S3 REST API, signed with AWS Signature Version 4.
///
/// Every request is retried on its own (see `RetryPolicy`), so a multipart upload that
/// meets a few 503s resends only the parts that failed. Uploads carry `Content-MD5`, so
/// S3 refuses bytes damaged in transit, and signed payload hashes; downloads are checked
/// against `Content-Length` and `Content-Range`.
///
/// Owns an `HTTPClient` unless given one; call `shutdown()` when done.
public final class S3ObjectStore: ObjectStore {
    /// Where the bucket is and how to talk to it.
    public struct Configuration: Sendable {
        /// How the bucket appears in the URL.
        public enum AddressingStyle: Sendable, Hashable {
            /// Virtual-hosted for AWS's own endpoints when the bucket name allows it (no
            /// dots, which break TLS wildcard certificates), path-style otherwise and for
            /// every custom endpoint, since MinIO, moto and Ceph default to path-style.
            case automatic
            /// `https://endpoint/bucket/key`.
            case path
            /// `https://bucket.endpoint/key`.
            case virtualHosted
        }

        public var bucket: String
        /// Prepended to every key; listings strip it again. `s3://bucket/a/b` gives `a/b/`.
        public var keyPrefix: String
        /// The signing region. Default `us-east-1`.
        public var region: String
        /// A custom endpoint such as `http://127.0.0.1:9000`; nil means AWS
        /// (`https://s3.REGION.amazonaws.com`).
        public var endpoint: String?
        /// Default `.automatic`.
        public var addressingStyle: AddressingStyle
        public var credentials: AWSCredentials
        public var retry: RetryPolicy
        /// Objects larger than this go up as multipart uploads. Default 16 MiB.
        public var multipartThreshold: Int
        /// The size of each part but the last. Default 16 MiB; at least 5 MiB, S3's
        /// minimum, and raised as needed to stay within 10,000 parts.
        public var partSize: Int
        /// Parts of one upload in flight at once. Default 4: memory is this times
        /// `partSize`.
        public var maxConcurrentParts: Int
        /// Keys asked for per ListObjectsV2 page. Default 1000, S3's maximum.
        public var listPageSize: Int
        /// One attempt's limit, body included. Default 120 s (a 16 MiB part at ~140 KB/s).
        public var requestTimeout: TimeAmount
        /// Default 10 s.
        public var connectTimeout: TimeAmount

        public init(bucket: String, keyPrefix: String = "", region: String = "us-east-1", endpoint: String? = nil,
                    credentials: AWSCredentials) {
            self.bucket = bucket
            self.keyPrefix = keyPrefix
            self.region = region
            self.endpoint = endpoint
            self.addressingStyle = .automatic
            self.credentials = credentials
            self.retry = RetryPolicy()
            self.multipartThreshold = 16 << 20
            self.partSize = 16 << 20
            self.maxConcurrentParts = 4
            self.listPageSize = 1000
            self.requestTimeout = .seconds(120)
            self.connectTimeout = .seconds(10)
        }

        /// A configuration from the standard AWS environment: credentials as
        /// `AWSCredentials.resolve` finds them; region from `AWS_REGION`, then
        /// `AWS_DEFAULT_REGION`, then the profile's `region` in the config file, then
        /// `us-east-1`; endpoint from `AWS_ENDPOINT_URL_S3`, then `AWS_ENDPOINT_URL`.
        public static func fromEnvironment(bucket: String, keyPrefix: String = "",
                                           environment: [String: String] = ProcessInfo.processInfo.environment) throws -> Configuration {
            func nonEmpty(_ name: String) -> String? { environment[name].flatMap { $0.isEmpty ? nil : $0 } }
            let credentials = try AWSCredentials.resolve(environment: environment)
            let region = try nonEmpty("AWS_REGION") ?? nonEmpty("AWS_DEFAULT_REGION")
                ?? AWSConfigFiles(environment: environment).region() ?? "us-east-1"
            return Configuration(bucket: bucket, keyPrefix: keyPrefix, region: region,
                                 endpoint: nonEmpty("AWS_ENDPOINT_URL_S3") ?? nonEmpty("AWS_ENDPOINT_URL"),
                                 credentials: credentials)
        }
    }

    /// S3's smallest part but the last.
    public static let minimumPartSize = 5 << 20
    static let maximumParts = 10_000

    public let configuration: Configuration
    private let httpClient: HTTPClient
    private let ownsHTTPClient: Bool
    private let logger: Logger
    private let signer: SigV4Signer
    private let endpoint: Endpoint
    private let threadPool: NIOThreadPool

    /// Validates the configuration and, unless `httpClient` is given, creates a client
    /// that never follows redirects (a redirected request would carry a signature for
    /// the wrong host; S3 redirects mean a wrong region, reported as an error instead).
    public init(configuration: Configuration, httpClient: HTTPClient? = nil, logger: Logger,
                threadPool: NIOThreadPool = .singleton) throws {
        guard isValidBucketName(configuration.bucket) else {
            throw ObjectStoreError(.invalidURL, "invalid bucket name '\(configuration.bucket)'")
        }
        if !configuration.keyPrefix.isEmpty {
            try validateKey(configuration.keyPrefix.hasSuffix("/") ? String(configuration.keyPrefix.dropLast()) : configuration.keyPrefix)
        }
        guard configuration.partSize >= Self.minimumPartSize else {
            throw ObjectStoreError(.configuration, "partSize \(configuration.partSize) is below S3's minimum of 5 MiB")
        }
        guard configuration.retry.maxAttempts >= 1, configuration.maxConcurrentParts >= 1, configuration.listPageSize >= 1 else {
            throw ObjectStoreError(.configuration, "retry.maxAttempts, maxConcurrentParts and listPageSize must be at least 1")
        }
        self.configuration = configuration
        self.endpoint = try Endpoint(configuration: configuration)
        self.signer = SigV4Signer(credentials: configuration.credentials, region: configuration.region, service: "s3")
        self.logger = logger
        self.threadPool = threadPool
        if let httpClient {
            self.httpClient = httpClient
            self.ownsHTTPClient = false
        } else {
            let clientConfiguration = HTTPClient.Configuration(
                redirectConfiguration: .disallow,
                timeout: .init(connect: configuration.connectTimeout, read: configuration.requestTimeout),
                decompression: .disabled
            )
            self.httpClient = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: clientConfiguration)
            self.ownsHTTPClient = true
        }
    }

    public func shutdown() async throws {
        if ownsHTTPClient { try await httpClient.shutdown() }
    }

    // MARK: ObjectStore

    public func put(key: String, body: ByteBuffer) async throws {
        try validateKey(key)
        let size = body.readableBytes
        if size > configuration.multipartThreshold {
            try await multipartUpload(key: key, size: size, partSize: configuration.partSize) { range in
                body.getSlice(at: body.readerIndex + range.lowerBound, length: range.count)!
            }
        } else {
            try await putObject(key: key, body: body)
        }
    }

    public func putFile(key: String, path: String, partSize: Int?) async throws {
        try validateKey(key)
        let partSize = partSize ?? configuration.partSize
        guard partSize >= Self.minimumPartSize else {
            throw ObjectStoreError(.configuration, "part size \(partSize) is below S3's minimum of 5 MiB", key: key)
        }
        let file = try await threadPool.runIfActive { try OpenFile(path: path) }
        defer { file.close() }
        if file.size <= configuration.multipartThreshold {
            let body = try await threadPool.runIfActive { try file.read(0..<file.size) }
            try await putObject(key: key, body: body)
        } else {
            let pool = threadPool
            try await multipartUpload(key: key, size: file.size, partSize: partSize) { range in
                try await pool.runIfActive { try file.read(range) }
            }
        }
    }

    public func get(key: String, range: Range<Int>?) async throws -> ByteBuffer {
        try validateKey(key)
        try validateRange(range, key: key)
        if let range, range.isEmpty {
            // No HTTP range can ask for zero bytes; check the object is there and long enough.
            guard let meta = try await head(key: key) else { throw ObjectStoreError(.notFound, "no object", key: key) }
            guard range.lowerBound <= meta.size else {
                throw ObjectStoreError(.invalidRange, "range \(range) past the end of a \(meta.size)-byte object", key: key)
            }
            return ByteBuffer()
        }
        var call = Call(operation: "GetObject", method: .GET, key: key, objectKey: fullKey(key))
        if let range { call.headers.append(("range", "bytes=\(range.lowerBound)-\(range.upperBound - 1)")) }
        return try await perform(call) { reply in
            if let range {
                return try Self.checkedRange(reply, range: range, key: key)
            }
            return reply.body
        }
    }

    public func head(key: String) async throws -> ObjectMetadata? {
        try validateKey(key)
        let call = Call(operation: "HeadObject", method: .HEAD, key: key, objectKey: fullKey(key))
        do {
            return try await perform(call) { reply in
                guard let size = reply.headers.first(name: "content-length").flatMap({ Int($0) }) else {
                    throw ObjectStoreError(.invalidResponse, "HEAD answer without Content-Length", key: key)
                }
                return ObjectMetadata(key: key, size: size, etag: reply.headers.first(name: "etag"))
            }
        } catch let error as ObjectStoreError where error.code == .notFound && error.serviceCode != "NoSuchBucket" {
            return nil
        }
    }

    public func list(prefix: String) async throws -> [ObjectMetadata] {
        var results: [ObjectMetadata] = []
        var token: String?
        let keyPrefix = normalizedKeyPrefix
        repeat {
            var call = Call(operation: "ListObjectsV2", method: .GET, key: nil, objectKey: nil)
            call.query = [("list-type", "2"), ("prefix", keyPrefix + prefix), ("max-keys", String(configuration.listPageSize)),
                          ("encoding-type", "url")]
            if let token { call.query.append(("continuation-token", token)) }
            let page = try await perform(call) { reply in
                try S3XML.listPage(Array(reply.body.readableBytesView), urlEncoded: true)
            }
            for object in page.objects {
                guard object.key.utf8.starts(with: keyPrefix.utf8) else {
                    throw ObjectStoreError(.invalidResponse, "listed key '\(object.key)' outside the prefix '\(keyPrefix)'")
                }
                results.append(ObjectMetadata(key: String(object.key.dropFirst(keyPrefix.count)), size: object.size, etag: object.etag))
            }
            if page.isTruncated {
                guard let next = page.nextContinuationToken, !next.isEmpty else {
                    throw ObjectStoreError(.invalidResponse, "truncated ListObjectsV2 page without NextContinuationToken")
                }
                token = next
            } else {
                token = nil
            }
        } while token != nil
        return results
    }

    public func delete(key: String) async throws {
        try validateKey(key)
        let call = Call(operation: "DeleteObject", method: .DELETE, key: key, objectKey: fullKey(key))
        do {
            try await perform(call) { _ in }
        } catch let error as ObjectStoreError where error.serviceCode == "NoSuchKey" {
            // Some S3-compatible servers answer 404 where S3 answers 204.
        }
    }

    // MARK: Bucket

    /// Creates the bucket, succeeding when we already own it: for first-time setup of a
    /// local endpoint and for tests. Outside us-east-1 it sends the LocationConstraint.
    public func createBucket() async throws {
        var call = Call(operation: "CreateBucket", method: .PUT, key: nil, objectKey: nil)
        if configuration.region != "us-east-1" {
            call.body = ByteBuffer(string: "<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
                + "<LocationConstraint>\(S3XML.escape(configuration.region))</LocationConstraint></CreateBucketConfiguration>")
        } else {
            call.body = ByteBuffer()
        }
        do {
            try await perform(call) { _ in }
        } catch let error as ObjectStoreError where error.serviceCode == "BucketAlreadyOwnedByYou" {
        }
    }

    // MARK: Single and multipart uploads

    private func putObject(key: String, body: ByteBuffer) async throws {
        var call = Call(operation: "PutObject", method: .PUT, key: key, objectKey: fullKey(key))
        call.body = body
        try await perform(call) { _ in }
    }

    /// Uploads `size` bytes in parts read by `readPart`, several at a time, and aborts the
    /// upload if any part fails for good (a bucket lifecycle rule for incomplete
    /// multipart uploads cleans up after a process that dies before aborting).
    private func multipartUpload(key: String, size: Int, partSize requested: Int,
                                 readPart: @escaping @Sendable (Range<Int>) async throws -> ByteBuffer) async throws {
        let partSize = max(requested, (size + Self.maximumParts - 1) / Self.maximumParts)
        let partCount = max(1, (size + partSize - 1) / partSize)
        var create = Call(operation: "CreateMultipartUpload", method: .POST, key: key, objectKey: fullKey(key))
        create.query = [("uploads", "")]
        create.body = ByteBuffer()
        let uploadID = try await perform(create) { reply in try S3XML.uploadID(Array(reply.body.readableBytesView)) }
        logger.trace("multipart upload started", metadata: [
            LogKey.key: "\(key)", LogKey.uploadID: "\(uploadID)", LogKey.parts: "\(partCount)",
        ])
        do {
            let etags = try await withThrowingTaskGroup(of: (Int, String).self) { group in
                var etags = [String](repeating: "", count: partCount)
                var next = 0
                func start(_ index: Int) {
                    let range = (index * partSize)..<min(size, (index + 1) * partSize)
                    group.addTask {
                        let body = try await readPart(range)
                        return (index, try await self.uploadPart(key: key, uploadID: uploadID, number: index + 1, body: body))
                    }
                }
                while next < min(partCount, configuration.maxConcurrentParts) {
                    start(next)
                    next += 1
                }
                while let (index, etag) = try await group.next() {
                    etags[index] = etag
                    if next < partCount {
                        start(next)
                        next += 1
                    }
                }
                return etags
            }
            var complete = Call(operation: "CompleteMultipartUpload", method: .POST, key: key, objectKey: fullKey(key))
            complete.query = [("uploadId", uploadID)]
            complete.body = ByteBuffer(string: S3XML.completeMultipartUpload(parts: etags.enumerated().map { ($0.offset + 1, $0.element) }))
            do {
                try await perform(complete) { reply in
                    // S3 may answer 200 and then report a failure in the body.
                    if let error = S3XML.error(Array(reply.body.readableBytesView)) {
                        var failure = Self.classify(status: 500, serviceCode: error.code, message: error.message ?? "", key: key)
                        failure.message = "CompleteMultipartUpload: " + failure.message
                        throw failure
                    }
                }
            } catch let error as ObjectStoreError where error.serviceCode == "NoSuchUpload" && error.attempts > 1 {
                // An earlier attempt completed the upload and its answer was lost: the
                // upload is gone because it became the object. Confirm that it did.
                let expected = Self.multipartETag(parts: etags)
                guard let meta = try await head(key: key), meta.size == size, expected == nil || meta.etag == expected else {
                    throw error
                }
                logger.debug("multipart upload was completed by an attempt whose answer was lost", metadata: [
                    LogKey.key: "\(key)", LogKey.uploadID: "\(uploadID)",
                ])
            }
        } catch {
            try? await abortMultipartUpload(key: key, uploadID: uploadID)
            throw error
        }
    }

    /// The ETag S3 gives a multipart object (MD5 of the parts' MD5s, then `-N`), or nil
    /// when a part's ETag is not a plain MD5 (some encryption modes), so it cannot be known.
    static func multipartETag(parts: [String]) -> String? {
        var digests: [UInt8] = []
        for etag in parts {
            let hex = Array(etag.utf8.filter { $0 != UInt8(ascii: "\"") })
            guard hex.count == 32 else { return nil }
            for index in stride(from: 0, to: 32, by: 2) {
                guard let byte = UInt8(String(decoding: hex[index..<index + 2], as: UTF8.self), radix: 16) else { return nil }
                digests.append(byte)
            }
        }
        return "\"" + Insecure.MD5.hash(data: digests).hex + "-\(parts.count)\""
    }

    private func uploadPart(key: String, uploadID: String, number: Int, body: ByteBuffer) async throws -> String {
        var call = Call(operation: "UploadPart", method: .PUT, key: key, objectKey: fullKey(key))
        call.query = [("partNumber", String(number)), ("uploadId", uploadID)]
        call.body = body
        return try await perform(call) { reply in
            guard let etag = reply.headers.first(name: "etag"), !etag.isEmpty else {
                throw ObjectStoreError(.invalidResponse, "UploadPart \(number) answer without ETag", key: key)
            }
            return etag
        }
    }

    /// An upload started and neither completed nor aborted.
    public struct MultipartUpload: Sendable, Hashable {
        public var key: String
        public var uploadID: String
    }

    /// Multipart uploads in progress under the store's prefix: after a crash, the parts of
    /// an unfinished upload are billed until aborted.
    public func listMultipartUploads() async throws -> [MultipartUpload] {
        var uploads: [MultipartUpload] = []
        var markers: (key: String, uploadID: String)?
        let keyPrefix = normalizedKeyPrefix
        repeat {
            var call = Call(operation: "ListMultipartUploads", method: .GET, key: nil, objectKey: nil)
            call.query = [("uploads", ""), ("prefix", keyPrefix)]
            if let markers { call.query += [("key-marker", markers.key), ("upload-id-marker", markers.uploadID)] }
            let page = try await perform(call) { reply in
                guard let root = XMLElementNode.parse(Array(reply.body.readableBytesView)), root.name == "ListMultipartUploadsResult" else {
                    throw ObjectStoreError(.invalidResponse, "ListMultipartUploads answer is not a ListMultipartUploadsResult")
                }
                return root
            }
            for upload in page.children("Upload") {
                guard let key = upload.text("Key"), let id = upload.text("UploadId"), key.utf8.starts(with: keyPrefix.utf8) else { continue }
                uploads.append(MultipartUpload(key: String(key.dropFirst(keyPrefix.count)), uploadID: id))
            }
            if page.text("IsTruncated") == "true", let key = page.text("NextKeyMarker"), let id = page.text("NextUploadIdMarker") {
                markers = (key, id)
            } else {
                markers = nil
            }
        } while markers != nil
        return uploads
    }

    /// Abandons an upload and frees its parts. Aborting an upload that is already gone
    /// succeeds.
    public func abortMultipartUpload(key: String, uploadID: String) async throws {
        var call = Call(operation: "AbortMultipartUpload", method: .DELETE, key: key, objectKey: fullKey(key))
        call.query = [("uploadId", uploadID)]
        do {
            try await perform(call) { _ in }
        } catch let error as ObjectStoreError where error.serviceCode == "NoSuchUpload" {
        } catch {
            logger.warning("could not abort multipart upload; a lifecycle rule must remove its parts", metadata: [
                LogKey.key: "\(key)", LogKey.uploadID: "\(uploadID)", LogKey.error: "\(error)",
            ])
            throw error
        }
    }

    // MARK: Requests

    /// One S3 operation, before signing.
    struct Call: Sendable {
        var operation: String
        var method: HTTPMethod
        /// The caller's key, for errors and logs.
        var key: String?
        /// The full object key (prefix included) in the path; nil for bucket requests.
        var objectKey: String?
        var query: [(name: String, value: String)] = []
        var headers: [(name: String, value: String)] = []
        var body: ByteBuffer?
    }

    /// A complete answer: status, headers and the whole body.
    struct Reply: Sendable {
        var status: Int
        var headers: HTTPHeaders
        var body: ByteBuffer
    }

    /// Sends `call` until it succeeds and `accept` takes the answer, or the failure is
    /// final, or the retry budget is spent.
    ///
    /// Hashes are computed once; each attempt is signed with its own time. `accept` may
    /// throw an `.integrity` error to have the request tried again.
    @discardableResult
    func perform<Result: Sendable>(_ call: Call, accept: @Sendable (Reply) throws -> Result) async throws -> Result {
        let payloadHash = call.body.map(PayloadDigest.sha256Hex) ?? SigV4Signer.emptyPayloadHash
        var call = call
        if let body = call.body, call.method == .PUT, body.readableBytes > 0 {
            call.headers.append(("content-md5", PayloadDigest.md5Base64(body)))
        }
        var generator = SystemRandomNumberGenerator()
        var attempt = 0
        while true {
            attempt += 1
            var failure: ObjectStoreError
            do {
                let reply = try await send(call, payloadHash: payloadHash)
                if (200..<300).contains(reply.status) {
                    do {
                        return try accept(reply)
                    } catch var error as ObjectStoreError where error.code == .integrity || error.isRetryable {
                        error.isRetryable = true
                        failure = error
                    }
                } else {
                    failure = Self.failure(reply, call: call)
                }
            } catch let error as ObjectStoreError {
                guard error.isRetryable else { throw error }
                failure = error
            } catch {
                if Task.isCancelled { throw CancellationError() }
                failure = ObjectStoreError(.network, "\(call.operation): \(error)", key: call.key)
                failure.isRetryable = true
            }
            failure.attempts = attempt
            guard failure.isRetryable, attempt < configuration.retry.maxAttempts else {
                if failure.isRetryable { failure.message += " (retry budget of \(configuration.retry.maxAttempts) attempts spent)" }
                throw failure
            }
            let delay = configuration.retry.delay(beforeAttempt: attempt + 1, using: &generator)
            logger.debug("retrying S3 request", metadata: [
                LogKey.operation: "\(call.operation)", LogKey.key: "\(call.key ?? "")", LogKey.attempt: "\(attempt)",
                LogKey.error: "\(failure)", LogKey.delayMs: "\(delay.nanoseconds / 1_000_000)",
            ])
            try await Task.sleep(nanoseconds: UInt64(delay.nanoseconds))
        }
    }

    /// One signed attempt, with the whole body read.
    private func send(_ call: Call, payloadHash: String) async throws -> Reply {
        let encodedPath = endpoint.encodedPath(bucket: configuration.bucket, objectKey: call.objectKey, style: addressing)
        let host = endpoint.hostHeader(bucket: configuration.bucket, style: addressing)
        let date = AMZDate.now()
        var headers = call.headers
        headers.append(("host", host))
        headers.append(("x-amz-date", date.timestamp))
        headers.append(("x-amz-content-sha256", payloadHash))
        if let token = configuration.credentials.sessionToken { headers.append(("x-amz-security-token", token)) }
        let authorization = signer.authorization(
            .init(method: call.method.rawValue, encodedPath: encodedPath, query: call.query, headers: headers, payloadHash: payloadHash),
            date: date)
        let query = SigV4Signer.canonicalQuery(call.query)
        var request = HTTPClientRequest(url: endpoint.origin(host: host) + encodedPath + (query.isEmpty ? "" : "?" + query))
        request.method = call.method
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        request.headers.add(name: "authorization", value: authorization)
        if let body = call.body { request.body = .bytes(body) }
        logger.trace("S3 request", metadata: [
            LogKey.operation: "\(call.operation)", LogKey.key: "\(call.key ?? "")", LogKey.bytes: "\(call.body?.readableBytes ?? 0)",
        ])
        let response = try await httpClient.execute(request, timeout: configuration.requestTimeout, logger: logger)
        let status = Int(response.status.code)
        let contentLength = response.headers.first(name: "content-length").flatMap { Int($0) }
        let body: ByteBuffer
        if call.method == .HEAD {
            body = try await response.body.collect(upTo: 0)
        } else {
            // Error bodies are small XML; a success's size is announced, and a body longer
            // than announced is cut off by the collector.
            // Object reads take whatever was announced; without an announcement, S3's XML
            // answers stay well below 64 MiB.
            let successLimit = contentLength ?? (call.method == .GET && call.objectKey != nil ? Int.max : 64 << 20)
            let limit = (200..<300).contains(status) ? successLimit : min(contentLength ?? 1 << 20, 1 << 20)
            body = try await response.body.collect(upTo: limit)
        }
        if call.method != .HEAD, let contentLength, body.readableBytes != contentLength {
            var error = ObjectStoreError(.integrity, "\(call.operation): received \(body.readableBytes) bytes, Content-Length said \(contentLength)",
                                         key: call.key, httpStatus: status)
            error.isRetryable = true
            throw error
        }
        return Reply(status: status, headers: response.headers, body: body)
    }

    private var addressing: Configuration.AddressingStyle {
        switch configuration.addressingStyle {
        case .path, .virtualHosted: return configuration.addressingStyle
        case .automatic:
            return endpoint.isAWS && !configuration.bucket.contains(".") ? .virtualHosted : .path
        }
    }

    private var normalizedKeyPrefix: String {
        let prefix = configuration.keyPrefix
        return prefix.isEmpty || prefix.hasSuffix("/") ? prefix : prefix + "/"
    }

    private func fullKey(_ key: String) -> String { normalizedKeyPrefix + key }

    /// Checks a ranged answer is exactly the bytes asked for.
    static func checkedRange(_ reply: Reply, range: Range<Int>, key: String) throws -> ByteBuffer {
        if reply.status == 200 {
            // The server ignored the Range header and sent the whole object.
            guard range.upperBound <= reply.body.readableBytes else {
                throw ObjectStoreError(.invalidRange, "range \(range) past the end of a \(reply.body.readableBytes)-byte object", key: key)
            }
            return reply.body.getSlice(at: reply.body.readerIndex + range.lowerBound, length: range.count)!
        }
        guard reply.status == 206, let contentRange = reply.headers.first(name: "content-range"),
              let parsed = parseContentRange(contentRange) else {
            throw ObjectStoreError(.integrity, "ranged GET answered \(reply.status) without a valid Content-Range", key: key,
                                   httpStatus: reply.status)
        }
        guard parsed.range.lowerBound == range.lowerBound else {
            throw ObjectStoreError(.integrity, "asked for bytes \(range), got \(contentRange)", key: key, httpStatus: reply.status)
        }
        guard parsed.range == range else {
            if let total = parsed.total, range.upperBound > total {
                throw ObjectStoreError(.invalidRange, "range \(range) past the end of a \(total)-byte object", key: key)
            }
            throw ObjectStoreError(.integrity, "asked for bytes \(range), got \(contentRange)", key: key, httpStatus: reply.status)
        }
        guard reply.body.readableBytes == range.count else {
            throw ObjectStoreError(.integrity, "asked for \(range.count) bytes, received \(reply.body.readableBytes)", key: key)
        }
        return reply.body
    }

    /// `bytes 0-9/443` → (0..<10, 443); the total may be `*`.
    static func parseContentRange(_ value: String) -> (range: Range<Int>, total: Int?)? {
        guard value.hasPrefix("bytes ") else { return nil }
        let parts = value.dropFirst(6).split(separator: "/", maxSplits: 1)
        guard parts.count == 2 else { return nil }
        let bounds = parts[0].split(separator: "-", maxSplits: 1)
        guard bounds.count == 2, let first = Int(bounds[0]), let last = Int(bounds[1]), last >= first else { return nil }
        return (first..<(last + 1), parts[1] == "*" ? nil : Int(parts[1]))
    }

    /// An error for a non-2xx answer, with its code and whether to retry.
    static func failure(_ reply: Reply, call: Call) -> ObjectStoreError {
        let parsed = S3XML.error(Array(reply.body.readableBytesView))
        var message = "\(call.operation): \(parsed?.message ?? HTTPResponseStatus(statusCode: reply.status).reasonPhrase)"
        if reply.status == 301 || reply.status == 307 {
            let region = reply.headers.first(name: "x-amz-bucket-region").map { " (bucket region \($0))" } ?? ""
            message += "; S3 redirected the request: check the region and endpoint\(region)"
        }
        if let requestID = reply.headers.first(name: "x-amz-request-id") { message += " [request id \(requestID)]" }
        var error = classify(status: reply.status, serviceCode: parsed?.code, message: message, key: call.key)
        error.message = message
        return error
    }

    static func classify(status: Int, serviceCode: String?, message: String, key: String?) -> ObjectStoreError {
        let code: ObjectStoreError.Code
        var retryable = false
        switch (status, serviceCode) {
        // S3 answers 503 only to say slow down; a HEAD's 503 has no body to say so.
        case (_, "SlowDown"), (_, "Throttling"), (_, "ThrottlingException"), (_, "RequestLimitExceeded"), (429, _), (503, nil):
            code = .throttled
            retryable = true
        case (_, "RequestTimeout"):
            code = .network
            retryable = true
        case (_, "BadDigest"), (_, "IncompleteBody"):
            code = .integrity
            retryable = true
        case (_, "InvalidRange"), (416, _):
            code = .invalidRange
        case (404, _), (_, "NoSuchKey"), (_, "NoSuchBucket"), (_, "NoSuchUpload"):
            code = .notFound
        case (401, _), (403, _), (_, "AccessDenied"), (_, "InvalidAccessKeyId"), (_, "SignatureDoesNotMatch"),
             (_, "InvalidToken"), (_, "ExpiredToken"), (_, "TokenRefreshRequired"):
            code = .accessDenied
        case (500, _), (502, _), (503, _), (504, _), (_, "InternalError"):
            code = .server
            retryable = true
        default:
            code = .server
        }
        var error = ObjectStoreError(code, message, key: key, httpStatus: status, serviceCode: serviceCode)
        error.isRetryable = retryable
        return error
    }
}

/// Where requests go: scheme, host and port of the endpoint, and how to address a bucket.
struct Endpoint: Sendable {
    var scheme: String
    var host: String
    var port: Int?
    /// AWS's own endpoint, where virtual-hosted addressing is the default.
    var isAWS: Bool

    init(configuration: S3ObjectStore.Configuration) throws {
        guard let endpoint = configuration.endpoint else {
            scheme = "https"
            host = "s3.\(configuration.region).amazonaws.com" + (configuration.region.hasPrefix("cn-") ? ".cn" : "")
            port = nil
            isAWS = true
            return
        }
        guard let components = URLComponents(string: endpoint), let scheme = components.scheme?.lowercased(),
              scheme == "http" || scheme == "https", let host = components.host, !host.isEmpty else {
            throw ObjectStoreError(.invalidURL, "endpoint '\(endpoint)' is not an http(s)://host[:port] URL")
        }
        guard components.path.isEmpty || components.path == "/", components.query == nil else {
            throw ObjectStoreError(.invalidURL, "endpoint '\(endpoint)' must not have a path or query")
        }
        self.scheme = scheme
        self.host = host
        self.port = components.port
        self.isAWS = host.hasSuffix(".amazonaws.com") || host.hasSuffix(".amazonaws.com.cn")
    }

    func hostHeader(bucket: String, style: S3ObjectStore.Configuration.AddressingStyle) -> String {
        var value = style == .virtualHosted ? "\(bucket).\(host)" : host
        if host.contains(":") { value = "[\(value)]" }  // IPv6 literal
        if let port, port != (scheme == "https" ? 443 : 80) { value += ":\(port)" }
        return value
    }

    func origin(host: String) -> String { "\(scheme)://\(host)" }

    func encodedPath(bucket: String, objectKey: String?, style: S3ObjectStore.Configuration.AddressingStyle) -> String {
        let key = objectKey.map { SigV4Signer.uriEncode($0, encodeSlash: false) }
        switch style {
        case .virtualHosted: return "/" + (key ?? "")
        case .path, .automatic: return "/" + bucket + (key.map { "/" + $0 } ?? "")
        }
    }
}

/// Bucket names S3 accepts today: 3-63 characters of lower-case letters, digits, dots and
/// hyphens, starting and ending with a letter or digit.
func isValidBucketName(_ name: String) -> Bool {
    let bytes = Array(name.utf8)
    guard (3...63).contains(bytes.count) else { return false }
    func alnum(_ b: UInt8) -> Bool { (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(b) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(b) }
    guard alnum(bytes.first!), alnum(bytes.last!) else { return false }
    return bytes.allSatisfy { alnum($0) || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "-") }
}

/// A file read in parts by several tasks at once (pread needs no shared offset).
final class OpenFile: Sendable {
    let path: String
    let fd: Int32
    let size: Int

    init(path: String) throws {
        self.path = path
        fd = try Posix.open(path, O_RDONLY)
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            let error = Posix.error("stat", path)
            Glibc.close(fd)
            throw error
        }
        size = Int(st.st_size)
    }

    func read(_ range: Range<Int>) throws -> ByteBuffer {
        var buffer = ByteBufferAllocator().buffer(capacity: range.count)
        let n = try Posix.read(fd, into: &buffer, length: range.count, at: range.lowerBound, path: path)
        guard n == range.count else {
            throw ObjectStoreError(.io, "\(path) shrank while being uploaded: read \(n) of \(range.count) bytes at \(range.lowerBound)")
        }
        return buffer
    }

    func close() { Glibc.close(fd) }
}

/// Logger metadata keys of this module, in one place.
enum LogKey {
    static let key = "objectstore.key"
    static let operation = "objectstore.operation"
    static let attempt = "objectstore.attempt"
    static let delayMs = "objectstore.retry_delay_ms"
    static let error = "objectstore.error"
    static let uploadID = "objectstore.upload_id"
    static let parts = "objectstore.parts"
    static let bytes = "objectstore.bytes"
}
