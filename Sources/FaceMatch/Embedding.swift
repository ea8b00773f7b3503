/// A face descriptor: a fixed-length vector of floats (128 for dlib's ResNet).
///
/// The values are kept as given, and the gallery's distances are Euclidean
/// distances between the vectors as given: for dlib descriptors (norm about 1.4),
/// dlib's own metric, the one its 0.6 threshold is meant for. (Distances between
/// the normalised vectors would be about 1.4x smaller and let different people pass.)
public struct Embedding: Sendable, Equatable {
    /// dlib's face descriptor length.
    public static let dlibDimension = 128

    public let values: [Float]

    public init(_ values: [Float]) {
        self.values = values
    }

    public var dimension: Int { values.count }

    /// The unit vector in the same direction.
    /// - Throws: `FaceMatchError.notFinite` for NaN or infinite values or a length beyond
    ///   `maxSquaredNorm`, `FaceMatchError.zeroVector` for a vector of length 0 (it has no direction).
    public func normalized() throws -> Embedding {
        let inv = 1 / (try checkedSquaredNorm()).squareRoot()
        return Embedding(values.map { Float(Double($0) * inv) })
    }

    /// The largest |v|^2 the search takes: scores (q.r - |r|^2/2) then stay far from float's limit.
    public static let maxSquaredNorm: Double = 1e30

    /// |v|^2, after checking that the vector can be searched.
    /// - Throws: `FaceMatchError.notFinite` for NaN or infinite values or a length beyond
    ///   `maxSquaredNorm`, `.zeroVector` for a vector of length 0 (no descriptor is all zeros: it
    ///   is a broken input).
    public func validatedSquaredNorm() throws -> Float { Float(try checkedSquaredNorm()) }

    private func checkedSquaredNorm() throws -> Double {
        var s = 0.0
        for v in values {
            guard v.isFinite else { throw FaceMatchError.notFinite }
            s += Double(v) * Double(v)
        }
        guard s > 0 else { throw FaceMatchError.zeroVector }
        guard s <= Self.maxSquaredNorm else { throw FaceMatchError.notFinite }
        return s
    }

    /// The Euclidean distance between two embeddings as they are (not normalised): the metric
    /// of `GallerySnapshot.search`, for code that compares two descriptors without a gallery.
    public static func distance(_ a: Embedding, _ b: Embedding) throws -> Float {
        guard a.dimension == b.dimension else {
            throw FaceMatchError.dimensionMismatch(expected: a.dimension, actual: b.dimension)
        }
        if a.dimension == 0 { return 0 }
        return a.values.withUnsafeBufferPointer { x in
            b.values.withUnsafeBufferPointer { y in Self.distance(x.baseAddress!, y.baseAddress!, count: a.dimension) }
        }
    }

    /// The Euclidean distance between `count` floats at `a` and at `b`, summed in Double (exact to float precision).
    static func distance(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, count: Int) -> Float {
        var s = 0.0
        for i in 0..<count {
            let d = Double(a[i]) - Double(b[i])
            s += d * d
        }
        return Float(s.squareRoot())
    }
}

/// Errors of the search and of the gallery (the file format has its own, `GalleryFileError`).
public enum FaceMatchError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The query or enrolled embedding has a different length from the gallery's.
    case dimensionMismatch(expected: Int, actual: Int)
    /// `k` must be at least 1.
    case invalidK(Int)
    /// An embedding contains NaN or infinity.
    case notFinite
    /// An all-zero embedding has no direction and cannot be normalised.
    case zeroVector
    /// A snapshot of another dimension cannot be published into this gallery.
    case invalidDimension(Int)
    /// Row indices are 32-bit.
    case tooManyRows(Int)

    public var description: String {
        switch self {
        case let .dimensionMismatch(expected, actual):
            return "embedding has \(actual) values, the gallery expects \(expected)"
        case let .invalidK(k): return "k must be at least 1 (got \(k))"
        case .notFinite: return "embedding contains NaN or infinity, or values too large to search"
        case .zeroVector: return "embedding is all zeros (not a face descriptor)"
        case let .tooManyRows(n): return "a gallery holds fewer than 2^32 rows (asked for \(n))"
        case let .invalidDimension(d): return "dimension must be between 1 and \(GallerySnapshot.maxDimension) (got \(d))"
        }
    }
}

/// One candidate student for a query.
///
/// Results are per *student*, not per enrolled row: a student with several
/// embeddings is represented by the closest one, and appears at most once.
/// Whether a match *counts* is not FaceMatch's decision: the application has one
/// rule for that (in this project, `RecognitionRules.accepts`).
public struct Match: Sendable, Equatable {
    /// The student's identifier, as enrolled.
    public let student: String
    /// Euclidean distance between the query and the student's closest embedding, both as
    /// given (for dlib descriptors: dlib's metric, where 0.6 is its reference threshold).
    public let distance: Float
    /// Distance to the best *other* student minus `distance`: how far ahead this
    /// student is. Positive for the best match (larger = less ambiguous), zero or
    /// negative for the others; `.infinity` when the gallery has no other student.
    public let margin: Float

    public init(student: String, distance: Float, margin: Float) {
        self.student = student
        self.distance = distance
        self.margin = margin
    }
}
