// pipeline-bench: the whole gate pipeline on the replays of #16, played in real time like cameras.
//
//   pipeline-bench            (make bench-pipeline; run from the checkout)
//
// For each scenario (GateScenario: empty gate, steady arrivals, the morning rush), source frame rate
// (15, 30) and camera count (1, 2), it composes the replay from the sample images (cached under
// out/bench-pipeline), builds the demo school (its enrolled students, the stranger), replays the videos
// through GateDaemon at their own frame rate with latest-frame delivery, and measures: CPU seconds of the
// process (getrusage, user + sys) per second of video per camera, frames dropped, the known answer
// (ReplayAnswer), decision latency (from the arrival of a face's first frame to its stored record), and
// embeddings computed. face_recognition 1.3.0 runs on frames of the same videos (steady, rush) for the
// ratio of frames per CPU second. Ends with one line per run:
//   pipeline scenario=S cameras=C fps=F cpu_per_camera=X dropped=D recorded=R expected=E wrong=W p50_ms=A p95_ms=B [vs_face_recognition=Z]
//
// Environment: BENCH_QUICK=1 (the empty gate 60 s instead of 600, steady and rush 30 s instead of 60),
// BENCH_EMPTY_SECONDS, BENCH_SECONDS (override those), BENCH_SCENARIOS=empty,steady,rush, BENCH_FPS=15,30,
// BENCH_CAMERAS=1,2, BENCH_PYTHON (face_recognition's interpreter; unset: not run), BENCH_FR_FRAMES (60),
// BENCH_MOTION_GATE=0 (every frame through the detector, as before #16), BENCH_IDLE_DETECT_SECONDS,
// BENCH_SETTLED_DETECT_EVERY (1: the detector on every frame while any face is followed, as before),
// BENCH_IDLE_LOOK_FPS (capture.idle_look_fps; 0: the motion gate looks at every frame, as before the fourth round),
// BENCH_LIVENESS=off|flag|enforce (recognition.liveness; default flag, the gate's default).
// BENCH_DETECTOR=yunet|res10 (recognition.detector; default the config's).

import Attendance
import AttendanceCore
import CaptureKit
import FaceEngine
import Foundation
import Glibc
import Logging

// OpenBLAS's own kernels for this CPU (a restart when it fell back to its generic ones), as `attendance` does.
FaceEngine.restartWithNativeBLASKernelsIfNeeded()
let env = ProcessInfo.processInfo.environment
let quick = env["BENCH_QUICK"] == "1"
@MainActor func list<T>(_ key: String, _ def: [T], _ parse: (String) -> T?) -> [T] {
    guard let v = env[key], !v.isEmpty else { return def }
    return v.split(separator: ",").compactMap { parse(String($0).trimmingCharacters(in: .whitespaces)) }
}
let scenarios = list("BENCH_SCENARIOS", GateScenario.allCases) { GateScenario(rawValue: $0) }
let rates = list("BENCH_FPS", [15.0, 30.0]) { Double($0) }
let cameraCounts = list("BENCH_CAMERAS", [1, 2]) { Int($0) }
let emptySeconds = env["BENCH_EMPTY_SECONDS"].flatMap(Double.init) ?? (quick ? 60 : GateScenario.empty.defaultDuration)
let seconds = env["BENCH_SECONDS"].flatMap(Double.init) ?? (quick ? 30 : GateScenario.steady.defaultDuration)
let python = env["BENCH_PYTHON"].flatMap { $0.isEmpty ? nil : $0 }
let frFrames = env["BENCH_FR_FRAMES"].flatMap(Int.init) ?? 60
// The motion gate's settings, to measure without it (BENCH_MOTION_GATE=0) or at another idle rate.
let motionGate = env["BENCH_MOTION_GATE"] != "0"
let idleSeconds = env["BENCH_IDLE_DETECT_SECONDS"].flatMap(Double.init)
let settledEvery = env["BENCH_SETTLED_DETECT_EVERY"].flatMap(Int.init)
let idleLookFPS = env["BENCH_IDLE_LOOK_FPS"].flatMap(Double.init)
let liveness = env["BENCH_LIVENESS"].flatMap(AttendanceConfig.LivenessMode.init(rawValue:)) ?? .flag
// recognition.detector (default: the config's, yunet).
let detector =
    env["BENCH_DETECTOR"].flatMap(AttendanceConfig.FaceDetector.init(rawValue:)) ?? AttendanceConfig().recognition.detector
let samples = ".testdata"
let out = "out/bench-pipeline"
let models = ModelPaths.discover()
let day = LocalDate(year: 2026, month: 11, day: 23)
let tz = TimeZone(identifier: "Asia/Ho_Chi_Minh")!
// 06:50: every arrival is a check-in, present (school starts at 07:00).
let start = day.at(LocalTime(hour: 6, minute: 50), in: tz)

LoggingSystem.bootstrap { label in
    var h = StreamLogHandler.standardError(label: label)
    h.logLevel = .warning
    return h
}

func cpuSeconds() -> Double {
    var u = rusage()
    getrusage(RUSAGE_SELF.rawValue, &u)
    return Double(u.ru_utime.tv_sec) + Double(u.ru_utime.tv_usec) / 1e6 + Double(u.ru_stime.tv_sec)
        + Double(u.ru_stime.tv_usec) / 1e6
}

func percentile(_ values: [Double], _ p: Double) -> Double? {
    guard !values.isEmpty else { return nil }
    let sorted = values.sorted()
    let rank = p * Double(sorted.count - 1)
    let lo = Int(rank.rounded(.down)), hi = Int(rank.rounded(.up))
    return sorted[lo] + (sorted[hi] - sorted[lo]) * (rank - Double(lo))
}

/// Events collected from the cameras' tasks.
final class Collected: @unchecked Sendable {
    private let lock = NSLock()
    private var events: [(NewAttendanceEvent, Double)] = []
    private var unknowns = 0
    func add(_ e: NewAttendanceEvent, _ ms: Double) { lock.lock(); events.append((e, ms)); lock.unlock() }
    func unknown() { lock.lock(); unknowns += 1; lock.unlock() }
    var all: (events: [(NewAttendanceEvent, Double)], unknowns: Int) {
        lock.lock(); defer { lock.unlock() }; return (events, unknowns)
    }
}

struct Run {
    var scenario: GateScenario
    var cameras: Int
    var fps: Double
    var videoSeconds: Double
    var cpu: Double
    var frames: Int
    var dropped: UInt64
    var answer: ReplayAnswer
    var latencies: [Double]
    var embeddings: Int
    var detected: Int
    var video: String
    var faceRecognition: Double? // face_recognition's frames per CPU second on this video

    var framesPerCPUSecond: Double { Double(frames) / max(cpu, 1e-9) }
}

var recognition = AttendanceConfig().recognition
recognition.detector = detector
let engine = try FaceEngine(models: models, recognition: recognition)
// The CPU one model load costs (each camera's pipeline loads its own, the daemon one to check): left out.
let loadCPU: Double = try {
    let c0 = cpuSeconds()
    for _ in 0..<3 { _ = try FaceEngine(models: models, recognition: recognition) }
    return (cpuSeconds() - c0) / 3
}()
try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
print(
    "pipeline-bench: \(ProcessInfo.processInfo.activeProcessorCount) cores; scenarios \(scenarios.map(\.rawValue)), "
        + "fps \(rates.map { Int($0) }), cameras \(cameraCounts); empty gate \(Int(emptySeconds)) s, others \(Int(seconds)) s; "
        + "motion gate \(motionGate ? "on" : "off")\(idleSeconds.map { ", idle detection every \($0) s" } ?? "")"
        + "\(settledEvery.map { ", settled faces: the detector on 1 frame in \($0)" } ?? "")"
        + "\(idleLookFPS.map { ", idle: \($0) frames looked at a second" } ?? ""), "
        + "liveness \(liveness.rawValue), detector \(detector.rawValue); "
        + String(format: "a model load costs %.2f CPU s (left out of the figures)", loadCPU))

/// The replay video of a scenario (composed once, kept in out/bench-pipeline).
@MainActor func video(_ scenario: GateScenario, fps: Double, variant: Int) throws -> (path: String, script: ReplayScript) {
    let length = scenario == .empty ? emptySeconds : seconds
    let script = scenario.script(samples: samples, fps: fps, duration: length, variant: variant)
    let path = "\(out)/\(scenario.rawValue)-\(Int(fps))fps-\(Int(length))s-v\(variant).avi"
    if !FileManager.default.fileExists(atPath: path) {
        let c0 = ContinuousClock.now
        try script.write(to: path + ".tmp.avi", engine: engine)
        try FileManager.default.moveItem(atPath: path + ".tmp.avi", toPath: path)
        print("  composed \(path) (\(script.passages.count) passages) in \(ContinuousClock.now - c0)")
    }
    return (path, script)
}

var runs: [Run] = []
for scenario in scenarios {
    for fps in rates {
        for cameras in cameraCounts {
            // The empty gate is the same on every camera; the others see other people at other times.
            let videos = try (0..<cameras).map { try video(scenario, fps: fps, variant: scenario == .empty ? 0 : $0) }
            let dir = "\(out)/run-\(scenario.rawValue)-\(Int(fps))-\(cameras)"
            var demo = try GateDemo.prepare(
                directory: dir, samples: samples, models: models, day: day, cameras: cameras, videos: videos.map(\.path),
                liveness: liveness)
            demo.config.capture.motionGate = motionGate
            demo.config.recognition.detector = detector
            if let s = idleSeconds { demo.config.capture.idleDetectSeconds = s }
            if let n = settledEvery { demo.config.capture.settledDetectEvery = n }
            if let f = idleLookFPS { demo.config.capture.idleLookFPS = f }
            let store = try AttendanceStore.open(config: demo.config)
            var scripts: [String: ReplayScript] = [:]
            for (camera, v) in zip(demo.config.cameras, videos) { scripts[camera.id] = v.script }
            let collected = Collected()
            let c0 = cpuSeconds()
            let w0 = ContinuousClock.now
            let stats = try await demo.replay(
                store: store, models: models, logger: Logger(label: "bench"), pacing: .realtime, start: start, timeScale: 1
            ) { event in
                switch event {
                case let .recorded(e, latency): collected.add(e, Double(latency / .microseconds(1)) / 1000)
                case .unknownFace: collected.unknown()
                default: break
                }
            }
            let cpu = cpuSeconds() - c0 - loadCPU * Double(cameras + 1)
            let wall = ContinuousClock.now - w0
            let (events, unknowns) = collected.all
            let answer = ReplayAnswer(scripts: scripts, events: events.map(\.0), start: start, timeScale: 1)
            let run = Run(
                scenario: scenario, cameras: cameras, fps: fps, videoSeconds: videos[0].script.duration, cpu: cpu,
                frames: stats.reduce(0) { $0 + $1.frames }, dropped: stats.reduce(0) { $0 + $1.droppedFrames },
                answer: answer, latencies: events.map(\.1), embeddings: stats.reduce(0) { $0 + $1.embeddings },
                detected: stats.reduce(0) { $0 + $1.frames - $1.gatedFrames }, video: videos[0].path)
            runs.append(run)
            let faces = stats.reduce(0) { $0 + $1.faces }
            let landmarks = stats.reduce(0) { $0 + $1.landmarkRuns }
            let load =
                (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8))?.split(separator: " ").prefix(3)
                .joined(separator: " ") ?? "?"
            let share = String(
                format: "%.1f CPU s for %.0f s of video (%.1f %% of a core per camera)", cpu, run.videoSeconds,
                100 * cpu / run.videoSeconds / Double(cameras))
            print(
                "  \(scenario.rawValue) fps=\(Int(fps)) cameras=\(cameras): \(share), wall \(wall); frames \(run.frames) delivered, "
                    + "\(run.dropped) dropped, \(run.detected) through the detector, \(faces) faces, \(landmarks) landmark runs, "
                    + "\(run.embeddings) embeddings; records \(events.count) (missed \(answer.missed.sorted())), "
                    + "unknown faces \(unknowns); load \(load)")
        }
    }
}

/// face_recognition on frames of the same video: its frames per CPU second.
@MainActor func faceRecognition(_ video: String) throws -> Double? {
    guard let python else { return nil }
    let p = Process()
    p.executableURL = URL(fileURLWithPath: python)
    p.arguments =
        ["scripts/face_recognition_bench.py", "--max-frames", String(frFrames), video]
        + GateDemo.enrolments.map { samples + "/" + $0.1 }
    let pipe = Pipe()
    p.standardOutput = pipe
    try p.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    let text = String(decoding: data, as: UTF8.self)
    print("  \(video): " + text.trimmingCharacters(in: .whitespacesAndNewlines))
    // "... = 3.10 frames/s, 2.95 frames per CPU second (...)"
    guard let r = text.range(of: " frames per CPU second") else { return nil }
    return Double(text[..<r.lowerBound].split(separator: " ").last ?? "")
}

if python != nil, frFrames > 0 {
    print("face_recognition 1.3.0 on \(frFrames) frames spread over each video (steady, rush):")
    var cache: [String: Double] = [:]
    for i in runs.indices where runs[i].scenario != .empty {
        if cache[runs[i].video] == nil { cache[runs[i].video] = try faceRecognition(runs[i].video) }
        runs[i].faceRecognition = cache[runs[i].video]
    }
}

print("")
for r in runs {
    let p50 = percentile(r.latencies, 0.5).map { String(format: "%.0f", $0) } ?? "-"
    let p95 = percentile(r.latencies, 0.95).map { String(format: "%.0f", $0) } ?? "-"
    var line =
        "pipeline scenario=\(r.scenario.rawValue) cameras=\(r.cameras) fps=\(Int(r.fps)) "
        + String(format: "cpu_per_camera=%.3f", r.cpu / r.videoSeconds / Double(r.cameras))
        + " dropped=\(r.dropped) recorded=\(r.answer.recorded.count) expected=\(r.answer.expected.count) wrong=\(r.answer.wrong)"
        + " p50_ms=\(p50) p95_ms=\(p95)"
    if let fr = r.faceRecognition { line += String(format: " vs_face_recognition=%.1f", r.framesPerCPUSecond / fr) }
    print(line)
}
