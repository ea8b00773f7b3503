import FaceEngine
import Foundation
import GRDB
import Logging
import XCTest

@testable import Attendance
@testable import AttendanceCore

/// Issue #15: a phone screen or a print of an enrolled student held up at the gate is not counted, while a
/// classmate walking past for real is. Composed replays through the real daemon (OpenCV, dlib, both MiniFASNet
/// models, SQLite).
final class LivenessEndToEndTests: XCTestCase {
    /// The demo school with Bình enrolled too, and a video in which An's photo is shown on a phone (06:56),
    /// Cường walks past (07:02) and Bình's photo is held up as a print (07:06).
    func prepareSpoofs(mode: AttendanceConfig.LivenessMode) throws -> GateDemo {
        let demo = try prepareDemo()
        let store = try AttendanceStore.open(config: demo.config)
        try store.consent.record(
            student: "7900000002", guardian: "Trần Văn Bảo", relation: "father", date: demo.day, childAgreed: true,
            source: "test")
        let engine = try FaceEngine(models: SourceTree.models)
        let enrolled = try Enroller(store: store).enrol(
            student: "7900000002", photos: [SourceTree.samples + "/astronaut.png"], engine: engine)
        XCTAssert(enrolled.allSatisfy(\.accepted), "\(enrolled)")
        let video = demo.directory + "/spoofs.avi"
        try ReplayScript(
            duration: 15,
            passages: [
                .init(image: SourceTree.samples + "/obama2.jpg", from: 1.0, to: 3.5, presentation: .phoneScreen),
                .init(image: SourceTree.samples + "/biden.jpg", from: 7.0, to: 9.5),
                .init(image: SourceTree.samples + "/astronaut.png", from: 11.0, to: 13.5, presentation: .print),
            ]
        ).write(to: video, engine: engine)
        var config = demo.config
        config.recognition.liveness = mode
        config.cameras = [AttendanceConfig.Camera(id: "gate-1", source: "file:" + video)]
        return GateDemo(directory: demo.directory, config: config, video: video, day: demo.day, replayStart: demo.replayStart)
    }

    func replay(_ demo: GateDemo) async throws -> (PipelineStatistics, AttendanceStore) {
        let store = try AttendanceStore.open(config: demo.config)
        let stats = try await demo.replay(store: store, models: SourceTree.models, logger: Logger(label: "test"))
        XCTAssertEqual(stats.count, 1)
        print(
            "liveness replay (\(demo.config.recognition.liveness.rawValue)): \(stats[0].livenessChecks) checks, "
                + "\(stats[0].spoofs) not real, \(stats[0].embeddings) embeddings, "
                + String(
                    format: "%.1f ms/check",
                    Double(stats[0].livenessTime / .microseconds(1)) / 1000 / Double(max(1, stats[0].livenessChecks))))
        return (stats[0], store)
    }

    func recorded(_ store: AttendanceStore) throws -> [String] {
        try store.writer.read { db in
            try String.fetchAll(db, sql: "SELECT student_code FROM attendance_event ORDER BY occurred_at")
        }
    }

    func outboxCount(_ store: AttendanceStore) throws -> Int {
        try store.writer.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM outbox") ?? 0 }
    }

    func testFlagHoldsTheSpoofsForTheTeacher() async throws {
        let demo = try prepareSpoofs(mode: .flag)
        let (stats, store) = try await replay(demo)
        XCTAssertEqual(try recorded(store), ["7900000003"], "only Cường, who walked past himself")
        XCTAssertEqual(stats.spoofs, 2)
        let held = try store.reviews.list()
        XCTAssertEqual(held.map(\.event.studentCode), ["7900000001", "7900000002"], "the phone, then the print")
        XCTAssert(held.allSatisfy { $0.reason == .spoof && ($0.liveness ?? 1) < demo.config.recognition.livenessThreshold })
        XCTAssertEqual(held.map(\.event.status), [.present, .late], "as the gate would have recorded them")
        let report = try AttendanceReports(store: store).daily(demo.day)
        let status = Dictionary(uniqueKeysWithValues: report.rows.map { ($0.studentCode, $0.status) })
        XCTAssertEqual(status, ["7900000001": .absent, "7900000002": .absent, "7900000003": .late], "held is not present")
        XCTAssertEqual(try outboxCount(store), 1)

        // The homeroom teacher knows An was there (accept) and Bình was not (reject).
        XCTAssertTrue(try store.reviews.accept(id: held[0].id))
        try store.reviews.reject(id: held[1].id)
        XCTAssertThrowsError(try store.reviews.accept(id: held[1].id), "decided once")
        XCTAssertEqual(try recorded(store), ["7900000001", "7900000003"])
        XCTAssertEqual(try outboxCount(store), 2)
        XCTAssertTrue(try store.reviews.list().isEmpty)
        XCTAssertEqual(try store.reviews.list(state: nil).map(\.state), [.accepted, .rejected])
        let actions = try store.auditLog.entries(since: nil, limit: nil).map(\.action)
        XCTAssert(actions.contains("review.accept") && actions.contains("review.reject"), "\(actions)")

        // A second replay of the same morning adds nothing: An is recorded, Bình's print is already decided.
        _ = try await replay(demo)
        XCTAssertEqual(try recorded(store), ["7900000001", "7900000003"])
        XCTAssertEqual(try store.reviews.list(state: nil).count, 2)
    }

    func testEnforceRecordsNothingButTheCount() async throws {
        let demo = try prepareSpoofs(mode: .enforce)
        let (stats, store) = try await replay(demo)
        XCTAssertEqual(try recorded(store), ["7900000003"])
        XCTAssertEqual(stats.spoofs, 2)
        XCTAssertTrue(try store.reviews.list(state: nil).isEmpty, "enforce holds nothing back")
    }

    func testOffCountsEveryDecidedTrack() async throws {
        let demo = try prepareSpoofs(mode: .off)
        let (stats, store) = try await replay(demo)
        XCTAssertEqual(stats.livenessChecks, 0, "the models are not run")
        XCTAssertEqual(Set(try recorded(store)), ["7900000001", "7900000002", "7900000003"], "the spoofs pass without it")
    }
}
