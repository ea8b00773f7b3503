import ArgumentParser
import Attendance
import AttendanceConsole
import AttendanceCore
import CaptureKit
import FaceEngine
import FaceMatch
import Foundation
import Logging
import ServiceLifecycle

struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "The embedded default (what `make run` shows): a replayed gate video through the real pipeline.",
        discussion: """
            Builds a demo school under --dir (a fresh SQLite database, a roster of three students with
            Vietnamese names, guardian consent, two students enrolled from sample photos), composes a gate
            video from the sample images in which the enrolled students and one stranger walk past, replays
            it through detection, tracking, voting and the schedule (one second of video = one minute
            from 06:55), and prints each decision as it happens and the day's summary at the end.
            """
    )

    @Option(help: "Folder with the sample images (make testdata fetches them).")
    var samples: String = ".testdata"

    @Option(help: "Working folder for the demo database and video.")
    var dir: String = "out/demo"

    @Option(help: "How many cameras replay the video at once.")
    var cameras: Int = 1

    @Option(help: "Log level on stderr: trace (every face), debug (every embedding), info, warning.")
    var logLevel: String = "warning"

    @Option(help: "Liveness check at the gate: off, flag (hold a face that looks like a photo for review) or enforce.")
    var liveness: String = "flag"

    @Flag(help: "After the replay, serve the web console on 127.0.0.1:8080 with a one-time admin password (Ctrl-C stops).")
    var console = false

    func run() async throws {
        LoggingSystem.bootstrap { label in
            var h = StreamLogHandler.standardError(label: label)
            h.logLevel = Logger.Level(rawValue: logLevel) ?? .warning
            return h
        }
        let models = ModelPaths.discover()
        guard let mode = AttendanceConfig.LivenessMode(rawValue: liveness) else {
            throw failLine("--liveness: off, flag or enforce, not '\(liveness)'")
        }
        let demo: GateDemo
        do {
            demo = try GateDemo.prepare(
                directory: dir, samples: samples, models: models, cameras: max(1, cameras), liveness: mode)
        } catch {
            throw failLine("cannot prepare the demo: \(error) (run `make testdata models`)")
        }
        let config = demo.config
        let store = try AttendanceStore.open(config: config)
        let tz = config.school.timeZone
        let timeFormat = DateFormatter()
        timeFormat.dateFormat = "HH:mm:ss"
        timeFormat.timeZone = tz
        let names = Dictionary(uniqueKeysWithValues: try store.roster.students().map { ($0.code, $0.fullName) })
        print(
            "Demo school \(config.school.name), \(names.count) students, \(Set(try store.enrolments.recognisable().map(\.student)).count) enrolled; day \(demo.day)"
        )
        print(
            "Replaying \(demo.video) on \(config.cameras.count) camera(s); school opens 07:00, late after +\(config.schedule.lateAfterMinutes) min\n"
        )

        let logger = Logger(label: "attendance.demo")
        let started = ContinuousClock.now
        let results = try await demo.replay(store: store, models: models, logger: logger) { event in
            switch event {
            case let .recorded(e, latency):
                let ms = Double(latency / .microseconds(1)) / 1000
                print(
                    "  \(timeFormat.string(from: e.occurredAt))  \(e.camera)  \(names[e.studentCode] ?? e.studentCode) (\(e.studentCode))  \(e.kind.rawValue)  \(e.status.rawValue.uppercased())  distance \(String(format: "%.3f", e.distance))  decided in \(String(format: "%.0f", ms)) ms"
                )
            case let .unknownFace(cam, at):
                print("  \(timeFormat.string(from: at))  \(cam)  unknown face (counted, not recorded)")
            case let .skipped(student, cam, result) where result == .alreadyRecorded:
                print("  ........  \(cam)  \(names[student] ?? student) seen again: already recorded this session")
            case let .skipped(student, cam, .heldForReview(e, reason)):
                print(
                    "  \(timeFormat.string(from: e.occurredAt))  \(cam)  \(names[student] ?? student)  HELD FOR REVIEW: the face did not look real (\(reason.rawValue)); `attendance review`"
                )
            case let .skipped(student, cam, .refusedAsSpoof(reason)):
                print(
                    "  ........  \(cam)  \(names[student] ?? student)  NOT RECORDED: the face did not look real (\(reason.rawValue))"
                )
            default:
                break
            }
        }
        let elapsed = ContinuousClock.now - started
        let frames = results.reduce(0) { $0 + $1.frames }
        let report = try AttendanceReports(store: store).daily(demo.day)
        print("\nSummary for \(demo.day):")
        for count in report.classes {
            print(
                "  class \(count.classCode): \(count.present) present, \(count.late) late, \(count.absent) absent, \(count.excused) excused"
            )
            for row in report.rows where row.classCode == count.classCode {
                let seen = row.firstSeen.map { "  " + timeFormat.string(from: $0) } ?? ""
                print(
                    "    \(row.studentCode)  \(row.fullName.padding(toLength: 18, withPad: " ", startingAt: 0))  \(row.status.rawValue)\(seen)"
                )
            }
        }
        print("  unknown faces: \(try store.events.unknownFaceCount(on: demo.day, timeZone: tz))")
        let seconds = Double(elapsed / .milliseconds(1)) / 1000
        print(
            String(
                format: "\n%d frames in %.1f s (%.1f frames/s on %d camera(s))", frames, seconds, Double(frames) / seconds,
                results.count))
        for s in results.sorted(by: { $0.frames > $1.frames }) {
            func ms(_ d: Duration, per n: Int) -> String {
                String(format: "%.1f", n == 0 ? 0 : Double(d / .microseconds(1)) / 1000 / Double(n))
            }
            print(
                "  stages (ms): detect \(ms(s.detectTime, per: s.frames))/frame, landmarks \(ms(s.landmarksTime, per: s.faces))/face, "
                    + "embed \(ms(s.embedTime, per: s.embeddings))/embedding, search \(ms(s.searchTime, per: s.embeddings))/embedding, "
                    + "liveness \(ms(s.livenessTime, per: s.livenessChecks))/check, "
                    + "store \(ms(s.storeTime, per: max(s.decisions, 1)))/decision; \(s.faces) faces, \(s.embeddings) embeddings, "
                    + "\(s.livenessChecks) liveness checks, \(s.spoofs) not real")
        }
        if console { try await serveConsole(store: store) }
    }

    /// The console over the demo's database: an admin account with a password made for this run only.
    func serveConsole(store: AttendanceStore) async throws {
        let password = SecretToken.make().prefix(16)
        do {
            if try store.accounts.user(named: "admin") == nil {
                try store.accounts.add(name: "admin", role: .admin, password: String(password))
            } else {
                try store.accounts.setPassword("admin", String(password))
            }
        } catch { throw failLine("\(error)") }
        let console: SchoolConsole
        do { console = try SchoolConsole.configured(store: store) } catch { throw failLine("\(error)") }
        print("\nThe school console: \(console.url)")
        print("  user: admin   one-time password: \(password)   (made for this demo run; Ctrl-C stops)")
        do { try await console.run() } catch { throw failLine("console: \(error)") }
    }
}
