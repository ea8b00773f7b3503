import CaptureKit
import FaceEngine
import Foundation
import GRDB
import Logging
import XCTest

@testable import Attendance
@testable import AttendanceCore

/// Issue #12 through the real pipeline: the daemon in-process on the demo replay (models, OpenCV, dlib).
final class HardeningEndToEndTests: XCTestCase {
    // MARK: the daemon in-process

    func demoDaemon(
        _ demo: GateDemo, store: AttendanceStore, configure: (inout AttendanceConfig) -> Void = { _ in },
        options: (inout GateDaemon.Options) -> Void = { _ in }
    ) throws -> GateDaemon {
        var config = demo.config
        config.metrics.enabled = false
        configure(&config)
        var o = GateDaemon.Options()
        o.replayStart = demo.replayStart
        o.timeScale = GateDemo.timeScale
        o.retryInterval = .milliseconds(200)
        o.galleryPollInterval = .milliseconds(200)
        options(&o)
        return try GateDaemon(
            config: config, store: store, models: SourceTree.models, options: o, logger: Logger(label: "test"))
    }

    func waitUntil(_ what: String, seconds: Double = 120, _ condition: () async throws -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(seconds)
        while ContinuousClock.now < deadline {
            if try await condition() { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        XCTFail("timed out waiting until \(what)")
    }

    /// Fills the database to SQLite's `max_page_count` with tiny records, so that the next real record
    /// needs a page it cannot have: the disk is "full" for the writer connection.
    static func fillDatabase(_ store: AttendanceStore) throws {
        try store.writer.writeWithoutTransaction { db in
            let pages = try Int.fetchOne(db, sql: "PRAGMA page_count")!
            try db.execute(sql: "PRAGMA max_page_count = \(pages)")
            try db.execute(
                sql: """
                    INSERT OR IGNORE INTO student(code, full_name, class_code, active, created_at, updated_at)
                    SELECT 'F', 'F', code, 0, '', '' FROM school_class LIMIT 1
                    """)
            var i = 0
            while true {
                do {
                    try db.inTransaction {
                        // Each entry no larger than a real record's in every table and index it touches.
                        try db.execute(
                            sql: """
                                INSERT INTO attendance_event(id, student_code, school_day, session, kind, status, version, cancelled)
                                VALUES (?, 'F', '2000-01-01', ?, 'check_in', 'present', 1, 0)
                                """, arguments: ["f\(i)", "s\(i)"])
                        try db.execute(
                            sql:
                                "INSERT INTO outbox(record_id, version, event_kind, payload, state, created_at) VALUES (?, 1, 'NEW', '', 'pending', '')",
                            arguments: ["f\(i)"])
                        return .commit
                    }
                    i += 1
                } catch let error as DatabaseError where error.resultCode == .SQLITE_FULL {
                    break
                }
            }
        }
    }

    /// The disk fills mid-replay: the decided records wait in memory, /health says 503, and once the
    /// disk has room again every student is recorded, once.
    func testAFullDiskMidReplayLosesNoStudent() async throws {
        let demo = try prepareDemo()
        let store = try AttendanceStore.open(config: demo.config)
        let filled = LockedFlag()
        let daemon = try demoDaemon(
            demo, store: store,
            options: { o in
                o.onEvent = { event in
                    // After An is recorded, the disk is full for Cường.
                    if case .recorded = event, filled.setOnce() { try! HardeningEndToEndTests.fillDatabase(store) }
                }
            })
        let running = Task { try await daemon.run() }
        try await waitUntil("the replay ended") { daemon.state.allEnded }
        let full = await daemon.health()
        XCTAssertFalse(full.healthy, full.text)
        // Cường, and An seen again at 07:10 (held too: the store is not asked while it refuses; the retry finds
        // An already recorded and stores nothing for that one).
        XCTAssertGreaterThanOrEqual(full.unstoredRecords, 1, full.text)
        XCTAssertTrue(full.text.contains("the database refuses writes"), full.text)
        let before = try await store.writer.read {
            try String.fetchAll($0, sql: "SELECT student_code FROM attendance_event WHERE student_code <> 'F'")
        }
        XCTAssertEqual(before, ["7900000001"])

        // The admin frees space.
        try await store.writer.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA max_page_count = 1073741823") }
        try await waitUntil("the held record is stored", seconds: 30) { await daemon.decider.unstoredCount == 0 }
        let healthy = await daemon.health()
        XCTAssertTrue(healthy.healthy, healthy.text)
        running.cancel()
        _ = try? await running.value
        let rows = try await store.writer.read { db in
            try Row.fetchAll(
                db, sql: "SELECT student_code, status FROM attendance_event WHERE student_code <> 'F' ORDER BY occurred_at"
            )
            .map { "\($0[0] as String) \($0[1] as String)" }
        }
        XCTAssertEqual(rows, ["7900000001 present", "7900000003 late"])
        let queued = try await store.writer.read {
            try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM outbox WHERE record_id NOT LIKE 'f%'")
        }
        XCTAssertEqual(queued, 2)
    }

    /// A clock behind the high-water mark shows on /health (503) before any face arrives.
    func testAWrongClockMakesHealthSay503() async throws {
        let demo = try prepareDemo()
        let clock = HardeningTests.TestClock(Date())
        let store = try AttendanceStore(
            path: demo.config.database.path, keyFile: demo.config.database.resolvedKeyFile, config: demo.config,
            now: { clock.now })
        let mark = Timestamp.string(clock.now)
        try await store.writer.write { db in
            try db.execute(sql: "INSERT INTO meta(key, value) VALUES ('clock_high_water', ?)", arguments: [mark])
        }
        let daemon = try demoDaemon(demo, store: store)
        let before = await daemon.health()
        XCTAssertNil(before.clockProblem)
        clock.advance(-2 * 86_400) // the RTC battery died over the weekend
        let health = await daemon.health()
        XCTAssertFalse(health.healthy)
        XCTAssertTrue(health.text.contains("problem: clock: the system clock says"), health.text)
        XCTAssertTrue(health.text.contains("clock: NOT trusted"), health.text)
    }

    /// A camera that delivers nothing for `metrics.camera_unavailable_seconds` makes /health 503, without its
    /// password, while the other camera records; systemd still hears READY (the camera is known unavailable).
    func testAnUnavailableCameraMakesHealthSay503AndIsRetried() async throws {
        let demo = try prepareDemo()
        let store = try AttendanceStore.open(config: demo.config)
        let daemon = try demoDaemon(
            demo, store: store,
            configure: { c in
                c.cameras.append(AttendanceConfig.Camera(id: "gate-rtsp", source: "rtsp://admin:secret-pw@127.0.0.1:9/stream1"))
                c.metrics.cameraUnavailableSeconds = 2
            })
        let running = Task { try await daemon.run() }
        defer { running.cancel() }
        try await waitUntil("the RTSP camera counts as unavailable", seconds: 60) {
            await daemon.health().problems.contains { $0.hasPrefix("camera gate-rtsp has delivered no frame") }
        }
        let health = await daemon.health()
        XCTAssertFalse(health.healthy)
        XCTAssertTrue(health.text.contains("camera gate-rtsp: running; unavailable, retrying"), health.text)
        XCTAssertFalse(health.text.contains("secret-pw"), health.text)
        // READY does not wait for a camera that is known unavailable: it comes once the file camera has its first
        // frame (under load that can be after the RTSP camera already counts as unavailable).
        try await waitUntil("every camera reported (READY)", seconds: 60) { daemon.state.everyCameraReported }
        try await waitUntil("the file camera recorded both students", seconds: 120) { try eventCount(store) == 2 }
        running.cancel()
        _ = try? await running.value
    }

    /// systemd hears READY once the camera delivered its first frame, then WATCHDOG while the pipeline runs.
    func testTheDaemonTellsSystemdItIsReadyAndAlive() async throws {
        let demo = try prepareDemo()
        let socketPath = demo.directory + "/notify.sock"
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        XCTAssertGreaterThanOrEqual(fd, 0)
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { b in for (i, c) in socketPath.utf8.enumerated() { b[i] = c } }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        XCTAssertEqual(bound, 0)
        var timeout = timeval(tv_sec: 0, tv_usec: 200_000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))

        let store = try AttendanceStore.open(config: demo.config)
        let daemon = try demoDaemon(
            demo, store: store,
            options: { o in
                o.systemd = SystemdNotifier(environment: ["NOTIFY_SOCKET": socketPath, "WATCHDOG_USEC": "400000"])
            })
        let running = Task { try await daemon.run() }
        var messages: [String] = []
        let deadline = ContinuousClock.now + .seconds(120)
        while ContinuousClock.now < deadline, !messages.contains("WATCHDOG=1") {
            var buffer = [UInt8](repeating: 0, count: 512)
            let n = recv(fd, &buffer, buffer.count, 0)
            if n > 0 { messages += String(decoding: buffer[0..<n], as: UTF8.self).split(separator: "\n").map(String.init) }
        }
        running.cancel()
        _ = try? await running.value
        let ready = try XCTUnwrap(messages.firstIndex(of: "READY=1"), "\(messages)")
        XCTAssertNotNil(messages[ready...].firstIndex(of: "WATCHDOG=1"), "\(messages)")
        XCTAssertEqual(daemon.state.hungCameras(longerThan: .seconds(10)), [])
    }

    /// Unknown-face crops (when the school keeps them): 0600 files in a 0700 folder, each named by a row.
    func testUnknownFaceCropsArePrivateAndEachHasItsRow() async throws {
        let demo = try prepareDemo()
        let crops = demo.directory + "/crops"
        func keepCrops(_ c: inout AttendanceConfig) {
            c.privacy.keepUnknownCropsDays = 7
            c.privacy.unknownCropsDir = crops
        }
        var config = demo.config
        keepCrops(&config)
        let store = try AttendanceStore.open(config: config)
        let daemon = try demoDaemon(demo, store: store, configure: keepCrops, options: { $0.exitWhenDone = true })
        try await daemon.run()
        let files = try FileManager.default.contentsOfDirectory(atPath: crops)
        XCTAssertFalse(files.isEmpty, "the astronaut's chip is kept")
        XCTAssertEqual(try FileManager.default.attributesOfItem(atPath: crops)[.posixPermissions] as? Int, 0o700)
        let paths = Set(
            try await store.writer.read {
                try String.fetchAll($0, sql: "SELECT crop_path FROM unknown_face WHERE crop_path IS NOT NULL")
            })
        for f in files {
            XCTAssertEqual(try FileManager.default.attributesOfItem(atPath: crops + "/" + f)[.posixPermissions] as? Int, 0o600, f)
            XCTAssertTrue(paths.contains(crops + "/" + f), "\(f) has its row")
        }
    }
}

/// True the first time only.
