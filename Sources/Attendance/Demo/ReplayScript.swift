import AttendanceCore
import FaceEngine
import Foundation

/// A gate video with a known answer: people (cut out of photos) walk across a gate scene at known times.
/// The demo (`make run`) and the end-to-end tests replay it through the real pipeline.
///
/// A person is the photo's face and shoulders under a soft oval mask, blended into the scene: a rectangle of
/// photo with hard edges on a flat background is exactly what a print or a phone screen looks like to the
/// liveness models (the first demo video was judged a spoof, real score 0.00 and 0.29). Passages can also be
/// shown as a phone screen or a print held up to the camera, for the liveness tests.
public struct ReplayScript: Sendable {
    /// How a photo appears at the gate.
    public enum Presentation: Sendable, Equatable {
        /// The person themself.
        case person
        /// The photo on a phone held up to the camera: a dark bezel, a bright screen, a glare streak.
        case phoneScreen
        /// A printed photo held up: a white border, the paper slightly tilted (perspective).
        case print
    }

    /// One person walking past the camera: `image` is visible from `from` to `to` (seconds of video).
    public struct Passage: Sendable {
        public var image: String
        public var from: Double
        public var to: Double
        public var presentation: Presentation
        public init(image: String, from: Double, to: Double, presentation: Presentation = .person) {
            self.image = image; self.from = from; self.to = to; self.presentation = presentation
        }
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
        let sprites = try passages.map { try sprite(of: $0, engine: engine) }
        let scene = Self.scene(width: width, height: height)
        let writer = try VideoWriter(path: path, fps: fps, width: width, height: height)
        let frames = Int((duration * fps).rounded())
        for n in 0..<frames {
            let t = Double(n) / fps
            var pixels = scene
            for (p, s) in zip(passages, sprites) where t >= p.from && t < p.to {
                let progress = (t - p.from) / max(p.to - p.from, 0.001)
                let x = 20 + Int(progress * Double(width - s.width - 40))
                s.blend(into: &pixels, width: width, height: height, x: x, y: (height - s.height) / 2)
            }
            try writer.write(try Image(bgr: pixels, width: width, height: height))
        }
    }

    /// One frame of the gate with `image` presented in the middle (the liveness measurements compose these).
    public func still(of image: String, presentation: Presentation, engine: FaceEngine) throws -> Image {
        let s = try sprite(of: Passage(image: image, from: 0, to: 1, presentation: presentation), engine: engine)
        var pixels = Self.scene(width: width, height: height)
        s.blend(into: &pixels, width: width, height: height, x: (width - s.width) / 2, y: (height - s.height) / 2)
        return try Image(bgr: pixels, width: width, height: height)
    }

    /// The empty gate: a wall over a floor, lit from above, with some texture (never a flat colour).
    static func scene(width: Int, height: Int) -> [UInt8] {
        var pixels = [UInt8](repeating: 0, count: width * height * 3)
        var seed: UInt32 = 12345
        for y in 0..<height {
            let floor = y > height * 7 / 10
            let light = 1.0 - 0.35 * Double(y) / Double(height)
            for x in 0..<width {
                seed = seed &* 1_103_515_245 &+ 12345
                let grain = Double(Int(seed >> 24) % 9) - 4
                let tile = floor && (x / 40 + y / 20) % 2 == 0 ? -10.0 : 0
                let base: (Double, Double, Double) = floor ? (92, 100, 112) : (150, 160, 170)
                let i = (y * width + x) * 3
                pixels[i] = UInt8(max(0, min(255, base.0 * light + grain + tile)))
                pixels[i + 1] = UInt8(max(0, min(255, base.1 * light + grain + tile)))
                pixels[i + 2] = UInt8(max(0, min(255, base.2 * light + grain + tile)))
            }
        }
        return pixels
    }

    /// The passage's picture with its opacity, `faceSize` pixels of face.
    func sprite(of p: Passage, engine: FaceEngine) throws -> Sprite {
        let photo = try Image(contentsOf: p.image)
        guard let face = try engine.detect(in: photo).max(by: { $0.box.area < $1.box.area })?.box else {
            throw FaceEngineError(kind: .noFace, operation: "compose replay", message: "no face in \(p.image)")
        }
        let side = max(face.width, face.height)
        switch p.presentation {
        case .person:
            // The person and what is behind them, 4.4 face sizes (what the liveness models look at), under an oval
            // that fades out before the crop's edge.
            let span = Int(Double(side) * 4.4)
            let crop = try Image(width: span, height: span, blue: 140, green: 150, red: 160)
            let px = -(Int(face.centerX) - span / 2), py = -(Int(face.centerY) - span / 2)
            try crop.paste(photo, x: px, y: py)
            let out = span * faceSize / side
            // The photo's own edges fade out too: a hard edge inside the crop is what a print looks like.
            let k = Double(out) / Double(span)
            let inside = (
                left: Double(px) * k, top: Double(py) * k, right: Double(px + photo.width) * k,
                bottom: Double(py + photo.height) * k
            )
            return Sprite.oval(try crop.resized(width: out, height: out), inside: inside)
        case .phoneScreen:
            // The photo fills a 9:16-ish screen a little wider than the face, inside a black bezel, with a glare.
            let w = Int(Double(side) * 1.6), h = Int(Double(side) * 2.2)
            let crop = try Image(width: w, height: h)
            try crop.paste(photo, x: -(Int(face.centerX) - w / 2), y: -(Int(face.centerY) - h * 2 / 5))
            let sw = w * faceSize / side, sh = h * faceSize / side
            return Sprite.phone(try crop.resized(width: sw, height: sh))
        case .print:
            // A 4x6-style print: the photo with a white border, the top edge tilted away (narrower).
            let w = Int(Double(side) * 2.0), h = Int(Double(side) * 2.5)
            let crop = try Image(width: w, height: h)
            try crop.paste(photo, x: -(Int(face.centerX) - w / 2), y: -(Int(face.centerY) - h * 2 / 5))
            let sw = w * faceSize / side, sh = h * faceSize / side
            return Sprite.print(try crop.resized(width: sw, height: sh))
        }
    }
}

/// A picture with an opacity per pixel, blended into a frame.
struct Sprite {
    var width: Int
    var height: Int
    var bgr: [UInt8]
    var alpha: [Float]

    func blend(into frame: inout [UInt8], width fw: Int, height fh: Int, x: Int, y: Int) {
        for sy in 0..<height {
            let fy = y + sy
            guard fy >= 0, fy < fh else { continue }
            for sx in 0..<width {
                let fx = x + sx
                let a = alpha[sy * width + sx]
                guard fx >= 0, fx < fw, a > 0 else { continue }
                let s = (sy * width + sx) * 3, d = (fy * fw + fx) * 3
                for c in 0..<3 {
                    frame[d + c] = UInt8((Float(frame[d + c]) * (1 - a) + Float(bgr[s + c]) * a).rounded())
                }
            }
        }
    }

    /// The photo under a soft oval (opaque in the middle, fading over its outer half), fading out as well towards
    /// the edges of `inside` (where the picture ends).
    static func oval(_ image: Image, inside: (left: Double, top: Double, right: Double, bottom: Double)) -> Sprite {
        let w = image.width, h = image.height
        var alpha = [Float](repeating: 0, count: w * h)
        for y in 0..<h {
            for x in 0..<w {
                let dx = (Double(x) + 0.5 - Double(w) / 2) / (Double(w) * 0.48)
                let dy = (Double(y) + 0.5 - Double(h) / 2) / (Double(h) * 0.5)
                let r = (dx * dx + dy * dy).squareRoot()
                let feather = Double(w) * 0.12
                let edge = min(
                    Double(x) - inside.left, inside.right - Double(x), Double(y) - inside.top, inside.bottom - Double(y))
                let t = max(0, min(1, (1 - r) / 0.45)) * max(0, min(1, edge / feather))
                alpha[y * w + x] = Float(t * t * (3 - 2 * t))
            }
        }
        return Sprite(width: w, height: h, bgr: image.bgrBytes, alpha: alpha)
    }

    /// The photo as a lit phone screen: a black bezel around it, the picture a little blue and bright, a diagonal
    /// glare streak across it.
    static func phone(_ screen: Image) -> Sprite {
        let bezel = max(4, screen.width / 14)
        let w = screen.width + 2 * bezel, h = screen.height + 3 * bezel
        var bgr = [UInt8](repeating: 18, count: w * h * 3)
        let src = screen.bgrBytes
        for y in 0..<screen.height {
            for x in 0..<screen.width {
                let s = (y * screen.width + x) * 3, d = ((y + bezel * 3 / 2) * w + x + bezel) * 3
                // Glare: a bright diagonal band across the screen's upper-left corner, above the face.
                let band = abs(Double(x) / Double(screen.width) + Double(y) / Double(screen.height) - 0.3)
                let glare = band < 0.06 ? (1 - band / 0.06) * 0.6 : 0
                for c in 0..<3 {
                    let lit = Double(src[s + c]) * 0.95 + (c == 0 ? 16 : 8)
                    bgr[d + c] = UInt8(max(0, min(255, lit * (1 - glare) + 255 * glare)))
                }
            }
        }
        return Sprite(width: w, height: h, bgr: bgr, alpha: [Float](repeating: 1, count: w * h))
    }

    /// The photo as a print held up: a white border, the top edge narrower than the bottom (tilted back).
    static func print(_ photo: Image) -> Sprite {
        let border = max(4, photo.width / 12)
        let pw = photo.width + 2 * border, ph = photo.height + 2 * border
        var paper = [UInt8](repeating: 242, count: pw * ph * 3)
        let src = photo.bgrBytes
        for y in 0..<photo.height {
            for x in 0..<photo.width {
                let s = (y * photo.width + x) * 3, d = ((y + border) * pw + x + border) * 3
                for c in 0..<3 { paper[d + c] = UInt8(Double(src[s + c]) * 0.92 + 8) }
            }
        }
        // Each row of the output samples the paper's row, squeezed by up to 12 % at the top.
        var bgr = [UInt8](repeating: 0, count: pw * ph * 3)
        var alpha = [Float](repeating: 0, count: pw * ph)
        for y in 0..<ph {
            let squeeze = 0.12 * (1 - Double(y) / Double(ph))
            let rowWidth = Double(pw) * (1 - squeeze)
            let left = (Double(pw) - rowWidth) / 2
            for x in 0..<pw {
                let u = (Double(x) - left) / rowWidth * Double(pw)
                guard u >= 0, u < Double(pw) else { continue }
                let sx = min(pw - 1, Int(u))
                let s = (y * pw + sx) * 3, d = (y * pw + x) * 3
                bgr[d] = paper[s]; bgr[d + 1] = paper[s + 1]; bgr[d + 2] = paper[s + 2]
                alpha[y * pw + x] = 1
            }
        }
        return Sprite(width: pw, height: ph, bgr: bgr, alpha: alpha)
    }
}
