// Per-stage cost of the face engine at 640x480 (decode, detect, landmarks, embed, liveness) and the
// engine's start-up (model load), medians of several runs. `make bench-face` runs it.
import FaceEngine
import Foundation

func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e6 }
func median(_ xs: [Double]) -> Double { let s = xs.sorted(); return s.isEmpty ? .nan : s[s.count / 2] }

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
for _ in 0..<runs {
    let t0 = now()
    let image = try Image(encoded: bytes)
    let t1 = now()
    let found = try engine.detect(in: image)
    let t2 = now()
    guard let best = found.first else { fatalError("no face in the benchmark image") }
    let points = try engine.landmarks(in: image, box: best.box, score: best.score)
    let t3 = now()
    _ = try engine.descriptor(in: image, landmarks: points)
    let t4 = now()
    let check = try liveness.check(best.box, in: image)
    live.append(now() - t4)
    if case .checked(let r) = check { verdict = String(format: "real score %.3f", r.real) } else { verdict = "not checkable" }
    decode.append(t1 - t0); detect.append(t2 - t1); landmarks.append(t3 - t2); embed.append(t4 - t3); total.append(t4 - t0)
}
print("face-bench: \(source) as 640x480 JPEG, \(runs) runs, medians")
print(String(format: "  model load   %8.1f ms", median(loads)))
print(String(format: "  decode       %8.2f ms", median(decode)))
print(String(format: "  detect       %8.2f ms  (res10 SSD 300x300)", median(detect)))
print(String(format: "  landmarks    %8.2f ms  (HOG box refinement + shape_predictor_5)", median(landmarks)))
print(String(format: "  embed        %8.2f ms  (chip + ResNet)", median(embed)))
print(String(format: "  total        %8.2f ms per face", median(total)))
print(String(format: "  liveness     %8.2f ms per check (MiniFASNet V2 + V1SE, 80x80, batch 1; %@)", median(live), verdict))
