import ArgumentParser
import AttendanceCore
import FaceEngine
import Foundation

@main
struct AttendanceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "attendance",
        abstract: "Face-recognition attendance for schools: the gate daemon and the tools around it.",
        discussion: """
            Typical first steps for a school:
              attendance roster import lop6a1.csv          import the class list (CSV, UTF-8)
              attendance consent record 0123456789 --guardian "Nguyễn Văn A" --relation father --date 2026-09-01
              attendance enrol 0123456789 --photo an.jpg   enrol a student's face
              attendance serve --config /etc/attendance/attendance.toml   run the gate daemon
              attendance export daily --date 2026-11-23 --format xlsx -o today.xlsx

            Every command that uses the database takes --db PATH and --config FILE
            (or reads the config named by $ATTENDANCE_CONFIG).
            """,
        subcommands: commandList
    )

    /// ArgumentParser's own main, once OpenBLAS runs this CPU's kernels (a restart when it fell back to its generic ones:
    /// `FaceEngine.restartWithNativeBLASKernelsIfNeeded`).
    static func main() async {
        FaceEngine.restartWithNativeBLASKernelsIfNeeded()
        do {
            var command = try parseAsRoot()
            if var asynchronous = command as? AsyncParsableCommand {
                try await asynchronous.run()
            } else {
                try command.run()
            }
        } catch {
            exit(withError: error)
        }
    }
}

/// Every verb, in the order `--help` shows them.
let commandList: [any ParsableCommand.Type] = [
    // the teacher
    RosterCommand.self, ConsentCommand.self, EnrolCommand.self, UnenrolCommand.self, StudentsCommand.self,
    IdentifyCommand.self, GalleryCommand.self, SightingsCommand.self, ReviewCommand.self,
    // the admin
    ExportCommand.self, ExcuseCommand.self, CorrectCommand.self, SyncCommand.self, AuditCommand.self,
    StudentCommand.self, PurgeCommand.self, UserCommand.self, ConsoleCommand.self, DatabaseCommand.self,
    // the gate box
    ServeCommand.self, CamerasCommand.self, DemoCommand.self, ClockCommand.self, KeyCommand.self,
    // the face engine
    FacesCommand.self, CompareCommand.self,
]

/// Prints a one-line reason on stderr and exits non-zero: what every command does on failure.
func failLine(_ message: String, code: Int32 = 1) -> ExitCode {
    FileHandle.standardError.write(Data(("error: " + message + "\n").utf8))
    return ExitCode(code)
}
