import Foundation
import XCTest

@testable import Attendance
@testable import AttendanceCore

final class ConfigTests: XCTestCase {
    func testTheSampleConfigParses() throws {
        let c = try AttendanceConfig.load(path: SourceTree.root + "/deploy/attendance.toml")
        XCTAssertEqual(c.school.timezone, "Asia/Ho_Chi_Minh")
        XCTAssertEqual(c.schedule.sessions.map(\.name), ["morning", "afternoon"])
        XCTAssertEqual(c.schedule.sessions[0].checkoutFrom, "11:00")
        XCTAssertEqual(c.cameras, [AttendanceConfig.Camera(id: "gate-1", source: "v4l2:/dev/video0")])
        XCTAssertEqual(c.metrics.bind, "127.0.0.1")
        XCTAssertEqual(c.privacy.keepUnknownCropsDays, 0)
        XCTAssertEqual(c.recognition.liveness, .flag)
        XCTAssertEqual(c.recognition.livenessThreshold, 0.2, "YuNet's own threshold")
        XCTAssertNil(c.recognition.livenessThresholdSetting)
        XCTAssertEqual(c.recognition.detector, .yunet)
        XCTAssertEqual(c.capture, AttendanceConfig.Capture(), "the sample's [capture] shows the defaults")
    }

    func testLivenessModes() throws {
        XCTAssertEqual(AttendanceConfig().recognition.liveness, .flag, "flag by default")
        for mode in AttendanceConfig.LivenessMode.allCases {
            let c = try AttendanceConfig.parse("[recognition]\nliveness = \"\(mode.rawValue)\"\nliveness_threshold = 0.7")
            XCTAssertEqual(c.recognition.liveness, mode)
            XCTAssertEqual(c.recognition.livenessThreshold, 0.7)
        }
        XCTAssertThrowsError(try AttendanceConfig.parse("[recognition]\nliveness = \"on\"")) { error in
            XCTAssertTrue("\(error)".contains("recognition.liveness: \"off\", \"flag\" or \"enforce\""), "\(error)")
        }
        XCTAssertThrowsError(try AttendanceConfig.parse("[recognition]\nliveness_threshold = 1.5"))
    }

    func testTheDetectorIsChosenInTheConfig() throws {
        XCTAssertEqual(AttendanceConfig().recognition.detector, .yunet, "YuNet by default (#16)")
        XCTAssertEqual(RecognitionRules(AttendanceConfig().recognition).engineOptions.detector, .yunet)
        let c = try AttendanceConfig.parse("[recognition]\ndetector = \"res10\"")
        XCTAssertEqual(c.recognition.detector, .res10)
        XCTAssertEqual(RecognitionRules(c.recognition).engineOptions.detector, .res10, "the engines follow the config")
        XCTAssertEqual(c.recognition.livenessThreshold, 0.3, "res10's own liveness threshold")
        let set = try AttendanceConfig.parse("[recognition]\ndetector = \"res10\"\nliveness_threshold = 0.25")
        XCTAssertEqual(set.recognition.livenessThreshold, 0.25, "the school's threshold wins")
        XCTAssertThrowsError(try AttendanceConfig.parse("[recognition]\ndetector = \"hog\"")) { error in
            XCTAssertTrue("\(error)".contains("recognition.detector: \"yunet\" or \"res10\""), "\(error)")
        }
    }

    func testTheMotionGateSettingsParse() throws {
        let c = try AttendanceConfig.parse(
            """
            [capture]
            motion_gate = false
            motion_pixel_threshold = 14
            motion_min_area = 0.01
            motion_rebaseline_area = 0.5
            idle_detect_seconds = 2
            motion_hold_seconds = 0.25
            """)
        XCTAssertFalse(c.capture.motionGate)
        XCTAssertEqual(c.capture.motionPixelThreshold, 14)
        XCTAssertEqual(c.capture.motionMinArea, 0.01)
        XCTAssertEqual(c.capture.motionRebaselineArea, 0.5)
        XCTAssertEqual(c.capture.idleDetectSeconds, 2)
        XCTAssertEqual(c.capture.motionHoldSeconds, 0.25)
        func reason(_ text: String) -> String {
            do { _ = try AttendanceConfig.parse(text, path: "x.toml"); return "parsed" } catch { return "\(error)" }
        }
        XCTAssertTrue(reason("[capture]\nmotion = true").contains("capture.motion: unknown key"))
        XCTAssertTrue(reason("[capture]\nidle_detect_seconds = 0").contains("capture.idle_detect_seconds"))
        XCTAssertTrue(reason("[capture]\nmotion_min_area = 0.7").contains("larger than motion_min_area"))
    }

    func testNoFileGivesTheDefaults() throws {
        XCTAssertEqual(try AttendanceConfig.load(path: nil, environment: [:]), AttendanceConfig())
    }

    func testMistakesAreClearErrorsWithTheKey() {
        func reason(_ text: String) -> String {
            do { _ = try AttendanceConfig.parse(text, path: "x.toml"); return "parsed" } catch { return "\(error)" }
        }
        XCTAssertTrue(reason("[school]\ncolor = 1").contains("school.color: unknown key"))
        XCTAssertTrue(reason("[recognition]\nthreshold = 7").contains("recognition.threshold"))
        XCTAssertTrue(reason("[school]\ntimezone = \"Mars/Base\"").contains("unknown time zone"))
        XCTAssertTrue(reason("[connector]\ntoken = \"secret\"").contains("token_file"))
        XCTAssertFalse(reason("[connector]\ntoken = \"secret\"").contains("secret"), "the token never appears in an error")
        XCTAssertTrue(reason("[[schedule.session]]\nname = \"m\"\nstart = \"7h\"\nend = \"11:00\"").contains("not a time"))
        XCTAssertTrue(
            reason("[[camera]]\nid = \"a\"\nsource = \"x\"\n[[camera]]\nid = \"a\"\nsource = \"y\"").contains("share an id"))
    }

    /// Inputs on which toml++ (TOMLKit 0.6.0) aborts the process, found by `make fuzz`: refused first.
    func testInputsThatCrashTheTOMLLibraryAreRefusedWithALine() {
        for (text, line) in [
            ("[.", 1), ("a = 2026-01-01 8", 1), ("[school]\nname = \"x\"\n[.b]", 3), ("[[camera]\n", 1),
            ("[schedule]\nholidays = [2026-09-02]", 2),
        ] {
            XCTAssertThrowsError(try AttendanceConfig.parse(text, path: "bad.toml"), text) { error in
                XCTAssertEqual((error as? ConfigError)?.line, line, "\(text): \(error)")
            }
        }
        // Quoted dates and times, comments and multi-line arrays still parse.
        XCTAssertNoThrow(
            try AttendanceConfig.parse(
                """
                [schedule] # the timetable
                holidays = [
                  "2026-09-02",  # Quốc khánh
                ]
                [[schedule.session]]
                name = "morning"
                start = "07:00"
                end = "11:15"
                """))
    }

    // MARK: [database] (#17: PostgreSQL as the school's shared database)

    func testThePostgresBackendParsesWithItsDefaults() throws {
        let c = try AttendanceConfig.parse(
            """
            [database]
            backend = "postgresql"
            path = "journal.sqlite"
            url = "postgresql://attendance_gate@db.truong.local:6432/attendance"
            password_file = "db.password"
            ca_file = "ca.pem"
            """)
        XCTAssertEqual(c.database.backend, .postgresql)
        XCTAssertEqual(
            c.database.url, PostgresURL(user: "attendance_gate", host: "db.truong.local", port: 6432, database: "attendance"))
        XCTAssertEqual(c.database.tls, .require, "TLS is required unless the config says otherwise")
        XCTAssertEqual(c.database.passwordFile, "db.password")
        XCTAssertEqual(AttendanceConfig().database.backend, .sqlite, "SQLite stays the default")
        XCTAssertEqual(try PostgresURL(parsing: "postgres://u@127.0.0.1/x").port, 5432)
        XCTAssertEqual(try PostgresURL(parsing: "postgresql://u@[::1]:7/x").host, "::1")
        XCTAssertEqual(try PostgresURL(parsing: "postgresql://u@[::1]:7/x").description, "postgresql://u@[::1]:7/x")
    }

    func testPostgresMistakesAreClearErrorsWithTheKey() {
        func reason(_ text: String) -> String {
            do { _ = try AttendanceConfig.parse("[database]\n" + text, path: "x.toml"); return "parsed" } catch {
                return "\(error)"
            }
        }
        let url = "url = \"postgresql://g@10.0.0.5/attendance\"\n"
        XCTAssertTrue(reason("backend = \"mysql\"").hasPrefix("x.toml: database.backend: \"sqlite\" or \"postgresql\""))
        XCTAssertTrue(reason("backend = \"postgresql\"").contains("database.url: is required"))
        let withPassword = reason("backend = \"postgresql\"\nurl = \"postgresql://g:s3cr3t@10.0.0.5/attendance\"")
        XCTAssertTrue(withPassword.contains("database.url: a password in the URL"), withPassword)
        XCTAssertTrue(withPassword.contains("password_file"))
        XCTAssertFalse(withPassword.contains("s3cr3t"), "the password never appears in an error")
        let inOptions = reason("backend = \"postgresql\"\nurl = \"postgresql://g@h/a?password=s3cr3t\"")
        XCTAssertTrue(inOptions.contains("database.url: URL options"), inOptions)
        XCTAssertFalse(inOptions.contains("s3cr3t"))
        XCTAssertTrue(reason("backend = \"postgresql\"\nurl = \"mysql://g@h/a\"").contains("not a PostgreSQL URL"))
        XCTAssertTrue(reason("backend = \"postgresql\"\nurl = \"postgresql://g@h\"").contains("no database name"))
        XCTAssertTrue(reason("backend = \"postgresql\"\nurl = \"postgresql://h/a\"").contains("no user"))
        XCTAssertTrue(reason("backend = \"postgresql\"\nurl = \"postgresql://g@h:99999/a\"").contains("not 1...65535"))
        XCTAssertTrue(reason("backend = \"postgresql\"\n" + url + "tls = \"disable\"").contains("only allowed on loopback"))
        XCTAssertEqual(reason("backend = \"postgresql\"\nurl = \"postgresql://g@127.0.0.1:5/a\"\ntls = \"disable\""), "parsed")
        XCTAssertTrue(reason("backend = \"postgresql\"\n" + url + "tls = \"prefer\"").contains("database.tls: \"require\""))
        XCTAssertTrue(reason("backend = \"postgresql\"\n" + url + "pool_size = 4").contains("database.pool_size: unknown key"))
        XCTAssertTrue(reason(url).contains("database.url: only used with backend = \"postgresql\""))
        XCTAssertTrue(reason("passwd = \"x\"").contains("database.passwd: unknown key"))
    }

    func testThePasswordFileMustBePrivate() throws {
        let dir = NSTemporaryDirectory() + "config-test-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try """
        [database]
        backend = "postgresql"
        url = "postgresql://attendance_gate@127.0.0.1:5432/attendance"
        password_file = "db.password"
        """.write(toFile: dir + "/attendance.toml", atomically: true, encoding: .utf8)
        try "pa55-word\n".write(toFile: dir + "/db.password", atomically: true, encoding: .utf8)
        let c = try AttendanceConfig.load(path: dir + "/attendance.toml")
        XCTAssertEqual(c.database.passwordFile, dir + "/db.password", "resolved against the config's folder")

        chmod(dir + "/db.password", 0o644)
        XCTAssertThrowsError(try c.database.password()) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("mode 644"), text)
            XCTAssertTrue(text.contains("chmod 600"), text)
            XCTAssertFalse(text.contains("pa55-word"))
        }
        chmod(dir + "/db.password", 0o600)
        XCTAssertEqual(try c.database.password(), "pa55-word", "the trailing newline is not part of the password")
        try FileManager.default.removeItem(atPath: dir + "/db.password")
        XCTAssertThrowsError(try c.database.password()) { XCTAssertTrue("\($0)".contains("cannot read it")) }
        XCTAssertNil(try AttendanceConfig().database.password(), "no password file, no password (peer or cert sign-in)")
    }
}
