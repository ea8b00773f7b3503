import ArgumentParser
import Attendance
import AttendanceCore
import Foundation

struct AuditCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit",
        abstract: "Show the audit log: enrolments, consent, exports, erasures, with who and when.",
        discussion: """
            The log is append-only: the database refuses to change or delete its entries. Students are named by an alias (S-…) resolved to their code while they exist; after an erasure the alias no longer leads back to the child.

            Examples:
              attendance audit --since 2026-09-01
              attendance audit --last 20
            """
    )
    @OptionGroup var global: GlobalOptions
    @Option(help: "Entries from this day (yyyy-MM-dd or dd/MM/yyyy, school time zone) on.") var since: String?
    @Option(help: "Only the last N entries.") var last: Int?
    @Flag(help: "Print JSON.") var json = false

    func run() async throws {
        let (store, config) = try global.openStore()
        let zone = config.school.timeZone
        var from: Date?
        if let since {
            guard let day = RosterParser.parseDate(since) else {
                throw failLine("--since '\(since)' is not a date like 2026-09-01")
            }
            from = day.at(LocalTime(hour: 0, minute: 0), in: zone)
        }
        let entries = try storeCall { try store.auditLog.entries(since: from, limit: last) }
        if json { return try printJSON(entries) }
        if entries.isEmpty { print("No audit entries\(since.map { " since \($0)" } ?? "").") }
        let formatter = DateFormatter()
        formatter.timeZone = zone
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.dateFormat = "yyyy-MM-dd HH:mm:ss"
        var rows: [[String]] = [["WHEN (\(zone.identifier))", "USER", "ACTION", "SUBJECT", "DETAIL"]]
        for e in entries {
            let when = Timestamp.date(e.at).map { formatter.string(from: $0) } ?? e.at
            let subject = e.studentCode.map { "\($0) (\(e.subject ?? ""))" } ?? (e.subject ?? "")
            rows.append([when, e.osUser, e.action, subject, e.detail ?? ""])
        }
        print(table(rows))
    }
}
