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

/// The outcome of one vote on a track.
public enum TrackOutcome: Sendable, Equatable {
    /// Enough agreeing matches: this student passed. `firstSeen` is when the track began (stream time).
    case decided(student: String, distance: Float, margin: Float, firstSeen: Double)
    /// Enough embeddings and none matched anyone: an unknown face (counted, never recorded as a student).
    case unknown(firstSeen: Double)
    /// Twice the needed votes and still no clear winner (matches too close to call): nothing is
    /// recorded or counted, and the track stops spending embeddings.
    case ambiguous(firstSeen: Double)
}

/// Follows faces across the frames of one camera, and decides who a track is by voting.
///
/// Not thread-safe: one tracker per camera, owned by that camera's task. Times are stream
/// seconds (monotonic), never wall-clock.
public final class FaceTracker {
    public struct Track {
        public let id: Int
        public var box: FaceBox
        public let firstSeen: Double
        public var lastSeen: Double
        /// Frames seen since the last embedding (nil: never embedded).
        var framesSinceEmbedding: Int?
        var votes: [Match?] = []
        /// Whether any embedding came under the threshold (so the face is not a stranger).
        var nearMatch = false
        /// The liveness checks of the track's embedded frames: the sum of the real scores of those that could be
        /// checked, and how many could.
        var livenessSum: Float = 0
        var livenessChecked = 0
        public var outcome: TrackOutcome?
    }

    public let rules: RecognitionRules
    public private(set) var tracks: [Track] = []
    private var nextID = 1

    public init(rules: RecognitionRules) { self.rules = rules }

    /// Whether faces are followed and every one of them is settled: decided, or known to be nobody enrolled, or
    /// too close to call (none of them is waiting for votes).
    public var allSettled: Bool { !tracks.isEmpty && tracks.allSatisfy { $0.outcome != nil } }

    /// Associates this frame's boxes with tracks (greedy by overlap), starts new tracks, ends stale ones.
    /// Returns, for each box in order, the id of its track.
    public func update(boxes: [FaceBox], at time: Double) -> [Int] {
        tracks.removeAll { time - $0.lastSeen > rules.trackTimeout }
        var pairs: [(overlap: Double, box: Int, track: Int)] = []
        for (b, box) in boxes.enumerated() {
            for (t, track) in tracks.enumerated() {
                let o = box.iou(track.box)
                if o >= rules.minOverlap { pairs.append((o, b, t)) }
            }
        }
        pairs.sort { $0.overlap > $1.overlap }
        var assigned = [Int?](repeating: nil, count: boxes.count)
        var used = Set<Int>()
        for p in pairs where assigned[p.box] == nil && !used.contains(p.track) {
            assigned[p.box] = p.track
            used.insert(p.track)
        }
        var ids: [Int] = []
        for (b, box) in boxes.enumerated() {
            if let t = assigned[b] {
                tracks[t].box = box
                tracks[t].lastSeen = time
                if let n = tracks[t].framesSinceEmbedding { tracks[t].framesSinceEmbedding = n + 1 }
                ids.append(tracks[t].id)
            } else {
                let track = Track(id: nextID, box: box, firstSeen: time, lastSeen: time)
                nextID += 1
                tracks.append(track)
                ids.append(track.id)
            }
        }
        return ids
    }

    /// Whether this track's face should be embedded now: good quality, and either never embedded,
    /// or not for `reembedEveryFrames` frames (undecided), or for `verifyEveryFrames` (decided: the
    /// box may now belong to someone else who stepped into the decided student's place).
    public func wantsEmbedding(track id: Int, quality: FaceQuality) -> Bool {
        guard let t = tracks.first(where: { $0.id == id }), rules.passes(quality) else { return false }
        return due(t)
    }

    /// The cheap part of `wantsEmbedding`, asked before a face's landmarks are found (they are the costly part
    /// of the quality check: dlib's HOG box refinement, about 29 ms a face): whether the track is due for an
    /// embedding on this frame at all and its box is not under the minimum face size. False means
    /// `wantsEmbedding` would say false whatever the landmarks; true still leaves the quality gate to it.
    public func mayWantEmbedding(track id: Int, boxSize: Float) -> Bool {
        guard let t = tracks.first(where: { $0.id == id }), boxSize >= rules.minFaceSize else { return false }
        return due(t)
    }

    /// The schedule: never embedded, or undecided and `reembedEveryFrames` since the last embedding, or decided
    /// and `verifyEveryFrames` since; never again once unknown or ambiguous.
    private func due(_ t: Track) -> Bool {
        guard let n = t.framesSinceEmbedding else { return true }
        switch t.outcome {
        case .unknown?, .ambiguous?: return false
        default: break
        }
        return n >= (t.outcome == nil ? rules.reembedEveryFrames : rules.verifyEveryFrames)
    }

    /// Whether this track still wants a liveness check (undecided: its decision will be judged by them).
    public func wantsLiveness(track id: Int) -> Bool {
        tracks.first(where: { $0.id == id }).map { $0.outcome == nil } ?? false
    }

    /// Adds a liveness check of one of the track's embedded frames.
    public func addLiveness(track id: Int, _ check: LivenessCheck) {
        guard let i = tracks.firstIndex(where: { $0.id == id }) else { return }
        // A frame that could not be checked adds nothing: the mean is over the frames that could.
        guard case .checked(let r) = check else { return }
        tracks[i].livenessSum += r.real
        tracks[i].livenessChecked += 1
    }

    /// The track's mean real score over its checked frames (nil: none could be checked).
    public func meanLiveness(track id: Int) -> Float? {
        guard let t = tracks.first(where: { $0.id == id }), t.livenessChecked > 0 else { return nil }
        return t.livenessSum / Float(t.livenessChecked)
    }

    /// Forgets a decision that could not be stored, so the track decides again.
    public func reopen(track id: Int) {
        guard let i = tracks.firstIndex(where: { $0.id == id }) else { return }
        tracks[i].outcome = nil
    }

    /// Adds the gallery's best match for a fresh embedding of the track (nil: empty gallery).
    /// `nearestOther`: how close the best student's nearest other enrolled student is (their risk
    /// radius, from `EnrolledFaces.Index.nearestOther`); look-alikes need a larger margin and more votes.
    /// Returns the outcome when this vote settles the track.
    public func vote(track id: Int, best: Match?, nearestOther: Float? = nil) -> TrackOutcome? {
        guard let i = tracks.firstIndex(where: { $0.id == id }) else { return nil }
        tracks[i].framesSinceEmbedding = 0
        let accepted = best.flatMap { m in rules.accepts(m, nearestOther: nearestOther) ? m : nil }
        if case let .decided(student, _, _, _)? = tracks[i].outcome {
            // A decided track is verified now and then: a different face in the box starts a new track.
            guard accepted?.student != student, best?.student != student || !rules.sameFace(best?.distance ?? .infinity) else {
                return nil
            }
            let box = tracks[i].box, seen = tracks[i].lastSeen
            tracks[i] = Track(id: nextID, box: box, firstSeen: seen, lastSeen: seen)
            nextID += 1
            tracks[i].framesSinceEmbedding = 0
        }
        tracks[i].votes.append(accepted)
        if let b = best, rules.sameFace(b.distance) { tracks[i].nearMatch = true }
        let votes = tracks[i].votes
        if let student = accepted?.student {
            let agreeing = votes.compactMap { $0 }.filter { $0.student == student }
            let others = votes.compactMap { $0 }.count - agreeing.count
            if agreeing.count >= rules.requiredVotes(nearestOther: nearestOther) && agreeing.count > others {
                let bestDistance = agreeing.map(\.distance).min()!
                let margin = agreeing.map(\.margin).min()!
                tracks[i].outcome = .decided(
                    student: student, distance: bestDistance, margin: margin, firstSeen: tracks[i].firstSeen)
                return tracks[i].outcome
            }
        }
        // An unknown face: `votes` embeddings and none of them near anyone.
        if votes.count >= rules.votes && !tracks[i].nearMatch {
            tracks[i].outcome = .unknown(firstSeen: tracks[i].firstSeen)
            return tracks[i].outcome
        }
        if votes.count >= 2 * rules.requiredVotes(nearestOther: nearestOther) {
            tracks[i].outcome = .ambiguous(firstSeen: tracks[i].firstSeen)
            return tracks[i].outcome
        }
        return nil
    }
}
