import CaptureKit
import FaceEngine
import Foundation
import Glibc
import XCTest

@testable import Attendance
@testable import AttendanceCore

/// The motion gate on real pictures: the replays' gate scene with sensor noise, a sample photo walking in or
/// standing still, the light switched on, the camera bumped. Verdicts are the known answers (no timing).
final class MotionGateTests: XCTestCase {
    let fps = 15.0
    var scene: Image!
    var person: Image!

    override func setUpWithError() throws {
        guard FileManager.default.fileExists(atPath: SourceTree.samples + "/obama2.jpg") else {
            throw XCTSkip("run `make testdata`")
        }
        var script = ReplayScript(duration: 1, passages: [])
        script.background = .scene
        scene = try script.makeBackground()
        person = try Image(contentsOf: SourceTree.samples + "/obama2.jpg").resized(width: 120, height: 150)
    }

    /// Frame n: the scene, the person at (x, y) if any, the light's gain, fresh sensor noise (sigma 3).
    func frame(_ n: Int, personAt position: (x: Int, y: Int)? = nil, gain: Float = 1, shift: Int = 0) throws -> [UInt8] {
        let f = try Image(width: 640, height: 480)
        try f.paste(scene, x: shift, y: shift / 2)
        if let p = position { try f.paste(person, x: p.x, y: p.y) }
        if gain != 1 { try f.adjust(gain: gain) }
        try f.addNoise(sigma: 3, seed: UInt64(1000 + n))
        return f.bgrBytes
    }

    /// Two gates with the same settings, one shown the frames as BGR pixels, the other as the JPEG an MJPEG camera
    /// would send (its thumbnail decoded at 1/8 scale, the picture never decoded): they must decide alike.
    struct Gates {
        var bgr: MotionGate
        var jpeg: MotionGate
        init(settings: AttendanceConfig.Capture) {
            bgr = MotionGate(settings: settings)
            jpeg = MotionGate(settings: settings)
        }
        var lastChangedArea: Float { bgr.lastChangedArea }
    }

    func look(
        _ gates: inout Gates, _ pixels: [UInt8], frame n: Int, tracks: Bool = false, settled: Bool = false,
        line: UInt = #line
    ) throws -> MotionGate.Verdict {
        let time = Double(n) / fps
        let bgr = Frame(
            cameraID: "gate", sequence: UInt64(n), deviceSequence: UInt64(n), width: 640, height: 480, pixels: pixels,
            driverTimestamp: nil, capturedAt: .now(), wallTime: Date())
        let path = FileManager.default.temporaryDirectory.path + "/motion-gate-\(ProcessInfo.processInfo.processIdentifier).jpg"
        defer { unlink(path) }
        try Image(bgr: pixels, width: 640, height: 480).write(to: path)
        let jpeg = try Frame(
            cameraID: "gate", sequence: UInt64(n), deviceSequence: UInt64(n), width: 640, height: 480,
            jpeg: [UInt8](try Data(contentsOf: URL(fileURLWithPath: path))), driverTimestamp: nil, capturedAt: .now(),
            wallTime: Date())
        XCTAssertNil(bgr.jpeg)
        XCTAssertNotNil(jpeg.jpeg)
        let verdict = gates.bgr.look(bgr, at: time, tracksAlive: tracks, tracksSettled: settled)
        let fromJPEG = gates.jpeg.look(jpeg, at: time, tracksAlive: tracks, tracksSettled: settled)
        XCTAssertEqual(
            fromJPEG, verdict,
            "frame \(n): the JPEG's thumbnail changed \(gates.jpeg.lastChangedArea), the pixels' \(gates.bgr.lastChangedArea)",
            line: line)
        return verdict
    }

    /// The default settings, but looking at every frame while idle (the tests below count frames; the idle rate has
    /// a test of its own).
    func everyFrame() -> AttendanceConfig.Capture {
        var settings = AttendanceConfig.Capture()
        settings.idleLookFPS = 0
        return settings
    }

    /// The gates with the detector's idle rate at once a second (the default).
    func onceASecond() -> Gates {
        var settings = everyFrame()
        settings.idleDetectSeconds = 1
        return Gates(settings: settings)
    }

    func testAnEmptyNoisySceneRunsTheDetectorOnceASecond() throws {
        var gate = onceASecond()
        var verdicts: [MotionGate.Verdict] = []
        // Ten seconds, the light drifting slowly by up to 5 % (a cloud, the morning sun).
        for n in 0..<150 {
            let gain = 1 + 0.05 * Float(sin(Double(n) / 150 * Double.pi))
            verdicts.append(try look(&gate, try frame(n, gain: gain), frame: n))
        }
        XCTAssertEqual(verdicts[0], .first)
        XCTAssertFalse(verdicts.contains(.motion), "sensor noise and a slow drift are not motion (\(gate.lastChangedArea))")
        XCTAssertEqual(verdicts.indices.filter { verdicts[$0] == .idleCheck }, [15, 30, 45, 60, 75, 90, 105, 120, 135])
        XCTAssertEqual(verdicts.filter(\.runsDetector).count, 10, "once a second, the first frame included")
    }

    /// #16: while every followed face is settled the detector runs on one frame in `settledDetectEvery`, however much
    /// they move; an undecided face brings it back to every frame at once.
    func testSettledFacesRunTheDetectorOnOneFrameInThree() throws {
        var settings = everyFrame()
        settings.settledDetectEvery = 3
        var gate = Gates(settings: settings)
        var verdicts: [MotionGate.Verdict] = []
        for n in 0..<12 {
            // The decided person walks across the frame: motion on every frame.
            let pixels = try frame(n, personAt: (x: 100 + 20 * n, y: 150))
            verdicts.append(try look(&gate, pixels, frame: n, tracks: n > 0, settled: n > 0))
        }
        XCTAssertEqual(verdicts[0], .first)
        XCTAssertEqual(verdicts.indices.filter { verdicts[$0].runsDetector }, [0, 3, 6, 9], "\(verdicts)")
        XCTAssertEqual(verdicts[1], .settled)
        let undecided = try look(&gate, try frame(12, personAt: (x: 340, y: 150)), frame: 12, tracks: true)
        XCTAssertEqual(undecided, .tracking, "a face waiting for votes: every frame")
    }

    func testSomeoneWalkingInIsMotionOnEveryFrame() throws {
        var gate = Gates(settings: everyFrame())
        for n in 0..<5 { _ = try look(&gate, try frame(n), frame: n) }
        var verdicts: [MotionGate.Verdict] = []
        for n in 5..<25 {
            verdicts.append(try look(&gate, try frame(n, personAt: (x: 10 + (n - 5) * 12, y: 150)), frame: n))
        }
        XCTAssertEqual(verdicts, Array(repeating: .motion, count: 20))
    }

    func testAFaceStandingStillIsStillLookedAtOnceASecond() throws {
        var gate = onceASecond()
        for n in 0..<5 { _ = try look(&gate, try frame(n), frame: n) }
        var verdicts: [MotionGate.Verdict] = []
        for n in 5..<50 { verdicts.append(try look(&gate, try frame(n, personAt: (x: 260, y: 160)), frame: n)) }
        // Appears at frame 5 (motion), held 0.5 s (7 more frames), then still, looked at once a second.
        XCTAssertEqual(Array(verdicts[0...7]), Array(repeating: .motion, count: 8))
        XCTAssertEqual(verdicts[8], .still)
        XCTAssertEqual(verdicts.indices.filter { verdicts[$0] == .idleCheck }.map { $0 + 5 }, [27, 42])
    }

    func testFollowedFacesKeepTheDetectorOnEveryFrame() throws {
        var gate = Gates(settings: everyFrame())
        let still = try frame(0, personAt: (x: 260, y: 160))
        _ = try look(&gate, still, frame: 0)
        let verdicts = try (1..<30).map { try look(&gate, still, frame: $0, tracks: true) }
        XCTAssertEqual(verdicts, Array(repeating: .tracking, count: 29))
    }

    func testTheLightSwitchedOnDoesNotKeepTheDetectorRunning() throws {
        var gate = onceASecond()
        for n in 0..<20 { _ = try look(&gate, try frame(n, gain: 0.55), frame: n) }
        var verdicts: [MotionGate.Verdict] = []
        for n in 20..<50 { verdicts.append(try look(&gate, try frame(n, gain: 1.0), frame: n)) }
        let runs = verdicts.filter(\.runsDetector).count
        XCTAssertLessThanOrEqual(runs, 1 + 7 + 2, "at most the hold after the switch and the idle checks: \(verdicts)")
        XCTAssertEqual(Array(verdicts[10...]).filter { $0 == .motion }, [], "back to still within a second: \(verdicts)")
    }

    func testABumpedCameraIsRebaselinedNotMotion() throws {
        var gate = Gates(settings: everyFrame())
        for n in 0..<10 { _ = try look(&gate, try frame(n), frame: n) }
        // The picture jumps by 14 px right and 7 down, and stays there.
        let bumped = try look(&gate, try frame(10, shift: 14), frame: 10)
        XCTAssertEqual(bumped, .rebaselined, "changed \(gate.lastChangedArea) of the picture")
        let after = try (11..<20).map { try look(&gate, try frame($0, shift: 14), frame: $0) }
        XCTAssertFalse(after.contains(.motion), "\(after)")
    }

    /// #16: an idle gate looks at 8 frames a second (one in two at 15 frames/s, one in four at 30), the idle
    /// detector pass still once a second; someone walking in is motion at the next frame looked at, and from then on
    /// every frame is looked at until the hold time has passed.
    func testAnIdleGateLooksAtEightFramesASecond() throws {
        for (rate, every) in [(15.0, 2), (30.0, 4)] {
            var settings = AttendanceConfig.Capture()
            XCTAssertEqual(settings.idleLookFPS, 8)
            settings.idleDetectSeconds = 1
            var gate = MotionGate(settings: settings)
            var verdicts: [MotionGate.Verdict] = []
            for n in 0..<Int(2 * rate) {
                let pixels = try frame(n)
                let f = Frame(
                    cameraID: "gate", sequence: UInt64(n), deviceSequence: UInt64(n), width: 640, height: 480,
                    pixels: pixels, driverTimestamp: nil, capturedAt: .now(), wallTime: Date())
                verdicts.append(gate.look(f, at: Double(n) / rate, tracksAlive: false))
            }
            let looked = verdicts.indices.filter { verdicts[$0] != .unlooked }
            XCTAssertEqual(
                looked, Array(stride(from: 0, to: Int(2 * rate), by: every)), "\(rate) frames/s: one frame in \(every)")
            // Once a second: at the first frame looked at after it.
            let second = try XCTUnwrap(looked.first { Double($0) / rate >= 1 - 1e-6 })
            XCTAssertEqual(verdicts.indices.filter { verdicts[$0] == .idleCheck }, [second], "\(rate): once a second")
            // Someone walks in at frame 2 s + 1 (a frame not looked at): motion at the next one looked at, then every
            // frame while they walk.
            var after: [MotionGate.Verdict] = []
            for n in Int(2 * rate) + 1..<Int(2 * rate) + 12 {
                let f = Frame(
                    cameraID: "gate", sequence: UInt64(n), deviceSequence: UInt64(n), width: 640, height: 480,
                    pixels: try frame(n, personAt: (x: 10 + 12 * n % 500, y: 150)), driverTimestamp: nil, capturedAt: .now(),
                    wallTime: Date())
                after.append(gate.look(f, at: Double(n) / rate, tracksAlive: false))
            }
            let first = try XCTUnwrap(after.firstIndex(of: .motion), "\(rate): \(after)")
            XCTAssertLessThan(first, every, "\(rate): noticed within 1/8 s: \(after)")
            XCTAssertEqual(Array(after[first...]), Array(repeating: .motion, count: after.count - first), "\(rate)")
        }
    }

    func testTheChangedAreaIgnoresAUniformBrightnessShift() {
        let a = [UInt8](repeating: 100, count: 100)
        var b = [UInt8](repeating: 130, count: 100)
        XCTAssertEqual(MotionGate.changedArea(a, b, threshold: 10), 0)
        for i in 0..<5 { b[i] = 220 }
        XCTAssertEqual(MotionGate.changedArea(a, b, threshold: 10), 0.05, accuracy: 1e-6)
    }
}
