import AttendanceCore
import AttendancePostgres
import Foundation
import GRDB
import PostgresNIO
import XCTest

@testable import Attendance

// The store's contract (#17 point 1): what a school's database must do whichever backend holds it, written once
// (`StoreContract`) and run against the embedded SQLite store (`SQLiteStoreContractTests`, in memory) and the school's
// PostgreSQL (`PostgresStoreContractTests`, a real server the test process starts). Every call goes through the
// backend-neutral `SchoolRecords`; only the test's own checks (which rows still name a student, whether the audit log
// lets itself be rewritten, the sealed bytes) read the database directly.

/// One backend under the contract: its records and the test's own look into its database.
struct ContractBackend: Sendable {
    let records: any SchoolRecords
    /// The box whose key seals the embeddings and names erased students.
    let box: AttendanceStore
    /// table.column → rows whose text holds `code` anywhere (the sealed bytes aside).
    let rowsNaming: @Sendable (_ code: String) async throws -> [String: Int]
    /// The student's stored (sealed) embeddings, as bytes.
    let sealedBytes: @Sendable (_ code: String) async throws -> [Data]
    /// Tries to rewrite, delete and truncate the audit log as the database's owner: what each attempt threw, nil if
    /// it went through.
    let tamperWithAudit: @Sendable () async -> [(String, (any Error)?)]
}

/// The contract's school: two classes, a 13-year-old (consent needs the child's own agreement) and a 6-year-old.
enum StoreContract {
    static let day = LocalDate(year: 2026, month: 12, day: 2)
    static let today = LocalDate(year: 2026, month: 12, day: 2)
    static let consentDay = LocalDate(year: 2026, month: 9, day: 1)

    static var config: AttendanceConfig {
        var c = AttendanceConfig()
        c.school.code = "79000042"
        c.recognition.maxEmbeddingsPerStudent = 3
        return c
    }

    static let rosterCSV = """
        Mã định danh,Họ và tên,Lớp,Ngày sinh,Giới tính
        7911000001,Nguyễn Văn An,6A1,05/09/2013,Nam
        7911000002,Trần Thị Bình,6A1,12/01/2013,Nữ
        7911000003,Lê Văn Cường,6A2,20/03/2013,Nam
        7911000004,Phạm Thị Dung,1A1,02/02/2020,Nữ
        """

    static func roster(_ text: String, file: String = "lop.csv") throws -> Roster {
        try RosterParser.parse(text: text, file: file, today: today)
    }

    static func codes(_ students: [Student]) -> [String] { students.map(\.code) }

    static func face(_ seed: Int) -> [Float] { (0..<128).map { Float(($0 * 37 + seed * 101) % 211) / 1000 - 0.1 } }

    /// The school's roster imported, and the 13-year-old `7911000001` with consent (her own agreement too).
    static func school(_ b: ContractBackend) async throws {
        _ = try await b.records.importRoster(try roster(rosterCSV), options: RosterImportOptions())
        _ = try await b.records.recordConsent(
            student: "7911000001", guardian: "Nguyễn Văn Ba", relation: "father", date: consentDay,
            scope: Consent.defaultScope, childAgreed: true, source: "test")
    }

    // MARK: roster

    static func rosterImport(_ b: ContractBackend) async throws {
        let r = b.records
        // A file with wrong lines: every line named (FILE:LINE), nothing imported.
        let bad = "Mã định danh,Họ và tên,Lớp\n7911000009,Hoàng Văn Em,6A1\n,Vũ Thị Giang,6A1\n7911000009,Đỗ Văn Hùng,6A1\n"
        XCTAssertThrowsError(try roster(bad, file: "sai.csv")) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("sai.csv:3: the student code (mã định danh) is empty"), text)
            XCTAssertTrue(text.contains("sai.csv:4: student code 7911000009 is also on line 2"), text)
        }
        assertEqual(try await r.students(classCode: nil, activeOnly: false), [], "nothing imported")

        // A dry run reports and changes nothing.
        let dry = try await r.importRoster(try roster(rosterCSV), options: RosterImportOptions(dryRun: true))
        assertEqual(dry.added.count, 4)
        assertEqual(try await r.students(classCode: nil, activeOnly: false), [])
        assertEqual(try await r.classes(), [])
        assertEqual(try await r.auditEntries().count, 0, "a dry run audits nothing")

        let first = try await r.importRoster(try roster(rosterCSV), options: RosterImportOptions())
        assertEqual(first.added, ["7911000001", "7911000002", "7911000003", "7911000004"])
        assertEqual(first.classesAdded.sorted(), ["1A1", "6A1", "6A2"])
        assertEqual(first.dryRun, false)
        assertEqual(try await r.classes().map(\.code), ["1A1", "6A1", "6A2"])
        let found = try await r.student(code: "7911000001")
        let an = try XCTUnwrap(found)
        assertEqual(an.fullName, "Nguyễn Văn An")
        assertEqual(an.gradeCode, "6")
        assertEqual(an.dateOfBirth, LocalDate(year: 2013, month: 9, day: 5))
        assertEqual(an.gender, "male")
        assertEqual(codes(try await r.students(classCode: "6a1", activeOnly: true)), ["7911000001", "7911000002"])
        // Class-list order: class, then the given name (the last word).
        assertEqual(
            codes(try await r.students(classCode: nil, activeOnly: true)),
            ["7911000004", "7911000001", "7911000002", "7911000003"])

        // 6A1 again: Bình missing (deactivated, kept), An renamed, a new student; 6A2 and 1A1 untouched.
        let again = """
            Mã định danh,Họ và tên,Lớp,Ngày sinh,Giới tính
            7911000001,Nguyễn Văn Anh,6A1,05/09/2013,Nam
            7911000005,Vũ Thị Giang,6A1,01/10/2013,Nữ
            """
        let second = try await r.importRoster(try roster(again), options: RosterImportOptions())
        assertEqual(second.added, ["7911000005"])
        assertEqual(second.changed, [.init(code: "7911000001", fields: ["full_name"])])
        assertEqual(second.deactivated, ["7911000002"])
        assertEqual(second.unchanged, 0)
        assertEqual(try await r.student(code: "7911000002")?.active, false)
        assertEqual(try await r.students(classCode: nil, activeOnly: false).count, 5, "deactivated, never deleted")
        assertEqual(codes(try await r.students(classCode: "6A2", activeOnly: true)), ["7911000003"])

        // The same file again changes nothing; Bình back on the list is reactivated.
        let same = try await r.importRoster(try roster(again), options: RosterImportOptions())
        assertEqual(same.unchanged, 2)
        assertEqual(same.added + same.deactivated, [])
        let back = try await r.importRoster(
            try roster(again + "\n7911000002,Trần Thị Bình,6A1,12/01/2013,Nữ"), options: RosterImportOptions())
        assertEqual(back.changed, [.init(code: "7911000002", fields: ["reactivated"])])

        // The whole school's list: everyone missing from it, of any class, becomes inactive.
        let whole = try await r.importRoster(try roster(again), options: RosterImportOptions(wholeSchool: true))
        assertEqual(whole.deactivated, ["7911000002", "7911000003", "7911000004"])
        assertEqual(codes(try await r.students(classCode: nil, activeOnly: true)), ["7911000001", "7911000005"])

        // A line the store itself refuses (a consent dated after today: the parser was told another day) undoes the
        // whole import: the other line, the deactivations, the audit entry.
        let students = try await r.students(classCode: nil, activeOnly: false)
        let late = """
            Mã định danh,Họ và tên,Lớp,Ngày sinh,Người giám hộ,Quan hệ,Ngày đồng ý,Học sinh đồng ý
            7911000006,Mai Văn Phúc,6A1,01/01/2013,Mai Văn Bố,bố,01/09/2025,Có
            7911000007,Lý Thị Quỳnh,6A1,01/01/2013,Lý Thị Mẹ,mẹ,01/01/2099,Có
            """
        let parsed = try RosterParser.parse(text: late, file: "muon.csv", today: LocalDate(year: 2099, month: 6, day: 1))
        await assertThrows(try await r.importRoster(parsed, options: RosterImportOptions())) {
            XCTAssertTrue("\($0)".contains("is in the future"), "\($0)")
        }
        assertEqual(try await r.students(classCode: nil, activeOnly: false), students, "nothing changed")
        assertEqual(try await r.consentHistory(student: "7911000006"), [])

        let audits = try await r.auditEntries().filter { $0.action == "roster.import" }
        assertEqual(audits.count, 5, "one entry per import, none for the dry run")
        assertEqual(audits.first?.subject, "lop.csv")
        assertEqual(
            audits.first?.detail, "added=4; changed=0; unchanged=0; deactivated=0; consents=0", "the same detail on both backends"
        )
    }

    static func rosterConsentColumns(_ b: ContractBackend) async throws {
        let r = b.records
        let csv = """
            Mã định danh,Họ và tên,Lớp,Ngày sinh,Người giám hộ,Quan hệ,Ngày đồng ý,Học sinh đồng ý
            7911000001,Nguyễn An,2A,01/01/2018,Nguyễn Bố,bố,01/09/2025,Có
            7911000002,Trần Bình,1A,01/01/2020,Trần Mẹ,mẹ,01/09/2025,
            7911000003,Lê Cúc,1A,01/01/2020,,,,
            """
        let report = try await r.importRoster(try roster(csv, file: "c.csv"), options: RosterImportOptions())
        assertEqual(report.consentsRecorded, ["7911000001", "7911000002"])
        let active = try await r.activeConsent(student: "7911000001")
        let c = try XCTUnwrap(active)
        assertEqual(c.guardianName, "Nguyễn Bố")
        assertEqual(c.consentDate, LocalDate(year: 2025, month: 9, day: 1))
        XCTAssertTrue(c.scope.hasSuffix(Consent.childAgreedSuffix), c.scope)
        assertEqual(try await r.activeConsent(student: "7911000003"), nil)
        // Again: nothing new; after a revocation the old roster does not bring the consent back.
        assertEqual(try await r.importRoster(try roster(csv, file: "c.csv"), options: RosterImportOptions()).consentsRecorded, [])
        _ = try await r.revokeConsent(student: "7911000002", reason: nil)
        assertEqual(try await r.importRoster(try roster(csv, file: "c.csv"), options: RosterImportOptions()).consentsRecorded, [])
        assertEqual(try await r.activeConsent(student: "7911000002"), nil)
        // An erased student's old consent is not recorded again with the student (the erasure register).
        _ = try await r.erase(student: "7911000001", reason: nil)
        let after = try await r.importRoster(try roster(csv, file: "c.csv"), options: RosterImportOptions())
        assertEqual(after.added, ["7911000001"])
        assertEqual(after.consentsRefusedErased, ["7911000001"])
        assertEqual(try await r.activeConsent(student: "7911000001"), nil)
    }

    // MARK: consent

    static func consent(_ b: ContractBackend) async throws {
        let r = b.records
        _ = try await r.importRoster(try roster(rosterCSV), options: RosterImportOptions())
        func record(_ student: String, guardian: String = "Mẹ", date: LocalDate = consentDay, child: Bool) async throws -> Consent
        {
            try await r.recordConsent(
                student: student, guardian: guardian, relation: "mother", date: date, scope: Consent.defaultScope,
                childAgreed: child, source: "test")
        }
        // From age 7 the child's own agreement is needed; refusals change nothing.
        await assertThrows(try await record("7911000001", child: false)) {
            assertEqual($0 as? StoreError, .childMustAgree("7911000001"))
        }
        await assertThrows(try await record("7911000001", guardian: "  ", child: true)) {
            assertEqual($0 as? StoreError, .invalid("the guardian's name is empty"))
        }
        await assertThrows(try await record("7911000001", date: LocalDate(year: 2099, month: 1, day: 1), child: true)) {
            XCTAssertTrue("\($0)".contains("is in the future"), "\($0)")
        }
        await assertThrows(try await record("7999999999", child: true)) {
            assertEqual($0 as? StoreError, .unknownStudent("7999999999"))
        }
        assertEqual(try await r.consentHistory(student: "7911000001"), [])

        let an = try await record("7911000001", guardian: " Nguyễn  Thị Mai ", child: true)
        assertEqual(an.guardianName, "Nguyễn Thị Mai", "stored normalised")
        assertEqual(an.scope, Consent.defaultScope + Consent.childAgreedSuffix)
        assertEqual(an.recordedBy, AttendanceStore.actor)
        assertEqual(try await r.activeConsent(student: "7911000001"), an)
        // Six years old: the guardian alone.
        let dung = try await record("7911000004", child: false)
        assertEqual(dung.scope, Consent.defaultScope)

        // Withdrawal deletes the faces in the same transaction; the record stays as history.
        _ = try await r.enrol(student: "7911000001", [(face(1), nil, "test"), (face(2), nil, "test")])
        assertEqual(try await r.revokeConsent(student: "7911000001", reason: "thư của phụ huynh"), 2)
        assertEqual(try await r.activeConsent(student: "7911000001"), nil)
        let history = try await r.consentHistory(student: "7911000001")
        assertEqual(history.count, 1)
        XCTAssertNotNil(history.first?.revokedAt)
        assertEqual(history.first?.revokedBy, AttendanceStore.actor)
        assertEqual(try await r.embeddings(student: "7911000001").count, 0)
        await assertThrows(try await r.revokeConsent(student: "7911000001", reason: nil)) {
            XCTAssertTrue("\($0)".contains("no consent in force"), "\($0)")
        }
        // A new consent after the withdrawal.
        _ = try await record("7911000001", date: LocalDate(year: 2026, month: 10, day: 1), child: true)
        assertEqual(try await r.consentHistory(student: "7911000001").map(\.isActive), [false, true])

        let audit = try await r.auditEntries().filter { $0.action.hasPrefix("consent.") }
        assertEqual(audit.map(\.action), ["consent.record", "consent.record", "consent.revoke", "consent.record"])
        assertEqual(audit.map(\.studentCode), ["7911000001", "7911000004", "7911000001", "7911000001"])
        XCTAssertTrue(audit.allSatisfy { $0.subject?.hasPrefix("S-") == true }, "students named by their alias")
        assertEqual(audit[2].detail, "embeddings deleted=2; reason=thư của phụ huynh")
    }

    // MARK: enrolments

    static func enrolments(_ b: ContractBackend) async throws {
        let r = b.records
        try await school(b)
        // No consent, an inactive student, an unknown one: refused, nothing stored.
        await assertThrows(try await r.enrol(student: "7911000002", [(face(1), nil, nil)])) {
            assertEqual($0 as? StoreError, .noConsent("7911000002"))
        }
        await assertThrows(try await r.enrol(student: "7999999999", [(face(1), nil, nil)])) {
            assertEqual($0 as? StoreError, .unknownStudent("7999999999"))
        }
        let ids = try await r.enrol(student: "7911000001", [(face(1), "{\"sharpness\":1}", "a.jpg"), (face(2), nil, "b.jpg")])
        assertEqual(ids.count, 2)
        assertEqual(
            try await r.embeddings(student: "7911000001"), [face(1), face(2)], "sealed, and opened again with the box's key")
        for (blob, plain) in zip(try await b.sealedBytes("7911000001"), [face(1), face(2)]) {
            let clear = plain.withUnsafeBytes { Data($0) }
            XCTAssertNil(blob.range(of: clear.prefix(16)), "no embedding in clear")
            XCTAssertGreaterThan(blob.count, clear.count, "sealed: nonce and tag")
        }
        // At most recognition.max_embeddings_per_student (3 here): two more would be four, so none is added.
        await assertThrows(try await r.enrol(student: "7911000001", [(face(3), nil, nil), (face(4), nil, nil)])) {
            XCTAssertTrue("\($0)".contains("the limit is 3"), "\($0)")
        }
        assertEqual(try await r.embeddings(student: "7911000001").count, 2)
        assertEqual(try await r.enrol(student: "7911000001", [(face(3), nil, nil)]).count, 1)

        // An inactive student (no longer on the roster) cannot be enrolled.
        _ = try await r.importRoster(
            try roster("Mã định danh,Họ và tên,Lớp\n7911000001,Nguyễn Văn An,6A1\n"), options: RosterImportOptions())
        _ = try await r.recordConsent(
            student: "7911000002", guardian: "Bà", relation: "grandmother", date: consentDay, scope: "", childAgreed: true,
            source: "test")
        await assertThrows(try await r.enrol(student: "7911000002", [(face(5), nil, nil)])) {
            assertEqual($0 as? StoreError, .inactiveStudent("7911000002"))
        }

        // Unenrol: the faces go, the consent stays.
        assertEqual(try await r.unenrol(student: "7911000001"), 3)
        assertEqual(try await r.embeddings(student: "7911000001"), [])
        assertEqual(try await r.activeConsent(student: "7911000001")?.isActive, true, "the consent stays")
        assertEqual(try await r.unenrol(student: "7911000001"), 0)
        await assertThrows(try await r.unenrol(student: "7999999999")) {
            assertEqual($0 as? StoreError, .unknownStudent("7999999999"))
        }
        let audit = try await r.auditEntries().filter { $0.action == "enrol" || $0.action == "unenrol" }
        assertEqual(
            audit.map { "\($0.action) \($0.detail ?? "")" },
            [
                "enrol embeddings added=2; total=2", "enrol embeddings added=1; total=3", "unenrol embeddings deleted=3",
                "unenrol embeddings deleted=0",
            ])
    }

    // MARK: erasure

    static func erasure(_ b: ContractBackend) async throws {
        let r = b.records
        try await school(b)
        let an = "7911000001"
        _ = try await r.enrol(student: an, [(face(1), nil, nil), (face(2), nil, nil)])
        assertEqual(try await r.record(event(an, kind: .checkIn)), true)
        assertEqual(try await r.record(event("7911000003", kind: .checkIn)), true)
        try await r.appendAudit(action: "export", student: an, detail: "rows=1")
        let before = try await r.auditEntries()
        let named = try await b.rowsNaming(an)
        XCTAssertGreaterThan(named.count, 0, "the check sees the student before the erasure")

        let report = try await r.erase(student: an, reason: "yêu cầu của phụ huynh")
        assertEqual(report.student, an)
        assertEqual([report.enrolments, report.consents, report.events, report.outbox, report.excuses], [2, 1, 1, 1, 0])
        assertEqual(try await r.student(code: an), nil)
        assertEqual(try await b.rowsNaming(an), [:], "the code is in no row of any table")
        assertEqual(try await r.embeddings(student: an), [])

        // The audit log keeps every entry (none resolves to the student any more) and one entry more: the erasure,
        // naming the student by the keyed pseudonym only.
        let after = try await r.auditEntries()
        assertEqual(after.count, before.count + 1)
        assertEqual(after.dropLast().map(\.id), before.map(\.id))
        XCTAssertTrue(after.allSatisfy { $0.studentCode != an })
        let last = try XCTUnwrap(after.last)
        assertEqual(last.action, "student.erase")
        assertEqual(last.subject, b.box.pseudonym(of: an))
        XCTAssertTrue(last.detail?.hasPrefix("enrolments=2; consents=1; events=1; outbox=1; excuses=0") == true, "\(last)")

        // The others are untouched; a second erasure finds nobody.
        assertEqual(try await r.events(on: day).map(\.studentCode), ["7911000003"])
        assertEqual(try await r.pendingOutbox(), 1)
        await assertThrows(try await r.erase(student: an, reason: nil)) { assertEqual($0 as? StoreError, .unknownStudent(an)) }
    }

    // MARK: audit log

    static func auditLog(_ b: ContractBackend) async throws {
        let r = b.records
        try await school(b)
        try await r.appendAudit(action: "export", subject: "daily-2026-12-02.xlsx", detail: "rows=3")
        try await r.appendAudit(action: "attendance.view", student: "7911000002", detail: nil)
        let entries = try await r.auditEntries()
        let tail = Array(entries.suffix(2))
        assertEqual(tail.map(\.action), ["export", "attendance.view"])
        assertEqual(tail[0].subject, "daily-2026-12-02.xlsx")
        assertEqual(tail[0].osUser, AttendanceStore.actor)
        assertEqual(tail[1].studentCode, "7911000002")
        XCTAssertNotEqual(tail[1].subject, "7911000002", "an alias, never the code")
        XCTAssertEqual(entries.map(\.id), entries.map(\.id).sorted(), "oldest first")

        // Append-only: not even the database's owner may rewrite, delete or truncate it.
        let attempts = await b.tamperWithAudit()
        XCTAssertFalse(attempts.isEmpty)
        for (what, error) in attempts { XCTAssertNotNil(error, "\(what) went through") }
        assertEqual(try await r.auditEntries(), entries)
    }

    // MARK: events

    static func event(_ student: String, kind: EventKind, session: String = "morning", minute: Int = 0) -> NewAttendanceEvent {
        NewAttendanceEvent(
            studentCode: student, schoolDay: day, session: session, kind: kind, status: .present,
            occurredAt: Date(timeIntervalSince1970: 1_764_637_200 + Double(minute * 60)), camera: "cong-truoc", distance: 0.31)
    }

    static func events(_ b: ContractBackend) async throws {
        let r = b.records
        try await school(b)
        let an = "7911000001"
        // Two gates see her at once: one arrival.
        async let front = r.record(event(an, kind: .checkIn, minute: 1))
        async let back = r.record(event(an, kind: .checkIn, minute: 2))
        let firsts = try await [front, back]
        assertEqual(firsts.filter { $0 }.count, 1, "recorded once: \(firsts)")
        assertEqual(try await r.record(event(an, kind: .checkIn, minute: 5)), false, "again later: still once")
        assertEqual(try await r.record(event(an, kind: .checkOut, minute: 300)), true, "her departure")
        assertEqual(try await r.record(event(an, kind: .checkOut, minute: 310)), false)
        assertEqual(try await r.record(event(an, kind: .checkIn, session: "afternoon", minute: 400)), true, "another session")
        await assertThrows(try await r.record(event("7999999999", kind: .checkIn))) {
            assertEqual($0 as? StoreError, .unknownStudent("7999999999"))
        }

        let recorded = try await r.events(on: day)
        assertEqual(recorded.map { "\($0.session) \($0.kind)" }, ["afternoon check_in", "morning check_in", "morning check_out"])
        for e in recorded {
            assertEqual(
                e.recordID,
                EventLedger.recordID(
                    school: config.school.code, student: an, day: day, session: e.session, kind: EventKind(rawValue: e.kind)!),
                "the same deterministic record id on both backends")
            assertEqual([e.version], [1])
            XCTAssertFalse(e.cancelled)
        }
        assertEqual(try await r.pendingOutbox(), 3, "one outbox row per event, written with it")
        assertEqual(try await r.events(on: day.adding(days: 1)), [])
    }

    /// The clock rule of every record (`ClockPolicy.problem`): a clock behind the database's high-water mark, or before
    /// this release, records nothing; held check-ins and accepted reviews are dated by the same rule.
    static func clockGuard(_ b: ContractBackend, clock: TestClock) async throws {
        let r = b.records
        try await school(b)
        let an = "7911000001"
        assertEqual(try await r.record(event(an, kind: .checkIn)), true)
        clock.set(clock.now.addingTimeInterval(-3_600))
        await assertThrows(try await r.record(event(an, kind: .checkOut))) {
            guard case .behindHighWater? = $0 as? ClockProblem else { return XCTFail("\($0)") }
        }
        await assertThrows(try await r.hold(event("7911000002", kind: .checkIn), liveness: 0.1, reason: .spoof)) {
            XCTAssertNotNil($0 as? ClockProblem, "\($0)")
        }
        clock.set(Date(timeIntervalSince1970: 1_600_000_000))
        await assertThrows(try await r.record(event(an, kind: .checkOut))) {
            guard case .beforeRelease? = $0 as? ClockProblem else { return XCTFail("\($0)") }
        }
        assertEqual(try await r.events(on: day).map(\.kind), ["check_in"], "nothing recorded by a wrong clock")
        assertEqual(try await r.heldCheckIns(state: nil, classes: nil, day: nil), [])
        clock.set(Date().addingTimeInterval(60))
        assertEqual(try await r.record(event(an, kind: .checkOut)), true, "the clock is right again")
    }

    // MARK: corrections and excuses

    /// A time on `day` in the school's zone.
    static func at(_ hour: Int, _ minute: Int = 0) -> Date {
        day.at(LocalTime(hour: hour, minute: minute), in: config.school.timeZone)
    }

    static func recordID(_ student: String, _ session: String, _ kind: EventKind = .checkIn) -> String {
        EventLedger.recordID(school: config.school.code, student: student, day: day, session: session, kind: kind)
    }

    static func corrections(_ b: ContractBackend) async throws {
        let r = b.records
        try await school(b)
        let (an, binh) = ("7911000001", "7911000002")
        let evening = at(18)
        assertEqual(try await r.record(event(an, kind: .checkIn)), true)

        // A status set by hand: the version goes up, an UPDATE queued with it.
        let late = try await r.correct(
            student: an, day: day, session: nil, kind: .checkIn, status: .late, reason: " arrived 07:20 ", now: evening)
        assertEqual(
            late,
            EventChange(
                recordID: recordID(an, "morning"), session: "morning", kind: .checkIn, previousStatus: .present,
                status: .late, eventKind: .update, version: 2))
        assertEqual(
            try await r.correct(
                student: an, day: day, session: "morning", kind: .checkIn, status: .late, reason: "again", now: evening),
            nil, "already late: nothing changes")
        // The camera missed Bình: her event is created (NEW, version 1).
        assertEqual(
            try await r.correct(
                student: binh, day: day, session: "afternoon", kind: .checkIn, status: .present,
                reason: "camera missed her", now: evening),
            EventChange(
                recordID: recordID(binh, "afternoon"), session: "afternoon", kind: .checkIn, previousStatus: nil,
                status: .present, eventKind: .new, version: 1))
        // Refused, nothing changed: no reason, a session the class does not have, a student not on the roster.
        await assertThrows(
            try await r.correct(
                student: an, day: day, session: nil, kind: .checkIn, status: .absent, reason: "  ", now: evening)
        ) { assertEqual($0 as? StoreError, .invalid("a correction needs a reason (kept in the audit log)")) }
        await assertThrows(
            try await r.correct(
                student: an, day: day, session: "evening", kind: .checkIn, status: .absent, reason: "x", now: evening)
        ) {
            assertEqual(
                $0 as? StoreError, .invalid("class 6A1 has no session 'evening' (sessions: morning, afternoon)"))
        }
        await assertThrows(
            try await r.correct(
                student: "7999999999", day: day, session: nil, kind: .checkIn, status: .absent, reason: "x", now: evening)
        ) { assertEqual($0 as? StoreError, .unknownStudent("7999999999")) }

        // A wrong recognition withdrawn (CANCEL, a higher version); the student's own arrival revives the record.
        let cancel = try await r.cancelEvent(
            student: an, day: day, session: "morning", kind: .checkIn, reason: "matched the wrong student", now: evening)
        assertEqual([cancel.eventKind.rawValue, "\(cancel.version)"], ["CANCEL", "3"])
        await assertThrows(
            try await r.cancelEvent(student: an, day: day, session: "morning", kind: .checkIn, reason: "x", now: evening)
        ) {
            assertEqual($0 as? StoreError, .invalid("7911000001 has no check_in on 2026-12-02 (morning) to cancel"))
        }
        await assertThrows(
            try await r.cancelEvent(student: an, day: day, session: nil, kind: .checkOut, reason: "", now: evening)
        ) { assertEqual($0 as? StoreError, .invalid("a cancellation needs a reason (kept in the audit log)")) }
        assertEqual(try await r.record(event(an, kind: .checkIn, minute: 30)), true, "revived")

        assertEqual(
            try await r.events(on: day).map { "\($0.studentCode) \($0.session) \($0.status) v\($0.version) \($0.cancelled)" },
            ["7911000001 morning present v4 false", "7911000002 afternoon present v1 false"])
        assertEqual(try await r.pendingOutbox(), 5, "NEW, UPDATE, CANCEL, UPDATE (revived); Bình's NEW")
        let audit = try await r.auditEntries().filter { $0.action.hasPrefix("attendance.") }
        assertEqual(
            audit.map { "\($0.action) \($0.studentCode ?? "-") \($0.detail ?? "")" },
            [
                "attendance.correct 7911000001 2026-12-02 morning check_in: present -> late (UPDATE v2); reason: arrived 07:20",
                "attendance.correct 7911000002 2026-12-02 afternoon check_in: none -> present (NEW v1); reason: camera missed her",
                "attendance.cancel 7911000001 2026-12-02 morning check_in (CANCEL v3); reason: matched the wrong student",
            ])
        XCTAssertTrue(audit.allSatisfy { $0.subject != $0.studentCode }, "an alias, never the code")
    }

    static func excuses(_ b: ContractBackend) async throws {
        let r = b.records
        try await school(b)
        let (an, cuong) = ("7911000001", "7911000003")
        assertEqual(try await r.record(event(cuong, kind: .checkIn)), true)
        // At noon the morning has ended, the afternoon not: only the morning is excused.
        let first = try await r.excuse(student: an, day: day, reason: "Ốm, mẹ gọi điện báo", now: at(12))
        assertEqual(first.replaced, false)
        assertEqual(
            first.changes.map { "\($0.session) \($0.eventKind.rawValue) v\($0.version) \($0.status)" }, ["morning NEW v1 excused"]
        )
        // In the evening, again: the excuse replaced, the afternoon excused too.
        let again = try await r.excuse(student: an, day: day, reason: "Ốm", now: at(18))
        assertEqual(again.replaced, true)
        assertEqual(again.changes.map { "\($0.session) \($0.eventKind.rawValue)" }, ["afternoon NEW"])
        // A check-in on time is left alone.
        let third = try await r.excuse(student: cuong, day: day, reason: "về sớm", now: at(18))
        assertEqual(third.changes.map(\.session), ["afternoon"])
        assertEqual(
            try await r.excuses(day: day, student: nil).map {
                "\($0.student) \($0.reason) \($0.recordedBy == AttendanceStore.actor)"
            },
            ["7911000001 Ốm true", "7911000003 về sớm true"])
        assertEqual(try await r.excuses(day: nil, student: an).map(\.day), [day])
        assertEqual(try await r.excuses(day: day.adding(days: 1), student: nil), [])
        // Refused, nothing changed: a Sunday, no reason, a student not on the roster.
        let sunday = LocalDate(year: 2026, month: 12, day: 6)
        await assertThrows(try await r.excuse(student: an, day: sunday, reason: "x", now: at(18))) {
            assertEqual(
                $0 as? StoreError,
                .invalid("2026-12-06 is not a school day in the config's schedule (weekday or holiday); nothing to excuse"))
        }
        await assertThrows(try await r.excuse(student: an, day: day, reason: " ", now: at(18))) {
            assertEqual($0 as? StoreError, .invalid("an excuse needs a reason (kept in the audit log)"))
        }
        await assertThrows(try await r.excuse(student: "7999999999", day: day, reason: "x", now: at(18))) {
            assertEqual($0 as? StoreError, .unknownStudent("7999999999"))
        }
        assertEqual(
            try await r.events(on: day).map { "\($0.studentCode) \($0.session) \($0.status)" },
            [
                "7911000001 afternoon excused", "7911000001 morning excused", "7911000003 afternoon excused",
                "7911000003 morning present",
            ])
        let audit = try await r.auditEntries().filter { $0.action.hasPrefix("attendance.excuse") }
        assertEqual(
            audit.map { "\($0.action) \($0.detail ?? "")" },
            [
                "attendance.excuse 2026-12-02; records: morning NEW v1",
                "attendance.excuse.replace 2026-12-02; records: afternoon NEW v1",
                "attendance.excuse 2026-12-02; records: afternoon NEW v1",
            ])
        let entries = try await r.auditEntries()
        XCTAssertFalse(entries.contains { ($0.detail ?? "").contains("Ốm") }, "the reason is not copied")
    }

    // MARK: the review queue

    static func reviewQueue(_ b: ContractBackend) async throws {
        let r = b.records
        try await school(b)
        let (an, binh, cuong) = ("7911000001", "7911000002", "7911000003")
        guard case .held(let first) = try await r.hold(event(an, kind: .checkIn), liveness: 0.125, reason: .spoof) else {
            return XCTFail("not held")
        }
        assertEqual(try await r.hold(event(an, kind: .checkIn, minute: 1), liveness: 0.1, reason: .spoof), .alreadyHeld)
        assertEqual(try await r.record(event(cuong, kind: .checkIn)), true)
        assertEqual(try await r.hold(event(cuong, kind: .checkIn), liveness: nil, reason: .notCheckable), .alreadyRecorded)
        guard case .held(let second) = try await r.hold(event(binh, kind: .checkIn), liveness: nil, reason: .notCheckable)
        else { return XCTFail("not held") }
        await assertThrows(try await r.hold(event("7999999999", kind: .checkIn), liveness: nil, reason: .spoof)) {
            assertEqual($0 as? StoreError, .unknownStudent("7999999999"))
        }

        let pending = try await r.heldCheckIns(state: .pending, classes: nil, day: nil)
        assertEqual(pending.map(\.id), [first, second])
        assertEqual(pending[0].event, event(an, kind: .checkIn))
        assertEqual(
            [pending[0].studentName, pending[0].classCode, pending[0].reason.rawValue, pending[0].state.rawValue],
            ["Nguyễn Văn An", "6A1", "spoof", "pending"])
        assertEqual(pending[0].liveness, 0.125)
        assertEqual(pending[1].liveness, nil)
        assertEqual(try await r.heldCheckIns(state: .pending, classes: ["6A2"], day: nil), [])
        assertEqual(try await r.heldCheckIns(state: .pending, classes: ["6a1"], day: day).count, 2)
        assertEqual(try await r.heldCheckIns(state: nil, classes: nil, day: day.adding(days: 1)), [])
        assertEqual(try await r.events(on: day).map(\.studentCode), [cuong], "held, not recorded")

        // Accepted: recorded as the gate decided it; decided once.
        assertEqual(try await r.acceptHeld(id: first), true)
        await assertThrows(try await r.acceptHeld(id: first)) {
            assertEqual(
                $0 as? StoreError,
                .invalid("held check-in #\(first) was already accepted by \(AttendanceStore.actor); nothing changed"))
        }
        try await r.rejectHeld(id: second, reason: "ảnh trên điện thoại")
        await assertThrows(try await r.rejectHeld(id: 999_999, reason: nil)) {
            assertEqual($0 as? StoreError, .invalid("no held check-in #999999 (see `attendance review`)"))
        }
        assertEqual(try await r.heldCheckIns(state: .pending, classes: nil, day: nil), [])
        let decided = try await r.heldCheckIns(state: nil, classes: nil, day: nil)
        assertEqual(decided.map(\.state), [.accepted, .rejected])
        assertEqual(decided.map(\.decidedBy), [AttendanceStore.actor, AttendanceStore.actor])
        XCTAssertTrue(decided.allSatisfy { $0.decidedAt != nil })
        assertEqual(
            try await r.events(on: day).map { "\($0.studentCode) \($0.status) v\($0.version)" },
            ["7911000001 present v1", "7911000003 present v1"])
        assertEqual(try await r.pendingOutbox(), 2)
        let audit = try await r.auditEntries().filter { $0.action.hasPrefix("review.") }
        assertEqual(
            audit.map { "\($0.action) \($0.studentCode ?? "-") \($0.detail ?? "")" },
            [
                "review.accept 7911000001 #\(first) 2026-12-02 morning check_in (spoof); recorded",
                "review.reject 7911000002 #\(second) 2026-12-02 morning check_in (not_checkable); reason=ảnh trên điện thoại",
            ])
    }
}

/// A clock the test sets (the store's `now`).
final class TestClock: @unchecked Sendable {
    private let lock = NSLock()
    private var date = Date()
    var now: Date { lock.withLock { date } }
    func set(_ d: Date) { lock.withLock { date = d } }
}

/// `XCTAssertThrowsError` for an `async` expression.
func assertThrows<T>(
    _ expression: @autoclosure () async throws -> T, file: StaticString = #filePath, line: UInt = #line,
    _ check: (any Error) -> Void = { _ in }
) async {
    do {
        let value = try await expression()
        XCTFail("no error; returned \(value)", file: file, line: line)
    } catch {
        check(error)
    }
}

// MARK: the two backends

extension XCTestCase {
    /// The embedded backend: a store in memory (the test's checks through its writer).
    func sqliteContractBackend(clock: TestClock = TestClock()) throws -> ContractBackend {
        let store = try AttendanceStore.inMemory(config: StoreContract.config, now: { clock.now })
        return ContractBackend(
            records: SQLiteSchoolRecords(store: store), box: store,
            rowsNaming: { code in
                try store.writer.read { db in
                    var found: [String: Int] = [:]
                    for table in try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'table'") {
                        for column in try Row.fetchAll(db, sql: "SELECT name, type FROM pragma_table_info(?)", arguments: [table])
                        where (column["type"] as String).uppercased() != "BLOB" {
                            let name: String = column["name"]
                            let n =
                                try Int.fetchOne(
                                    db, sql: "SELECT COUNT(*) FROM \"\(table)\" WHERE instr(CAST(\"\(name)\" AS TEXT), ?) > 0",
                                    arguments: [code]) ?? 0
                            if n > 0 { found["\(table).\(name)"] = n }
                        }
                    }
                    return found
                }
            },
            sealedBytes: { code in
                try store.writer.read { db in
                    try Data.fetchAll(
                        db, sql: "SELECT sealed_embedding FROM enrolment WHERE student_code = ? ORDER BY id", arguments: [code])
                }
            },
            tamperWithAudit: {
                var out: [(String, (any Error)?)] = []
                for sql in ["UPDATE audit_log SET detail = 'x'", "DELETE FROM audit_log"] {
                    do {
                        try store.writer.write { try $0.execute(sql: sql) }
                        out.append((sql, nil))
                    } catch { out.append((sql, error)) }
                }
                return out
            })
    }

}

final class SQLiteStoreContractTests: XCTestCase {
    func backend() throws -> ContractBackend { try sqliteContractBackend() }

    func testRosterImport() async throws { try await StoreContract.rosterImport(try backend()) }
    func testRosterConsentColumns() async throws { try await StoreContract.rosterConsentColumns(try backend()) }
    func testConsent() async throws { try await StoreContract.consent(try backend()) }
    func testEnrolments() async throws { try await StoreContract.enrolments(try backend()) }
    func testErasure() async throws { try await StoreContract.erasure(try backend()) }
    func testAuditLog() async throws { try await StoreContract.auditLog(try backend()) }
    func testEvents() async throws { try await StoreContract.events(try backend()) }
    func testClockGuard() async throws {
        let clock = TestClock()
        try await StoreContract.clockGuard(try sqliteContractBackend(clock: clock), clock: clock)
    }
    func testCorrections() async throws { try await StoreContract.corrections(try backend()) }
    func testExcuses() async throws { try await StoreContract.excuses(try backend()) }
    func testReviewQueue() async throws { try await StoreContract.reviewQueue(try backend()) }
}

extension XCTestCase {
    /// A fresh server database; the records go through the gate daemons' role, the checks through the owner's.
    func postgresContractBackend(clock: TestClock = TestClock()) async throws -> ContractBackend {
        let db = try await freshDatabase()
        let box = try AttendanceStore.inMemory(config: StoreContract.config, now: { clock.now })
        return ContractBackend(
            records: PostgresSchoolRecords(connector: db.gate, box: box), box: box,
            rowsNaming: { code in
                let columns = try await db.owner.withConnection { c in
                    var out: [(String, String)] = []
                    for try await (t, col) in try await c.query(
                        """
                        SELECT table_name::text, column_name::text FROM information_schema.columns
                        WHERE table_schema = 'public' AND data_type <> 'bytea'
                          AND table_name IN (SELECT table_name FROM information_schema.tables
                                             WHERE table_schema = 'public' AND table_type = 'BASE TABLE')
                        """, logger: quietLogger
                    ).decode((String, String).self) {
                        out.append((t, col))
                    }
                    return out
                }
                var found: [String: Int] = [:]
                for (t, col) in columns {
                    var b = PostgresBindings()
                    b.append(code)
                    let n = try await db.owner.withConnection { c in
                        try await c.query(
                            PostgresQuery(
                                unsafeSQL: "SELECT count(*) FROM \"\(t)\" WHERE strpos(\"\(col)\"::text, $1) > 0", binds: b),
                            logger: quietLogger
                        ).collect().first?.decode(Int.self) ?? 0
                    }
                    if n > 0 { found["\(t).\(col)"] = n }
                }
                return found
            },
            sealedBytes: { code in
                try await db.owner.withConnection { c in
                    var out: [Data] = []
                    for try await blob in try await c.query(
                        "SELECT sealed_embedding FROM enrolment WHERE student_code = \(code) ORDER BY id", logger: quietLogger
                    ).decode(Data.self) {
                        out.append(blob)
                    }
                    return out
                }
            },
            tamperWithAudit: {
                var out: [(String, (any Error)?)] = []
                for sql in ["UPDATE audit_log SET detail = 'x'", "DELETE FROM audit_log", "TRUNCATE audit_log"] {
                    for (role, connector) in [("owner", db.owner), ("gate", db.gate)] {
                        do {
                            try await connector.withConnection { c in
                                try await c.query(PostgresQuery(unsafeSQL: sql), logger: quietLogger)
                            }
                            out.append(("\(sql) as \(role)", nil))
                        } catch { out.append(("\(sql) as \(role)", error)) }
                    }
                }
                return out
            })
    }

}

final class PostgresStoreContractTests: XCTestCase {
    func backend() async throws -> ContractBackend { try await postgresContractBackend() }

    func testRosterImport() async throws { try await StoreContract.rosterImport(try await backend()) }
    func testRosterConsentColumns() async throws { try await StoreContract.rosterConsentColumns(try await backend()) }
    func testConsent() async throws { try await StoreContract.consent(try await backend()) }
    func testEnrolments() async throws { try await StoreContract.enrolments(try await backend()) }
    func testErasure() async throws { try await StoreContract.erasure(try await backend()) }
    func testAuditLog() async throws { try await StoreContract.auditLog(try await backend()) }
    func testEvents() async throws { try await StoreContract.events(try await backend()) }
    func testClockGuard() async throws {
        let clock = TestClock()
        try await StoreContract.clockGuard(try await postgresContractBackend(clock: clock), clock: clock)
    }
    func testCorrections() async throws { try await StoreContract.corrections(try await backend()) }
    func testExcuses() async throws { try await StoreContract.excuses(try await backend()) }
    func testReviewQueue() async throws { try await StoreContract.reviewQueue(try await backend()) }
}

/// Figures for the note: a school's roster (1,500 students in 50 classes, each line with its consent columns) imported
/// through `SchoolRecords` into each backend, then imported again unchanged; and one consent recorded (the median of
/// 20, on PostgreSQL a connection of its own each, as the CLI makes it). Printed; the assertions check the outcome.
final class StoreFiguresEndToEndTests: XCTestCase {
    func measure(_ b: ContractBackend) async throws {
        var csv = "Mã định danh,Họ và tên,Lớp,Ngày sinh,Người giám hộ,Quan hệ,Ngày đồng ý,Học sinh đồng ý\n"
        for i in 0..<1_500 {
            csv += String(format: "79120%05d", i) + ",Học Sinh \(i),\(6 + i % 4)A\(i % 50 / 4 + 1),05/09/2013,"
            csv += "Phụ Huynh \(i),mẹ,01/09/2025,Có\n"
        }
        let roster = try StoreContract.roster(csv, file: "toan-truong.csv")
        var clock = ContinuousClock.now
        let first = try await b.records.importRoster(roster, options: RosterImportOptions())
        let firstTime = ContinuousClock.now - clock
        clock = ContinuousClock.now
        let again = try await b.records.importRoster(roster, options: RosterImportOptions())
        let againTime = ContinuousClock.now - clock
        assertEqual(first.added.count, 1_500)
        assertEqual(first.consentsRecorded.count, 1_500)
        assertEqual(again.unchanged, 1_500)
        assertEqual(try await b.records.students(classCode: nil, activeOnly: true).count, 1_500)
        var consents: [Duration] = []
        for i in 0..<20 {
            let student = String(format: "79120%05d", i)
            _ = try await b.records.revokeConsent(student: student, reason: nil)
            clock = ContinuousClock.now
            _ = try await b.records.recordConsent(
                student: student, guardian: "Phụ Huynh", relation: "bố", date: StoreContract.consentDay,
                scope: Consent.defaultScope, childAgreed: true, source: "figures")
            consents.append(ContinuousClock.now - clock)
        }
        assertEqual(try await b.records.activeConsent(student: "7912000019")?.relation, "bố")
        let median = consents.sorted()[consents.count / 2]
        print(
            "FIGURE \(b.records.backend): roster of 1,500 imported in \(firstTime), again unchanged in \(againTime); "
                + "one consent recorded: median \(median) of 20")
    }

    func testRosterImportIntoSQLite() async throws {
        try await measure(try sqliteContractBackend())
    }

    func testRosterImportIntoPostgreSQL() async throws {
        try await measure(try await postgresContractBackend())
    }
}
