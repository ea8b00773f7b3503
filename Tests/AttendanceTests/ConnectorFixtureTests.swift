import Attendance
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import GRDB
import SectorConnector
import XCTest

// Fixtures shared by the connector and export tests: a real store in a temporary folder with a small
// roster, the built executables, and the reference gateway as a child process.

struct FixtureError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

enum Fixture {
    /// The folder holding the built products (`sector-gateway`, `attendance`) beside the test binary.
    static var productsDirectory: URL {
        if let dir = ProcessInfo.processInfo.environment["ATTENDANCE_PRODUCTS_DIR"] { return URL(fileURLWithPath: dir) }
        var dir = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent()
        while dir.path != "/" && !FileManager.default.fileExists(atPath: dir.appendingPathComponent("sector-gateway").path) {
            dir = dir.deletingLastPathComponent()
        }
        return dir
    }

    static func executable(_ name: String) throws -> URL {
        let url = productsDirectory.appendingPathComponent(name)
        guard FileManager.default.isExecutableFile(atPath: url.path) else {
            throw FixtureError("\(name) is not built at \(url.path): run `swift build --build-tests` (make test does)")
        }
        return url
    }

    /// The package root (for scripts/).
    static var packageRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    static func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("attendance-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    struct Pupil {
        var code: String, name: String, classCode: String, dob: String?
    }

    /// Two classes, Vietnamese names (NFC), one inactive student who never appears in reports.
    static let pupils: [Pupil] = [
        Pupil(code: "HS0001", name: "Nguyễn Thị Ánh", classCode: "6A1", dob: "2014-03-02"),
        Pupil(code: "HS0002", name: "Trần Văn Bình", classCode: "6A1", dob: "2014-07-19"),
        Pupil(code: "HS0003", name: "Lê Hoàng Cường", classCode: "6A1", dob: nil),
        Pupil(code: "HS0004", name: "Phạm Đức Duy, \"Bé\"", classCode: "7B2", dob: "2013-01-30"),
        Pupil(code: "HS0005", name: "Võ Ngọc Yến", classCode: "7B2", dob: "2013-11-11"),
    ]

    static func makeStore(in dir: URL) throws -> AttendanceStore {
        let store = try AttendanceStore(path: dir.appendingPathComponent("att.sqlite").path,
                                        keyFile: dir.appendingPathComponent("att.key").path)
        try store.dbPool.write { db in
            for (code, grade) in [("6A1", "6"), ("7B2", "7")] {
                try db.execute(sql: "INSERT INTO school_class(code, grade_code, name) VALUES (?, ?, ?)", arguments: [code, grade, "Lớp \(code)"])
            }
            for p in pupils {
                try db.execute(sql: """
                    INSERT INTO student(code, full_name, class_code, date_of_birth, gender, active, created_at, updated_at)
                    VALUES (?, ?, ?, ?, NULL, 1, '2026-08-01T00:00:00.000Z', '2026-08-01T00:00:00.000Z')
                    """, arguments: [p.code, p.name, p.classCode, p.dob])
            }
            try db.execute(sql: """
                INSERT INTO student(code, full_name, class_code, date_of_birth, gender, active, created_at, updated_at)
                VALUES ('HS0099', 'Đã Chuyển Trường', '6A1', NULL, NULL, 0, '2026-08-01T00:00:00.000Z', '2026-08-01T00:00:00.000Z')
                """)
        }
        return store
    }

    /// An instant at local wall-clock time in Asia/Ho_Chi_Minh (UTC+7).
    static func at(_ day: String, _ time: String) -> Date {
        Timestamp.date("\(day)T\(time).000Z")!.addingTimeInterval(-7 * 3600)
    }

    /// Records `n` check-ins (`n` events, each a NEW outbox row) spread over school days for the pupils.
    @discardableResult
    static func recordEvents(_ store: AttendanceStore, count n: Int, schoolCode: String = "79000001") throws -> Int {
        var made = 0
        var day = LocalDate("2026-09-07")!
        while made < n {
            for (i, p) in pupils.enumerated() where made < n {
                let e = NewAttendanceEvent(studentCode: p.code, schoolDay: day, session: "morning", kind: .checkIn,
                                           status: .present, occurredAt: at(day.description, String(format: "06:%02d:00", 30 + i)),
                                           camera: "gate-1", distance: 0.35)
                if try store.recordEvent(e, schoolCode: schoolCode) { made += 1 }
            }
            day = day.adding(days: 1)
        }
        return made
    }

    struct OutboxRow: Equatable {
        var key: RecordKey, state: String, eventKind: String, payload: String
    }

    static func outbox(_ store: AttendanceStore) throws -> [OutboxRow] {
        try store.dbPool.read { db in
            try Row.fetchAll(db, sql: "SELECT record_id, version, state, event_kind, payload FROM outbox ORDER BY record_id, version").map {
                OutboxRow(key: RecordKey(recordID: $0[0], version: $0[1]), state: $0[2], eventKind: $0[3], payload: $0[4])
            }
        }
    }
}

/// The reference gateway as a child process (see Tests/SectorConnectorTests for the connector's own tests).
final class GatewayChild: @unchecked Sendable {
    let process = Process()
    let stdinPipe = Pipe()
    let port: Int
    let token: String
    let tokenFile: String
    var baseURL: String { "http://127.0.0.1:\(port)" }

    init(directory: URL, port: Int = 0, token: String = "tok-\(UUID().uuidString)", arguments: [String] = []) async throws {
        self.token = token
        tokenFile = directory.appendingPathComponent("gateway.token").path
        try Data((token + "\n").utf8).write(to: URL(fileURLWithPath: tokenFile))
        chmod(tokenFile, 0o600)
        process.executableURL = try Fixture.executable("sector-gateway")
        process.arguments = ["--port", "\(port)", "--store", directory.appendingPathComponent("gateway.jsonl").path,
                             "--token-file", tokenFile, "--exit-on-stdin-eof"] + arguments
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
        guard let r = line.range(of: "listening on http://127.0.0.1:"), let p = Int(line[r.upperBound...].prefix(while: \.isNumber)) else {
            process.terminate()
            throw FixtureError("gateway did not start: \(line)")
        }
        self.port = p
    }

    func stop() {
        guard process.isRunning else { return }
        process.terminate()
        process.waitUntilExit()
    }

    deinit { stop() }

    func call(_ method: String, _ path: String, json: Any? = nil) async throws -> Data {
        var r = URLRequest(url: URL(string: baseURL + path)!)
        r.httpMethod = method
        r.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization")
        if let json {
            r.httpBody = try JSONSerialization.data(withJSONObject: json)
            r.setValue("application/json", forHTTPHeaderField: "Content-Type")
        }
        let (data, response) = try await URLSession.shared.data(for: r)
        guard (response as? HTTPURLResponse)?.statusCode == 200 else {
            throw FixtureError("\(method) \(path): \((response as? HTTPURLResponse)?.statusCode ?? 0) \(String(decoding: data, as: UTF8.self))")
        }
        return data
    }

    func setFaults(_ faults: [String: Any]) async throws { _ = try await call("PUT", "/admin/faults", json: faults) }

    struct Stats: Decodable { var posts: Int, accepted: Int, duplicate: Int, stale: Int, rejected: Int, stored: Int }
    func stats() async throws -> Stats { try JSONDecoder().decode(Stats.self, from: try await call("GET", "/admin/stats")) }

    struct Stored: Decodable { var record: SectorRecord }
    struct Listing: Decodable { var records: [Stored] }
    func records(latestOnly: Bool = false) async throws -> [SectorRecord] {
        try JSONDecoder().decode(Listing.self, from: try await call("GET", "/v1/attendance-records" + (latestOnly ? "?latest=true" : ""))).records.map(\.record)
    }
}
