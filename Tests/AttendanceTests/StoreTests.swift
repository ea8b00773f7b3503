import Foundation
import GRDB
import SectorConnector
import XCTest

@testable import Attendance
@testable import AttendanceCore

final class StoreTests: XCTestCase {
    func testOpenCreatesPrivateFilesWALAndContractSchema() throws {
        let tmp = try TempStore()
        let store = try tmp.open()
        for p in [tmp.path, tmp.keyFile] {
            let mode = (try FileManager.default.attributesOfItem(atPath: p)[.posixPermissions] as! NSNumber).intValue
            XCTAssertEqual(mode, 0o600, p)
        }
        XCTAssertEqual(FileManager.default.contents(atPath: tmp.keyFile)?.count, 32)
        try store.writer.read { db in
            XCTAssertEqual(try String.fetchOne(db, sql: "PRAGMA journal_mode"), "wal")
            XCTAssertEqual(try Int.fetchOne(db, sql: "PRAGMA foreign_keys"), 1)
            let expected: [String: [String]] = [
                "school_class": ["code", "grade_code", "name"],
                "student": ["code", "full_name", "class_code", "date_of_birth", "gender", "active", "created_at", "updated_at"],
                "consent": [
                    "id", "student_code", "guardian_name", "relation", "consent_date", "scope", "recorded_by",
                    "recorded_at", "revoked_at", "revoked_by",
                ],
                "enrolment": ["id", "student_code", "sealed_embedding", "quality", "source", "created_at", "created_by"],
                "attendance_event": [
                    "id", "student_code", "school_day", "session", "kind", "status", "occurred_at", "camera",
                    "distance", "version", "cancelled",
                ],
                "outbox": [
                    "record_id", "version", "event_kind", "payload", "state", "attempts", "next_attempt_at",
                    "last_error", "created_at", "delivered_at",
                ],
                "excuse": ["student_code", "school_day", "reason", "recorded_by", "recorded_at"],
                "audit_log": ["id", "at", "os_user", "action", "subject", "detail"],
                "unknown_face": ["id", "seen_at", "camera", "crop_path"],
                "meta": ["key", "value"],
            ]
            for (table, columns) in expected {
                XCTAssertEqual(try db.columns(in: table).map(\.name), columns, table)
            }
        }
        XCTAssertEqual(try store.enrolments.galleryVersion(), 0)
        // Reopening runs no migration twice and keeps the key.
        let key = FileManager.default.contents(atPath: tmp.keyFile)
        _ = try tmp.open()
        XCTAssertEqual(FileManager.default.contents(atPath: tmp.keyFile), key)
    }

    func testOpenFromConfigUsesDefaultKeyPathNextToTheDatabase() throws {
        let tmp = try TempStore()
        var config = AttendanceConfig()
        config.database.path = tmp.dir + "/sub/dir/att.sqlite"
        _ = try AttendanceStore.open(config: config)
        XCTAssertTrue(FileManager.default.fileExists(atPath: tmp.dir + "/sub/dir/att.sqlite.key"))
    }

    func testRefusesDatabaseOrKeyReadableByOthers() throws {
        let tmp = try TempStore()
        _ = try tmp.open()
        chmod(tmp.path, 0o644)
        XCTAssertThrowsError(try tmp.open()) { error in
            XCTAssertEqual(error as? StoreError, .unsafePermissions(path: tmp.path, mode: 0o644))
            XCTAssertTrue("\(error)".contains("chmod 600 '\(tmp.path)'"), "\(error)")
        }
        chmod(tmp.path, 0o600)
        chmod(tmp.keyFile, 0o640)
        XCTAssertThrowsError(try tmp.open()) { error in
            XCTAssertEqual(error as? StoreError, .unsafePermissions(path: tmp.keyFile, mode: 0o640))
        }
        chmod(tmp.keyFile, 0o600)
        XCTAssertNoThrow(try tmp.open())
    }

    /// Power loss: every connection of the pool, the writer and each reader, commits with synchronous = FULL.
    func testEveryConnectionIsSynchronousFull() async throws {
        let tmp = try TempStore()
        let store = try tmp.open()
        let writer = try await store.writer.write { db in try Int.fetchOne(db, sql: "PRAGMA synchronous") }
        XCTAssertEqual(writer, 2, "writer: FULL")
        // Several readers at once, so the pool opens more than one reader connection.
        let values = try await withThrowingTaskGroup(of: Int?.self) { group in
            for _ in 0..<4 {
                group.addTask {
                    try await store.writer.read { db in
                        Thread.sleep(forTimeInterval: 0.05)
                        return try Int.fetchOne(db, sql: "PRAGMA synchronous")
                    }
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        XCTAssertEqual(values, [2, 2, 2, 2], "readers: FULL")
    }

    /// The record id follows from school, student, day, session and kind: a record lost and made again
    /// reaches the sector as the same record.
    func testRecordIDIsDeterministic() {
        let day = LocalDate(year: 2026, month: 11, day: 23)
        let a = EventLedger.recordID(school: "79000001", student: "7900000001", day: day, session: "morning", kind: .checkIn)
        XCTAssertEqual(
            a, EventLedger.recordID(school: "79000001", student: "7900000001", day: day, session: "morning", kind: .checkIn))
        XCTAssertEqual(a.count, 36)
        XCTAssertNotNil(UUID(uuidString: a))
        for other in [
            EventLedger.recordID(school: "79000002", student: "7900000001", day: day, session: "morning", kind: .checkIn),
            EventLedger.recordID(school: "79000001", student: "7900000002", day: day, session: "morning", kind: .checkIn),
            EventLedger.recordID(
                school: "79000001", student: "7900000001", day: day.adding(days: 1), session: "morning", kind: .checkIn),
            EventLedger.recordID(school: "79000001", student: "7900000001", day: day, session: "afternoon", kind: .checkIn),
            EventLedger.recordID(school: "79000001", student: "7900000001", day: day, session: "morning", kind: .checkOut),
        ] { XCTAssertNotEqual(a, other) }
    }

    /// An admin cancels a wrong match for student 0201; then 0201 arrives: recorded after all, as the
    /// same sector record (NEW v1, CANCEL v2, UPDATE v3).
    func testCancelledWrongMatchThenTheRealStudentArrives() throws {
        let tmp = try TempStore()
        var config = AttendanceConfig()
        config.school.code = "THCS-01"
        let store = try tmp.open(config: config)
        try seedRoster(store, in: tmp)
        let day = LocalDate(year: 2024, month: 9, day: 5)
        let wrong = NewAttendanceEvent(
            studentCode: "0201", schoolDay: day, session: "morning", kind: .checkIn, status: .present,
            occurredAt: Date(timeIntervalSince1970: 1_725_498_000), camera: "gate-1", distance: 0.41)
        XCTAssertTrue(try store.events.record(wrong))
        _ = try store.events.cancelEvent(student: "0201", day: day, session: "morning", reason: "it was his classmate")
        var real = wrong
        real.status = .late
        real.occurredAt = Date(timeIntervalSince1970: 1_725_500_000)
        real.distance = 0.3
        XCTAssertTrue(try store.events.record(real), "the real student's arrival is recorded")
        XCTAssertFalse(try store.events.record(real), "once")
        let id = EventLedger.recordID(school: "THCS-01", student: "0201", day: day, session: "morning", kind: .checkIn)
        try store.writer.read { db in
            let rows = try Row.fetchAll(
                db, sql: "SELECT event_kind, version FROM outbox WHERE record_id = ? ORDER BY version", arguments: [id])
            XCTAssertEqual(rows.map { "\($0[0] as String) v\($0[1] as Int)" }, ["NEW v1", "CANCEL v2", "UPDATE v3"])
            let e = try Row.fetchOne(
                db, sql: "SELECT status, cancelled, version, distance FROM attendance_event WHERE id = ?", arguments: [id])!
            XCTAssertEqual(e[0] as String, "late")
            XCTAssertEqual(e[1] as Int, 0)
            XCTAssertEqual(e[2] as Int, 3)
            XCTAssertEqual(e[3] as Double, 0.3, accuracy: 1e-6)
        }
    }

    func testRecordEventInsertsEventAndOutboxTogetherOnce() throws {
        let tmp = try TempStore()
        var config = AttendanceConfig()
        config.school.code = "THCS-01"
        let store = try tmp.open(config: config)
        try seedRoster(store, in: tmp)
        let at = Date(timeIntervalSince1970: 1_725_500_000.25)
        let recordID = EventLedger.recordID(
            school: "THCS-01", student: "0201", day: LocalDate(year: 2024, month: 9, day: 5),
            session: "morning", kind: .checkIn)
        let event = NewAttendanceEvent(
            studentCode: "0201", schoolDay: LocalDate(year: 2024, month: 9, day: 5),
            session: "morning", kind: .checkIn, status: .late, occurredAt: at,
            camera: "gate-1", distance: 0.31)
        XCTAssertTrue(try store.events.record(event))
        var again = event
        again.status = .present
        XCTAssertFalse(try store.events.record(again), "same student, day, session, kind")
        var checkout = event
        checkout.kind = .checkOut
        XCTAssertTrue(try store.events.record(checkout))

        try store.writer.read { db in
            XCTAssertEqual(try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM attendance_event"), 2)
            XCTAssertEqual(try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM outbox"), 2)
            let row = try Row.fetchOne(db, sql: "SELECT * FROM attendance_event WHERE id = ?", arguments: [recordID])!
            XCTAssertEqual(row["status"] as String, "late")
            XCTAssertEqual(row["occurred_at"] as String, "2024-09-05T01:33:20.250Z")
            XCTAssertEqual(row["version"] as Int, 1)
            let outbox = try Row.fetchOne(db, sql: "SELECT * FROM outbox WHERE record_id = ?", arguments: [recordID])!
            XCTAssertEqual(outbox["event_kind"] as String, "NEW")
            XCTAssertEqual(outbox["state"] as String, "pending")
            XCTAssertEqual(outbox["version"] as Int, 1)
            let record = try JSONDecoder().decode(SectorRecord.self, from: Data((outbox["payload"] as String).utf8))
            XCTAssertEqual(record.recordID, recordID)
            XCTAssertEqual(record.schoolCode, "THCS-01")
            XCTAssertEqual(record.gradeCode, "7")
            XCTAssertEqual(record.classCode, "7B2")
            XCTAssertEqual(record.studentCode, "0201")
            XCTAssertEqual(record.schoolDay, "2024-09-05")
            XCTAssertEqual(record.kind, "check_in")
            XCTAssertEqual(record.status, "late")
            XCTAssertEqual(record.occurredAt, "2024-09-05T01:33:20.250Z")
            XCTAssertEqual(record.camera, "gate-1")
        }
        var stranger = event
        stranger.studentCode = "9999"
        XCTAssertThrowsError(try store.events.record(stranger)) {
            XCTAssertEqual($0 as? StoreError, .unknownStudent("9999"))
        }
    }

    func testAuditLogIsAppendOnly() throws {
        let tmp = try TempStore()
        let store = try tmp.open()
        try store.auditLog.append(action: "export", subject: "daily-2024-09-05.xlsx", detail: "rows=3")
        let entries = try store.auditLog.entries()
        XCTAssertEqual(entries.last?.action, "export")
        XCTAssertEqual(entries.last?.osUser, AttendanceStore.osUser)
        XCTAssertFalse(AttendanceStore.osUser.isEmpty)
        XCTAssertThrowsError(try store.writer.write { try $0.execute(sql: "UPDATE audit_log SET detail = 'x'") })
        XCTAssertThrowsError(try store.writer.write { try $0.execute(sql: "DELETE FROM audit_log") })
        XCTAssertEqual(try store.auditLog.entries().count, entries.count)
    }

    func testGalleryHoldsOnlyActiveConsentedStudentsAndVersionFollowsChanges() throws {
        let tmp = try TempStore()
        let store = try tmp.open()
        try seedRoster(store, in: tmp)
        var v = try store.enrolments.galleryVersion()
        func bumped(_ line: UInt = #line) throws {
            let now = try store.enrolments.galleryVersion()
            XCTAssertGreaterThan(now, v, line: line)
            v = now
        }
        try store.enrolments.add(student: "0101", [(fakeEmbedding(1), nil, "test")])
        try bumped()
        try store.enrolments.add(
            student: "0102", [(fakeEmbedding(2), nil, "test"), (fakeEmbedding(3), nil, "test")])
        try bumped()
        try store.enrolments.add(student: "0201", [(fakeEmbedding(4), nil, "test")])
        try bumped()
        let gallery = try store.enrolments.recognisable()
        XCTAssertEqual(gallery.map(\.student), ["0101", "0102", "0102", "0201"])
        XCTAssertEqual(gallery[0].embedding, fakeEmbedding(1), "decrypts bit for bit")

        XCTAssertThrowsError(
            try store.enrolments.add(
                student: "0101", Array(repeating: (fakeEmbedding(9), nil, nil), count: 5)), "over the limit")
        try store.consent.revoke(student: "0102")
        try bumped()
        XCTAssertEqual(try store.enrolments.list(student: "0102").count, 0, "revocation deletes the embeddings")
        XCTAssertThrowsError(try store.enrolments.add(student: "0102", [(fakeEmbedding(2), nil, nil)])) {
            XCTAssertEqual($0 as? StoreError, .noConsent("0102"))
        }
        XCTAssertEqual(try store.enrolments.remove(student: "0201"), 1)
        try bumped()
        XCTAssertEqual(try store.enrolments.recognisable().map(\.student), ["0101"])

        // The roster drops 0101's class mate: inactive students leave the gallery too.
        let roster = try RosterParser.parse(text: "code,name,class\n0102,Trần Thị Bình,6A1\n", file: "r.csv")
        let report = try store.roster.importRoster(roster)
        XCTAssertEqual(report.deactivated, ["0101"])
        try bumped()
        XCTAssertEqual(try store.enrolments.recognisable().count, 0)
    }

    func testAnotherConnectionSeesAnEnrolmentWithoutReopening() throws {
        // The daemon keeps its store open; the CLI is another connection (another process in real life).
        let tmp = try TempStore()
        let daemon = try tmp.open()
        let cli = try tmp.open()
        try seedRoster(cli, in: tmp)
        let before = try daemon.enrolments.galleryVersion()
        try cli.enrolments.add(student: "0101", [(fakeEmbedding(7), nil, nil)])
        XCTAssertGreaterThan(try daemon.enrolments.galleryVersion(), before)
        let snapshot = try daemon.enrolments.snapshot()
        XCTAssertEqual(snapshot.version, try daemon.enrolments.galleryVersion())
        XCTAssertEqual(snapshot.embeddings.map(\.student), ["0101"])
    }

    func testStudentsAreListedInClassListOrder() throws {
        let tmp = try TempStore()
        let store = try tmp.open()
        try seedRoster(store, in: tmp)
        XCTAssertEqual(try store.roster.students(classCode: "6A1").map(\.code), ["0101", "0102"]) // An < Bình
        XCTAssertEqual(try store.roster.students().map(\.classCode), ["6A1", "6A1", "7B2"])
        let s = try XCTUnwrap(try store.roster.student(code: "0102"))
        XCTAssertEqual(s.fullName, "Trần Thị Bình")
        XCTAssertEqual(s.gradeCode, "6")
        XCTAssertEqual(s.dateOfBirth, LocalDate(year: 2013, month: 1, day: 20))
        XCTAssertEqual(s.gender, "female")
        XCTAssertNil(try store.roster.student(code: "nope"))
    }

    func testUnknownFacesAreCounted() throws {
        let tmp = try TempStore()
        let store = try tmp.open()
        try store.events.recordUnknownFace(at: Date(), camera: "gate-1", cropPath: nil)
        XCTAssertEqual(try store.writer.read { try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM unknown_face") }, 1)
    }

    func testTimestampsRoundTrip() {
        let d = Date(timeIntervalSince1970: 1_725_500_000.25)
        XCTAssertEqual(Timestamp.string(d), "2024-09-05T01:33:20.250Z")
        XCTAssertEqual(Timestamp.date("2024-09-05T01:33:20.250Z"), d)
    }

    /// The in-memory store keeps the same invariants as the file: one event and one outbox row per arrival, every
    /// correction queued through the same outbox write with a higher version, the school code from the config.
    func testAStoreInMemoryKeepsTheLedgersInvariants() throws {
        var config = AttendanceConfig()
        config.school.code = "THCS-02"
        let tmp = try TempStore()
        let store = try AttendanceStore.inMemory(config: config)
        try seedRoster(store, in: tmp)
        XCTAssertEqual(store.path, ":memory:")
        let day = LocalDate(year: 2024, month: 9, day: 5)
        let event = NewAttendanceEvent(
            studentCode: "0101", schoolDay: day, session: "morning", kind: .checkIn, status: .late,
            occurredAt: Date(timeIntervalSince1970: 1_725_500_000), camera: "gate-1", distance: 0.3)
        XCTAssertTrue(try store.events.record(event))
        XCTAssertFalse(try store.events.record(event))
        let change = try XCTUnwrap(
            try store.events.correct(
                student: "0101", day: day, status: .present, reason: "đồng hồ cổng chạy nhanh",
                now: Date(timeIntervalSince1970: 1_725_510_000)))
        XCTAssertEqual(change.version, 2)
        let payloads = try store.writer.read { db in
            try String.fetchAll(db, sql: "SELECT payload FROM outbox ORDER BY version")
        }
        let records = try payloads.map { try JSONDecoder().decode(SectorRecord.self, from: Data($0.utf8)) }
        XCTAssertEqual(records.map(\.eventKind), [.new, .update])
        XCTAssertEqual(Set(records.map(\.schoolCode)), ["THCS-02"])
        XCTAssertEqual(Set(records.map(\.recordID)).count, 1, "one record id, two versions")
        XCTAssertEqual(try store.auditLog.entries().filter { $0.action == "attendance.correct" }.count, 1)
        // The enrolment limit is the store's (the school's config), not a parameter.
        config.recognition.maxEmbeddingsPerStudent = 1
        let limited = try AttendanceStore.inMemory(config: config)
        try seedRoster(limited, in: tmp)
        try limited.enrolments.add(student: "0101", [(fakeEmbedding(1), nil, nil)])
        XCTAssertThrowsError(try limited.enrolments.add(student: "0101", [(fakeEmbedding(2), nil, nil)]))
    }

    /// A class code typed in any case, or as "Lớp 6a1", names the roster's class.
    func testClassCodesAreComparedAsTheRosterKeepsThem() throws {
        let tmp = try TempStore()
        let store = try AttendanceStore.inMemory(config: AttendanceConfig())
        try seedRoster(store, in: tmp)
        for typed in ["6A1", "6a1", " 6a1 ", "Lớp 6a1", "lop 6A1"] {
            XCTAssertEqual(try store.roster.students(classCode: typed).map(\.code), ["0101", "0102"], typed)
        }
        XCTAssertEqual(SchoolClass.normalisedCode("Lớp 10c2"), "10C2")
    }

    /// With the school's shared database, this box's own outbox is never sent to the sector directly.
    func testAGateOnTheSharedDatabaseDoesNotSendItsOwnOutbox() throws {
        var config = AttendanceConfig()
        config.connector.endpoint = "https://sector.example.invalid/api"
        config.connector.tokenFile = "/nonexistent/token"
        config.database.backend = .postgresql
        let store = try AttendanceStore.inMemory(config: config)
        XCTAssertThrowsError(try SectorConnection.make(config: config, store: store)) {
            XCTAssertTrue("\($0)".contains("shared server"), "\($0)")
        }
    }
}
