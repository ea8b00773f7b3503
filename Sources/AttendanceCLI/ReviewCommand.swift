import ArgumentParser
import Attendance
import AttendanceCore
import Foundation

struct ReviewCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "review",
        abstract: "Điểm danh chờ xem lại / Check-ins held back by the liveness check: accept or reject them.",
        discussion: """
            The gate checks that a face is a person, not a photo on a phone or a print held up for an absent friend (recognition.liveness). With liveness = "flag" (the default), a recognised face that did not look real is not recorded as present: it waits here, with the session and the status (present or late) the gate would have recorded, until the homeroom teacher decides. No picture is kept, only the time, the camera and the real score (0 to 1; the threshold is recognition.liveness_threshold).

            accept: the child was really there; the check-in is recorded as the gate decided it and sent to the sector database. reject: it was not the child; nothing is recorded. Both are in the audit log.

            Examples:
              attendance review                       the check-ins waiting, every class
              attendance review list --class 6A1 --date 2026-11-23
              attendance review accept 4
              attendance review reject 5 --reason "ảnh trên điện thoại"
            """,
        subcommands: [List.self, Accept.self, Reject.self],
        defaultSubcommand: List.self
    )

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "The held check-ins waiting for a decision.")
        @OptionGroup var global: GlobalOptions
        @Option(name: .customLong("class"), help: "Only this class.") var classCode: String?
        @Option(help: "Only this school day (YYYY-MM-DD).") var date: String?
        @Flag(help: "Every held check-in, decided ones too.") var all = false
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            let (store, config) = try global.openStore()
            var day: LocalDate?
            if let date {
                guard let d = LocalDate(date) else { throw failLine("--date: '\(date)' is not a date like 2026-11-23") }
                day = d
            }
            let state: HoldState? = all ? nil : .pending
            let rows: [HeldRecord]
            if let school = try await schoolServer(store: store, config: config, before: "was listed") {
                rows = try await serverCall {
                    try await school.heldCheckIns(state: state, classes: classCode.map { [$0] }, day: day)
                }
            } else {
                rows = try storeCall { try store.reviews.list(state: state, classes: classCode.map { [$0] }, day: day) }
            }
            if json { return try printJSON(rows) }
            if rows.isEmpty {
                print("Không có lượt điểm danh nào chờ xem lại / nothing waiting\(classCode.map { " in class \($0)" } ?? "").")
                return
            }
            let tz = config.school.timeZone
            let time = DateFormatter()
            time.dateFormat = "yyyy-MM-dd HH:mm"
            time.timeZone = tz
            print(
                "ID     STUDENT      NAME                       CLASS  SESSION    STATUS   SEEN              CAMERA    REAL   WHY"
            )
            for r in rows {
                let real = r.liveness.map { String(format: "%.3f", $0) } ?? "  -  "
                let why = r.reason == .spoof ? "spoof?" : "not checkable"
                let state = r.state == .pending ? "" : "  \(r.state.rawValue) by \(r.decidedBy ?? "?")"
                print(
                    "\(String(r.id).padding(toLength: 6, withPad: " ", startingAt: 0)) "
                        + "\(r.event.studentCode.padding(toLength: 12, withPad: " ", startingAt: 0)) "
                        + "\(r.studentName.padding(toLength: 26, withPad: " ", startingAt: 0)) "
                        + "\(r.classCode.padding(toLength: 6, withPad: " ", startingAt: 0)) "
                        + "\(r.event.session.padding(toLength: 10, withPad: " ", startingAt: 0)) "
                        + "\(r.event.status.rawValue.padding(toLength: 8, withPad: " ", startingAt: 0)) "
                        + "\(time.string(from: r.event.occurredAt))  \(r.event.camera.padding(toLength: 9, withPad: " ", startingAt: 0)) "
                        + "\(real)  \(why)\(state)")
            }
        }
    }

    struct Accept: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "The child was there: record these check-ins as the gate decided them.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "Held check-in ids (from `attendance review`).") var ids: [Int64]

        func run() async throws {
            let (store, config) = try global.openStore()
            let school = try await schoolServer(store: store, config: config, before: "was accepted")
            try await ReviewCommand.each(ids) { id in
                let recorded = try await school?.acceptHeld(id: id) ?? store.reviews.accept(id: id)
                return recorded ? "recorded" : "accepted; the student was already recorded for that session"
            }
        }
    }

    struct Reject: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "It was not the child (a photo, a screen): record nothing.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "Held check-in ids.") var ids: [Int64]
        @Option(help: "Why (kept in the audit log; no student names, please).") var reason: String?

        func run() async throws {
            let (store, config) = try global.openStore()
            let school = try await schoolServer(store: store, config: config, before: "was rejected")
            try await ReviewCommand.each(ids) { id in
                if let school {
                    try await school.rejectHeld(id: id, reason: reason)
                } else {
                    try store.reviews.reject(id: id, reason: reason)
                }
                return "rejected, nothing recorded"
            }
        }
    }

    /// Runs `body` for each id, printing its outcome or its error; exits 1 if any failed (the others still ran).
    static func each(_ ids: [Int64], _ body: (Int64) async throws -> String) async throws {
        var failed = false
        for id in ids {
            do { print("\(id): " + (try await body(id))) } catch {
                FileHandle.standardError.write(Data("error: \(id): \(error)\n".utf8))
                failed = true
            }
        }
        if failed { throw ExitCode(1) }
    }
}
