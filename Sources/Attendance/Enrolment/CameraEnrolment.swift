import AttendanceCore
import CaptureKit
import FaceEngine
import Foundation

/// Enrolment from a camera (`attendance enrol --camera`): takes good shots of the student standing in front of it, then
/// enrols them through the same gate as photos (consent, quality, swapped-photo and own-photo checks).
///
/// A shot must pass the photo quality gate (one face, large, sharp, facing the camera) and, unless
/// `recognition.liveness = "off"`, look real: a photo or a phone held up to the camera is refused
/// (`EnrolmentGate.livenessProblem`). Shots are at least `minimumGap` apart, so they are not the same frame twice.
public struct CameraEnrolment: Sendable {
    /// What the person in front of the camera is told, frame by frame (said once until it changes).
    public enum Feedback: Sendable, Equatable {
        /// Why this frame is not a shot, as an instruction ("come closer").
        case instruction(EnrolmentRejection)
        /// A shot was taken: `taken` of `wanted`.
        case shot(taken: Int, wanted: Int)
    }

    /// No good shot came before the time ran out (nothing enrolled).
    public struct NoGoodShot: Error, CustomStringConvertible {
        public var seconds: Int
        /// The last refusal of a face that did not look real, if that was what stopped the shots.
        public var notLive: EnrolmentRejection?
        public var description: String {
            "no good shot within \(seconds) s; nothing enrolled" + (notLive.map { " (\($0))" } ?? "")
        }
    }

    public let enroller: Enroller
    public var shots: Int
    public var timeout: Duration
    public var minimumGap: Duration = .milliseconds(500)
    public var models: ModelPaths

    public init(store: AttendanceStore, shots: Int = 3, timeout: Duration = .seconds(60), models: ModelPaths = .discover()) {
        self.enroller = Enroller(store: store)
        self.shots = shots
        self.timeout = timeout
        self.models = models
    }

    /// Takes up to `shots` shots from `source`, then enrols them. Throws before opening anything when the student
    /// cannot be enrolled (unknown, inactive, no consent), `NoGoodShot` when no shot came in time.
    public func run(
        student: String, source: some FrameSource, force: Bool = false, feedback: (Feedback) -> Void = { _ in }
    ) async throws -> [PhotoOutcome] {
        let taken = try await takeShots(student: student, source: source, feedback: feedback)
        return try enroller.enrol(student: student, detected: taken, force: force)
    }

    /// `run`'s shots, not enrolled (with the school's server, `attendance enrol` stores them there first).
    public func takeShots(
        student: String, source: some FrameSource, feedback: (Feedback) -> Void = { _ in }
    ) async throws -> [(source: String, faces: Result<[Face], EnrolmentRejection>)] {
        try enroller.checkEligible(student)
        let recognition = enroller.recognition
        let engine = try FaceEngine(models: models, recognition: recognition)
        let liveness = recognition.liveness == .off ? nil : try LivenessChecker(models: models)
        let gate = EnrolmentGate(recognition: recognition)
        var taken: [(source: String, faces: Result<[Face], EnrolmentRejection>)] = []
        let started = ContinuousClock.now
        var lastShot: ContinuousClock.Instant?
        var notLive: EnrolmentRejection?
        for try await frame in source {
            if ContinuousClock.now - started > timeout { break }
            let image = try Image(bgr: frame.pixels, width: frame.width, height: frame.height)
            let faces = try engine.faces(in: image)
            switch gate.quality(faces) {
            case .failure(let why):
                feedback(.instruction(why))
            case .success(let face):
                if let liveness, let why = gate.livenessProblem(try liveness.check(face.box, foundBy: engine.detector, in: image))
                {
                    notLive = why
                    feedback(.instruction(why))
                    continue
                }
                if let last = lastShot, ContinuousClock.now - last < minimumGap { continue }
                lastShot = ContinuousClock.now
                taken.append((source: "camera shot \(taken.count + 1)", faces: .success(faces)))
                feedback(.shot(taken: taken.count, wanted: shots))
            }
            if taken.count >= shots { break }
        }
        guard !taken.isEmpty else { throw NoGoodShot(seconds: Int(timeout.components.seconds), notLive: notLive) }
        return taken
    }
}
