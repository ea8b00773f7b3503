import AsyncHTTPClient
import Foundation
import Logging
import NIOCore

/// What became of one batch.
public enum BatchOutcome: Sendable, Equatable {
    /// The gateway answered for every record, in the order sent.
    case results([RecordResult])
    /// Nothing is known to have happened (transport error, timeout, 408, 429, 5xx, an unreadable answer):
    /// send the same records again later. `retryAfter` is the gateway's `Retry-After`, in seconds.
    case retryable(String, retryAfter: Double?)
    /// The gateway refused the whole batch for a reason that sending again will not fix (4xx): park it.
    case rejected(String)
}

/// Sends one batch of stored record payloads. ``SectorClient`` is the HTTP one; tests may substitute their own.
public protocol BatchTransport: Sendable {
    func send(payloads: [Data]) async -> BatchOutcome
}

/// The HTTP client of the sector gateway (async-http-client): one POST per batch, bearer token,
/// a deadline per request, no redirects (the token must not follow one), and the answer classified.
public final class SectorClient: BatchTransport {
    public let recordsURL: String
    private let token: BearerToken
    private let timeout: TimeAmount
    private let http: HTTPClient
    private let logger: Logger

    /// - Parameters:
    ///   - endpoint: the gateway's base URL; batches go to `endpoint/v1/attendance-records`.
    ///   - allowInsecureHTTP: accept `http://` (loopback tests). `https://` always verifies certificates.
    ///   - retryConnectionEstablishment: let async-http-client retry a refused connection until the timeout
    ///     (its recommended default); false fails at once, which the sender's own backoff then handles.
    public init(
        endpoint: String, token: BearerToken, timeoutSeconds: Double, allowInsecureHTTP: Bool = false,
        retryConnectionEstablishment: Bool = true, logger: Logger = Logger(label: "sector.client")
    ) throws {
        self.recordsURL = try Self.recordsURL(endpoint: endpoint, allowInsecureHTTP: allowInsecureHTTP)
        guard timeoutSeconds > 0 else { throw ConnectorError.configuration("timeout must be positive") }
        self.token = token
        self.timeout = .nanoseconds(Int64(timeoutSeconds * 1e9))
        self.logger = logger
        var configuration = HTTPClient.Configuration(
            redirectConfiguration: .disallow,
            timeout: .init(connect: self.timeout, read: self.timeout))
        configuration.httpVersion = .automatic
        configuration.connectionPool.retryConnectionEstablishment = retryConnectionEstablishment
        self.http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    /// `endpoint` + `/v1/attendance-records`, checked: https, or http only when allowed.
    public static func recordsURL(endpoint: String, allowInsecureHTTP: Bool) throws -> String {
        let trimmed = endpoint.trimmingCharacters(in: .whitespaces)
        guard let url = URL(string: trimmed), let scheme = url.scheme?.lowercased(), url.host != nil else {
            throw ConnectorError.configuration("endpoint '\(endpoint)' is not an absolute URL")
        }
        switch scheme {
        case "https": break
        case "http" where allowInsecureHTTP && isLoopback(url.host!): break
        case "http" where allowInsecureHTTP:
            throw ConnectorError.configuration(
                "endpoint '\(endpoint)' is plain http to another machine: allow_insecure_http is only for a "
                    + "gateway on this box (127.0.0.1, ::1, localhost); use https")
        case "http":
            throw ConnectorError.configuration(
                "endpoint '\(endpoint)' is plain http; use https (or allow_insecure_http for a loopback test gateway)")
        default: throw ConnectorError.configuration("endpoint '\(endpoint)': unsupported scheme \(scheme)")
        }
        if url.query != nil || url.fragment != nil {
            throw ConnectorError.configuration("endpoint '\(endpoint)' must not carry a query or fragment")
        }
        return (trimmed.hasSuffix("/") ? trimmed : trimmed + "/") + WireContract.recordsPath
    }

    /// 127.0.0.0/8, ::1 or localhost: where plain http cannot leave the box.
    static func isLoopback(_ host: String) -> Bool {
        let h = host.lowercased().trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
        if h == "localhost" || h == "::1" { return true }
        let parts = h.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count == 4 && parts[0] == "127" && parts.allSatisfy { UInt8($0) != nil }
    }

    /// Closes the connection pool. Call once, when done.
    public func shutdown() async {
        do { try await http.shutdown() } catch { logger.debug("http client shutdown: \(error)") }
    }

    /// The request body for stored payloads: `{"records":[p1,p2,...]}`, each payload byte for byte.
    public static func body(for payloads: [Data]) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.reserveCapacity(payloads.reduce(16) { $0 + $1.count + 1 })
        buffer.writeString("{\"records\":[")
        for (i, p) in payloads.enumerated() {
            if i > 0 { buffer.writeString(",") }
            buffer.writeBytes(p)
        }
        buffer.writeString("]}")
        return buffer
    }

    public func send(payloads: [Data]) async -> BatchOutcome {
        var request = HTTPClientRequest(url: recordsURL)
        request.method = .POST
        request.headers.add(name: "Authorization", value: token.authorizationValue)
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "Accept", value: "application/json")
        request.body = .bytes(Self.body(for: payloads))
        let deadline = NIODeadline.now() + timeout
        do {
            let response = try await http.execute(request, deadline: deadline, logger: logger)
            let body = try await response.body.collect(upTo: WireContract.maxResponseBytes)
            let retryAfter = response.headers.first(name: "Retry-After").flatMap {
                Double($0.trimmingCharacters(in: .whitespaces))
            }
            return Self.classify(
                status: Int(response.status.code), body: Data(body.readableBytesView), retryAfter: retryAfter,
                expected: payloads.count)
        } catch {
            // Transport errors, timeouts, a dropped connection: the gateway may or may not have stored the
            // batch, and since it is idempotent by (record_id, version), sending again is always safe.
            return .retryable("transport: \(Self.describe(error))", retryAfter: nil)
        }
    }

    /// The classification of an answer (public so the contract's tests can state it directly).
    public static func classify(status: Int, body: Data, retryAfter: Double?, expected: Int) -> BatchOutcome {
        let decoded = try? JSONDecoder().decode(BatchResult.self, from: body)
        switch status {
        case 200..<300:
            guard let decoded, decoded.results.count == expected else {
                return .retryable("HTTP \(status) with an unreadable answer: \(excerpt(body))", retryAfter: nil)
            }
            return .results(decoded.results)
        case 422 where decoded?.results.count == expected:
            return .results(decoded!.results)
        case 408, 429, 500..<600:
            return .retryable("HTTP \(status): \(excerpt(body))", retryAfter: retryAfter)
        case 400..<500:
            return .rejected("HTTP \(status): \(excerpt(body))")
        default:
            // 1xx and 3xx are not part of the contract (redirects are never followed): keep the records, try later.
            return .retryable("HTTP \(status) unexpected: \(excerpt(body))", retryAfter: retryAfter)
        }
    }

    static func excerpt(_ body: Data) -> String {
        if let e = try? JSONDecoder().decode(ErrorBody.self, from: body) { return String(e.error.prefix(300)) }
        let text = String(decoding: body.prefix(300), as: UTF8.self)
        return text.isEmpty ? "(no body)" : text
    }

    static func describe(_ error: any Error) -> String {
        if let e = error as? HTTPClientError { return "\(e)" }
        return String(describing: error)
    }
}
