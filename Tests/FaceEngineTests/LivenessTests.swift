import FaceEngine
import Foundation
import XCTest

/// The liveness check in the shim against the reference outputs that come with the models
/// (`../shared/models/liveness/samples`: a printed photo, a phone screen, a real person).
final class LivenessTests: XCTestCase {
    static let root = FaceEngineTests.root
    static var samples: String { root + "/../shared/models/liveness/samples" }

    struct Sample {
        var image: String
        var box: [Int] // x, y, w, h of the reference detector
        var decision: String
        var score: Double
        var models: [(crop: String, box: [Int], prob: [Double])] // model A, then model B
    }

    func fixtures() throws -> (LivenessChecker, [Sample]) {
        guard let data = FileManager.default.contents(atPath: Self.samples + "/expected.json") else {
            throw XCTSkip("no ../shared/models/liveness/samples (the development set's reference outputs)")
        }
        let models = ModelPaths(directory: Self.root + "/Models")
        guard FileManager.default.fileExists(atPath: models.livenessA) else { throw XCTSkip("run `make models`") }
        let json = try XCTUnwrap(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let images = try XCTUnwrap(json["images"] as? [[String: Any]])
        let samples = try images.map { im -> Sample in
            let m = try XCTUnwrap(im["models"] as? [String: [String: Any]])
            let order = ["2.7_80x80_MiniFASNetV2.onnx", "4_0_0_80x80_MiniFASNetV1SE.onnx"]
            return Sample(
                image: try XCTUnwrap(im["image"] as? String), box: try XCTUnwrap(im["bbox_xywh"] as? [Int]),
                decision: try XCTUnwrap(im["decision"] as? String), score: try XCTUnwrap(im["score"] as? Double),
                models: try order.map { name in
                    let e = try XCTUnwrap(m[name])
                    return (
                        try XCTUnwrap(e["crop_png"] as? String), try XCTUnwrap(e["crop_box_x1y1x2y2_inclusive"] as? [Int]),
                        try XCTUnwrap(e["prob_opencv_onnx"] as? [Double])
                    )
                })
        }
        return (try LivenessChecker(models: models), samples)
    }

    /// Each network on the exact reference crops: the published probabilities (rounded to 6 decimals).
    func testTheNetworksReproduceTheReferenceOnItsCrops() throws {
        let (checker, samples) = try fixtures()
        var worst = 0.0
        for s in samples {
            for (i, m) in s.models.enumerated() {
                let p = try checker.probabilities(model: i, crop: try Image(contentsOf: Self.samples + "/" + m.crop))
                for k in 0..<3 {
                    let d = abs(Double(p[k]) - m.prob[k])
                    worst = max(worst, d)
                    XCTAssertLessThan(d, 2e-6, "\(s.image) model \(i) class \(k)")
                }
            }
        }
        print("liveness parity on the reference crops: max abs difference \(worst)")
    }

    /// The whole check on the frames with the reference box: the same crops, decisions and scores.
    func testTheCheckMakesTheReferenceCropsAndDecisions() throws {
        let (checker, samples) = try fixtures()
        for s in samples {
            let image = try Image(contentsOf: Self.samples + "/" + s.image)
            let box = FaceBox(top: s.box[1], right: s.box[0] + s.box[2], bottom: s.box[1] + s.box[3], left: s.box[0])
            guard case .checked(let r) = try checker.check(box, in: image) else { return XCTFail("\(s.image) not checked") }
            XCTAssertEqual(r.cropA, s.models[0].box, "\(s.image) crop A")
            XCTAssertEqual(r.cropB, s.models[1].box, "\(s.image) crop B")
            XCTAssertEqual(r.looksReal ? "REAL" : "FAKE", s.decision, s.image)
            let score = Double(r.looksReal ? r.real : (r.probA[r.label] + r.probB[r.label]) / 2)
            XCTAssertEqual(score, s.score, accuracy: 6e-5, s.image)
        }
    }

    /// With our own detector's box (YuNet's, reshaped to the reference detector's), not the reference detector's: the
    /// same decisions; how far the scores move is printed (the issue asks for it in the note).
    func testOurOwnFaceBoxGivesTheSameDecisions() throws {
        let (checker, samples) = try fixtures()
        let engine = try FaceEngine(models: ModelPaths(directory: Self.root + "/Models"))
        for s in samples {
            let image = try Image(contentsOf: Self.samples + "/" + s.image)
            let faces = try engine.faces(in: image, descriptors: false)
            XCTAssertEqual(faces.count, 1, s.image)
            guard let face = faces.first, case .checked(let r) = try checker.check(face.box, foundBy: engine.detector, in: image)
            else {
                return XCTFail("\(s.image) not checked")
            }
            let score = Double(r.looksReal ? r.real : (r.probA[r.label] + r.probB[r.label]) / 2)
            print(
                "liveness \(s.image): reference box \(s.box) \(s.decision) \(s.score); our box "
                    + "\([face.box.left, face.box.top, face.box.right - face.box.left, face.box.bottom - face.box.top]) "
                    + "\(r.looksReal ? "REAL" : "FAKE") \(String(format: "%.4f", score)) (moved \(String(format: "%+.4f", score - s.score)))"
            )
            XCTAssertEqual(r.looksReal ? "REAL" : "FAKE", s.decision, s.image)
        }
    }

    func testFacesThatCannotBeCheckedAreSaidSo() throws {
        let (checker, samples) = try fixtures()
        let image = try Image(contentsOf: Self.samples + "/" + samples[2].image)
        XCTAssertEqual(
            try checker.check(FaceBox(top: 10, right: 30, bottom: 30, left: 10), in: image),
            .notCheckable("face too small for the liveness check (20 px, at least 40)"))
        guard case .notCheckable = try checker.check(FaceBox(top: -5, right: 200, bottom: 200, left: 10), in: image) else {
            return XCTFail("a box outside the frame was checked")
        }
        // A face filling the frame: the widened crop has no room.
        let w = image.width, h = image.height
        guard case .notCheckable = try checker.check(FaceBox(top: 0, right: w, bottom: h, left: 0), in: image) else {
            return XCTFail("a face filling the frame was checked")
        }
    }

    func testAMissingModelIsAClearError() {
        var models = ModelPaths(directory: Self.root + "/Models")
        models.livenessB = "/nonexistent/model.onnx"
        XCTAssertThrowsError(try LivenessChecker(models: models)) { e in
            XCTAssertEqual((e as? FaceEngineError)?.kind, .model)
            XCTAssertTrue("\(e)".contains("make models"), "\(e)")
        }
    }
}
