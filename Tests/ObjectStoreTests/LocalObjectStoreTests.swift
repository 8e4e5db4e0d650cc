import Foundation
import NIOCore
@testable import ObjectStore
import XCTest

final class LocalObjectStoreTests: XCTestCase {
    private var root: String!
    private var store: LocalObjectStore!

    override func setUpWithError() throws {
        root = FileManager.default.temporaryDirectory.appendingPathComponent("tributary-objects-\(UUID().uuidString)").path
        store = try LocalObjectStore(root: root)
    }

    override func tearDownWithError() throws {
        if let root { try? FileManager.default.removeItem(atPath: root) }
    }

    private func bytes(_ count: Int, seed: UInt8 = 0) -> ByteBuffer {
        ByteBuffer(bytes: (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ Int(seed)) })
    }

    private func stagingFiles() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: root + "/" + LocalObjectStore.stagingDirectoryName)
    }

    func testPutThenGetReturnsTheSameBytesAndLeavesNoTemporaryFile() async throws {
        let body = bytes(100_000)
        try await store.put(key: "topic/0/00000000000000000000.log", body: body)
        let read = try await store.get(key: "topic/0/00000000000000000000.log")
        XCTAssertEqual(read, body)
        XCTAssertEqual(try stagingFiles(), [])
        XCTAssertTrue(FileManager.default.fileExists(atPath: root + "/topic/0/00000000000000000000.log"))
    }

    func testPutReplacesTheWholeObject() async throws {
        try await store.put(key: "k", body: bytes(1000, seed: 1))
        try await store.put(key: "k", body: bytes(10, seed: 2))
        let read = try await store.get(key: "k")
        XCTAssertEqual(read, bytes(10, seed: 2))
    }

    func testRangedReadsReturnExactlyTheRange() async throws {
        let body = bytes(5000)
        try await store.put(key: "a/b", body: body)
        let middle = try await store.get(key: "a/b", range: 1000..<1500)
        XCTAssertEqual(middle, body.getSlice(at: 1000, length: 500))
        let tail = try await store.get(key: "a/b", range: 4990..<5000)
        XCTAssertEqual(tail, body.getSlice(at: 4990, length: 10))
        let empty = try await store.get(key: "a/b", range: 5000..<5000)
        XCTAssertEqual(empty.readableBytes, 0)
    }

    func testRangePastTheEndIsAnErrorNotAShortRead() async throws {
        try await store.put(key: "a", body: bytes(100))
        await assertThrows(.invalidRange) { _ = try await self.store.get(key: "a", range: 50..<101) }
        await assertThrows(.invalidRange) { _ = try await self.store.get(key: "a", range: 200..<300) }
        await assertThrows(.invalidRange) { _ = try await self.store.get(key: "a", range: -1..<3) }
    }

    func testMissingObjectsAreNotFoundAndHeadNil() async throws {
        await assertThrows(.notFound) { _ = try await self.store.get(key: "nope") }
        await assertThrows(.notFound) { _ = try await self.store.get(key: "nope/deeper", range: 0..<1) }
        let head = try await store.head(key: "nope")
        XCTAssertNil(head)
        try await store.put(key: "dir/file", body: bytes(3))
        // A key that names a directory of other keys is not an object.
        let dirHead = try await store.head(key: "dir")
        XCTAssertNil(dirHead)
        await assertThrows(.notFound) { _ = try await self.store.get(key: "dir") }
    }

    func testHeadGivesSizeAndAnETagThatChangesWithTheObject() async throws {
        try await store.put(key: "x", body: bytes(42))
        let first = try await store.head(key: "x")
        XCTAssertEqual(first?.size, 42)
        XCTAssertNotNil(first?.etag)
        try await store.put(key: "x", body: bytes(43))
        let second = try await store.head(key: "x")
        XCTAssertEqual(second?.size, 43)
        XCTAssertNotEqual(first?.etag, second?.etag)
    }

    func testListReturnsKeysUnderThePrefixSortedByBytes() async throws {
        for key in ["t1/0/b", "t1/0/a", "t1/1/a", "t10/0/a", "t2/0/a", "top"] {
            try await store.put(key: key, body: bytes(key.count))
        }
        let all = try await store.list(prefix: "")
        XCTAssertEqual(all.map(\.key), ["t1/0/a", "t1/0/b", "t1/1/a", "t10/0/a", "t2/0/a", "top"])
        XCTAssertEqual(all.map(\.size), [6, 6, 6, 7, 6, 3])
        let partition = try await store.list(prefix: "t1/0/")
        XCTAssertEqual(partition.map(\.key), ["t1/0/a", "t1/0/b"])
        // A prefix that ends mid-name matches like S3: "t1" covers t1/... and t10/...
        let t1 = try await store.list(prefix: "t1")
        XCTAssertEqual(t1.map(\.key), ["t1/0/a", "t1/0/b", "t1/1/a", "t10/0/a"])
        let partial = try await store.list(prefix: "t1/0/a")
        XCTAssertEqual(partial.map(\.key), ["t1/0/a"])
        let none = try await store.list(prefix: "zzz/")
        XCTAssertEqual(none, [])
    }

    func testDeleteRemovesTheObjectAndEmptiedDirectoriesAndIsIdempotent() async throws {
        try await store.put(key: "t/0/a", body: bytes(1))
        try await store.put(key: "t/1/a", body: bytes(1))
        try await store.delete(key: "t/0/a")
        try await store.delete(key: "t/0/a")
        try await store.delete(key: "never/was")
        let afterDelete = try await store.head(key: "t/0/a")
        XCTAssertNil(afterDelete)
        XCTAssertFalse(FileManager.default.fileExists(atPath: root + "/t/0"))
        XCTAssertTrue(FileManager.default.fileExists(atPath: root + "/t/1/a"))
        try await store.delete(key: "t/1/a")
        XCTAssertFalse(FileManager.default.fileExists(atPath: root + "/t"))
        XCTAssertTrue(FileManager.default.fileExists(atPath: root), "the root itself stays")
        let all = try await store.list(prefix: "")
        XCTAssertEqual(all, [])
    }

    func testKeysThatEscapeTheRootOrAreMalformedAreRejected() async throws {
        for key in ["", "/etc/passwd", "../outside", "a/../../outside", "a/./b", "a//b", "a/", ".", "..",
                    "\(LocalObjectStore.stagingDirectoryName)/x", "nul\u{0}byte", String(repeating: "k", count: 1025)] {
            await assertThrows(.invalidKey, "put \(key.debugDescription)") {
                try await self.store.put(key: key, body: self.bytes(1))
            }
            await assertThrows(.invalidKey, "get \(key.debugDescription)") { _ = try await self.store.get(key: key) }
            await assertThrows(.invalidKey, "delete \(key.debugDescription)") { try await self.store.delete(key: key) }
        }
        let parent = URL(fileURLWithPath: root).deletingLastPathComponent().appendingPathComponent("outside").path
        XCTAssertFalse(FileManager.default.fileExists(atPath: parent))
    }

    func testKeysCollidingWithAnObjectFailCleanly() async throws {
        try await store.put(key: "a", body: bytes(5, seed: 9))
        await assertThrows(.invalidKey) { try await self.store.put(key: "a/b", body: self.bytes(1)) }
        try await store.put(key: "c/d", body: bytes(1))
        await assertThrows(.invalidKey) { try await self.store.put(key: "c", body: self.bytes(1)) }
        let a = try await store.get(key: "a")
        XCTAssertEqual(a, bytes(5, seed: 9), "the existing object is untouched")
        XCTAssertEqual(try stagingFiles(), [], "a failed put removes its temporary file")
    }

    /// A writer killed mid-put leaves a partial file in the staging directory, never at the
    /// key: the key keeps its previous object, listings do not show the leftover, and the
    /// next store opened on the root removes it.
    func testACrashMidWriteNeverLeavesAPartialObjectAtTheKey() async throws {
        try await store.put(key: "seg/0.log", body: bytes(1000, seed: 1))
        // What a writer that died after writing half its bytes leaves behind.
        let leftover = root + "/" + LocalObjectStore.stagingDirectoryName + "/" + LocalObjectStore.temporaryName()
        XCTAssertTrue(leftover.hasSuffix(LocalObjectStore.temporarySuffix))
        XCTAssertTrue(FileManager.default.createFile(atPath: leftover, contents: Data(repeating: 0xEE, count: 500)))

        let read = try await store.get(key: "seg/0.log")
        XCTAssertEqual(read, bytes(1000, seed: 1))
        let listed = try await store.list(prefix: "")
        XCTAssertEqual(listed.map(\.key), ["seg/0.log"])

        // A young leftover may belong to a live writer in another process: kept.
        _ = try LocalObjectStore(root: root)
        XCTAssertEqual(try stagingFiles().count, 1)
        // An old one is a crash's: removed on open.
        _ = try LocalObjectStore(root: root, removingTemporaryFilesOlderThan: .zero)
        XCTAssertEqual(try stagingFiles(), [])
    }

    /// Readers racing with writers see one whole version or the other, never a mix.
    func testConcurrentReadersSeeWholeVersionsOnly() async throws {
        let a = ByteBuffer(repeating: 0xAA, count: 256 * 1024)
        let b = ByteBuffer(repeating: 0xBB, count: 256 * 1024)
        try await store.put(key: "hot", body: a)
        let store = self.store!
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                for i in 0..<30 { try await store.put(key: "hot", body: i % 2 == 0 ? b : a) }
            }
            group.addTask {
                for _ in 0..<60 {
                    let read = try await store.get(key: "hot")
                    XCTAssertTrue(read == a || read == b, "a read saw a mixed or partial object")
                }
            }
            try await group.waitForAll()
        }
    }

    func testPutFileCopiesAFileLargerThanOneChunk() async throws {
        let source = root + "-source"
        defer { try? FileManager.default.removeItem(atPath: source) }
        var body = bytes(3 * (1 << 20) + 12345)
        let data = Data(body.readBytes(length: body.readableBytes)!)
        try data.write(to: URL(fileURLWithPath: source))
        try await store.putFile(key: "big/segment.log", path: source)
        let read = try await store.get(key: "big/segment.log")
        XCTAssertEqual(Data(read.readableBytesView), data)
        await assertThrows(.io) { try await self.store.putFile(key: "x", path: source + "-missing") }
    }

    func testRelativeRootIsResolvedAgainstTheWorkingDirectory() throws {
        let relative = "tributary-relative-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: FileManager.default.currentDirectoryPath + "/" + relative) }
        let store = try LocalObjectStore(root: relative + "/")
        XCTAssertEqual(store.root, FileManager.default.currentDirectoryPath + "/" + relative)
    }
}

/// Asserts `body` throws an `ObjectStoreError` with `code`.
func assertThrows(_ code: ObjectStoreError.Code, _ message: String = "", file: StaticString = #filePath, line: UInt = #line,
                  _ body: () async throws -> Void) async {
    do {
        try await body()
        XCTFail("expected \(code), nothing thrown. \(message)", file: file, line: line)
    } catch let error as ObjectStoreError {
        XCTAssertEqual(error.code, code, "\(error). \(message)", file: file, line: line)
    } catch {
        XCTFail("expected \(code), got \(error). \(message)", file: file, line: line)
    }
}
