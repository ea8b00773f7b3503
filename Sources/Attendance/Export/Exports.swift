import AttendanceCore
import Foundation

/// An export as the admin asks for it: the report, written, and recorded in the audit log (one place for
/// the rules, whichever front end asks: the CLI today, the school console next).
extension AttendanceReports {
    /// Today in the school's time zone, by the store's clock.
    public var today: LocalDate { LocalDate(store.now(), in: timeZone) }

    /// Writes the daily report of `day` (one class or all) and audits it. Returns the report and the files written.
    public func exportDaily(_ day: LocalDate, classCode: String? = nil, format: ExportFormat, to path: String) throws -> (
        DailyReport, [String]
    ) {
        let report = try daily(day, classCode: classCode)
        if let classCode, report.rows.isEmpty { throw StoreError.invalid("class \(classCode) has no active students") }
        let files = try ReportWriter.write(report, format: format, to: path, timeZone: timeZone)
        try store.auditLog.append(
            action: "export.daily", subject: nil,
            detail: "\(day) class=\(classCode ?? "all") format=\(format.rawValue) rows=\(report.rows.count) file=\(path)")
        return (report, files)
    }

    /// The absences of a date range, written and audited. Days after today are not counted (they have not
    /// happened: every student would be "absent"), so `to` is cut back to today; the range counted is returned.
    public func exportAbsences(
        from first: LocalDate, to last: LocalDate?, classCode: String? = nil, format: ExportFormat,
        to path: String
    ) throws -> (report: AbsenceReport, counted: ClosedRange<LocalDate>, cutToToday: Bool) {
        let now = today
        let requested = last ?? now
        let until = min(requested, now)
        guard first <= until else {
            throw StoreError.invalid("the range starts on \(first), after the last day counted (\(until)): nothing to count")
        }
        let report = try absences(from: first, to: until, classCode: classCode)
        try ReportWriter.write(report, format: format, to: path)
        try store.auditLog.append(
            action: "export.absences", subject: nil,
            detail:
                "\(first)..\(until) class=\(classCode ?? "all") format=\(format.rawValue) rows=\(report.rows.count) file=\(path)")
        return (report, first...until, requested > now)
    }
}
