import ArgumentParser
import Attendance
import AttendanceCore
import FaceEngine
import FaceMatch
import Foundation

struct FacesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "faces",
        abstract: "Find the faces in images: box, score, landmarks, quality (and the 128-D descriptor).",
        discussion: """
            Boxes are printed as top,right,bottom,left in the image's own pixels (right and bottom exclusive).
            Quality: size = the box's shorter side in pixels, sharpness = variance of the Laplacian
            (below about 15 the face is blurred), yaw = rough head turn in degrees from the landmarks.

            --liveness adds the passive liveness check the gate runs: the real score (0 to 1, the mean of
            two MiniFASNet models' "real" probability) and the verdict by recognition.liveness_threshold:
            real, spoof (a print or a screen?) or not checkable (the face is too small, at the image's edge
            or fills the image: the models need the face with its surroundings).

            Examples:
              attendance faces class-photo.jpg
              attendance faces --json --embedding a.jpg b.png > faces.json
              attendance faces --liveness gate-snapshot.jpg
            """
    )

    @Argument(help: ArgumentHelp("JPEG, PNG or BMP files.", valueName: "image"))
    var images: [String]

    @Flag(help: "Print JSON (one object per image) instead of text.")
    var json = false

    @Flag(help: "Include the 128 floats of each face's descriptor.")
    var embedding = false

    @Option(help: "Face detector: yunet, res10 or hog (default: recognition.detector of the config, yunet).")
    var detector: String?

    @Flag(help: "Check each face for a print or a screen (passive liveness) and print its real score and verdict.")
    var liveness = false

    @Option(help: "The real score under which a face is a spoof (default: recognition.liveness_threshold of the config).")
    var livenessThreshold: Float?

    @OptionGroup var global: GlobalOptions

    func run() throws {
        var rules = RecognitionRules(try global.loadConfig().recognition)
        var options = rules.engineOptions
        if let detector {
            guard let kind = DetectorKind(rawValue: detector) else {
                throw failLine("unknown detector '\(detector)' (use yunet, res10 or hog)")
            }
            options.detector = kind
        }
        options.embeddings = embedding
        let engine: FaceEngine
        do { engine = try FaceEngine(options: options) } catch { throw failLine("\(error)") }
        if let livenessThreshold { rules.livenessThreshold = livenessThreshold }
        let checker: LivenessChecker?
        do { checker = liveness ? try LivenessChecker() : nil } catch { throw failLine("\(error)") }
        var failed = 0
        var reports: [ImageFaces] = []
        for path in images {
            do {
                let image = try Image(contentsOf: path)
                let faces = try engine.faces(in: image, descriptors: embedding)
                let checks = try checker.map { c in try faces.map { try c.check($0.box, foundBy: engine.detector, in: image) } }
                let report = ImageFaces(
                    image: path, width: image.width, height: image.height,
                    faces: faces.enumerated().map { i, face in
                        ReportedFace(face: face, liveness: checks.map { LivenessReport($0[i], rules: rules) })
                    })
                if json { reports.append(report) } else { print(report.text(withEmbedding: embedding)) }
            } catch {
                failed += 1
                FileHandle.standardError.write(Data("error: \(path): \(error)\n".utf8))
            }
        }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(reports), as: UTF8.self))
        }
        if failed > 0 { throw ExitCode(1) }
    }
}

/// One face as `faces` reports it: the engine's fields, and the liveness check when asked.
struct ReportedFace: Encodable {
    var face: Face
    var liveness: LivenessReport?

    enum CodingKeys: String, CodingKey { case liveness }

    func encode(to encoder: any Encoder) throws {
        try face.encode(to: encoder)
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encodeIfPresent(liveness, forKey: .liveness)
    }
}

/// A liveness check in the report: the verdict, and the scores when the face could be checked.
struct LivenessReport: Encodable {
    var verdict: String
    var real: Float?
    var threshold: Float
    var probabilities: [String: [Float]]?
    var reason: String?

    init(_ check: LivenessCheck, rules: RecognitionRules) {
        verdict = rules.verdict(check).label
        threshold = rules.livenessThreshold
        switch check {
        case .checked(let r):
            real = r.real
            probabilities = ["model_a": r.probA, "model_b": r.probB]
        case .notCheckable(let why):
            reason = why
        }
    }
}

struct ImageFaces: Encodable {
    var image: String
    var width: Int
    var height: Int
    var faces: [ReportedFace]

    func text(withEmbedding: Bool) -> String {
        var lines = ["\(image): \(width)x\(height), \(faces.count) face\(faces.count == 1 ? "" : "s")"]
        for (i, reported) in faces.enumerated() {
            let f = reported.face
            let b = f.box
            let lm = f.landmarks.map { String(format: "(%.0f,%.0f)", $0.x, $0.y) }.joined(separator: " ")
            lines.append(
                String(
                    format: "  face %d: box %d,%d,%d,%d  score %.3f  size %.0f  sharpness %.1f  yaw %+.0f°",
                    i + 1, b.top, b.right, b.bottom, b.left, f.score, f.quality.boxSize, f.quality.sharpness, f.quality.yaw))
            lines.append("          landmarks \(lm)")
            if let l = reported.liveness {
                lines.append(
                    "          liveness \(l.verdict)"
                        + (l.real.map { String(format: " (real %.3f, threshold %.2f)", $0, l.threshold) } ?? "")
                        + (l.reason.map { " (\($0))" } ?? ""))
            }
            if withEmbedding, let d = f.descriptor {
                lines.append("          embedding " + d.values.map { String(format: "%.6f", $0) }.joined(separator: " "))
            }
        }
        return lines.joined(separator: "\n")
    }
}

struct CompareCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compare",
        abstract: "Is this the same person? L2 distance between the largest faces of two images.",
        discussion: """
            Same person usually lands around 0.3 to 0.45, different people above 0.6 (East-Asian faces lie
            closer together: see the README, "Accuracy"). Prints the distance and `match` or `no match` by the
            gate's own threshold (recognition.threshold of the config, or --threshold); exit code 0 either
            way, 1 on error.

            Example:
              attendance compare enrolment.jpg gate-snapshot.jpg --threshold 0.55
            """
    )

    @OptionGroup var global: GlobalOptions
    @Argument(help: "First image.") var first: String
    @Argument(help: "Second image.") var second: String
    @Option(help: "Distance below which the faces match (default: recognition.threshold of the config).")
    var threshold: Float?

    func run() throws {
        var rules = RecognitionRules(try global.loadConfig().recognition)
        if let threshold { rules.threshold = threshold }
        let engine: FaceEngine
        do { engine = try FaceEngine(options: rules.engineOptions) } catch { throw failLine("\(error)") }
        func largest(_ path: String) throws -> FaceDescriptor {
            let image: Image
            do { image = try Image(contentsOf: path) } catch { throw failLine("\(path): \(error)") }
            let face: Face?
            do { face = try engine.largestFace(in: image) } catch { throw failLine("\(path): \(error)") }
            guard let d = face?.descriptor else { throw failLine("\(path): no face found") }
            return d
        }
        let d = try Embedding.distance(Embedding(try largest(first).values), Embedding(try largest(second).values))
        print(String(format: "%.4f %@", d, rules.sameFace(d) ? "match" : "no match"))
    }
}
