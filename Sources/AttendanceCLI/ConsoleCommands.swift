import ArgumentParser
import Attendance
import AttendanceConsole
import AttendanceCore
import AttendancePostgres
import Foundation
import Logging
import ServiceLifecycle

extension ConsoleRole: ExpressibleByArgument {}

struct UserCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "user",
        abstract: "Manage the web console's accounts (admin, teacher, principal).",
        discussion: """
            The first admin is created here; the admin then manages the other accounts in the console.
            The password is asked at the prompt (never on the command line, where other users could read it);
            when standard input is not a terminal, its first line is the password.

            Roles:
              admin       everything
              teacher     only their own classes (--class, repeat for several): the day, consent, enrolment, excuses
              principal   reads everything and exports; changes nothing

            Examples:
              attendance user add hieutruong --role principal
              attendance user add co.lan --role teacher --class 6A1
              attendance user passwd co.lan
              attendance user list
            """,
        subcommands: [Add.self, Passwd.self, Disable.self, Enable.self, List.self]
    )

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Add a console account.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The sign-in name (letters, digits, . _ -).") var name: String
        @Option(help: "admin, teacher or principal.") var role: ConsoleRole
        @Option(name: .customLong("class"), help: "A teacher's class (repeat for several).") var classes: [String] = []

        func run() async throws {
            let (store, _) = try global.openStore()
            let password = try readPassword(confirm: true)
            let user = try storeCall { try store.accounts.add(name: name, role: role, classes: classes, password: password) }
            print(
                "Account \(user.name) added (\(user.role.rawValue)\(user.classes.isEmpty ? "" : ", classes \(user.classes.joined(separator: ", "))"))."
            )
        }
    }

    struct Passwd: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Set a new password (ends the account's sessions).")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The sign-in name.") var name: String

        func run() async throws {
            let (store, _) = try global.openStore()
            let password = try readPassword(confirm: true)
            try storeCall { try store.accounts.setPassword(name, password) }
            print("Password of \(name) changed; its sessions were ended.")
        }
    }

    struct Disable: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Disable an account (ends its sessions).")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The sign-in name.") var name: String
        func run() async throws { try UserCommand.setDisabled(name, true, global) }
    }

    struct Enable: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Enable a disabled account.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The sign-in name.") var name: String
        func run() async throws { try UserCommand.setDisabled(name, false, global) }
    }

    static func setDisabled(_ name: String, _ disabled: Bool, _ global: GlobalOptions) throws {
        let (store, _) = try global.openStore()
        try storeCall { try store.accounts.setDisabled(name, disabled) }
        print("\(name) \(disabled ? "disabled" : "enabled").")
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the accounts.")
        @OptionGroup var global: GlobalOptions
        func run() async throws {
            let (store, _) = try global.openStore()
            let users = try storeCall { try store.accounts.users() }
            if users.isEmpty { print("No console account yet: attendance user add NAME --role admin") }
            for u in users {
                print(
                    "\(u.name)  \(u.role.rawValue)\(u.classes.isEmpty ? "" : "  \(u.classes.joined(separator: ","))")\(u.disabled ? "  DISABLED" : "")"
                )
            }
        }
    }
}

/// Reads a password without echo from the terminal (twice when `confirm`), or one line from a pipe.
func readPassword(confirm: Bool) throws -> String {
    func line(_ prompt: String) -> String? {
        guard isatty(STDIN_FILENO) != 0 else { return readLine(strippingNewline: true) }
        FileHandle.standardError.write(Data(prompt.utf8))
        var old = termios()
        tcgetattr(STDIN_FILENO, &old)
        var quiet = old
        quiet.c_lflag &= ~tcflag_t(ECHO)
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet)
        defer {
            tcsetattr(STDIN_FILENO, TCSAFLUSH, &old)
            FileHandle.standardError.write(Data("\n".utf8))
        }
        return readLine(strippingNewline: true)
    }
    guard let first = line("Password (at least \(ConsoleUserName.minimumPasswordLength) characters): "), !first.isEmpty else {
        throw failLine("no password given")
    }
    if let why = ConsoleUserName.passwordProblem(first) { throw failLine(why) }
    if confirm && isatty(STDIN_FILENO) != 0 {
        guard line("Again: ") == first else { throw failLine("the two passwords differ; nothing changed") }
    }
    return first
}

struct ConsoleCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "console",
        abstract: "Run the web console alone against the database (an office PC), without cameras.",
        discussion: """
            Serves the console on console.bind:console.port (127.0.0.1:8080 by default) until Ctrl-C: plain HTTP
            on loopback, HTTPS on any other address (console.tls_certificate and console.tls_key, or a
            self-signed pair the box makes on first start next to the database; its SHA-256 fingerprint is
            logged so you can check it in the browser).
            `attendance serve` serves the same console beside the cameras. Create the first account with
            `attendance user add NAME --role admin`.
            """
    )
    @OptionGroup var global: GlobalOptions
    @Option(help: "Log level: trace, debug, info, notice, warning, error.") var logLevel: String = "info"

    func run() async throws {
        let level = Logger.Level(rawValue: logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            var h = StreamLogHandler.standardError(label: label)
            h.logLevel = level
            return h
        }
        let (store, config) = try global.openStore()
        let console: SchoolConsole
        do {
            console = try SchoolConsole.configured(store: store, school: try SchoolServer.make(store: store, config: config))
        } catch { throw failLine("\(error)") }
        if (try? store.accounts.users().isEmpty) == true {
            FileHandle.standardError.write(Data("note: no console account yet: attendance user add NAME --role admin\n".utf8))
        }
        print("Console: \(console.url)")
        do { try await console.run() } catch { throw failLine("\(error)") }
    }
}
