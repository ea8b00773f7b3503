import COpenCV
import Foundation

/// What the passive liveness check found for one face.
public struct LivenessResult: Sendable, Equatable {
    /// (probA[1] + probB[1]) / 2: how real the face looks, 0...1.
    public var real: Float
    /// argmax of probA + probB: 1 is a real face; 0 and 2 are the two spoof classes (print, screen).
    public var label: Int
    public var probA: [Float]
    public var probB: [Float]
    /// Each model's crop in the frame, x1, y1, x2, y2 inclusive, and the widening actually used.
    public var cropA: [Int]
    public var cropB: [Int]
    public var scaleA: Float
    public var scaleB: Float

    public init(
        real: Float, label: Int, probA: [Float], probB: [Float], cropA: [Int], cropB: [Int], scaleA: Float, scaleB: Float
    ) {
        self.real = real; self.label = label; self.probA = probA; self.probB = probB
        self.cropA = cropA; self.cropB = cropB; self.scaleA = scaleA; self.scaleB = scaleB
    }

    /// The two models' own rule: real when the summed probabilities peak at class 1.
    public var looksReal: Bool { label == 1 }
}

/// The outcome of a liveness check: a result, or why the face could not be checked.
public enum LivenessCheck: Sendable, Equatable {
    case checked(LivenessResult)
    /// The box is too small, reaches outside the frame, or the face fills the frame.
    case notCheckable(String)
}

/// Passive liveness (a printed photo or a phone screen held up to the camera): two MiniFASNet networks in
/// OpenCV dnn, each on its own widened crop around the face box (scales 2.7 and 4.0), batch 1.
/// Not Sendable: use it from one thread or actor, like `FaceEngine`.
public final class LivenessChecker {
    let handle: OpaquePointer
    /// Boxes smaller than this (pixels, shorter side) are not checked.
    public let minimumBox: Int
    /// A face whose frame cannot hold the box widened this much is not checked.
    public let minimumScale: Float

    public init(models: ModelPaths = .discover(), minimumBox: Int = 40, minimumScale: Float = 1.5) throws(FaceEngineError) {
        let missing = [models.livenessA, models.livenessB].filter { !FileManager.default.fileExists(atPath: $0) }
        guard missing.isEmpty else {
            throw FaceEngineError(
                kind: .model, operation: "load liveness models",
                message:
                    "missing \(missing.joined(separator: ", ")): run `make models` (it builds them from the MiniFASNet weights)")
        }
        var out: OpaquePointer?
        try shimCheck(cv_liveness_create(models.livenessA, 2.7, models.livenessB, 4.0, &out), "load liveness models")
        handle = out!
        self.minimumBox = minimumBox
        self.minimumScale = minimumScale
    }

    deinit { cv_liveness_free(handle) }

    /// Checks the face a detector of ours found at `box` (its box reshaped to the models' reference detector's first,
    /// `referenceBox(_:from:)`).
    public func check(_ box: FaceBox, foundBy detector: DetectorKind, in image: Image) throws(FaceEngineError)
        -> LivenessCheck
    {
        try check(LivenessChecker.referenceBox(box, from: detector), in: image)
    }

    /// The box the liveness models' crops are widened from, for a face `detector` found at `box`. The models were
    /// trained on their reference detector's boxes (about square, from the brows to the chin), and the crops are 2.7
    /// and 4.0 times the box, so its shape moves the scores. YuNet's boxes are taller and narrower: on the models'
    /// three reference samples the reference box is 1.16 (1.10-1.24) times as wide, 0.87 (0.84-0.94) times as tall
    /// and centred 6.6 % (5.6-9.8 %) of the height lower, and YuNet's box is reshaped so. On YuNet's own box the
    /// models' printed-photo sample scored 0.376 (real at 0.3); on the reshaped one 0.056. res10's and HOG's boxes are
    /// taken as they are (res10's threshold, 0.3, was chosen on them). Each detector's threshold:
    /// `AttendanceConfig.FaceDetector.livenessThreshold` (`make bench-liveness`).
    public static func referenceBox(_ box: FaceBox, from detector: DetectorKind) -> FaceBox {
        guard detector == .yunet else { return box }
        let w = Double(box.right - box.left), h = Double(box.bottom - box.top)
        let cx = Double(box.left + box.right) / 2, cy = Double(box.top + box.bottom) / 2 + 0.066 * h
        let nw = w * 1.16, nh = h * 0.87
        return FaceBox(
            top: Int((cy - nh / 2).rounded()), right: Int((cx + nw / 2).rounded()), bottom: Int((cy + nh / 2).rounded()),
            left: Int((cx - nw / 2).rounded()))
    }

    /// Checks the face in `box` of `image` (a box of the reference detector's shape).
    public func check(_ box: FaceBox, in image: Image) throws(FaceEngineError) -> LivenessCheck {
        var r = cv_liveness_result()
        let status = cv_liveness_check(
            handle, image.handle, Int32(box.left), Int32(box.top), Int32(box.right - box.left), Int32(box.bottom - box.top),
            Int32(minimumBox), minimumScale, &r)
        if status == CV_ERR_UNCHECKABLE { return .notCheckable(String(cString: cv_last_error())) }
        try shimCheck(status)
        func floats(_ t: (Float, Float, Float)) -> [Float] { [t.0, t.1, t.2] }
        func ints(_ t: (Int32, Int32, Int32, Int32)) -> [Int] { [Int(t.0), Int(t.1), Int(t.2), Int(t.3)] }
        return .checked(
            LivenessResult(
                real: r.real, label: Int(r.label), probA: floats(r.prob_a), probB: floats(r.prob_b), cropA: ints(r.crop_a),
                cropB: ints(r.crop_b), scaleA: r.scale_a, scaleB: r.scale_b))
    }

    /// One model (0 = A, 1 = B) on a crop already made: its three probabilities (the parity tests).
    public func probabilities(model: Int, crop: Image) throws(FaceEngineError) -> [Float] {
        var p: (Float, Float, Float) = (0, 0, 0)
        try withUnsafeMutableBytes(of: &p) { raw throws(FaceEngineError) in
            try shimCheck(
                cv_liveness_probabilities(handle, Int32(model), crop.handle, raw.baseAddress!.assumingMemoryBound(to: Float.self))
            )
        }
        return [p.0, p.1, p.2]
    }
}

/// The module's `check`, reachable from inside `LivenessChecker` (whose `check(_:in:)` hides it).
private func shimCheck(_ status: cv_status, _ operation: String = "liveness") throws(FaceEngineError) {
    try check(status, operation)
}
