import Logging
import Synchronization

/// Anything that yields camera frames: a V4L2 camera, an RTSP stream, a video file.
///
/// Iterate it (`for try await frame in source`) from one task. Iteration opens the device;
/// leaving the loop or cancelling the task stops capture and closes it. Delivery is
/// *latest-frame*: while the consumer is busy, the frames the device produces are skipped
/// (counted in `statistics.framesSkipped`), so capture never waits for the consumer and
/// memory stays flat. A live source never ends by itself: it reconnects with backoff; it
/// throws only for errors no retry can fix (not a camera, a file that does not exist).
public protocol FrameSource: AsyncSequence, Sendable where Element == Frame, AsyncIterator == FrameIterator {
    /// Names the camera in every frame and log line.
    var cameraID: String { get }
    /// Counters of the current (or last) iteration.
    var statistics: CaptureStatistics { get }
    /// Where the current (or last) iteration stands.
    var state: CaptureState { get }
}

/// How a source is opened and paced.
public struct CaptureOptions: Sendable {
    /// The size to ask a V4L2 camera for; the nearest it offers is taken.
    public var width: Int = 640
    public var height: Int = 480
    /// The frame rate to ask a V4L2 camera for.
    public var fps: Double = 30
    /// Formats in order of preference at the requested size (MJPEG costs the USB bus least).
    public var preferredFormats: [PixelFormat] = [.mjpeg, .yuyv]
    /// mmap buffers to request (at least 4, so a hiccup in the capture thread loses nothing).
    public var bufferCount: Int = 4
    /// First delay before reopening a lost source; doubles per failure up to `maxBackoff`.
    public var initialBackoff: Duration = .milliseconds(500)
    public var maxBackoff: Duration = .seconds(30)
    /// A live source that yields nothing for this long is treated as lost and reopened.
    public var stallTimeout: Duration = .seconds(5)
    /// File replay: `.realtime` plays at the file's frame rate (skipping what the consumer
    /// misses, like a camera); `.asFastAsPossible` decodes a frame whenever one is asked for.
    public var pacing: Pacing = .realtime
    /// File replay: start again at the end instead of finishing.
    public var loop: Bool = false

    public enum Pacing: Sendable { case realtime, asFastAsPossible }

    public init() {}

    public init(width: Int, height: Int, fps: Double = 30) {
        self.width = width
        self.height = height
        self.fps = fps
    }
}

/// Counters of one capture session (one iteration), for metrics and tests.
public struct CaptureStatistics: Sendable, Equatable {
    /// Frames taken from the device.
    public var framesCaptured: UInt64 = 0
    /// Frames handed to the consumer.
    public var framesDelivered: UInt64 = 0
    /// Frames taken from the device while the consumer was busy, so not converted or delivered.
    public var framesSkipped: UInt64 = 0
    /// Frames the device numbered but never gave us (gaps in its sequence).
    public var framesLost: UInt64 = 0
    /// Frames that could not be decoded (a corrupt JPEG); skipped.
    public var corruptFrames: UInt64 = 0
    /// Times the source was reopened after being lost.
    public var reconnects: UInt64 = 0
    /// Opens that failed (the first one included).
    public var failedOpens: UInt64 = 0
    /// Wall time spent converting/copying delivered frames to BGR.
    public var conversionTime: Duration = .zero

    public init() {}
}

/// Where a capture session stands. Each change is logged once.
public enum CaptureState: Sendable, Equatable {
    case idle
    case opening
    /// Frames are flowing; the text says what was negotiated.
    case streaming(String)
    /// Lost; reopening with backoff. Carries the error that lost it.
    case reconnecting(CaptureError)
    /// A finite source (a file) reached its end.
    case ended
    /// The consumer stopped iterating.
    case stopped
    /// An error that retrying cannot fix.
    case failed(CaptureError)

    var kind: Int {
        switch self {
        case .idle: 0
        case .opening: 1
        case .streaming: 2
        case .reconnecting: 3
        case .ended: 4
        case .stopped: 5
        case .failed: 6
        }
    }
}

/// Iterates a `FrameSource`. Each `next()` waits for the next frame the device produces.
public struct FrameIterator: AsyncIteratorProtocol {
    public typealias Element = Frame
    private let engine: CaptureEngine
    private let lifetime: Lifetime

    init(engine: CaptureEngine) {
        self.engine = engine
        self.lifetime = Lifetime(engine: engine)
        engine.start()
    }

    /// The next frame; nil once the source ended or the task was cancelled (the device is
    /// closed by then). Throws a `CaptureError` that retrying cannot fix.
    public mutating func next() async throws -> Frame? {
        try await engine.next()
    }

    /// Stops capture when the last copy of the iterator goes away (a `break` out of the loop).
    private final class Lifetime: Sendable {
        let engine: CaptureEngine
        init(engine: CaptureEngine) { self.engine = engine }
        deinit { engine.requestStop() }
    }
}

/// Shared plumbing of the concrete sources: one engine per iteration, the last one kept
/// for `statistics` and `state`.
final class SourceRunner: Sendable {
    let cameraID: String
    let options: CaptureOptions
    let logger: Logger
    let makeDriver: @Sendable () -> any CaptureDriver
    private let current: Mutex<CaptureEngine?> = Mutex(nil)

    init(cameraID: String, options: CaptureOptions, logger: Logger, makeDriver: @escaping @Sendable () -> any CaptureDriver) {
        self.cameraID = cameraID
        self.options = options
        self.logger = logger
        self.makeDriver = makeDriver
    }

    func makeIterator() -> FrameIterator {
        let engine = CaptureEngine(cameraID: cameraID, options: options, logger: logger, makeDriver: makeDriver)
        current.withLock { $0 = engine }
        return FrameIterator(engine: engine)
    }

    var statistics: CaptureStatistics { current.withLock { $0?.statistics } ?? CaptureStatistics() }
    var state: CaptureState { current.withLock { $0?.state } ?? .idle }
}
