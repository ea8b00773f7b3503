import CV4L2
import Foundation
import Glibc
import Logging

/// A USB (UVC) or other V4L2 camera, read through libv4l2 with mmap streaming and
/// converted to BGR by libv4lconvert.
///
/// Negotiation prefers the first of `options.preferredFormats` (MJPEG, then YUYV) that the
/// camera offers at exactly the requested size; failing that, the offered size nearest to it.
/// An unplugged camera (ENODEV/EIO) is reopened with exponential backoff up to 30 s.
public final class V4L2Camera: FrameSource {
    public typealias Element = Frame

    public let path: String
    public let cameraID: String
    public let options: CaptureOptions
    private let runner: SourceRunner

    /// - Parameters:
    ///   - path: the device node, e.g. `/dev/video0`.
    ///   - cameraID: names the camera in frames and logs; defaults to the path.
    public init(path: String, cameraID: String? = nil, options: CaptureOptions = CaptureOptions(), logger: Logger? = nil) {
        self.path = path
        let id = cameraID ?? path
        self.cameraID = id
        self.options = options
        self.runner = SourceRunner(
            cameraID: id, options: options, logger: logger ?? Logger(label: "capture"),
            makeDriver: { V4L2Driver(path: path, options: options) })
    }

    public func makeAsyncIterator() -> FrameIterator { runner.makeIterator() }
    public var statistics: CaptureStatistics { runner.statistics }
    public var state: CaptureState { runner.state }

    // MARK: discovery

    /// Opens `path` briefly and lists what it offers.
    public static func describe(path: String) throws(CaptureError) -> CameraDescription {
        let device = try V4L2Device.open(path)
        defer { device.close() }
        return try device.describe()
    }

    /// Every capture device among `/dev/video*` (metadata nodes and busy or unreadable nodes
    /// are left out), plus any `extraPaths`.
    public static func enumerate(extraPaths: [String] = []) -> [CameraDescription] {
        let nodes = ((try? FileManager.default.contentsOfDirectory(atPath: "/dev")) ?? [])
            .filter { $0.hasPrefix("video") && Int($0.dropFirst(5)) != nil }
            .sorted { Int($0.dropFirst(5))! < Int($1.dropFirst(5))! }
            .map { "/dev/\($0)" }
        var seen = Set<String>()
        return (nodes + extraPaths).compactMap { path in
            guard seen.insert(path).inserted else { return nil }
            return try? describe(path: path)
        }
    }

    /// The format and size CaptureKit would choose from `offers` for `options`; nil when
    /// nothing offered can be converted.
    public static func negotiate(offers: [FormatOffer], options: CaptureOptions) -> (
        format: PixelFormat, width: Int, height: Int
    )? {
        let convertible = offers.filter { V4L2Device.convertibleFormats.contains($0.format) }
        // 1. a preferred format at exactly the requested size
        for format in options.preferredFormats {
            if let offer = convertible.first(where: { $0.format == format }),
                offer.sizes.contains(where: { $0.contains(width: options.width, height: options.height) })
            {
                return (format, options.width, options.height)
            }
        }
        // 2. else the nearest size, preferred formats first, then anything convertible
        let ranked =
            options.preferredFormats.compactMap { f in convertible.first { $0.format == f } }
            + convertible.filter { !options.preferredFormats.contains($0.format) }
        var best: (format: PixelFormat, width: Int, height: Int, cost: Int)?
        for offer in ranked {
            for size in offer.sizes {
                let (w, h) = size.nearest(width: options.width, height: options.height)
                let cost = abs(w - options.width) + abs(h - options.height)
                if best == nil || cost < best!.cost { best = (offer.format, w, h, cost) }
            }
        }
        return best.map { ($0.format, $0.width, $0.height) }
    }
}

/// What `attendance cameras` prints for one device.
public struct CameraDescription: Sendable, Equatable {
    public var path: String
    public var driver: String
    public var card: String
    public var busInfo: String
    public var formats: [FormatOffer]
}

/// One pixel format a device offers, with its sizes and rates.
public struct FormatOffer: Sendable, Equatable {
    public var format: PixelFormat
    public var description: String
    public var compressed: Bool
    public var sizes: [FrameSize]

    public init(format: PixelFormat, description: String = "", compressed: Bool = false, sizes: [FrameSize]) {
        self.format = format
        self.description = description
        self.compressed = compressed
        self.sizes = sizes
    }
}

/// A frame size offered: one discrete size, or a stepwise range.
public struct FrameSize: Sendable, Equatable, CustomStringConvertible {
    public var width: Int
    public var height: Int
    /// For a range: the largest size and the steps; nil for a discrete size.
    public var range: (maxWidth: Int, maxHeight: Int, stepWidth: Int, stepHeight: Int)?
    /// Frame rates offered at this size (discrete sizes only).
    public var fps: [Double]

    public init(width: Int, height: Int, fps: [Double] = []) {
        self.width = width
        self.height = height
        self.fps = fps
    }

    public static func == (a: FrameSize, b: FrameSize) -> Bool {
        a.width == b.width && a.height == b.height && a.fps == b.fps
            && a.range?.maxWidth == b.range?.maxWidth && a.range?.maxHeight == b.range?.maxHeight
            && a.range?.stepWidth == b.range?.stepWidth && a.range?.stepHeight == b.range?.stepHeight
    }

    func contains(width w: Int, height h: Int) -> Bool {
        guard let r = range else { return w == width && h == height }
        return w >= width && w <= r.maxWidth && h >= height && h <= r.maxHeight
            && (w - width) % max(1, r.stepWidth) == 0 && (h - height) % max(1, r.stepHeight) == 0
    }

    func nearest(width w: Int, height h: Int) -> (Int, Int) {
        guard let r = range else { return (width, height) }
        func snap(_ v: Int, _ lo: Int, _ hi: Int, _ step: Int) -> Int {
            let clamped = min(max(v, lo), hi)
            return lo + (clamped - lo) / max(1, step) * max(1, step)
        }
        return (snap(w, width, r.maxWidth, r.stepWidth), snap(h, height, r.maxHeight, r.stepHeight))
    }

    public var description: String {
        let size = range.map { "\(width)x\(height)-\($0.maxWidth)x\($0.maxHeight)" } ?? "\(width)x\(height)"
        guard !fps.isEmpty else { return size }
        return size + " @ " + fps.map { $0 == $0.rounded() ? String(Int($0)) : String(format: "%.2f", $0) }.joined(separator: "/")
            + " fps"
    }
}

// MARK: - the libv4l2 conversation

/// An open V4L2 node: a thin owner of the cv4l2 handle (one thread at a time).
final class V4L2Device {
    /// What libv4lconvert turns into BGR24 (the common camera formats).
    static let convertibleFormats: Set<PixelFormat> = [
        .mjpeg, .jpeg, .yuyv, PixelFormat("UYVY")!, PixelFormat("YVYU")!, PixelFormat("YU12")!, PixelFormat("YV12")!,
        PixelFormat("NV12")!, PixelFormat("RGB3")!, PixelFormat("BGR3")!, PixelFormat("GREY")!,
    ]

    let path: String
    private(set) var handle: OpaquePointer?

    private init(path: String, handle: OpaquePointer) {
        self.path = path
        self.handle = handle
    }

    static func open(_ path: String) throws(CaptureError) -> V4L2Device {
        var handle: OpaquePointer?
        let rc = cv4l2_open(path, &handle)
        guard rc == 0, let handle else {
            if rc == ENOTSUP || (rc == ENODEV && String(cString: cv4l2_last_operation()).hasPrefix("VIDIOC_QUERYCAP (")) {
                throw CaptureError(.notACaptureDevice, operation: String(cString: cv4l2_last_operation()), source: path)
            }
            throw CaptureError.v4l2(rc, source: path, fallback: "open")
        }
        return V4L2Device(path: path, handle: handle)
    }

    func close() {
        cv4l2_close(handle)
        handle = nil
    }

    deinit { cv4l2_close(handle) }

    func check(_ rc: Int32, _ operation: String) throws(CaptureError) {
        if rc != 0 { throw CaptureError.v4l2(rc, source: path, fallback: operation) }
    }

    func offers() throws(CaptureError) -> [FormatOffer] {
        var result: [FormatOffer] = []
        var index: UInt32 = 0
        while true {
            var desc = cv4l2_format_desc()
            let rc = cv4l2_enum_format(handle, index, &desc)
            if rc == EINVAL { break }
            try check(rc, "VIDIOC_ENUM_FMT")
            let format = PixelFormat(rawValue: desc.pixelformat)
            result.append(
                FormatOffer(
                    format: format, description: cString(desc.description), compressed: desc.compressed != 0,
                    sizes: try sizes(of: format)))
            index += 1
        }
        return result
    }

    private func sizes(of format: PixelFormat) throws(CaptureError) -> [FrameSize] {
        var result: [FrameSize] = []
        var index: UInt32 = 0
        while true {
            var s = cv4l2_frame_size()
            let rc = cv4l2_enum_size(handle, format.rawValue, index, &s)
            if rc == EINVAL || rc == ENOTTY { break }
            try check(rc, "VIDIOC_ENUM_FRAMESIZES")
            var size = FrameSize(width: Int(s.width), height: Int(s.height))
            if s.stepwise != 0 {
                size.range = (Int(s.max_width), Int(s.max_height), Int(s.step_width), Int(s.step_height))
            } else {
                size.fps = rates(of: format, width: s.width, height: s.height)
            }
            result.append(size)
            index += 1
        }
        return result
    }

    private func rates(of format: PixelFormat, width: UInt32, height: UInt32) -> [Double] {
        var result: [Double] = []
        var index: UInt32 = 0
        var num: UInt32 = 0
        var den: UInt32 = 0
        while index < 64, cv4l2_enum_interval(handle, format.rawValue, width, height, index, &num, &den) == 0 {
            if num > 0 { result.append(Double(den) / Double(num)) }
            index += 1
        }
        return result
    }

    func describe() throws(CaptureError) -> CameraDescription {
        var info = cv4l2_info()
        try check(cv4l2_info_get(handle, &info), "VIDIOC_QUERYCAP")
        return CameraDescription(
            path: path, driver: cString(info.driver), card: cString(info.card), busInfo: cString(info.bus_info),
            formats: try offers())
    }
}

/// Reads a fixed-size C char array (imported as a tuple) as a String.
func cString<T>(_ tuple: T) -> String {
    withUnsafeBytes(of: tuple) { raw in
        let bytes = raw.bindMemory(to: UInt8.self)
        let end = bytes.firstIndex(of: 0) ?? bytes.count
        return String(decoding: bytes[..<end], as: UTF8.self)
    }
}

/// The capture-thread side of a V4L2Camera.
final class V4L2Driver: CaptureDriver {
    let source: String
    let options: CaptureOptions
    let isLive = true
    let isDemandDriven = false
    private var device: V4L2Device?
    private var format = cv4l2_format()
    /// Dequeued buffers not yet given back, by index.
    private var held: [Int: cv4l2_buffer] = [:]

    init(path: String, options: CaptureOptions) {
        self.source = path
        self.options = options
    }

    func open() throws(CaptureError) -> String {
        close()
        let device = try V4L2Device.open(source)
        self.device = device
        guard let choice = V4L2Camera.negotiate(offers: try device.offers(), options: options) else {
            throw CaptureError(.noUsableFormat, operation: "VIDIOC_ENUM_FMT", source: source)
        }
        try device.check(
            cv4l2_set_format(device.handle, choice.format.rawValue, UInt32(choice.width), UInt32(choice.height), &format),
            "VIDIOC_S_FMT")
        var fps = 0.0
        if cv4l2_set_fps(device.handle, options.fps, &fps) != 0 { fps = 0 } // optional for a driver
        var granted: UInt32 = 0
        try device.check(cv4l2_start(device.handle, UInt32(max(4, options.bufferCount)), &granted), "VIDIOC_STREAMON")
        let rate = fps > 0 ? String(format: " @ %.4g fps", fps) : ""
        return "\(PixelFormat(rawValue: format.pixelformat)) \(format.width)x\(format.height)\(rate), \(granted) buffers"
    }

    func grab(timeoutMilliseconds: Int32, wakeFD: Int32) throws(CaptureError) -> GrabResult {
        guard let device else { throw CaptureError(.system(errno: EBADF), operation: "grab", source: source) }
        // A frame may already wait (several filled buffers): try before sleeping in poll.
        var buffer = cv4l2_buffer()
        var rc = cv4l2_dequeue(device.handle, &buffer)
        if rc == EAGAIN {
            switch cv4l2_wait(device.handle, timeoutMilliseconds, wakeFD) {
            case 0: break
            case ETIMEDOUT, EAGAIN: return .timeout
            case EINTR: return .woken
            case let e: throw CaptureError.v4l2(e, source: source, fallback: "poll")
            }
            rc = cv4l2_dequeue(device.handle, &buffer)
            if rc == EAGAIN { return .timeout }
        }
        try device.check(rc, "VIDIOC_DQBUF")
        held[Int(buffer.index)] = buffer
        return .frame(
            FrameInfo(
                token: Int(buffer.index), deviceSequence: UInt64(buffer.sequence),
                driverTimestamp: buffer.timestamp_monotonic != 0 ? MonotonicTime(nanoseconds: buffer.timestamp_ns) : nil,
                width: Int(format.width), height: Int(format.height)))
    }

    func retrieve(_ token: Int) throws(CaptureError) -> FramePicture {
        guard let device, var buffer = held[token] else {
            throw CaptureError(.system(errno: EINVAL), operation: "retrieve", source: source)
        }
        let width = Int(format.width), height = Int(format.height)
        let pixelFormat = PixelFormat(rawValue: format.pixelformat)
        if pixelFormat == .mjpeg || pixelFormat == .jpeg, let data = buffer.data {
            // The camera's JPEG: kept as it is, its header checked here, decoded only as far as the frame's reader needs.
            return try FramePicture(
                jpeg: Array(UnsafeBufferPointer(start: data, count: Int(buffer.bytesused))), width: width, height: height,
                source: source)
        }
        let count = width * height * 3
        var rc: Int32 = 0
        let pixels = [UInt8](unsafeUninitializedCapacity: count) { out, initialized in
            rc = cv4l2_convert_bgr(device.handle, &buffer, out.baseAddress, count)
            initialized = rc == 0 ? count : 0
        }
        if rc != 0 {
            throw CaptureError(
                .system(errno: rc), operation: "v4lconvert_convert", source: source,
                detail: String(cString: cv4l2_convert_error(device.handle)))
        }
        return FramePicture(bgr: pixels)
    }

    func release(_ token: Int) {
        guard let device, let buffer = held.removeValue(forKey: token) else { return }
        // A failure here (unplugged) shows up at the next DQBUF.
        _ = cv4l2_requeue(device.handle, buffer.index)
    }

    func close() {
        held.removeAll()
        device?.close()
        device = nil
    }
}
