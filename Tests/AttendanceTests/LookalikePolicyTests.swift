import FaceEngine
import FaceMatch
import Foundation
import XCTest

@testable import Attendance
@testable import AttendanceCore

/// The risk radius: a student with a close look-alike among the enrolled students must win by more,
/// over more votes; `gallery check` finds those pairs from the school's own faces.
final class LookalikePolicyTests: XCTestCase {
    let good = FaceQuality(boxSize: 120, sharpness: 200, yaw: 0, score: 0.99)
    let box = FaceBox(top: 100, right: 300, bottom: 300, left: 100)
    var rules: RecognitionRules { RecognitionRules(AttendanceConfig().recognition) }

    /// A descriptor at a chosen place: `base` moved by `step` along axis `axis`.
    func face(_ base: [Float], axis: Int, step: Float) -> [Float] {
        var v = base
        v[axis] += step
        return v
    }

    func testTheRuleDemandsMoreOfALookalike() {
        let r = rules
        let m = Match(student: "A", distance: 0.30, margin: r.minMargin + 0.01)
        XCTAssertTrue(r.accepts(m, nearestOther: nil), "nobody else enrolled: the ordinary margin")
        XCTAssertTrue(r.accepts(m, nearestOther: r.threshold + r.minMargin + 0.1), "a distant classmate: the ordinary margin")
        XCTAssertFalse(r.accepts(m, nearestOther: r.threshold), "a look-alike classmate: the ordinary margin is not enough")
        XCTAssertTrue(r.accepts(Match(student: "A", distance: 0.30, margin: r.lookalikeMargin), nearestOther: r.threshold))
        XCTAssertFalse(
            r.accepts(Match(student: "A", distance: r.threshold, margin: 1), nearestOther: nil), "at the threshold: no")
        XCTAssertEqual(r.requiredVotes(nearestOther: nil), r.votes)
        XCTAssertEqual(r.requiredVotes(nearestOther: 0.2), r.votes + r.lookalikeExtraVotes)
    }

    func testALookalikeNeedsTheExtraVotesAtTheGate() {
        let r = rules
        XCTAssertGreaterThan(r.lookalikeExtraVotes, 0, "the default asks look-alikes for more votes")
        let t = FaceTracker(rules: r)
        let id = t.update(boxes: [box], at: 0)[0]
        let m = Match(student: "A", distance: 0.3, margin: 0.2)
        for _ in 0..<r.votes { XCTAssertNil(t.vote(track: id, best: m, nearestOther: 0.3), "not yet: a look-alike") }
        var outcome: TrackOutcome?
        for _ in 0..<r.lookalikeExtraVotes { outcome = t.vote(track: id, best: m, nearestOther: 0.3) }
        guard case .decided("A", _, _, _)? = outcome else {
            return XCTFail("decided after the extra votes: \(String(describing: outcome))")
        }
    }

    func testIndexAndCalibrationAgreeOnEachStudentsNearestOther() throws {
        var base = [Float](repeating: 0, count: 128)
        base[0] = 1.4 // about the norm of a dlib descriptor
        // A and B (twins) 0.3 apart, C far from both, D a single face far away.
        let rows: [(student: String, embedding: [Float])] = [
            ("A", base), ("A", face(base, axis: 1, step: 0.1)),
            ("B", face(base, axis: 2, step: 0.3)),
            ("C", face(base, axis: 3, step: 0.9)),
            ("D", face(base, axis: 4, step: -1.2)),
        ]
        let index = try EnrolledFaces.Index(version: 1, rows: rows)
        let c = GalleryCalibration(rows: rows)
        XCTAssertEqual(c.students, 4)
        XCTAssertEqual(c.impostorDistances.count, 6)
        XCTAssertEqual(index.nearestOther["A"]!, 0.3, accuracy: 1e-5)
        XCTAssertEqual(index.nearestOther["B"]!, 0.3, accuracy: 1e-5)
        for s in ["A", "B", "C", "D"] {
            XCTAssertEqual(index.nearestOther[s]!, c.nearestOther[s]!.distance, accuracy: 1e-5, s)
        }
        let pairs = c.lookalikes(rules)
        XCTAssertEqual(pairs.map { "\($0.a)-\($0.b)" }, ["A-B"], "only the twins are look-alikes")
        XCTAssertEqual(c.falseAcceptRate(at: 0.31), 1.0 / 6, accuracy: 1e-9)
        XCTAssertNil(c.threshold(forFalseAcceptRate: 0.001), "6 pairs cannot show a rate of 1 in 1000")
        XCTAssertEqual(c.threshold(forFalseAcceptRate: 0.2)!, c.impostorDistances[1], "the 2nd-closest pair bounds a 1-in-5 rate")

        // At the gate: a face between the twins, closer to A by 0.066 (more than the ordinary margin, less
        // than the look-alike margin), is not recorded as A.
        let probe = face(face(base, axis: 2, step: 0.115), axis: 1, step: 0.05)
        let best = try XCTUnwrap(try index.best(probe))
        XCTAssertEqual(best.student, "A")
        XCTAssertLessThan(best.distance, rules.threshold)
        XCTAssertGreaterThanOrEqual(best.margin, rules.minMargin, "the ordinary rule would accept A")
        XCTAssertFalse(rules.accepts(best, nearestOther: index.nearestOther[best.student]), "the look-alike rule does not")
    }
}
