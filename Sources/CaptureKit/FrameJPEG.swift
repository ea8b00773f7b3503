import CVideoIO

extension Frame {
    /// Saves the frame as an image file; the format follows the extension (.jpg, .png, .bmp).
    public func write(to path: String) throws(CaptureError) {
        let status = pixels.withUnsafeBufferPointer {
            vio_image_write(path, $0.baseAddress, Int32(width), Int32(height), bytesPerRow)
        }
        guard status == VIO_OK else { throw CaptureError.videoIO(status, "vio_image_write", path) }
    }
}
