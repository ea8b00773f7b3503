import AttendanceCore
import FaceEngine
import Foundation

/// The outcome for one photo.
public struct PhotoOutcome: Sendable, Equatable {
    public var source: String
    /// nil: accepted and stored.
    public var rejection: EnrolmentRejection?
    public var quality: FaceQuality?
    /// Accepted only because of --force (audited as such).
    public var forced: Bool
    public var accepted: Bool { rejection == nil }
}

/// Enrols a student's face from photos: consent first, every photo through the `EnrolmentGate`,
/// then the accepted embeddings sealed and stored in one transaction. No image is kept.
public struct Enroller: Sendable {
    public let store: AttendanceStore
    /// The school's recognition settings (limits, quality, identity checks): the store's, given once.
    public var recognition: AttendanceConfig.Recognition { store.config.recognition }

    public init(store: AttendanceStore) {
        self.store = store
    }

    /// Throws when the student cannot be enrolled at all (unknown, inactive, no consent).
    public func checkEligible(_ student: String) throws {
        guard let s = try store.roster.student(code: student) else { throw StoreError.unknownStudent(student) }
        guard s.active else { throw StoreError.inactiveStudent(student) }
        guard try store.consent.active(student: student) != nil else { throw StoreError.noConsent(student) }
    }

    /// Enrols from image files, running `engine` on each.
    public func enrol(student: String, photos: [String], engine: FaceEngine, force: Bool = false) throws -> [PhotoOutcome] {
        try checkEligible(student)
        return try enrol(student: student, detected: Self.detect(photos: photos, engine: engine), force: force)
    }

    /// The faces `engine` finds in each image file (an unreadable file is its own rejection).
    public static func detect(
        photos: [String], engine: FaceEngine
    ) -> [(source: String, faces: Result<[Face], EnrolmentRejection>)] {
        var inputs: [(source: String, faces: Result<[Face], EnrolmentRejection>)] = []
        for path in photos {
            do throws(FaceEngineError) {
                inputs.append((path, .success(try engine.faces(inFile: path))))
            } catch {
                inputs.append((path, .failure(.unreadable(error.message.isEmpty ? error.operation : error.message))))
            }
        }
        return inputs
    }

    /// Enrols from encoded images held in memory (the console's uploads: never written to disk).
    public func enrol(
        student: String, images: [(name: String, bytes: [UInt8])], engine: FaceEngine, force: Bool = false
    ) throws -> [PhotoOutcome] {
        try checkEligible(student)
        return try enrol(student: student, detected: Self.detect(images: images, engine: engine), force: force)
    }

    /// The faces `engine` finds in each encoded image held in memory (an undecodable one is its own rejection).
    public static func detect(
        images: [(name: String, bytes: [UInt8])], engine: FaceEngine
    ) -> [(source: String, faces: Result<[Face], EnrolmentRejection>)] {
        var inputs: [(source: String, faces: Result<[Face], EnrolmentRejection>)] = []
        for (name, bytes) in images {
            do throws(FaceEngineError) {
                inputs.append((name, .success(try engine.faces(in: try Image(encoded: bytes)))))
            } catch {
                inputs.append((name, .failure(.unreadable(error.message.isEmpty ? error.operation : error.message))))
            }
        }
        return inputs
    }

    /// Enrols from faces already detected (photos, or frames from a camera).
    public func enrol(
        student: String, detected: [(source: String, faces: Result<[Face], EnrolmentRejection>)],
        force: Bool = false
    ) throws -> [PhotoOutcome] {
        let (outcomes, accepted) = try assess(student: student, detected: detected, force: force)
        if !accepted.isEmpty {
            try store.enrolments.add(student: student, accepted)
        }
        return outcomes
    }

    /// `enrol`'s checks without storing: each photo's outcome, and the accepted faces to store (here, or on the
    /// school's server in postgresql mode, where this box's store is a copy the server refreshes).
    public func assess(
        student: String, detected: [(source: String, faces: Result<[Face], EnrolmentRejection>)],
        force: Bool = false
    ) throws -> (outcomes: [PhotoOutcome], accepted: [(embedding: [Float], quality: String?, source: String?)]) {
        try checkEligible(student)
        let all = try store.enrolments.all()
        let others = all.filter { $0.student != student }
        var own = all.filter { $0.student == student }.map(\.embedding)
        let existing = own.count
        let gate = EnrolmentGate(recognition: recognition)
        var outcomes: [PhotoOutcome] = []
        var accepted: [(embedding: [Float], quality: String?, source: String?)] = []
        for (source, faces) in detected {
            let name = (source as NSString).lastPathComponent
            switch faces {
            case .failure(let why):
                outcomes.append(PhotoOutcome(source: source, rejection: why, quality: nil, forced: false))
            case .success(let faces):
                let strict = gate.assess(faces: faces, others: others, own: own, force: false)
                var result = strict
                var forced = false
                if force, case .failure(let why) = strict, why.isForceable {
                    result = gate.assess(faces: faces, others: others, own: own, force: true)
                    forced = true
                }
                switch result {
                case .failure(let why):
                    outcomes.append(PhotoOutcome(source: source, rejection: why, quality: faces.first?.quality, forced: false))
                case .success(let face):
                    if existing + accepted.count >= recognition.maxEmbeddingsPerStudent {
                        outcomes.append(
                            PhotoOutcome(
                                source: source, rejection: .limitReached(recognition.maxEmbeddingsPerStudent),
                                quality: face.quality, forced: false))
                        continue
                    }
                    let embedding = face.descriptor!.values
                    own.append(embedding)
                    accepted.append(
                        (
                            embedding, Self.qualityJSON(face.quality, forced: forced),
                            (forced ? "forced:" : "") + "photo:" + name
                        ))
                    outcomes.append(PhotoOutcome(source: source, rejection: nil, quality: face.quality, forced: forced))
                }
            }
        }
        return (outcomes, accepted)
    }

    /// The teacher approves a gate sighting: the same identity checks as a photo, then it joins the
    /// student's enrolment. Returns why not (nothing changed), or nil when it was added.
    public func approveSighting(id: Int64, force: Bool = false) throws -> EnrolmentRejection? {
        let (_, _, problem) = try assessSighting(id: id, force: force)
        if let problem { return problem }
        try store.enrolments.promoteSighting(id: id)
        return nil
    }

    /// `approveSighting`'s checks, changing nothing: the sighting, its embedding, and why it may not join the
    /// student's enrolment (nil: it may). With `[database] backend = "postgresql"` the school's server stores it.
    public func assessSighting(id: Int64, force: Bool = false) throws -> (
        sighting: GateSighting, embedding: [Float], problem: EnrolmentRejection?
    ) {
        let (sighting, embedding) = try store.enrolments.sightingEmbedding(id: id)
        try checkEligible(sighting.student)
        let all = try store.enrolments.all()
        guard !force else { return (sighting, embedding, nil) }
        let why = EnrolmentGate(recognition: recognition).identityProblem(
            embedding, others: all.filter { $0.student != sighting.student },
            own: all.filter { $0.student == sighting.student }.map(\.embedding))
        return (sighting, embedding, why)
    }

    static func qualityJSON(_ q: FaceQuality, forced: Bool) -> String {
        func r(_ x: Float) -> Double { (Double(x) * 100).rounded() / 100 }
        var fields = "\"box_size\":\(r(q.boxSize)),\"sharpness\":\(r(q.sharpness)),\"yaw\":\(r(q.yaw)),\"score\":\(r(q.score))"
        if forced { fields += ",\"forced\":true" }
        return "{\(fields)}"
    }

    /// The image files of a folder, sorted (jpg, jpeg, png, bmp).
    public static func photos(in directory: String) throws -> [String] {
        let names: [String]
        do { names = try FileManager.default.contentsOfDirectory(atPath: directory) } catch {
            throw StoreError.io(path: directory, reason: "cannot list the folder")
        }
        return names.filter { ["jpg", "jpeg", "png", "bmp"].contains(($0 as NSString).pathExtension.lowercased()) }
            .sorted().map { (directory as NSString).appendingPathComponent($0) }
    }
}
