import AttendanceCore
import FaceEngine
import FaceMatch
import Foundation

/// A labelled person of an evaluation set: their photos, each already through the face engine.
public struct LabelledIdentity: Sendable, Codable {
    /// One frame of a photo (the photo itself, or a jittered copy standing for the next camera frame):
    /// what the engine measured on the face nearest the centre, nil where it found no face.
    public struct Frame: Sendable, Codable {
        public var box: FaceBox
        public var quality: FaceQuality
        public var descriptor: [Float]
        public init(box: FaceBox, quality: FaceQuality, descriptor: [Float]) {
            self.box = box; self.quality = quality; self.descriptor = descriptor
        }
    }
    public struct Photo: Sendable, Codable {
        public var file: String
        /// frames[0] is the photo as it is.
        public var frames: [Frame?]
        public init(file: String, frames: [Frame?]) { self.file = file; self.frames = frames }
    }
    public var name: String
    public var eastAsian: Bool
    public var photos: [Photo]
    public init(name: String, eastAsian: Bool, photos: [Photo]) {
        self.name = name; self.eastAsian = eastAsian; self.photos = photos
    }
}

/// The outcome counts of a set of presented tracks.
public struct TrackTally: Sendable, Equatable {
    public var tracks = 0
    /// Recorded as the right student.
    public var correct = 0
    /// Recorded as a student the face is not (a stranger recorded as anyone counts here too).
    public var wrong = 0
    /// Not recorded (unknown, ambiguous, undecided, or no usable face).
    public var unknown = 0
    public init() {}
    public mutating func add(_ o: TrackTally) {
        tracks += o.tracks; correct += o.correct; wrong += o.wrong; unknown += o.unknown
    }
}

/// A 1:N gate simulation: enrol some photos of each identity, present the others as tracks of
/// several frames through the gate's own policy code (`FaceTracker`, `RecognitionRules`,
/// `EnrolledFaces.Index`), and count what would have been recorded.
///
/// Two kinds of tracks: *enrolled* people presenting their other photos (a wrong record is a
/// confusion with a classmate), and *strangers*: each identity presented against a gallery without
/// it (leave-one-out), where any record is a wrong one.
public struct GateSimulation: Sendable {
    public var rules: RecognitionRules
    /// Photos enrolled per identity (the first ones, in file order).
    public var enrolPerIdentity: Int
    /// Frames in one presented track (2 s at 15 frames/s): the tracker re-embeds every few frames,
    /// cycling through the photo's jittered copies.
    public var trackFrames = 30
    public var fps = 15.0
    /// Learning from the gate: the photo after the enrolled ones is presented first as a "sighting";
    /// when the gate decides it rightly (as a teacher approving it would confirm), its embedding joins
    /// the student's enrolment, and the tracks are the photos after it.
    public var learnFromSightings = false
    /// Present only the photos from this index on (to compare enrolment strategies on the same tracks).
    public var firstProbe: Int?

    public init(rules: RecognitionRules, enrolPerIdentity: Int) {
        self.rules = rules
        self.enrolPerIdentity = enrolPerIdentity
    }

    public struct Report: Sendable, Equatable {
        public var enrolled = TrackTally(), enrolledEastAsian = TrackTally()
        public var strangers = TrackTally(), strangersEastAsian = TrackTally()
        /// Identities that could not be enrolled (no usable face in their enrolment photos).
        public var notEnrolled = 0
        /// Sightings added to the enrolment (learnFromSightings), and sightings decided wrongly (refused).
        public var learned = 0, refusedSightings = 0
    }

    /// Enrolment rows: each identity's first `enrolPerIdentity` usable photos.
    func enrolment(_ identities: [LabelledIdentity]) -> (
        rows: [(student: String, embedding: [Float])], probes: [String: [LabelledIdentity.Photo]]
    ) {
        var rows: [(student: String, embedding: [Float])] = []
        var probes: [String: [LabelledIdentity.Photo]] = [:]
        for id in identities {
            let enrolled = id.photos.prefix(enrolPerIdentity)
            for p in enrolled { if let f = p.frames.first ?? nil { rows.append((id.name, f.descriptor)) } }
            probes[id.name] = Array(id.photos.dropFirst(enrolPerIdentity))
        }
        return (rows, probes)
    }

    public func run(_ identities: [LabelledIdentity]) throws -> Report {
        var report = Report()
        var (rows, probes) = enrolment(identities)
        let enrolledNames = Set(rows.map(\.student))
        report.notEnrolled = identities.count - enrolledNames.count
        var index = try EnrolledFaces.Index(version: 0, rows: rows)
        if learnFromSightings {
            var learned: [(student: String, embedding: [Float])] = []
            for id in identities where enrolledNames.contains(id.name) {
                guard let sighting = probes[id.name]?.first else { continue }
                probes[id.name]?.removeFirst()
                let t = present(sighting, truth: id.name, index: index)
                if t.correct == 1, let f = sighting.frames.first ?? nil { learned.append((id.name, f.descriptor)) }
                if t.wrong == 1 { report.refusedSightings += 1 }
            }
            report.learned = learned.count
            rows += learned
            index = try EnrolledFaces.Index(version: 0, rows: rows)
        }
        if let first = firstProbe {
            for id in identities {
                probes[id.name] = Array(id.photos.dropFirst(first))
            }
        }
        for id in identities where enrolledNames.contains(id.name) {
            for photo in probes[id.name] ?? [] {
                let t = present(photo, truth: id.name, index: index)
                report.enrolled.add(t)
                if id.eastAsian { report.enrolledEastAsian.add(t) }
            }
        }
        // Strangers: the gallery without the identity, every photo of the identity presented.
        for id in identities {
            let others = rows.filter { $0.student != id.name }
            let without = try EnrolledFaces.Index(version: 0, rows: others)
            for photo in id.photos {
                let t = present(photo, truth: nil, index: without)
                report.strangers.add(t)
                if id.eastAsian { report.strangersEastAsian.add(t) }
            }
        }
        return report
    }

    /// One track: the photo's frames, cycled over `trackFrames` frames, through a fresh tracker.
    /// `truth` nil: a stranger, whom nothing should be recorded for.
    public func present(_ photo: LabelledIdentity.Photo, truth: String?, index: EnrolledFaces.Index) -> TrackTally {
        var tally = TrackTally()
        tally.tracks = 1
        let usable = photo.frames.compactMap { $0 }
        guard !usable.isEmpty else { tally.unknown = 1; return tally }
        let tracker = FaceTracker(rules: rules)
        for n in 0..<trackFrames {
            let frame = photo.frames[n % photo.frames.count] ?? usable[0]
            // The box of the photo as it is: the jitter moves the face a little, the tracker should not lose it.
            let box = usable[0].box
            let time = Double(n) / fps
            guard let id = tracker.update(boxes: [box], at: time).first,
                tracker.wantsEmbedding(track: id, quality: frame.quality)
            else { continue }
            let best = (try? index.best(frame.descriptor)) ?? nil
            switch tracker.vote(track: id, best: best, nearestOther: best.flatMap { index.nearestOther[$0.student] }) {
            case let .decided(student, _, _, _)?:
                if student == truth { tally.correct = 1 } else { tally.wrong = 1 }
                return tally
            case .unknown?, .ambiguous?:
                tally.unknown = 1
                return tally
            case nil:
                continue
            }
        }
        tally.unknown = 1
        return tally
    }
}

/// Same/different accept rates of single photo pairs at a threshold: the verification view.
public struct PairRates: Sendable, Equatable {
    public var threshold: Float
    public var same = 0, sameAccepted = 0
    public var different = 0, differentAccepted = 0
    public var sameRate: Double { same == 0 ? 0 : Double(sameAccepted) / Double(same) }
    public var differentRate: Double { different == 0 ? 0 : Double(differentAccepted) / Double(different) }

    /// The pairs a face of one would be taken for the other by, at `threshold` (the gate's `RecognitionRules.sameFace`).
    public static func measure(_ distances: [(distance: Float, same: Bool)], threshold: Float) -> PairRates {
        var rules = RecognitionRules(AttendanceConfig().recognition)
        rules.threshold = threshold
        var r = PairRates(threshold: threshold)
        for p in distances {
            let accepted = rules.sameFace(p.distance)
            if p.same {
                r.same += 1; if accepted { r.sameAccepted += 1 }
            } else {
                r.different += 1; if accepted { r.differentAccepted += 1 }
            }
        }
        return r
    }
}
