import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import SectorConnector
import XCTest

/// The reference gateway as a real child process on a loopback port.
final class GatewayProcess: @unchecked Sendable {
    let process = Process()
    let stdinPipe = Pipe()
    let port: Int
    let token: String
    let storePath: String
    var baseURL: String { "http://127.0.0.1:\(port)" }

    /// The built `sector-gateway` beside the test bundle, or `$SECTOR_GATEWAY_BIN`.
    static var executable: URL {
        if let path = ProcessInfo.processInfo.environment["SECTOR_GATEWAY_BIN"] { return URL(fileURLWithPath: path) }
        let exe = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        var dir = exe.deletingLastPathComponent()
        // macOS-style bundles nest the binary in Contents/MacOS; on Linux it sits in the products folder.
        while dir.path != "/" && !FileManager.default.fileExists(atPath: dir.appendingPathComponent("sector-gateway").path) {
            dir = dir.deletingLastPathComponent()
        }
        return dir.appendingPathComponent("sector-gateway")
    }

    /// Starts the gateway and waits for its "listening on" line.
    init(directory: URL, port: Int = 0, token: String = "test-token-\(UUID().uuidString)", arguments: [String] = []) async throws {
        let tokenFile = directory.appendingPathComponent("gateway.token")
        try Data((token + "\n").utf8).write(to: tokenFile)
        chmod(tokenFile.path, 0o600)
        self.token = token
        self.storePath = directory.appendingPathComponent("gateway-store.jsonl").path
        let exe = Self.executable
        guard FileManager.default.isExecutableFile(atPath: exe.path) else {
            throw TestFailure("sector-gateway not built at \(exe.path) (swift build --product sector-gateway)")
        }
        process.executableURL = exe
        process.arguments = ["--port", "\(port)", "--store", storePath, "--token-file", tokenFile.path, "--exit-on-stdin-eof"] + arguments
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        // The gateway exits when this pipe closes, that is when this test process ends, however it ends.
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
              let p = Int(line[range.upperBound...].prefix(while: \.isNumber)) else {
            process.terminate()
            throw TestFailure("gateway did not start: \(line)")
        }
        self.port = p
    }

    func stop() {
        guard process.isRunning else { return }
        process.terminate()
        process.waitUntilExit()
    }

    deinit { stop() }

    // MARK: admin calls

    func request(_ method: HTTPMethod, _ path: String, body: Data? = nil, token: String? = nil) async throws -> (Int, Data) {
        var r = HTTPClientRequest(url: baseURL + path)
        r.method = method
        r.headers.add(name: "Authorization", value: "Bearer \(token ?? self.token)")
        if let body {
            r.headers.add(name: "Content-Type", value: "application/json")
            r.body = .bytes(ByteBuffer(bytes: body))
        }
        let response = try await HTTPClient.shared.execute(r, timeout: .seconds(30))
        let data = try await response.body.collect(upTo: 64 << 20)
        return (Int(response.status.code), Data(data.readableBytesView))
    }

    func setFaults(_ faults: [String: Any]) async throws {
        let body = try JSONSerialization.data(withJSONObject: faults)
        let (status, data) = try await request(.PUT, "/admin/faults", body: body)
        guard status == 200 else { throw TestFailure("PUT /admin/faults: \(status) \(String(decoding: data, as: UTF8.self))") }
    }

    struct Stats: Decodable {
        var posts: Int, unauthorized: Int, accepted: Int, duplicate: Int, stale: Int, rejected: Int, stored: Int
        var injected_failures: Int, injected_failures_after_store: Int, injected_drops: Int
    }

    func stats() async throws -> Stats {
        let (_, data) = try await request(.GET, "/admin/stats")
        return try JSONDecoder().decode(Stats.self, from: data)
    }

    struct Stored: Decodable { var received_at: String; var record: SectorRecord }
    struct Listing: Decodable { var records: [Stored] }

    /// Every version the gateway holds, in the order received.
    func records(latestOnly: Bool = false) async throws -> [SectorRecord] {
        let (status, data) = try await request(.GET, "/v1/attendance-records" + (latestOnly ? "?latest=true" : ""))
        guard status == 200 else { throw TestFailure("GET records: \(status)") }
        return try JSONDecoder().decode(Listing.self, from: data).records.map(\.record)
    }
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

/// A fresh temporary folder per test.
func makeTemporaryDirectory() throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("sector-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

/// An in-memory outbox with the semantics the SQLite one must have.
actor MemoryOutbox: OutboxQueue {
    enum State: String { case pending, delivered, parked }
    struct Row {
        var payload: Data
        var state: State = .pending
        var attempts = 0
        var nextAttemptAt = Date.distantPast
        var lastError: String?
    }
    private(set) var rows: [RecordKey: Row] = [:]
    private(set) var deliveredCalls: [RecordKey: Int] = [:]

    func add(_ record: SectorRecord) throws {
        rows[record.key] = Row(payload: try record.jsonData())
    }
    func addRaw(_ key: RecordKey, payload: Data) { rows[key] = Row(payload: payload) }

    func pending(after: RecordKey?, dueBy: Date?, limit: Int) -> [OutboxItem] {
        rows.filter { key, row in
            row.state == .pending && (after.map { key > $0 } ?? true) && (dueBy.map { row.nextAttemptAt <= $0 } ?? true)
        }
        .sorted { $0.key < $1.key }
        .prefix(limit)
        .map { OutboxItem(key: $0.key, payload: $0.value.payload, attempts: $0.value.attempts) }
    }
    func markDelivered(_ keys: [RecordKey], at: Date) {
        for k in keys {
            rows[k]?.state = .delivered
            deliveredCalls[k, default: 0] += 1
        }
    }
    func reschedule(_ retries: [OutboxRetry]) {
        for r in retries {
            rows[r.key]?.attempts = r.attempts
            rows[r.key]?.nextAttemptAt = r.nextAttemptAt
            rows[r.key]?.lastError = r.error
        }
    }
    func park(_ parkings: [OutboxParking]) {
        for p in parkings {
            rows[p.key]?.state = .parked
            rows[p.key]?.lastError = p.reason
        }
    }
    func nextAttemptDate() -> Date? {
        rows.values.filter { $0.state == .pending }.map(\.nextAttemptAt).min()
    }
    func count(_ state: State) -> Int { rows.values.filter { $0.state == state }.count }
    func keys(_ state: State) -> Set<RecordKey> { Set(rows.filter { $0.value.state == state }.keys) }
    func row(_ key: RecordKey) -> Row? { rows[key] }
}

/// Test records: `n` students checking in, with an UPDATE (version 2) for every fifth.
func sampleRecords(_ n: Int, day: String = "2026-09-07") -> [SectorRecord] {
    var out: [SectorRecord] = []
    for i in 0..<n {
        let id = String(format: "evt-%05d-%@", i, day)
        let base = SectorRecord(
            recordID: id, eventKind: .new, version: 1, updatedAt: "2026-09-07T00:\(String(format: "%02d", i % 60)):00Z",
            schoolCode: "79000001", gradeCode: "6", classCode: "6A\(i % 3)", studentCode: String(format: "HS%06d", i),
            schoolDay: day, session: "morning", kind: "check_in", status: i % 7 == 0 ? "late" : "present",
            occurredAt: "2026-09-07T00:\(String(format: "%02d", i % 60)):00Z", camera: "gate-1")
        out.append(base)
        if i % 5 == 0 {
            var update = base
            update.eventKind = .update
            update.version = 2
            update.status = "excused"
            update.updatedAt = "2026-09-07T05:00:00Z"
            out.append(update)
        }
    }
    return out
}

/// Backoff small enough for tests (milliseconds), so retries are due again almost at once.
let testBackoff = BackoffPolicy(initial: 0.001, multiplier: 2, maximum: 0.01)
