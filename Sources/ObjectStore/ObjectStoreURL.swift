import AsyncHTTPClient
import Foundation
import Logging

/// Where a store lives, as the broker's `remote.storage.url` names it.
///
/// - `file:///absolute/path`: a `LocalObjectStore` rooted there.
/// - `s3://bucket` or `s3://bucket/key/prefix`: an `S3ObjectStore`, configured from the
///   AWS environment (`S3ObjectStore.Configuration.fromEnvironment`). Optional query
///   parameters override it, for setups with several endpoints:
///   `?region=eu-west-1&endpoint=http://127.0.0.1:9000&addressing=path|virtual`.
public enum ObjectStoreURL: Sendable, Hashable, CustomStringConvertible {
    /// A directory on this machine.
    case local(path: String)
    /// A bucket and key prefix (without slashes at either end), with the overrides the
    /// URL's query gave; nil ones come from the environment.
    case s3(bucket: String, prefix: String, region: String?, endpoint: String?, addressing: S3ObjectStore.Configuration.AddressingStyle?)

    /// Parses a store URL; throws `.invalidURL` saying what is wrong.
    public init(parsing text: String) throws {
        guard let components = URLComponents(string: text), let scheme = components.scheme?.lowercased() else {
            throw ObjectStoreError(.invalidURL, "'\(text)' is not a URL (expected file:///path or s3://bucket/prefix)")
        }
        switch scheme {
        case "file":
            guard components.host == nil || components.host == "" || components.host == "localhost" else {
                throw ObjectStoreError(.invalidURL, "'\(text)': a file URL names a local path (file:///path), not host '\(components.host!)'")
            }
            let path = components.percentEncodedPath.removingPercentEncoding ?? components.path
            guard path.hasPrefix("/"), path.count > 1 else {
                throw ObjectStoreError(.invalidURL, "'\(text)': a file URL needs an absolute path (file:///path)")
            }
            guard components.query == nil else { throw ObjectStoreError(.invalidURL, "'\(text)': a file URL takes no query") }
            self = .local(path: path)
        case "s3":
            guard let bucket = components.host, isValidBucketName(bucket) else {
                throw ObjectStoreError(.invalidURL, "'\(text)': '\(components.host ?? "")' is not a valid bucket name")
            }
            var prefix = components.percentEncodedPath.removingPercentEncoding ?? components.path
            while prefix.hasPrefix("/") { prefix.removeFirst() }
            while prefix.hasSuffix("/") { prefix.removeLast() }
            if !prefix.isEmpty {
                do {
                    try validateKey(prefix)
                } catch let error as ObjectStoreError {
                    throw ObjectStoreError(.invalidURL, "'\(text)': bad key prefix: \(error.message)")
                }
            }
            var region: String?
            var endpoint: String?
            var addressing: S3ObjectStore.Configuration.AddressingStyle?
            for item in components.queryItems ?? [] {
                switch (item.name, item.value) {
                case ("region", let value?) where !value.isEmpty: region = value
                case ("endpoint", let value?) where !value.isEmpty: endpoint = value
                case ("addressing", "path"): addressing = .path
                case ("addressing", "virtual"): addressing = .virtualHosted
                default:
                    throw ObjectStoreError(.invalidURL, "'\(text)': unknown or empty parameter '\(item.name)' "
                        + "(known: region, endpoint, addressing=path|virtual)")
                }
            }
            self = .s3(bucket: bucket, prefix: prefix, region: region, endpoint: endpoint, addressing: addressing)
        default:
            throw ObjectStoreError(.invalidURL, "'\(text)': unsupported scheme '\(scheme)' (expected file or s3)")
        }
    }

    public var description: String {
        switch self {
        case .local(let path): return "file://" + path
        case .s3(let bucket, let prefix, _, _, _): return "s3://\(bucket)" + (prefix.isEmpty ? "" : "/" + prefix)
        }
    }

    /// Opens the store this URL names. S3 settings the URL leaves out come from
    /// `environment`.
    public func makeStore(environment: [String: String] = ProcessInfo.processInfo.environment,
                          logger: Logger) throws -> any ObjectStore {
        switch self {
        case .local(let path):
            return try LocalObjectStore(root: path)
        case .s3(let bucket, let prefix, let region, let endpoint, let addressing):
            var configuration = try S3ObjectStore.Configuration.fromEnvironment(bucket: bucket, keyPrefix: prefix, environment: environment)
            if let region { configuration.region = region }
            if let endpoint { configuration.endpoint = endpoint }
            if let addressing { configuration.addressingStyle = addressing }
            return try S3ObjectStore(configuration: configuration, logger: logger)
        }
    }
}
