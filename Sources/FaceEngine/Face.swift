import COpenCV
import Foundation

/// A face box in the original image's pixels, in face_recognition's order (top, right, bottom, left).
/// `right` and `bottom` are exclusive.
public struct FaceBox: Sendable, Equatable, Codable {
    public var top: Int, right: Int, bottom: Int, left: Int
    public init(top: Int, right: Int, bottom: Int, left: Int) {
        self.top = top; self.right = right; self.bottom = bottom; self.left = left
    }
    public var width: Int { right - left }
    public var height: Int { bottom - top }
    public var area: Int { max(0, width) * max(0, height) }
    public var centerX: Double { Double(left + right) / 2 }
    public var centerY: Double { Double(top + bottom) / 2 }

    /// Intersection over union, for tracking faces across frames.
    public func iou(_ other: FaceBox) -> Double {
        let w = min(right, other.right) - max(left, other.left)
        let h = min(bottom, other.bottom) - max(top, other.top)
        guard w > 0, h > 0 else { return 0 }
        let inter = Double(w * h)
        return inter / (Double(area + other.area) - inter)
    }
}

public struct Point: Sendable, Equatable, Codable {
    public var x: Float, y: Float
    public init(x: Float, y: Float) { self.x = x; self.y = y }
}

/// How usable a face is for recognition; the enrolment and tracking gates read it.
public struct FaceQuality: Sendable, Equatable, Codable {
    /// min(width, height) of the box, pixels.
    public var boxSize: Float
    /// Variance of the Laplacian of the face normalised to 100 px width (blur makes it small).
    public var sharpness: Float
    /// Rough yaw from the 5 landmarks, degrees; + means turned towards the image's right.
    public var yaw: Float
    /// Detector confidence, 0...1.
    public var score: Float

    public init(boxSize: Float, sharpness: Float, yaw: Float, score: Float) {
        self.boxSize = boxSize; self.sharpness = sharpness; self.yaw = yaw; self.score = score
    }
}

/// A 128-D dlib face descriptor. Same person: L2 distance about 0.3-0.45; different: above 0.6.
public struct FaceDescriptor: Sendable, Equatable, Codable {
    public static let dimension = Int(CV_EMBEDDING_DIM)
    public var values: [Float]
    public init(_ values: [Float]) {
        precondition(values.count == FaceDescriptor.dimension, "a face descriptor has \(FaceDescriptor.dimension) values")
        self.values = values
    }

    public func distance(to other: FaceDescriptor) -> Float {
        var sum: Float = 0
        for i in 0..<values.count {
            let d = values[i] - other.values[i]
            sum += d * d
        }
        return sum.squareRoot()
    }
}

/// One face found in an image: where, how good, and (when asked) its descriptor.
public struct Face: Sendable, Equatable, Codable {
    public var box: FaceBox
    public var score: Float
    /// dlib's 5 points: two corners of each eye, then the base of the nose.
    public var landmarks: [Point]
    public var quality: FaceQuality
    public var descriptor: FaceDescriptor?
}

/// Where the model files are. `Models/` of the checkout by default (see Models/manifest.tsv).
public struct ModelPaths: Sendable {
    public var detectorPrototxt: String
    public var detectorWeights: String
    public var landmarks: String
    public var embedding: String

    public init(directory: String) {
        detectorPrototxt = directory + "/deploy.prototxt.txt"
        detectorWeights = directory + "/res10_300x300_ssd_iter_140000.caffemodel"
        landmarks = directory + "/shape_predictor_5_face_landmarks.dat"
        embedding = directory + "/dlib_face_recognition_resnet_model_v1.dat"
    }

    /// `ATTENDANCE_MODELS` if set; else `Models/` next to the executable's checkout, else `./Models`,
    /// else `/usr/share/attendance/models`.
    public static func discover() -> ModelPaths {
        let env = ProcessInfo.processInfo.environment
        if let dir = env["ATTENDANCE_MODELS"], !dir.isEmpty { return ModelPaths(directory: dir) }
        var candidates: [String] = []
        // .../checkout/.build/<config>/attendance -> .../checkout/Models
        let exe = URL(fileURLWithPath: CommandLine.arguments.first ?? ".").resolvingSymlinksInPath()
        var dir = exe.deletingLastPathComponent()
        for _ in 0..<5 {
            candidates.append(dir.appendingPathComponent("Models").path)
            dir = dir.deletingLastPathComponent()
        }
        candidates.append(FileManager.default.currentDirectoryPath + "/Models")
        candidates.append("/usr/share/attendance/models")
        for c in candidates where FileManager.default.fileExists(atPath: c + "/shape_predictor_5_face_landmarks.dat") {
            return ModelPaths(directory: c)
        }
        return ModelPaths(directory: FileManager.default.currentDirectoryPath + "/Models")
    }
}

/// Which face detector finds the boxes. Both sit behind the shim's detector interface.
public enum DetectorKind: String, Sendable, CaseIterable {
    /// OpenCV dnn res10 SSD: finds small and partial faces; boxes refined with dlib HOG before landmarks.
    case res10
    /// dlib's HOG frontal detector: no extra model, misses small and turned faces.
    case hog
}

/// Detects, aligns and embeds faces through the COpenCV shim.
///
/// Not Sendable and not thread-safe (the dlib network keeps state between calls):
/// give each camera pipeline its own engine, owned by one task.
public final class FaceEngine {
    let handle: OpaquePointer
    public let models: ModelPaths

    public struct Options: Sendable {
        public var detector: DetectorKind = .res10
        /// Detections below this confidence are dropped. 0.6, not OpenCV's sample 0.5: on the 631
        /// close-ups of faces-dev no face near the centre scores under 0.7, while a football shirt's
        /// crest in an upscaled crop of messi5 scored 0.56.
        public var minScore: Float = 0.6
        /// Refine res10 boxes with dlib HOG so landmarks land where dlib's predictor expects.
        public var refineBoxes = true
        /// Load the 22 MB embedding network (not needed to only count faces).
        public var embeddings = true
        public init() {}
    }

    public init(models: ModelPaths = .discover(), options: Options = Options()) throws(FaceEngineError) {
        self.models = models
        var out: OpaquePointer?
        let status = models.detectorPrototxt.withCString { proto in
            models.detectorWeights.withCString { weights in
                models.landmarks.withCString { lm in
                    models.embedding.withCString { emb in
                        var config = cv_engine_config(
                            detector: options.detector == .hog ? CV_DETECTOR_HOG : CV_DETECTOR_RES10,
                            detector_prototxt: proto, detector_weights: weights, landmarks_model: lm,
                            embedding_model: options.embeddings ? emb : nil,
                            min_score: options.minScore, detector_input: 300, refine_box: options.refineBoxes ? 1 : 0)
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
