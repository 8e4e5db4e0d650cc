import NIOCore
@testable import ObjectStore
import XCTest

/// The signer against AWS's published examples: the SigV4 test suite (`get-vanilla` and
/// friends, service `service`) and the S3 documentation's worked examples (service `s3`,
/// `x-amz-content-sha256` signed). Each expected signature was published by AWS and
/// recomputed independently (Python's hmac/hashlib) before being written here.
final class SigV4Tests: XCTestCase {
    private let suiteSigner = SigV4Signer(
        credentials: AWSCredentials(accessKeyID: "AKIDEXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
        region: "us-east-1", service: "service")
    private let suiteDate = AMZDate(timestamp: "20150830T123600Z")!

    private let s3Signer = SigV4Signer(
        credentials: AWSCredentials(accessKeyID: "AKIAIOSFODNN7EXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
        region: "us-east-1", service: "s3")
    private let s3Date = AMZDate(timestamp: "20130524T000000Z")!

    func testGetVanilla() {
        let request = SigV4Signer.Request(
            method: "GET", encodedPath: "/",
            headers: [("Host", "example.amazonaws.com"), ("X-Amz-Date", "20150830T123600Z")],
            payloadHash: SigV4Signer.emptyPayloadHash)
        XCTAssertEqual(suiteSigner.canonicalRequest(request), """
            GET
            /

            host:example.amazonaws.com
            x-amz-date:20150830T123600Z

            host;x-amz-date
            e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
            """)
        XCTAssertEqual(suiteSigner.stringToSign(request, date: suiteDate), """
            AWS4-HMAC-SHA256
            20150830T123600Z
            20150830/us-east-1/service/aws4_request
            bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63
            """)
        XCTAssertEqual(suiteSigner.authorization(request, date: suiteDate),
                       "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
                       + "SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31")
    }

    func testGetVanillaQueryOrderKeyCaseSortsParameters() {
        let request = SigV4Signer.Request(
            method: "GET", encodedPath: "/", query: [("Param2", "value2"), ("Param1", "value1")],
            headers: [("Host", "example.amazonaws.com"), ("X-Amz-Date", "20150830T123600Z")],
            payloadHash: SigV4Signer.emptyPayloadHash)
        XCTAssertEqual(suiteSigner.signature(request, date: suiteDate),
                       "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500")
    }

    func testGetUTF8PathIsPercentEncoded() {
        let path = "/" + SigV4Signer.uriEncode("ሴ", encodeSlash: false)
        XCTAssertEqual(path, "/%E1%88%B4")
        let request = SigV4Signer.Request(
            method: "GET", encodedPath: path,
            headers: [("Host", "example.amazonaws.com"), ("X-Amz-Date", "20150830T123600Z")],
            payloadHash: SigV4Signer.emptyPayloadHash)
        XCTAssertEqual(suiteSigner.signature(request, date: suiteDate),
                       "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85")
    }

    func testS3GetObjectWithRange() {
        let request = SigV4Signer.Request(
            method: "GET", encodedPath: "/test.txt",
            headers: [("Host", "examplebucket.s3.amazonaws.com"), ("Range", "bytes=0-9"),
                      ("x-amz-content-sha256", SigV4Signer.emptyPayloadHash), ("x-amz-date", "20130524T000000Z")],
            payloadHash: SigV4Signer.emptyPayloadHash)
        XCTAssertEqual(s3Signer.authorization(request, date: s3Date),
                       "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
                       + "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
                       + "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41")
    }

    func testS3PutObjectSignsThePayloadHash() {
        let body = ByteBuffer(string: "Welcome to Amazon S3.")
        let hash = PayloadDigest.sha256Hex(body)
        XCTAssertEqual(hash, "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072")
        let request = SigV4Signer.Request(
            method: "PUT", encodedPath: "/" + SigV4Signer.uriEncode("test$file.text", encodeSlash: false),
            headers: [("Host", "examplebucket.s3.amazonaws.com"), ("Date", "Fri, 24 May 2013 00:00:00 GMT"),
                      ("x-amz-date", "20130524T000000Z"), ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
                      ("x-amz-content-sha256", hash)],
            payloadHash: hash)
        XCTAssertEqual(s3Signer.signature(request, date: s3Date),
                       "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd")
    }

    func testS3ListObjectsEncodesAndSortsTheQuery() {
        let request = SigV4Signer.Request(
            method: "GET", encodedPath: "/", query: [("prefix", "J"), ("max-keys", "2")],
            headers: [("Host", "examplebucket.s3.amazonaws.com"),
                      ("x-amz-content-sha256", SigV4Signer.emptyPayloadHash), ("x-amz-date", "20130524T000000Z")],
            payloadHash: SigV4Signer.emptyPayloadHash)
        XCTAssertEqual(s3Signer.signature(request, date: s3Date),
                       "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7")
    }

    func testURIEncodingKeepsOnlyUnreservedCharacters() {
        XCTAssertEqual(SigV4Signer.uriEncode("a b+c/d~e_f.g-h*i", encodeSlash: false), "a%20b%2Bc/d~e_f.g-h%2Ai")
        XCTAssertEqual(SigV4Signer.uriEncode("a/b=c&d", encodeSlash: true), "a%2Fb%3Dc%26d")
        XCTAssertEqual(SigV4Signer.canonicalQuery([("uploads", "")]), "uploads=")
        XCTAssertEqual(SigV4Signer.canonicalQuery([("b", "2"), ("a", "x y"), ("a", "1")]), "a=1&a=x%20y&b=2")
    }

    func testHeaderValuesAreTrimmedAndRunsOfSpacesCollapsed() {
        let canonical = SigV4Signer.canonicalHeaders([("My-Header1", "  value1  "), ("my-header2", "\"a   b   c\"")])
        XCTAssertEqual(canonical.map(\.name), ["my-header1", "my-header2"])
        XCTAssertEqual(canonical.map(\.value), ["value1", "\"a b c\""])
    }

    func testDatesAreFormattedInUTC() {
        XCTAssertEqual(AMZDate(secondsSinceEpoch: 1_440_938_160).timestamp, "20150830T123600Z")
        XCTAssertEqual(AMZDate(secondsSinceEpoch: 0).day, "19700101")
    }

    func testContentMD5IsBase64OfTheDigest() {
        // RFC 1321's "abc" vector: 900150983cd24fb0d6963f7d28e17f72.
        XCTAssertEqual(PayloadDigest.md5Base64(ByteBuffer(string: "abc")), "kAFQmDzST7DWlj99KOF/cg==")
    }
}
