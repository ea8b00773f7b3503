import AttendanceCore
import AttendanceTesting
import Foundation
import GRDB
import SectorConnector
import XCTest

@testable import Attendance

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

// Fixtures shared by the connector and export tests: a real store in a temporary folder with a small
// roster, the built executables, and the reference gateway as a child process.

struct FixtureError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

enum Fixture {
    /// A built executable (`attendance`, `sector-gateway`) beside the test binary.
    static func executable(_ name: String) throws -> URL { try BuiltProducts.executable(name) }

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

    /// The fixtures' school: code 79000001, a Wednesday holiday.
    static var config: AttendanceConfig {
        var c = AttendanceConfig()
        c.school.code = "79000001"
        c.schedule.holidays = ["2026-09-09"]
        return c
    }

    /// The fixtures' school in a temporary folder, built through the store's own API: the roster imported
    /// (the inactive student left the school: a whole-school import without them), nobody enrolled.
    static func makeStore(in dir: URL, config: AttendanceConfig = Fixture.config) throws -> AttendanceStore {
        let store = try AttendanceStore(
            path: dir.appendingPathComponent("att.sqlite").path,
            keyFile: dir.appendingPathComponent("att.key").path, config: config)
        try importPupils(into: store)
        return store
    }

    /// The same school in memory (nothing on disk): for tests of the store's and the reports' rules.
    static func memoryStore(config: AttendanceConfig = Fixture.config) throws -> AttendanceStore {
        let store = try AttendanceStore.inMemory(config: config)
        try importPupils(into: store)
        return store
    }

    private static func importPupils(into store: AttendanceStore) throws {
        func csv(_ pupils: [Pupil]) -> String {
            let quoted = { (s: String) in "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" }
            return
                (["Mã định danh,Họ và tên,Lớp,Ngày sinh"]
                + pupils.map { [$0.code, quoted($0.name), $0.classCode, $0.dob ?? ""].joined(separator: ",") })
                .joined(separator: "\n")
        }
        let today = LocalDate(year: 2026, month: 8, day: 1)
        let leaver = Pupil(code: "HS0099", name: "Đã Chuyển Trường", classCode: "6A1", dob: nil)
        _ = try store.roster.importRoster(RosterParser.parse(text: csv(pupils + [leaver]), file: "roster.csv", today: today))
        _ = try store.roster.importRoster(
            RosterParser.parse(text: csv(pupils), file: "roster.csv", today: today),
            options: RosterImportOptions(wholeSchool: true))
    }

    /// An instant at local wall-clock time in Asia/Ho_Chi_Minh (UTC+7).
    static func at(_ day: String, _ time: String) -> Date {
        Timestamp.date("\(day)T\(time).000Z")!.addingTimeInterval(-7 * 3600)
    }

    /// Records `n` check-ins (`n` events, each a NEW outbox row) spread over school days for the pupils.
    @discardableResult
    static func recordEvents(_ store: AttendanceStore, count n: Int) throws -> Int {
        var made = 0
        var day = LocalDate("2026-09-07")!
        while made < n {
            for (i, p) in pupils.enumerated() where made < n {
                let e = NewAttendanceEvent(
                    studentCode: p.code, schoolDay: day, session: "morning", kind: .checkIn,
                    status: .present, occurredAt: at(day.description, String(format: "06:%02d:00", 30 + i)),
                    camera: "gate-1", distance: 0.35)
                if try store.events.record(e) { made += 1 }
            }
            day = day.adding(days: 1)
        }
        return made
    }

    struct OutboxRow: Equatable {
        var key: RecordKey, state: String, eventKind: String, payload: String
    }

    static func outbox(_ store: AttendanceStore) throws -> [OutboxRow] {
        try store.writer.read { db in
            try Row.fetchAll(
                db, sql: "SELECT record_id, version, state, event_kind, payload FROM outbox ORDER BY record_id, version"
            ).map {
                OutboxRow(key: RecordKey(recordID: $0[0], version: $0[1]), state: $0[2], eventKind: $0[3], payload: $0[4])
            }
        }
    }
}
