import AttendanceCore
import FaceEngine
import FaceMatch
import Foundation

/// Why a photo was not enrolled, in words a teacher can act on.
public enum EnrolmentRejection: Error, Sendable, Equatable, CustomStringConvertible {
    case unreadable(String)
    case noFace
    case severalFaces(Int)
    case tooSmall(size: Float, minimum: Float)
    case blurred(sharpness: Float, minimum: Float)
    case turnedAway(yaw: Float, maximum: Float)
    /// Closer to another student's enrolled face than the swap guard (the match threshold): a swapped photo?
    case looksLikeOtherStudent(String, distance: Float)
    /// Farther from this student's other photos than `sameStudentDistance`: someone else?
    case unlikeOwnPhotos(distance: Float, threshold: Float)
    case limitReached(Int)
    case noDescriptor
    /// A camera shot whose face did not look real (a photo or a screen held up): real score, nil if not checkable.
    case notLive(real: Float?, threshold: Float)

    public var description: String {
        func f(_ x: Float) -> String { String(format: "%.2f", x) }
        switch self {
        case .unreadable(let why): return "cannot read the image (\(why))"
        case .noFace: return "no face found; use a photo where the face is clearly visible"
        case .severalFaces(let n): return "\(n) faces in the photo; use a photo of this student alone"
        case let .tooSmall(size, minimum):
            return "face too small (\(Int(size)) px, at least \(Int(minimum)) px); take the photo closer or crop it"
        case let .blurred(sharpness, minimum):
            return "blurred (sharpness \(f(sharpness)), at least \(f(minimum))); hold the camera still, in good light"
        case let .turnedAway(yaw, maximum):
            return "face turned away (\(Int(yaw.magnitude))°, at most \(Int(maximum))°); the student should look at the camera"
        case let .looksLikeOtherStudent(other, distance):
            return "looks like student \(other), who is already enrolled (distance \(f(distance))): "
                + "is it the wrong student's photo? Check; if it is right (twins, siblings), enrol it anyway (force)"
        case let .unlikeOwnPhotos(distance, threshold):
            return "does not look like this student's other photos (distance \(f(distance)), at most \(f(threshold)) expected): "
                + "a photo of someone else? Check; if it is right, enrol it anyway (force)"
        case .limitReached(let n):
            return "the student already has \(n) enrolled faces (the limit); remove them first to replace them"
        case .noDescriptor: return "the face could not be measured"
        case let .notLive(real?, threshold):
            return "the face looked like a photo or a screen (real score \(f(real)), at least \(f(threshold))): "
                + "enrol from the camera only with the student in front of it, or from their photo (photos are not checked)"
        case .notLive(nil, _):
            return "the face could not be checked for a photo or a screen (it fills the view, or is at its edge): step back"
        }
    }

    /// The same reason as a short instruction for the person in front of a camera (live enrolment feedback).
    public var liveHint: String {
        switch self {
        case .noFace: return "no face in view"
        case .severalFaces(let n): return "\(n) faces in view: only the student, please"
        case let .tooSmall(size, minimum): return "face too small (\(Int(size)) px, need \(Int(minimum))): come closer"
        case .blurred: return "blurred: hold still"
        case let .turnedAway(yaw, _): return "turned away (\(Int(yaw.magnitude))°): look straight at the camera"
        case .notLive(_?, _): return "looks like a photo or a screen: the student in person, please"
        case .notLive(nil, _): return "cannot check the face: step back a little"
        default: return description
        }
    }

    /// Rejections a teacher may override (the photo itself is fine; `force`).
    public var isForceable: Bool {
        switch self {
        case .looksLikeOtherStudent, .unlikeOwnPhotos: return true
        default: return false
        }
    }
}

/// The quality and identity checks an enrolment photo must pass. Pure: no I/O, so it is tested alone.
public struct EnrolmentGate: Sendable {
    public var recognition: AttendanceConfig.Recognition
    public init(recognition: AttendanceConfig.Recognition) { self.recognition = recognition }

    /// Faces smaller than this share of the largest one are background people, not "several faces".
    static let backgroundFaceRatio: Float = 0.35

    /// The face to enrol, or why not. `others`: every other student's embeddings; `own`: this student's.
    public func assess(
        faces: [Face], others: [(student: String, embedding: [Float])], own: [[Float]],
        force: Bool
    ) -> Result<Face, EnrolmentRejection> {
        let largest: Face
        switch quality(faces) {
        case .failure(let why): return .failure(why)
        case .success(let face): largest = face
        }
        guard let d = largest.descriptor else { return .failure(.noDescriptor) }
        if !force, let why = identityProblem(d.values, others: others, own: own) { return .failure(why) }
        return .success(largest)
    }

    /// The one face of a photo or camera frame good enough to enrol, or why not: exactly one person (faces
    /// much smaller than the largest are people in the background), large, sharp and frontal enough.
    public func quality(_ faces: [Face]) -> Result<Face, EnrolmentRejection> {
        guard let largest = faces.max(by: { $0.quality.boxSize < $1.quality.boxSize }) else { return .failure(.noFace) }
        let people = faces.filter { $0.quality.boxSize >= largest.quality.boxSize * Self.backgroundFaceRatio }
        if people.count > 1 { return .failure(.severalFaces(people.count)) }
        let q = largest.quality
        if q.boxSize < recognition.minFaceSize { return .failure(.tooSmall(size: q.boxSize, minimum: recognition.minFaceSize)) }
        if q.sharpness < recognition.minSharpness {
            return .failure(.blurred(sharpness: q.sharpness, minimum: recognition.minSharpness))
        }
        if q.yaw.magnitude > recognition.maxYaw { return .failure(.turnedAway(yaw: q.yaw, maximum: recognition.maxYaw)) }
        return .success(largest)
    }

    /// A camera shot must show the student themself, not their photo on a phone or on paper (recognition.liveness
    /// not "off"; photos from files are photos, and are not checked).
    public func livenessProblem(_ check: LivenessCheck) -> EnrolmentRejection? {
        guard recognition.liveness != .off else { return nil }
        switch RecognitionRules(recognition).verdict(check) {
        case .real: return nil
        case .spoof(let score): return .notLive(real: score, threshold: recognition.livenessThreshold)
        case .notCheckable: return .notLive(real: nil, threshold: recognition.livenessThreshold)
        }
    }

    /// Whether an embedding may join this student's enrolment: not closer to another student than the
    /// swap guard (it would be recognised as them), not farther from the student's own faces than
    /// `sameStudentDistance`. For photos, camera shots and approved gate sightings alike.
    public func identityProblem(_ probe: [Float], others: [(student: String, embedding: [Float])], own: [[Float]])
        -> EnrolmentRejection?
    {
        // A probe the gallery cannot hold (NaN, all zeros, another length than dlib's) is no face descriptor:
        // stored, it would stop every later gallery reload.
        guard probe.count == Embedding.dlibDimension, (try? Embedding(probe).validatedSquaredNorm()) != nil else {
            return .noDescriptor
        }
        let rules = RecognitionRules(recognition)
        if let nearest = Self.nearest(probe, among: others), rules.looksLikeAnotherStudent(nearest) {
            return .looksLikeOtherStudent(nearest.student, distance: nearest.distance)
        }
        if !own.isEmpty {
            // Fails closed: own faces that cannot be compared count as unlike (as the old linear check did).
            let closestOwn = Self.nearest(probe, among: own.map { (student: "", embedding: $0) })
            if closestOwn.map(rules.unlikeOwnFaces) ?? true {
                return .unlikeOwnPhotos(distance: closestOwn?.distance ?? .infinity, threshold: recognition.sameStudentDistance)
            }
        }
        return nil
    }

    /// The nearest of `rows` to `probe` by FaceMatch (dlib's metric, as at the gate); rows that cannot be
    /// compared (another length, NaN, all zeros: a damaged row) are left out one by one. Nil when no row is left.
    static func nearest(_ probe: [Float], among rows: [(student: String, embedding: [Float])]) -> Match? {
        let usable = rows.filter {
            $0.embedding.count == probe.count && (try? Embedding($0.embedding).validatedSquaredNorm()) != nil
        }
        guard !usable.isEmpty else { return nil }
        do {
            let gallery = try Gallery(dimension: probe.count)
            try gallery.replaceAll(usable.map { GalleryEntry(student: $0.student, embedding: Embedding($0.embedding)) })
            return try gallery.snapshot().search(Embedding(probe), k: 1).first
        } catch {
            return nil
        }
    }
}
