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
