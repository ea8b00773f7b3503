import AttendanceCore
import CaptureKit
import FaceEngine
import FaceMatch
import Foundation
import Logging
import Metrics

/// Something the pipeline reports as it happens (the demo prints these; the daemon logs them).
public enum PipelineEvent: Sendable {
    case recorded(NewAttendanceEvent, decisionLatency: Duration)
    case skipped(student: String, camera: String, result: DecisionResult)
    case unknownFace(camera: String, at: Date)
    case finished(camera: String, stats: PipelineStatistics)
}

/// Counters of one camera's pipeline.
public struct PipelineStatistics: Sendable, Equatable {
    public var frames = 0
    public var faces = 0
    public var embeddings = 0
    /// Faces whose landmarks were found (the faces of tracks due for an embedding, for the quality gate).
    public var landmarkRuns = 0
    /// Liveness checks run (on embedded frames of undecided tracks), and the decided tracks judged not real.
    public var livenessChecks = 0
    public var spoofs = 0
    public var decisions = 0
    public var unknowns = 0
    public var droppedFrames: UInt64 = 0
    /// Frames the motion gate kept from the detector (nothing moved, no face followed).
    public var gatedFrames = 0
    public var detectTime: Duration = .zero
    public var landmarksTime: Duration = .zero
    public var embedTime: Duration = .zero
    public var livenessTime: Duration = .zero
    public var searchTime: Duration = .zero
    public var storeTime: Duration = .zero
    public var wallTime: Duration = .zero
    public init() {}
}

/// How frame times map to record times.
public enum PipelineClock: Sendable {
    /// Live cameras: records carry the frame's wall-clock time; tracking uses the monotonic capture time.
    case live
    /// Replay of a file: frame N happens at `start + N / fps * scale` (scale 60 turns a second of
    /// video into a minute of school time, so a short clip can cover a morning).
    case replay(start: Date, fps: Double, scale: Double)

    func times(_ frame: Frame) -> (stream: Double, wall: Date) {
        switch self {
        case .live:
            return (Double(frame.capturedAt.nanoseconds) / 1e9, frame.wallTime)
        case let .replay(start, fps, scale):
            let t = Double(frame.deviceSequence) / max(fps, 1)
            return (t, start.addingTimeInterval(t * scale))
        }
    }
}

/// One camera: frames -> faces -> tracks -> votes -> decisions. Owns its face engine
/// (not thread-safe), reads the enrolled faces' current index for every embedding,
/// and hands decided students to the shared decider.
public struct CameraPipeline: Sendable {
    public let camera: AttendanceConfig.Camera
    public let rules: RecognitionRules
    public let models: ModelPaths
    public let faces: EnrolledFaces
    public let decider: AttendanceDecider
    public let clock: PipelineClock
    public let privacy: AttendanceConfig.Privacy
    public let logger: Logger
    /// Told when each frame starts and ends (the daemon's health and watchdog).
    public let monitor: GateState?
    /// The motion gate's settings (`[capture]`).
    public let capture: AttendanceConfig.Capture

    public init(
        camera: AttendanceConfig.Camera, rules: RecognitionRules, models: ModelPaths, faces: EnrolledFaces,
        decider: AttendanceDecider, clock: PipelineClock, privacy: AttendanceConfig.Privacy, logger: Logger,
        monitor: GateState? = nil, capture: AttendanceConfig.Capture = AttendanceConfig.Capture()
    ) {
        self.camera = camera; self.rules = rules; self.models = models; self.faces = faces
        self.decider = decider; self.clock = clock; self.privacy = privacy; self.logger = logger; self.monitor = monitor
        self.capture = capture
    }

    /// Runs until the source ends or the task is cancelled. Errors of single frames are
    /// logged and counted, never fatal; only a source that cannot be opened at all throws.
    public func run(source: some FrameSource, onEvent: @Sendable (PipelineEvent) -> Void = { _ in }) async throws
        -> PipelineStatistics
    {
        let engine = try FaceEngine(models: models, options: rules.engineOptions)
        let liveness = decider.livenessMode == .off ? nil : try LivenessChecker(models: models)
        let tracker = FaceTracker(rules: rules)
        let dims: [(String, String)] = [("camera", camera.id)]
        let framesCounter = Counter(label: "attendance_frames_total", dimensions: dims)
        let facesCounter = Counter(label: "attendance_faces_total", dimensions: dims)
        let matchesCounter = Counter(label: "attendance_matches_total", dimensions: dims)
        let unknownCounter = Counter(label: "attendance_unknown_faces_total", dimensions: dims)
        let decisionsCounter = Counter(label: "attendance_decisions_total", dimensions: dims)
        let droppedCounter = Counter(label: "attendance_dropped_frames_total", dimensions: dims)
        let clockRefusals = Counter(label: "attendance_clock_refusals_total", dimensions: dims)
        let storeFailures = Counter(label: "attendance_store_failures_total", dimensions: dims)
        let livenessCounter = Counter(label: "attendance_liveness_checks_total", dimensions: dims)
        let spoofCounter = { (action: String) in
            Counter(label: "attendance_spoofs_total", dimensions: dims + [("action", action)])
        }
        let spoofsHeld = spoofCounter("held"), spoofsRefused = spoofCounter("refused")
        let stageTimer = { (stage: String) in
            Metrics.Timer(label: "attendance_stage_seconds", dimensions: dims + [("stage", stage)])
        }
        let detectTimer = stageTimer("detect"), landmarksTimer = stageTimer("landmarks"), embedTimer = stageTimer("embed")
        let searchTimer = stageTimer("search"), storeTimer = stageTimer("store"), livenessTimer = stageTimer("liveness")
        let latencyTimer = Metrics.Timer(label: "attendance_decision_latency_seconds", dimensions: dims)

        var stats = PipelineStatistics()
        let clockStart = ContinuousClock.now
        var firstSeenReal: [Int: ContinuousClock.Instant] = [:]
        var lastSequence: UInt64?
        let motionGate = capture.motionGate ? MotionGate(settings: capture) : nil

        /// One face's failure costs that face only, never the other faces of the frame: logged, and the frame goes on.
        func faceSkipped(sequence: UInt64, track: Int, _ error: any Error) {
            logger.warning(
                "face skipped",
                metadata: ["camera": "\(camera.id)", "sequence": "\(sequence)", "track": "\(track)", "error": "\(error)"])
        }

        func timed<T>(_ total: inout Duration, _ timer: Metrics.Timer, _ body: () throws -> T) rethrows -> T {
            let t0 = ContinuousClock.now
            let r = try body()
            let d = ContinuousClock.now - t0
            total += d
            timer.recordNanoseconds(Int64(d.components.seconds) * 1_000_000_000 + d.components.attoseconds / 1_000_000_000)
            return r
        }

        /// Two stages: the first (`firstStage`, a child task) waits for the source's next frame, asks the motion gate
        /// and runs the detector; the second (`handle`) follows tracks, computes landmarks and embeddings, votes and
        /// decides. The second stage of frame N runs while the first waits for frame N+1 and detects it: a frame is
        /// handled as soon as it is detected (not when the next one arrives), the source is asked for a frame while
        /// the previous one is still being handled (latest-frame delivery drops only what comes while neither stage
        /// waits, and the drops are counted), and the camera's work spreads over both cores. The detector has its
        /// own engine (without the embedding network), so each engine stays on one task at a time.
        var detectOptions = rules.engineOptions
        detectOptions.embeddings = false
        let detector = Unchecked(try FaceEngine(models: models, options: detectOptions))
        var pending: Unchecked<DetectedFrame>?

        /// The second stage: tracks, landmarks, embeddings, votes and decisions of a detected frame.
        func handle(_ detected: Unchecked<DetectedFrame>) async throws {
            let d = detected.value
            let image = d.image, found = d.found, streamTime = d.streamTime, wallTime = d.wallTime, arrived = d.arrived
            let sequence = d.sequence
            stats.detectTime += d.detectTime
            detectTimer.recordNanoseconds(Int64(d.detectTime / .nanoseconds(1)))
            stats.faces += found.count
            facesCounter.increment(by: found.count)
            do {
                let ids = tracker.update(boxes: found.map(\.box), at: streamTime)
                for id in ids where firstSeenReal[id] == nil { firstSeenReal[id] = arrived }
                let live = Set(tracker.tracks.map(\.id))
                firstSeenReal = firstSeenReal.filter { live.contains($0.key) }

                // The faces to embed on this frame: their tracks are due, and they pass the quality gate.
                var wanted: [(face: (box: FaceBox, score: Float), id: Int, points: [Point], quality: FaceQuality)] = []
                for (face, id) in zip(found, ids) {
                    // One face's failure costs that face only, never the other faces of the frame.
                    do {
                        // Landmarks (with dlib's HOG box refinement) cost about as much as the embedding: a face
                        // whose track is not due for an embedding, or whose box is too small, is not looked at.
                        guard tracker.mayWantEmbedding(track: id, boxSize: Float(min(face.box.width, face.box.height)))
                        else { continue }
                        stats.landmarkRuns += 1
                        let points = try timed(&stats.landmarksTime, landmarksTimer) {
                            try engine.landmarks(in: image, box: face.box, score: face.score)
                        }
                        let quality = try engine.quality(in: image, box: face.box, score: face.score, landmarks: points)
                        guard tracker.wantsEmbedding(track: id, quality: quality) else {
                            logger.trace(
                                "face not embedded",
                                metadata: [
                                    "camera": "\(camera.id)", "track": "\(id)", "size": "\(quality.boxSize)",
                                    "sharpness": "\(quality.sharpness)", "yaw": "\(quality.yaw)",
                                ])
                            continue
                        }
                        wanted.append((face, id, points, quality))
                    } catch let error as CancellationError {
                        throw error
                    } catch {
                        faceSkipped(sequence: sequence, track: id, error)
                    }
                }
                // Several faces in one pass of the network (a rush frame holds several new faces); if the batch
                // fails, each face alone, so one face's failure still costs only that face.
                var descriptors: [FaceDescriptor?] = []
                if !wanted.isEmpty {
                    do {
                        descriptors = try timed(&stats.embedTime, embedTimer) {
                            try engine.descriptors(in: image, landmarks: wanted.map(\.points))
                        }
                    } catch {
                        descriptors = wanted.map { w in
                            try? timed(&stats.embedTime, embedTimer) { try engine.descriptor(in: image, landmarks: w.points) }
                        }
                    }
                }
                for ((face, id, points, quality), descriptor) in zip(wanted, descriptors) {
                    guard let descriptor else {
                        logger.warning(
                            "face skipped: no descriptor",
                            metadata: ["camera": "\(camera.id)", "sequence": "\(sequence)", "track": "\(id)"])
                        continue
                    }
                    // One face's failure costs that face only, never the other faces of the frame.
                    do {
                        stats.embeddings += 1
                        if let liveness, tracker.wantsLiveness(track: id) {
                            // The frames a track is embedded on, until it is decided: its verdict is their mean.
                            let check = try timed(&stats.livenessTime, livenessTimer) {
                                try liveness.check(face.box, foundBy: engine.detector, in: image)
                            }
                            stats.livenessChecks += 1
                            livenessCounter.increment()
                            tracker.addLiveness(track: id, check)
                        }
                        let index = faces.current()
                        let best = try timed(&stats.searchTime, searchTimer) { try index.best(descriptor.values) }
                        if let best, rules.sameFace(best.distance) { matchesCounter.increment() }
                        logger.debug(
                            "face embedded",
                            metadata: [
                                "camera": "\(camera.id)", "track": "\(id)", "size": "\(quality.boxSize)",
                                "best":
                                    "\(best.map { "\(decider.store.pseudonym(of: $0.student)) \($0.distance) margin \($0.margin)" } ?? "none")",
                            ])
                        switch tracker.vote(track: id, best: best, nearestOther: best.flatMap { index.nearestOther[$0.student] })
                        {
                        case let .decided(student, distance, margin, _)?:
                            let t0 = ContinuousClock.now
                            let result: DecisionResult
                            do {
                                let verdict = liveness == nil ? .real : rules.verdict(meanReal: tracker.meanLiveness(track: id))
                                result = try await decider.decide(
                                    student: student, distance: distance, at: wallTime,
                                    camera: camera.id, direction: camera.direction, liveness: verdict)
                            } catch {
                                // Not stored (database busy, disk full): let the track decide again on its next votes.
                                tracker.reopen(track: id)
                                throw error
                            }
                            stats.storeTime += ContinuousClock.now - t0
                            storeTimer.recordNanoseconds(Int64((ContinuousClock.now - t0) / .nanoseconds(1)))
                            if case let .recorded(event) = result {
                                stats.decisions += 1
                                decisionsCounter.increment()
                                let latency = ContinuousClock.now - (firstSeenReal[id] ?? t0)
                                latencyTimer.recordNanoseconds(Int64(latency / .nanoseconds(1)))
                                logger.info(
                                    "recorded",
                                    metadata: [
                                        "student": "\(decider.store.pseudonym(of: student))",
                                        "status": "\(event.status.rawValue)",
                                        "session": "\(event.session)", "kind": "\(event.kind.rawValue)",
                                        "camera": "\(camera.id)",
                                    ])
                                onEvent(.recorded(event, decisionLatency: latency))
                                if rules.learnFromGate {
                                    // For the teacher to approve (`attendance sightings`); a failure here costs nothing recorded.
                                    do {
                                        try decider.store.enrolments.proposeSighting(
                                            student: student, embedding: descriptor.values, distance: distance,
                                            margin: margin, camera: camera.id, at: wallTime)
                                    } catch {
                                        logger.warning(
                                            "gate sighting not kept", metadata: ["camera": "\(camera.id)", "error": "\(error)"])
                                    }
                                }
                            } else {
                                switch result {
                                case .queued:
                                    storeFailures.increment()
                                    let error = await decider.storeError ?? ""
                                    logger.error(
                                        "decided, but the database refused the record: held in memory, retried until it is stored",
                                        metadata: [
                                            "student": "\(decider.store.pseudonym(of: student))", "camera": "\(camera.id)",
                                            "error": "\(error)",
                                        ])
                                case .heldForReview(_, let reason), .refusedAsSpoof(let reason):
                                    stats.spoofs += 1
                                    let held = if case .heldForReview = result { true } else { false }
                                    (held ? spoofsHeld : spoofsRefused).increment()
                                    logger.warning(
                                        held
                                            ? "not recorded: the face did not look real; held for the homeroom teacher's review"
                                            : "not recorded: the face did not look real (recognition.liveness = enforce)",
                                        metadata: [
                                            "student": "\(decider.store.pseudonym(of: student))", "camera": "\(camera.id)",
                                            "reason": "\(reason.rawValue)",
                                            "liveness":
                                                "\(tracker.meanLiveness(track: id).map { String(format: "%.3f", $0) } ?? "none")",
                                        ])
                                case let .clockUntrusted(problem):
                                    clockRefusals.increment()
                                    logger.error(
                                        "not recorded: the clock cannot be trusted",
                                        metadata: ["camera": "\(camera.id)", "problem": "\(problem)"])
                                default: break
                                }
                                onEvent(.skipped(student: student, camera: camera.id, result: result))
                            }
                        case .unknown?:
                            stats.unknowns += 1
                            unknownCounter.increment()
                            try recordUnknown(image: image, landmarks: points, at: wallTime)
                            onEvent(.unknownFace(camera: camera.id, at: wallTime))
                        case .ambiguous?, nil:
                            break
                        }
                    } catch let error as CancellationError {
                        throw error
                    } catch {
                        faceSkipped(sequence: sequence, track: id, error)
                    }
                }
            } catch let error as CancellationError {
                throw error
            } catch {
                logger.warning(
                    "frame skipped", metadata: ["camera": "\(camera.id)", "sequence": "\(sequence)", "error": "\(error)"])
            }
        }

        let frames = Unchecked(source.makeAsyncIterator())
        let gate = Unchecked(MotionGateBox(motionGate))
        while true {
            try Task.checkCancellation()
            // Faces are followed when the tracker has tracks, or the frame waiting for the second stage has faces.
            let following = !tracker.tracks.isEmpty || !(pending?.value.found.isEmpty ?? true)
            // Settled: every track decided, and the frame waiting for the second stage holds no more faces than that.
            let settled = tracker.allSettled && (pending?.value.found.count ?? 0) <= tracker.tracks.count
            async let incoming = CameraPipeline.firstStage(
                frames: frames, gate: gate, detector: detector, clock: clock, following: following, settled: settled)
            if let p = pending {
                pending = nil
                monitor?.frameStarted(camera.id)
                defer { monitor?.frameFinished(camera.id) }
                try await handle(p)
            }
            guard let (frame, outcome) = try await incoming else { break }
            stats.frames += 1
            framesCounter.increment()
            if let last = lastSequence, frame.sequence > last + 1 {
                stats.droppedFrames += frame.sequence - last - 1
                droppedCounter.increment(by: Int(frame.sequence - last - 1))
            }
            lastSequence = frame.sequence
            switch outcome {
            case nil:
                // Nothing moved and no face is followed, or every face followed is settled: no detector pass.
                monitor?.frameStarted(camera.id)
                monitor?.frameFinished(camera.id)
                stats.gatedFrames += 1
            case let .success(detected)?:
                pending = detected
            case let .failure(error)?:
                logger.warning(
                    "frame skipped", metadata: ["camera": "\(camera.id)", "sequence": "\(frame.sequence)", "error": "\(error)"])
            }
        }
        if let p = pending { try await handle(p) }
        stats.wallTime = ContinuousClock.now - clockStart
        onEvent(.finished(camera: camera.id, stats: stats))
        return stats
    }

    /// The first stage (a child task beside the previous frame's second stage): the source's next frame, the motion
    /// gate's verdict on it, and the detector's faces unless the gate kept it from the detector (nil). nil at the end
    /// of the source. `following`/`settled`: the tracker's state before the previous frame's second stage, as the
    /// gate needs it.
    static func firstStage(
        frames: Unchecked<FrameIterator>, gate: Unchecked<MotionGateBox>, detector: Unchecked<FaceEngine>,
        clock: PipelineClock, following: Bool, settled: Bool
    ) async throws -> (Frame, Result<Unchecked<DetectedFrame>, FaceEngineError>?)? {
        // A copy of the iterator: it shares the source's capture engine (the loop's own copy keeps it open).
        var iterator = frames.value
        guard let frame = try await iterator.next() else { return nil }
        // Decision latency counts from the arrival of a face's first frame, its detection included.
        let arrived = ContinuousClock.now
        let (streamTime, wallTime) = clock.times(frame)
        if gate.value.gate?.runsDetectorWithoutLooking(tracksAlive: following, tracksSettled: settled) ?? true {
            // The detector will need the picture: decode it (a JPEG frame) now, so the gate's thumbnail comes from it.
            _ = frame.pixels
        }
        let verdict = gate.value.gate?.look(frame, at: streamTime, tracksAlive: following, tracksSettled: settled)
        if let verdict, !verdict.runsDetector { return (frame, nil) }
        return (frame, detect(frame, with: detector, streamTime: streamTime, wallTime: wallTime, arrived: arrived))
    }

    /// A frame through the detector (its own engine; never the second stage's).
    static func detect(
        _ frame: Frame, with detector: Unchecked<FaceEngine>, streamTime: Double, wallTime: Date,
        arrived: ContinuousClock.Instant
    ) -> Result<Unchecked<DetectedFrame>, FaceEngineError> {
        do {
            let image = try Image(bgr: frame.pixels, width: frame.width, height: frame.height)
            let t0 = ContinuousClock.now
            let found = try detector.value.detect(in: image)
            return .success(
                Unchecked(
                    DetectedFrame(
                        sequence: frame.sequence, image: image, found: found, streamTime: streamTime, wallTime: wallTime,
                        arrived: arrived, detectTime: ContinuousClock.now - t0)))
        } catch {
            return .failure(error)
        }
    }

    /// Counts an unknown face; keeps its aligned chip only when the school opted in (privacy.keep_unknown_crops_days > 0).
    ///
    /// The row that names the crop is committed before the file exists, and the file is created empty
    /// with mode 0600 (in a 0700 folder) before the image goes in: a crash at any point leaves at worst
    /// a row whose file is missing or partial, which retention deletes, never a file no row points to.
    func recordUnknown(image: Image, landmarks: [Point], at time: Date) throws {
        guard privacy.keepUnknownCropsDays > 0 else {
            try decider.store.events.recordUnknownFace(at: time, camera: camera.id, cropPath: nil)
            return
        }
        let dir = privacy.unknownCropsDir
        try FilePermissions.createPrivateDirectory(dir)
        let name = "\(camera.id)-\(Int(time.timeIntervalSince1970 * 1000))-\(UUID().uuidString.prefix(8)).jpg"
        let path = dir + "/" + name
        let chip = try faceChip(of: image, landmarks: landmarks)
        let row = try decider.store.events.recordUnknownFace(at: time, camera: camera.id, cropPath: path)
        do {
            guard try FilePermissions.createPrivate(path) else { throw StoreError.io(path: path, reason: "already exists") }
            try chip.write(to: path)
            // OpenCV's writer re-creates the file with the umask's mode; the 0700 folder kept it private meanwhile.
            guard chmod(path, 0o600) == 0 else { throw StoreError.io(path: path, reason: String(cString: strerror(errno))) }
        } catch {
            unlink(path)
            try? decider.store.events.forgetUnknownCrop(row: row)
            throw error
        }
    }
}

/// A frame the detector has been through, handed from the first stage to the second.
struct DetectedFrame {
    let sequence: UInt64
    let image: Image
    let found: [(box: FaceBox, score: Float)]
    let streamTime: Double
    let wallTime: Date
    let arrived: ContinuousClock.Instant
    let detectTime: Duration
}

/// The camera's motion gate, held by the first stage (one frame at a time, never two at once).
final class MotionGateBox {
    var gate: MotionGate?
    init(_ gate: MotionGate?) { self.gate = gate }
}

/// A value handed from one task to another and used by one at a time (an engine or an image, not thread-safe
/// themselves): the hand-off, not the type, makes it safe.
struct Unchecked<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
