import Attendance
import AttendanceConsole
import AttendanceCore
import AttendancePostgres
import AttendanceTesting
import Foundation
import Hummingbird
import HummingbirdTesting
import XCTest

/// The web console on a gate box in postgresql mode (#17): its roster, consent, enrolment, correction, excuse, review
/// and erasure pages write to the school's server first, then the box's copy, with the same rules and audit entries
/// as the CLI; with the server unreachable they are refused and nothing changes. In-process (Hummingbird's router
/// test client), over a real PostgreSQL and the box's real SQLite copy.
final class SchoolConsoleServerTests: XCTestCase {
    static let password = "mat-khau-dai-du"

    /// A box in postgresql mode: the school's key, its copy refreshed from `db`, an admin account of its own.
    static func box(_ db: TestDatabase, key: Data, for test: XCTestCase) async throws -> (store: AttendanceStore, dir: String) {
        let dir = NSTemporaryDirectory() + "console-box-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        test.addTeardownBlock { try? FileManager.default.removeItem(atPath: dir) }
        var config = AttendanceConfig()
        config.school.code = "79000001"
        config.database.path = dir + "/gate.sqlite"
        config.database.backend = .postgresql
        _ = FileManager.default.createFile(
            atPath: config.database.resolvedKeyFile, contents: key, attributes: [.posixPermissions: 0o600])
        let store = try AttendanceStore.open(config: config)
        try await SchoolGallerySync.refreshOnce(store: store, connector: db.gate)
        try store.accounts.add(name: "admin", role: .admin, password: Self.password, hashing: PasswordHash(logN: 10))
        return (store, dir)
    }

    func testTheConsolesChangesOnABoxGoToTheServerFirst() async throws {
        let db = try await freshDatabase()
        let office = try await schoolOnServer(db, students: 3, faces: 1)
        let (store, _) = try await Self.box(db, key: office.keyBytes, for: self)
        let (an, binh, cuong) = (GateJournal.code(0), GateJournal.code(1), GateJournal.code(2))
        let server = SchoolServer(store: store, connector: db.gate)
        // A check-in the front gate held back, already on the server.
        let held = try await server.records.hold(
            NewAttendanceEvent(
                studentCode: cuong, schoolDay: GateJournal.day, session: "morning", kind: .checkIn, status: .present,
                occurredAt: Date(), camera: "cong-truoc", distance: 0.3), liveness: 0.05, reason: .spoof)
        guard case .held(let heldID) = held else { return XCTFail("\(held)") }
        let mark = try await db.int("SELECT max(id) FROM audit_log")

        let console = try SchoolConsole(store: store, school: server)
        try await Application(router: console.router()).test(.router) { client in
            let browser = ConsoleBrowser(client: client)
            try await browser.signIn("admin", Self.password)
            let csrf = try await browser.csrf(from: "/students/\(an)")
            func post(_ path: String, _ form: [String: String]) async throws -> ConsoleBrowser.Answer {
                var form = form
                form["csrf"] = csrf
                return try await browser.post(path, form)
            }
            let revoked = try await post("/students/\(binh)/consent/revoke", ["reason": "thư của mẹ"])
            XCTAssertEqual(revoked.status, .ok, revoked.text)
            let recorded = try await post(
                "/students/\(binh)/consent",
                ["guardian": "Trần Văn B", "relation": "father", "date": "01/09/2026", "child": "1"])
            XCTAssertEqual(recorded.status, .ok, recorded.text)
            let unenrolled = try await post("/students/\(an)/unenrol", [:])
            XCTAssertTrue(unenrolled.text.contains("Đã xoá 1 khuôn mặt"), unenrolled.text)
            let corrected = try await post(
                "/students/\(an)/correct", ["date": "2026-12-02", "status": "late", "reason": "đến lúc 07:20"])
            XCTAssertTrue(corrected.text.contains("Đã sửa điểm danh"), corrected.text)
            let excused = try await post("/students/\(binh)/excuse", ["date": "2026-12-02", "reason": "Ốm"])
            XCTAssertTrue(excused.text.contains("Đã ghi nhận nghỉ có phép"), excused.text)
            let queue = try await browser.get("/review")
            XCTAssertTrue(queue.text.contains("Học Sinh 2"), "the school's held check-in: \(queue.text)")
            let accepted = try await post("/review/\(heldID)/accept", [:])
            XCTAssertTrue(accepted.text.contains("Đã ghi nhận điểm danh của Học Sinh 2"), accepted.text)
            let roster = "Mã định danh,Họ và tên,Lớp\n79000000009,Phạm Thị Dung,6A1\n"
            let imported = try await post(
                "/roster/confirm", ["pending": Data(roster.utf8).base64EncodedString(), "file": "them.csv"])
            XCTAssertTrue(imported.text.contains("Đã nhập: 1 học sinh, thêm 1"), imported.text)
            let erased = try await post("/students/\(binh)/erase", ["reason": "chuyển trường"])
            XCTAssertEqual(erased.status, .ok, erased.text)
        }

        // On the server, audited there (by the console user), and in the box's copy.
        assertEqual(
            try await db.strings("SELECT action FROM audit_log WHERE id > \(mark) ORDER BY id"),
            [
                "consent.revoke", "consent.record", "unenrol", "attendance.correct", "attendance.excuse", "review.accept",
                "roster.import", "student.erase",
            ])
        assertEqual(try await db.strings("SELECT DISTINCT os_user FROM audit_log WHERE id > \(mark)"), ["console:admin"])
        assertEqual(try await db.int("SELECT count(*) FROM enrolment WHERE student_code = '\(an)'"), 0)
        assertEqual(
            try await db.strings("SELECT student_code || ' ' || status FROM attendance_event ORDER BY student_code"),
            ["\(an) late", "\(cuong) present"])
        assertEqual(try await db.strings("SELECT state FROM review_hold"), ["accepted"])
        assertEqual(try await db.int("SELECT count(*) FROM student WHERE code IN ('79000000009', '\(binh)')"), 1)
        assertEqual(try store.enrolments.list(student: an).count, 0, "the box's copy")
        assertEqual(try store.events.recorded(on: GateJournal.day).map(\.studentCode), [an, cuong], "the box's journal")
        XCTAssertNil(try store.roster.student(code: binh), "erased in the box's copy")
        XCTAssertNotNil(try store.roster.student(code: "79000000009"))
    }

    /// The console's pages and exports on a box show the whole school: another gate's record, read from the server.
    /// With the server unreachable a page shows the box's copy, and an export is refused.
    func testThePagesAndExportsReadTheSchoolsServer() async throws {
        let db = try await freshDatabase()
        let office = try await schoolOnServer(db, students: 2, faces: 1)
        let (store, _) = try await Self.box(db, key: office.keyBytes, for: self)
        let (an, binh) = (GateJournal.code(0), GateJournal.code(1))
        let server = SchoolServer(store: store, connector: db.gate)
        let today = AttendanceReports(store: store).today
        // Recorded by the back gate (on the server, not in this box's journal).
        for (code, day) in [(an, today), (binh, GateJournal.day)] {
            let recorded = try await server.records.record(
                NewAttendanceEvent(
                    studentCode: code, schoolDay: day, session: "morning", kind: .checkIn, status: .late,
                    occurredAt: Date(), camera: "cong-sau", distance: 0.3))
            XCTAssertTrue(recorded)
        }
        assertEqual(try store.events.recorded(on: today), [], "not in this box's journal yet")

        let console = try SchoolConsole(store: store, school: server)
        try await Application(router: console.router()).test(.router) { client in
            let browser = ConsoleBrowser(client: client)
            try await browser.signIn("admin", Self.password)
            let json = try await browser.get("/api/classes/6A1/today")
            XCTAssertTrue(json.text.contains(#""status":"late""#), json.text)
            let csv = try await browser.get("/exports/daily?date=\(GateJournal.day)&format=csv&class=6A2")
            XCTAssertEqual(csv.status, .ok, csv.text)
            XCTAssertTrue(csv.text.contains(binh), csv.text)
            XCTAssertTrue(csv.text.lowercased().contains("muộn") || csv.text.contains("late"), csv.text)
        }
        assertEqual(try store.events.recorded(on: today).map(\.studentCode), [an], "the box's copy, from the server")
        assertEqual(try store.events.unsharedCount(), 0, "nothing to send back")

        var unreachable = store.config.database
        unreachable.url = try PostgresURL(parsing: "postgresql://attendance_gate@127.0.0.1:\(try freePort())/\(db.name)")
        unreachable.passwordFile = db.cluster.gatePasswordFile
        unreachable.tls = .disable
        let down = try SchoolConsole(
            store: store, school: SchoolServer(store: store, connector: try PostgresConnector(config: unreachable)))
        try await Application(router: down.router()).test(.router) { client in
            let browser = ConsoleBrowser(client: client)
            try await browser.signIn("admin", Self.password)
            let page = try await browser.get("/classes/6A1")
            XCTAssertEqual(page.status, .ok, "the box's copy is shown")
            let export = try await browser.get("/exports/daily?date=\(GateJournal.day)&format=csv")
            XCTAssertEqual(export.status, .badRequest, export.text)
            XCTAssertTrue(export.text.contains("không đọc được dữ liệu điểm danh từ máy chủ của trường"), export.text)
        }
    }

    func testWithTheServerUnreachableTheConsoleChangesNothing() async throws {
        let db = try await freshDatabase()
        let office = try await schoolOnServer(db, students: 2, faces: 1)
        let (store, _) = try await Self.box(db, key: office.keyBytes, for: self)
        let an = GateJournal.code(0)
        var unreachable = store.config.database
        unreachable.url = try PostgresURL(parsing: "postgresql://attendance_gate@127.0.0.1:\(try freePort())/\(db.name)")
        unreachable.passwordFile = db.cluster.gatePasswordFile
        unreachable.tls = .disable
        let down = SchoolServer(store: store, connector: try PostgresConnector(config: unreachable))
        let mark = try await db.int("SELECT max(id) FROM audit_log")
        for school in [down as (any ServerFirstWrites)?, nil] {
            let console = try SchoolConsole(store: store, school: school)
            try await Application(router: console.router()).test(.router) { client in
                let browser = ConsoleBrowser(client: client)
                try await browser.signIn("admin", Self.password)
                let csrf = try await browser.csrf(from: "/students/\(an)")
                let unenrol = try await browser.post("/students/\(an)/unenrol", ["csrf": csrf])
                XCTAssertEqual(unenrol.status, .badRequest, unenrol.text)
                guard school != nil else {
                    // Without the server, the box's own store refuses a roster, consent or face change.
                    return XCTAssertTrue(unenrol.text.contains("chỉ giữ bản sao"), unenrol.text)
                }
                XCTAssertTrue(unenrol.text.contains("không lưu được lên máy chủ của trường"), unenrol.text)
                let excuse = try await browser.post(
                    "/students/\(an)/excuse", ["csrf": csrf, "date": "2026-12-02", "reason": "Ốm"])
                XCTAssertEqual(excuse.status, .badRequest, excuse.text)
                XCTAssertTrue(excuse.text.contains("nothing was excused"), excuse.text)
            }
        }
        assertEqual(try await db.int("SELECT max(id) FROM audit_log"), mark, "nothing on the server")
        assertEqual(try await db.int("SELECT count(*) FROM enrolment WHERE student_code = '\(an)'"), 1)
        assertEqual(try store.enrolments.list(student: an).count, 1, "nor in the box's copy")
        assertEqual(try store.events.excuses(), [], "no excuse in the box's journal")
    }
}

/// Photos uploaded on the console of a box in postgresql mode: checked against the school's faces (the box's copy),
/// sealed on the box and stored on the server first, then in the box's copy.
final class SchoolConsoleEnrolEndToEndTests: XCTestCase {
    func testPhotosUploadedOnABoxAreEnrolledOnTheServer() async throws {
        let (samples, models, _) = try gateBoxFixtures(needing: "obama3.jpg")
        let db = try await freshDatabase()
        let office = try await schoolOnServer(db, students: 2, faces: 0)
        let (store, _) = try await SchoolConsoleServerTests.box(db, key: office.keyBytes, for: self)
        let an = GateJournal.code(0)
        let console = try SchoolConsole(store: store, models: models, school: SchoolServer(store: store, connector: db.gate))
        let photo = try XCTUnwrap(FileManager.default.contents(atPath: samples + "/obama3.jpg"))
        try await Application(router: console.router()).test(.router) { client in
            let browser = ConsoleBrowser(client: client)
            try await browser.signIn("admin", SchoolConsoleServerTests.password)
            let csrf = try await browser.csrf(from: "/students/\(an)")
            let r = try await browser.upload(
                "/students/\(an)/enrol", fields: ["csrf": csrf], file: ("photo", "obama3.jpg", Array(photo)))
            XCTAssertEqual(r.status, .ok, r.text)
        }
        let onServer = try await db.int("SELECT count(*) FROM enrolment WHERE student_code = '\(an)'")
        XCTAssertGreaterThan(onServer, 0, "stored on the server")
        assertEqual(try store.enrolments.list(student: an).count, onServer, "and in the box's copy")
        assertEqual(try await db.strings("SELECT action FROM audit_log WHERE action = 'enrol'"), ["enrol"])
    }
}

/// Figures for the note: a school day of 1,500 students (in and out at the front gate, 3,000 records on the server)
/// read into another box's copy, as a console page or an export on that box does first; then again, with nothing new.
final class PullFiguresEndToEndTests: XCTestCase {
    func testPullingASchoolDayOf1500StudentsIntoABox() async throws {
        let n = 1_500
        let db = try await freshDatabase()
        let office = try await schoolOnServer(db, students: n, faces: 0)
        let front = try GateJournal(students: 0, key: office.keyBytes)
        try await SchoolGallerySync.refreshOnce(store: front.store, connector: db.gate)
        for i in 0..<n {
            try front.record(i, camera: "cong-truoc")
            try front.record(i, kind: .checkOut, camera: "cong-truoc")
        }
        let sender = JournalSender(store: front.store, connector: db.gate, gate: "front", logger: quietLogger)
        try await db.gate.withConnection { c in while try await sender.sendBatch(on: c) > 0 {} }
        assertEqual(try await db.int("SELECT count(*) FROM attendance_event"), 2 * n)

        let back = try GateJournal(students: 0, key: office.keyBytes)
        try await SchoolGallerySync.refreshOnce(store: back.store, connector: db.gate)
        let server = SchoolServer(store: back.store, connector: db.gate)
        let clock = ContinuousClock()
        var start = clock.now
        let first = try await server.pullEvents(from: GateJournal.day, to: GateJournal.day)
        let firstTime = clock.now - start
        start = clock.now
        let again = try await server.pullEvents(from: GateJournal.day, to: GateJournal.day)
        let againTime = clock.now - start
        assertEqual([first, again], [2 * n, 0])
        assertEqual(try back.store.events.recorded(on: GateJournal.day).count, 2 * n)
        assertEqual(try back.store.events.unsharedCount(), 0, "nothing to send back")
        print("FIGURE pull of a school day (\(2 * n) records) into a box: \(firstTime); again, nothing new: \(againTime)")
    }
}
