import CV4L2
import Glibc

/// Why capture failed: the operation, the source, and the errno or library status behind it.
public struct CaptureError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Code: Sendable, Equatable {
        /// A system call failed with this errno (ENODEV: unplugged, EBUSY: in use, ...).
        case system(errno: Int32)
        /// The node is not a streaming video capture device.
        case notACaptureDevice
        /// The device offers no pixel format CaptureKit can convert to BGR.
        case noUsableFormat
        /// OpenCV could not open or read the video (status from cvshim.h).
        case video(status: Int32)
        /// No frame arrived for longer than the stall timeout.
        case stalled
        /// The source string is not `v4l2:PATH`, `rtsp://...` or `file:PATH`.
        case invalidSource
    }

    public var code: Code
    /// What was being done: "open", "VIDIOC_DQBUF", "vio_reader_read", ...
    public var operation: String
    /// The device path or URL, its password (if any) replaced by `***`: errors reach logs and /health.
    public var source: String
    /// Extra words from the library (libv4lconvert's or OpenCV's message), if any.
    public var detail: String

    public init(_ code: Code, operation: String, source: String, detail: String = "") {
        self.code = code
        self.operation = operation
        self.source = CameraSource.redacted(source)
        self.detail = CameraSource.redactingCredentials(in: detail)
    }

    /// The errno, for `.system` errors.
    public var errno: Int32? {
        if case .system(let e) = code { return e }
        return nil
    }

    /// Worth retrying: the device may come back (unplugged, busy, a network stream dropped).
    public var isTransient: Bool {
        switch code {
        case .system, .stalled, .video: return true
        case .notACaptureDevice, .noUsableFormat, .invalidSource: return false
        }
    }

    public var description: String {
        var text: String
        switch code {
        case .system(let e):
            text = "\(source): \(operation) failed: \(String(cString: strerror(e))) (errno \(e))"
        case .notACaptureDevice:
            text = "\(source): not a streaming video capture device (\(operation))"
        case .noUsableFormat:
            text = "\(source): no pixel format that can be converted to BGR"
        case .video(let status):
            text = "\(source): \(operation) failed (video status \(status))"
        case .stalled:
            text = "\(source): no frame within the stall timeout"
        case .invalidSource:
            text = "\(source): not a camera source; use v4l2:/dev/videoN, rtsp://HOST/PATH or file:PATH"
        }
        if !detail.isEmpty { text += ": \(detail)" }
        return CameraSource.redactingCredentials(in: text)
    }

    /// From a cv4l2 return code, naming the failed operation the shim recorded.
    static func v4l2(_ rc: Int32, source: String, fallback: String) -> CaptureError {
        let recorded = String(cString: cv4l2_last_operation())
        return CaptureError(.system(errno: rc), operation: recorded.isEmpty ? fallback : recorded, source: source)
    }
}
