// accuracy-bench: how the recognition policy does on an identity-labelled face set.
//
//   accuracy-bench [DIR]            (default ../shared/faces-dev, or $FACES)
//   accuracy-bench --liveness [DIR] (the liveness section alone, a few minutes: `make bench-liveness`)
//
// DIR holds identities.csv (identity,images,east_asian,...), one folder of photos per identity and,
// optionally, pairs.csv (img_a,img_b,same,east_asian). Prints: detection on the set, same/different
// accept rates per threshold (all, East-Asian, others), the 1:N gate simulation through the real
// policy code for several policies and enrolment counts, and ends with one line per part:
//   accuracy part=all|east_asian tracks=N correct=C wrong=W unknown=U threshold=T
// Embeddings are cached under .build/accuracy-cache (never committed: they are derived from the photos).
// The liveness section (Liveness.swift) follows: real scores of every photo composed into a gate frame as the person,
// a phone screen and a print, accept rates per threshold, the test photos and the models' samples, and one line
//   liveness threshold=X real_accept_EA=... real_accept_other=... spoof_pass_EA=... spoof_pass_other=...

import Attendance
import AttendanceCore
import FaceEngine
import FaceMatch
import Foundation

struct BenchError: Error, CustomStringConvertible {
    var description: String
}

// OpenBLAS's own kernels for this CPU (a restart when it fell back to its generic ones), as `attendance` does.
FaceEngine.restartWithNativeBLASKernelsIfNeeded()
let arguments = Array(CommandLine.arguments.dropFirst())
let livenessOnly = arguments.contains("--liveness")
let root = FileManager.default.currentDirectoryPath
let setDir =
    arguments.first { !$0.hasPrefix("--") } ?? ProcessInfo.processInfo.environment["FACES"].flatMap { $0.isEmpty ? nil : $0 }
    ?? (root + "/../shared/faces-dev")
let framesPerPhoto = Int(ProcessInfo.processInfo.environment["FRAMES"] ?? "") ?? 5
/// The face engine's options: its defaults, or the detector named by $DETECTOR (res10, yunet, hog).
let engineOptions: FaceEngine.Options = {
    var options = FaceEngine.Options()
    if let name = ProcessInfo.processInfo.environment["DETECTOR"], !name.isEmpty {
        guard let kind = DetectorKind(rawValue: name) else {
            print("accuracy-bench: unknown DETECTOR=\(name) (res10, yunet or hog)")
            exit(2)
        }
        options.detector = kind
    }
    return options
}()

guard FileManager.default.fileExists(atPath: setDir + "/identities.csv") else {
    print("accuracy-bench: skipped: no identity-labelled set at \(setDir) (identities.csv missing); set FACES=DIR")
    exit(0)
}

// MARK: - The set

func csvRows(_ path: String) throws -> [[String: String]] {
    let text = try String(contentsOfFile: path, encoding: .utf8)
    var lines = text.split(whereSeparator: \.isNewline).map(String.init)
    guard !lines.isEmpty else { return [] }
    let header = lines.removeFirst().split(separator: ",", omittingEmptySubsequences: false).map {
        $0.trimmingCharacters(in: .whitespaces)
    }
    return lines.map { line in
        let cells = line.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        var row: [String: String] = [:]
        for (i, h) in header.enumerated() where i < cells.count { row[h] = cells[i] }
        return row
    }
}

struct Person { var name: String; var eastAsian: Bool; var files: [String] }

func photoOrder(_ a: String, _ b: String) -> Bool {
    let na = Int((a as NSString).deletingPathExtension), nb = Int((b as NSString).deletingPathExtension)
    if let na, let nb { return na < nb }
    return a < b
}

let people: [Person] = try csvRows(setDir + "/identities.csv").compactMap { row in
    guard let name = row["identity"], !name.isEmpty else { return nil }
    let dir = setDir + "/" + name
    let files = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
    let photos = files.filter { ["jpg", "jpeg", "png", "bmp"].contains(($0 as NSString).pathExtension.lowercased()) }
        .sorted(by: photoOrder).map { name + "/" + $0 }
    return Person(name: name, eastAsian: row["east_asian"] == "1", files: photos)
}
let photoCount = people.reduce(0) { $0 + $1.files.count }
print(
    "set: \(setDir): detector \(engineOptions.detector), \(people.count) identities (\(people.filter(\.eastAsian).count) East-Asian), \(photoCount) photos, \(framesPerPhoto) frames per photo"
)
if livenessOnly {
    try LivenessBench.run(people: people, setDir: setDir, root: root)
    exit(0)
}

// MARK: - Frames: the photo, and jittered copies standing for the next frames of a camera

enum Frames {
    /// BGR bytes of `image` moved by (dx, dy) and scaled by `scale` about the centre, brightness
    /// times `gain`, blurred with a 3x3 box when `blur`: a face a moment later, a step closer, a cloud.
    static func jittered(_ image: Image, dx: Double, dy: Double, scale: Double, gain: Double, blur: Bool) throws -> Image {
        let w = image.width, h = image.height
        let src = image.bgrBytes
        var out = [UInt8](repeating: 0, count: w * h * 3)
        let cx = Double(w) / 2, cy = Double(h) / 2
        for y in 0..<h {
            for x in 0..<w {
                let sx = Int(((Double(x) - cx) / scale + cx - dx * Double(w)).rounded())
                let sy = Int(((Double(y) - cy) / scale + cy - dy * Double(h)).rounded())
                let xs = min(max(sx, 0), w - 1), ys = min(max(sy, 0), h - 1)
                for c in 0..<3 {
                    out[(y * w + x) * 3 + c] = UInt8(min(255, max(0, (Double(src[(ys * w + xs) * 3 + c]) * gain).rounded())))
                }
            }
        }
        if blur {
            var b = out
            for y in 1..<(h - 1) {
                for x in 1..<(w - 1) {
                    for c in 0..<3 {
                        var s = 0
                        for j in -1...1 { for i in -1...1 { s += Int(out[((y + j) * w + x + i) * 3 + c]) } }
                        b[(y * w + x) * 3 + c] = UInt8(s / 9)
                    }
                }
            }
            out = b
        }
        return try Image(bgr: out, width: w, height: h)
    }

}

let jitters: [(dx: Double, dy: Double, scale: Double, gain: Double, blur: Bool)] = [
    (0.03, 0.02, 0.95, 1.0, false), (-0.03, -0.02, 1.06, 0.85, false), (0.0, 0.03, 1.0, 0.75, true),
    (0.02, -0.03, 1.03, 1.2, false), (-0.02, 0.0, 0.97, 1.0, true), (0.04, 0.0, 1.08, 0.9, false),
]

extension Frames {
    /// The face nearest the image centre (the set's label belongs to it), measured.
    static func centreFace(_ engine: FaceEngine, _ image: Image) throws -> LabelledIdentity.Frame? {
        let found = try engine.detect(in: image)
        let cx = Double(image.width) / 2, cy = Double(image.height) / 2
        guard
            let face = found.min(by: {
                hypot($0.box.centerX - cx, $0.box.centerY - cy) < hypot($1.box.centerX - cx, $1.box.centerY - cy)
            })
        else { return nil }
        let points = try engine.landmarks(in: image, box: face.box, score: face.score)
        let q = try engine.quality(in: image, box: face.box, score: face.score, landmarks: points)
        let d = try engine.descriptor(in: image, landmarks: points)
        return LabelledIdentity.Frame(box: face.box, quality: q, descriptor: d.values)
    }
}

// MARK: - Embeddings (cached)

final class Results: @unchecked Sendable {
    let lock = NSLock()
    var photos: [String: LabelledIdentity.Photo] = [:]
    var failures: [String] = []
}

let cacheDir = root + "/.build/accuracy-cache"
let setKey: String = {
    // The cache belongs to these files (names and sizes), this many frames and this engine build.
    var h: UInt64 = 1469598103934665603
    func mix(_ s: String) { for b in s.utf8 { h = (h ^ UInt64(b)) &* 1099511628211 } }
    for p in people {
        for f in p.files {
            mix(f)
            mix("\((try? FileManager.default.attributesOfItem(atPath: setDir + "/" + f)[.size] as? Int) ?? 0)")
        }
    }
    mix("frames=\(framesPerPhoto)")
    mix("detector=\(engineOptions.detector)")
    // ... and this face engine: the shim's and the wrapper's sources, and the model manifest.
    for f in [
        "Sources/COpenCV/shim.cpp", "Sources/FaceEngine/Face.swift", "Sources/FaceEngine/FaceEngine.swift", "Models/manifest.tsv",
    ] {
        mix((try? String(contentsOfFile: root + "/" + f, encoding: .utf8)) ?? f)
    }
    return String(h, radix: 16)
}()
let cachePath = cacheDir + "/" + setKey + ".json"

var identities: [LabelledIdentity]
print("cache: \(cachePath)")
if let data = FileManager.default.contents(atPath: cachePath),
    let cached = try? JSONDecoder().decode([LabelledIdentity].self, from: data)
{
    identities = cached
    print("embeddings: from the cache \(cachePath)")
} else {
    let results = Results()
    let all = people.flatMap { p in p.files.map { $0 } }
    let workers = max(1, min(2, ProcessInfo.processInfo.activeProcessorCount))
    let started = Date()
    let models = ModelPaths(directory: root + "/Models")
    DispatchQueue.concurrentPerform(iterations: workers) { worker in
        let engine: FaceEngine
        do { engine = try FaceEngine(models: models, options: engineOptions) } catch {
            results.lock.lock(); results.failures.append("engine: \(error)"); results.lock.unlock()
            return
        }
        var i = worker
        while i < all.count {
            let file = all[i]
            var frames: [LabelledIdentity.Frame?] = []
            do {
                let image = try Image(contentsOf: setDir + "/" + file)
                frames.append(try Frames.centreFace(engine, image))
                for j in jitters.prefix(max(0, framesPerPhoto - 1)) {
                    frames.append(
                        try Frames.centreFace(
                            engine, Frames.jittered(image, dx: j.dx, dy: j.dy, scale: j.scale, gain: j.gain, blur: j.blur)))
                }
            } catch {
                results.lock.lock(); results.failures.append("\(file): \(error)"); results.lock.unlock()
            }
            results.lock.lock(); results.photos[file] = LabelledIdentity.Photo(file: file, frames: frames); results.lock.unlock()
            if worker == 0 && (i / workers) % 50 == 0 {
                FileHandle.standardError.write(
                    Data("  embedded \(i + 1) of \(all.count) photos (\(Int(Date().timeIntervalSince(started))) s)\n".utf8))
            }
            i += workers
        }
    }
    for f in results.failures { print("  not read: \(f)") }
    identities = people.map { p in
        LabelledIdentity(
            name: p.name, eastAsian: p.eastAsian, photos: p.files.map { results.photos[$0] ?? .init(file: $0, frames: []) })
    }
    let seconds = Date().timeIntervalSince(started)
    print(
        String(
            format: "embeddings: %d photos x %d frames in %.0f s with %d engines (%.0f ms per frame per engine)",
            all.count, framesPerPhoto, seconds, workers, seconds * 1000 * Double(workers) / Double(all.count * framesPerPhoto)))
    try? FileManager.default.createDirectory(
        atPath: cacheDir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
    if let data = try? JSONEncoder().encode(identities) {
        _ = FileManager.default.createFile(atPath: cachePath, contents: data, attributes: [.posixPermissions: 0o600])
    }
}

// MARK: - Detection

do {
    let photos = identities.flatMap(\.photos)
    let found = photos.filter { ($0.frames.first ?? nil) != nil }.count
    let frames = photos.flatMap(\.frames)
    print(
        "\ndetection: a face near the centre in \(found) of \(photos.count) photos; \(frames.compactMap { $0 }.count) of \(frames.count) frames"
    )
}

// MARK: - Pairs

let descriptorOf: [String: [Float]] = Dictionary(
    uniqueKeysWithValues: identities.flatMap(\.photos).compactMap { p in
        (p.frames.first ?? nil).map { (p.file, $0.descriptor) }
    })
let eastAsianPerson = Dictionary(uniqueKeysWithValues: identities.map { ($0.name, $0.eastAsian) })

struct Pair { var a: String; var b: String; var same: Bool; var eastAsian: Bool }
var pairs: [Pair] = []
if FileManager.default.fileExists(atPath: setDir + "/pairs.csv") {
    pairs = try csvRows(setDir + "/pairs.csv").compactMap { r in
        guard let a = r["img_a"], let b = r["img_b"] else { return nil }
        return Pair(a: a, b: b, same: r["same"] == "1", eastAsian: r["east_asian"] == "1")
    }
} else {
    // Every pair of photos: same-person pairs, different-person pairs (East-Asian when both are).
    let all = identities.flatMap { id in id.photos.map { (id.name, $0.file) } }
    for i in all.indices {
        for j in (i + 1)..<all.count {
            pairs.append(
                Pair(
                    a: all[i].1, b: all[j].1, same: all[i].0 == all[j].0,
                    eastAsian: (eastAsianPerson[all[i].0] ?? false) && (eastAsianPerson[all[j].0] ?? false)))
        }
    }
}

let measured = pairs.compactMap { p -> (pair: Pair, distance: Float)? in
    guard let a = descriptorOf[p.a], let b = descriptorOf[p.b] else { return nil }
    return (p, (try? Embedding.distance(Embedding(a), Embedding(b))) ?? .infinity)
}
print("\npairs: \(measured.count) of \(pairs.count) measured (both photos with a face)")
print("accept rate per threshold (a pair is accepted when its L2 distance is under the threshold)")
print("threshold | all: same  different | East-Asian: same  different | others: same  different")
func pct(_ x: Double) -> String { String(format: "%5.1f %%", x * 100) }
for step in 0...16 {
    let t = Float(0.30) + Float(step) * 0.025
    let all = PairRates.measure(measured.map { ($0.distance, $0.pair.same) }, threshold: t)
    let ea = PairRates.measure(measured.filter { $0.pair.eastAsian }.map { ($0.distance, $0.pair.same) }, threshold: t)
    let other = PairRates.measure(measured.filter { !$0.pair.eastAsian }.map { ($0.distance, $0.pair.same) }, threshold: t)
    print(
        String(
            format: "  %.3f   |   %@  %@    |   %@  %@        |   %@  %@", t,
            pct(all.sameRate), pct(all.differentRate), pct(ea.sameRate), pct(ea.differentRate),
            pct(other.sameRate), pct(other.differentRate)))
}
do {
    let ea = measured.filter { $0.pair.eastAsian }
    let s = PairRates.measure(ea.map { ($0.distance, $0.pair.same) }, threshold: 0)
    print(
        "  (East-Asian pairs: \(s.same) same, \(s.different) different; all: \(measured.filter(\.pair.same).count) same, \(measured.filter { !$0.pair.same }.count) different)"
    )
}

// MARK: - 1:N gate simulation

let defaults = AttendanceConfig().recognition
// REEMBED_EVERY=N: the tracker re-embeds an undecided track every N frames instead of the rules' own interval (#16
// changed it from 3 to 1: compare both on the same cached embeddings). ACCURACY_QUICK=1: only the default
// policy's lines (no sweep, no enrolment strategies, no liveness section).
let reembedEvery = ProcessInfo.processInfo.environment["REEMBED_EVERY"].flatMap(Int.init)
let accuracyQuick = ProcessInfo.processInfo.environment["ACCURACY_QUICK"] == "1"
func interval(_ rules: RecognitionRules) -> RecognitionRules {
    var r = rules
    if let n = reembedEvery { r.reembedEveryFrames = n }
    return r
}
func policy(threshold: Float, margin: Float, votes: Int, lookalikeMargin: Float, extraVotes: Int) -> RecognitionRules {
    var c = defaults
    c.threshold = threshold; c.minMargin = margin; c.votes = votes
    c.lookalikeMargin = lookalikeMargin; c.lookalikeExtraVotes = extraVotes
    return RecognitionRules(c)
}

func line(_ t: TrackTally) -> String {
    let n = max(1, t.tracks)
    return String(
        format: "%4d tracks: correct %5.1f %%  wrong %4d (%.2f %%)  unknown %5.1f %%",
        t.tracks, Double(t.correct) * 100 / Double(n), t.wrong, Double(t.wrong) * 100 / Double(n),
        Double(t.unknown) * 100 / Double(n))
}

print("\n1:N gate simulation: each identity enrolled from its first E photos; every other photo is a track of 30 frames")
print("(2 s at 15 frames/s) cycling the photo and its jittered copies through FaceTracker and EnrolledFaces.Index;")
print("strangers: each identity's photos against a gallery without it (any record is wrong).")
let sweep: [(String, RecognitionRules)] = [
    (
        "dlib 0.6, margin 0.05, 3 votes (before)",
        policy(threshold: 0.6, margin: 0.05, votes: 3, lookalikeMargin: 0.05, extraVotes: 0)
    ),
    ("0.55, margin 0.05", policy(threshold: 0.55, margin: 0.05, votes: 3, lookalikeMargin: 0.05, extraVotes: 0)),
    ("0.50, margin 0.05", policy(threshold: 0.50, margin: 0.05, votes: 3, lookalikeMargin: 0.05, extraVotes: 0)),
    ("0.475, margin 0.05", policy(threshold: 0.475, margin: 0.05, votes: 3, lookalikeMargin: 0.05, extraVotes: 0)),
    ("0.45, margin 0.05", policy(threshold: 0.45, margin: 0.05, votes: 3, lookalikeMargin: 0.05, extraVotes: 0)),
    ("0.45, margin 0.08 for everyone", policy(threshold: 0.45, margin: 0.08, votes: 3, lookalikeMargin: 0.08, extraVotes: 0)),
    ("0.40, margin 0.05", policy(threshold: 0.40, margin: 0.05, votes: 3, lookalikeMargin: 0.05, extraVotes: 0)),
    (
        "0.50, margin 0.05, look-alikes 0.07",
        policy(threshold: 0.50, margin: 0.05, votes: 3, lookalikeMargin: 0.07, extraVotes: 0)
    ),
    (
        "0.475, margin 0.05, look-alikes 0.07",
        policy(threshold: 0.475, margin: 0.05, votes: 3, lookalikeMargin: 0.07, extraVotes: 0)
    ),
    (
        "0.45, margin 0.05, look-alikes 0.07",
        policy(threshold: 0.45, margin: 0.05, votes: 3, lookalikeMargin: 0.07, extraVotes: 0)
    ),
    (
        "0.45, margin 0.05, look-alikes 0.07 and +1 vote",
        policy(threshold: 0.45, margin: 0.05, votes: 3, lookalikeMargin: 0.07, extraVotes: 1)
    ),
    (
        "0.45, margin 0.05, look-alikes 0.10 and +1 vote",
        policy(threshold: 0.45, margin: 0.05, votes: 3, lookalikeMargin: 0.10, extraVotes: 1)
    ),
    (
        "0.45, margin 0.05, 5 votes, look-alikes 0.07",
        policy(threshold: 0.45, margin: 0.05, votes: 5, lookalikeMargin: 0.07, extraVotes: 0)
    ),
    ("the default (config)", RecognitionRules(defaults)),
]
for enrol in accuracyQuick ? [] : [1, 2, 3] {
    print("\nE = \(enrol) photo(s) enrolled per identity")
    for (name, rules) in sweep {
        let r = try GateSimulation(rules: interval(rules), enrolPerIdentity: enrol).run(identities)
        print("  \(name)")
        print("    enrolled   all: \(line(r.enrolled))   East-Asian: \(line(r.enrolledEastAsian))")
        print("    strangers  all: \(line(r.strangers))   East-Asian: \(line(r.strangersEastAsian))")
    }
}

// MARK: - Enrolment advice: more photos, or learning from confident gate sightings

if !accuracyQuick {
    let rules = interval(RecognitionRules(defaults))
    print("\nenrolment (default policy), the same tracks (each identity's 3rd photo on) for every strategy:")
    func show(_ name: String, _ r: GateSimulation.Report) {
        print("  \(name)")
        print("    enrolled   all: \(line(r.enrolled))   East-Asian: \(line(r.enrolledEastAsian))")
        print("    strangers  all: \(line(r.strangers))   East-Asian: \(line(r.strangersEastAsian))")
    }
    var one = GateSimulation(rules: rules, enrolPerIdentity: 1)
    one.firstProbe = 2
    show("1 photo enrolled", try one.run(identities))
    var learn = GateSimulation(rules: rules, enrolPerIdentity: 1)
    learn.learnFromSightings = true
    let learned = try learn.run(identities)
    show(
        "1 photo enrolled + the 2nd photo learned as a gate sighting when the gate decided it rightly (\(learned.learned) learned, \(learned.refusedSightings) wrong sightings refused by the teacher)",
        learned)
    var two = GateSimulation(rules: rules, enrolPerIdentity: 2)
    two.firstProbe = 2
    show("2 photos enrolled", try two.run(identities))
}

// MARK: - The default policy, one line per part

let enrolDefault = 2
let final = try GateSimulation(rules: interval(RecognitionRules(defaults)), enrolPerIdentity: enrolDefault).run(identities)
print("re-embed an undecided track every \(interval(RecognitionRules(defaults)).reembedEveryFrames) frame(s)")
print(
    "\ndefault policy: threshold \(defaults.threshold), margin \(defaults.minMargin), \(defaults.votes) votes; look-alikes margin \(defaults.lookalikeMargin), +\(defaults.lookalikeExtraVotes) vote; \(enrolDefault) photos enrolled"
)
print(
    "(tracks: enrolled people presenting their other photos; strangers, each against a gallery without them, on the line before)")
for (part, s) in [("all", final.strangers), ("east_asian", final.strangersEastAsian)] {
    print("strangers part=\(part) tracks=\(s.tracks) wrong=\(s.wrong) unknown=\(s.unknown)")
}
for (part, t) in [("all", final.enrolled), ("east_asian", final.enrolledEastAsian)] {
    print(
        String(
            format: "accuracy part=%@ tracks=%d correct=%d wrong=%d unknown=%d threshold=%.3f", part, t.tracks, t.correct,
            t.wrong, t.unknown, defaults.threshold))
}

// MARK: - Liveness

if !accuracyQuick { try LivenessBench.run(people: people, setDir: setDir, root: root) }
