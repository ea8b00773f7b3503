import AttendanceCore
import Foundation

/// The file formats of the exports.
public enum ExportFormat: String, Sendable, CaseIterable, Codable {
    case csv, xlsx, json

    /// From a file name's extension, if it names one.
    public init?(path: String) {
        self.init(rawValue: URL(fileURLWithPath: path).pathExtension.lowercased())
    }
}

extension AttendanceStatus {
    /// The Vietnamese label a teacher reads.
    public var vietnameseLabel: String {
        switch self {
        case .present: return "Có mặt"
        case .late: return "Đi muộn"
        case .absent: return "Vắng không phép"
        case .excused: return "Vắng có phép"
        }
    }
}

/// Writes reports as CSV (UTF-8 with a BOM, CRLF, so Excel shows Vietnamese names), XLSX (libxlsxwriter:
/// header row, frozen panes, widths, real date/time cells) or JSON. Files are written to a temporary
/// name and renamed, so a reader never sees half a file.
public enum ReportWriter {
    // MARK: column names (the sector's words for the absence report)

    public static let dailyColumns = [
        "Ngày", "Mã học sinh", "Họ tên", "Lớp", "Trạng thái", "Diễn giải",
        "Giờ đến", "Giờ về", "Camera", "Lý do vắng",
    ]
    public static let classColumns = ["Lớp", "Sĩ số", "Có mặt", "Đi muộn", "Vắng không phép", "Vắng có phép"]
    public static let absenceColumns = [
        "STT", "Mã học sinh", "Họ tên", "Ngày sinh", "Lớp", "Số ngày nghỉ",
        "Nghỉ có phép", "Nghỉ không phép", "Số ngày đi muộn",
    ]

    /// Where the per-class counts of a daily CSV go: `report.csv` -> `report-classes.csv`.
    public static func classesCSVPath(for path: String) -> String {
        let url = URL(fileURLWithPath: path)
        let base = url.deletingPathExtension().lastPathComponent
        return url.deletingLastPathComponent().appendingPathComponent(base + "-classes.csv").path
    }

    /// Writes the daily report; returns the files written.
    @discardableResult
    public static func write(_ report: DailyReport, format: ExportFormat, to path: String, timeZone: TimeZone) throws -> [String]
    {
        switch format {
        case .json:
            try atomically(path) { try json(report).write(to: URL(fileURLWithPath: $0)) }
            return [path]
        case .csv:
            let clock = LocalClock(timeZone: timeZone)
            var rows = [dailyColumns]
            for r in report.rows {
                rows.append([
                    report.schoolDay.description, r.studentCode, r.fullName, r.classCode, r.status.rawValue,
                    r.status.vietnameseLabel, r.firstSeen.map(clock.time) ?? "", r.lastSeen.map(clock.time) ?? "",
                    r.camera ?? "", r.excuse ?? "",
                ])
            }
            var counts = [classColumns]
            for c in report.classes + [report.total] {
                counts.append(
                    [c.classCode == "*" ? "Toàn trường" : c.classCode]
                        + [c.students, c.present, c.late, c.absent, c.excused].map(String.init))
            }
            let classesPath = classesCSVPath(for: path)
            try atomically(path) { try csv(rows).write(to: URL(fileURLWithPath: $0)) }
            try atomically(classesPath) { try csv(counts).write(to: URL(fileURLWithPath: $0)) }
            return [path, classesPath]
        case .xlsx:
            try atomically(path) { try dailyXLSX(report, path: $0, timeZone: timeZone) }
            return [path]
        }
    }

    /// Writes the absence report; returns the files written.
    @discardableResult
    public static func write(_ report: AbsenceReport, format: ExportFormat, to path: String) throws -> [String] {
        switch format {
        case .json:
            try atomically(path) { try json(report).write(to: URL(fileURLWithPath: $0)) }
        case .csv:
            var rows = [absenceColumns]
            for (i, r) in report.rows.enumerated() {
                rows.append([
                    String(i + 1), r.studentCode, r.fullName, r.dateOfBirth.map(vietnameseDate) ?? "", r.classCode,
                    String(r.absentDays), String(r.excusedDays), String(r.unexcusedDays), String(r.lateDays),
                ])
            }
            try atomically(path) { try csv(rows).write(to: URL(fileURLWithPath: $0)) }
        case .xlsx:
            try atomically(path) { try absencesXLSX(report, path: $0) }
        }
        return [path]
    }

    // MARK: formats

    static func json(_ value: some Encodable) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .custom { date, enc in
            var c = enc.singleValueContainer()
            try c.encode(Timestamp.string(date))
        }
        var data = try encoder.encode(value)
        data.append(UInt8(ascii: "\n"))
        return data
    }

    /// RFC 4180 CSV, UTF-8 with a BOM, CRLF. A text cell that a spreadsheet would run as a formula
    /// (starting with = + - @) is prefixed with an apostrophe.
    static func csv(_ rows: [[String]]) -> Data {
        var out = "\u{FEFF}"
        for row in rows {
            out += row.map { cell -> String in
                var v = cell
                if let f = v.unicodeScalars.first, "=+-@".unicodeScalars.contains(f), Double(v) == nil { v = "'" + v }
                if v.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" || $0 == ";" }) {
                    v = "\"" + v.replacingOccurrences(of: "\"", with: "\"\"") + "\""
                }
                return v
            }.joined(separator: ",")
            out += "\r\n"
        }
        return Data(out.utf8)
    }

    static func vietnameseDate(_ d: LocalDate) -> String { String(format: "%02d/%02d/%04d", d.day, d.month, d.year) }

    static func dailyXLSX(_ report: DailyReport, path: String, timeZone: TimeZone) throws {
        let clock = LocalClock(timeZone: timeZone)
        let wb = try XLSXWorkbook(path: path)
        let header = wb.format(bold: true, wrap: true)
        let dateFormat = wb.format(numberFormat: "dd/mm/yyyy")
        let timeFormat = wb.format(numberFormat: "hh:mm:ss")

        let sheet = try wb.addSheet("Điểm danh")
        for (c, name) in dailyColumns.enumerated() { try sheet.write(0, c, name, header) }
        for (i, r) in report.rows.enumerated() {
            let row = i + 1
            let d = report.schoolDay
            try sheet.write(row, 0, year: d.year, month: d.month, day: d.day, dateFormat)
            try sheet.write(row, 1, r.studentCode)
            try sheet.write(row, 2, r.fullName)
            try sheet.write(row, 3, r.classCode)
            try sheet.write(row, 4, r.status.rawValue)
            try sheet.write(row, 5, r.status.vietnameseLabel)
            for (col, seen) in [(6, r.firstSeen), (7, r.lastSeen)] {
                guard let seen else { continue }
                let p = clock.parts(seen)
                try sheet.write(
                    row, col, year: p.year, month: p.month, day: p.day, hour: p.hour, minute: p.minute,
                    second: p.second.rounded(.down), timeFormat)
            }
            try sheet.write(row, 8, r.camera)
            try sheet.write(row, 9, r.excuse)
        }
        for (c, w) in [11.0, 14, 28, 8, 10, 16, 10, 10, 12, 30].enumerated() { sheet.width(c, c, w) }
        sheet.freeze(rows: 1)
        sheet.autofilter(lastRow: report.rows.count, lastCol: dailyColumns.count - 1)

        let counts = try wb.addSheet("Theo lớp")
        for (c, name) in classColumns.enumerated() { try counts.write(0, c, name, header) }
        for (i, c) in (report.classes + [report.total]).enumerated() {
            try counts.write(i + 1, 0, c.classCode == "*" ? "Toàn trường" : c.classCode, c.classCode == "*" ? header : nil)
            for (j, n) in [c.students, c.present, c.late, c.absent, c.excused].enumerated() {
                try counts.write(i + 1, j + 1, number: Double(n))
            }
        }
        counts.width(0, 0, 14)
        counts.width(1, classColumns.count - 1, 16)
        counts.freeze(rows: 1)
        try wb.close()
    }

    static func absencesXLSX(_ report: AbsenceReport, path: String) throws {
        let wb = try XLSXWorkbook(path: path)
        let header = wb.format(bold: true, wrap: true)
        let dateFormat = wb.format(numberFormat: "dd/mm/yyyy")
        let sheet = try wb.addSheet("Số ngày nghỉ")
        for (c, name) in absenceColumns.enumerated() { try sheet.write(0, c, name, header) }
        for (i, r) in report.rows.enumerated() {
            let row = i + 1
            try sheet.write(row, 0, number: Double(i + 1))
            try sheet.write(row, 1, r.studentCode)
            try sheet.write(row, 2, r.fullName)
            if let d = r.dateOfBirth { try sheet.write(row, 3, year: d.year, month: d.month, day: d.day, dateFormat) }
            try sheet.write(row, 4, r.classCode)
            for (j, n) in [r.absentDays, r.excusedDays, r.unexcusedDays, r.lateDays].enumerated() {
                try sheet.write(row, 5 + j, number: Double(n))
            }
        }
        for (c, w) in [6.0, 14, 28, 12, 8, 12, 12, 14, 14].enumerated() { sheet.width(c, c, w) }
        sheet.freeze(rows: 1)
        sheet.autofilter(lastRow: report.rows.count, lastCol: absenceColumns.count - 1)

        let info = try wb.addSheet("Thông tin")
        let lines: [(String, String)] = [
            ("Mã trường", report.schoolCode), ("Lớp", report.classFilter ?? "Tất cả"),
            ("Số ngày học", String(report.schoolDays.count)),
        ]
        try info.write(0, 0, "Từ ngày", header)
        try info.write(0, 1, year: report.from.year, month: report.from.month, day: report.from.day, dateFormat)
        try info.write(1, 0, "Đến ngày", header)
        try info.write(1, 1, year: report.to.year, month: report.to.month, day: report.to.day, dateFormat)
        for (i, (k, v)) in lines.enumerated() {
            try info.write(2 + i, 0, k, header)
            try info.write(2 + i, 1, v)
        }
        info.width(0, 0, 14)
        info.width(1, 1, 16)
        try wb.close()
    }

    /// Writes through a temporary sibling and renames it into place.
    static func atomically(_ path: String, _ body: (String) throws -> Void) throws {
        let url = URL(fileURLWithPath: path)
        let tmp = url.deletingLastPathComponent()
            .appendingPathComponent(".\(url.lastPathComponent).\(ProcessInfo.processInfo.processIdentifier).tmp").path
        do {
            try body(tmp)
            if rename(tmp, path) != 0 {
                throw StoreError.io(path: path, reason: "cannot write: \(String(cString: strerror(errno)))")
            }
        } catch {
            unlink(tmp)
            if let e = error as? StoreError { throw e }
            throw StoreError.io(path: path, reason: "cannot write: \(error.localizedDescription)")
        }
    }
}

/// Wall-clock fields of instants in the school's time zone.
struct LocalClock {
    let calendar: Calendar
    init(timeZone: TimeZone) {
        var c = Calendar(identifier: .gregorian)
        c.timeZone = timeZone
        calendar = c
    }

    func parts(_ d: Date) -> (year: Int, month: Int, day: Int, hour: Int, minute: Int, second: Double) {
        let c = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: d)
        let whole = d.timeIntervalSince1970.rounded(.down)
        return (c.year!, c.month!, c.day!, c.hour!, c.minute!, Double(c.second!) + (d.timeIntervalSince1970 - whole))
    }

    func time(_ d: Date) -> String {
        let p = parts(d)
        return String(format: "%02d:%02d:%02d", p.hour, p.minute, Int(p.second))
    }
}
