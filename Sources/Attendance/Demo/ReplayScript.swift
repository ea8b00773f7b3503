import AttendanceCore
import FaceEngine
import Foundation

/// A gate video with a known answer: photos move across a background at known times.
/// The demo (`make run`) and the end-to-end tests replay it through the real pipeline.
public struct ReplayScript: Sendable {
    /// One person walking past the camera: `image` is visible from `from` to `to` (seconds of video).
    public struct Passage: Sendable {
        public var image: String
        public var from: Double
        public var to: Double
        public init(image: String, from: Double, to: Double) { self.image = image; self.from = from; self.to = to }
    }

    public var width = 640
    public var height = 480
    public var fps = 10.0
    public var duration: Double
    public var passages: [Passage]
    /// The face's size in the frame, pixels (each photo is cropped around its largest face and scaled).
    public var faceSize = 110

    public init(duration: Double, passages: [Passage]) {
        self.duration = duration
        self.passages = passages
    }

    /// Writes the video (MJPEG in AVI, which every OpenCV build can read back).
    public func write(to path: String, engine: FaceEngine) throws {
        let people = try passages.map { p -> Image in
            let photo = try Image(contentsOf: p.image)
            guard let face = try engine.detect(in: photo).max(by: { $0.box.area < $1.box.area })?.box else {
                throw FaceEngineError(kind: .noFace, operation: "compose replay", message: "no face in \(p.image)")
            }
            // A square around the face, 2.4 face sizes wide (the shoulders and some background).
            let side = max(face.width, face.height)
            let span = Int(Double(side) * 2.4)
            let crop = try Image(width: span, height: span, blue: 96, green: 104, red: 110)
            try crop.paste(photo, x: -(Int(face.centerX) - span / 2), y: -(Int(face.centerY) - span / 2))
            let out = span * faceSize / side
            return try crop.resized(width: out, height: out)
        }
        let writer = try VideoWriter(path: path, fps: fps, width: width, height: height)
        let frames = Int((duration * fps).rounded())
        for n in 0..<frames {
            let t = Double(n) / fps
            let frame = try Image(width: width, height: height, blue: 96, green: 104, red: 110)
            for (p, person) in zip(passages, people) where t >= p.from && t < p.to {
                let progress = (t - p.from) / max(p.to - p.from, 0.001)
                let x = 20 + Int(progress * Double(width - person.width - 40))
                try frame.paste(person, x: x, y: (height - person.height) / 2)
            }
            try writer.write(frame)
        }
    }
}
