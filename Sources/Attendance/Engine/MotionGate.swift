import AttendanceCore
import CaptureKit

/// Decides, frame by frame, whether a camera's face detector runs (`[capture]`, #16): an empty gate costs
/// a thumbnail per frame looked at instead of a detector pass.
///
/// Frame differencing on a small grey thumbnail (`Frame.greyThumbnail`: 80 px wide, each pixel the mean of its
/// block, which averages sensor noise away; an MJPEG frame's comes from the JPEG at 1/8 scale without decoding the
/// picture). A thumbnail pixel counts as changed when it moved by more than `motionPixelThreshold` grey levels
/// against the last frame looked at, after the change of the mean
/// brightness is taken out (a slow lighting drift or the camera's exposure moves every pixel alike). The
/// detector runs when:
/// - a face is being followed (the pipeline's tracker has live tracks): every frame while any of them is
///   undecided; once every one is settled (decided, or known to be nobody enrolled), one frame in
///   `settledDetectEvery` (default 1: every frame; at 3 a newcomer is found at most 2 frames late, and then
///   every frame again until it is decided);
/// - more than `motionMinArea` of the thumbnail changed, and for `motionHoldSeconds` after;
/// - nothing ran for `idleDetectSeconds` (1 s): a face standing still in front of the camera is still found.
///
/// While nothing moves and nobody is followed, the gate looks at `idleLookFPS` frames a second (8: one in two at 15
/// frames/s, one in four at 30); the frames between are neither looked at nor decoded (`.unlooked`).
///
/// A change over `motionRebaselineArea` of the picture is the light switched on or the camera bumped, not
/// someone walking by: the new picture becomes the reference and nothing counts as motion for that frame,
/// so the detector does not run on every frame because of it (frame differencing re-baselines by itself:
/// the next frame is compared with this one).
///
/// Not thread-safe: one gate per camera, owned by that camera's task. Times are stream seconds.
public struct MotionGate: Sendable {
    /// Why the detector runs on a frame, or that it does not.
    public enum Verdict: Sendable, Equatable {
        /// The first frame: nothing to compare with yet.
        case first
        /// Faces are being followed.
        case tracking
        /// Faces are followed, all of them settled, and this is not the frame in `settledDetectEvery` the detector
        /// runs on.
        case settled
        /// Something moved (this frame, or within the hold time).
        case motion
        /// Nothing moved, but the idle interval has passed.
        case idleCheck
        /// Nothing moved: the detector does not run.
        case still
        /// Nothing moved lately and nobody is followed, and the gate looked at a frame less than `1 / idleLookFPS` ago:
        /// this one is not looked at (nor decoded).
        case unlooked
        /// The whole picture changed (light, camera bumped): new reference, the detector does not run.
        case rebaselined

        public var runsDetector: Bool {
            switch self {
            case .first, .tracking, .motion, .idleCheck: return true
            case .still, .rebaselined, .settled, .unlooked: return false
            }
        }
    }

    public let settings: AttendanceConfig.Capture
    private var reference: [UInt8] = []
    private var lastDetection: Double?
    private var lastMotion: Double?
    /// When the gate last looked at a frame's thumbnail.
    private var lastLook: Double?
    /// Frames kept from the detector in a row while every followed face was settled.
    private var settledSkipped = 0
    /// The share of the thumbnail that changed on the last frame looked at (for logs and tests).
    public private(set) var lastChangedArea: Float = 0

    public init(settings: AttendanceConfig.Capture) { self.settings = settings }

    /// Looks at one frame (its grey thumbnail: a JPEG frame's is made without decoding the picture); `tracksAlive`:
    /// whether the camera's tracker follows any face; `tracksSettled`: whether every one of them is settled (decided,
    /// or known to be nobody enrolled). A frame whose thumbnail cannot be made counts as motion (the detector runs:
    /// nothing is missed).
    public mutating func look(_ frame: Frame, at time: Double, tracksAlive: Bool, tracksSettled: Bool = false) -> Verdict {
        if idle(at: time, tracksAlive: tracksAlive) { return .unlooked }
        guard let thumbnail = try? frame.greyThumbnail() else {
            reference = []
            return record(.motion, at: time)
        }
        return look(thumbnail: thumbnail, at: time, tracksAlive: tracksAlive, tracksSettled: tracksSettled)
    }

    /// Whether a frame at `time` goes unlooked at: nobody followed, no motion within the hold time, and a frame looked
    /// at less than `1 / idleLookFPS` ago (the idle detector pass waits for the next frame looked at).
    func idle(at time: Double, tracksAlive: Bool) -> Bool {
        guard settings.idleLookFPS > 0, !tracksAlive, let looked = lastLook, time >= looked,
            time - looked < 1 / settings.idleLookFPS - 1e-6
        else { return false }
        if let m = lastMotion, time - m <= settings.motionHoldSeconds, time >= m { return false }
        return true
    }

    /// Whether the detector runs on the next frame whatever its picture shows: while faces are followed it runs on
    /// every frame (on one in `settledDetectEvery` once all of them are settled). A pipeline reads such a frame's
    /// pixels before `look`, so the thumbnail comes from them rather than from a second pass over a JPEG.
    public func runsDetectorWithoutLooking(tracksAlive: Bool, tracksSettled: Bool) -> Bool {
        tracksAlive && !(tracksSettled && settledSkipped + 1 < settings.settledDetectEvery)
    }

    /// The same on a thumbnail already made (grey, one byte per pixel).
    public mutating func look(thumbnail: [UInt8], at time: Double, tracksAlive: Bool, tracksSettled: Bool = false)
        -> Verdict
    {
        defer {
            reference = thumbnail
            lastLook = time
        }
        guard reference.count == thumbnail.count, !thumbnail.isEmpty else {
            lastChangedArea = 1
            return record(.first, at: time)
        }
        let area = MotionGate.changedArea(reference, thumbnail, threshold: settings.motionPixelThreshold)
        lastChangedArea = area
        let global = area >= settings.motionRebaselineArea
        if global {
            // Light or camera: this picture is the new reference; whoever stands in it the idle check finds.
            lastMotion = nil
        } else if area >= settings.motionMinArea {
            lastMotion = time
        }
        if tracksAlive {
            // The settled faces' own movement is motion too: it does not make the detector run on every frame.
            if !runsDetectorWithoutLooking(tracksAlive: true, tracksSettled: tracksSettled) {
                settledSkipped += 1
                return .settled
            }
            settledSkipped = 0
            return record(.tracking, at: time)
        }
        settledSkipped = 0
        if let m = lastMotion, time - m <= settings.motionHoldSeconds, time >= m { return record(.motion, at: time) }
        // (Less a microsecond: frame times are n / fps, and 42 / 15 - 27 / 15 is a hair under 1.)
        if let d = lastDetection, time - d < settings.idleDetectSeconds - 1e-6, time >= d {
            return global ? .rebaselined : .still
        }
        return record(.idleCheck, at: time)
    }

    private mutating func record(_ verdict: Verdict, at time: Double) -> Verdict {
        lastDetection = time
        return verdict
    }

    /// The share of pixels that differ by more than `threshold` grey levels once the difference of the two
    /// pictures' mean brightness is taken out.
    static func changedArea(_ a: [UInt8], _ b: [UInt8], threshold: Int) -> Float {
        precondition(a.count == b.count && !a.isEmpty)
        var sumA = 0, sumB = 0
        for i in a.indices {
            sumA += Int(a[i])
            sumB += Int(b[i])
        }
        // The shift of the mean, rounded, in grey levels.
        let shift = (sumB - sumA + (sumB >= sumA ? a.count / 2 : -a.count / 2)) / a.count
        var changed = 0
        for i in a.indices where abs(Int(b[i]) - Int(a[i]) - shift) > threshold { changed += 1 }
        return Float(changed) / Float(a.count)
    }
}
