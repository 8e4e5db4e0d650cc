import Crypto
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import NIOCore

/// AWS Signature Version 4 (header form), as a pure function of the request.
///
/// No clock and no I/O inside: the caller passes the timestamp, so the published test
/// vectors can be checked exactly and a retried request is simply signed again with a
/// fresh time.
public struct SigV4Signer: Sendable {
    public var credentials: AWSCredentials
    public var region: String
    /// `s3` for S3; the test vectors use `service`.
    public var service: String

    public init(credentials: AWSCredentials, region: String, service: String) {
        self.credentials = credentials
        self.region = region
        self.service = service
    }

    /// A request as the signer sees it.
    public struct Request: Sendable {
        public var method: String
        /// The path exactly as sent on the wire, already URI-encoded (see `uriEncode`).
        public var encodedPath: String
        /// Query parameters, not yet encoded; a parameter without a value (`?uploads`)
        /// has an empty value.
        public var query: [(name: String, value: String)]
        /// Every header to be signed, `host` included. Names in any case.
        public var headers: [(name: String, value: String)]
        /// Lower-case hex SHA-256 of the body, or `UNSIGNED-PAYLOAD`.
        public var payloadHash: String

        public init(method: String, encodedPath: String, query: [(name: String, value: String)] = [],
                    headers: [(name: String, value: String)], payloadHash: String) {
            self.method = method
            self.encodedPath = encodedPath
            self.query = query
            self.headers = headers
            self.payloadHash = payloadHash
        }
    }

    /// The SHA-256 of an empty body, the payload hash of every GET, HEAD and DELETE.
    public static let emptyPayloadHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

    /// The query string in canonical form: names and values encoded, sorted by name then
    /// value. The store sends this same string, so what is signed is what is sent.
    public static func canonicalQuery(_ query: [(name: String, value: String)]) -> String {
        let encoded: [(name: String, value: String)] = query.map { item in
            (name: uriEncode(item.name, encodeSlash: true), value: uriEncode(item.value, encodeSlash: true))
        }
        let sorted = encoded.sorted { a, b in a.name == b.name ? a.value < b.value : a.name < b.name }
        return sorted.map { item in item.name + "=" + item.value }.joined(separator: "&")
    }

    /// Lower-cased names, sorted, with values trimmed and inner runs of spaces collapsed;
    /// repeated names are joined with commas.
    static func canonicalHeaders(_ headers: [(name: String, value: String)]) -> [(name: String, value: String)] {
        var merged: [String: String] = [:]
        for (name, value) in headers {
            let name = name.lowercased()
            let value = value.split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ")
            merged[name] = merged[name].map { $0 + "," + value } ?? value
        }
        return merged.sorted { $0.key < $1.key }.map { (name: $0.key, value: $0.value) }
    }

    public func canonicalRequest(_ request: Request) -> String {
        let headers = Self.canonicalHeaders(request.headers)
        return [
            request.method,
            request.encodedPath.isEmpty ? "/" : request.encodedPath,
            Self.canonicalQuery(request.query),
            headers.map { "\($0.name):\($0.value)\n" }.joined(),
            headers.map(\.name).joined(separator: ";"),
            request.payloadHash,
        ].joined(separator: "\n")
    }

    /// `20150830/us-east-1/service/aws4_request`.
    public func scope(date: AMZDate) -> String {
        "\(date.day)/\(region)/\(service)/aws4_request"
    }

    public func stringToSign(_ request: Request, date: AMZDate) -> String {
        let hash = SHA256.hash(data: Array(canonicalRequest(request).utf8))
        return "AWS4-HMAC-SHA256\n\(date.timestamp)\n\(scope(date: date))\n\(hash.hex)"
    }

    public func signature(_ request: Request, date: AMZDate) -> String {
        var key = SymmetricKey(data: Array("AWS4\(credentials.secretAccessKey)".utf8))
        for part in [date.day, region, service, "aws4_request"] {
            key = SymmetricKey(data: Array(HMAC<SHA256>.authenticationCode(for: Array(part.utf8), using: key)))
        }
        return HMAC<SHA256>.authenticationCode(for: Array(stringToSign(request, date: date).utf8), using: key).hex
    }

    /// The `Authorization` header value. The request's headers must already include
    /// `x-amz-date` (and `x-amz-security-token` when there is a session token).
    public func authorization(_ request: Request, date: AMZDate) -> String {
        let signed = Self.canonicalHeaders(request.headers).map(\.name).joined(separator: ";")
        return "AWS4-HMAC-SHA256 Credential=\(credentials.accessKeyID)/\(scope(date: date)), "
            + "SignedHeaders=\(signed), Signature=\(signature(request, date: date))"
    }

    /// URI-encodes as SigV4 wants: every byte except `A-Z a-z 0-9 - _ . ~` becomes `%XX`
    /// (upper-case hex), and `/` too unless it separates path segments.
    ///
    /// S3 paths are encoded once (other services encode twice), so a key's path on the
    /// wire and in the canonical request are the same string.
    public static func uriEncode(_ string: String, encodeSlash: Bool) -> String {
        let hex = Array("0123456789ABCDEF".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(string.utf8.count)
        for byte in string.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                 UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "~"):
                out.append(byte)
            case UInt8(ascii: "/") where !encodeSlash:
                out.append(byte)
            default:
                out += [UInt8(ascii: "%"), hex[Int(byte >> 4)], hex[Int(byte & 0xF)]]
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}

/// A SigV4 timestamp: `20150830T123600Z` and its day `20150830`, in UTC.
public struct AMZDate: Sendable, Hashable {
    public var timestamp: String
    public var day: String { String(timestamp.prefix(8)) }

    /// Parses `yyyyMMddTHHmmssZ`; the test vectors give their time this way.
    public init?(timestamp: String) {
        guard timestamp.utf8.count == 16 else { return nil }
        self.timestamp = timestamp
    }

    /// The time `secondsSinceEpoch` in UTC.
    public init(secondsSinceEpoch: Int) {
        var time = time_t(secondsSinceEpoch)
        var parts = tm()
        gmtime_r(&time, &parts)
        func pad(_ value: Int32, _ width: Int) -> String {
            let text = String(value)
            return String(repeating: "0", count: max(0, width - text.count)) + text
        }
        timestamp = pad(parts.tm_year + 1900, 4) + pad(parts.tm_mon + 1, 2) + pad(parts.tm_mday, 2) + "T"
            + pad(parts.tm_hour, 2) + pad(parts.tm_min, 2) + pad(parts.tm_sec, 2) + "Z"
    }

    /// The current time.
    public static func now() -> AMZDate {
        AMZDate(secondsSinceEpoch: Int(time(nil)))
    }
}

extension Sequence where Element == UInt8 {
    /// Lower-case hex, as SigV4 writes hashes and signatures.
    var hex: String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        for byte in self { out += [digits[Int(byte >> 4)], digits[Int(byte & 0xF)]] }
        return String(decoding: out, as: UTF8.self)
    }
}

/// Hashes of request bodies, computed without copying the buffer.
enum PayloadDigest {
    static func sha256Hex(_ buffer: ByteBuffer) -> String {
        var hasher = SHA256()
        buffer.withUnsafeReadableBytes { hasher.update(bufferPointer: $0) }
        return hasher.finalize().hex
    }

    /// Base64 MD5, the `Content-MD5` header: S3 rejects the upload (BadDigest) when the
    /// bytes it received hash differently.
    static func md5Base64(_ buffer: ByteBuffer) -> String {
        var hasher = Insecure.MD5()
        buffer.withUnsafeReadableBytes { hasher.update(bufferPointer: $0) }
        return base64(Array(hasher.finalize()))
    }
    static func base64(_ bytes: [UInt8]) -> String {
        Data(bytes).base64EncodedString()
    }
}
