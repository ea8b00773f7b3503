import AttendanceCore
import FaceEngine
import FaceMatch
import Foundation

/// Recognition rules shared by the tracker and the decider (from the config's [recognition]).
public struct RecognitionRules: Sendable {
    public var threshold: Float
    public var minMargin: Float
    public var votes: Int
    public var minFaceSize: Float
    public var minSharpness: Float
    public var maxYaw: Float
    /// Re-embed an undecided track every this many frames it is seen. 1 (#16): a track is decided on its first
    /// `votes` frames (200 ms at 15 frames/s), not frames 0, 3, 6 (400 ms before any compute); it costs the same
    /// embeddings, `votes` per decided track, only sooner.
    public var reembedEveryFrames = 1
    /// Re-check a decided track every this many frames (someone else may have taken its place).
    public var verifyEveryFrames = 10
    /// A track not seen for this long (seconds of stream time) ends.
    public var trackTimeout: Double = 1.0
    /// Boxes overlapping at least this much (IoU) continue a track.
    public var minOverlap: Double = 0.3
    /// The margin demanded of a match for a look-alike student (see `isLookalike`).
    public var lookalikeMargin: Float
    /// Votes a look-alike student needs on top of `votes`.
    public var lookalikeExtraVotes: Int
    /// Propose decided sightings for the teacher's approval (the store keeps none for a student whose
    /// enrolment is full: `recognition.max_embeddings_per_student`).
    public var learnFromGate: Bool
    /// A new enrolment this close to another student's face is refused (a swapped photo?).
    public var swapGuardDistance: Float
    /// A new enrolment farther than this from all of the student's own faces is refused (someone else?).
    public var sameStudentDistance: Float
    /// The real score under which a face or a track is judged a spoof (what it then becomes is
    /// `AttendanceDecider.decide`'s, by `recognition.liveness`).
    public var livenessThreshold: Float
    /// How the face engines find faces (`recognition.detector`): every engine of the gate and of the photo
    /// commands is made with these options (`FaceEngine(models:recognition:)`), so a photo and a camera frame
    /// go through the same detector.
    public var engineOptions = FaceEngine.Options()

    public init(_ c: AttendanceConfig.Recognition) {
        threshold = c.threshold
        minMargin = c.minMargin
        votes = c.votes
        minFaceSize = c.minFaceSize
        minSharpness = c.minSharpness
        maxYaw = c.maxYaw
        lookalikeMargin = c.lookalikeMargin
        lookalikeExtraVotes = c.lookalikeExtraVotes
        learnFromGate = c.learnFromGate
        swapGuardDistance = c.swapGuardDistance
        sameStudentDistance = c.sameStudentDistance
        livenessThreshold = c.livenessThreshold
        engineOptions.detector = c.detector == .yunet ? .yunet : .res10
    }

    /// A student is a look-alike when another enrolled student's face lies within the threshold plus
    /// the margin of one of theirs (siblings, twins, or just close): a probe of either could land
    /// under the threshold for both. `nearestOther` is that distance (the student's "risk radius";
    /// nil: no other student enrolled).
    public func isLookalike(nearestOther: Float?) -> Bool {
        guard let d = nearestOther else { return false }
        return d < threshold + minMargin
    }

    /// The margin a match must have over the next student.
    public func requiredMargin(nearestOther: Float?) -> Float {
        isLookalike(nearestOther: nearestOther) ? max(minMargin, lookalikeMargin) : minMargin
    }

    /// Agreeing votes a track needs before it is decided as this student.
    public func requiredVotes(nearestOther: Float?) -> Int {
        votes + (isLookalike(nearestOther: nearestOther) ? lookalikeExtraVotes : 0)
    }

    /// The one rule that says whether a single match counts for its student: close enough, and
    /// clearly closer than the next student (by more for a look-alike). The gate's tracker, `identify`
    /// and the accuracy bench all call this.
    public func accepts(_ match: Match, nearestOther: Float?) -> Bool {
        sameFace(match.distance) && match.margin >= requiredMargin(nearestOther: nearestOther)
    }

    /// Whether two faces this far apart (dlib's metric) can be the same person: under the threshold.
    public func sameFace(_ distance: Float) -> Bool { distance < threshold }

    /// Enrolment's swap guard: a face whose nearest *other* student matches this closely would be
    /// recognised as them.
    public func looksLikeAnotherStudent(_ nearestOther: Match) -> Bool { nearestOther.distance < swapGuardDistance }

    /// Enrolment's second guard: a face this far from every one of the student's own faces is probably
    /// someone else's.
    public func unlikeOwnFaces(_ nearestOwn: Match) -> Bool { nearestOwn.distance > sameStudentDistance }

    /// The verdict on one liveness check: real when the combined real score reaches the threshold.
    public func verdict(_ check: LivenessCheck) -> LivenessVerdict {
        switch check {
        case .checked(let r): return r.real >= livenessThreshold ? .real : .spoof(score: r.real)
        case .notCheckable: return .notCheckable
        }
    }

    /// The verdict on a track: its mean real score over the frames that could be checked; not checkable when none
    /// could (a face that filled the frame or stayed at its edge proves nothing either way).
    public func verdict(meanReal: Float?) -> LivenessVerdict {
        guard let meanReal else { return .notCheckable }
        return meanReal >= livenessThreshold ? .real : .spoof(score: meanReal)
    }

    /// Whether a face is good enough to embed at the gate.
    public func passes(_ q: FaceQuality) -> Bool {
        q.boxSize >= minFaceSize && q.sharpness >= minSharpness && abs(q.yaw) <= maxYaw
    }
}

/// What the liveness check says of a face or a track.
public enum LivenessVerdict: Sendable, Equatable {
    case real
    /// Looks like a print or a screen: the (mean) real score, under the threshold.
    case spoof(score: Float)
    /// No check was possible (see `LivenessCheck.notCheckable`).
    case notCheckable

    public var label: String {
        switch self {
        case .real: return "real"
        case .spoof: return "spoof"
        case .notCheckable: return "not checkable"
        }
    }
}

extension FaceEngine {
    /// An engine with the school's detector (`[recognition] detector`): the one way the gate, the enrolment and
    /// the photo commands make theirs.
    public convenience init(models: ModelPaths = .discover(), recognition: AttendanceConfig.Recognition) throws(FaceEngineError) {
        try self.init(models: models, options: RecognitionRules(recognition).engineOptions)
    }
}
