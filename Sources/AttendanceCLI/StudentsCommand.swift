import ArgumentParser
import Attendance
import AttendanceCore
import AttendancePostgres
import Foundation

extension GlobalOptions {
    /// The config and the opened store, or a one-line reason (permissions, wrong key, bad config).
    func openStore() throws -> (AttendanceStore, AttendanceConfig) {
        let config: AttendanceConfig
        do { config = try loadConfig() } catch { throw failLine("\(error)") }
        do { return (try AttendanceStore.open(config: config), config) } catch { throw failLine("\(error)") }
    }
}

/// Runs a store call, turning its error into the one-line message every command prints.
func storeCall<T>(_ body: () throws -> T) throws -> T {
    do { return try body() } catch let e as ExitCode { throw e } catch {
        throw failLine("\(error)" + (commandHint(error).map { "\n" + $0 } ?? ""))
    }
}

/// The command that fixes what a library error describes (the library itself names no command or flag).
func commandHint(_ error: Error) -> String? {
    switch error {
    case let StoreError.noConsent(code):
        return
            "  attendance consent record \(code) --guardian NAME --relation mother|father|guardian --date yyyy-MM-dd [--child-agrees]"
    case let StoreError.childMustAgree(code):
        return "  attendance consent record \(code) ... --child-agrees"
    case StoreError.missingKey:
        return "  to discard the enrolments: attendance unenrol --all --yes"
    case StoreError.unknownStudent:
        return "  attendance students --all   lists the codes"
    case let rejection as EnrolmentRejection where rejection.isForceable:
        return "  add --force to enrol it anyway"
    case EnrolmentRejection.limitReached:
        return "  attendance unenrol CODE   removes the student's faces (then enrol the new photos)"
    case EnrolmentRejection.notLive(.some, _):
        return "  attendance enrol CODE --photo FILE   enrols from a photo instead (photos are not checked)"
    case let problem as PostgresProblem where problem.kind == .schema:
        return "  attendance db migrate --schema-only --to postgresql://OWNER@HOST:PORT/DATABASE   (as the owner role)"
    default:
        return nil
    }
}

/// After deleting biometric data: folds the write-ahead log back so no old page keeps the bytes, and
/// says so when it could not (a daemon reading at that moment); never silently.
func reportCompaction(_ store: AttendanceStore) {
    do { try store.retention.compact() } catch { warnCompaction("\(error)") }
}

func warnCompaction(_ problem: String) {
    FileHandle.standardError.write(
        Data(
            ("warning: the deletion is committed, but " + problem
                + ". A running daemon checkpoints within seconds of the change; check with `attendance purge --compact-only` later.\n")
                .utf8))
}

func printJSON<T: Encodable>(_ value: T) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    print(String(decoding: try encoder.encode(value), as: UTF8.self))
}

/// Left-aligned columns; counts characters, which is right for NFC Vietnamese text.
func table(_ rows: [[String]]) -> String {
    guard let width = rows.map(\.count).max() else { return "" }
    let widths = (0..<width).map { c in rows.map { c < $0.count ? $0[c].count : 0 }.max() ?? 0 }
    return rows.map { row in
        row.enumerated().map { c, cell in c == row.count - 1 ? cell : cell + String(repeating: " ", count: widths[c] - cell.count)
        }
        .joined(separator: "  ")
    }.joined(separator: "\n")
}

/// A student as the CLI shows them.
struct StudentView: Encodable {
    var code: String
    var fullName: String
    var classCode: String
    var gradeCode: String
    var dateOfBirth: String?
    var gender: String?
    var active: Bool
    var enrolledFaces: Int
    var consent: Bool
    /// An enrolment row of theirs does not open (damaged): the gate skips it.
    var unreadableFace: Bool
    /// The name the daemon's log and /health give the student (a keyed hash, never the code).
    var logName: String

    init(_ s: Student, faces: Int, consent: Bool, unreadable: Bool, logName: String) {
        code = s.code; fullName = s.fullName; classCode = s.classCode; gradeCode = s.gradeCode
        dateOfBirth = s.dateOfBirth?.description; gender = s.gender; active = s.active
        enrolledFaces = faces; self.consent = consent; unreadableFace = unreadable; self.logName = logName
    }
}

struct StudentsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "students",
        abstract: "List the students, with their consent and enrolment state.",
        discussion: """
            Examples:
              attendance students --class 6A1
              attendance students show 0123456789
              attendance students --json > students.json
            """,
        subcommands: [List.self, Show.self],
        defaultSubcommand: List.self
    )

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List students (active ones unless --all).")
        @OptionGroup var global: GlobalOptions
        @Option(name: .customLong("class"), help: "Only this class, e.g. 6A1.") var classCode: String?
        @Flag(help: "Include inactive students (no longer on the roster).") var all = false
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            let (store, _) = try global.openStore()
            let (students, counts) = try storeCall {
                (try store.roster.students(classCode: classCode, activeOnly: !all), try store.enrolments.counts())
            }
            let unreadable = try storeCall { try store.enrolments.unreadable() }
            let views = try storeCall {
                try students.map {
                    StudentView(
                        $0, faces: counts[$0.code] ?? 0, consent: try store.consent.active(student: $0.code) != nil,
                        unreadable: unreadable.contains($0.code), logName: store.pseudonym(of: $0.code))
                }
            }
            if json { return try printJSON(views) }
            if views.isEmpty {
                print(
                    classCode.map { "No students in class \($0)." }
                        ?? "No students yet. Import a roster: attendance roster import FILE.csv")
                return
            }
            var rows = [["CODE", "NAME", "CLASS", "CONSENT", "FACES"] + (all ? ["ACTIVE"] : [])]
            for v in views {
                rows.append(
                    [
                        v.code, v.fullName, v.classCode, v.consent ? "yes" : "no",
                        "\(v.enrolledFaces)" + (v.unreadableFace ? " (DAMAGED)" : ""),
                    ] + (all ? [v.active ? "yes" : "no"] : []))
            }
            print(table(rows))
            for v in views where v.unreadableFace {
                print(
                    "\n\(v.code) (\(v.logName) in the daemon's log): an enrolled face does not open (damaged row); the gate skips it. "
                        + "Re-enrol: attendance unenrol \(v.code) && attendance enrol \(v.code) --photo PHOTO.jpg")
            }
            let noConsent = views.filter { !$0.consent }.count
            let notEnrolled = views.filter { $0.consent && $0.enrolledFaces == 0 }.count
            print("\n\(views.count) students; \(noConsent) without consent, \(notEnrolled) with consent but no enrolled face.")
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Everything recorded about one student (never the face itself).")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "Student code (mã định danh).") var student: String
        @Flag(help: "Print JSON.") var json = false

        struct Detail: Encodable {
            var student: StudentView
            var consents: [Consent]
            var enrolments: [EnrolmentInfo]
        }

        func run() async throws {
            let (store, _) = try global.openStore()
            guard let s = try storeCall({ try store.roster.student(code: student) }) else {
                throw failLine(StoreError.unknownStudent(student).description)
            }
            let consents = try storeCall { try store.consent.history(student: student) }
            let enrolments = try storeCall { try store.enrolments.list(student: student) }
            let unreadable = try storeCall { try store.enrolments.unreadable() }
            let view = StudentView(
                s, faces: enrolments.count, consent: consents.contains { $0.isActive },
                unreadable: unreadable.contains(s.code), logName: store.pseudonym(of: s.code))
            if json { return try printJSON(Detail(student: view, consents: consents, enrolments: enrolments)) }
            print("\(s.code)  \(s.fullName)  (\(view.logName) in the daemon's log)")
            print(
                "class \(s.classCode) (grade \(s.gradeCode))" + (s.dateOfBirth.map { ", born \($0)" } ?? "")
                    + (s.gender.map { ", \($0)" } ?? "") + (s.active ? "" : ", INACTIVE (not on the latest roster)"))
            print("\nConsent:")
            if consents.isEmpty {
                print("  none recorded. Record it: attendance consent record \(s.code) --guardian NAME --relation R --date D")
            }
            for c in consents {
                print(
                    "  \(c.consentDate) \(c.guardianName) (\(c.relation)), scope: \(c.scope); recorded by \(c.recordedBy)"
                        + (c.revokedAt.map { "; REVOKED \($0) by \(c.revokedBy ?? "?")" } ?? ""))
            }
            print("\nEnrolled faces: \(enrolments.count)")
            for e in enrolments { print("  #\(e.id) \(e.createdAt) by \(e.createdBy), \(e.source ?? "") \(e.quality ?? "")") }
            if enrolments.isEmpty, consents.contains(where: \.isActive) {
                print("  none yet. Enrol: attendance enrol \(s.code) --photo PHOTO.jpg")
            }
        }
    }
}
