// Per-stage cost of the face engine at 640x480 (decode, detect, landmarks, embed, liveness) and the
// engine's start-up (model load), medians of several runs. `make bench-face` runs it.
import FaceEngine
import Foundation

func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e6 }
func median(_ xs: [Double]) -> Double { let s = xs.sorted(); return s.isEmpty ? .nan : s[s.count / 2] }

// OpenBLAS's own kernels for this CPU (a restart when it fell back to its generic ones), as `attendance` does;
// `OPENBLAS_CORETYPE=Prescott make bench-face` measures the generic ones for the comparison.
FaceEngine.restartWithNativeBLASKernelsIfNeeded()
print("OpenBLAS kernels: \(FaceEngine.blasKernels ?? "not OpenBLAS")")
let args = CommandLine.arguments
let source = args.count > 1 ? args[1] : ".testdata/obama.jpg"
let runs = args.count > 2 ? Int(args[2]) ?? 15 : 15

var loads: [Double] = []
var engine: FaceEngine!
for _ in 0..<3 {
    let t = now()
    engine = try FaceEngine()
    loads.append(now() - t)
}

// A 640x480 JPEG made from the sample, so decode is measured at the target size.
let original = try Image(contentsOf: source)
let scale = min(640.0 / Double(original.width), 480.0 / Double(original.height))
let canvas = try Image(width: 640, height: 480, blue: 90, green: 110, red: 120)
let face = try original.resized(width: Int(Double(original.width) * scale), height: Int(Double(original.height) * scale))
try canvas.paste(face, x: (640 - face.width) / 2, y: (480 - face.height) / 2)
let jpeg = NSTemporaryDirectory() + "/face-bench-640x480.jpg"
try canvas.write(to: jpeg)
let bytes = [UInt8](FileManager.default.contents(atPath: jpeg)!)

let liveness = try LivenessChecker()
var decode: [Double] = [], detect: [Double] = [], landmarks: [Double] = [], embed: [Double] = [], total: [Double] = []
var live: [Double] = []
var verdict = ""
var image0: Image!
var best0: (box: FaceBox, score: Float)!
for _ in 0..<runs {
    let t0 = now()
    let image = try Image(encoded: bytes)
    let t1 = now()
    let found = try engine.detect(in: image)
    let t2 = now()
    guard let best = found.first else { fatalError("no face in the benchmark image") }
    image0 = image; best0 = best
    let points = try engine.landmarks(in: image, box: best.box, score: best.score)
    let t3 = now()
    _ = try engine.descriptor(in: image, landmarks: points)
    let t4 = now()
    let check = try liveness.check(best.box, foundBy: engine.detector, in: image)
    live.append(now() - t4)
    if case .checked(let r) = check { verdict = String(format: "real score %.3f", r.real) } else { verdict = "not checkable" }
    decode.append(t1 - t0); detect.append(t2 - t1); landmarks.append(t3 - t2); embed.append(t4 - t3); total.append(t4 - t0)
}
print("face-bench: \(source) as 640x480 JPEG, \(runs) runs, medians")
print(String(format: "  model load   %8.1f ms", median(loads)))
print(String(format: "  decode       %8.2f ms", median(decode)))
print(String(format: "  detect       %8.2f ms", median(detect)) + "  (\(FaceEngine.Options().detector), the default detector)")
print(String(format: "  landmarks    %8.2f ms  (HOG box refinement + shape_predictor_5)", median(landmarks)))
print(String(format: "  embed        %8.2f ms  (chip + ResNet)", median(embed)))
print(String(format: "  total        %8.2f ms per face", median(total)))
print(String(format: "  liveness     %8.2f ms per check (MiniFASNet V2 + V1SE, 80x80, batch 1; %@)", median(live), verdict))

// MARK: - #16: where the detector's time goes, batched embeddings, and the libraries' threads

/// CPU time of the whole process (all threads), milliseconds.
func cpuNow() -> Double {
    var t = timespec()
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t)
    return Double(t.tv_sec) * 1e3 + Double(t.tv_nsec) / 1e6
}
/// Median wall and CPU milliseconds of `body` over `n` runs.
func measure(_ n: Int, _ body: () throws -> Void) rethrows -> (wall: Double, cpu: Double) {
    var wall: [Double] = [], cpu: [Double] = []
    for _ in 0..<n {
        let w0 = now(), c0 = cpuNow()
        try body()
        wall.append(now() - w0); cpu.append(cpuNow() - c0)
    }
    return (median(wall), median(cpu))
}

// A gate frame: four faces of 70-160 px on the grey canvas (none over 35 % of the height: res10 runs once), beside the
// close-up above (a face over 35 % of the frame's height: the padded second pass runs too).
let gate = try Image(width: 640, height: 480, blue: 90, green: 110, red: 120)
let faceSide = max(best0.box.width, best0.box.height), margin = faceSide / 4
let around = try image0.cropped(
    to: FaceBox(
        top: max(0, best0.box.top - margin), right: min(640, best0.box.right + margin),
        bottom: min(480, best0.box.bottom + margin), left: max(0, best0.box.left - margin)))
for (i, size) in [160, 130, 100, 70].enumerated() {
    // One face per quarter of the frame, the box about `size` pixels.
    let s = Double(size) / Double(faceSide)
    let crop = try around.resized(width: Int(Double(around.width) * s), height: Int(Double(around.height) * s))
    try gate.paste(crop, x: (i % 2) * 320 + (320 - crop.width) / 2, y: (i / 2) * 240 + (240 - crop.height) / 2)
}
let gateFaces = try engine.detect(in: gate)
guard !gateFaces.isEmpty else { fatalError("no face found in the composed gate frame") }
let gatePoints = try gateFaces.map { try engine.landmarks(in: gate, box: $0.box, score: $0.score) }
print(
    "\nthreads (OpenCV, OpenBLAS) -> detect close-up | detect gate frame (\(gateFaces.count) faces) | landmarks | embed x\(gatePoints.count) one by one | batched; median wall / CPU ms"
)
let defaults = FaceEngine.setThreads(opencv: nil, blas: nil)
for (cvThreads, blasThreads) in [(defaults.opencv, defaults.blas ?? 0), (1, 1), (2, 1), (1, 2), (2, 2)] {
    let now = FaceEngine.setThreads(opencv: cvThreads, blas: blasThreads)
    let close = try measure(runs) { _ = try engine.detect(in: image0) }
    let small = try measure(runs) { _ = try engine.detect(in: gate) }
    let lm = try measure(runs) { _ = try engine.landmarks(in: gate, box: gateFaces[0].box, score: gateFaces[0].score) }
    let single = try measure(max(3, runs / 3)) { for p in gatePoints { _ = try engine.descriptor(in: gate, landmarks: p) } }
    let batch = try measure(max(3, runs / 3)) { _ = try engine.descriptors(in: gate, landmarks: gatePoints) }
    print(
        String(
            format: "  %d, %@ -> %6.1f / %6.1f | %6.1f / %6.1f | %5.1f / %5.1f | %6.1f / %6.1f | %6.1f / %6.1f", now.opencv,
            now.blas.map { "\($0)" } ?? "-", close.wall, close.cpu, small.wall, small.cpu, lm.wall, lm.cpu, single.wall,
            single.cpu, batch.wall, batch.cpu))
}
let one = try gatePoints.map { try engine.descriptor(in: gate, landmarks: $0).values }
let many = try engine.descriptors(in: gate, landmarks: gatePoints).map(\.values)
let gap = zip(one, many).map { a, b in zip(a, b).map { abs($0 - $1) }.max() ?? 0 }.max() ?? 0
print(String(format: "  batched vs one by one: largest difference %.2g", gap))

// The two network detectors on the same frames, one OpenCV thread (the gate's setting), res10 the anchor (#16).
FaceEngine.setThreads(opencv: 1, blas: 1)
print("\ndetectors (one OpenCV thread): close-up | gate frame (faces found), median CPU ms (wall in brackets)")
var detectorCPU: [DetectorKind: Double] = [:]
for kind in [DetectorKind.res10, .yunet] {
    var options = FaceEngine.Options()
    options.detector = kind
    options.embeddings = false
    let d = try FaceEngine(options: options)
    let close = try measure(runs) { _ = try d.detect(in: image0) }
    let small = try measure(runs) { _ = try d.detect(in: gate) }
    detectorCPU[kind] = small.cpu
    print(
        "  \(kind): "
            + String(
                format: "%6.1f (%6.1f) | %6.1f (%6.1f) (%d faces)", close.cpu, close.wall, small.cpu, small.wall,
                try d.detect(in: gate).count))
}
if let a = detectorCPU[.res10], let b = detectorCPU[.yunet] {
    print(String(format: "  gate frame: res10 / yunet CPU = %.1f", a / max(b, 1e-9)))
}

// The HOG box refinement before the landmarks: face_recognition's way (the crop upsampled, every pyramid level)
// against HOG's pyramid started where the face is still >= 120 px (FaceEngine.Options.scaledRefinement, off by default), per face of the gate frame and the close-up;
// and how far apart the two ways put the descriptors (dlib's metric; the gate's threshold is 0.45-0.6).
var scaledOptions = FaceEngine.Options()
scaledOptions.scaledRefinement = true
let scaledEngine = try FaceEngine(options: scaledOptions)
print(
    "\nbox refinement: face size -> landmarks ms, face_recognition's way / scaled (median CPU ms, wall in brackets) | descriptor distance between them"
)
for (img, face) in gateFaces.map({ (gate, $0) }) + [(image0!, best0!)] {
    let full = try measure(runs) { _ = try engine.landmarks(in: img, box: face.box, score: face.score) }
    let scaled = try measure(runs) { _ = try scaledEngine.landmarks(in: img, box: face.box, score: face.score) }
    let a = try engine.descriptor(in: img, landmarks: engine.landmarks(in: img, box: face.box, score: face.score))
    let b = try scaledEngine.descriptor(in: img, landmarks: scaledEngine.landmarks(in: img, box: face.box, score: face.score))
    print(
        String(
            format: "  %3d px -> %5.1f / %5.1f (%5.1f / %5.1f) | %.4f", max(face.box.width, face.box.height), full.cpu,
            scaled.cpu, full.wall, scaled.wall,
            zip(a.values, b.values).map { ($0 - $1) * ($0 - $1) }.reduce(0, +).squareRoot()))
}
