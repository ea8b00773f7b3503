import Foundation
import TOMLKit

/// The gate box's configuration, read from a TOML file (see deploy/attendance.toml for every key).
/// Every key has a default, so an empty file (or none) gives the embedded demo set-up.
public struct AttendanceConfig: Sendable, Equatable {
    public struct School: Sendable, Equatable {
        /// The school's code in the sector database.
        public var code = "DEMO-SCHOOL"
        public var name = "Demo school"
        /// IANA zone for wall-clock records and the school day.
        public var timezone = "Asia/Ho_Chi_Minh"
        /// The school's time zone: `timezone` (checked when the config is read), else Vietnam's.
        public var timeZone: TimeZone { TimeZone(identifier: timezone) ?? TimeZone(identifier: "Asia/Ho_Chi_Minh")! }
    }

    public struct Database: Sendable, Equatable {
        /// Where the school's records live: this box's SQLite file alone (one gate box), or the school's
        /// PostgreSQL server shared by several boxes, each keeping its SQLite file as the journal of its own
        /// decisions until the server has them.
        public enum Backend: String, Sendable, Equatable { case sqlite, postgresql }
        /// `require`: TLS with the server's certificate verified against `ca_file` (or the system's roots) and
        /// its name against the URL's host; `disable`: plain TCP, refused unless the host is loopback.
        public enum TLSMode: String, Sendable, Equatable { case require, disable }

        public var backend = Backend.sqlite
        /// SQLite file (WAL mode): the database with `sqlite`, the gate's journal with `postgresql`.
        /// Relative paths are relative to the config file's folder.
        public var path = "attendance.sqlite"
        /// AES-GCM key for the embeddings; default `<path>.key`, created 0600 on first use. With `postgresql`
        /// every box of the school holds a copy of the same key (README, "Several gates, one school").
        public var keyFile: String?
        public var resolvedKeyFile: String { keyFile ?? (path + ".key") }
        /// The server, `postgresql://USER@HOST:PORT/DATABASE` (never a password: that is `password_file`).
        public var url: PostgresURL?
        /// The role's password, alone in a file of mode 0600.
        public var passwordFile: String?
        public var tls = TLSMode.require
        /// The CA certificate (PEM) the server's certificate must chain to; default: the system's roots.
        public var caFile: String?
        public init() {}
    }

    public struct Recognition: Sendable, Equatable {
        /// L2 distance under which a face matches an enrolled student. Not dlib's 0.6, chosen on LFW's
        /// mostly Western adults: on East-Asian faces 0.6 accepts 37 % of different-person pairs
        /// (faces-dev), 0.45 accepts 0.4 % (README, "Accuracy"; `make bench-accuracy`).
        public var threshold: Float = 0.45
        /// The best student must beat the next one by this much.
        public var minMargin: Float = 0.05
        /// Agreeing matches on one track before a student is decided.
        public var votes = 3
        /// Quality gates for embedding a face at the gate and for enrolment photos.
        public var minFaceSize: Float = 60
        public var minSharpness: Float = 15
        public var maxYaw: Float = 35
        /// At most this many embeddings per student.
        public var maxEmbeddingsPerStudent = 5
        /// Refuse an enrolment photo this close to *another* student's face (likely swapped). Default:
        /// the match threshold, since a photo that close would be recognised as that other student.
        public var duplicateDistance: Float?
        public var swapGuardDistance: Float { duplicateDistance ?? threshold }
        /// Refuse an enrolment photo farther than this from all of the student's own photos (someone
        /// else?). Not the match threshold: at 0.45 a second photo of the same adult is that far in
        /// 33 % of faces-dev's same-person pairs; at 0.6 in 1.5 % (0.4 % East-Asian), while 80 % of
        /// different-person pairs are farther.
        public var sameStudentDistance: Float = 0.6
        /// A look-alike student (another student enrolled within threshold + min_margin) must win by this margin...
        public var lookalikeMargin: Float = 0.07
        /// ...and needs this many more agreeing votes.
        public var lookalikeExtraVotes = 1
        /// Keep the embedding of a student's first decided gate sighting for the teacher to approve into
        /// the enrolment (`attendance sightings`). One photo + an approved sighting: 61.8 % correct tracks
        /// against 55.4 % for one photo alone on faces-dev; a second photo: 72.9 %.
        public var learnFromGate = true
        /// Passive liveness at the gate (a print or a phone screen held up for an absent friend).
        public var liveness: LivenessMode = .flag
        /// A track whose mean real score (0...1, both MiniFASNet models) is below this is judged a spoof: the school's
        /// `liveness_threshold`, or the detector's own (`FaceDetector.livenessThreshold`: the crops are widened from the
        /// detector's box, so the scores follow the detector).
        public var livenessThreshold: Float {
            get { livenessThresholdSetting ?? detector.livenessThreshold }
            set { livenessThresholdSetting = newValue }
        }
        /// `liveness_threshold` as the config sets it (nil: the detector's).
        public var livenessThresholdSetting: Float?
        /// The face detector, for the gate's frames and for photos alike (the boxes are refined with dlib's HOG
        /// either way, so the embeddings come from the same landmarks). YuNet: about a tenth of res10's CPU on a
        /// 640x480 frame (#16; README "The gate through a morning").
        public var detector: FaceDetector = .yunet
    }

    /// The face detector (`[recognition] detector`).
    public enum FaceDetector: String, Sendable, Equatable, CaseIterable {
        /// YuNet 2022mar through OpenCV's FaceDetectorYN (the frame shrunk to 320 px on its longer side).
        case yunet
        /// OpenCV dnn's res10 SSD (300x300 input, a second padded pass on close-ups).
        case res10

        /// The liveness threshold unless the school sets one. Not the models' own 0.5: faces-dev composed into gate
        /// frames (`make bench-liveness`, README "Liveness"). YuNet (its boxes reshaped to the models' reference
        /// detector's): at 0.2, 97.6 % of East-Asian and 98.5 % of other people's frames kept, 0 % and 0.3 % of the
        /// phone screens and prints passed, the models' printed-photo sample 0.056 and their screen sample 0.110
        /// (spoofs); at 0.3 only 91.2 % and 93.3 % kept. res10: at 0.3, 97.0 % and 99.1 % kept, 0 % and 0.9 % passed,
        /// against 74.6 % and 71.2 % kept at 0.5; its printed-photo sample (0.20) stays a spoof.
        public var livenessThreshold: Float {
            switch self {
            case .yunet: return 0.2
            case .res10: return 0.3
            }
        }
    }

    /// What the gate does with a track that looks like a print or a screen.
    public enum LivenessMode: String, Sendable, Equatable, CaseIterable {
        /// The models are not loaded; every decided track counts.
        case off
        /// The check-in is held as *needs review* (not present) for the homeroom teacher to accept or reject.
        case flag
        /// Nothing is recorded; only the spoof is counted (metrics and the log).
        case enforce
    }

    /// One school session (shift). Vietnamese schools often run a morning and an afternoon shift.
    public struct Session: Sendable, Equatable {
        public var name: String
        /// "HH:mm" local time.
        public var start: String
        public var end: String
        /// Check-ins are accepted from this time (default: 60 min before start).
        public var opens: String?
        /// Optional departure window: faces seen inside it are recorded as check-outs.
        public var checkoutFrom: String?
        public var checkoutUntil: String?
        /// Classes this session applies to (empty: all).
        public var classes: [String] = []
        public init(
            name: String, start: String, end: String, opens: String? = nil,
            checkoutFrom: String? = nil, checkoutUntil: String? = nil, classes: [String] = []
        ) {
            self.name = name; self.start = start; self.end = end; self.opens = opens
            self.checkoutFrom = checkoutFrom; self.checkoutUntil = checkoutUntil; self.classes = classes
        }
    }

    public struct Schedule: Sendable, Equatable {
        /// ISO weekdays the school runs (1 = Monday ... 7 = Sunday).
        public var schoolDays: [Int] = [1, 2, 3, 4, 5]
        /// "yyyy-MM-dd" days off.
        public var holidays: [String] = []
        /// Arriving more than this many minutes after the start is late...
        public var lateAfterMinutes = 1
        /// ...and more than this many is absent (a face seen later still records the time, status absent).
        public var absentAfterMinutes = 15
        /// Seconds after a check-in during which the same student is not recorded again by any camera.
        public var cooldownSeconds = 300
        public var sessions: [Session] = [
            Session(name: "morning", start: "07:00", end: "11:15", checkoutFrom: "11:00", checkoutUntil: "11:45"),
            Session(name: "afternoon", start: "13:30", end: "17:00", checkoutFrom: "16:45", checkoutUntil: "17:30"),
        ]
    }

    /// How the cameras' frames reach the face detector ([capture]).
    public struct Capture: Sendable, Equatable {
        /// Run the face detector only when something moved in the picture, while a face is being followed,
        /// and once every `idleDetectSeconds` anyway (a face standing still is found too). Off: every frame.
        public var motionGate = true
        /// Grey levels a pixel of the motion thumbnail (80 px wide, block means) must change by to count.
        public var motionPixelThreshold = 10
        /// Share of the thumbnail's pixels that must change between two frames for motion.
        public var motionMinArea: Float = 0.003
        /// A change over this share of the picture is the light or the camera (switched on, bumped), not
        /// someone walking by: the gate takes the new picture as its reference and waits for motion in it.
        public var motionRebaselineArea: Float = 0.45
        /// With nothing moving and no face followed, the detector still runs this often (seconds). Once a second: with
        /// YuNet a pass costs about 6 ms of CPU on a 640x480 frame, 0.6 % of a core (with res10, 50 ms: it was 2 s).
        public var idleDetectSeconds = 1.0
        /// After motion, the detector keeps running on every frame for this long (seconds).
        public var motionHoldSeconds = 0.5
        /// With nothing moving and no face followed, the gate looks at this many frames a second, not every one (the
        /// frames between are not even decoded): at 15 frames/s one in two, at 30 one in four. Someone walking in is
        /// noticed at most 1/8 s later, at the edge of the picture, where their face is not yet usable; from then on
        /// every frame is looked at. 0: every frame.
        public var idleLookFPS = 8.0
        /// While every face followed is settled (decided, or known to be nobody enrolled), the detector runs on
        /// one frame in this many: enough to keep those tracks, and a newcomer is found at most this many frames
        /// less one late. 1 (the default): every frame while any face is followed. 3 saved detector passes but
        /// lost walking faces' tracks between them, which then cost their embeddings again (see the README, #16).
        public var settledDetectEvery = 1
        public init() {}
    }

    public struct Camera: Sendable, Equatable {
        public var id: String
        /// `v4l2:/dev/video0`, `rtsp://...`, or `file:PATH`.
        public var source: String
        /// "in" (arrivals and departures by schedule), or "out" (departures only).
        public var direction = "in"
        public init(id: String, source: String, direction: String = "in") {
            self.id = id; self.source = source; self.direction = direction
        }
    }

    public struct Connector: Sendable, Equatable {
        /// HTTPS endpoint of the sector gateway; empty: no push (exports only).
        public var endpoint = ""
        /// File holding the bearer token (never put the token itself in the config).
        public var tokenFile: String?
        public var timeoutSeconds = 10.0
        public var batchSize = 50
        /// Allow plain http:// (for a gateway on loopback in tests). TLS verification is always on for https.
        public var allowInsecureHTTP = false
        public var gradeCodeFromClass = true
    }

    public struct Metrics: Sendable, Equatable {
        /// Prometheus /metrics and /health; loopback only unless you change it.
        public var bind = "127.0.0.1"
        public var port = 9464
        public var enabled = true
        /// A camera that has delivered no frame for this long (or failed) makes /health answer 503.
        public var cameraUnavailableSeconds = 60
    }

    /// The school's web console (`attendance serve`, `attendance console`).
    public struct Console: Sendable, Equatable {
        public var enabled = true
        /// Loopback by default. Any other address is served over TLS only.
        public var bind = "127.0.0.1"
        public var port = 8080
        /// Serve HTTPS. Default: on unless `bind` is loopback; it cannot be off for another address.
        public var tls: Bool?
        /// PEM certificate (chain) and key; without them the box makes a self-signed pair on first start.
        public var tlsCertificate: String?
        public var tlsKey: String?
        /// A signed-in session with no request for this long must sign in again.
        public var sessionIdleMinutes = 30
        /// "vi" (default) or "en": the language of a page when the user has not chosen one.
        public var language = "vi"
        /// Upload limits, in bytes.
        public var maxPhotoBytes = 10 * 1024 * 1024
        public var maxRosterBytes = 2 * 1024 * 1024

        public init() {}

        /// Whether `bind` names this machine only (plain HTTP is refused elsewhere).
        public var isLoopback: Bool { ["127.0.0.1", "::1", "localhost"].contains(bind) || bind.hasPrefix("127.") }
        /// Whether the console is served over HTTPS.
        public var usesTLS: Bool { tls ?? (!isLoopback || tlsCertificate != nil) }
    }

    public struct Privacy: Sendable, Equatable {
        /// Keep crops of unknown faces this many days (0: never store face images).
        public var keepUnknownCropsDays = 0
        public var unknownCropsDir = "unknown-faces"
        /// A gate sighting nobody approved or rejected is deleted after this many days.
        public var keepSightingsDays = 30
        /// Attendance events older than this are purged.
        public var retentionDays = 3 * 365
    }

    public var school = School()
    public var database = Database()
    public var recognition = Recognition()
    public var schedule = Schedule()
    public var cameras: [Camera] = []
    public var capture = Capture()
    public var connector = Connector()
    public var metrics = Metrics()
    public var console = Console()
    public var privacy = Privacy()
    /// The file this came from, if any (relative paths resolve against its folder).
    public var sourcePath: String?

    public init() {}
}

/// A PostgreSQL server's address as `[database] url` gives it: `postgresql://USER@HOST[:PORT]/DATABASE`. A password
/// in the URL is refused (it would sit in a file others may read, and in every log that prints the URL).
public struct PostgresURL: Sendable, Equatable, CustomStringConvertible {
    public var user: String
    public var host: String
    public var port: Int
    public var database: String

    public struct Problem: Error, Sendable, CustomStringConvertible {
        public let reason: String
        public var description: String { reason }
    }

    public init(user: String, host: String, port: Int = 5432, database: String) {
        self.user = user
        self.host = host
        self.port = port
        self.database = database
    }

    /// Parses the URL; the reasons never repeat a password.
    public init(parsing text: String) throws {
        let shape = "expected postgresql://USER@HOST:PORT/DATABASE"
        var rest: Substring
        if text.hasPrefix("postgresql://") {
            rest = text.dropFirst("postgresql://".count)
        } else if text.hasPrefix("postgres://") {
            rest = text.dropFirst("postgres://".count)
        } else {
            throw Problem(reason: "not a PostgreSQL URL (\(shape))")
        }
        if rest.contains("?") {
            // Not repeated: the options could hold a password.
            throw Problem(reason: "URL options (after \"?\") are not read: use password_file, tls and ca_file")
        }
        guard let at = rest.lastIndex(of: "@") else { throw Problem(reason: "no user (\(shape))") }
        let userPart = rest[..<at]
        if userPart.contains(":") {
            throw Problem(reason: "a password in the URL: put it in a file (mode 0600) and name it with database.password_file")
        }
        guard !userPart.isEmpty else { throw Problem(reason: "no user (\(shape))") }
        rest = rest[rest.index(after: at)...]
        guard let slash = rest.firstIndex(of: "/") else { throw Problem(reason: "no database name (\(shape))") }
        let hostPort = rest[..<slash]
        let db = rest[rest.index(after: slash)...]
        guard !db.isEmpty, !db.contains("/") else { throw Problem(reason: "no database name (\(shape))") }
        var host = String(hostPort)
        var port = 5432
        if hostPort.hasPrefix("[") {
            guard let close = hostPort.firstIndex(of: "]") else { throw Problem(reason: "an unclosed [IPv6 address]") }
            host = String(hostPort[hostPort.index(after: hostPort.startIndex)..<close])
            let after = hostPort[hostPort.index(after: close)...]
            if after.hasPrefix(":") {
                guard let p = Int(after.dropFirst()), (1...65535).contains(p) else {
                    throw Problem(reason: "the port \"\(after.dropFirst())\" is not 1...65535")
                }
                port = p
            } else if !after.isEmpty {
                throw Problem(reason: shape)
            }
        } else if let colon = hostPort.lastIndex(of: ":") {
            host = String(hostPort[..<colon])
            guard let p = Int(hostPort[hostPort.index(after: colon)...]), (1...65535).contains(p) else {
                throw Problem(reason: "the port \"\(hostPort[hostPort.index(after: colon)...])\" is not 1...65535")
            }
            port = p
        }
        guard !host.isEmpty else { throw Problem(reason: "no host (\(shape))") }
        func decoded(_ s: Substring) throws -> String {
            guard let d = String(s).removingPercentEncoding else { throw Problem(reason: "a bad %-escape in \"\(s)\"") }
            return d
        }
        self.init(user: try decoded(userPart), host: host, port: port, database: try decoded(db))
    }

    public var isLoopback: Bool { ["127.0.0.1", "::1", "localhost"].contains(host) || host.hasPrefix("127.") }

    /// The URL as written (it never holds a password).
    public var description: String {
        let h = host.contains(":") ? "[\(host)]" : host
        return "postgresql://\(user)@\(h):\(port)/\(database)"
    }
}

extension AttendanceConfig.Database {
    /// What makes this PostgreSQL set-up unusable (the key and the reason), or nil.
    public var postgresProblem: (key: String, reason: String)? {
        guard let url else {
            return ("url", "is required with backend = \"postgresql\" (postgresql://USER@HOST:PORT/DATABASE)")
        }
        if tls == .disable && !url.isLoopback {
            return (
                "tls",
                "\"disable\" sends the school's records in clear to \(url.host): only allowed on loopback "
                    + "(127.0.0.1, ::1, localhost); use tls = \"require\" with ca_file"
            )
        }
        if tls == .disable && caFile != nil { return ("ca_file", "is only used with tls = \"require\"") }
        return nil
    }

    /// The role's password from `password_file` (trailing newline removed), or nil when none is configured.
    /// Refuses a file other users could read: it must be mode 0600 (or 0400).
    public func password() throws -> String? {
        guard let file = passwordFile else { return nil }
        var st = stat()
        guard stat(file, &st) == 0 else {
            throw ConfigError(
                path: file, line: nil, reason: "database.password_file: cannot read it (\(String(cString: strerror(errno))))")
        }
        let mode = st.st_mode & 0o777
        guard mode & 0o077 == 0 else {
            throw ConfigError(
                path: file, line: nil,
                reason: "database.password_file has mode \(String(mode, radix: 8)): other users could read the password; "
                    + "chmod 600 \(file)")
        }
        guard let data = FileManager.default.contents(atPath: file) else {
            throw ConfigError(path: file, line: nil, reason: "database.password_file: cannot read it")
        }
        var text = String(decoding: data, as: UTF8.self)
        while text.hasSuffix("\n") || text.hasSuffix("\r") { text.removeLast() }
        guard !text.isEmpty else { throw ConfigError(path: file, line: nil, reason: "database.password_file is empty") }
        return text
    }
}

/// A config file that cannot be used, with the file and, when known, the line.
public struct ConfigError: Error, CustomStringConvertible, Sendable {
    public let path: String
    public let line: Int?
    public let reason: String
    public var description: String { line.map { "\(path):\($0): \(reason)" } ?? "\(path): \(reason)" }
}

extension AttendanceConfig {
    /// Environment variable naming the config file when `--config` is not given.
    public static let environmentKey = "ATTENDANCE_CONFIG"

    /// Loads `path`, or `$ATTENDANCE_CONFIG`, or the defaults when neither is given.
    public static func load(path: String?, environment: [String: String] = ProcessInfo.processInfo.environment) throws
        -> AttendanceConfig
    {
        guard let path = path ?? environment[environmentKey], !path.isEmpty else { return AttendanceConfig() }
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
            throw ConfigError(path: path, line: nil, reason: "cannot read the file (does it exist and is it UTF-8?)")
        }
        var config = try parse(text, path: path)
        config.sourcePath = path
        let base = URL(fileURLWithPath: path).deletingLastPathComponent().path
        config.database.path = resolve(config.database.path, base: base)
        config.database.keyFile = config.database.keyFile.map { resolve($0, base: base) }
        config.database.passwordFile = config.database.passwordFile.map { resolve($0, base: base) }
        config.database.caFile = config.database.caFile.map { resolve($0, base: base) }
        config.connector.tokenFile = config.connector.tokenFile.map { resolve($0, base: base) }
        config.console.tlsCertificate = config.console.tlsCertificate.map { resolve($0, base: base) }
        config.console.tlsKey = config.console.tlsKey.map { resolve($0, base: base) }
        config.privacy.unknownCropsDir = resolve(config.privacy.unknownCropsDir, base: base)
        return config
    }

    /// A session's times must make sense, or it would silently record nothing.
    static func validate(_ s: Session, key: String, path: String) throws {
        func t(_ v: String) -> Int { LocalTime(v)!.minutesSinceMidnight }
        guard t(s.start) < t(s.end) else {
            throw ConfigError(path: path, line: nil, reason: "\(key): start \(s.start) is not before end \(s.end)")
        }
        if let o = s.opens, t(o) > t(s.start) {
            throw ConfigError(path: path, line: nil, reason: "\(key): opens \(o) is after start \(s.start)")
        }
        switch (s.checkoutFrom, s.checkoutUntil) {
        case (nil, nil): break
        case let (from?, until?):
            guard t(from) < t(until) else {
                throw ConfigError(
                    path: path, line: nil, reason: "\(key): checkout_from \(from) is not before checkout_until \(until)")
            }
        default:
            throw ConfigError(path: path, line: nil, reason: "\(key): give both checkout_from and checkout_until, or neither")
        }
    }

    static func resolve(_ p: String, base: String) -> String {
        p.hasPrefix("/") ? p : URL(fileURLWithPath: base).appendingPathComponent(p).standardizedFileURL.path
    }

    /// Parses TOML text. Unknown keys are errors (a typo must not silently fall back to a default).
    public static func parse(_ text: String, path: String = "<config>") throws -> AttendanceConfig {
        if let problem = TOMLPrecheck.check(text) {
            throw ConfigError(path: path, line: problem.line, reason: problem.reason)
        }
        let table: TOMLTable
        do {
            table = try TOMLTable(string: text)
        } catch let error as TOMLParseError {
            throw ConfigError(path: path, line: error.source.begin.line, reason: error.description)
        } catch {
            throw ConfigError(path: path, line: nil, reason: "\(error)")
        }
        let r = Reader(path: path)
        var c = AttendanceConfig()
        try r.check(
            table, "",
            allowed: [
                "school", "database", "recognition", "schedule", "camera", "capture", "connector", "metrics", "console",
                "privacy",
            ])
        if let t = try r.table(table, "school") {
            r.section = "school"
            try r.check(t, "school", allowed: ["code", "name", "timezone"])
            c.school.code = try r.string(t, "code", c.school.code)
            c.school.name = try r.string(t, "name", c.school.name)
            c.school.timezone = try r.string(t, "timezone", c.school.timezone)
            guard TimeZone(identifier: c.school.timezone) != nil else {
                throw ConfigError(path: path, line: nil, reason: "school.timezone: unknown time zone '\(c.school.timezone)'")
            }
        }
        if let t = try r.table(table, "database") {
            r.section = "database"
            try r.check(
                t, "database", allowed: ["backend", "path", "key_file", "url", "password_file", "tls", "ca_file"])
            c.database.path = try r.string(t, "path", c.database.path)
            c.database.keyFile = try r.optionalString(t, "key_file")
            let backend = try r.string(t, "backend", c.database.backend.rawValue)
            guard let b = AttendanceConfig.Database.Backend(rawValue: backend) else {
                throw r.fail("backend", "\"sqlite\" or \"postgresql\", not \"\(backend)\"")
            }
            c.database.backend = b
            if let url = try r.optionalString(t, "url") {
                do {
                    c.database.url = try PostgresURL(parsing: url)
                } catch let e as PostgresURL.Problem {
                    throw r.fail("url", e.reason)
                }
            }
            c.database.passwordFile = try r.optionalString(t, "password_file")
            let tls = try r.string(t, "tls", c.database.tls.rawValue)
            guard let mode = AttendanceConfig.Database.TLSMode(rawValue: tls) else {
                throw r.fail("tls", "\"require\" or \"disable\", not \"\(tls)\"")
            }
            c.database.tls = mode
            c.database.caFile = try r.optionalString(t, "ca_file")
            switch c.database.backend {
            case .sqlite:
                for key in ["url", "password_file", "tls", "ca_file"] where t.contains(key: key) {
                    throw r.fail(key, "only used with backend = \"postgresql\" (backend is \"sqlite\")")
                }
            case .postgresql:
                if let (key, reason) = c.database.postgresProblem { throw r.fail(key, reason) }
            }
        }
        if let t = try r.table(table, "recognition") {
            r.section = "recognition"
            try r.check(
                t, "recognition",
                allowed: [
                    "threshold", "min_margin", "votes", "min_face_size", "min_sharpness",
                    "max_yaw", "max_embeddings_per_student", "duplicate_distance", "same_student_distance",
                    "lookalike_margin", "lookalike_extra_votes", "learn_from_gate", "liveness", "liveness_threshold", "detector",
                ])
            c.recognition.threshold = try r.float(t, "threshold", c.recognition.threshold, range: 0.1...1.5)
            c.recognition.minMargin = try r.float(t, "min_margin", c.recognition.minMargin, range: 0...1)
            c.recognition.votes = try r.int(t, "votes", c.recognition.votes, range: 1...50)
            c.recognition.minFaceSize = try r.float(t, "min_face_size", c.recognition.minFaceSize, range: 10...2000)
            c.recognition.minSharpness = try r.float(t, "min_sharpness", c.recognition.minSharpness, range: 0...100000)
            c.recognition.maxYaw = try r.float(t, "max_yaw", c.recognition.maxYaw, range: 0...90)
            c.recognition.maxEmbeddingsPerStudent = try r.int(
                t, "max_embeddings_per_student", c.recognition.maxEmbeddingsPerStudent, range: 1...50)
            if t["duplicate_distance"] != nil {
                c.recognition.duplicateDistance = try r.float(t, "duplicate_distance", 0, range: 0...1.5)
            }
            c.recognition.sameStudentDistance = try r.float(
                t, "same_student_distance", c.recognition.sameStudentDistance, range: 0.1...1.5)
            c.recognition.lookalikeMargin = try r.float(t, "lookalike_margin", c.recognition.lookalikeMargin, range: 0...1)
            c.recognition.lookalikeExtraVotes = try r.int(
                t, "lookalike_extra_votes", c.recognition.lookalikeExtraVotes, range: 0...20)
            c.recognition.learnFromGate = try r.bool(t, "learn_from_gate", c.recognition.learnFromGate)
            let liveness = try r.string(t, "liveness", c.recognition.liveness.rawValue)
            guard let mode = LivenessMode(rawValue: liveness) else {
                throw r.fail("liveness", "\"off\", \"flag\" or \"enforce\", not \"\(liveness)\"")
            }
            c.recognition.liveness = mode
            if t["liveness_threshold"] != nil {
                c.recognition.livenessThreshold = try r.float(t, "liveness_threshold", 0, range: 0...1)
            }
            let detector = try r.string(t, "detector", c.recognition.detector.rawValue)
            guard let kind = FaceDetector(rawValue: detector) else {
                throw r.fail("detector", "\"yunet\" or \"res10\", not \"\(detector)\"")
            }
            c.recognition.detector = kind
        }
        if let t = try r.table(table, "schedule") {
            r.section = "schedule"
            try r.check(
                t, "schedule",
                allowed: ["school_days", "holidays", "late_after_minutes", "absent_after_minutes", "cooldown_seconds", "session"])
            c.schedule.schoolDays = try r.ints(t, "school_days", c.schedule.schoolDays, range: 1...7)
            c.schedule.holidays = try r.strings(t, "holidays", c.schedule.holidays)
            for h in c.schedule.holidays where LocalDate(h) == nil {
                throw ConfigError(path: path, line: nil, reason: "schedule.holidays: '\(h)' is not a date like 2026-09-02")
            }
            c.schedule.lateAfterMinutes = try r.int(t, "late_after_minutes", c.schedule.lateAfterMinutes, range: 0...600)
            c.schedule.absentAfterMinutes = try r.int(t, "absent_after_minutes", c.schedule.absentAfterMinutes, range: 0...600)
            c.schedule.cooldownSeconds = try r.int(t, "cooldown_seconds", c.schedule.cooldownSeconds, range: 0...86400)
            if c.schedule.absentAfterMinutes < c.schedule.lateAfterMinutes {
                throw ConfigError(
                    path: path, line: nil, reason: "schedule.absent_after_minutes must not be less than late_after_minutes")
            }
            if let sessions = try r.tables(t, "session") {
                c.schedule.sessions = try sessions.enumerated().map { i, s in
                    let key = "schedule.session[\(i)]"
                    try r.check(s, key, allowed: ["name", "start", "end", "opens", "checkout_from", "checkout_until", "classes"])
                    let session = Session(
                        name: try r.requiredString(s, "name", in: key),
                        start: try r.time(s, "start", in: key, required: true)!,
                        end: try r.time(s, "end", in: key, required: true)!,
                        opens: try r.time(s, "opens", in: key),
                        checkoutFrom: try r.time(s, "checkout_from", in: key),
                        checkoutUntil: try r.time(s, "checkout_until", in: key),
                        classes: try r.strings(s, "classes", []))
                    try Self.validate(session, key: key, path: path)
                    return session
                }
                let names = c.schedule.sessions.map(\.name)
                if Set(names).count != names.count {
                    throw ConfigError(path: path, line: nil, reason: "schedule.session: two sessions share a name")
                }
            }
        }
        r.section = ""
        if let cams = try r.tables(table, "camera") {
            c.cameras = try cams.enumerated().map { i, t in
                let key = "camera[\(i)]"
                try r.check(t, key, allowed: ["id", "source", "direction"])
                let direction = try r.string(t, "direction", "in")
                guard ["in", "out"].contains(direction) else {
                    throw ConfigError(path: path, line: nil, reason: "\(key).direction must be \"in\" or \"out\"")
                }
                let id = try r.requiredString(t, "id", in: key)
                // The id names files (unknown-face crops) and metric labels: letters, digits, '.', '_' and '-' only.
                let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
                guard id.count <= 64, id.allSatisfy(allowed.contains), id.first.map({ $0.isLetter || $0.isNumber }) == true else {
                    throw ConfigError(
                        path: path, line: nil,
                        reason: "\(key).id '\(id)': use up to 64 letters, digits, '.', '_' or '-', "
                            + "starting with a letter or digit (it becomes part of file names), e.g. \"gate-1\"")
                }
                return Camera(id: id, source: try r.requiredString(t, "source", in: key), direction: direction)
            }
            let ids = c.cameras.map(\.id)
            if Set(ids).count != ids.count { throw ConfigError(path: path, line: nil, reason: "two cameras share an id") }
        }
        if let t = try r.table(table, "capture") {
            r.section = "capture"
            try r.check(
                t, "capture",
                allowed: [
                    "motion_gate", "motion_pixel_threshold", "motion_min_area", "motion_rebaseline_area", "idle_detect_seconds",
                    "motion_hold_seconds", "settled_detect_every", "idle_look_fps",
                ])
            c.capture.motionGate = try r.bool(t, "motion_gate", c.capture.motionGate)
            c.capture.motionPixelThreshold = try r.int(
                t, "motion_pixel_threshold", c.capture.motionPixelThreshold, range: 1...255)
            c.capture.motionMinArea = try r.float(t, "motion_min_area", c.capture.motionMinArea, range: 0.0001...1)
            c.capture.motionRebaselineArea = try r.float(
                t, "motion_rebaseline_area", c.capture.motionRebaselineArea, range: 0.01...1)
            c.capture.idleDetectSeconds = Double(
                try r.float(t, "idle_detect_seconds", Float(c.capture.idleDetectSeconds), range: 0.05...60))
            c.capture.motionHoldSeconds = Double(
                try r.float(t, "motion_hold_seconds", Float(c.capture.motionHoldSeconds), range: 0...60))
            c.capture.settledDetectEvery = try r.int(
                t, "settled_detect_every", c.capture.settledDetectEvery, range: 1...30)
            c.capture.idleLookFPS = Double(try r.float(t, "idle_look_fps", Float(c.capture.idleLookFPS), range: 0...1000))
            if c.capture.motionRebaselineArea <= c.capture.motionMinArea {
                throw ConfigError(
                    path: path, line: nil, reason: "capture.motion_rebaseline_area must be larger than motion_min_area")
            }
        }
        if let t = try r.table(table, "connector") {
            r.section = "connector"
            try r.check(
                t, "connector",
                allowed: ["endpoint", "token_file", "timeout_seconds", "batch_size", "allow_insecure_http", "token"])
            if t.contains(key: "token") {
                throw ConfigError(
                    path: path, line: nil,
                    reason: "connector.token: put the token in a file (mode 0600) and name it with connector.token_file")
            }
            c.connector.endpoint = try r.string(t, "endpoint", c.connector.endpoint)
            c.connector.tokenFile = try r.optionalString(t, "token_file")
            c.connector.timeoutSeconds = Double(
                try r.float(t, "timeout_seconds", Float(c.connector.timeoutSeconds), range: 0.1...600))
            c.connector.batchSize = try r.int(t, "batch_size", c.connector.batchSize, range: 1...1000)
            c.connector.allowInsecureHTTP = try r.bool(t, "allow_insecure_http", false)
        }
        if let t = try r.table(table, "console") {
            r.section = "console"
            try r.check(
                t, "console",
                allowed: [
                    "enabled", "bind", "port", "session_idle_minutes", "language", "max_photo_bytes", "max_roster_bytes",
                    "tls", "tls_certificate", "tls_key",
                ])
            c.console.enabled = try r.bool(t, "enabled", c.console.enabled)
            c.console.bind = try r.string(t, "bind", c.console.bind)
            c.console.port = try r.int(t, "port", c.console.port, range: 0...65535)
            c.console.sessionIdleMinutes = try r.int(t, "session_idle_minutes", c.console.sessionIdleMinutes, range: 1...1440)
            c.console.language = try r.string(t, "language", c.console.language)
            guard ["vi", "en"].contains(c.console.language) else {
                throw ConfigError(
                    path: path, line: nil, reason: "console.language: \"vi\" or \"en\", not \"\(c.console.language)\"")
            }
            c.console.maxPhotoBytes = try r.int(t, "max_photo_bytes", c.console.maxPhotoBytes, range: 1024...100_000_000)
            c.console.maxRosterBytes = try r.int(t, "max_roster_bytes", c.console.maxRosterBytes, range: 1024...100_000_000)
            if t.contains(key: "tls") { c.console.tls = try r.bool(t, "tls", false) }
            c.console.tlsCertificate = try r.optionalString(t, "tls_certificate")
            c.console.tlsKey = try r.optionalString(t, "tls_key")
            if (c.console.tlsCertificate == nil) != (c.console.tlsKey == nil) {
                throw ConfigError(path: path, line: nil, reason: "console: give both tls_certificate and tls_key, or neither")
            }
            if c.console.tls == false && !c.console.isLoopback {
                throw ConfigError(
                    path: path, line: nil,
                    reason: "console.bind = \"\(c.console.bind)\" with tls = false: plain HTTP is only served on loopback "
                        + "(127.0.0.1); remove tls = false to serve HTTPS")
            }
        }
        if let t = try r.table(table, "metrics") {
            r.section = "metrics"
            try r.check(t, "metrics", allowed: ["bind", "port", "enabled", "camera_unavailable_seconds"])
            c.metrics.bind = try r.string(t, "bind", c.metrics.bind)
            c.metrics.port = try r.int(t, "port", c.metrics.port, range: 0...65535)
            c.metrics.enabled = try r.bool(t, "enabled", c.metrics.enabled)
            c.metrics.cameraUnavailableSeconds = try r.int(
                t, "camera_unavailable_seconds", c.metrics.cameraUnavailableSeconds, range: 1...86400)
        }
        if let t = try r.table(table, "privacy") {
            r.section = "privacy"
            try r.check(
                t, "privacy", allowed: ["keep_unknown_crops_days", "unknown_crops_dir", "retention_days", "keep_sightings_days"])
            c.privacy.keepUnknownCropsDays = try r.int(t, "keep_unknown_crops_days", 0, range: 0...365)
            c.privacy.unknownCropsDir = try r.string(t, "unknown_crops_dir", c.privacy.unknownCropsDir)
            c.privacy.retentionDays = try r.int(t, "retention_days", c.privacy.retentionDays, range: 1...36500)
            c.privacy.keepSightingsDays = try r.int(t, "keep_sightings_days", c.privacy.keepSightingsDays, range: 0...365)
        }
        return c
    }
}

/// Typed access to TOML values with errors that name the key.
private final class Reader {
    let path: String
    /// The table being read, so errors name the whole key ("recognition.threshold").
    var section = ""
    init(path: String) { self.path = path }
    func fail(_ key: String, _ reason: String) -> ConfigError {
        let full = section.isEmpty || key.contains(".") ? key : section + "." + key
        return ConfigError(path: path, line: nil, reason: "\(full): \(reason)")
    }

    func check(_ t: TOMLTable, _ prefix: String, allowed: Set<String>) throws {
        for key in t.keys where !allowed.contains(key) {
            throw fail(
                prefix.isEmpty ? key : "\(prefix).\(key)", "unknown key (allowed: \(allowed.sorted().joined(separator: ", ")))")
        }
    }
    func table(_ t: TOMLTable, _ key: String) throws -> TOMLTable? {
        guard let v = t[key] else { return nil }
        guard let table = v.table else { throw fail(key, "expected a table [\(key)]") }
        return table
    }
    func tables(_ t: TOMLTable, _ key: String) throws -> [TOMLTable]? {
        guard let v = t[key] else { return nil }
        guard let array = v.array else { throw fail(key, "expected an array of tables [[\(key)]]") }
        return try array.map { item in
            guard let table = item.table else { throw fail(key, "expected an array of tables [[\(key)]]") }
            return table
        }
    }
    func string(_ t: TOMLTable, _ key: String, _ def: String) throws -> String {
        guard let v = t[key] else { return def }
        guard let s = v.string else { throw fail(key, "expected a string") }
        return s
    }
    func optionalString(_ t: TOMLTable, _ key: String) throws -> String? {
        guard t[key] != nil else { return nil }
        return try string(t, key, "")
    }
    func requiredString(_ t: TOMLTable, _ key: String, in prefix: String) throws -> String {
        guard let s = try optionalString(t, key), !s.isEmpty else { throw fail("\(prefix).\(key)", "is required") }
        return s
    }
    func time(_ t: TOMLTable, _ key: String, in prefix: String, required: Bool = false) throws -> String? {
        guard let s = try optionalString(t, key) else {
            if required { throw fail("\(prefix).\(key)", "is required (HH:mm)") }
            return nil
        }
        guard LocalTime(s) != nil else { throw fail("\(prefix).\(key)", "'\(s)' is not a time like 07:00") }
        return s
    }
    func int(_ t: TOMLTable, _ key: String, _ def: Int, range: ClosedRange<Int>) throws -> Int {
        guard let v = t[key] else { return def }
        guard let i = v.int else { throw fail(key, "expected an integer") }
        guard range.contains(i) else { throw fail(key, "\(i) is outside \(range.lowerBound)...\(range.upperBound)") }
        return i
    }
    func ints(_ t: TOMLTable, _ key: String, _ def: [Int], range: ClosedRange<Int>) throws -> [Int] {
        guard let v = t[key] else { return def }
        guard let a = v.array else { throw fail(key, "expected an array of integers") }
        return try a.map { item in
            guard let i = item.int, range.contains(i) else {
                throw fail(key, "expected integers in \(range.lowerBound)...\(range.upperBound)")
            }
            return i
        }
    }
    func float(_ t: TOMLTable, _ key: String, _ def: Float, range: ClosedRange<Float>) throws -> Float {
        guard let v = t[key] else { return def }
        guard let d = v.double ?? v.int.map(Double.init) else { throw fail(key, "expected a number") }
        let f = Float(d)
        guard range.contains(f) else { throw fail(key, "\(d) is outside \(range.lowerBound)...\(range.upperBound)") }
        return f
    }
    func bool(_ t: TOMLTable, _ key: String, _ def: Bool) throws -> Bool {
        guard let v = t[key] else { return def }
        guard let b = v.bool else { throw fail(key, "expected true or false") }
        return b
    }
    func strings(_ t: TOMLTable, _ key: String, _ def: [String]) throws -> [String] {
        guard let v = t[key] else { return def }
        guard let a = v.array else { throw fail(key, "expected an array of strings") }
        return try a.map { item in
            guard let s = item.string else { throw fail(key, "expected an array of strings") }
            return s
        }
    }
}
