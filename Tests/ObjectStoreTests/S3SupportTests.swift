import Foundation
import NIOCore
import NIOHTTP1
@testable import ObjectStore
import XCTest

/// The S3 store's parts that need no server: URLs, credentials and region lookup,
/// addressing, retry delays, XML answers and response checks.
final class S3SupportTests: XCTestCase {
    // MARK: Store URLs

    func testFileURLsNameAnAbsolutePath() throws {
        XCTAssertEqual(try ObjectStoreURL(parsing: "file:///var/lib/tributary/tier"), .local(path: "/var/lib/tributary/tier"))
        XCTAssertEqual(try ObjectStoreURL(parsing: "file://localhost/tmp/x"), .local(path: "/tmp/x"))
        XCTAssertEqual(try ObjectStoreURL(parsing: "file:///tmp/with%20space"), .local(path: "/tmp/with space"))
        for bad in ["file://otherhost/tmp", "file:relative", "file:///", "ftp://x/y", "not a url", "/plain/path"] {
            XCTAssertThrowsError(try ObjectStoreURL(parsing: bad), bad) { error in
                XCTAssertEqual((error as? ObjectStoreError)?.code, .invalidURL, "\(bad): \(error)")
            }
        }
    }

    func testS3URLsNameABucketAndPrefixWithOptionalOverrides() throws {
        XCTAssertEqual(try ObjectStoreURL(parsing: "s3://my-bucket"),
                       .s3(bucket: "my-bucket", prefix: "", region: nil, endpoint: nil, addressing: nil))
        XCTAssertEqual(try ObjectStoreURL(parsing: "s3://my-bucket/tiered/cluster-1/"),
                       .s3(bucket: "my-bucket", prefix: "tiered/cluster-1", region: nil, endpoint: nil, addressing: nil))
        XCTAssertEqual(try ObjectStoreURL(parsing: "s3://b.with.dots/p?region=eu-west-1&endpoint=http://127.0.0.1:9000&addressing=path"),
                       .s3(bucket: "b.with.dots", prefix: "p", region: "eu-west-1", endpoint: "http://127.0.0.1:9000", addressing: .path))
        XCTAssertEqual(try ObjectStoreURL(parsing: "s3://bucket/a/b").description, "s3://bucket/a/b")
        for bad in ["s3://", "s3://UpperCase/x", "s3://ab", "s3://bucket/a/../b", "s3://bucket/x?colour=blue", "s3://bucket?region="] {
            XCTAssertThrowsError(try ObjectStoreURL(parsing: bad), bad) { error in
                XCTAssertEqual((error as? ObjectStoreError)?.code, .invalidURL, "\(bad): \(error)")
            }
        }
    }

    func testMakeStoreBuildsTheRightStore() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tributary-url-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let local = try ObjectStoreURL(parsing: "file://" + directory).makeStore(logger: .init(label: "test"))
        XCTAssertTrue(local is LocalObjectStore)
        let environment = ["AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": "secret", "AWS_REGION": "eu-central-1",
                           "AWS_ENDPOINT_URL": "http://127.0.0.1:1", "HOME": directory]
        let s3 = try ObjectStoreURL(parsing: "s3://bucket/prefix?region=ap-south-1").makeStore(environment: environment, logger: .init(label: "test"))
        let store = try XCTUnwrap(s3 as? S3ObjectStore)
        XCTAssertEqual(store.configuration.region, "ap-south-1", "the URL wins over the environment")
        XCTAssertEqual(store.configuration.endpoint, "http://127.0.0.1:1")
        XCTAssertEqual(store.configuration.keyPrefix, "prefix")
        try await store.shutdown()
        XCTAssertThrowsError(try ObjectStoreURL(parsing: "s3://bucket").makeStore(environment: ["HOME": directory], logger: .init(label: "test"))) {
            XCTAssertEqual(($0 as? ObjectStoreError)?.code, .configuration)
        }
    }

    // MARK: Credentials and region

    private func temporaryFile(_ contents: String) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("tributary-aws-\(UUID().uuidString)").path
        try contents.write(toFile: path, atomically: true, encoding: .utf8)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
        return path
    }

    func testEnvironmentCredentialsComeFirst() throws {
        let credentials = try AWSCredentials.resolve(environment: [
            "AWS_ACCESS_KEY_ID": "AKIDENV", "AWS_SECRET_ACCESS_KEY": "envsecret", "AWS_SESSION_TOKEN": "token",
            "AWS_SHARED_CREDENTIALS_FILE": try temporaryFile("[default]\naws_access_key_id = FROMFILE\naws_secret_access_key = x\n"),
        ])
        XCTAssertEqual(credentials, AWSCredentials(accessKeyID: "AKIDENV", secretAccessKey: "envsecret", sessionToken: "token"))
        XCTAssertFalse(credentials.description.contains("envsecret"), "the secret is never printed")
        XCTAssertThrowsError(try AWSCredentials.resolve(environment: ["AWS_ACCESS_KEY_ID": "only-the-id"]))
    }

    func testSharedCredentialsFileProfiles() throws {
        let file = try temporaryFile("""
            # comment
            [default]
            aws_access_key_id = AKIDDEFAULT
            aws_secret_access_key = defaultsecret

            [tiering]
            aws_access_key_id=AKIDTIER
            aws_secret_access_key=tier/secret+with=equals
            aws_session_token = tiertoken
            ; another comment
            """)
        let none = "/nonexistent/tributary-config"
        let byDefault = try AWSCredentials.resolve(environment: ["AWS_SHARED_CREDENTIALS_FILE": file, "AWS_CONFIG_FILE": none])
        XCTAssertEqual(byDefault, AWSCredentials(accessKeyID: "AKIDDEFAULT", secretAccessKey: "defaultsecret"))
        let profile = try AWSCredentials.resolve(environment: ["AWS_SHARED_CREDENTIALS_FILE": file, "AWS_PROFILE": "tiering", "AWS_CONFIG_FILE": none])
        XCTAssertEqual(profile, AWSCredentials(accessKeyID: "AKIDTIER", secretAccessKey: "tier/secret+with=equals", sessionToken: "tiertoken"))
        XCTAssertThrowsError(try AWSCredentials.resolve(environment: ["AWS_SHARED_CREDENTIALS_FILE": file, "AWS_PROFILE": "missing",
                                                                      "AWS_CONFIG_FILE": none])) { error in
            XCTAssertEqual((error as? ObjectStoreError)?.code, .configuration)
            XCTAssertTrue("\(error)".contains("missing"), "\(error)")
        }
    }

    func testHomeDirectoryFilesAndConfigFileProfilesAndRegion() throws {
        let home = FileManager.default.temporaryDirectory.appendingPathComponent("tributary-home-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: home + "/.aws", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: home) }
        try "[default]\naws_access_key_id = AKIDHOME\naws_secret_access_key = homesecret\n"
            .write(toFile: home + "/.aws/credentials", atomically: true, encoding: .utf8)
        try "[default]\nregion = eu-west-3\n[profile other]\nregion = us-west-2\naws_access_key_id = AKIDCFG\naws_secret_access_key = cfg\ns3 =\n  addressing_style = path\n"
            .write(toFile: home + "/.aws/config", atomically: true, encoding: .utf8)

        let fromHome = try S3ObjectStore.Configuration.fromEnvironment(bucket: "b", environment: ["HOME": home])
        XCTAssertEqual(fromHome.credentials.accessKeyID, "AKIDHOME")
        XCTAssertEqual(fromHome.region, "eu-west-3")
        XCTAssertNil(fromHome.endpoint)

        let other = try S3ObjectStore.Configuration.fromEnvironment(bucket: "b", environment: ["HOME": home, "AWS_PROFILE": "other"])
        XCTAssertEqual(other.credentials.accessKeyID, "AKIDCFG", "credentials from the config file's [profile other]")
        XCTAssertEqual(other.region, "us-west-2")

        let overridden = try S3ObjectStore.Configuration.fromEnvironment(bucket: "b", environment: [
            "HOME": home, "AWS_DEFAULT_REGION": "sa-east-1", "AWS_ENDPOINT_URL": "http://localhost:9000",
            "AWS_ENDPOINT_URL_S3": "http://localhost:9001",
        ])
        XCTAssertEqual(overridden.region, "sa-east-1")
        XCTAssertEqual(overridden.endpoint, "http://localhost:9001", "the S3-specific endpoint wins")
        let regionFirst = try S3ObjectStore.Configuration.fromEnvironment(bucket: "b", environment: [
            "HOME": home, "AWS_REGION": "ca-central-1", "AWS_DEFAULT_REGION": "sa-east-1",
        ])
        XCTAssertEqual(regionFirst.region, "ca-central-1")
    }

    // MARK: Addressing

    private func endpoint(_ url: String?, region: String = "us-east-1") throws -> Endpoint {
        var configuration = S3ObjectStore.Configuration(bucket: "bucket", region: region, endpoint: url,
                                                        credentials: .init(accessKeyID: "a", secretAccessKey: "b"))
        configuration.endpoint = url
        return try Endpoint(configuration: configuration)
    }

    func testAddressingStyles() throws {
        let aws = try endpoint(nil, region: "eu-west-1")
        XCTAssertTrue(aws.isAWS)
        XCTAssertEqual(aws.hostHeader(bucket: "bucket", style: .virtualHosted), "bucket.s3.eu-west-1.amazonaws.com")
        XCTAssertEqual(aws.encodedPath(bucket: "bucket", objectKey: "a b/c+d", style: .virtualHosted), "/a%20b/c%2Bd")
        XCTAssertEqual(aws.origin(host: "bucket.s3.eu-west-1.amazonaws.com"), "https://bucket.s3.eu-west-1.amazonaws.com")

        let minio = try endpoint("http://127.0.0.1:9000")
        XCTAssertFalse(minio.isAWS)
        XCTAssertEqual(minio.hostHeader(bucket: "bucket", style: .path), "127.0.0.1:9000")
        XCTAssertEqual(minio.encodedPath(bucket: "bucket", objectKey: "k/1", style: .path), "/bucket/k/1")
        XCTAssertEqual(minio.encodedPath(bucket: "bucket", objectKey: nil, style: .path), "/bucket")
        XCTAssertEqual(minio.hostHeader(bucket: "bucket", style: .virtualHosted), "bucket.127.0.0.1:9000")

        let defaultPort = try endpoint("https://storage.example.com:443/")
        XCTAssertEqual(defaultPort.hostHeader(bucket: "bucket", style: .path), "storage.example.com")
        for bad in ["ftp://x", "http://", "http://host/path", "no scheme"] {
            XCTAssertThrowsError(try endpoint(bad), bad)
        }
    }

    // MARK: Retries

    func testRetryDelaysGrowExponentiallyUpToTheCapWithFullJitter() {
        let policy = RetryPolicy(maxAttempts: 10, baseDelay: .milliseconds(100), maxDelay: .seconds(2))
        XCTAssertEqual(policy.delayCap(beforeAttempt: 2), .milliseconds(100))
        XCTAssertEqual(policy.delayCap(beforeAttempt: 3), .milliseconds(200))
        XCTAssertEqual(policy.delayCap(beforeAttempt: 6), .milliseconds(1600))
        XCTAssertEqual(policy.delayCap(beforeAttempt: 7), .seconds(2))
        XCTAssertEqual(policy.delayCap(beforeAttempt: 100), .seconds(2), "no overflow for large attempt numbers")
        var generator = SystemRandomNumberGenerator()
        let delays = (0..<200).map { _ in policy.delay(beforeAttempt: 4, using: &generator) }
        XCTAssertTrue(delays.allSatisfy { $0 >= .zero && $0 <= .milliseconds(400) })
        XCTAssertGreaterThan(Set(delays.map(\.nanoseconds)).count, 100, "delays are spread, not fixed")
    }

    func testFailuresAreClassifiedAndOnlyTransientOnesRetried() {
        func check(_ status: Int, _ code: String?, _ expected: ObjectStoreError.Code, retry: Bool, line: UInt = #line) {
            let error = S3ObjectStore.classify(status: status, serviceCode: code, message: "m", key: "k")
            XCTAssertEqual(error.code, expected, line: line)
            XCTAssertEqual(error.isRetryable, retry, line: line)
        }
        check(503, "SlowDown", .throttled, retry: true)
        check(429, nil, .throttled, retry: true)
        check(503, nil, .throttled, retry: true)
        check(503, "ServiceUnavailable", .server, retry: true)
        check(500, "InternalError", .server, retry: true)
        check(502, nil, .server, retry: true)
        check(504, nil, .server, retry: true)
        check(400, "RequestTimeout", .network, retry: true)
        check(400, "BadDigest", .integrity, retry: true)
        check(404, "NoSuchKey", .notFound, retry: false)
        check(404, "NoSuchBucket", .notFound, retry: false)
        check(403, "SignatureDoesNotMatch", .accessDenied, retry: false)
        check(403, "AccessDenied", .accessDenied, retry: false)
        check(400, "InvalidToken", .accessDenied, retry: false)
        check(400, "ExpiredToken", .accessDenied, retry: false)
        check(416, "InvalidRange", .invalidRange, retry: false)
        check(400, "InvalidArgument", .server, retry: false)
        check(501, "NotImplemented", .server, retry: false)
    }

    // MARK: Answers

    func testListPageParsing() throws {
        let xml = """
            <?xml version="1.0" encoding="UTF-8"?>
            <ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
              <Name>bucket</Name><Prefix>p%2F</Prefix><KeyCount>2</KeyCount><MaxKeys>2</MaxKeys>
              <EncodingType>url</EncodingType><IsTruncated>true</IsTruncated>
              <Contents><Key>p/a+b%2Bc</Key><Size>10</Size><ETag>&quot;abc&quot;</ETag></Contents>
              <Contents><Key>p/%E1%88%B4</Key><Size>0</Size></Contents>
              <NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</NextContinuationToken>
            </ListBucketResult>
            """
        let page = try S3XML.listPage(Array(xml.utf8), urlEncoded: true)
        XCTAssertEqual(page.objects.map(\.key), ["p/a b+c", "p/ሴ"])
        XCTAssertEqual(page.objects.map(\.size), [10, 0])
        XCTAssertEqual(page.objects.map(\.etag), ["\"abc\"", nil])
        XCTAssertTrue(page.isTruncated)
        XCTAssertEqual(page.nextContinuationToken, "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=")
        XCTAssertThrowsError(try S3XML.listPage(Array("<Error/>".utf8), urlEncoded: true))
        XCTAssertThrowsError(try S3XML.listPage(Array("not xml".utf8), urlEncoded: true))
    }

    func testErrorAndMultipartAnswers() throws {
        let error = S3XML.error(Array("<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>".utf8))
        XCTAssertEqual(error?.code, "SlowDown")
        XCTAssertEqual(error?.message, "Please reduce your request rate.")
        XCTAssertNil(S3XML.error(Array("<CompleteMultipartUploadResult><ETag>x</ETag></CompleteMultipartUploadResult>".utf8)))
        XCTAssertEqual(try S3XML.uploadID(Array(
            "<InitiateMultipartUploadResult><Bucket>b</Bucket><Key>k</Key><UploadId>VXBsb2FkIElE</UploadId></InitiateMultipartUploadResult>".utf8)),
            "VXBsb2FkIElE")
        XCTAssertEqual(S3XML.completeMultipartUpload(parts: [(1, "\"a\""), (2, "\"b\"")]),
                       "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
                       + "<Part><PartNumber>1</PartNumber><ETag>&quot;a&quot;</ETag></Part>"
                       + "<Part><PartNumber>2</PartNumber><ETag>&quot;b&quot;</ETag></Part></CompleteMultipartUpload>")
    }

    func testRangedAnswersMustBeExactlyTheRangeAsked() throws {
        func reply(_ status: Int, _ contentRange: String?, _ body: String) -> S3ObjectStore.Reply {
            var headers = HTTPHeaders()
            if let contentRange { headers.add(name: "content-range", value: contentRange) }
            return .init(status: status, headers: headers, body: ByteBuffer(string: body))
        }
        XCTAssertEqual(try S3ObjectStore.checkedRange(reply(206, "bytes 2-4/10", "cde"), range: 2..<5, key: "k"), ByteBuffer(string: "cde"))
        XCTAssertEqual(try S3ObjectStore.checkedRange(reply(200, nil, "abcdefghij"), range: 2..<5, key: "k"), ByteBuffer(string: "cde"),
                       "a server that ignores Range sends everything; we slice")
        func code(_ r: S3ObjectStore.Reply, _ range: Range<Int>) -> ObjectStoreError.Code? {
            do {
                _ = try S3ObjectStore.checkedRange(r, range: range, key: "k")
                return nil
            } catch {
                return (error as? ObjectStoreError)?.code
            }
        }
        XCTAssertEqual(code(reply(206, "bytes 8-9/10", "ij"), 8..<12), .invalidRange, "the object is shorter than the range")
        XCTAssertEqual(code(reply(206, "bytes 3-5/10", "def"), 2..<5), .integrity, "a different range")
        XCTAssertEqual(code(reply(206, nil, "cde"), 2..<5), .integrity, "no Content-Range")
        XCTAssertEqual(code(reply(206, "bytes 2-4/10", "cd"), 2..<5), .integrity, "short body")
        XCTAssertEqual(code(reply(200, nil, "abc"), 2..<5), .invalidRange)
        XCTAssertEqual(S3ObjectStore.parseContentRange("bytes 0-0/*")?.range, 0..<1)
        XCTAssertNil(S3ObjectStore.parseContentRange("bytes 5-4/10"))
        XCTAssertNil(S3ObjectStore.parseContentRange("items 0-1/2"))
    }

    func testConfigurationValidation() throws {
        let credentials = AWSCredentials(accessKeyID: "a", secretAccessKey: "b")
        var small = S3ObjectStore.Configuration(bucket: "bucket", credentials: credentials)
        small.partSize = 1 << 20
        XCTAssertThrowsError(try S3ObjectStore(configuration: small, logger: .init(label: "test")))
        XCTAssertThrowsError(try S3ObjectStore(configuration: .init(bucket: "Bad_Bucket", credentials: credentials), logger: .init(label: "test")))
        XCTAssertThrowsError(try S3ObjectStore(configuration: .init(bucket: "bucket", keyPrefix: "../x", credentials: credentials),
                                               logger: .init(label: "test")))
    }
}
