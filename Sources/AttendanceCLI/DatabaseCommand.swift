import ArgumentParser
import Attendance
import AttendanceCore
import AttendancePostgres
import Foundation

struct DatabaseCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "db",
        abstract: "Cơ sở dữ liệu chung của trường / The school's shared PostgreSQL database (several gate boxes).",
        discussion: """
            A school with several gate boxes keeps its records on one PostgreSQL server; each box keeps its SQLite file as the journal of its own decisions until the server has them (README, "Several gates, one school"). Create the database and its two roles first (the owner runs this command; the gates sign in as the other role), then copy the one-box school into it:
              attendance db migrate --to postgresql://attendance_owner@db.truong.local:5432/attendance --password-file /root/owner.password
            The copy is one transaction: the roster, consent, sealed embeddings, events, the outbox, the audit log and the erasure register, with the row counts checked before it commits. The embeddings stay sealed; copy the key file (database.key_file) to every box yourself.
            """,
        subcommands: [Migrate.self]
    )

    struct Migrate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Chuyển dữ liệu sang PostgreSQL / Copy this box's SQLite database into an empty PostgreSQL database.",
            discussion: """
                Run it as the database's owner role: it creates (or upgrades) the schema, grants the gate role its rights (rows only: it cannot alter or drop a table, nor change the audit log), and refuses a database that already holds a school. Nothing is written on the server unless every table's count matches. Examples:
                  attendance db migrate --to postgresql://attendance_owner@127.0.0.1:5432/attendance --password-file owner.password --tls disable
                  attendance db migrate --schema-only --to postgresql://attendance_owner@db.truong.local/attendance --password-file owner.password --ca-file db-ca.pem
                """)

        @OptionGroup var global: GlobalOptions

        @Option(
            name: .customLong("to"),
            help: ArgumentHelp(
                "The target, postgresql://OWNER@HOST:PORT/DATABASE (never a password in the URL).", valueName: "url"))
        var target: String

        @Option(help: ArgumentHelp("The owner role's password, alone in a file of mode 0600.", valueName: "file"))
        var passwordFile: String?

        @Option(help: ArgumentHelp("require (default; the certificate verified) or disable (loopback only).", valueName: "mode"))
        var tls: String = "require"

        @Option(help: ArgumentHelp("The CA the server's certificate chains to (default: the system's roots).", valueName: "file"))
        var caFile: String?

        @Option(help: ArgumentHelp("The gate daemons' role, granted its rights on the tables.", valueName: "role"))
        var daemonRole: String = "attendance_gate"

        @Flag(help: "Create or upgrade the schema only; copy nothing.")
        var schemaOnly = false

        func run() async throws {
            var database = AttendanceConfig.Database()
            database.backend = .postgresql
            do { database.url = try PostgresURL(parsing: target) } catch { throw failLine("--to: \(error)") }
            guard let mode = AttendanceConfig.Database.TLSMode(rawValue: tls) else {
                throw failLine("--tls: require or disable, not \(tls)")
            }
            database.tls = mode
            database.passwordFile = passwordFile
            database.caFile = caFile
            if let (key, reason) = database.postgresProblem {
                throw failLine("--\(key.replacingOccurrences(of: "_", with: "-")): \(reason)")
            }
            let connector: PostgresConnector
            do { connector = try PostgresConnector(config: database) } catch { throw failLine("\(error)") }
            let (store, _) = try global.openStore()
            let report: SchoolCopy.Report
            do {
                report = try await SchoolCopy.run(
                    from: store, to: connector, daemonRole: daemonRole, schemaOnly: schemaOnly)
            } catch {
                throw failLine(connector.explain(error).description)
            }
            let schema =
                report.schemaVersionsApplied.isEmpty
                ? "schema version \(PostgresSchema.knownVersion) (already there)"
                : "schema version(s) \(report.schemaVersionsApplied.map(String.init).joined(separator: ", ")) applied"
            print("\(connector.url): \(schema)")
            if schemaOnly { return }
            print("Đã chuyển / copied in one transaction, counts checked:")
            for (table, rows) in report.counts { print("  \(table.padding(toLength: 18, withPad: " ", startingAt: 0)) \(rows)") }
            print("Copy the key file (\(store.keyFile)) to every gate box; then set [database] backend = \"postgresql\" there.")
        }
    }
}
