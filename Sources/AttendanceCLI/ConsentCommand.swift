import ArgumentParser
import Attendance
import AttendanceCore
import AttendancePostgres
import Foundation

struct ConsentCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "consent",
        abstract: "Record or revoke a guardian's consent to face recognition (needed before enrolment).",
        discussion: """
            Faces are biometric data: under Decree 13/2023/NĐ-CP a child's face may only be processed with the consent of a parent or guardian, and from age 7 with the child's own agreement too. Keep the signed form; this records who consented, when, and to what.

            Examples:
              attendance consent record 0123456789 --guardian "Nguyễn Văn Ba" --relation father --date 01/09/2026 --child-agrees
              attendance consent revoke 0123456789 --reason "parent's letter of 3 Oct"
              attendance consent show 0123456789
            """,
        subcommands: [Record.self, Revoke.self, Show.self]
    )

    struct Record: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Record a guardian's consent.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "Student code (mã định danh).") var student: String
        @Option(help: "The guardian's full name.") var guardian: String
        @Option(help: "Relation to the student: mother, father, guardian, …") var relation: String
        @Option(help: "Date the consent was given: dd/MM/yyyy or yyyy-MM-dd.") var date: String
        @Option(help: "What the guardian agreed to.") var scope: String = Consent.defaultScope
        @Flag(help: "The student (7 or older) agreed too; required from age 7 when the roster gives the date of birth.")
        var childAgrees = false

        func run() async throws {
            guard let day = RosterParser.parseDate(date) else {
                throw failLine("--date '\(date)' is not a date like 01/09/2026 or 2026-09-01")
            }
            let (store, config) = try global.openStore()
            let c: Consent
            if let school = try await schoolServer(store: store, config: config, before: "was recorded") {
                c = try await serverCall {
                    try await school.recordConsent(
                        student: student, guardian: guardian, relation: relation, date: day, scope: scope,
                        childAgreed: childAgrees)
                }
            } else {
                c = try storeCall {
                    try store.consent.record(
                        student: student, guardian: guardian, relation: relation, date: day,
                        scope: scope, childAgreed: childAgrees)
                }
            }
            let name = (try? store.roster.student(code: student))??.fullName ?? student
            print(
                "Consent recorded for \(student) \(name): \(c.guardianName) (\(c.relation)), \(c.consentDate), scope: \(c.scope)."
            )
            print("Next: attendance enrol \(student) --photo PHOTO.jpg")
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Revoke consent: the student's enrolled faces are deleted at once and the gate stops recognising them.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "Student code (mã định danh).") var student: String
        @Option(help: "Why (kept in the audit log), e.g. the date of the parent's letter.") var reason: String?

        func run() async throws {
            let (store, config) = try global.openStore()
            let n: Int
            if let school = try await schoolServer(store: store, config: config, before: "was revoked") {
                n = try await serverCall { try await school.revokeConsent(student: student, reason: reason) }
            } else {
                n = try storeCall { try store.consent.revoke(student: student, reason: reason) }
            }
            print(
                "Consent revoked for \(student); \(n) enrolled face\(n == 1 ? "" : "s") deleted. The gate stops recognising them within seconds."
            )
            reportCompaction(store)
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "The consent history of a student.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "Student code (mã định danh).") var student: String
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            let (store, _) = try global.openStore()
            guard try storeCall({ try store.roster.student(code: student) }) != nil else {
                throw failLine(StoreError.unknownStudent(student).description)
            }
            let consents = try storeCall { try store.consent.history(student: student) }
            if json { return try printJSON(consents) }
            if consents.isEmpty { print("No consent recorded for \(student).") }
            for c in consents {
                print(
                    "\(c.consentDate)  \(c.guardianName) (\(c.relation))  scope: \(c.scope)  recorded \(c.recordedAt) by \(c.recordedBy)"
                        + (c.revokedAt.map { "  REVOKED \($0) by \(c.revokedBy ?? "?")" } ?? "  in force"))
            }
        }
    }
}
