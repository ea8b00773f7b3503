import ArgumentParser
import Attendance
import AttendanceCore
import Foundation

/// Options every command that touches the database takes.
struct GlobalOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("The SQLite database (default: database.path of the config).", valueName: "path"))
    var db: String?

    @Option(
        name: .long,
        help: ArgumentHelp(
            "TOML config file (default: $ATTENDANCE_CONFIG; without either, built-in defaults).", valueName: "file"))
    var config: String?

    /// The config with `--db` applied on top.
    func loadConfig() throws -> AttendanceConfig {
        var c = try AttendanceConfig.load(path: config)
        if let db {
            c.database.path = db
        }
        return c
    }
}
