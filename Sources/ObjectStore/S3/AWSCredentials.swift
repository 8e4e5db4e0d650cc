import Foundation

/// An AWS access key, with the session token of temporary credentials.
public struct AWSCredentials: Sendable, Hashable, CustomStringConvertible {
    public var accessKeyID: String
    public var secretAccessKey: String
    /// Sent as `x-amz-security-token` (and signed) when present.
    public var sessionToken: String?

    public init(accessKeyID: String, secretAccessKey: String, sessionToken: String? = nil) {
        self.accessKeyID = accessKeyID
        self.secretAccessKey = secretAccessKey
        self.sessionToken = sessionToken
    }

    /// Never prints the secret, so a logged configuration leaks nothing.
    public var description: String {
        "AWSCredentials(accessKeyID: \(accessKeyID), secretAccessKey: <redacted>\(sessionToken == nil ? "" : ", sessionToken: <redacted>"))"
    }

    /// Finds credentials the way the AWS CLI does, minus the network sources (instance
    /// metadata, SSO, process): `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` /
    /// `AWS_SESSION_TOKEN`, then the profile `AWS_PROFILE` (else `default`) in the shared
    /// credentials file (`AWS_SHARED_CREDENTIALS_FILE`, else `~/.aws/credentials`), then
    /// the same profile in the config file (`AWS_CONFIG_FILE`, else `~/.aws/config`).
    ///
    /// Throws `.configuration` when none of them has a key, naming what was tried.
    public static func resolve(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> AWSCredentials {
        if let id = environment["AWS_ACCESS_KEY_ID"], !id.isEmpty {
            guard let secret = environment["AWS_SECRET_ACCESS_KEY"], !secret.isEmpty else {
                throw ObjectStoreError(.configuration, "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not")
            }
            let token = environment["AWS_SESSION_TOKEN"].flatMap { $0.isEmpty ? nil : $0 }
            return AWSCredentials(accessKeyID: id, secretAccessKey: secret, sessionToken: token)
        }
        let files = AWSConfigFiles(environment: environment)
        let profile = files.profile
        for (path, section) in [(files.credentialsPath, profile), (files.configPath, AWSConfigFiles.configSection(profile))] {
            guard let values = try AWSConfigFiles.section(section, inFileAt: path) else { continue }
            guard let id = values["aws_access_key_id"] else { continue }
            guard let secret = values["aws_secret_access_key"] else {
                throw ObjectStoreError(.configuration, "profile '\(profile)' in \(path) has aws_access_key_id but no aws_secret_access_key")
            }
            return AWSCredentials(accessKeyID: id, secretAccessKey: secret, sessionToken: values["aws_session_token"])
        }
        throw ObjectStoreError(.configuration, "no AWS credentials: AWS_ACCESS_KEY_ID is not set and profile '\(profile)' "
            + "has no aws_access_key_id in \(files.credentialsPath) or \(files.configPath)")
    }
}

/// The shared `credentials` and `config` files of the AWS CLI and SDKs.
///
/// INI files: `[section]` headers, `key = value` lines, `#` and `;` comments. In the
/// config file every profile but `default` is headed `[profile NAME]`.
struct AWSConfigFiles {
    var profile: String
    var credentialsPath: String
    var configPath: String

    init(environment: [String: String]) {
        let home = environment["HOME"] ?? NSHomeDirectory()
        profile = environment["AWS_PROFILE"].flatMap { $0.isEmpty ? nil : $0 } ?? "default"
        credentialsPath = environment["AWS_SHARED_CREDENTIALS_FILE"].flatMap { $0.isEmpty ? nil : $0 } ?? home + "/.aws/credentials"
        configPath = environment["AWS_CONFIG_FILE"].flatMap { $0.isEmpty ? nil : $0 } ?? home + "/.aws/config"
    }

    static func configSection(_ profile: String) -> String {
        profile == "default" ? "default" : "profile \(profile)"
    }

    /// The region of the profile in the config file, if it names one.
    func region() throws -> String? {
        try Self.section(Self.configSection(profile), inFileAt: configPath)?["region"]
    }

    /// The keys of `[name]` in the file at `path`; nil when the file or section is absent.
    static func section(_ name: String, inFileAt path: String) throws -> [String: String]? {
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ObjectStoreError(.configuration, "cannot read \(path)")
        }
        return parse(String(decoding: data, as: UTF8.self))[name]
    }

    /// Sections of an INI text. Later duplicates win, as in botocore.
    static func parse(_ text: String) -> [String: [String: String]] {
        var sections: [String: [String: String]] = [:]
        var current: String?
        for rawLine in text.split(whereSeparator: \.isNewline) {
            let line = rawLine.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") || line.hasPrefix(";") { continue }
            if line.hasPrefix("[") && line.hasSuffix("]") {
                let name = line.dropFirst().dropLast().trimmingCharacters(in: .whitespaces)
                    .split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ")
                current = name
                if sections[name] == nil { sections[name] = [:] }
                continue
            }
            // Indented lines continue a nested setting (`s3 =` blocks); we need none of those.
            guard let section = current, !rawLine.hasPrefix(" "), !rawLine.hasPrefix("\t"),
                  let equals = line.firstIndex(of: "=") else { continue }
            let key = line[..<equals].trimmingCharacters(in: .whitespaces).lowercased()
            let value = line[line.index(after: equals)...].trimmingCharacters(in: .whitespaces)
            sections[section]?[key] = value
        }
        return sections
    }
}
