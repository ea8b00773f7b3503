import Logging

/// Makes a frame source from the text a user writes in a config file or on the command line.
public enum CameraSource {
    /// - `v4l2:/dev/video0` (or a bare `/dev/video0`): a V4L2 camera.
    /// - `rtsp://user:pass@host/stream`: an IP camera.
    /// - `file:PATH`: a video file, replayed (see `CaptureOptions.pacing` and `loop`).
    /// - Parameter cameraID: names the camera in frames and logs; defaults to the spec
    ///   (with any password in an RTSP URL hidden).
    public static func make(
        _ spec: String, cameraID: String? = nil, options: CaptureOptions = CaptureOptions(), logger: Logger? = nil
    ) throws(CaptureError) -> any FrameSource {
        let id = cameraID ?? redacted(spec)
        if spec.hasPrefix("v4l2:") {
            let path = String(spec.dropFirst(5))
            guard !path.isEmpty else { throw CaptureError(.invalidSource, operation: "parse", source: spec) }
            return V4L2Camera(path: path, cameraID: id, options: options, logger: logger)
        }
        if spec.hasPrefix("/dev/video") {
            return V4L2Camera(path: spec, cameraID: id, options: options, logger: logger)
        }
        let lower = spec.lowercased()
        if lower.hasPrefix("rtsp://") || lower.hasPrefix("rtsps://") {
            return VideoSource(url: spec, cameraID: id, options: options, logger: logger)
        }
        if spec.hasPrefix("file:") {
            var path = String(spec.dropFirst(5))
            if path.hasPrefix("//") { path = String(path.dropFirst(2)) } // file:///abs/path
            guard !path.isEmpty else { throw CaptureError(.invalidSource, operation: "parse", source: spec) }
            return VideoSource(url: path, cameraID: id, options: options, logger: logger)
        }
        throw CaptureError(.invalidSource, operation: "parse", source: spec)
    }

    /// `text` with the password of every `scheme://user:password@` in it replaced by `***` (a library's
    /// message may quote the URL it was given).
    public static func redactingCredentials(in text: String) -> String {
        guard text.contains("://"), text.contains("@") else { return text }
        var out = ""
        var rest = Substring(text)
        while let scheme = rest.range(of: "://") {
            out += rest[..<scheme.upperBound]
            rest = rest[scheme.upperBound...]
            // The URL ends at whitespace or a quote. Its credentials end at the last '@' in it (a raw password
            // may hold '/', '?', '#' or '@'): everything between the first ':' and that '@' goes.
            let end = rest.firstIndex { $0.isWhitespace || $0 == "\"" || $0 == "'" } ?? rest.endIndex
            let url = rest[..<end]
            if let at = url.lastIndex(of: "@"), let colon = url[..<at].firstIndex(of: ":") {
                out += url[..<colon] + ":***" + url[at...]
            } else {
                out += url
            }
            rest = rest[end...]
        }
        return out + rest
    }

    /// The spec with an RTSP password replaced by `***`, safe for logs.
    public static func redacted(_ spec: String) -> String { redactingCredentials(in: spec) }
}
