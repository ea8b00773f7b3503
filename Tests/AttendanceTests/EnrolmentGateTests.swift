import FaceEngine
import Foundation
import GRDB
import XCTest

@testable import Attendance
@testable import AttendanceCore

/// The gate's rules on measured faces, without images.
final class EnrolmentGateTests: XCTestCase {
    /// `Face` has no public memberwise initialiser; it is Codable, so build it from JSON.
    func face(size: Float = 150, sharpness: Float = 50, yaw: Float = 0, descriptor: [Float]? = fakeEmbedding(1)) -> Face {
        let d = descriptor.map { "{\"values\":[\($0.map { "\($0)" }.joined(separator: ","))]}" } ?? "null"
        let json = """
            {"box":{"top":0,"right":\(Int(size)),"bottom":\(Int(size)),"left":0},"score":0.99,"landmarks":[],
             "quality":{"boxSize":\(size),"sharpness":\(sharpness),"yaw":\(yaw),"score":0.99},"descriptor":\(d)}
            """
        return try! JSONDecoder().decode(Face.self, from: Data(json.utf8))
    }

    func testQualityRules() {
        let gate = EnrolmentGate(recognition: AttendanceConfig().recognition)
        func verdict(_ faces: [Face]) -> EnrolmentRejection? {
            if case .failure(let r) = gate.assess(faces: faces, others: [], own: [], force: false) { return r }
            return nil
        }
        XCTAssertNil(verdict([face()]))
        XCTAssertEqual(verdict([]), .noFace)
        XCTAssertEqual(verdict([face(), face(size: 120)]), .severalFaces(2))
        XCTAssertNil(verdict([face(), face(size: 30)]), "a small face far behind is background")
        XCTAssertEqual(verdict([face(size: 40)]), .tooSmall(size: 40, minimum: 60))
        XCTAssertEqual(verdict([face(sharpness: 3)]), .blurred(sharpness: 3, minimum: 15))
        XCTAssertEqual(verdict([face(yaw: -50)]), .turnedAway(yaw: -50, maximum: 35))
        XCTAssertEqual(verdict([face(descriptor: nil)]), .noDescriptor)
        XCTAssertTrue(EnrolmentRejection.turnedAway(yaw: -50, maximum: 35).description.contains("50°"))
    }

    /// The identity guards in the gate's own metric, and failing closed on what cannot be compared.
    func testIdentityGuardsFailClosed() {
        let gate = EnrolmentGate(recognition: AttendanceConfig().recognition)
        let probe = fakeEmbedding(1)
        var near = probe
        near[0] += 0.05
        var damaged = fakeEmbedding(9)
        damaged[3] = .nan
        // Another student's face this close: refused, even with a damaged row beside it.
        XCTAssertEqual(
            gate.identityProblem(probe, others: [("x", damaged), ("0102", near)], own: []),
            .looksLikeOtherStudent("0102", distance: 0.05 + 0.0))
        // Own faces that cannot be compared count as unlike, as a face far away does.
        if case .unlikeOwnPhotos? = gate.identityProblem(probe, others: [], own: [damaged]) {} else { XCTFail("damaged own row") }
        if case .unlikeOwnPhotos? = gate.identityProblem(probe, others: [], own: [fakeEmbedding(40).map { $0 * 20 }]) {
        } else {
            XCTFail("a far own face")
        }
        XCTAssertNil(gate.identityProblem(probe, others: [], own: [near]))
        // A probe the gallery could not hold is no descriptor.
        XCTAssertEqual(gate.identityProblem([Float](repeating: 0, count: 128), others: [], own: []), .noDescriptor)
        XCTAssertEqual(gate.identityProblem(Array(probe.prefix(64)), others: [], own: []), .noDescriptor)
    }
}
