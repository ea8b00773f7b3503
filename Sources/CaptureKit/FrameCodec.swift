import CJPEG
import CVideoIO
import Glibc

/// Decoding a frame's picture (CJPEG, libjpeg-turbo) and making its grey thumbnail, for `Frame`.
enum FrameCodec {
    /// A JPEG picture of `width` x `height` as BGR pixels.
    static func decode(jpeg: [UInt8], width: Int, height: Int) throws(CaptureError) -> [UInt8] {
        let count = width * height * 3
        var rc: Int32 = 0
        let pixels = jpeg.withUnsafeBufferPointer { data in
            [UInt8](unsafeUninitializedCapacity: count) { out, initialized in
                var warnings: UInt32 = 0
                rc = cjpeg_decode_bgr(
                    data.baseAddress, data.count, Int32(width), Int32(height), out.baseAddress, count, &warnings)
                initialized = rc == 0 ? count : 0
            }
        }
        guard rc == 0 else { throw failure(rc, "cjpeg_decode_bgr") }
        return pixels
    }

    /// Reads a JPEG's header (markers and tables up to the scan): throws unless libjpeg accepts it and the picture is
    /// `width` x `height` (the capture thread skips such a frame as corrupt).
    static func checkHeader(jpeg: [UInt8], width: Int, height: Int) throws(CaptureError) {
        var picture: (Int32, Int32) = (0, 0)
        let rc = jpeg.withUnsafeBufferPointer { cjpeg_size($0.baseAddress, $0.count, &picture.0, &picture.1) }
        guard rc == 0 else { throw failure(rc, "cjpeg_size") }
        guard picture == (Int32(width), Int32(height)) else {
            throw CaptureError(
                .system(errno: EBADMSG), operation: "cjpeg_size", source: "",
                detail: "the picture is \(picture.0)x\(picture.1), not \(width)x\(height)")
        }
    }

    /// The grey thumbnail (`Frame.thumbnailSize`) of a JPEG picture of `width` x `height`, decoded at reduced scale.
    static func thumbnail(jpeg: [UInt8], width: Int, height: Int) throws(CaptureError) -> [UInt8] {
        let size = Frame.thumbnailSize(width: width, height: height)
        var rc: Int32 = 0
        let count = size.width * size.height
        let thumbnail = jpeg.withUnsafeBufferPointer { data in
            [UInt8](unsafeUninitializedCapacity: count) { out, initialized in
                var warnings: UInt32 = 0
                rc = cjpeg_grey_thumbnail(
                    data.baseAddress, data.count, Int32(size.width), Int32(size.height), out.baseAddress, &warnings)
                initialized = rc == 0 ? count : 0
            }
        }
        guard rc == 0 else { throw failure(rc, "cjpeg_grey_thumbnail") }
        return thumbnail
    }

    /// The grey thumbnail of BGR pixels (area averaging, then grey).
    static func thumbnail(bgr: [UInt8], width: Int, height: Int) throws(CaptureError) -> [UInt8] {
        let size = Frame.thumbnailSize(width: width, height: height)
        let count = size.width * size.height
        var status = VIO_OK
        let thumbnail = bgr.withUnsafeBufferPointer { data in
            [UInt8](unsafeUninitializedCapacity: count) { out, initialized in
                status = vio_grey_thumbnail(
                    data.baseAddress, Int32(width), Int32(height), width * 3, Int32(size.width), Int32(size.height),
                    out.baseAddress, count)
                initialized = status == VIO_OK ? count : 0
            }
        }
        guard status == VIO_OK else { throw CaptureError.videoIO(status, "vio_grey_thumbnail", "") }
        return thumbnail
    }

    private static func failure(_ rc: Int32, _ operation: String) -> CaptureError {
        CaptureError(.system(errno: rc), operation: operation, source: "", detail: String(cString: cjpeg_last_error()))
    }
}
