import NIOCore

extension APIKey {
    /// Request header version for a request at `apiVersion`: v2 when the request is
    /// flexible, v1 otherwise. Versions above the definitions are read as flexible when
    /// the API has flexible versions, so a newer client's ApiVersions still parses.
    public func requestHeaderVersion(apiVersion: Int16) -> Int16 {
        let flexible = apiVersion > validVersions.upperBound
            ? isFlexibleRequest(version: validVersions.upperBound)
            : isFlexibleRequest(version: apiVersion)
        return flexible ? 2 : 1
    }

    /// Response header version: v1 for flexible responses, except ApiVersions, whose
    /// response header is always v0 so a client can read it before it knows our versions.
    public func responseHeaderVersion(apiVersion: Int16) -> Int16 {
        if self == .apiVersions { return 0 }
        return isFlexibleResponse(version: apiVersion) ? 1 : 0
    }
}

extension RequestHeader {
    /// Reads a request header, choosing its version from the API key and version it starts with.
    /// Unknown API keys are read as header v1, enough to answer or to log the correlation id.
    public static func decode(from buffer: inout ByteBuffer) throws -> RequestHeader {
        guard let rawKey = buffer.getInteger(at: buffer.readerIndex, as: Int16.self),
              let apiVersion = buffer.getInteger(at: buffer.readerIndex + 2, as: Int16.self)
        else {
            throw KafkaProtocolError(.truncated, api: "RequestHeader", field: "RequestHeader.RequestApiKey")
        }
        let headerVersion = APIKey(rawValue: rawKey)?.requestHeaderVersion(apiVersion: apiVersion) ?? 1
        return try RequestHeader(from: &buffer, version: headerVersion)
    }

    /// The API this header names, if we know it.
    public var apiKey: APIKey? { APIKey(rawValue: requestApiKey) }
}

/// A complete request frame split into header and body; the body is a slice.
public struct KafkaRequestFrame: Sendable {
    public var header: RequestHeader
    public var body: ByteBuffer

    public init(frame: ByteBuffer) throws {
        var buffer = frame
        header = try RequestHeader.decode(from: &buffer)
        body = buffer
    }
}

/// Writes a size-prefixed request (header + body) for a client.
public func encodeRequestFrame<R: KafkaRequest>(_ request: R, version: Int16, correlationId: Int32, clientId: String?, into buffer: inout ByteBuffer) throws {
    let start = buffer.writerIndex
    buffer.writeInteger(0 as Int32)
    let header = RequestHeader(requestApiKey: R.apiKey.rawValue, requestApiVersion: version, correlationId: correlationId, clientId: clientId)
    try header.encode(into: &buffer, version: R.apiKey.requestHeaderVersion(apiVersion: version))
    try request.encode(into: &buffer, version: version)
    buffer.setInteger(Int32(buffer.writerIndex - start - 4), at: start)
}

/// Writes a size-prefixed response (header + body) for the broker.
public func encodeResponseFrame<R: KafkaResponse>(_ response: R, version: Int16, correlationId: Int32, into buffer: inout ByteBuffer) throws {
    let start = buffer.writerIndex
    buffer.writeInteger(0 as Int32)
    try ResponseHeader(correlationId: correlationId).encode(into: &buffer, version: R.apiKey.responseHeaderVersion(apiVersion: version))
    try response.encode(into: &buffer, version: version)
    buffer.setInteger(Int32(buffer.writerIndex - start - 4), at: start)
}
