import ArgumentParser
import Attendance
import AttendanceCore
import Foundation

struct ExcuseCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "excuse",
        abstract: "Record that a student's absence on a day is excused (nghỉ có phép).",
        discussion: """
            Sessions of that day that ended without the student are set to 'excused' and sent to the sector \
            database (as an UPDATE with a higher version, or a NEW record). A check-in on time or late is left \
            alone. An excuse for a later day is kept and counted in the exports. Audited; the reason itself stays \
            in the excuse table only (it is erased with the student).

            Example:
              attendance excuse 0123456789 --date 2026-09-07 --reason "Ốm, mẹ gọi điện báo"
            """
    )

    @OptionGroup var global: GlobalOptions

    @Argument(help: ArgumentHelp("The student's code (mã định danh).", valueName: "student"))
    var student: String

    @Option(help: ArgumentHelp("The school day, yyyy-MM-dd.", valueName: "yyyy-MM-dd"))
    var date: String

    @Option(help: "Why (as the guardian gave it).")
    var reason: String

    func run() async throws {
        let day = try parseDay(date, option: "--date")
        let (store, config) = try global.openStore()
        let result: ExcuseResult
        if let school = try await schoolServer(store: store, config: config, before: "was excused") {
            result = try await serverCall { try await school.excuse(student: student, day: day, reason: reason) }
        } else {
            result = try storeCall { try store.events.excuse(student: student, day: day, reason: reason) }
        }
        print("\(result.replaced ? "replaced the excuse" : "excused") \(student) on \(day)")
        for c in result.changes {
            print(
                "  \(c.session): \(c.previousStatus?.rawValue ?? "no check-in") -> excused (\(c.eventKind.rawValue) v\(c.version), queued for the sector)"
            )
        }
    }
}
