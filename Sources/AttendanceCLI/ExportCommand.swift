import ArgumentParser
import Attendance
import AttendanceCore
import Foundation

extension ExportFormat: ExpressibleByArgument {}

/// Parses a yyyy-MM-dd option, or says what is wrong.
func parseDay(_ text: String, option: String) throws -> LocalDate {
    guard let d = LocalDate(text) else { throw ValidationError("\(option): '\(text)' is not a date like 2026-09-07") }
    return d
}

struct ExportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Export attendance for the office or the sector database (CSV, Excel, JSON).",
        discussion: """
            Examples:
              attendance export daily --date 2026-09-07 -o diem-danh.xlsx
              attendance export daily --class 6A1 --format csv -o 6a1.csv
              attendance export absences --from 2026-09-05 --to 2027-01-15 -o hk1-nghi.xlsx
            Every export is recorded in the audit log.
            """,
        subcommands: [ExportDailyCommand.self, ExportAbsencesCommand.self]
    )
}

struct ExportDailyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "daily",
        abstract: "One day's attendance: a row per student (status, first and last seen, camera) and counts per class.",
        discussion: """
            Status: present, late, absent or excused. A student with no check-in that day is absent unless an \
            excuse is recorded (attendance excuse). CSV is UTF-8 with a BOM so Excel shows Vietnamese names; the \
            per-class counts go to a second file NAME-classes.csv. XLSX has a second sheet with the counts.
            """
    )

    @OptionGroup var global: GlobalOptions

    @Option(help: ArgumentHelp("The school day, yyyy-MM-dd (default: today in the school's time zone).", valueName: "yyyy-MM-dd"))
    var date: String?

    @Option(name: .customLong("class"), help: ArgumentHelp("Only this class.", valueName: "code"))
    var classCode: String?

    @Option(help: "csv, xlsx or json (default: from the output file's extension, else csv).")
    var format: ExportFormat?

    @Option(name: [.short, .customLong("output")], help: ArgumentHelp("The file to write.", valueName: "file"))
    var output: String

    func run() async throws {
        let (store, config) = try global.openStore()
        let reports = AttendanceReports(store: store)
        let day = try date.map { try parseDay($0, option: "--date") } ?? reports.today
        let format = format ?? ExportFormat(path: output) ?? .csv
        try await pullSchoolRecords(store: store, config: config, from: day, to: day)
        let files: [String] = try storeCall {
            let (report, files) = try reports.exportDaily(day, classCode: classCode, format: format, to: output)
            if !report.isSchoolDay {
                FileHandle.standardError.write(Data("note: \(day) is not a school day in the config's schedule\n".utf8))
            }
            var lines = [["Lớp", "Sĩ số", "Có mặt", "Đi muộn", "Vắng", "Có phép"]]
            for c in report.classes + [report.total] {
                lines.append(
                    [c.classCode == "*" ? "Toàn trường" : c.classCode]
                        + [c.students, c.present, c.late, c.absent, c.excused].map(String.init))
            }
            print(table(lines))
            return files
        }
        for f in files { print("wrote \(f)") }
    }
}

struct ExportAbsencesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "absences",
        abstract: "Days absent per student over a date range (a semester), with the sector's column names.",
        discussion: """
            Columns: STT, Mã học sinh, Họ tên, Ngày sinh, Lớp, Số ngày nghỉ, Nghỉ có phép, Nghỉ không phép, \
            Số ngày đi muộn. Only school days of the config's schedule count (weekdays in schedule.school_days, \
            schedule.holidays left out); days after today are not counted.
            """
    )

    @OptionGroup var global: GlobalOptions

    @Option(help: ArgumentHelp("First day, yyyy-MM-dd.", valueName: "yyyy-MM-dd"))
    var from: String

    @Option(help: ArgumentHelp("Last day, yyyy-MM-dd (default: today; later days are not counted).", valueName: "yyyy-MM-dd"))
    var to: String?

    @Option(name: .customLong("class"), help: ArgumentHelp("Only this class.", valueName: "code"))
    var classCode: String?

    @Option(help: "xlsx, csv or json (default: from the output file's extension, else xlsx).")
    var format: ExportFormat?

    @Option(name: [.short, .customLong("output")], help: ArgumentHelp("The file to write.", valueName: "file"))
    var output: String

    func run() async throws {
        let (store, config) = try global.openStore()
        let first = try parseDay(from, option: "--from")
        let last = try to.map { try parseDay($0, option: "--to") }
        let format = format ?? ExportFormat(path: output) ?? .xlsx
        let reports = AttendanceReports(store: store)
        try await pullSchoolRecords(store: store, config: config, from: first, to: last ?? reports.today)
        try storeCall {
            let (report, counted, cut) = try reports.exportAbsences(
                from: first, to: last, classCode: classCode, format: format, to: output)
            if cut {
                FileHandle.standardError.write(Data("note: counting up to today (\(counted.upperBound)), not \(last!)\n".utf8))
            }
            let absent = report.rows.reduce(0) { $0 + $1.absentDays }
            print("\(report.rows.count) students, \(report.schoolDays.count) school days, \(absent) days absent in all")
        }
        print("wrote \(output)")
    }
}
