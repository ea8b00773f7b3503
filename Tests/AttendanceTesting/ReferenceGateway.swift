import Foundation
import SectorConnector
@_exported import SeededRandom

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// The reference gateway (`sector-gateway`) as a real child process on a loopback port: the one harness
/// the connector's tests and the attendance tests share.
public final class ReferenceGateway: @unchecked Sendable {
    public let process = Process()
    let stdinPipe = Pipe()
    public let port: Int
    public let token: String
    public let tokenFile: String
    public let storePath: String
    public var baseURL: String { "http://127.0.0.1:\(port)" }

    /// The built `sector-gateway` beside the test bundle, or `$SECTOR_GATEWAY_BIN`.
    public static var executable: URL {
        if let path = ProcessInfo.processInfo.environment["SECTOR_GATEWAY_BIN"] { return URL(fileURLWithPath: path) }
        return BuiltProducts.directory.appendingPathComponent("sector-gateway")
    }

    /// Starts the gateway with a fresh token (a 0600 file in `directory`) and waits for its "listening on" line.
    public init(directory: URL, port: Int = 0, token: String = "test-token-\(UUID().uuidString)", arguments: [String] = [])
        async throws
    {
        let tokenURL = directory.appendingPathComponent("gateway.token")
        try Data((token + "\n").utf8).write(to: tokenURL)
        chmod(tokenURL.path, 0o600)
        self.token = token
        self.tokenFile = tokenURL.path
        self.storePath = directory.appendingPathComponent("gateway-store.jsonl").path
        let exe = Self.executable
        guard FileManager.default.isExecutableFile(atPath: exe.path) else {
            throw HarnessError("sector-gateway not built at \(exe.path) (swift build --product sector-gateway)")
        }
        process.executableURL = exe
        process.arguments =
            ["--port", "\(port)", "--store", storePath, "--token-file", tokenFile, "--exit-on-stdin-eof"] + arguments
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        // The gateway exits when this pipe closes, that is when the test process ends, however it ends.
        process.standardInput = stdinPipe
        try process.run()
        let reader = out.fileHandleForReading
        let line: String = await withCheckedContinuation { cont in
            DispatchQueue.global().async {
                var buffer = Data()
                while !buffer.contains(UInt8(ascii: "\n")) {
                    let chunk = reader.availableData
                    if chunk.isEmpty { break }
                    buffer.append(chunk)
                }
                cont.resume(returning: String(decoding: buffer, as: UTF8.self))
            }
        }
        guard let range = line.range(of: "listening on http://127.0.0.1:"),
            let p = Int(line[range.upperBound...].prefix(while: \.isNumber))
        else {
            process.terminate()
            throw HarnessError("gateway did not start: \(line)")
        }
        self.port = p
    }

    public func stop() {
        guard process.isRunning else { return }
        process.terminate()
        process.waitUntilExit()
    }

    deinit { stop() }

    // MARK: calls

    /// Any request, with this gateway's token unless `token` is given; the status and the body.
    public func request(_ method: String, _ path: String, body: Data? = nil, token: String? = nil) async throws -> (Int, Data) {
        var r = URLRequest(url: URL(string: baseURL + path)!)
        r.httpMethod = method
        r.timeoutInterval = 30
        r.setValue("Bearer \(token ?? self.token)", forHTTPHeaderField: "Authorization")
        if let body {
            r.httpBody = body
            r.setValue("application/json", forHTTPHeaderField: "Content-Type")
        }
        let (data, response) = try await URLSession.shared.data(for: r)
        return ((response as? HTTPURLResponse)?.statusCode ?? 0, data)
    }

    /// A request that must answer 200; its body.
    public func call(_ method: String, _ path: String, json: Any? = nil) async throws -> Data {
        let body = try json.map { try JSONSerialization.data(withJSONObject: $0) }
        let (status, data) = try await request(method, path, body: body)
        guard status == 200 else { throw HarnessError("\(method) \(path): \(status) \(String(decoding: data, as: UTF8.self))") }
        return data
    }

    public func setFaults(_ faults: [String: Any]) async throws { _ = try await call("PUT", "/admin/faults", json: faults) }

    public struct Stats: Decodable, Sendable {
        public var posts: Int, unauthorized: Int, accepted: Int, duplicate: Int, stale: Int, rejected: Int, stored: Int
        public var injected_failures: Int, injected_failures_after_store: Int, injected_drops: Int
    }

    public func stats() async throws -> Stats {
        try JSONDecoder().decode(Stats.self, from: try await call("GET", "/admin/stats"))
    }

    struct Stored: Decodable { var record: SectorRecord }
    struct Listing: Decodable { var records: [Stored] }

    /// Every version the gateway holds, in the order received (or only the latest of each record).
    public func records(latestOnly: Bool = false) async throws -> [SectorRecord] {
        try JSONDecoder().decode(
            Listing.self, from: try await call("GET", "/v1/attendance-records" + (latestOnly ? "?latest=true" : ""))
        )
        .records.map(\.record)
    }
}

/// A harness that could not do its job.
public struct HarnessError: Error, CustomStringConvertible {
    public let description: String
    public init(_ d: String) { description = d }
}
