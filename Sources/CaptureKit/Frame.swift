import CV4L2
import Foundation

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

/// One picture from a camera, decoded to 8-bit BGR, with where and when it was taken.
/// A value: it can cross tasks and module boundaries freely (the pixels are copy-on-write).
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
    /// `height` rows of `width * 3` bytes, blue-green-red.
    public var pixels: [UInt8]
    /// The driver's timestamp (end of exposure on CLOCK_MONOTONIC), when it gives one.
    public var driverTimestamp: MonotonicTime?
    /// When CaptureKit took the frame from the device.
    public var capturedAt: MonotonicTime
    /// The wall-clock time at capture (for attendance records; may jump with NTP).
    public var wallTime: Date

    public init(
        cameraID: String, sequence: UInt64, deviceSequence: UInt64, width: Int, height: Int, pixels: [UInt8],
        driverTimestamp: MonotonicTime?, capturedAt: MonotonicTime, wallTime: Date
    ) {
        precondition(pixels.count == width * height * 3, "BGR frame of \(width)x\(height) needs \(width * height * 3) bytes")
        self.cameraID = cameraID
        self.sequence = sequence
        self.deviceSequence = deviceSequence
        self.width = width
        self.height = height
        self.pixels = pixels
        self.driverTimestamp = driverTimestamp
        self.capturedAt = capturedAt
        self.wallTime = wallTime
    }

    /// Bytes from one row to the next.
    public var bytesPerRow: Int { width * 3 }
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
