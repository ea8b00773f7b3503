import ArgumentParser
import Attendance
import AttendanceCore
import AttendancePostgres
import CaptureKit
import FaceEngine
import Foundation

struct EnrolCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "enrol",
        abstract: "Enrol a student's face from photos (consent must be recorded first).",
        discussion: """
            Each photo is checked and accepted or rejected with the reason: no face, several faces, face too small, blurred, turned away, or too close to *another* student's enrolled face (likely a swapped photo), or unlike this student's other photos. Only the face's measurements are kept, encrypted; the photos themselves are never stored. Up to recognition.max_embeddings_per_student faces per student (3 to 5 good photos, looking at the camera, work best). The gate daemon picks up a new enrolment within seconds, without a restart.

            Examples:
              attendance enrol 0123456789 --photo an-1.jpg --photo an-2.jpg
              attendance enrol 0123456789 --dir photos/an/
              attendance enrol --from-dir photos/6A1/        (photos/6A1/<student code>/*.jpg)
              attendance enrol 0123456789 --camera v4l2:/dev/video0 --shots 5   (live feedback per frame)
            """,
        aliases: ["enroll"] // the American spelling still works
    )

    @OptionGroup var global: GlobalOptions
    @Argument(help: "Student code (mã định danh); not with --from-dir.") var student: String?
    @Option(name: .customLong("photo"), help: "A photo of the student (repeat for several).") var photos: [String] = []
    @Option(help: "Every .jpg/.jpeg/.png/.bmp in this folder is a photo of the student.") var dir: String?
    @Option(help: "Enrol many students: this folder holds one folder per student code, with their photos.")
    var fromDir: String?
    @Option(help: ArgumentHelp("Take the photos from a camera: v4l2:/dev/videoN, rtsp://..., file:PATH.", valueName: "source"))
    var camera: String?
    @Option(help: "With --camera: how many good shots to take.") var shots: Int = 5
    @Option(help: "With --camera: give up after this many seconds.") var timeout: Double = 60
    @Flag(
        help:
            "Accept a photo even though it looks like another student, or unlike this one (twins, a new haircut after checking).")
    var force = false

    func validate() throws {
        if fromDir != nil {
            if student != nil || !photos.isEmpty || dir != nil {
                throw ValidationError(
                    "--from-dir enrols every student of the folder: give no student code, --photo or --dir with it")
            }
        } else {
            if student == nil { throw ValidationError("give the student code (or --from-dir FOLDER)") }
            if photos.isEmpty && dir == nil && camera == nil {
                throw ValidationError("give at least one --photo FILE, --dir FOLDER or --camera SOURCE")
            }
            if camera != nil && (!photos.isEmpty || dir != nil) { throw ValidationError("--camera takes no --photo or --dir") }
            if !(1...20).contains(shots) { throw ValidationError("--shots must be 1 to 20") }
        }
    }

    func run() async throws {
        let (store, config) = try global.openStore()
        let school = try await schoolServer(store: store, config: config)
        if let camera, let student {
            try await enrolFromCamera(store: store, config: config, student: student, source: camera, school: school)
            return
        }
        var jobs: [(student: String, photos: [String])] = []
        if let fromDir {
            let names = try storeCall { try FileManager.default.contentsOfDirectory(atPath: fromDir).sorted() }
            for name in names {
                var isDir: ObjCBool = false
                let path = (fromDir as NSString).appendingPathComponent(name)
                guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir), isDir.boolValue else { continue }
                jobs.append((name, try storeCall { try Enroller.photos(in: path) }))
            }
            if jobs.isEmpty { throw failLine("\(fromDir) has no folders; expected \(fromDir)/<student code>/*.jpg") }
        } else {
            var list = photos
            if let dir { list += try storeCall { try Enroller.photos(in: dir) } }
            if list.isEmpty { throw failLine("no photos found (.jpg, .jpeg, .png, .bmp)") }
            jobs.append((student!, list))
        }

        let enroller = Enroller(store: store)
        // Check every student first: a batch should not stop half-way for a missing consent.
        var failed = 0
        var runnable: [(student: String, photos: [String])] = []
        for job in jobs {
            do { try enroller.checkEligible(job.student); runnable.append(job) } catch {
                failed += 1
                FileHandle.standardError.write(Data("error: \(job.student): \(error)\n".utf8))
            }
        }
        guard !runnable.isEmpty else { throw ExitCode(1) }
        let engine: FaceEngine
        do { engine = try FaceEngine(recognition: enroller.recognition) } catch { throw failLine("\(error)") }

        for job in runnable {
            let name = (try? store.roster.student(code: job.student))??.fullName ?? ""
            print("\(job.student) \(name)")
            let outcomes: [PhotoOutcome]
            do {
                outcomes = try await keep(
                    enroller, student: job.student, detected: Enroller.detect(photos: job.photos, engine: engine),
                    school: school)
            } catch {
                failed += 1
                FileHandle.standardError.write(Data("error: \(job.student): \(error)\n".utf8))
                continue
            }
            for o in outcomes {
                let file = (o.source as NSString).lastPathComponent
                if let why = o.rejection {
                    print("  rejected  \(file): \(why)" + (why.isForceable ? " [--force]" : ""))
                } else {
                    let q = o.quality.map { " (face \(Int($0.boxSize)) px, sharpness \(Int($0.sharpness)))" } ?? ""
                    print("  accepted  \(file)\(q)" + (o.forced ? " [--force]" : ""))
                }
            }
            let accepted = outcomes.filter(\.accepted).count
            let total = (try? store.enrolments.list(student: job.student).count) ?? 0
            print(
                "  \(accepted) of \(outcomes.count) photo\(outcomes.count == 1 ? "" : "s") accepted; "
                    + "\(total) of \(config.recognition.maxEmbeddingsPerStudent) faces enrolled.")
            if accepted == 0 { failed += 1 }
        }
        if failed > 0 { throw ExitCode(1) }
    }
}

extension EnrolCommand {
    /// Takes `shots` good frames from a camera with a feedback line per change (`CameraEnrolment`), then shows what
    /// the enrolment made of them.
    func enrolFromCamera(
        store: AttendanceStore, config: AttendanceConfig, student: String, source spec: String, school: SchoolServer?
    ) async throws {
        let source: any FrameSource
        do { source = try CameraSource.make(spec, cameraID: "enrol") } catch { throw failLine("\(error)") }
        let enrolment = CameraEnrolment(store: store, shots: shots, timeout: .milliseconds(Int(timeout * 1000)))
        print("Look at the camera. Taking \(shots) good shot\(shots == 1 ? "" : "s") of \(student) (Ctrl-C to stop).")
        var lastFeedback = ""
        let outcomes: [PhotoOutcome]
        do {
            let taken = try await enrolment.takeShots(student: student, source: source) { feedback in
                let line: String
                switch feedback {
                case .instruction(let why): line = why.liveHint
                case let .shot(taken, wanted): line = "good shot \(taken) of \(wanted)"
                }
                if line != lastFeedback { print("  " + line); lastFeedback = line }
            }
            outcomes = try await keep(enrolment.enroller, student: student, detected: taken, school: school)
        } catch let error as CameraEnrolment.NoGoodShot {
            throw failLine("\(error)")
        } catch let error as FaceEngineError where error.kind == .model {
            throw failLine("\(error) (or set recognition.liveness = \"off\")")
        } catch let error as CaptureError {
            throw failLine("camera \(spec): \(error)")
        } catch {
            throw failLine("\(student): \(error)" + (commandHint(error).map { "\n" + $0 } ?? ""))
        }
        for o in outcomes {
            if let why = o.rejection {
                print("  rejected  \(o.source): \(why)")
            } else {
                print("  accepted  \(o.source)" + (o.forced ? " [--force]" : ""))
            }
        }
        let accepted = outcomes.filter(\.accepted).count
        print(
            "  \(accepted) of \(outcomes.count) shots accepted; \((try? store.enrolments.list(student: student).count) ?? 0) of \(config.recognition.maxEmbeddingsPerStudent) faces enrolled."
        )
        if accepted == 0 { throw ExitCode(1) }
    }
}

struct UnenrolCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "unenrol",
        abstract: "Delete a student's enrolled faces (consent and attendance records stay).",
        discussion: """
            Examples:
              attendance unenrol 0123456789
              attendance unenrol --all --yes     (every student; e.g. when the key file is lost)
            """,
        aliases: ["unenroll"] // the American spelling still works
    )
    @OptionGroup var global: GlobalOptions
    @Argument(help: "Student code (mã định danh).") var student: String?
    @Flag(help: "Delete every enrolled face of every student (works without the key file).") var all = false
    @Flag(help: "Confirm --all.") var yes = false

    func validate() throws {
        if all == (student != nil) { throw ValidationError("give a student code, or --all") }
        if all && !yes { throw ValidationError("--all deletes every enrolled face in the school; add --yes to confirm") }
    }

    func run() async throws {
        if all {
            let config: AttendanceConfig
            do { config = try global.loadConfig() } catch { throw failLine("\(error)") }
            let n = try storeCall { try EnrolmentRegister.discardAll(config: config) }
            print("\(n) enrolled faces deleted. Students must be enrolled again.")
            return
        }
        let (store, config) = try global.openStore()
        let n: Int
        if let school = try await AttendanceCLI.schoolServer(store: store, config: config, before: "was deleted") {
            n = try await serverCall { try await school.unenrol(student: student!) }
        } else {
            n = try storeCall { try store.enrolments.remove(student: student!) }
        }
        print("\(n) enrolled face\(n == 1 ? "" : "s") of \(student!) deleted; the gate stops recognising them within seconds.")
        reportCompaction(store)
    }
}
