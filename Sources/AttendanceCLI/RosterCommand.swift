import ArgumentParser
import Attendance
import AttendanceCore
import AttendancePostgres
import Foundation

struct RosterCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "roster",
        abstract: "Import the class list.",
        subcommands: [Import.self]
    )

    struct Import: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "import",
            abstract: "Import a class list (CSV) into the database.",
            discussion: """
                The file is the school's list exported from the spreadsheet as "CSV UTF-8". The first rows must name the columns; names in Vietnamese or English are recognised:
                  Mã định danh / student_code    the student's fixed code in the sector database (required)
                  Họ và tên / full_name          (required)
                  Lớp / class                    e.g. 6A1 (required)
                  Khối / grade                   optional: taken from the class's leading digits
                  Ngày sinh / date_of_birth      05/09/2013 or 2013-09-05
                  Giới tính / gender             Nam, Nữ
                Optional consent columns: Người giám hộ / guardian, Quan hệ / relation, Ngày đồng ý / consent_date, Phạm vi / scope, Học sinh đồng ý / child_agrees (needed from age 7).

                All or nothing: if any line is wrong, every wrong line is listed as FILE:LINE: reason and nothing is imported. Importing again updates names and classes and reports what changed. A student of the file's classes who is missing from it becomes inactive (kept, never deleted); with --whole-school, students of every class are considered.

                Examples:
                  attendance roster import lop6a1.csv --dry-run
                  attendance roster import lop6a1.csv
                  attendance roster import toan-truong.csv --whole-school
                """
        )
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The roster file (.csv).") var file: String
        @Flag(help: "Check the file and show what would change, without changing anything.") var dryRun = false
        @Flag(help: "The file lists the whole school: students missing from it become inactive, whatever their class.")
        var wholeSchool = false

        func run() async throws {
            let roster: Roster
            do {
                roster = try RosterParser.parse(contentsOf: file)
            } catch let e as RosterErrors {
                FileHandle.standardError.write(Data((e.description + "\n").utf8))
                let n = Set(e.errors.map(\.line)).count
                throw failLine("nothing was imported: fix the \(n == 1 ? "line" : "\(n) lines") above and run the command again")
            } catch {
                throw failLine("\(error)")
            }
            let (store, config) = try global.openStore()
            let options = RosterImportOptions(dryRun: dryRun, wholeSchool: wholeSchool)
            let r: RosterImportReport
            if let school = try await schoolServer(store: store, config: config, before: "was imported") {
                // postgresql: the school's server first, then this box's copy.
                r = try await serverCall { try await school.importRoster(roster, options: options) }
            } else {
                r = try storeCall { try store.roster.importRoster(roster, options: options) }
            }
            let classes = roster.classes.map(\.code)
            print(
                "\(file): \(roster.entries.count) students in \(classes.count) class\(classes.count == 1 ? "" : "es") (\(classes.joined(separator: ", ")))"
            )
            func list(_ codes: [String]) -> String {
                codes.count <= 12 ? codes.joined(separator: ", ") : codes.prefix(12).joined(separator: ", ") + ", …"
            }
            let verb = dryRun ? "would be " : ""
            print("  added:       \(r.added.count)" + (r.added.isEmpty ? "" : "  (\(list(r.added)))"))
            print(
                "  changed:     \(r.changed.count)"
                    + (r.changed.isEmpty
                        ? ""
                        : "  (\(r.changed.prefix(12).map { "\($0.code): \($0.fields.joined(separator: ", "))" }.joined(separator: "; ")))")
            )
            print("  unchanged:   \(r.unchanged)")
            print(
                "  inactive:    \(r.deactivated.count)"
                    + (r.deactivated.isEmpty
                        ? "" : "  (\(list(r.deactivated)); no longer on the roster, \(verb)kept but not recognised)"))
            if !r.consentsRecorded.isEmpty {
                print("  consent:     \(r.consentsRecorded.count) \(verb)recorded from the consent columns")
            }
            if !r.consentsRefusedErased.isEmpty {
                print(
                    "  NOT recorded: the consent of \(r.consentsRefusedErased.joined(separator: ", ")), given before the student's erasure on request "
                        + "(or before the key file was lost, which hid who had been erased); record a new consent if the family agrees again"
                )
            }
            if dryRun {
                print("\nDry run: nothing was changed. Run the same command without --dry-run to import.")
            } else {
                print(
                    "\nNext: record each guardian's consent (attendance consent record CODE --guardian NAME --relation R --date D),"
                )
                print("then enrol faces (attendance enrol CODE --photo PHOTO.jpg). See who is missing: attendance students")
            }
        }
    }
}
