import FaceEngine
import Foundation
import GRDB
import Logging
import XCTest

@testable import Attendance
@testable import AttendanceCore

/// The replays of `make bench-pipeline` (#16), shortened, through the gate daemon with the motion gate on:
/// their known answers (who is recorded, nobody wrong), never their timing.
final class GateScenarioEndToEndTests: XCTestCase {
    let day = LocalDate(year: 2026, month: 11, day: 23)
    var start: Date { day.at(LocalTime(hour: 6, minute: 50), in: TimeZone(identifier: "Asia/Ho_Chi_Minh")!) }

    func replay(_ script: ReplayScript) async throws -> (answer: ReplayAnswer, stats: PipelineStatistics, store: AttendanceStore)
    {
        guard FileManager.default.fileExists(atPath: SourceTree.samples + "/obama2.jpg") else {
            throw XCTSkip("run `make testdata`")
        }
        let dir = NSTemporaryDirectory() + "scenario-\(UUID().uuidString)"
        addTeardownBlock { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let video = dir + "/replay.avi"
        try script.write(to: video, engine: FaceEngine(models: SourceTree.models))
        let demo = try GateDemo.prepare(
            directory: dir, samples: SourceTree.samples, models: SourceTree.models, day: day, videos: [video])
        let store = try AttendanceStore.open(config: demo.config)
        let events = EventList()
        let stats = try await demo.replay(
            store: store, models: SourceTree.models, logger: Logger(label: "test"), start: start, timeScale: 1
        ) { event in
            if case let .recorded(e, _) = event { events.add(e) }
        }
        XCTAssertEqual(stats.count, 1)
        let answer = ReplayAnswer(scripts: ["gate-1": script], events: events.all, start: start, timeScale: 1)
        return (answer, stats[0], store)
    }

    func assertKnownAnswer(_ answer: ReplayAnswer, _ store: AttendanceStore, file: StaticString = #filePath, line: UInt = #line)
        throws
    {
        XCTAssertEqual(answer.expected, ["7900000001", "7900000003"], "An and Cường pass; the astronaut is a stranger")
        XCTAssertEqual(answer.recorded, answer.expected, "every enrolled student recorded", file: file, line: line)
        XCTAssertEqual(answer.wrong, 0, "nobody recorded who was not there", file: file, line: line)
        let rows = try store.writer.read { db in
            try String.fetchAll(db, sql: "SELECT student_code FROM attendance_event ORDER BY student_code")
        }
        XCTAssertEqual(rows, ["7900000001", "7900000003"], "once each", file: file, line: line)
    }

    func testSteadyArrivalsHaveTheKnownAnswer() async throws {
        let script = GateScenario.steady.script(samples: SourceTree.samples, fps: 10, duration: 12)
        XCTAssertEqual(script.passages.count, 5)
        let (answer, stats, store) = try await replay(script)
        try assertKnownAnswer(answer, store)
        XCTAssertGreaterThanOrEqual(stats.unknowns, 1, "the astronaut is counted as an unknown face")
        // Only new faces cost embeddings: a track is embedded until decided, then re-verified now and then.
        XCTAssertLessThan(stats.embeddings, stats.faces / 2, "\(stats.embeddings) embeddings for \(stats.faces) faces")
        // ... and only the faces of tracks due for an embedding cost landmarks (#16: before, every detected face).
        XCTAssertLessThan(stats.landmarkRuns, stats.faces / 2, "\(stats.landmarkRuns) landmark runs for \(stats.faces) faces")
        XCTAssertGreaterThan(stats.gatedFrames, 0, "the gate kept the empty frames between arrivals from the detector")
    }

    func testTheRushHasTheKnownAnswer() async throws {
        let script = GateScenario.rush.script(samples: SourceTree.samples, fps: 10, duration: 12)
        for t in stride(from: 1.0, to: 8.0, by: 0.5) { // (the last 4 s: the rows empty, nobody enters after)
            XCTAssertGreaterThanOrEqual(script.passages(near: t, slack: 0).count, 3, "3-6 faces at once at \(t) s")
        }
        let (answer, stats, store) = try await replay(script)
        try assertKnownAnswer(answer, store)
        XCTAssertLessThan(stats.embeddings, stats.faces / 2, "\(stats.embeddings) embeddings for \(stats.faces) faces")
        XCTAssertLessThan(stats.landmarkRuns, stats.faces / 2, "\(stats.landmarkRuns) landmark runs for \(stats.faces) faces")
    }

    /// A face the detector finds in every frame but too small to embed costs no embedding and no record.
    func testAFaceNeverEmbeddableCostsNoEmbeddings() async throws {
        var script = ReplayScript(
            duration: 4,
            passages: [.init(image: SourceTree.samples + "/obama2.jpg", from: 0, to: 4, faceSize: 50, student: "7900000001")])
        script.background = .scene
        let (answer, stats, _) = try await replay(script)
        XCTAssertGreaterThan(stats.faces, 20, "the small face is detected in most frames")
        XCTAssertEqual(stats.embeddings, 0)
        XCTAssertEqual(stats.landmarkRuns, 0, "a box under the minimum face size costs no landmarks either")
        XCTAssertEqual(answer.recorded, [])
    }
}

/// Records reported by the pipeline, from any task.
final class EventList: @unchecked Sendable {
    private let lock = NSLock()
    private var events: [NewAttendanceEvent] = []
    func add(_ e: NewAttendanceEvent) { lock.lock(); events.append(e); lock.unlock() }
    var all: [NewAttendanceEvent] { lock.lock(); defer { lock.unlock() }; return events }
}
