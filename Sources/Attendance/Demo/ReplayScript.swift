import AttendanceCore
import FaceEngine
import Foundation

/// A gate video with a known answer: photos move across a background at known times.
/// The demo (`make run`), the end-to-end tests and `make bench-pipeline` (`GateScenario`) replay it
/// through the real pipeline.
public struct ReplayScript: Sendable {
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

        public init(
            image: String, from: Double, to: Double, faceSize: Int? = nil, height: Double = 0.5, leftward: Bool = false,
            blur: Int = 0, student: String? = nil
        ) {
            self.image = image; self.from = from; self.to = to; self.faceSize = faceSize; self.height = height
            self.leftward = leftward; self.blur = blur; self.student = student
        }

        public func visible(at t: Double) -> Bool { t >= from && t < to }
    }

    /// What the people walk in front of.
    public enum Background: Sendable, Equatable {
        /// One grey-blue colour (the demo).
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
    /// The square cut around each face, in face sizes (the shoulders and some background).
    public var cropFactor = 2.4
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
        var tiles: [String: Image] = [:]
        let people = try passages.map { p -> Image in
            let size = p.faceSize ?? faceSize
            let key = "\(p.image)|\(size)|\(p.blur)"
            if let tile = tiles[key] { return tile }
            let photo = try Image(contentsOf: p.image)
            guard let face = try engine.detect(in: photo).max(by: { $0.box.area < $1.box.area })?.box else {
                throw FaceEngineError(kind: .noFace, operation: "compose replay", message: "no face in \(p.image)")
            }
            // A square around the face, `cropFactor` face sizes wide.
            let side = max(face.width, face.height)
            let span = Int(Double(side) * cropFactor)
            let crop = try Image(width: span, height: span, blue: 96, green: 104, red: 110)
            try crop.paste(photo, x: -(Int(face.centerX) - span / 2), y: -(Int(face.centerY) - span / 2))
            let out = span * size / side
            let tile = try crop.resized(width: out, height: out)
            try tile.motionBlur(length: p.blur)
            tiles[key] = tile
            return tile
        }
        let scene = try makeBackground()
        let writer = try VideoWriter(path: path, fps: fps, width: width, height: height)
        let frames = Int((duration * fps).rounded())
        for n in 0..<frames {
            let t = Double(n) / fps
            let frame = try Image(width: width, height: height)
            try frame.paste(scene, x: 0, y: 0)
            for (p, person) in zip(passages, people) where p.visible(at: t) {
                let progress = (t - p.from) / max(p.to - p.from, 0.001)
                let travel = Int((p.leftward ? 1 - progress : progress) * Double(width - person.width - 40))
                let y = Int(p.height * Double(height)) - person.height / 2
                try frame.paste(person, x: 20 + travel, y: y)
            }
            if lightingDrift != 0 {
                try frame.adjust(gain: 1 + lightingDrift * Float(sin(2 * Double.pi * t / max(lightingPeriod, 1))))
            }
            if noise > 0 { try frame.addNoise(sigma: noise, seed: seed &* 1_000_003 &+ UInt64(n)) }
            try writer.write(frame)
        }
    }

    func makeBackground() throws -> Image {
        guard background == .scene else { return try Image(width: width, height: height, blue: 96, green: 104, red: 110) }
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
        var random = SplitMix(seed: UInt64(17 + variant))
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

/// A small seeded generator (SplitMix64) for the scenarios: the same script on every machine.
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
