import CV4L2
import CVideoIO
import Foundation
import Glibc
import Logging

/// An RTSP stream (an IP camera) or a video file, read through OpenCV's VideoCapture with
/// the FFmpeg backend (RTSP over TCP).
///
/// An RTSP stream that drops or stalls is reopened with exponential backoff, like a V4L2
/// camera. A file finishes at its end (or loops, with `options.loop`); `options.pacing`
/// replays it at its own frame rate or as fast as frames are asked for.
public final class VideoSource: FrameSource {
    public typealias Element = Frame

    /// The URL or file path handed to OpenCV.
    public let url: String
    public let cameraID: String
    public let options: CaptureOptions
    public let isLive: Bool
    private let runner: SourceRunner

    /// - Parameters:
    ///   - url: `rtsp://...` (or `rtsps://`, `http(s)://`): a live stream; anything else: a file path.
    public init(url: String, cameraID: String? = nil, options: CaptureOptions = CaptureOptions(), logger: Logger? = nil) {
        self.url = url
        let live = ["rtsp://", "rtsps://", "http://", "https://"].contains { url.lowercased().hasPrefix($0) }
        self.isLive = live
        let id = cameraID ?? CameraSource.redacted(url)
        self.cameraID = id
        self.options = options
        self.runner = SourceRunner(
            cameraID: id, options: options, logger: logger ?? Logger(label: "capture"),
            makeDriver: { VideoDriver(url: url, isLive: live, options: options) })
    }

    public func makeAsyncIterator() -> FrameIterator { runner.makeIterator() }
    public var statistics: CaptureStatistics { runner.statistics }
    public var state: CaptureState { runner.state }
}

/// The capture-thread side of a VideoSource. The reader handle never leaves this thread.
final class VideoDriver: CaptureDriver {
    let source: String
    let isLive: Bool
    let options: CaptureOptions
    private var video: OpaquePointer?
    /// Decoded frames not yet released, by token (at most two).
    private var images: [Int: OpaquePointer] = [:]
    private var index: UInt64 = 0
    private var period: UInt64 = 0
    private var startedAt: UInt64 = 0

    var isDemandDriven: Bool { !isLive && options.pacing == .asFastAsPossible }

    init(url: String, isLive: Bool, options: CaptureOptions) {
        self.source = url
        self.isLive = isLive
        self.options = options
    }

    func open() throws(CaptureError) -> String {
        close()
        var handle: OpaquePointer?
        let status = vio_reader_open(source, &handle)
        guard status == VIO_OK, let handle else { throw CaptureError.videoIO(status, "vio_reader_open", source) }
        video = handle
        let fps = vio_reader_fps(handle)
        period = fps > 0 ? UInt64(1e9 / fps) : 0
        index = 0
        startedAt = MonotonicTime.now().nanoseconds
        let frames = vio_reader_frame_count(handle)
        let rate = fps > 0 ? String(format: "%.4g fps", fps) : "unknown fps"
        return isLive ? "stream, \(rate)" : "file, \(rate), \(frames >= 0 ? String(frames) : "?") frames"
    }

    func grab(timeoutMilliseconds: Int32, wakeFD: Int32) throws(CaptureError) -> GrabResult {
        guard let video else { throw CaptureError(.system(errno: EBADF), operation: "grab", source: source) }
        if !isLive, options.pacing == .realtime, period > 0 {
            // Replay like a camera: frame i is due at start + i * period.
            let due = startedAt &+ index &* period
            let now = MonotonicTime.now().nanoseconds
            if due > now {
                let ms = Int32(min(UInt64(timeoutMilliseconds), (due - now + 999_999) / 1_000_000))
                if cv4l2_wake_sleep(wakeFD, ms) != 0 { return .woken }
                if MonotonicTime.now().nanoseconds < due { return .timeout }
            }
        }
        var frame: OpaquePointer?
        let status = vio_reader_read(video, &frame)
        if status == VIO_ERR_END { return .end }
        guard status == VIO_OK, let frame else { throw CaptureError.videoIO(status, "vio_reader_read", source) }
        let token = Int(truncatingIfNeeded: index)
        images[token] = frame
        defer { index += 1 }
        return .frame(
            FrameInfo(
                token: token, deviceSequence: index, driverTimestamp: nil,
                width: Int(vio_frame_width(frame)), height: Int(vio_frame_height(frame))))
    }

    func retrieve(_ token: Int) throws(CaptureError) -> FramePicture {
        guard let image = images[token], let data = vio_frame_data(image) else {
            throw CaptureError(.system(errno: EINVAL), operation: "retrieve", source: source)
        }
        let width = Int(vio_frame_width(image)), height = Int(vio_frame_height(image))
        if vio_frame_is_jpeg(image) != 0 {
            // An MJPEG video's packet: kept as it is, its header checked here, decoded only as far as the frame's reader needs.
            return try FramePicture(
                jpeg: Array(UnsafeBufferPointer(start: data, count: vio_frame_size(image))), width: width, height: height,
                source: source)
        }
        return FramePicture(bgr: Array(UnsafeBufferPointer(start: data, count: width * height * 3)))
    }

    func release(_ token: Int) {
        vio_frame_free(images.removeValue(forKey: token))
    }

    func close() {
        for image in images.values { vio_frame_free(image) }
        images.removeAll()
        vio_reader_free(video)
        video = nil
    }
}
