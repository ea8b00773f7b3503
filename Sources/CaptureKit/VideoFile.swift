import CVideoIO

/// What a video file says about itself (frames per second, frame count).
public struct VideoInfo: Sendable {
    public let fps: Double
    /// -1 when the container does not say.
    public let frameCount: Int

    public init(path: String) throws(CaptureError) {
        var reader: OpaquePointer?
        let status = vio_reader_open(path, &reader)
        guard status == VIO_OK, let reader else { throw CaptureError.videoIO(status, "vio_reader_open", path) }
        defer { vio_reader_free(reader) }
        fps = vio_reader_fps(reader)
        frameCount = Int(vio_reader_frame_count(reader))
    }
}

/// Writes frames to a video file (MJPEG in .avi is always available). Not Sendable: one owner.
public final class VideoWriter {
    let handle: OpaquePointer
    public let path: String
    public let width: Int, height: Int

    public init(path: String, fps: Double, width: Int, height: Int) throws(CaptureError) {
        var out: OpaquePointer?
        let status = vio_writer_open(path, fps, Int32(width), Int32(height), &out)
        guard status == VIO_OK, let out else { throw CaptureError.videoIO(status, "vio_writer_open", path) }
        handle = out
        self.path = path
        self.width = width
        self.height = height
    }

    deinit { vio_writer_free(handle) }

    /// One frame of raw BGR pixels, `width * height * 3` bytes, rows contiguous.
    public func write(bgr pixels: [UInt8]) throws(CaptureError) {
        guard pixels.count == width * height * 3 else {
            throw CaptureError(.system(errno: 22), operation: "vio_writer_write", source: path, detail: "frame size differs")
        }
        let status = pixels.withUnsafeBufferPointer {
            vio_writer_write(handle, $0.baseAddress, Int32(width), Int32(height), width * 3)
        }
        guard status == VIO_OK else { throw CaptureError.videoIO(status, "vio_writer_write", path) }
    }
}

extension CaptureError {
    /// A failed call of the video shim, with its message.
    static func videoIO(_ status: vio_status, _ operation: String, _ source: String) -> CaptureError {
        CaptureError(
            .video(status: Int32(status.rawValue)), operation: operation, source: source,
            detail: String(cString: vio_last_error()))
    }
}
