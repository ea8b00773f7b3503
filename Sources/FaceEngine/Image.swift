import COpenCV
import Foundation

/// An 8-bit BGR image owned by the shim. Not Sendable: use it on the thread or actor that made it.
public final class Image {
    let handle: OpaquePointer

    init(handle: OpaquePointer) { self.handle = handle }
    deinit { cv_image_free(handle) }

    /// Default decode limit: 50 megapixels, checked from the file header before decoding.
    public static let defaultMaxPixels = 50_000_000

    /// Reads a JPEG, PNG or BMP file. EXIF orientation is honoured; gray, 16-bit and RGBA become 8-bit BGR.
    public convenience init(contentsOf path: String, maxPixels: Int = Image.defaultMaxPixels) throws(FaceEngineError) {
        var out: OpaquePointer?
        try check(cv_image_read(path, Int64(maxPixels), &out), "cannot read image \(path)")
        self.init(handle: out!)
    }

    /// Decodes an encoded image held in memory.
    public convenience init(encoded bytes: [UInt8], maxPixels: Int = Image.defaultMaxPixels) throws(FaceEngineError) {
        var out: OpaquePointer?
        try check(
            bytes.withUnsafeBufferPointer { cv_image_decode($0.baseAddress, $0.count, Int64(maxPixels), &out) },
            "cannot decode image")
        self.init(handle: out!)
    }

    /// Copies raw BGR pixels (rows of `rowStride` bytes, at least width * 3).
    public convenience init(bgr: UnsafeRawBufferPointer, width: Int, height: Int, rowStride: Int? = nil) throws(FaceEngineError) {
        self.init(handle: try Image.handle(bgr: bgr, width: width, height: height, rowStride: rowStride ?? width * 3))
    }

    public convenience init(bgr: [UInt8], width: Int, height: Int) throws(FaceEngineError) {
        let made = bgr.withUnsafeBytes { raw -> Result<OpaquePointer, FaceEngineError> in
            do throws(FaceEngineError) {
                return .success(try Image.handle(bgr: raw, width: width, height: height, rowStride: width * 3))
            } catch { return .failure(error) }
        }
        self.init(handle: try made.get())
    }

    private static func handle(bgr: UnsafeRawBufferPointer, width: Int, height: Int, rowStride: Int) throws(FaceEngineError)
        -> OpaquePointer
    {
        guard width > 0, height > 0, rowStride >= width * 3, bgr.count >= rowStride * (height - 1) + width * 3,
            let base = bgr.baseAddress
        else {
            throw FaceEngineError(
                kind: .argument, operation: "image from BGR",
                message: "buffer of \(bgr.count) bytes is too small for \(width)x\(height)")
        }
        var out: OpaquePointer?
        try check(
            cv_image_from_bgr(base.assumingMemoryBound(to: UInt8.self), Int32(width), Int32(height), rowStride, &out),
            "image from BGR")
        return out!
    }

    /// A blank image of one colour.
    public convenience init(width: Int, height: Int, blue: UInt8 = 0, green: UInt8 = 0, red: UInt8 = 0) throws(FaceEngineError) {
        var out: OpaquePointer?
        try check(cv_image_create(Int32(width), Int32(height), blue, green, red, &out), "create image")
        self.init(handle: out!)
    }

    public var width: Int { Int(cv_image_width(handle)) }
    public var height: Int { Int(cv_image_height(handle)) }

    /// The BGR bytes, height rows of width * 3.
    public var bgrBytes: [UInt8] {
        let count = width * height * 3
        return Array(UnsafeBufferPointer(start: cv_image_data(handle), count: count))
    }

    public func write(to path: String) throws(FaceEngineError) {
        try check(cv_image_write(handle, path), "cannot write image \(path)")
    }

    public func resized(width: Int, height: Int) throws(FaceEngineError) -> Image {
        var out: OpaquePointer?
        try check(cv_image_resize(handle, Int32(width), Int32(height), &out), "resize image")
        return Image(handle: out!)
    }

    /// A copy of the part of the image inside `box` (clipped to the image).
    public func cropped(to box: FaceBox) throws(FaceEngineError) -> Image {
        let l = max(0, box.left), t = max(0, box.top), r = min(width, box.right), b = min(height, box.bottom)
        guard r > l, b > t else {
            throw FaceEngineError(
                kind: .argument, operation: "crop image", message: "\(box) lies outside the \(width)x\(height) image")
        }
        let all = bgrBytes, w = r - l
        var out = [UInt8](repeating: 0, count: w * (b - t) * 3)
        for y in t..<b {
            let src = (y * width + l) * 3, dst = (y - t) * w * 3
            out[dst..<(dst + w * 3)] = all[src..<(src + w * 3)]
        }
        return try Image(bgr: out, width: w, height: b - t)
    }

    /// Adds Gaussian noise of standard deviation `sigma` grey levels to every channel (a camera's sensor
    /// noise), from a generator seeded with `seed` (the same seed gives the same noise).
    public func addNoise(sigma: Float, seed: UInt64) throws(FaceEngineError) {
        try check(cv_image_add_noise(handle, sigma, seed), "add noise")
    }

    /// pixel * gain + offset, saturated: a change of lighting.
    public func adjust(gain: Float, offset: Float = 0) throws(FaceEngineError) {
        try check(cv_image_adjust(handle, gain, offset), "adjust image")
    }

    /// A horizontal motion blur over `length` pixels (1 or less: unchanged).
    public func motionBlur(length: Int) throws(FaceEngineError) {
        try check(cv_image_motion_blur(handle, Int32(clamping: length)), "motion blur")
    }

    /// Copies `other` onto this image with its top-left corner at (x, y), clipped.
    public func paste(_ other: Image, x: Int, y: Int) throws(FaceEngineError) {
        try check(cv_image_paste(handle, other.handle, Int32(x), Int32(y)), "paste image")
    }
}
