import COpenCV

extension Frame {
    /// Saves the frame as an image file; the format follows the extension (.jpg, .png, .bmp).
    public func write(to path: String) throws(CaptureError) {
        var image: OpaquePointer?
        let status = pixels.withUnsafeBufferPointer {
            cv_image_from_bgr($0.baseAddress, Int32(width), Int32(height), bytesPerRow, &image)
        }
        guard status == CV_OK, let image else {
            throw CaptureError(
                .video(status: Int32(status.rawValue)), operation: "cv_image_from_bgr", source: cameraID,
                detail: String(cString: cv_last_error()))
        }
        defer { cv_image_free(image) }
        let written = cv_image_write(image, path)
        guard written == CV_OK else {
            throw CaptureError(
                .video(status: Int32(written.rawValue)), operation: "cv_image_write", source: path,
                detail: String(cString: cv_last_error()))
        }
    }
}
