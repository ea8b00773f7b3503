import Foundation
import GRDB
import XCTest

@testable import Attendance
@testable import AttendanceCore

final class RosterTests: XCTestCase {
    let today = LocalDate(year: 2024, month: 9, day: 1)

    func testVietnameseNamesRoundTripByteForByte() throws {
        let tmp = try TempStore()
        let store = try AttendanceStore.inMemory(config: AttendanceConfig())
        // Every tone mark on every vowel family, đ/Đ, and a name with ư/ơ stacked with a tone.
        let names = [
            "Nguyễn Thị Ánh Tuyết", "Đặng Quốc Trưởng", "Phạm Ngọc Hưởng", "Bùi Thị Ỷ Lan",
            "Võ Thị Thu Hằng", "Lưu Đức Mạnh", "Hồ Ngọc Ửng", "Trịnh Thị Ỹ Nhi",
        ]
        var csv = "\u{FEFF}Mã định danh,Họ và tên,Lớp\r\n"
        for (i, n) in names.enumerated() { csv += "\(7900 + i),\(n),8C\(i % 2 + 1)\r\n" }
        let path = try tmp.write("lop8.csv", csv)
        let report = try store.roster.importRoster(try RosterParser.parse(contentsOf: path, today: today))
        XCTAssertEqual(report.added.count, names.count)
        for (i, n) in names.enumerated() {
            let stored = try store.writer.read {
                try Data.fetchOne(
                    $0, sql: "SELECT CAST(full_name AS BLOB) FROM student WHERE code = ?",
                    arguments: ["\(7900 + i)"])
            }
            XCTAssertEqual(stored, Data(n.utf8), n)
            XCTAssertEqual(Array(try store.roster.student(code: "\(7900 + i)")!.fullName.utf8), Array(n.utf8))
        }
        XCTAssertEqual(try store.roster.students(classCode: "8C1").first?.gradeCode, "8")
    }

    func testDecomposedInputIsStoredAsNFC() throws {
        let store = try AttendanceStore.inMemory(config: AttendanceConfig())
        let nfc = "Nguyễn Thị Ánh"
        let nfd = nfc.decomposedStringWithCanonicalMapping
        XCTAssertNotEqual(Array(nfd.utf8), Array(nfc.utf8))
        let roster = try RosterParser.parse(text: "student_code,full_name,class\n1,\(nfd),6A1\n", file: "nfd.csv", today: today)
        try store.roster.importRoster(roster)
        XCTAssertEqual(Array(try store.roster.student(code: "1")!.fullName.utf8), Array(nfc.utf8))
    }

    func testQuotedFieldsSemicolonsTitleRowsAndDateFormats() throws {
        let text = """
            DANH SÁCH HỌC SINH LỚP 6A1;;;;;
            Năm học 2024-2025;;;;;
            STT;Mã HS;Họ tên;Lớp;Ngày sinh;Giới tính
            1;"0001";"Nguyễn Văn ""Bi"" An";Lớp 6a1;5/9/2013;nam
            2;0002;"Lê Thị
            Hoa";6A1;2013-01-20;NỮ

            3;0003;  Trần   Minh  ;6A1;45000;
            """
        let roster = try RosterParser.parse(text: text, file: "x.csv", today: today)
        XCTAssertEqual(roster.entries.map(\.code), ["0001", "0002", "0003"])
        XCTAssertEqual(roster.entries[0].fullName, "Nguyễn Văn \"Bi\" An")
        XCTAssertEqual(roster.entries[0].classCode, "6A1")
        XCTAssertEqual(roster.entries[0].dateOfBirth, LocalDate(year: 2013, month: 9, day: 5))
        XCTAssertEqual(roster.entries[0].gender, "male")
        XCTAssertEqual(roster.entries[1].fullName, "Lê Thị Hoa", "a line break inside a name is white space")
        XCTAssertEqual(roster.entries[1].gender, "female")
        XCTAssertEqual(roster.entries[1].line, 5)
        XCTAssertEqual(roster.entries[2].line, 8, "the quoted line break and the blank line are counted")
        XCTAssertEqual(roster.entries[2].fullName, "Trần Minh")
        XCTAssertEqual(roster.entries[2].dateOfBirth, LocalDate(year: 2023, month: 3, day: 15), "Excel serial day 45000")
        XCTAssertNil(roster.entries[2].gender)
    }

    func testEveryBadLineIsReportedWithFileAndLineAndNothingIsImported() throws {
        let tmp = try TempStore()
        let store = try AttendanceStore.inMemory(config: AttendanceConfig())
        let csv = """
            Mã định danh,Họ và tên,Lớp,Ngày sinh,Giới tính
            1001,Nguyễn Văn An,6A1,05/09/2013,Nam
            ,Trần Thị Bình,6A1,,
            1003,,6A1,,
            1004,Lê Văn Cường,,,
            1005,Phạm Thị Dung,6A1,31/02/2013,
            1006,Hoàng Văn Em,6A1,,X
            1001,Nguyễn Văn An,6A1,,
            1.23457E+11,Vũ Thị Giang,6A1,,
            1009,Đỗ Văn Hùng,6A1,,,extra
            1010,Ngô Thị Ích,ABC,,
            1011,"Bùi Văn Khánh,6A1,,
            """
        let path = try tmp.write("bad.csv", csv)
        XCTAssertThrowsError(try RosterParser.parse(contentsOf: path, today: today)) { error in
            guard let e = error as? RosterErrors else { return XCTFail("\(error)") }
            let lines = e.errors.map(\.line)
            XCTAssertEqual(Set(lines), Set([3, 4, 5, 6, 7, 8, 9, 10, 11, 12]), e.description)
            for err in e.errors { XCTAssertTrue(err.description.hasPrefix("\(path):\(err.line): "), err.description) }
            let text = e.description
            XCTAssertTrue(text.contains("\(path):3: the student code (mã định danh) is empty"), text)
            XCTAssertTrue(text.contains("\(path):6: the date of birth '31/02/2013' is not a date"), text)
            XCTAssertTrue(text.contains("\(path):8: student code 1001 is also on line 2"), text)
            XCTAssertTrue(text.contains("turned into a number"), text)
            XCTAssertTrue(text.contains("never closed"), text)
        }
        XCTAssertEqual(try store.roster.students(activeOnly: false).count, 0, "all or nothing")
    }

    func testMissingHeaderColumnsAndNonUTF8AreExplained() throws {
        XCTAssertThrowsError(try RosterParser.parse(text: "Họ và tên,Lớp\nAn,6A1\n", file: "h.csv")) { error in
            XCTAssertTrue("\(error)".hasPrefix("h.csv:1: no header row with the columns Mã định danh"), "\(error)")
        }
        var latin1 = Data("code,name,class\n1,Nguy".utf8)
        latin1.append(contentsOf: [0xEA, 0x6E]) // "ên" in Windows-1258-ish bytes
        latin1.append(Data(",6A1\n".utf8))
        XCTAssertThrowsError(try RosterParser.parse(latin1, file: "l.csv")) { error in
            XCTAssertTrue("\(error)".hasPrefix("l.csv:2: the file is not UTF-8"), "\(error)")
        }
        let utf16 = "code\tname\tclass\n1\tNguyễn An\t6A1\n".data(using: .utf16)!
        XCTAssertEqual(try RosterParser.parse(utf16, file: "u.txt").entries.first?.fullName, "Nguyễn An")
    }

    func testReimportReportsChangesAndDeactivatesOnlyWithinTheRostersClasses() throws {
        let tmp = try TempStore()
        let store = try AttendanceStore.inMemory(config: AttendanceConfig())
        try seedRoster(store, in: tmp, consent: false) // 0101, 0102 in 6A1; 0201 in 7B2
        let csv = """
            student_code,full_name,class,date_of_birth,gender
            0101,Nguyễn Văn An,6A1,2013-09-05,male
            0103,Phan Thị Chi,6A1,,
            0102,Trần Thị Bình Minh,6A2,2013-01-20,female
            """
        let roster = try RosterParser.parse(text: csv, file: "6A.csv", today: today)
        let dry = try store.roster.importRoster(roster, options: RosterImportOptions(dryRun: true))
        XCTAssertTrue(dry.dryRun)
        XCTAssertEqual(dry.added, ["0103"])
        XCTAssertEqual(try store.roster.student(code: "0103"), nil, "a dry run changes nothing")
        XCTAssertEqual(try store.roster.student(code: "0102")?.classCode, "6A1")

        let report = try store.roster.importRoster(roster)
        XCTAssertEqual(report.added, ["0103"])
        XCTAssertEqual(report.changed, [.init(code: "0102", fields: ["full_name", "class"])])
        XCTAssertEqual(report.unchanged, 1)
        XCTAssertEqual(report.deactivated, [], "0201 is in 7B2, which this roster does not cover")
        XCTAssertEqual(report.classesAdded, ["6A2"])
        XCTAssertEqual(report, dry.with(dryRun: false), "the dry run predicted exactly this")

        let only = try RosterParser.parse(text: "code,name,class\n0103,Phan Thị Chi,6A1\n", file: "6A1.csv", today: today)
        XCTAssertEqual(try store.roster.importRoster(only).deactivated, ["0101"])
        XCTAssertEqual(try store.roster.student(code: "0101")?.active, false, "kept, never deleted")
        XCTAssertEqual(try store.roster.students(activeOnly: false).count, 4)

        let whole = try store.roster.importRoster(only, options: RosterImportOptions(wholeSchool: true))
        XCTAssertEqual(whole.deactivated, ["0102", "0201"])

        let back = try RosterParser.parse(text: "code,name,class\n0101,Nguyễn Văn An,6A1\n", file: "b.csv", today: today)
        let r = try store.roster.importRoster(back)
        XCTAssertEqual(r.changed.first?.fields, ["reactivated"], "a roster without a date-of-birth column keeps the dates")
        XCTAssertEqual(try store.roster.student(code: "0101")?.dateOfBirth, LocalDate(year: 2013, month: 9, day: 5))
        let audit = try store.auditLog.entries().filter { $0.action == "roster.import" }
        XCTAssertEqual(audit.count, 5, "five imports; the dry run left no audit entry")
    }

    func testConsentColumnsRecordConsentAndRequireTheChildsAgreementFromSeven() throws {
        let store = try AttendanceStore.inMemory(config: AttendanceConfig())
        let bad = """
            Mã định danh,Họ và tên,Lớp,Ngày sinh,Người giám hộ,Quan hệ,Ngày đồng ý,Học sinh đồng ý
            1,Nguyễn An,2A,01/01/2017,Nguyễn Bố,bố,01/09/2024,
            2,Trần Bình,2A,01/01/2018,Trần Mẹ,,01/09/2024,Có
            """
        XCTAssertThrowsError(try RosterParser.parse(text: bad, file: "c.csv", today: today)) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("c.csv:2: consent: the student is 7 or older"), text)
            XCTAssertTrue(text.contains("c.csv:3: consent: the guardian's relation"), text)
        }
        let good = """
            Mã định danh,Họ và tên,Lớp,Ngày sinh,Người giám hộ,Quan hệ,Ngày đồng ý,Học sinh đồng ý
            1,Nguyễn An,2A,01/01/2018,Nguyễn Bố,bố,01/09/2024,Có
            2,Trần Bình,1A,01/01/2019,Trần Mẹ,mẹ,01/09/2024,
            3,Lê Cúc,1A,01/01/2019,,,,
            """
        let report = try store.roster.importRoster(try RosterParser.parse(text: good, file: "c.csv", today: today))
        XCTAssertEqual(report.consentsRecorded, ["1", "2"])
        let c = try XCTUnwrap(try store.consent.active(student: "1"))
        XCTAssertEqual(c.guardianName, "Nguyễn Bố")
        XCTAssertEqual(c.relation, "bố")
        XCTAssertEqual(c.consentDate, LocalDate(year: 2024, month: 9, day: 1))
        XCTAssertTrue(c.scope.contains("child"), c.scope)
        XCTAssertNil(try store.consent.active(student: "3"))
        // Importing the same roster again records nothing new; after a revocation it does not resurrect consent.
        XCTAssertEqual(
            try store.roster.importRoster(try RosterParser.parse(text: good, file: "c.csv", today: today)).consentsRecorded, [])
        try store.consent.revoke(student: "2")
        XCTAssertEqual(
            try store.roster.importRoster(try RosterParser.parse(text: good, file: "c.csv", today: today)).consentsRecorded, [])
        XCTAssertNil(try store.consent.active(student: "2"))
    }

    func testXLSXIsRecognisedAndExplained() throws {
        let tmp = try TempStore()
        var bytes = Data([0x50, 0x4B, 0x03, 0x04])
        bytes.append(Data(count: 100))
        let path = tmp.dir + "/roster.xlsx"
        try bytes.write(to: URL(fileURLWithPath: path))
        XCTAssertThrowsError(try RosterParser.parse(contentsOf: path)) { XCTAssertTrue("\($0)".contains("CSV UTF-8"), "\($0)") }
    }
}

extension RosterImportReport {
    func with(dryRun: Bool) -> RosterImportReport { var r = self; r.dryRun = dryRun; return r }
}
