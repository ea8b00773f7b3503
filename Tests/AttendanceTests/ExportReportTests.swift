import AttendanceCore
import Foundation
import GRDB
import SectorConnector
import XCTest

@testable import Attendance

/// The export tests' school: a temporary store with the fixtures' roster, and helpers to record a day.
class ExportTestCase: XCTestCase {
    var dir: URL!
    var store: AttendanceStore!
    var config = AttendanceConfig()
    let monday = LocalDate("2026-09-07")!

    override func setUpWithError() throws {
        dir = try Fixture.temporaryDirectory()
        config = Fixture.config // code 79000001, a Wednesday off
        store = try Fixture.memoryStore(config: config)
    }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    func record(
        _ student: String, _ day: String, _ time: String, status: AttendanceStatus, kind: EventKind = .checkIn,
        session: String = "morning", camera: String = "gate-1"
    ) throws {
        let e = NewAttendanceEvent(
            studentCode: student, schoolDay: LocalDate(day)!, session: session, kind: kind, status: status,
            occurredAt: Fixture.at(day, time), camera: camera, distance: 0.4)
        XCTAssertTrue(try store.events.record(e))
    }

    /// Monday: Ánh on time (and leaves at 11:05 by gate-2), Bình late, Cường never seen, Duy seen after the
    /// absent threshold, Yến excused.
    func seedMonday() throws {
        try record("HS0001", "2026-09-07", "06:55:10", status: .present)
        try record("HS0001", "2026-09-07", "11:05:42", status: .present, kind: .checkOut, camera: "gate-2")
        try record("HS0002", "2026-09-07", "07:09:03", status: .late)
        try record("HS0004", "2026-09-07", "07:31:00", status: .absent)
        _ = try store.events.excuse(student: "HS0005", day: monday, reason: "Ốm, mẹ gọi điện")
    }
}

/// The daily and absence reports, their CSV and JSON files, excuses and corrections.
final class ExportReportTests: ExportTestCase {
    func testDailyReportRules() throws {
        try seedMonday()
        let report = try AttendanceReports(store: store).daily(monday)
        XCTAssertTrue(report.isSchoolDay)
        XCTAssertEqual(
            report.rows.map(\.studentCode), ["HS0001", "HS0002", "HS0003", "HS0004", "HS0005"], "inactive students left out")
        XCTAssertEqual(report.rows.map(\.status), [.present, .late, .absent, .absent, .excused])
        XCTAssertEqual(report.rows[0].firstSeen, Fixture.at("2026-09-07", "06:55:10"))
        XCTAssertEqual(report.rows[0].lastSeen, Fixture.at("2026-09-07", "11:05:42"))
        XCTAssertEqual(report.rows[0].camera, "gate-1")
        XCTAssertNil(report.rows[2].firstSeen)
        XCTAssertEqual(
            report.rows[3].firstSeen, Fixture.at("2026-09-07", "07:31:00"), "seen too late: absent, but the time is shown")
        XCTAssertEqual(report.rows[4].excuse, "Ốm, mẹ gọi điện")
        XCTAssertEqual(report.classes.map(\.classCode), ["6A1", "7B2"])
        XCTAssertEqual(report.classes[0], counts("6A1", students: 3, present: 1, late: 1, absent: 1, excused: 0))
        XCTAssertEqual(report.classes[1], counts("7B2", students: 2, present: 0, late: 0, absent: 1, excused: 1))
        XCTAssertEqual(report.total.students, 5)

        let only = try AttendanceReports(store: store).daily(monday, classCode: "7B2")
        XCTAssertEqual(only.rows.map(\.studentCode), ["HS0004", "HS0005"])
        XCTAssertFalse(try AttendanceReports(store: store).daily(LocalDate("2026-09-12")!).isSchoolDay)
    }

    func counts(_ c: String, students: Int, present: Int, late: Int, absent: Int, excused: Int) -> ClassCount {
        var x = ClassCount(classCode: c)
        x.students = students; x.present = present; x.late = late; x.absent = absent; x.excused = excused
        return x
    }

    func testDailyCSVHasABOMAndQuotesWhatNeedsIt() throws {
        try seedMonday()
        let report = try AttendanceReports(store: store).daily(monday)
        let path = dir.appendingPathComponent("daily.csv").path
        let files = try ReportWriter.write(report, format: .csv, to: path, timeZone: TimeZone(identifier: "Asia/Ho_Chi_Minh")!)
        XCTAssertEqual(files, [path, dir.appendingPathComponent("daily-classes.csv").path])
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        XCTAssertEqual(Array(data.prefix(3)), [0xEF, 0xBB, 0xBF])
        let text = String(decoding: data.dropFirst(3), as: UTF8.self)
        let lines = text.components(separatedBy: "\r\n")
        XCTAssertEqual(lines[0], ReportWriter.dailyColumns.joined(separator: ","))
        XCTAssertEqual(lines[1], "2026-09-07,HS0001,Nguyễn Thị Ánh,6A1,present,Có mặt,06:55:10,11:05:42,gate-1,")
        XCTAssertEqual(
            lines[4], "2026-09-07,HS0004,\"Phạm Đức Duy, \"\"Bé\"\"\",7B2,absent,Vắng không phép,07:31:00,07:31:00,gate-1,")
        XCTAssertEqual(lines.count, 7, "header, 5 students, and the final CRLF")
        XCTAssertTrue(text.unicodeScalars.elementsEqual(text.precomposedStringWithCanonicalMapping.unicodeScalars), "NFC")
        let classes = String(decoding: try Data(contentsOf: URL(fileURLWithPath: files[1])).dropFirst(3), as: UTF8.self)
        XCTAssertTrue(classes.contains("6A1,3,1,1,1,0\r\n"), classes)
        XCTAssertTrue(classes.contains("Toàn trường,5,1,1,2,1\r\n"), classes)
    }

    func testDailyJSONRoundTrips() throws {
        try seedMonday()
        let report = try AttendanceReports(store: store).daily(monday)
        let path = dir.appendingPathComponent("daily.json").path
        try ReportWriter.write(report, format: .json, to: path, timeZone: .current)
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .custom { d in
            let s = try d.singleValueContainer().decode(String.self)
            return Timestamp.date(s)!
        }
        XCTAssertEqual(try decoder.decode(DailyReport.self, from: Data(contentsOf: URL(fileURLWithPath: path))), report)
    }

    func testExcuseEmitsRecordsAndIsAuditedWithoutTheReason() throws {
        try record("HS0004", "2026-09-07", "07:31:00", status: .absent)
        let result = try store.events.excuse(student: "HS0004", day: monday, reason: "Đi viện")
        XCTAssertFalse(result.replaced)
        XCTAssertEqual(result.changes.map(\.session), ["morning", "afternoon"])
        XCTAssertEqual(result.changes.map(\.eventKind), [.update, .new])
        XCTAssertEqual(result.changes.map(\.version), [2, 1])

        let rows = try Fixture.outbox(store).filter { $0.eventKind != "NEW" || $0.key.recordID == result.changes[1].recordID }
        XCTAssertEqual(rows.count, 2)
        for row in rows {
            let r = try JSONDecoder().decode(SectorRecord.self, from: Data(row.payload.utf8))
            XCTAssertEqual(r.status, "excused")
            XCTAssertEqual(r.contractViolations(), [])
        }
        let update = try JSONDecoder().decode(
            SectorRecord.self, from: Data(rows.first { $0.eventKind == "UPDATE" }!.payload.utf8))
        XCTAssertEqual(update.occurredAt, Timestamp.string(Fixture.at("2026-09-07", "07:31:00")), "the sighting is kept")

        let audit = try store.auditLog.entries().last!
        XCTAssertEqual(audit.action, "attendance.excuse")
        XCTAssertEqual(audit.studentCode, "HS0004")
        XCTAssertFalse(audit.detail?.contains("Đi viện") ?? true, "the reason stays out of the append-only log")

        let again = try store.events.excuse(student: "HS0004", day: monday, reason: "Đi viện (giấy)")
        XCTAssertTrue(again.replaced)
        XCTAssertEqual(again.changes, [], "already excused")
        XCTAssertEqual(try store.auditLog.entries().last?.action, "attendance.excuse.replace")

        XCTAssertThrowsError(try store.events.excuse(student: "HS0004", day: LocalDate("2026-09-12")!, reason: "x"))
        XCTAssertThrowsError(
            try store.events.excuse(student: "HS0004", day: LocalDate("2026-09-09")!, reason: "x"), "holiday")
        XCTAssertThrowsError(try store.events.excuse(student: "NOBODY", day: monday, reason: "x"))
        XCTAssertThrowsError(try store.events.excuse(student: "HS0004", day: monday, reason: "  "))
    }

    func testPlannedExcuseCreatesNoEventSoTheStudentCanStillCheckIn() throws {
        let now = Fixture.at("2026-09-07", "06:00:00")
        let result = try store.events.excuse(student: "HS0001", day: monday, reason: "hẹn nha sĩ", now: now)
        XCTAssertEqual(result.changes, [])
        try record("HS0001", "2026-09-07", "06:55:00", status: .present)
        XCTAssertEqual(try AttendanceReports(store: store).daily(monday).rows[0].status, .present)
    }

    func testCorrectionBumpsTheVersionAndQueuesAnUpdate() throws {
        try record("HS0002", "2026-09-07", "07:09:03", status: .late)
        let first = try XCTUnwrap(
            try store.events.correct(student: "HS0002", day: monday, status: .present, reason: "đồng hồ sai"))
        XCTAssertEqual(first.previousStatus, .late)
        XCTAssertEqual(first.eventKind, .update)
        XCTAssertEqual(first.version, 2)
        XCTAssertNil(try store.events.correct(student: "HS0002", day: monday, status: .present, reason: "again"))
        let second = try XCTUnwrap(
            try store.events.correct(student: "HS0002", day: monday, status: .absent, reason: "rời trường"))
        XCTAssertEqual(second.version, 3)
        let cancel = try store.events.cancelEvent(student: "HS0002", day: monday, reason: "nhận nhầm")
        XCTAssertEqual(cancel.version, 4)
        XCTAssertEqual(cancel.eventKind, .cancel)
        XCTAssertThrowsError(try store.events.cancelEvent(student: "HS0002", day: monday, reason: "twice"))

        let rows = try Fixture.outbox(store).filter { $0.key.recordID == first.recordID }
        XCTAssertEqual(rows.map(\.key.version), [1, 2, 3, 4])
        XCTAssertEqual(rows.map(\.eventKind), ["NEW", "UPDATE", "UPDATE", "CANCEL"])
        let statuses = try rows.map { try JSONDecoder().decode(SectorRecord.self, from: Data($0.payload.utf8)).status }
        XCTAssertEqual(statuses, ["late", "present", "absent", "absent"])
        let (version, cancelled): (Int, Bool) = try store.writer.read { db in
            let r = try Row.fetchOne(
                db, sql: "SELECT version, cancelled FROM attendance_event WHERE id = ?", arguments: [first.recordID])!
            return (r[0], r[1])
        }
        XCTAssertEqual(version, 4)
        XCTAssertTrue(cancelled)
        XCTAssertEqual(
            try AttendanceReports(store: store).daily(monday).rows[1].status, .absent,
            "a cancelled event does not count")
        let actions = try store.auditLog.entries().map(\.action)
        XCTAssertEqual(actions.filter { $0 == "attendance.correct" }.count, 2)
        XCTAssertEqual(actions.last, "attendance.cancel")

        // A student the camera missed: the correction creates the event (NEW, version 1, no camera).
        let created = try XCTUnwrap(
            try store.events.correct(
                student: "HS0003", day: monday, session: "afternoon", status: .present,
                reason: "camera tắt"))
        XCTAssertEqual(created.eventKind, .new)
        XCTAssertEqual(created.version, 1)
        XCTAssertThrowsError(
            try store.events.correct(student: "HS0003", day: monday, session: "evening", status: .present, reason: "x"))
    }
}

/// The XLSX export read back by openpyxl (a Python child process): end to end.
final class ExportXLSXEndToEndTests: ExportTestCase {
    // MARK: XLSX, read back by openpyxl

    static let reader = """
        import json, sys, datetime, openpyxl
        wb = openpyxl.load_workbook(sys.argv[1])
        out = []
        for ws in wb.worksheets:
            rows = []
            for row in ws.iter_rows():
                cells = []
                for c in row:
                    v = c.value
                    if isinstance(v, datetime.datetime):
                        cells.append({"dt": v.isoformat(), "fmt": c.number_format})
                    elif isinstance(v, bool) or v is None or isinstance(v, (int, float, str)):
                        cells.append(v)
                    else:
                        cells.append(str(v))
                rows.append(cells)
            widths = {k: d.width for k, d in ws.column_dimensions.items() if d.customWidth}
            out.append({"name": ws.title, "freeze": ws.freeze_panes, "widths": widths,
                        "bold_header": all(c.font.b for c in ws[1] if c.value is not None), "rows": rows})
        print(json.dumps(out, ensure_ascii=False))
        """

    struct Sheet: Decodable {
        var name: String
        var freeze: String?
        var widths: [String: Double]
        var bold_header: Bool
        var rows: [[Cell?]]
    }

    enum Cell: Decodable, Equatable {
        case text(String), number(Double), date(String, format: String)
        init(from decoder: any Decoder) throws {
            let c = try decoder.singleValueContainer()
            if let s = try? c.decode(String.self) { self = .text(s); return }
            if let n = try? c.decode(Double.self) { self = .number(n); return }
            struct DT: Decodable { var dt: String; var fmt: String }
            let d = try c.decode(DT.self)
            self = .date(d.dt, format: d.fmt)
        }
    }

    func readXLSX(_ path: String) throws -> [Sheet] {
        let python: String
        if let p = ProcessInfo.processInfo.environment["XLSX_READER_PYTHON"] {
            python = p
        } else {
            let setup = Process()
            setup.executableURL = Fixture.packageRoot.appendingPathComponent("scripts/xlsx-reader-venv.sh")
            let out = Pipe()
            setup.standardOutput = out
            try setup.run()
            let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            setup.waitUntilExit()
            guard setup.terminationStatus == 0 else { throw FixtureError("scripts/xlsx-reader-venv.sh failed") }
            python = text.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: python)
        p.arguments = ["-c", Self.reader, path]
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        let errText = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        guard p.terminationStatus == 0 else { throw FixtureError("openpyxl: \(errText)") }
        return try JSONDecoder().decode([Sheet].self, from: data)
    }

    func testDailyXLSXReadBackEqualsTheDatabase() throws {
        try seedMonday()
        let report = try AttendanceReports(store: store).daily(monday)
        let path = dir.appendingPathComponent("daily.xlsx").path
        try ReportWriter.write(report, format: .xlsx, to: path, timeZone: TimeZone(identifier: "Asia/Ho_Chi_Minh")!)
        let sheets = try readXLSX(path)
        XCTAssertEqual(sheets.map(\.name), ["Điểm danh", "Theo lớp"])
        let s = sheets[0]
        XCTAssertEqual(s.freeze, "A2", "header row frozen")
        XCTAssertTrue(s.bold_header)
        XCTAssertEqual(s.widths["C"] ?? 0, 28.0, accuracy: 1.0, "name column widened")
        XCTAssertEqual(s.rows[0], ReportWriter.dailyColumns.map(Cell.text))

        // Independently of the report code: what the database says, row by row.
        let truth: [[Cell?]] = try store.writer.read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT s.code, s.full_name, s.class_code,
                           (SELECT MIN(occurred_at) FROM attendance_event e WHERE e.student_code = s.code AND e.school_day = '2026-09-07' AND e.occurred_at IS NOT NULL),
                           (SELECT MAX(occurred_at) FROM attendance_event e WHERE e.student_code = s.code AND e.school_day = '2026-09-07' AND e.occurred_at IS NOT NULL),
                           (SELECT camera FROM attendance_event e WHERE e.student_code = s.code AND e.school_day = '2026-09-07' AND e.occurred_at IS NOT NULL ORDER BY occurred_at LIMIT 1),
                           (SELECT reason FROM excuse x WHERE x.student_code = s.code AND x.school_day = '2026-09-07')
                    FROM student s WHERE s.active = 1 ORDER BY s.class_code, s.code
                    """
            ).map { r in
                func local(_ utc: String?) -> Cell? {
                    guard let utc, let d = Timestamp.date(utc) else { return nil }
                    let shifted = Timestamp.string(d.addingTimeInterval(7 * 3600)) // UTC+7, no DST
                    return .date(String(shifted.prefix(19)), format: "hh:mm:ss")
                }
                return [
                    .date("2026-09-07T00:00:00", format: "dd/mm/yyyy"), .text(r[0]), .text(r[1]), .text(r[2]),
                    nil, nil, local(r[3]), local(r[4]), (r[5] as String?).map(Cell.text), (r[6] as String?).map(Cell.text),
                ]
            }
        }
        XCTAssertEqual(s.rows.count - 1, truth.count)
        let statuses: [String] = ["present", "late", "absent", "absent", "excused"]
        for (i, expected) in truth.enumerated() {
            var row = s.rows[i + 1]
            while row.count < ReportWriter.dailyColumns.count { row.append(nil) }
            XCTAssertEqual(row[4], .text(statuses[i]))
            XCTAssertEqual(row[5], .text(AttendanceStatus(rawValue: statuses[i])!.vietnameseLabel))
            row[4] = nil; row[5] = nil
            XCTAssertEqual(row, expected, "row \(i + 1)")
        }

        let counts = sheets[1]
        XCTAssertEqual(counts.freeze, "A2")
        XCTAssertEqual(counts.rows[0], ReportWriter.classColumns.map(Cell.text))
        XCTAssertEqual(counts.rows[1], [.text("6A1"), .number(3), .number(1), .number(1), .number(1), .number(0)])
        XCTAssertEqual(counts.rows[2], [.text("7B2"), .number(2), .number(0), .number(0), .number(1), .number(1)])
        XCTAssertEqual(counts.rows[3], [.text("Toàn trường"), .number(5), .number(1), .number(1), .number(2), .number(1)])
    }

    func testAbsencesOverARangeCountSchoolDaysOnly() throws {
        try seedMonday()
        // Tuesday: everyone but Cường on time. Wednesday is a holiday. Thursday: only Ánh. Friday: nobody.
        for code in ["HS0001", "HS0002", "HS0004", "HS0005"] { try record(code, "2026-09-08", "06:50:00", status: .present) }
        try record("HS0001", "2026-09-10", "06:50:00", status: .present)
        // Late in the afternoon: late, not absent.
        try record("HS0002", "2026-09-10", "07:05:00", status: .late, session: "afternoon")
        _ = try store.events.excuse(student: "HS0003", day: LocalDate("2026-09-10")!, reason: "khám bệnh")

        let reports = AttendanceReports(store: store)
        let report = try reports.absences(from: monday, to: LocalDate("2026-09-13")!)
        XCTAssertEqual(report.schoolDays.map(\.description), ["2026-09-07", "2026-09-08", "2026-09-10", "2026-09-11"])
        let byCode = Dictionary(uniqueKeysWithValues: report.rows.map { ($0.studentCode, $0) })
        func check(_ code: String, absent: Int, excused: Int, late: Int, line: UInt = #line) {
            let r = byCode[code]!
            XCTAssertEqual(r.absentDays, absent, code, line: line)
            XCTAssertEqual(r.excusedDays, excused, code, line: line)
            XCTAssertEqual(r.unexcusedDays, absent - excused, code, line: line)
            XCTAssertEqual(r.lateDays, late, code, line: line)
        }
        check("HS0001", absent: 1, excused: 0, late: 0) // Friday
        check("HS0002", absent: 1, excused: 0, late: 2) // Monday and Thursday late, Friday absent
        check("HS0003", absent: 4, excused: 1, late: 0)
        check("HS0004", absent: 3, excused: 0, late: 0) // Monday (too late), Thursday, Friday
        check("HS0005", absent: 3, excused: 1, late: 0)
        XCTAssertNil(byCode["HS0099"])

        let path = dir.appendingPathComponent("absences.xlsx").path
        try ReportWriter.write(report, format: .xlsx, to: path)
        let sheets = try readXLSX(path)
        XCTAssertEqual(sheets.map(\.name), ["Số ngày nghỉ", "Thông tin"])
        let s = sheets[0]
        XCTAssertEqual(s.freeze, "A2")
        XCTAssertEqual(
            s.rows[0].compactMap { if case .text(let t)? = $0 { return t } else { return nil } },
            [
                "STT", "Mã học sinh", "Họ tên", "Ngày sinh", "Lớp", "Số ngày nghỉ", "Nghỉ có phép", "Nghỉ không phép",
                "Số ngày đi muộn",
            ])
        for (i, r) in report.rows.enumerated() {
            let pupil = Fixture.pupils.first { $0.code == r.studentCode }!
            let dob: Cell? = pupil.dob.map { .date($0 + "T00:00:00", format: "dd/mm/yyyy") }
            XCTAssertEqual(
                s.rows[i + 1],
                [
                    .number(Double(i + 1)), .text(pupil.code), .text(pupil.name), dob, .text(pupil.classCode),
                    .number(Double(r.absentDays)), .number(Double(r.excusedDays)),
                    .number(Double(r.unexcusedDays)), .number(Double(r.lateDays)),
                ])
        }
        XCTAssertEqual(sheets[1].rows[4], [.text("Số ngày học"), .text("4")])
    }

    // MARK: excuse and correction
}
