import AttendanceCore
import CaptureKit
import Foundation

/// What the running daemon knows about its cameras, shared by the pipelines (which report into it on
/// every frame), `/health`, the systemd notifier and `--exit-when-done`. Each method holds the lock for
/// a few assignments only: the pipeline's frame loop calls it.
public final class GateState: @unchecked Sendable {
    public enum CameraPhase: Sendable, Equatable {
        case starting
        case running
        /// A file replay reached its end.
        case ended
        /// The camera's pipeline stopped with an error that no retry can fix.
        case failed(String)
    }

    struct Camera {
        var phase: CameraPhase = .starting
        var source: (any FrameSource)?
        var firstFrame = false
        var lastFrame: ContinuousClock.Instant?
        /// Set while a frame is being processed: the watchdog's view of a hung pipeline.
        var busySince: ContinuousClock.Instant?
        /// When the pipeline opened the source.
        var startedAt: ContinuousClock.Instant?
    }

    private let lock = NSLock()
    private var cameras: [String: Camera]
    public let cameraIDs: [String]

    public init(cameras: [String]) {
        cameraIDs = cameras
        self.cameras = Dictionary(uniqueKeysWithValues: cameras.map { ($0, Camera()) })
    }

    private func update(_ id: String, _ body: (inout Camera) -> Void) {
        lock.lock(); defer { lock.unlock() }
        body(&cameras[id, default: Camera()])
    }

    func started(_ id: String, source: any FrameSource) {
        update(id) {
            $0.phase = .running; $0.source = source; $0.startedAt = .now
        }
    }

    func frameStarted(_ id: String) {
        let now = ContinuousClock.now
        update(id) {
            $0.firstFrame = true; $0.lastFrame = now; $0.busySince = now
        }
    }

    func frameFinished(_ id: String) { update(id) { $0.busySince = nil } }

    func ended(_ id: String, failure: String?) {
        update(id) {
            $0.phase = failure.map(CameraPhase.failed) ?? .ended; $0.busySince = nil
        }
    }

    /// One camera as /health shows it.
    public struct CameraReport: Sendable, Equatable {
        public var id: String
        public var phase: CameraPhase
        /// The capture state in words ("streaming MJPG 640x480", "reconnecting: ...").
        public var capture: String
        public var secondsSinceLastFrame: Double?
        /// How long the camera has delivered nothing while it should (nil: it is delivering, or done).
        public var unavailableSeconds: Double?
    }

    public func report() -> [CameraReport] {
        let now = ContinuousClock.now
        lock.lock(); defer { lock.unlock() }
        return cameraIDs.map { id in
            let c = cameras[id] ?? Camera()
            var capture = "not opened yet"
            var unavailable: Double?
            if let source = c.source {
                switch source.state {
                case .streaming(let what): capture = "streaming \(what)"
                case .reconnecting(let error): capture = "unavailable, retrying: \(error)"
                case .opening: capture = "opening"
                case .ended: capture = "ended"
                case .stopped: capture = "stopped"
                case .failed(let error): capture = "failed: \(error)"
                case .idle: capture = "idle"
                }
                // Delivering nothing while it should: not streaming (lost, retrying), or streaming without a frame for 10 s.
                let streaming: Bool
                if case .streaming = source.state { streaming = true } else { streaming = false }
                if c.phase == .running, let since = c.lastFrame ?? c.startedAt {
                    let silent = (now - since).seconds
                    if !streaming || silent > 10 { unavailable = silent }
                }
            }
            return CameraReport(
                id: id, phase: c.phase, capture: capture,
                secondsSinceLastFrame: c.lastFrame.map { (now - $0).seconds }, unavailableSeconds: unavailable)
        }
    }

    /// Every camera has delivered a frame, ended, failed, or is known unavailable (retrying): systemd may be told READY.
    public var everyCameraReported: Bool {
        lock.lock(); defer { lock.unlock() }
        return cameras.values.allSatisfy { c in
            if c.firstFrame { return true }
            switch c.phase {
            case .ended, .failed: return true
            case .starting: return false
            case .running:
                if let state = c.source?.state, case .reconnecting = state { return true }
                return false
            }
        }
    }

    /// Every camera's pipeline has stopped (file replays ended, or failed).
    public var allEnded: Bool {
        lock.lock(); defer { lock.unlock() }
        return cameras.values.allSatisfy { c in
            switch c.phase {
            case .ended, .failed: true;
            default: false
            }
        }
    }

    /// Cameras whose pipeline has been inside one frame for longer than `limit`: hung.
    public func hungCameras(longerThan limit: Duration) -> [String] {
        let now = ContinuousClock.now
        lock.lock(); defer { lock.unlock() }
        return cameras.filter { $0.value.busySince.map { now - $0 > limit } ?? false }.map(\.key).sorted()
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
