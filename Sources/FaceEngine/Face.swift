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
