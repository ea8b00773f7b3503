import CV4L2
import Foundation
import Synchronization

/// A point on the machine's monotonic clock (`CLOCK_MONOTONIC`), the clock V4L2 drivers
/// stamp buffers with. Comparable across cameras of one machine; meaningless across boots.
public struct MonotonicTime: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var nanoseconds: UInt64

    public init(nanoseconds: UInt64) { self.nanoseconds = nanoseconds }

    public static func now() -> MonotonicTime { MonotonicTime(nanoseconds: cv4l2_monotonic_ns()) }

    public static func < (a: MonotonicTime, b: MonotonicTime) -> Bool { a.nanoseconds < b.nanoseconds }

    /// The signed time from `other` to `self`.
    public func duration(since other: MonotonicTime) -> Duration {
        let delta = Int64(bitPattern: nanoseconds &- other.nanoseconds)
        return .nanoseconds(delta)
    }

    public var description: String {
        let ms = Double(nanoseconds) / 1e6
        return String(format: "%.3f ms", ms)
    }
}

/// One picture from a camera, as 8-bit BGR, with where and when it was taken.
/// A value: it can cross tasks and module boundaries freely (the pixels are copy-on-write).
///
/// A camera or video that sends JPEG pictures (MJPEG) delivers them undecoded: `greyThumbnail` decodes only the
/// DCT's block averages (no inverse DCTs, colour conversion or copies of the picture; the entropy decoding remains),
/// and `pixels` decodes the whole picture the first time it is read. An idle gate looks at thumbnails and decodes only
/// the frames its detector runs on.
public struct Frame: Sendable {
    /// The camera it came from (the source's `cameraID`).
    public var cameraID: String
    /// Increases by one per frame the device produced, across reconnects; a jump means
    /// frames were lost (by the device) or skipped (because the consumer was busy).
    public var sequence: UInt64
    /// What the device itself numbered the frame (V4L2 `sequence`, or the frame index in a file).
    public var deviceSequence: UInt64
    public var width: Int
    public var height: Int
    /// `height` rows of `width * 3` bytes, blue-green-red. A JPEG frame is decoded here, once, on first reading.
    public var pixels: [UInt8] {
        get { picture.bgr(width: width, height: height) }
        set {
            precondition(
                newValue.count == width * height * 3, "BGR frame of \(width)x\(height) needs \(width * height * 3) bytes")
            picture = FramePicture(bgr: newValue)
        }
    }
    /// The JPEG picture as the device sent it (nil: the device sent raw pixels, or they were replaced).
    public var jpeg: [UInt8]? { picture.jpeg }
    /// The driver's timestamp (end of exposure on CLOCK_MONOTONIC), when it gives one.
    public var driverTimestamp: MonotonicTime?
    /// When CaptureKit took the frame from the device.
    public var capturedAt: MonotonicTime
    /// The wall-clock time at capture (for attendance records; may jump with NTP).
    public var wallTime: Date
    private var picture: FramePicture

    public init(
        cameraID: String, sequence: UInt64, deviceSequence: UInt64, width: Int, height: Int, pixels: [UInt8],
        driverTimestamp: MonotonicTime?, capturedAt: MonotonicTime, wallTime: Date
    ) {
        precondition(pixels.count == width * height * 3, "BGR frame of \(width)x\(height) needs \(width * height * 3) bytes")
        self.init(
            cameraID: cameraID, sequence: sequence, deviceSequence: deviceSequence, width: width, height: height,
            picture: FramePicture(bgr: pixels), driverTimestamp: driverTimestamp, capturedAt: capturedAt, wallTime: wallTime)
    }

    /// A frame whose picture is a JPEG of `width` x `height` (as an MJPEG camera sends it), decoded only as far as it is
    /// used; throws when the data is not a decodable JPEG of that size.
    public init(
        cameraID: String, sequence: UInt64, deviceSequence: UInt64, width: Int, height: Int, jpeg: [UInt8],
        driverTimestamp: MonotonicTime?, capturedAt: MonotonicTime, wallTime: Date
    ) throws(CaptureError) {
        self.init(
            cameraID: cameraID, sequence: sequence, deviceSequence: deviceSequence, width: width, height: height,
            picture: try FramePicture(jpeg: jpeg, width: width, height: height, source: cameraID),
            driverTimestamp: driverTimestamp, capturedAt: capturedAt, wallTime: wallTime)
    }

    init(
        cameraID: String, sequence: UInt64, deviceSequence: UInt64, width: Int, height: Int, picture: FramePicture,
        driverTimestamp: MonotonicTime?, capturedAt: MonotonicTime, wallTime: Date
    ) {
        self.cameraID = cameraID
        self.sequence = sequence
        self.deviceSequence = deviceSequence
        self.width = width
        self.height = height
        self.picture = picture
        self.driverTimestamp = driverTimestamp
        self.capturedAt = capturedAt
        self.wallTime = wallTime
    }

    /// Bytes from one row to the next.
    public var bytesPerRow: Int { width * 3 }

    /// The width of `greyThumbnail`, in pixels: a 640-pixel-wide JPEG gives it at 1/8 scale, one pixel a DCT block.
    public static let thumbnailWidth = 80

    /// The thumbnail's size for a frame of this size: `thumbnailWidth` wide (or the frame's width if smaller), the
    /// frame's aspect ratio, at least one row.
    public static func thumbnailSize(width: Int, height: Int) -> (width: Int, height: Int) {
        (min(thumbnailWidth, width), min(height, max(1, (thumbnailWidth * height + width / 2) / max(width, 1))))
    }

    /// A small grey picture of the frame, `thumbnailSize` (row after row, one byte a pixel), each pixel the
    /// mean brightness of its block (which averages sensor noise away), for motion detection. Made once per frame:
    /// from a JPEG at reduced scale without decoding the picture (unless `pixels` was read first), from BGR pixels by
    /// area averaging.
    public func greyThumbnail() throws(CaptureError) -> [UInt8] {
        try picture.thumbnail(width: width, height: height)
    }
}

/// A frame's picture: raw BGR pixels, or a JPEG decoded on first use; its thumbnail made on first use (from the pixels
/// if they are decoded by then, else from the JPEG at reduced scale). Shared by the copies of a frame (the caches are
/// behind locks, so any task may read them).
final class FramePicture: Sendable {
    let jpeg: [UInt8]?
    private let decoded: Mutex<[UInt8]?>
    private let thumbnailCache = Mutex<[UInt8]?>(nil)

    init(bgr: [UInt8]) {
        jpeg = nil
        decoded = Mutex(bgr)
    }

    /// A JPEG picture of `width` x `height`, its header checked (the markers and tables up to the scan: what libjpeg
    /// refuses outright). Damage inside the scan is not an error: libjpeg decodes past it, as camera converters do.
    init(jpeg: [UInt8], width: Int, height: Int, source: String) throws(CaptureError) {
        do throws(CaptureError) {
            try FrameCodec.checkHeader(jpeg: jpeg, width: width, height: height)
        } catch {
            var located = error
            located.source = source
            throw located
        }
        self.jpeg = jpeg
        decoded = Mutex(nil)
    }

    func bgr(width: Int, height: Int) -> [UInt8] {
        decoded.withLock { cache in
            if let pixels = cache { return pixels }
            // The capture thread checked this JPEG's header, so it decodes; should it fail anyway, the frame reads as
            // black rather than stopping the camera.
            let pixels =
                (try? FrameCodec.decode(jpeg: jpeg ?? [], width: width, height: height))
                ?? [UInt8](repeating: 0, count: width * height * 3)
            cache = pixels
            return pixels
        }
    }

    func thumbnail(width: Int, height: Int) throws(CaptureError) -> [UInt8] {
        if let cached = thumbnailCache.withLock({ $0 }) { return cached }
        // From the pixels when they are decoded (cheaper), else from the JPEG at reduced scale.
        let undecoded = decoded.withLock { $0 == nil }
        let made: [UInt8]
        if let jpeg, undecoded {
            made = try FrameCodec.thumbnail(jpeg: jpeg, width: width, height: height)
        } else {
            made = try FrameCodec.thumbnail(bgr: bgr(width: width, height: height), width: width, height: height)
        }
        thumbnailCache.withLock { $0 = made }
        return made
    }
}

/// A V4L2 pixel format code (fourcc), e.g. `MJPG`, `YUYV`.
public struct PixelFormat: RawRepresentable, Sendable, Hashable, CustomStringConvertible {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// From four ASCII characters ("MJPG"); nil unless exactly four.
    public init?(_ code: String) {
        let bytes = Array(code.utf8)
        guard bytes.count == 4 else { return nil }
        rawValue = bytes.enumerated().reduce(0) { $0 | UInt32($1.element) << (8 * UInt32($1.offset)) }
    }

    public static let mjpeg = PixelFormat("MJPG")!
    public static let jpeg = PixelFormat("JPEG")!
    public static let yuyv = PixelFormat("YUYV")!

    public var description: String {
        let chars = (0..<4).map { UInt8(truncatingIfNeeded: rawValue >> (8 * $0)) }
        return String(decoding: chars, as: UTF8.self)
    }
}
