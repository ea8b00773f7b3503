import Foundation
import GRDB
import XCTest

@testable import Attendance
@testable import AttendanceCore

final class PrivacyTests: XCTestCase {
    func testDatabaseHoldsNoPlaintextEmbedding() throws {
        let tmp = try TempStore()
        let store = try tmp.open()
        try seedRoster(store, in: tmp)
        let known = fakeEmbedding(42)
        try store.enrolments.add(student: "0101", [(known, nil, "photo:a.jpg")])
        XCTAssertEqual(try store.enrolments.recognisable().first?.embedding, known)
        let bytes = tmp.databaseBytes()
        XCTAssertGreaterThan(bytes.count, 0)
        func le(_ floats: ArraySlice<Float>) -> Data {
            var d = Data()
            for f in floats { withUnsafeBytes(of: f.bitPattern.littleEndian) { d.append(contentsOf: $0) } }
            return d
        }
        func be(_ floats: ArraySlice<Float>) -> Data {
            var d = Data()
            for f in floats { withUnsafeBytes(of: f.bitPattern.bigEndian) { d.append(contentsOf: $0) } }
            return d
        }
        XCTAssertNotNil(bytes.range(of: Data("Nguyễn Văn An".utf8)), "the scan does see plaintext")
        // No run of 3 consecutive floats of the embedding appears, in either byte order.
        for i in 0..<(known.count - 2) {
            XCTAssertNil(bytes.range(of: le(known[i..<(i + 3)])), "plaintext floats at \(i)")
            XCTAssertNil(bytes.range(of: be(known[i..<(i + 3)])), "plaintext floats at \(i)")
        }
        // Nor as text (someone storing JSON by mistake).
        XCTAssertNil(bytes.range(of: Data(String(known[0]).utf8)))
        let blob = try store.writer.read { try Data.fetchOne($0, sql: "SELECT sealed_embedding FROM enrolment") }!
        XCTAssertEqual(blob.count, 12 + 128 * 4 + 16, "nonce | ciphertext | tag")
    }

    func testWrongKeyIsRefusedAndMissingKeyIsExplained() throws {
        let tmp = try TempStore()
        do {
            let store = try tmp.open()
            try seedRoster(store, in: tmp)
            try store.enrolments.add(student: "0101", [(fakeEmbedding(1), nil, nil)])
        }
        let other = tmp.dir + "/other.key"
        _ = try AttendanceStore(path: tmp.dir + "/other.sqlite", keyFile: other, config: AttendanceConfig())
        XCTAssertThrowsError(try AttendanceStore(path: tmp.path, keyFile: other, config: AttendanceConfig())) { error in
            XCTAssertEqual(error as? StoreError, .wrongKey(keyFile: other))
            XCTAssertTrue("\(error)".contains("does not match this database"), "\(error)")
        }
        let truncated = tmp.dir + "/short.key"
        XCTAssertTrue(try FilePermissions.createPrivate(truncated, contents: [1, 2, 3]))
        XCTAssertThrowsError(try AttendanceStore(path: tmp.path, keyFile: truncated, config: AttendanceConfig())) { error in
            XCTAssertTrue("\(error)".contains("has 3 bytes"), "\(error)")
        }
        let missing = tmp.dir + "/missing.key"
        XCTAssertThrowsError(try AttendanceStore(path: tmp.path, keyFile: missing, config: AttendanceConfig())) { error in
            XCTAssertEqual(error as? StoreError, .missingKey(keyFile: missing, enrolments: 1))
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: missing), "no new key is made for a database with enrolments")
        // The right key still works, and the failed attempts changed nothing.
        XCTAssertEqual(try tmp.open().enrolments.recognisable().first?.embedding, fakeEmbedding(1))
        // After discarding the enrolments, a new key may be made.
        XCTAssertEqual(try EnrolmentRegister.discardAll(path: tmp.path), 1)
        XCTAssertNoThrow(try AttendanceStore(path: tmp.path, keyFile: missing, config: AttendanceConfig()))
    }

    func testSealedEmbeddingMovedToAnotherStudentDoesNotOpen() throws {
        let tmp = try TempStore()
        let store = try tmp.open()
        try seedRoster(store, in: tmp)
        try store.enrolments.add(student: "0101", [(fakeEmbedding(1), nil, nil)])
        try store.writer.write { try $0.execute(sql: "UPDATE enrolment SET student_code = '0102'") }
        XCTAssertThrowsError(try store.enrolments.recognisable()) {
            XCTAssertEqual($0 as? StoreError, .wrongKey(keyFile: tmp.keyFile))
        }
    }

    func testEraseLeavesNoRowReferringToTheStudentButTheErasureEntry() throws {
        let tmp = try TempStore()
        let store = try tmp.open()
        try seedRoster(store, in: tmp)
        try store.enrolments.add(student: "0102", [(fakeEmbedding(5), nil, "photo:binh.jpg")])
        for (i, kind) in [EventKind.checkIn, .checkOut].enumerated() {
            XCTAssertTrue(
                try store.events.record(
                    NewAttendanceEvent(
                        studentCode: "0102", schoolDay: LocalDate(year: 2024, month: 9, day: 5),
                        session: "morning", kind: kind, status: .present,
                        occurredAt: Date(timeIntervalSince1970: 1_725_500_000 + Double(i)),
                        camera: "gate", distance: 0.3)))
        }
        XCTAssertTrue(
            try store.events.record(
                NewAttendanceEvent(
                    studentCode: "0101", schoolDay: LocalDate(year: 2024, month: 9, day: 5),
                    session: "morning", kind: .checkIn, status: .present,
                    occurredAt: Date(), camera: "gate", distance: 0.3)))
        // Excused before the day's session ended: the excuse alone, no event.
        _ = try store.events.excuse(
            student: "0102", day: LocalDate(year: 2024, month: 9, day: 6), reason: "ốm",
            now: Timestamp.date("2024-09-06T00:00:00.000Z")!)
        try store.auditLog.append(action: "export", student: "0102", detail: "daily report")
        let v = try store.enrolments.galleryVersion()

        let report = try store.retention.erase(student: "0102", reason: "parent's request")
        XCTAssertEqual(report, ErasureReport(student: "0102", enrolments: 1, consents: 1, events: 2, outbox: 2, excuses: 1))
        XCTAssertGreaterThan(try store.enrolments.galleryVersion(), v)

        // Scan every column of every row of every table for the code and the name.
        let needles = ["0102", "Trần Thị Bình"]
        var hits: [String] = []
        try store.writer.read { db in
            let tables = try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'table'")
            for table in tables {
                for row in try Row.fetchAll(db, sql: "SELECT * FROM \"\(table)\"") {
                    let text = row.databaseValues.map { v -> String in
                        if let d = Data.fromDatabaseValue(v) { return String(decoding: d, as: UTF8.self) }
                        return "\(v)"
                    }.joined(separator: "|")
                    if needles.contains(where: { text.contains($0) }) { hits.append("\(table): \(text)") }
                }
            }
        }
        XCTAssertEqual(hits, [], "not even the erasure entry keeps the code")
        // The erasure entry names the student by a keyed hash of the code: provable to whoever holds both.
        let erasure = try XCTUnwrap(try store.auditLog.entries().last { $0.action == "student.erase" })
        XCTAssertEqual(erasure.subject, store.pseudonym(of: "0102"))
        XCTAssertTrue(erasure.subject?.hasPrefix("st-") == true)
        // Earlier audit entries name the student by an alias that no longer resolves.
        let aliased = try store.auditLog.entries().filter { $0.action == "export" }
        XCTAssertEqual(aliased.count, 1)
        XCTAssertTrue(aliased[0].subject?.hasPrefix("S-") == true)
        XCTAssertNil(aliased[0].studentCode)
        // The other student is untouched.
        XCTAssertEqual(try store.roster.student(code: "0101")?.fullName, "Nguyễn Văn An")
        XCTAssertEqual(try store.writer.read { try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM outbox") }, 1)
        // secure_delete + checkpoint: the name is gone from the file's bytes too.
        XCTAssertNil(tmp.databaseBytes().range(of: Data("Trần Thị Bình".utf8)))
        XCTAssertThrowsError(try store.retention.erase(student: "0102")) {
            XCTAssertEqual($0 as? StoreError, .unknownStudent("0102"))
        }
    }

    func testConsentRevocationDeletesEmbeddingsAndIsAudited() throws {
        let tmp = try TempStore()
        let store = try tmp.open()
        try seedRoster(store, in: tmp)
        try store.enrolments.add(student: "0101", [(fakeEmbedding(1), nil, nil), (fakeEmbedding(2), nil, nil)])
        XCTAssertEqual(try store.consent.revoke(student: "0101", reason: "parent asked"), 2)
        XCTAssertEqual(try store.enrolments.list(student: "0101"), [])
        let history = try store.consent.history(student: "0101")
        XCTAssertEqual(history.count, 1)
        XCTAssertNotNil(history[0].revokedAt)
        XCTAssertEqual(history[0].revokedBy, AttendanceStore.osUser)
        let entry = try XCTUnwrap(try store.auditLog.entries().last)
        XCTAssertEqual(entry.action, "consent.revoke")
        XCTAssertEqual(entry.studentCode, "0101")
        XCTAssertEqual(entry.detail, "embeddings deleted=2; reason=parent asked")
        XCTAssertThrowsError(try store.consent.revoke(student: "0101"), "nothing left to revoke")
    }

    func testChildOfSevenMustAgreeToo() throws {
        let tmp = try TempStore()
        let store = try tmp.open()
        try seedRoster(store, in: tmp, consent: false) // born 2013: 11 in 2024
        XCTAssertThrowsError(
            try store.consent.record(
                student: "0101", guardian: "Mẹ", relation: "mother",
                date: LocalDate(year: 2024, month: 9, day: 1))
        ) {
            XCTAssertTrue("\($0)".contains("the child's own agreement"), "\($0)")
        }
        XCTAssertThrowsError(
            try store.consent.record(
                student: "0101", guardian: "Mẹ", relation: "mother",
                date: LocalDate(year: 2099, month: 1, day: 1), childAgreed: true))
        XCTAssertEqual(Consent.age(of: LocalDate(year: 2017, month: 9, day: 2), on: LocalDate(year: 2024, month: 9, day: 1)), 6)
        XCTAssertEqual(Consent.age(of: LocalDate(year: 2017, month: 9, day: 1), on: LocalDate(year: 2024, month: 9, day: 1)), 7)
    }

    func testRetentionPurgesOldEventsAndUnknownFaceCrops() async throws {
        let tmp = try TempStore()
        let store = try tmp.open()
        try seedRoster(store, in: tmp)
        func event(_ day: LocalDate) -> NewAttendanceEvent {
            NewAttendanceEvent(
                studentCode: "0101", schoolDay: day, session: "morning", kind: .checkIn, status: .present,
                occurredAt: day.at(LocalTime(hour: 7, minute: 0), in: .gmt), camera: "g", distance: 0.3)
        }
        let now = LocalDate(year: 2024, month: 9, day: 5).at(LocalTime(hour: 12, minute: 0), in: .gmt)
        XCTAssertTrue(try store.events.record(event(LocalDate(year: 2021, month: 9, day: 1))))
        XCTAssertTrue(try store.events.record(event(LocalDate(year: 2024, month: 9, day: 4))))
        let oldCrop = tmp.dir + "/old.jpg", newCrop = tmp.dir + "/new.jpg"
        for p in [oldCrop, newCrop] { _ = FileManager.default.createFile(atPath: p, contents: Data([1])) }
        try store.events.recordUnknownFace(at: now.addingTimeInterval(-3 * 86_400), camera: "g", cropPath: oldCrop)
        try store.events.recordUnknownFace(at: now.addingTimeInterval(-3_600), camera: "g", cropPath: newCrop)

        var config = AttendanceConfig()
        config.privacy.retentionDays = 365
        config.privacy.keepUnknownCropsDays = 2
        // Retention never deletes a record the sector database has not acknowledged.
        var keepCrops = config
        keepCrops.privacy.keepUnknownCropsDays = 365
        XCTAssertEqual(try tmp.open(config: keepCrops).retention.purge(now: now).keptUndelivered, 1)
        XCTAssertEqual(try countRows(store, "SELECT COUNT(*) FROM attendance_event"), 2)
        let outbox = SQLiteOutbox(store: store)
        try await outbox.markDelivered(try await outbox.pending(after: nil, dueBy: nil, limit: 100).map(\.key), at: now)
        let report = try tmp.open(config: config).retention.purge(now: now)
        XCTAssertEqual(report.events, 1)
        XCTAssertEqual(report.outbox, 1)
        XCTAssertEqual(report.cropsDeleted, 1)
        XCTAssertFalse(FileManager.default.fileExists(atPath: oldCrop))
        XCTAssertTrue(FileManager.default.fileExists(atPath: newCrop))
        let days = try await store.writer.read { try String.fetchAll($0, sql: "SELECT school_day FROM attendance_event") }
        XCTAssertEqual(days, ["2024-09-04"])
        XCTAssertEqual(try countRows(store, "SELECT COUNT(*) FROM unknown_face WHERE crop_path IS NOT NULL"), 1)

        config.privacy.keepUnknownCropsDays = 0 // the school turned crops off: every crop goes
        XCTAssertEqual(try tmp.open(config: config).retention.purge(now: now).cropsDeleted, 1)
        XCTAssertEqual(try store.retention.purgeEvents(olderThan: LocalDate(year: 2030, month: 1, day: 1)), 1)
        XCTAssertTrue(try store.auditLog.entries().contains { $0.action == "purge.events" })
    }

    /// Issue #12 point 9: an old roster re-imported after an erasure does not bring the consent back;
    /// a revoked consent stops the decider at once, before the gallery reloads.
    func testErasureIsRememberedAndRevocationStopsTheDeciderAtOnce() async throws {
        let tmp = try TempStore()
        let store = try tmp.open()
        try seedRoster(store, in: tmp, consent: false)
        let csv = """
            Mã định danh,Họ và tên,Lớp,Ngày sinh,Giới tính,Người đại diện,Quan hệ,Ngày đồng ý,Học sinh đồng ý
            0101,Nguyễn Văn An,6A1,05/09/2013,Nam,Nguyễn Văn Ba,father,2024-09-01,yes
            0102,Trần Thị Bình,6A1,2013-01-20,Nữ,Trần Văn Cả,father,2024-09-01,yes
            """
        let path = try tmp.write("with-consent.csv", csv)
        let first = try store.roster.importRoster(
            try RosterParser.parse(contentsOf: path, today: LocalDate(year: 2024, month: 9, day: 2)))
        XCTAssertEqual(Set(first.consentsRecorded), ["0101", "0102"])
        try store.retention.erase(student: "0102", reason: "parent's request")

        // The same old roster again: Bình is back on the roster, her consent is not.
        let again = try store.roster.importRoster(
            try RosterParser.parse(contentsOf: path, today: LocalDate(year: 2024, month: 9, day: 2)))
        XCTAssertEqual(again.added, ["0102"])
        XCTAssertEqual(again.consentsRefusedErased, ["0102"])
        XCTAssertFalse(try store.consent.isActive(student: "0102"))
        XCTAssertEqual(try countRows(store, "SELECT COUNT(*) FROM erased_student"), 1)
        XCTAssertEqual(try countRows(store, "SELECT COUNT(*) FROM erased_student WHERE pseudonym LIKE '%0102%'"), 0)
        // A consent given after the erasure is the family's new decision: recorded.
        try store.consent.record(
            student: "0102", guardian: "Trần Văn Cả", relation: "father", date: LocalDate(Date(), in: .gmt), childAgreed: true)
        XCTAssertTrue(try store.consent.isActive(student: "0102"))

        // Revoked consent: the decider refuses at once, whatever the gallery still holds.
        var config = AttendanceConfig()
        config.schedule.schoolDays = Array(1...7)
        let decider = AttendanceDecider(store: try tmp.open(config: config))
        try store.consent.revoke(student: "0101", reason: "parent withdrew")
        let morning = LocalDate(year: 2026, month: 12, day: 7).at(
            LocalTime(hour: 7, minute: 5), in: TimeZone(identifier: config.school.timezone)!)
        let result = try await decider.decide(student: "0101", distance: 0.3, at: morning, camera: "gate-1", direction: "in")
        XCTAssertEqual(result, .noConsent)
        XCTAssertEqual(try eventCount(store), 0)
    }

    /// After the key file is lost (`unenrol --all`), the erasure register can no longer name who was erased:
    /// no roster consent dated before that day comes back, for anyone.
    func testAfterAKeyLossNoOldRosterConsentComesBack() throws {
        let tmp = try TempStore()
        let csv = """
            Mã định danh,Họ và tên,Lớp,Ngày sinh,Giới tính,Người đại diện,Quan hệ,Ngày đồng ý,Học sinh đồng ý
            0101,Nguyễn Văn An,6A1,05/09/2013,Nam,Nguyễn Văn Ba,father,2024-09-01,yes
            0102,Trần Thị Bình,6A1,2013-01-20,Nữ,Trần Văn Cả,father,2024-09-01,yes
            """
        let path = try tmp.write("with-consent.csv", csv)
        do {
            let store = try tmp.open()
            _ = try store.roster.importRoster(
                try RosterParser.parse(contentsOf: path, today: LocalDate(year: 2024, month: 9, day: 2)))
            try store.enrolments.add(student: "0101", [(fakeEmbedding(1), nil, nil)])
            try store.retention.erase(student: "0102")
        }
        // The key file is lost: the admin discards the enrolments and starts over with a new key.
        try FileManager.default.removeItem(atPath: tmp.keyFile)
        XCTAssertEqual(try EnrolmentRegister.discardAll(path: tmp.path), 1)
        let store = try tmp.open()
        let again = try store.roster.importRoster(
            try RosterParser.parse(contentsOf: path, today: LocalDate(year: 2024, month: 9, day: 2)))
        XCTAssertEqual(again.consentsRefusedErased, ["0102"], "the erased student's old consent stays out")
        XCTAssertFalse(try store.consent.isActive(student: "0102"))
        XCTAssertTrue(try store.consent.isActive(student: "0101"), "a consent on record is untouched")
    }
}
