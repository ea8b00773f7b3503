import ArgumentParser
import Attendance
import AttendanceCore
import Foundation

extension AttendanceStatus: ExpressibleByArgument {}
extension EventKind: ExpressibleByArgument {}

struct CorrectCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "correct",
        abstract: "Correct a student's attendance by hand (set a status, or cancel a wrong recognition).",
        discussion: """
            The event's version goes up and the change is queued for the sector database as an UPDATE (or a \
            CANCEL with --cancel; a NEW record when the camera recorded nothing). Audited with the reason: say \
            what happened, not health details (use `attendance excuse` for those).

            Examples:
              attendance correct 0123456789 --date 2026-09-07 --status present --reason "camera missed her"
              attendance correct 0123456789 --date 2026-09-07 --session afternoon --status late --reason "arrived 13:50"
              attendance correct 0123456789 --date 2026-09-07 --cancel --reason "matched the wrong student"
            """
    )

    @OptionGroup var global: GlobalOptions

    @Argument(help: ArgumentHelp("The student's code (mã định danh).", valueName: "student"))
    var student: String

    @Option(help: ArgumentHelp("The school day, yyyy-MM-dd.", valueName: "yyyy-MM-dd"))
    var date: String

    @Option(help: "The session (default: the first session of the student's class).")
    var session: String?

    @Option(help: "check_in or check_out.")
    var kind: EventKind = .checkIn

    @Option(help: "present, late, absent or excused.")
    var status: AttendanceStatus?

    @Flag(help: "Withdraw the event instead (it was recorded for the wrong student).")
    var cancel = false

    @Option(help: "Why (kept in the audit log).")
    var reason: String

    func validate() throws {
        if cancel == (status != nil) { throw ValidationError("give either --status or --cancel") }
    }

    func run() async throws {
        let day = try parseDay(date, option: "--date")
        let (store, config) = try global.openStore()
        let school = try await schoolServer(store: store, config: config, before: cancel ? "was cancelled" : "was corrected")
        if cancel {
            let c: EventChange
            if let school {
                c = try await serverCall {
                    try await school.cancelEvent(student: student, day: day, session: session, kind: kind, reason: reason)
                }
            } else {
                c = try storeCall {
                    try store.events.cancelEvent(student: student, day: day, session: session, kind: kind, reason: reason)
                }
            }
            print("cancelled \(student) \(day) \(c.session) \(c.kind.rawValue) (CANCEL v\(c.version), queued for the sector)")
            return
        }
        guard let status else { return }
        let change: EventChange?
        if let school {
            change = try await serverCall {
                try await school.correct(
                    student: student, day: day, session: session, kind: kind, status: status, reason: reason)
            }
        } else {
            change = try storeCall {
                try store.events.correct(
                    student: student, day: day, session: session, kind: kind, status: status, reason: reason)
            }
        }
        guard let c = change else {
            print("\(student) \(day): already \(status.rawValue); nothing changed")
            return
        }
        print(
            "\(student) \(day) \(c.session) \(c.kind.rawValue): \(c.previousStatus?.rawValue ?? "none") -> \(c.status.rawValue) "
                + "(\(c.eventKind.rawValue) v\(c.version), queued for the sector)")
    }
}
