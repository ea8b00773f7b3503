import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore

/// A client that keeps cookies like a browser, over Hummingbird's test client.
public final class ConsoleBrowser: @unchecked Sendable {
    public let client: any TestClientProtocol
    private var cookies: [String: String] = [:]

    public init(client: any TestClientProtocol) { self.client = client }

    public struct Answer {
        public var status: HTTPResponse.Status
        public var headers: HTTPFields
        public var body: ByteBuffer
        public var text: String { String(buffer: body) }
    }

    private var cookieHeader: HTTPFields {
        cookies.isEmpty ? [:] : [.cookie: cookies.map { "\($0.key)=\($0.value)" }.joined(separator: "; ")]
    }

    private func keep(_ headers: HTTPFields) {
        for set in headers[values: .setCookie] {
            let pair = set.split(separator: ";")[0].split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = String(pair[0]), value = pair.count > 1 ? String(pair[1]) : ""
            if value.isEmpty || set.contains("Max-Age=0") { cookies[name] = nil } else { cookies[name] = value }
        }
    }

    public func request(_ uri: String, _ method: HTTPRequest.Method, headers: HTTPFields = [:], body: ByteBuffer? = nil)
        async throws
        -> Answer
    {
        var h = headers
        h.append(contentsOf: cookieHeader)
        let r = try await client.execute(uri: uri, method: method, headers: h, body: body)
        keep(r.headers)
        return Answer(status: r.status, headers: r.headers, body: r.body)
    }

    public func get(_ uri: String) async throws -> Answer { try await request(uri, .get) }

    public func post(_ uri: String, _ form: [String: String]) async throws -> Answer {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        let body = form.map {
            "\($0.key)=\($0.value.addingPercentEncoding(withAllowedCharacters: allowed) ?? "")"
        }.joined(separator: "&")
        return try await request(
            uri, .post, headers: [.contentType: "application/x-www-form-urlencoded"], body: ByteBuffer(string: body))
    }

    public func upload(_ uri: String, fields: [String: String] = [:], file: (field: String, name: String, bytes: [UInt8]))
        async throws
        -> Answer
    {
        let boundary = "----console-test-\(UUID().uuidString)"
        var body: [UInt8] = []
        for (k, v) in fields {
            body += Array("--\(boundary)\r\nContent-Disposition: form-data; name=\"\(k)\"\r\n\r\n\(v)\r\n".utf8)
        }
        body += Array(
            "--\(boundary)\r\nContent-Disposition: form-data; name=\"\(file.field)\"; filename=\"\(file.name)\"\r\nContent-Type: application/octet-stream\r\n\r\n"
                .utf8)
        body += file.bytes
        body += Array("\r\n--\(boundary)--\r\n".utf8)
        return try await request(
            uri, .post, headers: [.contentType: "multipart/form-data; boundary=\(boundary)"], body: ByteBuffer(bytes: body))
    }

    /// The page's CSRF token (the hidden field every form carries).
    public func csrf(from uri: String) async throws -> String {
        let page = try await get(uri).text
        guard let r = page.range(of: #"name="csrf" value=""#) else { throw ConsoleTestError.noToken(uri) }
        return String(page[r.upperBound...].prefix { $0 != "\"" })
    }

    public func attemptSignIn(_ name: String, _ password: String) async throws -> Answer {
        let token = try await csrf(from: "/login")
        return try await post("/login", ["csrf": token, "name": name, "password": password])
    }

    /// Signs in and returns the session cookie as the server set it.
    @discardableResult
    public func signIn(_ name: String, _ password: String) async throws -> String {
        let r = try await attemptSignIn(name, password)
        guard r.status == .found, let set = r.headers[values: .setCookie].first(where: { $0.hasPrefix("sid=") }) else {
            throw ConsoleTestError.signIn(name, r.status.code)
        }
        return set
    }

    public func signOut() async throws {
        let token = try await csrf(from: "/")
        _ = try await post("/logout", ["csrf": token])
        cookies = [:]
    }
}

public enum ConsoleTestError: Error {
    case noToken(String)
    case signIn(String, Int)
}
