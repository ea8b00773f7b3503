import ArgumentParser
import Attendance
import AttendanceCore
import AttendancePostgres
import Foundation

struct SightingsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sightings",
        abstract: "Lượt nhận diện chờ duyệt / Gate sightings waiting for the teacher: approve them into a student's enrolment.",
        discussion: """
            When the gate recognises a student (recognition.learn_from_gate, on by default), the face's 128 numbers from that moment (never a picture) wait here, one per student, until the homeroom teacher approves or rejects them. An approved sighting becomes one more enrolled face: the gate then knows the child as the camera sees them, not only from the ID photo. Measured on faces-dev: one photo + an approved sighting recognised 61.8 % of tracks against 55.4 % for the photo alone (a second photo: 72.9 %; East-Asian 67.1, 61.4 and 77.1 %).

            Approve only a sighting you are sure was that child (you saw them at the gate). The same checks as for a photo apply: a sighting too close to another student is refused unless --force.

            Examples:
              attendance sightings list --class 6A1
              attendance sightings approve 12 15
              attendance sightings reject 13 --reason "was the sibling"
            """,
        subcommands: [List.self, Approve.self, Reject.self],
        defaultSubcommand: List.self
    )

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "The sightings waiting for approval.")
        @OptionGroup var global: GlobalOptions
        @Option(name: .customLong("class"), help: "Only this class.") var classCode: String?
        @Flag(help: "Print JSON.") var json = false

        struct Row: Encodable {
            var id: Int64; var student: String; var name: String?; var distance: Float; var camera: String; var seenAt: String
        }

        func run() async throws {
            let (store, _) = try global.openStore()
            let rows = try storeCall {
                try store.enrolments.pendingSightings(classCode: classCode).map {
                    Row(
                        id: $0.id, student: $0.student, name: try store.roster.student(code: $0.student)?.fullName,
                        distance: $0.distance, camera: $0.camera, seenAt: $0.seenAt)
                }
            }
            if json { return try printJSON(rows) }
            if rows.isEmpty {
                print("Không có lượt nào chờ duyệt / no sightings waiting\(classCode.map { " in class \($0)" } ?? "")."); return
            }
            print("ID     STUDENT      NAME                            DISTANCE  CAMERA    SEEN")
            for r in rows {
                print(
                    String(
                        format: "%-6lld %@ %@ %.3f     %@ %@", r.id, r.student.padding(toLength: 12, withPad: " ", startingAt: 0),
                        (r.name ?? "").padding(toLength: 31, withPad: " ", startingAt: 0), r.distance,
                        r.camera.padding(toLength: 9, withPad: " ", startingAt: 0), r.seenAt))
            }
        }
    }

    struct Approve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Add these sightings to their students' enrolment.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "Sighting ids (from `attendance sightings list`).") var ids: [Int64]
        @Flag(help: "Add a sighting even when it looks like another student (twins, siblings): check first.") var force = false

        func run() async throws {
            let (store, config) = try global.openStore()
            let enroller = Enroller(store: store)
            // postgresql: each approved sighting is enrolled on the school's server first, then this box's copy.
            let school = try await schoolServer(store: store, config: config, before: "was added")
            var failed = false
            for id in ids {
                do {
                    let problem =
                        if let school {
                            try await school.approveSighting(enroller, id: id, force: force)
                        } else {
                            try enroller.approveSighting(id: id, force: force)
                        }
                    if let why = problem {
                        print("\(id): not added: \(why)")
                        failed = true
                    } else {
                        print("\(id): added to the enrolment")
                    }
                } catch {
                    FileHandle.standardError.write(Data("error: \(id): \(error)\n".utf8))
                    failed = true
                }
            }
            if failed { throw ExitCode(1) }
        }
    }

    struct Reject: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete these sightings.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "Sighting ids.") var ids: [Int64]
        @Option(help: "Why (kept in the audit log).") var reason: String?

        func run() async throws {
            let (store, _) = try global.openStore()
            for id in ids { try storeCall { try store.enrolments.rejectSighting(id: id, reason: reason) } }
            print("\(ids.count) sighting(s) deleted")
        }
    }
}
