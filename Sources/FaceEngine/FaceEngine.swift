import COpenCV
import Foundation
import Glibc

/// Detects, aligns and embeds faces through the COpenCV shim.
///
/// Not Sendable and not thread-safe (the dlib network keeps state between calls):
/// give each camera pipeline its own engine, owned by one task.
public final class FaceEngine {
    let handle: OpaquePointer
    public let models: ModelPaths
    /// The detector this engine finds faces with (the liveness check reshapes its boxes: `LivenessChecker.check(_:foundBy:in:)`).
    public let detector: DetectorKind

    public struct Options: Sendable {
        /// YuNet (#16): as accurate as res10 on faces-dev (`make bench-accuracy`) for about a tenth of its CPU on a
        /// gate frame. The school's setting is `[recognition] detector` (`FaceEngine(models:recognition:)`).
        public var detector: DetectorKind = .yunet
        /// Detections below this confidence are dropped. 0.6, not OpenCV's sample 0.5: on the 631
        /// close-ups of faces-dev no face near the centre scores under 0.7, while a football shirt's
        /// crest in an upscaled crop of messi5 scored 0.56.
        public var minScore: Float = 0.6
        /// Refine res10 boxes with dlib HOG so landmarks land where dlib's predictor expects.
        public var refineBoxes = true
        /// Refine with HOG's pyramid started at face_recognition's own scale where the face is still >= 120 px, rather
        /// than face_recognition's way, the crop upsampled and every pyramid level scanned (#16: most of the landmarks' cost).
        /// Off by default: on `make bench-accuracy` it recorded 1 of 631 strangers (0 the old way); see the README.
        public var scaledRefinement = false
        /// Load the 22 MB embedding network (not needed to only count faces).
        public var embeddings = true
        public init() {}
    }

    public init(models: ModelPaths = .discover(), options: Options = Options()) throws(FaceEngineError) {
        self.models = models
        self.detector = options.detector
        var out: OpaquePointer?
        let kind: cv_detector_kind
        switch options.detector {
        case .res10: kind = CV_DETECTOR_RES10
        case .hog: kind = CV_DETECTOR_HOG
        case .yunet: kind = CV_DETECTOR_YUNET
        }
        let weightsPath = options.detector == .yunet ? models.yunet : models.detectorWeights
        let status = models.detectorPrototxt.withCString { proto in
            weightsPath.withCString { weights in
                models.landmarks.withCString { lm in
                    models.embedding.withCString { emb in
                        var config = cv_engine_config(
                            detector: kind,
                            detector_prototxt: proto, detector_weights: weights, landmarks_model: lm,
                            embedding_model: options.embeddings ? emb : nil,
                            min_score: options.minScore, detector_input: 0,
                            refine_box: options.refineBoxes ? (options.scaledRefinement ? 2 : 1) : 0)
                        return cv_engine_create(&config, &out)
                    }
                }
            }
        }
        try check(status, "cannot load the face models (run `make models`)")
        handle = out!
    }

    deinit { cv_engine_free(handle) }

    /// Boxes and scores only, best first.
    public func detect(in image: Image) throws(FaceEngineError) -> [(box: FaceBox, score: Float)] {
        var capacity: Int32 = 32
        while true {
            var buffer = [cv_detection](repeating: cv_detection(), count: Int(capacity))
            var count: Int32 = 0
            try check(cv_detect(handle, image.handle, &buffer, capacity, &count), "detect faces")
            if count <= capacity {
                return buffer.prefix(Int(count)).map { ($0.box.faceBox, $0.score) }
            }
            capacity = count
        }
    }

    /// The 5 landmarks of a detected face.
    public func landmarks(in image: Image, box: FaceBox, score: Float) throws(FaceEngineError) -> [Point] {
        var points = [cv_point](repeating: cv_point(), count: Int(CV_LANDMARK_COUNT))
        try check(cv_landmarks(handle, image.handle, cv_detection(box: box.cBox, score: score), &points), "face landmarks")
        return points.map { Point(x: $0.x, y: $0.y) }
    }

    public func quality(in image: Image, box: FaceBox, score: Float, landmarks: [Point]) throws(FaceEngineError) -> FaceQuality {
        try checkLandmarks(landmarks, "face quality")
        let points = landmarks.map { cv_point(x: $0.x, y: $0.y) }
        var q = cv_quality()
        try check(cv_quality_of(image.handle, cv_detection(box: box.cBox, score: score), points, &q), "face quality")
        return FaceQuality(boxSize: q.box_size, sharpness: q.sharpness, yaw: q.yaw, score: q.score)
    }

    /// The 128-D descriptor of the face aligned on these landmarks.
    public func descriptor(in image: Image, landmarks: [Point]) throws(FaceEngineError) -> FaceDescriptor {
        try checkLandmarks(landmarks, "face descriptor")
        let points = landmarks.map { cv_point(x: $0.x, y: $0.y) }
        var values = [Float](repeating: 0, count: FaceDescriptor.dimension)
        try check(cv_embed(handle, image.handle, points, &values), "face descriptor")
        return FaceDescriptor(values)
    }

    /// The descriptors of several faces of one image in one pass of the network (the same values as
    /// `descriptor(in:landmarks:)` on each, cheaper per face than one call each).
    public func descriptors(in image: Image, landmarks: [[Point]]) throws(FaceEngineError) -> [FaceDescriptor] {
        guard !landmarks.isEmpty else { return [] }
        for l in landmarks { try checkLandmarks(l, "face descriptors") }
        let points = landmarks.flatMap { $0.map { cv_point(x: $0.x, y: $0.y) } }
        let dim = FaceDescriptor.dimension
        var values = [Float](repeating: 0, count: landmarks.count * dim)
        try check(cv_embed_batch(handle, image.handle, points, Int32(landmarks.count), &values), "face descriptors")
        return (0..<landmarks.count).map { FaceDescriptor(Array(values[$0 * dim..<($0 + 1) * dim])) }
    }

    /// The worker threads of the libraries under every engine of the process: OpenCV's parallel loops (res10,
    /// liveness, resizes) and OpenBLAS (dlib's ResNet). nil leaves one as it is. Returns the counts now in
    /// force (blas nil: the BLAS in use is not OpenBLAS).
    @discardableResult
    public static func setThreads(opencv: Int?, blas: Int?) -> (opencv: Int, blas: Int?) {
        var cvNow: Int32 = 0, blasNow: Int32 = 0
        _ = cv_set_threads(Int32(opencv ?? 0), Int32(blas ?? 0), &cvNow, &blasNow)
        return (Int(cvNow), blasNow < 0 ? nil : Int(blasNow))
    }

    /// The CPU kernels OpenBLAS (dlib's ResNet) runs on ("SkylakeX", "Haswell", "Zen", ...; nil: not OpenBLAS).
    public static var blasKernels: String? { cv_blas_core().map { String(cString: $0) } }

    /// Starts this program again, the same process (`execv`, the pid kept), with `OPENBLAS_CORETYPE` set, when OpenBLAS
    /// did not recognise the CPU and fell back to its generic SSE3 kernels although the CPU has AVX2 or AVX-512: Debian
    /// 12's OpenBLAS 0.3.21 does so on Intel Xeon model 207 (Emerald Rapids), where dlib's embeddings then cost about
    /// three times the CPU (`make bench-face`; README, #16). OpenBLAS reads the variable only when it loads, hence the
    /// restart. Does nothing when the variable is set already (by the school, or by the restart itself) or when
    /// OpenBLAS chose well; returns if the restart fails. Call first thing in `main`, before any thread starts.
    public static func restartWithNativeBLASKernelsIfNeeded() {
        guard getenv("OPENBLAS_CORETYPE") == nil, let native = cv_blas_native_core() else { return }
        setenv("OPENBLAS_CORETYPE", native, 1)
        execv("/proc/self/exe", CommandLine.unsafeArgv)
        unsetenv("OPENBLAS_CORETYPE")
    }

    /// Every face in the image, largest score first, with landmarks, quality and (optionally) descriptors.
    public func faces(in image: Image, descriptors: Bool = true) throws(FaceEngineError) -> [Face] {
        var faces: [Face] = []
        for (box, score) in try detect(in: image) {
            let points = try landmarks(in: image, box: box, score: score)
            let q = try quality(in: image, box: box, score: score, landmarks: points)
            let d = descriptors ? try descriptor(in: image, landmarks: points) : nil
            faces.append(Face(box: box, score: score, landmarks: points, quality: q, descriptor: d))
        }
        return faces
    }

    /// The largest face of an image (the subject of a portrait or a close-up), with its descriptor; nil when
    /// there is no face. Only that face is measured.
    public func largestFace(in image: Image) throws(FaceEngineError) -> Face? {
        guard let (box, score) = try detect(in: image).max(by: { $0.box.area < $1.box.area }) else { return nil }
        let points = try landmarks(in: image, box: box, score: score)
        let q = try quality(in: image, box: box, score: score, landmarks: points)
        return Face(
            box: box, score: score, landmarks: points, quality: q, descriptor: try descriptor(in: image, landmarks: points))
    }

    /// Convenience: the faces of an image file.
    public func faces(inFile path: String, descriptors: Bool = true) throws(FaceEngineError) -> [Face] {
        try faces(in: Image(contentsOf: path), descriptors: descriptors)
    }
}

/// The aligned 150x150 chip dlib embeds, for inspection.
public func faceChip(of image: Image, landmarks: [Point]) throws(FaceEngineError) -> Image {
    try checkLandmarks(landmarks, "face chip")
    let points = landmarks.map { cv_point(x: $0.x, y: $0.y) }
    var out: OpaquePointer?
    try check(cv_face_chip(image.handle, points, &out), "face chip")
    return Image(handle: out!)
}

/// The shim reads exactly 5 points: refuse anything else before it crosses the C boundary.
func checkLandmarks(_ landmarks: [Point], _ operation: String) throws(FaceEngineError) {
    guard landmarks.count == Int(CV_LANDMARK_COUNT) else {
        throw FaceEngineError(kind: .argument, operation: operation, message: "expected 5 landmarks, got \(landmarks.count)")
    }
}

extension cv_box {
    var faceBox: FaceBox { FaceBox(top: Int(top), right: Int(right), bottom: Int(bottom), left: Int(left)) }
}

extension FaceBox {
    var cBox: cv_box { cv_box(top: Int32(top), right: Int32(right), bottom: Int32(bottom), left: Int32(left)) }
}
