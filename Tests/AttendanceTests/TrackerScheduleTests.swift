import FaceEngine
import FaceMatch
import Foundation
import XCTest

@testable import Attendance
@testable import AttendanceCore

/// The decision rules on their own: voting, identity checks, the timetable.
final class TrackerScheduleTests: XCTestCase {
    let good = FaceQuality(boxSize: 120, sharpness: 200, yaw: 0, score: 0.99)
    var rules: RecognitionRules { RecognitionRules(AttendanceConfig().recognition) }
    let box = FaceBox(top: 100, right: 300, bottom: 300, left: 100)

    func testThreeAgreeingVotesDecideAndAStrangerIsUnknown() {
        let t = FaceTracker(rules: rules)
        let id = t.update(boxes: [box], at: 0)[0]
        XCTAssertTrue(t.wantsEmbedding(track: id, quality: good))
        XCTAssertNil(t.vote(track: id, best: Match(student: "A", distance: 0.35, margin: 0.3)))
        XCTAssertNil(t.vote(track: id, best: Match(student: "A", distance: 0.38, margin: 0.3)))
        guard case .decided("A", _, _, _)? = t.vote(track: id, best: Match(student: "A", distance: 0.36, margin: 0.3)) else {
            return XCTFail("three agreeing votes decide")
        }
        let s = FaceTracker(rules: rules)
        let sid = s.update(boxes: [box], at: 0)[0]
        for _ in 0..<2 { XCTAssertNil(s.vote(track: sid, best: Match(student: "B", distance: 0.8, margin: 0.1))) }
        guard case .unknown? = s.vote(track: sid, best: Match(student: "B", distance: 0.9, margin: 0.1)) else {
            return XCTFail("three votes over the threshold: unknown")
        }
    }

    /// Issue #15: a track's liveness is the mean over its checked frames, judged by the threshold; what a track that
    /// did not look real becomes is the decider's, by mode.
    func testLivenessVerdictsAndWhatTheyBecome() async throws {
        var r = rules
        r.livenessThreshold = 0.3
        func checked(_ real: Float) -> LivenessCheck {
            .checked(
                LivenessResult(
                    real: real, label: 1, probA: [], probB: [], cropA: [], cropB: [], scaleA: 2.7, scaleB: 4))
        }
        XCTAssertEqual(r.verdict(checked(0.3)), .real, "at the threshold: real")
        XCTAssertEqual(r.verdict(checked(0.29)), .spoof(score: 0.29))
        XCTAssertEqual(r.verdict(.notCheckable("too small")), .notCheckable)
        let t = FaceTracker(rules: r)
        let id = t.update(boxes: [box], at: 0)[0]
        XCTAssertNil(t.meanLiveness(track: id))
        XCTAssertEqual(r.verdict(meanReal: t.meanLiveness(track: id)), .notCheckable, "no frame could be checked")
        t.addLiveness(track: id, checked(0.1))
        t.addLiveness(track: id, .notCheckable("edge"))
        t.addLiveness(track: id, checked(0.3))
        XCTAssertEqual(t.meanLiveness(track: id)!, 0.2, accuracy: 1e-6, "the unchecked frame does not count")
        XCTAssertTrue(t.wantsLiveness(track: id))
        for _ in 0..<3 { _ = t.vote(track: id, best: Match(student: "A", distance: 0.3, margin: 0.3)) }
        XCTAssertFalse(t.wantsLiveness(track: id), "decided: no more checks")

        let day = LocalDate(year: 2026, month: 12, day: 7)
        let morning = { (config: AttendanceConfig) in
            day.at(LocalTime(hour: 6, minute: 55), in: TimeZone(identifier: config.school.timezone)!)
        }
        for mode in AttendanceConfig.LivenessMode.allCases {
            let tmp = try TempStore()
            var config = AttendanceConfig()
            config.schedule.schoolDays = Array(1...7)
            config.recognition.liveness = mode
            let store = try tmp.open(config: config)
            try seedRoster(store, in: tmp)
            let decider = AttendanceDecider(store: store)
            let spoof = try await decider.decide(
                student: "0101", distance: 0.3, at: morning(config), camera: "gate-1", direction: "in",
                liveness: .spoof(score: 0.1))
            let unchecked = try await decider.decide(
                student: "0102", distance: 0.3, at: morning(config), camera: "gate-1", direction: "in",
                liveness: .notCheckable)
            switch mode {
            case .off:
                guard case .recorded = spoof, case .recorded = unchecked else { return XCTFail("off records: \(spoof)") }
            case .flag:
                guard case .heldForReview(_, .spoof) = spoof, case .heldForReview(_, .notCheckable) = unchecked else {
                    return XCTFail("flag holds: \(spoof), \(unchecked)")
                }
                XCTAssertEqual(try store.reviews.list().map(\.event.studentCode), ["0101", "0102"])
                XCTAssertEqual(try store.reviews.list().first?.liveness, 0.1)
                // The student's own pass later is recorded: a hold is no record and starts no cooldown.
                let own = try await decider.decide(
                    student: "0101", distance: 0.3, at: morning(config).addingTimeInterval(60), camera: "gate-1",
                    direction: "in")
                guard case .recorded = own else { return XCTFail("\(own)") }
            case .enforce:
                XCTAssertEqual(spoof, .refusedAsSpoof(reason: .spoof))
                XCTAssertEqual(unchecked, .refusedAsSpoof(reason: .notCheckable))
                XCTAssertTrue(try store.reviews.list(state: nil).isEmpty)
            }
        }
    }

    func testAmbiguousMatchesDoNotDecide() {
        let t = FaceTracker(rules: rules)
        let id = t.update(boxes: [box], at: 0)[0]
        for _ in 0..<5 { XCTAssertNil(t.vote(track: id, best: Match(student: "A", distance: 0.4, margin: 0.01))) }
        guard case .ambiguous? = t.vote(track: id, best: Match(student: "A", distance: 0.4, margin: 0.01)) else {
            return XCTFail("too close to call: neither a student nor a stranger")
        }
        XCTAssertFalse(t.wantsEmbedding(track: id, quality: good))
    }

    /// Someone stepping into a decided student's box is not taken for that student.
    func testADifferentFaceInADecidedTrackStartsANewTrack() {
        let t = FaceTracker(rules: rules)
        var id = t.update(boxes: [box], at: 0)[0]
        for _ in 0..<3 { _ = t.vote(track: id, best: Match(student: "A", distance: 0.35, margin: 0.3)) }
        XCTAssertFalse(t.wantsEmbedding(track: id, quality: good), "decided: no embedding on the next frame")
        for f in 1...10 { id = t.update(boxes: [box], at: Double(f) / 10)[0] }
        XCTAssertTrue(t.wantsEmbedding(track: id, quality: good), "decided tracks are verified now and then")
        XCTAssertNil(t.vote(track: id, best: Match(student: "B", distance: 0.3, margin: 0.3)))
        let newID = t.update(boxes: [box], at: 1.1)[0]
        XCTAssertNotEqual(newID, id, "B's face continues as a new track")
        XCTAssertNil(t.vote(track: newID, best: Match(student: "B", distance: 0.3, margin: 0.3)))
        guard case .decided("B", _, _, _)? = t.vote(track: newID, best: Match(student: "B", distance: 0.3, margin: 0.3)) else {
            return XCTFail("B is decided on the new track")
        }
    }

    /// #16: the pre-check asked before a face's landmarks says no wherever `wantsEmbedding` would say no whatever
    /// the landmarks (a settled track between verifications, a box under the minimum size), and yes when the track
    /// is due (the quality gate after the landmarks still decides then).
    func testThePreCheckBeforeLandmarksFollowsTheSchedule() {
        let r = rules
        let t = FaceTracker(rules: r)
        let id = t.update(boxes: [box], at: 0)[0]
        XCTAssertTrue(t.mayWantEmbedding(track: id, boxSize: 120), "a new track is due")
        XCTAssertFalse(t.mayWantEmbedding(track: id, boxSize: r.minFaceSize - 1), "too small: no landmarks")
        XCTAssertFalse(t.mayWantEmbedding(track: 999, boxSize: 120), "no such track")
        XCTAssertNil(t.vote(track: id, best: Match(student: "A", distance: 0.35, margin: 0.3)))
        var frame = 0
        // Undecided: due again after `reembedEveryFrames` frames, and the pre-check agrees with wantsEmbedding.
        for _ in 0..<(r.reembedEveryFrames + 2) {
            frame += 1
            _ = t.update(boxes: [box], at: Double(frame) / 15)
            XCTAssertEqual(t.mayWantEmbedding(track: id, boxSize: 120), t.wantsEmbedding(track: id, quality: good))
        }
        for _ in 0..<2 { _ = t.vote(track: id, best: Match(student: "A", distance: 0.35, margin: 0.3)) }
        guard case .decided? = t.tracks.first(where: { $0.id == id })?.outcome else { return XCTFail("decided") }
        // Decided: no landmarks until the verification is due.
        for _ in 1..<r.verifyEveryFrames {
            frame += 1
            _ = t.update(boxes: [box], at: Double(frame) / 15)
            XCTAssertFalse(t.mayWantEmbedding(track: id, boxSize: 120), "decided, between verifications")
        }
        frame += 1
        _ = t.update(boxes: [box], at: Double(frame) / 15)
        XCTAssertTrue(t.mayWantEmbedding(track: id, boxSize: 120), "the verification is due")
        // A stranger's track, once unknown, never again.
        let s = FaceTracker(rules: r)
        let sid = s.update(boxes: [box], at: 0)[0]
        for _ in 0..<r.votes { _ = s.vote(track: sid, best: Match(student: "B", distance: 0.9, margin: 0.1)) }
        for f in 1...20 {
            _ = s.update(boxes: [box], at: Double(f) / 15)
            XCTAssertFalse(s.mayWantEmbedding(track: sid, boxSize: 120), "unknown: never embedded again")
        }
    }

    func testScheduleStatusesAndWindows() throws {
        var config = AttendanceConfig()
        config.schedule.schoolDays = [1, 2, 3, 4, 5]
        config.schedule.holidays = ["2026-11-24"]
        let schedule = SchoolSchedule(config)
        let tz = TimeZone(identifier: "Asia/Ho_Chi_Minh")!
        let monday = LocalDate(year: 2026, month: 11, day: 23)
        func at(_ h: Int, _ m: Int, _ day: LocalDate = monday) -> Date { day.at(LocalTime(hour: h, minute: m), in: tz) }
        XCTAssertEqual(schedule.slot(at: at(6, 50), classCode: "6A1")?.status, .present)
        XCTAssertEqual(schedule.slot(at: at(7, 1), classCode: "6A1")?.status, .present, "exactly +1 min is on time")
        XCTAssertEqual(schedule.slot(at: at(7, 2), classCode: "6A1")?.status, .late)
        XCTAssertEqual(schedule.slot(at: at(7, 20), classCode: "6A1")?.status, .absent)
        XCTAssertEqual(schedule.slot(at: at(11, 10), classCode: "6A1")?.kind, .checkOut)
        XCTAssertEqual(schedule.slot(at: at(13, 40), classCode: "6A1")?.session, "afternoon")
        XCTAssertNil(schedule.slot(at: at(5, 0), classCode: "6A1"), "before the gate opens")
        XCTAssertNil(schedule.slot(at: at(7, 0, LocalDate(year: 2026, month: 11, day: 24)), classCode: "6A1"), "holiday")
        XCTAssertNil(schedule.slot(at: at(7, 0, LocalDate(year: 2026, month: 11, day: 22)), classCode: "6A1"), "Sunday")
        XCTAssertNil(schedule.slot(at: at(6, 50), classCode: "6A1", direction: "out"), "an out camera records no arrival")
    }

    func testConfigWithWindowsLineEndingsAndSessionMistakes() throws {
        XCTAssertNoThrow(
            try AttendanceConfig.parse("[school]\r\nname = \"x\"\r\n[[camera]]\r\nid = \"a\"\r\nsource = \"file:x\"\r\n"))
        func reason(_ text: String) -> String {
            do { _ = try AttendanceConfig.parse(text); return "parsed" } catch { return "\(error)" }
        }
        let head = "[[schedule.session]]\nname = \"m\"\n"
        XCTAssertTrue(reason(head + "start = \"07:00\"\nend = \"06:00\"").contains("not before end"))
        XCTAssertTrue(reason(head + "start = \"07:00\"\nend = \"11:00\"\nopens = \"07:30\"").contains("after start"))
        XCTAssertTrue(reason(head + "start = \"07:00\"\nend = \"11:00\"\ncheckout_from = \"11:00\"").contains("both"))
        XCTAssertTrue(
            reason(head + "start = \"07:00\"\nend = \"11:00\"\n" + head + "start = \"13:00\"\nend = \"17:00\"").contains(
                "share a name"))
    }
}
