import COpenCV

/// Writes frames to a video file (MJPEG in .avi is always available). Not Sendable.
public final class VideoWriter {
    let handle: OpaquePointer
    public let width: Int, height: Int

    public init(path: String, fps: Double, width: Int, height: Int) throws(FaceEngineError) {
        var out: OpaquePointer?
        try check(cv_video_writer_open(path, fps, Int32(width), Int32(height), &out), "cannot write video \(path)")
        handle = out!
        self.width = width
        self.height = height
    }

    deinit { cv_video_writer_free(handle) }

    public func write(_ frame: Image) throws(FaceEngineError) {
        try check(cv_video_writer_write(handle, frame.handle), "write video frame")
    }
}

/// What a video file says about itself.
public struct VideoInfo: Sendable {
    public let fps: Double
    public let frameCount: Int

    public init(path: String) throws(FaceEngineError) {
        var out: OpaquePointer?
        try check(cv_video_open(path, &out), "cannot open video \(path)")
        defer { cv_video_free(out) }
        fps = cv_video_fps(out)
        frameCount = Int(cv_video_frame_count(out))
    }
}
