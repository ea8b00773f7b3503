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
    /// The passive-liveness networks (ONNX graphs `make models` builds from the MiniFASNet weights).
    public var livenessA: String
    public var livenessB: String

    public init(directory: String) {
        detectorPrototxt = directory + "/deploy.prototxt.txt"
        detectorWeights = directory + "/res10_300x300_ssd_iter_140000.caffemodel"
        landmarks = directory + "/shape_predictor_5_face_landmarks.dat"
        embedding = directory + "/dlib_face_recognition_resnet_model_v1.dat"
        livenessA = directory + "/2.7_80x80_MiniFASNetV2.onnx"
        livenessB = directory + "/4_0_0_80x80_MiniFASNetV1SE.onnx"
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
