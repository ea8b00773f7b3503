import ArgumentParser
import Attendance
import AttendanceCore
import Foundation

struct KeyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "key",
        abstract: "Khoá mã hoá dữ liệu khuôn mặt / The key that seals the face embeddings.",
        discussion: """
            The face embeddings in the database are sealed (AES-256-GCM) with the key in database.key_file (default: the database's path + ".key"). Keep the key on another path than the database (see deploy/INSTALL.md) and a copy of it apart from the database's backups: a backup of the database alone then holds no usable face data.

            Rotate the key when it may have leaked, or by policy once a year. Stop the daemon first (it holds the old key):
              systemctl stop attendance
              attendance key rotate
              systemctl start attendance
            Every embedding and gate sighting is re-sealed in one transaction, then the key file is replaced; an interrupted rotation is finished the next time the database is opened. Back up the new key file.
            """,
        subcommands: [Rotate.self]
    )

    struct Rotate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Make a new key and re-seal every embedding with it (audited).")
        @OptionGroup var global: GlobalOptions
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            let (store, _) = try global.openStore()
            let report = try storeCall { try store.rotateKey() }
            if json { return try printJSON(report) }
            print(
                "Đã đổi khoá / key rotated: \(report.enrolments) enrolment(s) and \(report.sightings) sighting(s) re-sealed with a new key in \(store.keyFile)."
            )
            if report.unreadable > 0 {
                print(
                    "\(report.unreadable) damaged row(s) could not be opened and stay unreadable: re-enrol those students (`attendance students` marks them)."
                )
            }
            print("Back up the new key file now; the old key opens nothing any more.")
        }
    }
}

struct ClockCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "clock",
        abstract: "Đồng hồ của máy / Whether the box's clock can date attendance records.",
        discussion: """
            Every record carries the box's clock time. The database remembers the latest time it recorded at (the high-water mark); while the clock is before it (a dead RTC battery, no NTP yet), before this release, or more than 200 days after it, nothing is recorded and /health says why.

            After a long break (the box was stored for a year), if `status` shows the clock is right:
              attendance clock accept
            """,
        subcommands: [Status.self, Accept.self],
        defaultSubcommand: Status.self
    )

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "The clock, the high-water mark and NTP synchronisation.")
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let (store, _) = try global.openStore()
            let mark = try storeCall { try store.clockHighWater() }
            let problem = try storeCall { try store.clockProblem() }
            print("clock:      \(Timestamp.string(store.now()))")
            print("high-water: \(mark.map(Timestamp.string) ?? "none (nothing recorded yet)")")
            print("NTP:        " + (KernelClock.isSynchronised() ? "synchronised" : "NOT synchronised (check `timedatectl`)"))
            if let problem {
                print("Không ghi nhận được / records refused: \(problem)")
                throw ExitCode(2)
            }
            print("Đồng hồ hợp lệ / the clock can date records.")
        }
    }

    struct Accept: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Confirm the clock is right after a gap of more than 200 days (audited).")
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let (store, _) = try global.openStore()
            try storeCall { try store.acceptClock() }
            print("Đã xác nhận / accepted: records are dated from \(Timestamp.string(store.now())) on.")
        }
    }
}
