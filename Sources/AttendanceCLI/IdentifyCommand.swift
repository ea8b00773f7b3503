import ArgumentParser
import Attendance
import AttendanceCore
import FaceEngine
import Foundation

struct IdentifyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "identify",
        abstract: "Who is in this photo? Each face's nearest enrolled student, distance and margin.",
        discussion: """
            distance: how far the face is from the student's closest enrolled face (same person about 0.3-0.45; different people mostly above 0.5, East-Asian faces closer together than others: see the README, "Accuracy"). margin: how much closer the best student is than the next one. A face is recognised by the gate's own rule: distance under recognition.threshold and margin at least recognition.min_margin (recognition.lookalike_margin for a student with a look-alike classmate; see `attendance gallery check`).

            Example:
              attendance identify gate-snapshot.jpg
            """
    )
    @OptionGroup var global: GlobalOptions
    @Argument(help: "Photos (JPEG, PNG, BMP).") var photos: [String]
    @Flag(help: "Print JSON.") var json = false

    struct FaceResult: Encodable {
        var photo: String
        var box: FaceBox
        var student: String?
        var name: String?
        var nearest: String?
        var distance: Float?
        var margin: Float?
        var recognised: Bool
    }

    func run() async throws {
        let (store, config) = try global.openStore()
        let gallery = try storeCall { try store.enrolments.recognisable() }
        if gallery.isEmpty { FileHandle.standardError.write(Data("warning: nobody is enrolled yet\n".utf8)) }
        let index = try EnrolledFaces.Index(version: 0, rows: gallery)
        let rules = RecognitionRules(config.recognition)
        let engine: FaceEngine
        do { engine = try FaceEngine() } catch { throw failLine("\(error)") }
        var results: [FaceResult] = []
        var failed = false
        for photo in photos {
            let faces: [Face]
            do { faces = try engine.faces(inFile: photo) } catch {
                FileHandle.standardError.write(Data("error: \(photo): \(error)\n".utf8))
                failed = true
                continue
            }
            if faces.isEmpty && !json { print("\(photo): no face found") }
            for face in faces {
                guard let d = face.descriptor else { continue }
                let who = try index.identify(d.values, rules: rules)
                let margin = who.nearest.flatMap { $0.margin.isFinite ? $0.margin : nil }
                let name = who.student.flatMap { (try? store.roster.student(code: $0))??.fullName }
                results.append(
                    FaceResult(
                        photo: photo, box: face.box, student: who.student, name: name, nearest: who.nearest?.student,
                        distance: who.nearest?.distance, margin: margin, recognised: who.recognised))
            }
        }
        do {
            try store.auditLog.append(action: "identify", subject: nil, detail: "photos=\(photos.count); faces=\(results.count)")
        } catch {
            throw failLine("the audit log refused the entry, so nothing is shown: \(error)")
        }
        if json {
            try printJSON(results)
        } else {
            for r in results {
                let b = r.box
                let where_ = "\((r.photo as NSString).lastPathComponent) face at \(b.left),\(b.top) \(b.width)x\(b.height)"
                let dist = r.distance.map { String(format: "distance %.2f", $0) } ?? ""
                let marg = r.margin.map { String(format: ", margin %.2f", $0) } ?? ""
                if r.recognised {
                    print("\(where_): \(r.student!) \(r.name ?? "") (\(dist)\(marg))")
                } else if let nearest = r.nearest {
                    print("\(where_): unknown (nearest \(nearest), \(dist)\(marg))")
                } else {
                    print("\(where_): unknown")
                }
            }
        }
        if failed { throw ExitCode(1) }
    }
}
