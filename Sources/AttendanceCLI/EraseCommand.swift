import ArgumentParser
import Attendance
import AttendanceCore
import AttendancePostgres
import Foundation

struct StudentCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "student",
        abstract: "One student's data: erase on request.",
        subcommands: [Erase.self]
    )

    struct Erase: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Erase every trace of a student (roster entry, consent, faces, attendance, queued reports).",
            discussion: """
                For a request to delete a child's personal data (Decree 13/2023/NĐ-CP). Only one audit entry remains, recording that the erasure happened. Attendance already sent to the sector database is outside this system: tell whoever asked. Cannot be undone.

                Example:
                  attendance student erase 0123456789 --reason "parent's request of 2 Oct" --yes
                """
        )
        @OptionGroup var global: GlobalOptions
        @Argument(help: "Student code (mã định danh).") var student: String
        @Option(help: "Why (kept in the audit entry).") var reason: String?
        @Flag(help: "Do not ask for confirmation.") var yes = false

        func run() async throws {
            let (store, config) = try global.openStore()
            let shared = config.database.backend == .postgresql
            if shared {
                let connector: PostgresConnector
                do { connector = try PostgresConnector(config: config.database) } catch { throw failLine("\(error)") }
                try await SchoolServer(store: store, connector: connector).refresh(before: "was erased")
            }
            guard let s = try storeCall({ try store.roster.student(code: student) }) else {
                throw failLine(StoreError.unknownStudent(student).description)
            }
            if !yes {
                guard isatty(0) != 0 else { throw failLine("erasing cannot be undone: add --yes to confirm") }
                print("Erase every record of \(s.code) \(s.fullName) (\(s.classCode))? This cannot be undone.")
                print("Type the student code to confirm: ", terminator: "")
                guard readLine()?.trimmingCharacters(in: .whitespaces) == s.code else {
                    throw failLine("not confirmed; nothing erased")
                }
            }
            if shared { return try await eraseOnServer(store: store, config: config, student: student) }
            let r = try storeCall { try store.retention.erase(student: student, reason: reason) }
            print(
                "Erased \(student): \(r.enrolments) enrolled faces, \(r.consents) consent records, \(r.events) attendance events, "
                    + "\(r.outbox) queued reports, \(r.excuses) excuses. The audit log records the erasure.")
            if let problem = r.compaction { warnCompaction(problem) }
        }
    }
}

struct PurgeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "purge",
        abstract: "Apply the retention rules now (the daemon does it daily).",
        discussion: """
            Deletes attendance events older than privacy.retention_days, unknown-face crops older than privacy.keep_unknown_crops_days (all of them when it is 0), and unknown-face counts older than the retention period. A record the sector database has not received yet is kept, however old (`attendance sync status`).

            --compact-only folds the write-ahead log back into the database (what erasures do), so deleted data leaves no old page behind.
            """
    )
    @OptionGroup var global: GlobalOptions
    @Flag(help: "Only fold the write-ahead log back into the database; delete nothing.") var compactOnly = false

    func run() async throws {
        let (store, _) = try global.openStore()
        if compactOnly {
            try storeCall { try store.retention.compact() }
            print("Write-ahead log folded back; no deleted data is left in it.")
            return
        }
        let r = try storeCall { try store.retention.purge() }
        print(
            "Purged \(r.events) attendance events before \(r.eventsBefore) (\(r.outbox) queued reports, \(r.excuses) excuses), "
                + "\(r.cropsDeleted) unknown-face crops, \(r.unknownFaces) unknown-face counts.")
        if r.keptUndelivered > 0 {
            print(
                "\(r.keptUndelivered) older record(s) kept: the sector database has not received them yet (attendance sync status)."
            )
        }
    }
}
