import AttendanceCore
import CaptureKit
import FaceEngine
import Foundation
import GRDB
import Logging

/// The embedded default: a demo school with three students, two of them enrolled, and a
/// replayed gate video in which the two enrolled students and one stranger walk past.
/// `make run` shows it; the end-to-end tests check its known answer.
public struct GateDemo: Sendable {
    /// The roster a homeroom teacher would import (UTF-8 CSV, Vietnamese headers and names).
    public static let rosterCSV = """
        Mã định danh,Họ và tên,Lớp,Ngày sinh,Giới tính
        7900000001,Nguyễn Văn An,6A1,2014-03-12,Nam
        7900000002,Trần Thị Bình,6A1,2014-07-30,Nữ
        7900000003,Lê Hoàng Cường,6A2,2014-01-05,Nam

        """

    /// Who is enrolled from which sample photo.
    public static let enrolments = [("7900000001", "obama.jpg"), ("7900000003", "biden.jpg")]

    /// The video: a second of video is a minute of school time from 06:55.
    /// obama2 (An) at 06:56 -> present; biden (Cường) at 07:02 -> late; the astronaut (not
    /// enrolled) at 07:06 -> an unknown face; obama3 (An again) at 07:10 -> already recorded.
    /// Bình never passes -> absent.
    public static func script(samples: String) -> ReplayScript {
        ReplayScript(
            duration: 19,
            passages: [
                .init(image: samples + "/obama2.jpg", from: 1.0, to: 3.5),
                .init(image: samples + "/biden.jpg", from: 7.0, to: 9.5),
                .init(image: samples + "/astronaut.png", from: 11.0, to: 13.5),
                .init(image: samples + "/obama3.jpg", from: 15.0, to: 17.5),
            ])
    }

    public static let replayStartTime = LocalTime(hour: 6, minute: 55)
    public static let timeScale = 60.0

    public let directory: String
    public var config: AttendanceConfig
    public let video: String
    public let day: LocalDate
    public let replayStart: Date

    /// Creates (afresh) the demo database, roster, consents, enrolments and video under `directory`.
    /// `videos`: replay these files instead of the demo's own video, camera i the file i (modulo their count).
    public static func prepare(
        directory: String, samples: String, models: ModelPaths, day: LocalDate? = nil,
        cameras: Int = 1, videos: [String]? = nil, liveness: AttendanceConfig.LivenessMode = .flag
    ) throws -> GateDemo {
        let fm = FileManager.default
        try fm.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        for f in ["demo.sqlite", "demo.sqlite-wal", "demo.sqlite-shm", "demo.sqlite.key"] {
            try? fm.removeItem(atPath: directory + "/" + f)
        }
        var config = AttendanceConfig()
        config.school.code = "79-DEMO"
        config.school.name = "Trường THCS Demo"
        config.database.path = directory + "/demo.sqlite"
        config.recognition.liveness = liveness
        config.schedule.schoolDays = Array(1...7) // the demo runs on any day
        config.schedule.sessions = [
            .init(name: "morning", start: "07:00", end: "11:15", opens: "06:00", checkoutFrom: "11:00", checkoutUntil: "11:45")
        ]
        let tz = config.school.timeZone
        let day = day ?? LocalDate(Date(), in: tz)
        let files = videos ?? [directory + "/gate-replay.avi"]
        let video = files[0]
        config.cameras = (1...cameras).map {
            AttendanceConfig.Camera(id: "gate-\($0)", source: "file:" + files[($0 - 1) % files.count])
        }

        let store = try AttendanceStore.open(config: config)
        let rosterPath = directory + "/roster.csv"
        try Data(rosterCSV.utf8).write(to: URL(fileURLWithPath: rosterPath))
        _ = try store.roster.importRoster(try RosterParser.parse(contentsOf: rosterPath, today: day))
        let engine = try FaceEngine(models: models, recognition: config.recognition)
        let enroller = Enroller(store: store)
        for (code, photo) in enrolments {
            try store.consent.record(
                student: code, guardian: "Phụ huynh \(code.suffix(3))", relation: "mother",
                date: day, childAgreed: true, source: "demo")
            let outcomes = try enroller.enrol(student: code, photos: [samples + "/" + photo], engine: engine)
            guard outcomes.allSatisfy(\.accepted) else {
                throw StoreError.invalid("demo enrolment of \(photo) was rejected: \(outcomes.compactMap(\.rejection))")
            }
        }
        if videos == nil, !fm.fileExists(atPath: video) {
            try script(samples: samples).write(to: video, engine: engine)
        }
        return GateDemo(
            directory: directory, config: config, video: video, day: day,
            replayStart: day.at(replayStartTime, in: tz))
    }
}

extension GateDemo {
    /// The demo's config as a TOML file for `attendance serve --config` (metrics on a free port).
    public func configTOML() -> String {
        func q(_ s: String) -> String {
            "\"" + s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
        }
        var lines = [
            "[school]", "code = \(q(config.school.code))", "name = \(q(config.school.name))",
            "timezone = \(q(config.school.timezone))",
            "", "[database]", "path = \(q(config.database.path))",
            "", "[recognition]", "liveness = \(q(config.recognition.liveness.rawValue))",
            "liveness_threshold = \(config.recognition.livenessThreshold)",
            "", "[schedule]", "school_days = [\(config.schedule.schoolDays.map(String.init).joined(separator: ", "))]",
            "late_after_minutes = \(config.schedule.lateAfterMinutes)",
            "absent_after_minutes = \(config.schedule.absentAfterMinutes)",
        ]
        for s in config.schedule.sessions {
            lines += ["", "[[schedule.session]]", "name = \(q(s.name))", "start = \(q(s.start))", "end = \(q(s.end))"]
            if let o = s.opens { lines.append("opens = \(q(o))") }
            if let f = s.checkoutFrom, let u = s.checkoutUntil {
                lines += ["checkout_from = \(q(f))", "checkout_until = \(q(u))"]
            }
        }
        for c in config.cameras {
            lines += ["", "[[camera]]", "id = \(q(c.id))", "source = \(q(c.source))", "direction = \(q(c.direction))"]
        }
        // The console stays off: a test that wants it sets its own port.
        lines += ["", "[console]", "enabled = false", "", "[metrics]", "bind = \"127.0.0.1\"", "port = 0", ""]
        return lines.joined(separator: "\n")
    }
}

extension GateDemo {
    /// Replays the demo video through the gate daemon itself (one pipeline per configured camera, all at
    /// once, as fast as frames can be processed; times come from the frame numbers, not the clock), with
    /// metrics off, until every camera has ended. Returns each camera's statistics.
    ///
    /// `pacing: .realtime` plays the files at their own rate like cameras (frames the pipeline misses are
    /// dropped, `make bench-pipeline`); `start` and `timeScale` override the demo's 06:55 and a minute per second.
    public func replay(
        store: AttendanceStore, models: ModelPaths, logger: Logger, pacing: CaptureOptions.Pacing = .asFastAsPossible,
        start: Date? = nil, timeScale: Double = GateDemo.timeScale,
        onEvent: @escaping @Sendable (PipelineEvent) -> Void = { _ in }
    ) async throws -> [PipelineStatistics] {
        var config = self.config
        config.metrics.enabled = false
        let collected = CollectedStatistics()
        var options = GateDaemon.Options()
        options.replayStart = start ?? replayStart
        options.timeScale = timeScale
        options.replayPacing = pacing
        options.exitWhenDone = true
        options.systemd = SystemdNotifier(environment: [:])
        options.onEvent = { event in
            if case let .finished(_, stats) = event { collected.add(stats) }
            onEvent(event)
        }
        let daemon = try GateDaemon(config: config, store: store, models: models, options: options, logger: logger)
        try await daemon.run()
        let failures = daemon.state.report().compactMap { c -> String? in
            if case let .failed(error) = c.phase { return "camera \(c.id): \(error)" } else { return nil }
        }
        if !failures.isEmpty { throw StoreError.invalid("the replay failed: " + failures.joined(separator: "; ")) }
        return collected.all
    }
}

/// Statistics reported by the cameras' pipelines, from any task.
final class CollectedStatistics: @unchecked Sendable {
    private let lock = NSLock()
    private var stats: [PipelineStatistics] = []
    func add(_ s: PipelineStatistics) { lock.lock(); stats.append(s); lock.unlock() }
    var all: [PipelineStatistics] { lock.lock(); defer { lock.unlock() }; return stats }
}
