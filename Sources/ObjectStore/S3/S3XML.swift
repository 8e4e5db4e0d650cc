import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif

/// A parsed XML element: S3's answers are small trees of text leaves, so a generic tree
/// is simpler than one delegate per response type.
struct XMLElementNode: Sendable {
    var name: String
    var text: String = ""
    var children: [XMLElementNode] = []

    func child(_ name: String) -> XMLElementNode? { children.first { $0.name == name } }
    func children(_ name: String) -> [XMLElementNode] { children.filter { $0.name == name } }
    func text(_ name: String) -> String? { child(name)?.text }

    /// Parses a document; nil when it is not well-formed XML.
    static func parse(_ bytes: [UInt8]) -> XMLElementNode? {
        let parser = XMLParser(data: Data(bytes))
        let builder = TreeBuilder()
        parser.delegate = builder
        guard parser.parse(), let root = builder.root else { return nil }
        return root
    }

    /// Builds the tree during one synchronous `parse()` call; never shared.
    private final class TreeBuilder: NSObject, XMLParserDelegate {
        var stack: [XMLElementNode] = []
        var root: XMLElementNode?

        func parser(_ parser: XMLParser, didStartElement elementName: String, namespaceURI: String?,
                    qualifiedName qName: String?, attributes attributeDict: [String: String] = [:]) {
            stack.append(XMLElementNode(name: elementName))
        }

        func parser(_ parser: XMLParser, foundCharacters string: String) {
            if !stack.isEmpty { stack[stack.count - 1].text += string }
        }

        func parser(_ parser: XMLParser, didEndElement elementName: String, namespaceURI: String?, qualifiedName qName: String?) {
            guard let node = stack.popLast() else { return }
            if stack.isEmpty {
                root = node
            } else {
                stack[stack.count - 1].children.append(node)
            }
        }
    }
}

/// The S3 responses the store reads.
enum S3XML {
    /// `<Error><Code>SlowDown</Code><Message>...</Message></Error>`.
    struct ErrorBody {
        var code: String?
        var message: String?
    }

    static func error(_ bytes: [UInt8]) -> ErrorBody? {
        guard let root = XMLElementNode.parse(bytes), root.name == "Error" else { return nil }
        return ErrorBody(code: root.text("Code"), message: root.text("Message"))
    }

    struct ListPage {
        var objects: [(key: String, size: Int, etag: String?)]
        var nextContinuationToken: String?
        var isTruncated: Bool
    }

    /// A `ListBucketResult` page, keys percent-decoded when the request asked for
    /// `encoding-type=url` (which it always does, so keys with control characters, which
    /// XML 1.0 cannot carry, still list).
    static func listPage(_ bytes: [UInt8], urlEncoded: Bool) throws -> ListPage {
        guard let root = XMLElementNode.parse(bytes), root.name == "ListBucketResult" else {
            throw ObjectStoreError(.invalidResponse, "ListObjectsV2 answer is not a ListBucketResult")
        }
        var objects: [(key: String, size: Int, etag: String?)] = []
        for item in root.children("Contents") {
            guard var key = item.text("Key"), let size = item.text("Size").flatMap({ Int($0) }) else {
                throw ObjectStoreError(.invalidResponse, "ListObjectsV2 entry without Key or Size")
            }
            if urlEncoded {
                guard let decoded = formDecode(key) else {
                    throw ObjectStoreError(.invalidResponse, "ListObjectsV2 key '\(key)' is not URL-encoded")
                }
                key = decoded
            }
            objects.append((key, size, item.text("ETag")))
        }
        let truncated = root.text("IsTruncated") == "true"
        return ListPage(objects: objects, nextContinuationToken: root.text("NextContinuationToken"), isTruncated: truncated)
    }

    /// S3's `encoding-type=url` encodes like a form: `+` may stand for a space.
    static func formDecode(_ text: String) -> String? {
        text.replacingOccurrences(of: "+", with: " ").removingPercentEncoding
    }

    /// The `UploadId` of an `InitiateMultipartUploadResult`.
    static func uploadID(_ bytes: [UInt8]) throws -> String {
        guard let root = XMLElementNode.parse(bytes), root.name == "InitiateMultipartUploadResult",
              let id = root.text("UploadId"), !id.isEmpty else {
            throw ObjectStoreError(.invalidResponse, "CreateMultipartUpload answer has no UploadId")
        }
        return id
    }

    /// The body of CompleteMultipartUpload.
    static func completeMultipartUpload(parts: [(number: Int, etag: String)]) -> String {
        var xml = "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
        for part in parts {
            xml += "<Part><PartNumber>\(part.number)</PartNumber><ETag>\(escape(part.etag))</ETag></Part>"
        }
        return xml + "</CompleteMultipartUpload>"
    }

    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }
}
