import AttendanceCore
import CaptureKit
import FaceEngine
import Foundation
import SeededRandom

/// A gate video with a known answer: people (cut out of photos) walk across a gate scene at known times.
/// The demo (`make run`), the end-to-end tests and `make bench-pipeline` (`GateScenario`) replay it
/// through the real pipeline.
///
/// A person is the photo's face and surroundings under a soft oval mask, blended into the scene: a rectangle of
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
        /// The face's size in pixels (nil: the script's `faceSize`).
        public var faceSize: Int?
        /// Where the face's centre walks, as a share of the frame's height (0.5: the middle).
        public var height = 0.5
        /// Walks from right to left.
        public var leftward = false
        /// Horizontal motion blur over this many pixels (0: sharp).
        public var blur = 0
        /// The known answer: the student this is (nil: a stranger, or a student not enrolled).
        public var student: String?
        public var presentation: Presentation

        public init(
            image: String, from: Double, to: Double, faceSize: Int? = nil, height: Double = 0.5, leftward: Bool = false,
            blur: Int = 0, student: String? = nil, presentation: Presentation = .person
        ) {
            self.image = image; self.from = from; self.to = to; self.faceSize = faceSize; self.height = height
            self.leftward = leftward; self.blur = blur; self.student = student; self.presentation = presentation
        }

        public func visible(at t: Double) -> Bool { t >= from && t < to }
    }

    /// What the people walk in front of.
    public enum Background: Sendable, Equatable {
        /// A wall over a tiled floor, lit from above, with a fine grain (the demo).
        case plain
        /// A still gate scene: wall, floor, two gate posts, a notice board, a textured surface (made from the seed).
        case scene
    }

    public var width = 640
    public var height = 480
    public var fps = 10.0
    public var duration: Double
    public var passages: [Passage]
    /// The face's size in the frame, pixels (each photo is cropped around its largest face and scaled).
    public var faceSize = 110
    /// The square cut around each face, in face sizes, under the soft oval: 4.4 shows what the liveness models look
    /// at (their crops are 2.7 and 4 face boxes); crowded scenes use less.
    public var cropFactor = 4.4
    public var background = Background.plain
    /// The camera's sensor noise: Gaussian, this many grey levels, new in every frame.
    public var noise: Float = 0
    /// A slow change of the light: the brightness swings by this share (0.1: ±10 %) ...
    public var lightingDrift: Float = 0
    /// ... over this many seconds.
    public var lightingPeriod = 300.0
    /// Seeds the noise and the scene's texture.
    public var seed: UInt64 = 1

    public init(duration: Double, passages: [Passage]) {
        self.duration = duration
        self.passages = passages
    }

    /// The students the known answer expects: everyone enrolled who passes.
    public var expectedStudents: Set<String> { Set(passages.compactMap(\.student)) }

    /// Passages visible at `t` or within `slack` seconds before (a decision comes a little after the face).
    public func passages(near t: Double, slack: Double) -> [Passage] {
        passages.filter { t >= $0.from && t < $0.to + slack }
    }

    /// Writes the video (MJPEG in AVI, which every OpenCV build can read back).
    public func write(to path: String, engine: FaceEngine) throws {
        var made: [String: Sprite] = [:]
        let sprites = try passages.map { p -> Sprite in
            let key = "\(p.image)|\(p.faceSize ?? faceSize)|\(p.blur)|\(p.presentation)"
            if let s = made[key] { return s }
            let s = try sprite(of: p, engine: engine)
            made[key] = s
            return s
        }
        let scene = try makeBackground().bgrBytes
        let writer = try VideoWriter(path: path, fps: fps, width: width, height: height)
        let frames = Int((duration * fps).rounded())
        for n in 0..<frames {
            let t = Double(n) / fps
            var pixels = scene
            for (p, s) in zip(passages, sprites) where p.visible(at: t) {
                let progress = (t - p.from) / max(p.to - p.from, 0.001)
                let travel = Int((p.leftward ? 1 - progress : progress) * Double(width - s.width - 40))
                s.blend(
                    into: &pixels, width: width, height: height, x: 20 + travel, y: Int(p.height * Double(height)) - s.height / 2)
            }
            let frame = try Image(bgr: pixels, width: width, height: height)
            if lightingDrift != 0 {
                try frame.adjust(gain: 1 + lightingDrift * Float(sin(2 * Double.pi * t / max(lightingPeriod, 1))))
            }
            if noise > 0 { try frame.addNoise(sigma: noise, seed: seed &* 1_000_003 &+ UInt64(n)) }
            try writer.write(bgr: frame.bgrBytes)
        }
    }

    /// One frame of the gate with `image` presented in the middle (the liveness measurements compose these).
    public func still(of image: String, presentation: Presentation, engine: FaceEngine) throws -> Image {
        let s = try sprite(of: Passage(image: image, from: 0, to: 1, presentation: presentation), engine: engine)
        var pixels = try makeBackground().bgrBytes
        s.blend(into: &pixels, width: width, height: height, x: (width - s.width) / 2, y: (height - s.height) / 2)
        return try Image(bgr: pixels, width: width, height: height)
    }

    /// The passage's picture with its opacity, its face `faceSize` pixels, blurred as the passage says.
    func sprite(of p: Passage, engine: FaceEngine) throws -> Sprite {
        let photo = try Image(contentsOf: p.image)
        guard let face = try engine.detect(in: photo).max(by: { $0.box.area < $1.box.area })?.box else {
            throw FaceEngineError(kind: .noFace, operation: "compose replay", message: "no face in \(p.image)")
        }
        let side = max(face.width, face.height)
        let size = p.faceSize ?? faceSize
        // The photo cut around the face (w x h face sizes, the face at `up` of the height), scaled to `size`.
        func cut(_ w: Double, _ h: Double, up: Double, fill: UInt8) throws -> (Image, inside: Sprite.Rect) {
            let cw = Int(Double(side) * w), ch = Int(Double(side) * h)
            let crop = try Image(width: cw, height: ch, blue: fill, green: fill, red: fill)
            let px = -(Int(face.centerX) - cw / 2), py = -(Int(face.centerY) - Int(Double(ch) * up))
            try crop.paste(photo, x: px, y: py)
            let k = Double(size) / Double(side)
            let out = try crop.resized(width: max(1, Int(Double(cw) * k)), height: max(1, Int(Double(ch) * k)))
            try out.motionBlur(length: p.blur)
            let inside = Sprite.Rect(
                left: Double(px) * k, top: Double(py) * k, right: Double(px + photo.width) * k,
                bottom: Double(py + photo.height) * k)
            return (out, inside)
        }
        switch p.presentation {
        case .person:
            // The person and what is behind them, under an oval that fades out before the crop's edge and where
            // the photo ends: a hard edge inside the crop is what a print looks like.
            let (image, inside) = try cut(cropFactor, cropFactor, up: 0.5, fill: 150)
            return Sprite.oval(image, inside: inside)
        case .phoneScreen:
            return Sprite.phone(try cut(1.6, 2.2, up: 0.4, fill: 0).0)
        case .print:
            return Sprite.print(try cut(2.0, 2.5, up: 0.4, fill: 0).0)
        }
    }

    /// The plain gate: a wall over a tiled floor, lit from above, with some grain (never a flat colour).
    static func wall(width: Int, height: Int) -> [UInt8] {
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

    func makeBackground() throws -> Image {
        guard background == .scene else {
            return try Image(bgr: Self.wall(width: width, height: height), width: width, height: height)
        }
        // Wall above, floor below (surfaces with blotches, as paint and concrete have), two gate posts, a
        // notice board, a bench: still things with edges, and a fine texture; the same in every frame.
        func surface(_ w: Int, _ h: Int, _ b: UInt8, _ g: UInt8, _ r: UInt8, seed: UInt64) throws -> Image {
            let coarse = try Image(width: max(w / 8, 1), height: max(h / 8, 1), blue: b, green: g, red: r)
            try coarse.addNoise(sigma: 30, seed: seed)
            return try coarse.resized(width: w, height: h)
        }
        let floorY = height * 2 / 3
        let frame = try surface(width, floorY, 96, 104, 110, seed: seed &+ 3)
        let full = try Image(width: width, height: height)
        try full.paste(frame, x: 0, y: 0)
        try full.paste(try surface(width, height - floorY, 70, 84, 92, seed: seed &+ 5), x: 0, y: floorY)
        let post = try Image(width: width / 16, height: height, blue: 40, green: 60, red: 150)
        try full.paste(post, x: width / 10, y: 0)
        try full.paste(post, x: width - width / 10 - width / 16, y: 0)
        try full.paste(
            try Image(width: width / 5, height: height / 6, blue: 210, green: 215, red: 220), x: width / 3, y: height / 10)
        try full.paste(
            try Image(width: width / 4, height: height / 20, blue: 30, green: 70, red: 110), x: width / 2, y: floorY + 20)
        try full.addNoise(sigma: 8, seed: seed &+ 7)
        try full.motionBlur(length: 3)
        return full
    }
}

/// The replays of `make bench-pipeline` (#16): an empty gate, steady arrivals, the morning rush, from the
/// sample images, with their known answer (`ReplayScript.expectedStudents`, `Passage.student`).
public enum GateScenario: String, CaseIterable, Sendable {
    /// A still scene with sensor noise and a slow lighting drift: nobody passes.
    case empty
    /// One face every 2 s, 100-140 px, a stranger among them.
    case steady
    /// 3-6 faces in the frame at once, entering and leaving in three rows, 60-190 px, some with motion blur.
    case rush

    /// Default length in seconds (the empty gate: 10 minutes).
    public var defaultDuration: Double {
        switch self {
        case .empty: return 600
        case .steady, .rush: return 60
        }
    }

    /// Who walks past: an enrolled student's other photos (their enrolment photos are `GateDemo.enrolments`),
    /// and the stranger (the astronaut: never enrolled).
    static func people(samples: String) -> [(image: String, student: String?)] {
        [
            (samples + "/obama2.jpg", "7900000001"), (samples + "/biden.jpg", "7900000003"),
            (samples + "/astronaut.png", nil), (samples + "/obama3.jpg", "7900000001"),
            (samples + "/obama.jpg", "7900000001"),
        ]
    }

    /// The script at `fps` frames/s; `variant` shifts who comes when (the second camera sees other passages).
    public func script(samples: String, fps: Double, duration: Double? = nil, variant: Int = 0) -> ReplayScript {
        let length = duration ?? defaultDuration
        let people = GateScenario.people(samples: samples)
        var random = SplitMix64(seed: UInt64(17 + variant))
        var passages: [ReplayScript.Passage] = []
        switch self {
        case .empty:
            break
        case .steady:
            // Everyone walks the same way (camera 2's people the other way): the next person enters where
            // nobody stands, so each passage is a track of its own.
            var k = variant
            var t = 0.5
            while t + 1.6 <= length {
                let who = people[k % people.count]
                passages.append(
                    .init(
                        image: who.image, from: t, to: t + 1.6, faceSize: 100 + Int(random.next() % 41),
                        height: 0.45 + Double(random.next() % 11) / 100, leftward: variant % 2 == 1, student: who.student))
                k += 1
                t += 2
            }
        case .rush:
            // Three rows (far: small faces, middle, near: large), each crossed in a fixed time so nobody in a
            // row catches up with the one ahead; a new person enters a row every half to whole crossing.
            let rows: [(height: Double, sizes: ClosedRange<Int>, crossing: Double)] = [
                (0.2, 60...80, 4.0), (0.5, 80...130, 3.0), (0.8, 120...190, 3.5),
            ]
            var k = variant
            for (r, row) in rows.enumerated() {
                var t = Double(r) * 0.3
                while t + row.crossing <= length {
                    let who = people[k % people.count]
                    let size = row.sizes.lowerBound + Int(random.next() % UInt64(row.sizes.count))
                    passages.append(
                        .init(
                            image: who.image, from: t, to: t + row.crossing, faceSize: size, height: row.height,
                            leftward: r == 1, blur: k % 3 == 2 ? 5 + Int(random.next() % 5) : 0, student: who.student))
                    k += 1
                    t += row.crossing * (0.5 + Double(random.next() % 51) / 100)
                }
            }
        }
        var script = ReplayScript(duration: length, passages: passages)
        script.fps = fps
        script.background = .scene
        script.noise = 3
        script.lightingDrift = self == .empty ? 0.1 : 0.03
        script.lightingPeriod = self == .empty ? 300 : 120
        script.cropFactor = self == .rush ? 1.5 : 2.0
        script.seed = UInt64(1 + variant)
        return script
    }
}

/// A picture with an opacity per pixel, blended into a frame.
struct Sprite {
    /// Where the picture ends inside a sprite (sprite pixels).
    struct Rect { var left, top, right, bottom: Double }

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
    static func oval(_ image: Image, inside: Rect) -> Sprite {
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
