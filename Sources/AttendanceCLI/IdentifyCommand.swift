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
        let (store, _) = try global.openStore()
        if try storeCall({ try store.enrolments.recognisable().isEmpty }) {
            FileHandle.standardError.write(Data("warning: nobody is enrolled yet\n".utf8))
        }
        let engine: FaceEngine
        do { engine = try FaceEngine(recognition: store.config.recognition) } catch { throw failLine("\(error)") }
        let found = try storeCall { try store.identify(photos: photos, engine: engine) }
        for (photo, problem) in found.unreadable { FileHandle.standardError.write(Data("error: \(photo): \(problem)\n".utf8)) }
        if !json { for photo in found.withoutFaces { print("\(photo): no face found") } }
        let failed = !found.unreadable.isEmpty
        let results = found.faces.map { f in
            let who = f.identification
            return FaceResult(
                photo: f.photo, box: f.box, student: who.student, name: f.name, nearest: who.nearest?.student,
                distance: who.nearest?.distance, margin: who.nearest.flatMap { $0.margin.isFinite ? $0.margin : nil },
                recognised: who.recognised)
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
