import Attendance
import AttendanceCore
import AttendancePostgres
import AttendanceTesting
import FaceEngine
import Foundation
import Logging
import PostgresNIO
import XCTest

// Fixtures for the PostgreSQL tests: a real server (the test process starts a throwaway cluster with
// scripts/pg-cluster.sh), a fresh database per test, and gate journals (SQLite stores) built through the store's API.

let quietLogger: Logger = {
    var l = Logger(label: "test.postgres")
    l.logLevel = .warning
    return l
}()

/// A database of its own on a cluster, with the schema created by the owner role.
struct TestDatabase {
    let cluster: PostgresCluster
    let name: String
    /// The owner role (migrations, the copy, the tests' own checks).
    let owner: PostgresConnector
    /// The gate daemons' role.
    let gate: PostgresConnector

    /// Rows of a query's first column, as the owner sees them.
    func ints(_ sql: String) async throws -> [Int] {
        try await owner.withConnection { c in
            var out: [Int] = []
            for try await row in try await c.query(PostgresQuery(unsafeSQL: sql), logger: quietLogger) {
                out.append(try row.decode(Int.self))
            }
            return out
        }
    }

    func int(_ sql: String) async throws -> Int { try await ints(sql).first ?? -1 }

    func strings(_ sql: String) async throws -> [String] {
        try await owner.withConnection { c in
            var out: [String] = []
            for try await row in try await c.query(PostgresQuery(unsafeSQL: sql), logger: quietLogger) {
                out.append(try row.decode(String.self))
            }
            return out
        }
    }
}

extension XCTestCase {
    /// Skips (with the reason) only when PostgreSQL's server binaries are not installed.
    func requirePostgres() throws {
        if let reason = PostgresCluster.unavailableReason { throw XCTSkip(reason) }
    }

    /// A new empty database on `cluster` (default: the process's shared cluster), its schema migrated.
    func freshDatabase(on cluster: PostgresCluster? = nil, migrate: Bool = true) async throws -> TestDatabase {
        try requirePostgres()
        let cluster = try cluster ?? PostgresCluster.shared()
        let name = "t_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased().prefix(16)
        let url = try PostgresURL(parsing: cluster.ownerURL)
        let admin = PostgresConnector(
            url: url, password: try secret(cluster.ownerPasswordFile), tls: .disable)
        try await admin.withConnection { c in
            try await c.query(PostgresQuery(unsafeSQL: "CREATE DATABASE \(name) OWNER attendance_owner"), logger: quietLogger)
        }
        let owner = admin.with(database: String(name))
        let gateURL = try PostgresURL(parsing: cluster.url(cluster.gateURL, database: String(name)))
        let gate = PostgresConnector(
            url: gateURL, password: try secret(cluster.gatePasswordFile), tls: .disable)
        if migrate {
            try await owner.withConnection { c in _ = try await PostgresSchema.migrate(on: c, daemonRole: "attendance_gate") }
        }
        return TestDatabase(cluster: cluster, name: String(name), owner: owner, gate: gate)
    }
}

/// A gate box's SQLite store (its journal) in a private temporary folder, removed afterwards.
final class GateJournal {
    let dir: String
    let store: AttendanceStore
    static let day = LocalDate(year: 2026, month: 12, day: 2)

    /// A store with `students` students (codes 79000000001 ...) in two classes, each with consent.
    init(school: String = "79000001", students: Int, key: Data? = nil, dir: String? = nil) throws {
        self.dir = dir ?? NSTemporaryDirectory() + "gate-journal-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: self.dir, withIntermediateDirectories: true)
        var config = AttendanceConfig()
        config.school.code = school
        config.database.path = self.dir + "/gate.sqlite"
        if let key {
            _ = FileManager.default.createFile(
                atPath: config.database.resolvedKeyFile, contents: key, attributes: [.posixPermissions: 0o600])
        }
        store = try AttendanceStore.open(config: config)
        guard students > 0 else { return }
        var csv = "Mã định danh,Họ và tên,Lớp,Ngày sinh,Giới tính\n"
        for i in 0..<students {
            csv += "\(Self.code(i)),Học Sinh \(i),\(i % 2 == 0 ? "6A1" : "6A2"),05/09/2013,\(i % 2 == 0 ? "Nam" : "Nữ")\n"
        }
        let file = self.dir + "/roster.csv"
        try Data(csv.utf8).write(to: URL(fileURLWithPath: file))
        _ = try store.roster.importRoster(try RosterParser.parse(contentsOf: file, today: Self.day))
        for i in 0..<students {
            try store.consent.record(
                student: Self.code(i), guardian: "Phụ huynh \(i)", relation: "mother", date: Self.day, childAgreed: true)
        }
    }

    deinit { try? FileManager.default.removeItem(atPath: dir) }

    static func code(_ i: Int) -> String { String(format: "790%08d", i + 1) }

    /// Records one decision as the gate's decider would (`EventLedger.record`: event + outbox, one transaction).
    @discardableResult
    func record(_ i: Int, kind: EventKind = .checkIn, camera: String, at: Date = Date(), session: String = "morning")
        throws -> Bool
    {
        try store.events.record(
            NewAttendanceEvent(
                studentCode: Self.code(i), schoolDay: Self.day, session: session, kind: kind, status: .present,
                occurredAt: at, camera: camera, distance: 0.3))
    }

    /// The key file's bytes (every box of a school holds the same key).
    var keyBytes: Data { FileManager.default.contents(atPath: store.keyFile)! }
}

/// Waits until `condition` holds, checking every 20 ms, for at most `seconds` (a guard against a hang, not a
/// measurement: the tests assert on the outcome).
func eventually(_ what: String, within seconds: Double = 60, _ condition: () async throws -> Bool) async throws {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if try await condition() { return }
        try await Task.sleep(for: .milliseconds(20))
    }
    XCTFail("not within \(seconds) s: \(what)")
}

/// `XCTAssertEqual` with its values evaluated first, so they may be `await`ed.
func assertEqual<T: Equatable>(
    _ a: T, _ b: T, _ message: @autoclosure () -> String = "", file: StaticString = #filePath, line: UInt = #line
) {
    XCTAssertEqual(a, b, message(), file: file, line: line)
}

/// A password file's text without its line end (as `[database] password_file` reads it).
func secret(_ file: String) throws -> String {
    try String(contentsOfFile: file, encoding: .utf8).trimmingCharacters(in: .newlines)
}

/// What an end-to-end test of gate boxes needs: the checkout's sample images (with `sample` among them), its models
/// and the built `attendance`; the test is skipped with the command that provides what is missing.
func gateBoxFixtures(needing sample: String) throws -> (samples: String, models: ModelPaths, exe: String) {
    let root = SchoolCopyEndToEndTests.root
    let samples = root + "/.testdata"
    guard FileManager.default.fileExists(atPath: samples + "/" + sample) else { throw XCTSkip("run `make testdata`") }
    let models = ModelPaths(directory: root + "/Models")
    guard FileManager.default.fileExists(atPath: models.embedding) else { throw XCTSkip("run `make models`") }
    let exe = BuiltProducts.directory.appendingPathComponent("attendance").path
    guard FileManager.default.isExecutableFile(atPath: exe) else { throw XCTSkip("attendance is not built (swift build)") }
    return (samples, models, exe)
}
