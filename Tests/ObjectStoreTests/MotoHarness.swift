import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import ObjectStore
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// A `moto_server` on loopback with signature checking on, and the fault-injecting proxy
/// (`fault_proxy.py`) in front of it, started once for the S3 suite and killed by PID.
///
/// moto checks SigV4 only once IAM auth is switched on: the harness creates an IAM user
/// with an allow-all policy through boto3 while auth is still off, then turns it on
/// (`/moto-api/reset-auth`), so every request the store makes afterwards is verified.
/// It also assumes a role for temporary credentials, whose session token moto checks.
final class MotoHarness: @unchecked Sendable {
    // @unchecked: every property is set once in `start` before the harness is shared.
    let motoPort: Int
    let proxyPort: Int
    let credentials: AWSCredentials
    /// Temporary credentials of an assumed role: moto checks their session token.
    let sessionCredentials: AWSCredentials
    private let moto: Process
    private let proxy: Process
    let directory: URL

    var motoEndpoint: String { "http://127.0.0.1:\(motoPort)" }
    var proxyEndpoint: String { "http://127.0.0.1:\(proxyPort)" }

    private init(motoPort: Int, proxyPort: Int, credentials: AWSCredentials, sessionCredentials: AWSCredentials,
                 moto: Process, proxy: Process, directory: URL) {
        self.motoPort = motoPort
        self.proxyPort = proxyPort
        self.credentials = credentials
        self.sessionCredentials = sessionCredentials
        self.moto = moto
        self.proxy = proxy
        self.directory = directory
    }

    /// Started on first use; a skip reason when python3 or moto is missing.
    nonisolated(unsafe) private static var current: Result<MotoHarness, Error>?
    // nonisolated(unsafe): XCTest runs one test at a time, and only the S3 suite's
    // setUp and class tearDown touch this.

    static func shared() throws -> MotoHarness {
        if current == nil { current = Result { try start() } }
        return try current!.get()
    }

    /// Kills both servers (by PID) if they were started.
    static func stopShared() {
        if case .success(let harness)? = current { harness.stop() }
        current = nil
    }

    private static func start() throws -> MotoHarness {
        let probe = try run(["python3", "-c", "import moto.server, boto3, werkzeug"], timeout: 60)
        guard probe.status == 0 else {
            throw XCTSkip("S3 tests need python3 with moto[server] and boto3 (scripts/setup-test-deps installs them): \(probe.stderr)")
        }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tributary-moto-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)

        var moto: Process?
        var motoPort = 0
        // A free port can be taken between our probe and moto's bind: try a few.
        for _ in 0..<5 {
            motoPort = try freePort()
            let process = try spawn(["python3", "-m", "moto.server", "-H", "127.0.0.1", "-p", String(motoPort)],
                                    log: directory.appendingPathComponent("moto.log"))
            if waitForListener(port: motoPort, process: process, timeout: 30) {
                moto = process
                break
            }
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        guard let moto else {
            throw Failure("moto_server did not start; see \(directory.path)/moto.log")
        }

        let portFile = directory.appendingPathComponent("proxy.port")
        let proxy = try spawn(["python3", proxyScript, String(motoPort), portFile.path], log: directory.appendingPathComponent("proxy.log"))
        var proxyPort: Int?
        let deadline = Date().addingTimeInterval(30)
        while proxyPort == nil && Date() < deadline && proxy.isRunning {
            proxyPort = (try? String(contentsOf: portFile, encoding: .utf8)).flatMap { Int($0) }
            if proxyPort == nil { Thread.sleep(forTimeInterval: 0.05) }
        }
        guard let proxyPort else {
            kill(moto.processIdentifier, SIGTERM)
            kill(proxy.processIdentifier, SIGTERM)
            throw Failure("fault proxy did not start; see \(directory.path)/proxy.log")
        }

        let setup = try run(["python3", "-c", iamSetup, "http://127.0.0.1:\(motoPort)"], timeout: 60)
        guard setup.status == 0, let data = setup.stdout.data(using: .utf8),
              let keys = try? JSONDecoder().decode([String: String].self, from: data),
              let id = keys["id"], let secret = keys["secret"],
              let sessionID = keys["sessionID"], let sessionSecret = keys["sessionSecret"], let token = keys["sessionToken"] else {
            kill(moto.processIdentifier, SIGTERM)
            kill(proxy.processIdentifier, SIGTERM)
            throw Failure("could not create moto IAM credentials: \(setup.stderr)")
        }
        return MotoHarness(motoPort: motoPort, proxyPort: proxyPort, credentials: AWSCredentials(accessKeyID: id, secretAccessKey: secret),
                           sessionCredentials: AWSCredentials(accessKeyID: sessionID, secretAccessKey: sessionSecret, sessionToken: token),
                           moto: moto, proxy: proxy, directory: directory)
    }

    private func stop() {
        for process in [proxy, moto] where process.isRunning {
            kill(process.processIdentifier, SIGTERM)
            process.waitUntilExit()
        }
        try? FileManager.default.removeItem(at: directory)
    }

    /// Creates an IAM user that may do everything, prints its key, then has moto verify
    /// every later request's signature.
    private static let iamSetup = """
        import boto3, json, sys, urllib.request
        endpoint = sys.argv[1]
        iam = boto3.client("iam", endpoint_url=endpoint, region_name="us-east-1",
                           aws_access_key_id="bootstrap", aws_secret_access_key="bootstrap")
        iam.create_user(UserName="tributary")
        iam.put_user_policy(UserName="tributary", PolicyName="all", PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
        key = iam.create_access_key(UserName="tributary")["AccessKey"]
        iam.create_role(RoleName="tributary-role", AssumeRolePolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}]}))
        iam.put_role_policy(RoleName="tributary-role", PolicyName="all", PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
        sts = boto3.client("sts", endpoint_url=endpoint, region_name="us-east-1",
                           aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"])
        session = sts.assume_role(RoleArn="arn:aws:iam::123456789012:role/tributary-role", RoleSessionName="tests")["Credentials"]
        urllib.request.urlopen(urllib.request.Request(endpoint + "/moto-api/reset-auth", data=b"0", method="POST",
                                                      headers={"Content-Type": "text/plain"})).read()
        print(json.dumps({"id": key["AccessKeyId"], "secret": key["SecretAccessKey"], "sessionID": session["AccessKeyId"],
                          "sessionSecret": session["SecretAccessKey"], "sessionToken": session["SessionToken"]}))
        """

    static let proxyScript = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("fault_proxy.py").path

    // MARK: Faults

    struct FaultStats: Decodable {
        var injected: Int
        var forwarded: Int
        var pending: [String]
    }

    /// Arms the proxy: the next requests (those whose "METHOD path?query" contains
    /// `match`, if given) meet `faults` in order.
    @discardableResult
    func arm(_ faults: [String], match: String? = nil) async throws -> FaultStats {
        var body: [String: Any] = ["faults": faults]
        if let match { body["match"] = match }
        return try await control(method: .POST, body: try JSONSerialization.data(withJSONObject: body))
    }

    func faultStats() async throws -> FaultStats {
        try await control(method: .GET, body: nil)
    }

    private func control(method: HTTPMethod, body: Data?) async throws -> FaultStats {
        var request = HTTPClientRequest(url: proxyEndpoint + "/__faults__")
        request.method = method
        if let body { request.body = .bytes(ByteBuffer(bytes: body)) }
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
        let bytes = try await response.body.collect(upTo: 1 << 20)
        return try JSONDecoder().decode(FaultStats.self, from: Data(bytes.readableBytesView))
    }

    // MARK: Processes

    struct Failure: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }

    /// Starts a long-running program with its output in a log file. Under `setpriv
    /// --pdeathsig` when available, so it dies with the test process even if tearDown
    /// never runs.
    private static func spawn(_ command: [String], log: URL) throws -> Process {
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        let output = try FileHandle(forWritingTo: log)
        let process = Process()
        if FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv") {
            process.executableURL = URL(fileURLWithPath: "/usr/bin/setpriv")
            process.arguments = ["--pdeathsig", "TERM", "--", "/usr/bin/env"] + command
        } else {
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = command
        }
        process.standardOutput = output
        process.standardError = output
        process.standardInput = FileHandle.nullDevice
        try process.run()
        try? output.close()
        return process
    }

    /// Runs a short program to completion, output in files (no pipe to fill up).
    static func run(_ command: [String], timeout: TimeInterval) throws -> (status: Int32, stdout: String, stderr: String) {
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("tributary-run-\(UUID().uuidString).out")
        let err = out.appendingPathExtension("err")
        _ = FileManager.default.createFile(atPath: out.path, contents: nil)
        _ = FileManager.default.createFile(atPath: err.path, contents: nil)
        defer {
            try? FileManager.default.removeItem(at: out)
            try? FileManager.default.removeItem(at: err)
        }
        let outHandle = try FileHandle(forWritingTo: out)
        let errHandle = try FileHandle(forWritingTo: err)
        defer {
            try? outHandle.close()
            try? errHandle.close()
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = command
        process.standardOutput = outHandle
        process.standardError = errHandle
        process.standardInput = FileHandle.nullDevice
        do {
            try process.run()
        } catch {
            return (127, "", "\(command[0]): \(error)")
        }
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning {
            if Date() > deadline {
                kill(process.processIdentifier, SIGKILL)
                process.waitUntilExit()
                return (124, "", "\(command[0]) timed out after \(Int(timeout)) s")
            }
            Thread.sleep(forTimeInterval: 0.02)
        }
        return (process.terminationStatus, String(decoding: try Data(contentsOf: out), as: UTF8.self),
                String(decoding: try Data(contentsOf: err), as: UTF8.self))
    }

    /// A port nothing listens on right now (bind to 0, read it back, close).
    private static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Failure("socket: \(errno)") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                bind(fd, pointer, length) == 0 && getsockname(fd, pointer, &length) == 0
            }
        }
        guard bound else { throw Failure("bind: \(errno)") }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// Polls until something accepts connections on `port`, or the process exits.
    private static func waitForListener(port: Int, process: Process, timeout: TimeInterval) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline && process.isRunning {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            address.sin_port = in_port_t(UInt16(port).bigEndian)
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
                }
            }
            close(fd)
            if connected { return true }
            Thread.sleep(forTimeInterval: 0.1)
        }
        return false
    }
}
