import CaptureKit
import FaceEngine
import Foundation
import GRDB
import Logging
import XCTest

@testable import Attendance
@testable import AttendanceCore

/// Issue #12: a wrong clock, a full disk, a damaged row, systemd's view of the daemon.
final class HardeningTests: XCTestCase {
    /// A clock the test sets.
    final class TestClock: @unchecked Sendable {
        private let lock = NSLock()
        private var value: Date
        init(_ value: Date) { self.value = value }
        var now: Date { lock.lock(); defer { lock.unlock() }; return value }
        func set(_ d: Date) { lock.lock(); value = d; lock.unlock() }
        func advance(_ s: TimeInterval) { set(now.addingTimeInterval(s)) }
    }

    func event(_ student: String, day: LocalDate, session: String = "morning") -> NewAttendanceEvent {
        NewAttendanceEvent(studentCode: student, schoolDay: day, session: session, kind: .checkIn, status: .present,
                           occurredAt: day.at(LocalTime(hour: 7, minute: 0), in: .gmt), camera: "g", distance: 0.3)
    }

    let monday = LocalDate(year: 2026, month: 12, day: 7)
    var mondayMorning: Date { monday.at(LocalTime(hour: 7, minute: 0), in: .gmt) }

    // MARK: point 3: the wrong clock

    func testAClockBehindTheHighWaterMarkOrBeforeTheReleaseRecordsNothing() throws {
        let tmp = try TempStore()
        let clock = TestClock(mondayMorning)
        let store = try AttendanceStore(path: tmp.path, keyFile: tmp.keyFile, now: { clock.now })
        try seedRoster(store, in: tmp)
        XCTAssertTrue(try store.recordEvent(event("0101", day: monday), schoolCode: "S"))
        XCTAssertEqual(try store.clockHighWater(), mondayMorning)

        // NTP steps the clock back a minute: fine. A dead RTC puts it back a day: refused.
        clock.advance(-60)
        XCTAssertNil(try store.clockProblem())
        clock.set(mondayMorning.addingTimeInterval(-86_400))
        XCTAssertThrowsError(try store.recordEvent(event("0102", day: monday), schoolCode: "S")) { error in
            guard case .behindHighWater? = error as? ClockProblem else { return XCTFail("\(error)") }
            XCTAssertTrue("\(error)".contains("timedatectl"), "\(error)")
        }
        // Before the release: certainly wrong, whatever the mark says.
        clock.set(Timestamp.date("2000-01-01T00:00:00.000Z")!)
        XCTAssertThrowsError(try store.recordEvent(event("0102", day: monday), schoolCode: "S")) { error in
            guard case .beforeRelease? = error as? ClockProblem else { return XCTFail("\(error)") }
        }
        XCTAssertEqual(try GateReplayTests.eventCount(store), 1, "nothing recorded while the clock was wrong")
        XCTAssertEqual(try store.dbPool.read { try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM outbox") }, 1)
        XCTAssertEqual(try store.clockHighWater(), mondayMorning, "a refused clock does not move the mark")

        // The clock is right again: recording resumes.
        clock.set(mondayMorning.addingTimeInterval(120))
        XCTAssertTrue(try store.recordEvent(event("0102", day: monday), schoolCode: "S"))
    }

    func testAClockYearsAheadRecordsNothingUntilTheAdminAcceptsIt() throws {
        let tmp = try TempStore()
        let clock = TestClock(mondayMorning)
        let store = try AttendanceStore(path: tmp.path, keyFile: tmp.keyFile, now: { clock.now })
        try seedRoster(store, in: tmp)
        XCTAssertTrue(try store.recordEvent(event("0101", day: monday), schoolCode: "S"))
        // After the summer holidays (90 days): records again on its own.
        clock.advance(90 * 86_400)
        XCTAssertNil(try store.clockProblem())
        // Three years ahead: refused, and says what to do.
        clock.advance(3 * 365 * 86_400)
        let later = LocalDate(clock.now, in: .gmt)
        XCTAssertThrowsError(try store.recordEvent(event("0102", day: later), schoolCode: "S")) { error in
            guard case .farAhead? = error as? ClockProblem else { return XCTFail("\(error)") }
            XCTAssertTrue("\(error)".contains("attendance clock accept"), "\(error)")
        }
        try store.acceptClock()
        XCTAssertTrue(try store.recordEvent(event("0102", day: later), schoolCode: "S"))
        XCTAssertTrue(try store.auditEntries().contains { $0.action == "clock.accept" })
        // The mark itself was wrong (a clock that ran ahead dated that record): accept moves it back, audited.
        clock.set(LocalDate(year: 2027, month: 1, day: 4).at(LocalTime(hour: 7, minute: 0), in: .gmt))
        XCTAssertThrowsError(try store.recordEvent(event("0201", day: LocalDate(year: 2027, month: 1, day: 4)), schoolCode: "S"))
        try store.acceptClock()
        XCTAssertTrue(try store.recordEvent(event("0201", day: LocalDate(year: 2027, month: 1, day: 4)), schoolCode: "S"))
        // A clock before the release is never "accepted".
        clock.set(Timestamp.date("2001-01-01T00:00:00.000Z")!)
        XCTAssertThrowsError(try store.acceptClock())
    }

    func testRetentionWithAClockYearsAheadKeepsUndeliveredAndRecentRecords() throws {
        let tmp = try TempStore()
        let clock = TestClock(mondayMorning)
        let store = try AttendanceStore(path: tmp.path, keyFile: tmp.keyFile, now: { clock.now })
        try seedRoster(store, in: tmp)
        XCTAssertTrue(try store.recordEvent(event("0101", day: monday), schoolCode: "S"))
        XCTAssertTrue(try store.recordEvent(event("0102", day: monday), schoolCode: "S"))
        // One of them reached the sector database.
        try store.dbPool.write { try $0.execute(sql: "UPDATE outbox SET state = 'delivered' WHERE payload LIKE '%0101%'") }
        var config = AttendanceConfig()
        config.privacy.retentionDays = 365
        // The clock jumps five years ahead; the hourly retention pass runs with it.
        clock.advance(5 * 365 * 86_400)
        let report = try store.purge(config: config)
        XCTAssertEqual(report.events, 0, "the high-water mark, not the wrong clock, ages the records")
        XCTAssertEqual(try GateReplayTests.eventCount(store), 2)
        // Even judged by a clock past retention, the undelivered record stays.
        let far = try store.purge(config: config, now: mondayMorning.addingTimeInterval(2 * 365 * 86_400))
        XCTAssertEqual(far.events, 0, "still capped by the mark: \(far)")
        try store.dbPool.write { try $0.execute(sql: "UPDATE meta SET value = '2029-01-01T00:00:00.000Z' WHERE key = 'clock_high_water'") }
        let aged = try store.purge(config: config, now: Timestamp.date("2029-01-01T00:00:00.000Z")!)
        XCTAssertEqual(aged.events, 1, "the delivered one goes")
        XCTAssertEqual(aged.keptUndelivered, 1, "the undelivered one stays, with its outbox row")
        XCTAssertEqual(try store.dbPool.read { try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM outbox WHERE state = 'pending'") }, 1)
    }

    func testOutboxRetryTimesSurviveABackwardJump() async throws {
        let tmp = try TempStore()
        let store = try tmp.open()
        try seedRoster(store, in: tmp)
        XCTAssertTrue(try store.recordEvent(event("0101", day: monday), schoolCode: "S"))
        let outbox = SQLiteOutbox(store: store)
        let now = Date()
        let key = try await outbox.pending(after: nil, dueBy: nil, limit: 10)[0].key
        // A failed attempt scheduled the next one for 10 minutes later...
        try await outbox.reschedule([.init(key: key, attempts: 5, nextAttemptAt: now.addingTimeInterval(600), error: "HTTP 500")])
        let dueNow = try await outbox.pending(after: nil, dueBy: now, limit: 10)
        XCTAssertTrue(dueNow.isEmpty, "not due yet")
        // ... then the clock jumps three years back: the retry must not wait three years.
        let past = now.addingTimeInterval(-3 * 365 * 86_400)
        let dueThen = try await outbox.pending(after: nil, dueBy: past, limit: 10)
        XCTAssertEqual(dueThen.map(\.key), [key])
        let next = try await outbox.nextAttemptDate()
        XCTAssertLessThanOrEqual(try XCTUnwrap(next), Date().addingTimeInterval(outbox.maximumWait + 1), "the sender never sleeps longer than the backoff")
    }

    // MARK: point 5: one damaged row

    func testOneDamagedEnrolmentIsSkippedAndTheWrongKeyStillRefuses() throws {
        let tmp = try TempStore()
        let store = try tmp.open()
        try seedRoster(store, in: tmp)
        try store.addEnrolments(student: "0101", [(fakeEmbedding(1), nil, nil)], maxPerStudent: 5)
        try store.addEnrolments(student: "0102", [(fakeEmbedding(2), nil, nil)], maxPerStudent: 5)
        // Flip one byte of 0102's sealed embedding.
        try store.dbPool.write { db in
            var blob = try Data.fetchOne(db, sql: "SELECT sealed_embedding FROM enrolment WHERE student_code = '0102'")!
            blob[20] ^= 0x01
            try db.execute(sql: "UPDATE enrolment SET sealed_embedding = ? WHERE student_code = '0102'", arguments: [blob])
        }
        let snapshot = try store.gallerySnapshot()
        XCTAssertEqual(snapshot.embeddings.map(\.student), ["0101"])
        XCTAssertEqual(snapshot.unreadable, ["0102"])
        XCTAssertEqual(try store.unreadableEnrolments(), ["0102"])
        let faces = try EnrolledFaces(store: store)
        XCTAssertNoThrow(try faces.reload())
        XCTAssertEqual(faces.current().unreadable, ["0102"])

        // Every row unreadable is a wrong key, not bad luck: refused.
        try store.dbPool.write { db in
            var blob = try Data.fetchOne(db, sql: "SELECT sealed_embedding FROM enrolment WHERE student_code = '0101'")!
            blob[20] ^= 0x01
            try db.execute(sql: "UPDATE enrolment SET sealed_embedding = ? WHERE student_code = '0101'", arguments: [blob])
        }
        XCTAssertThrowsError(try store.gallerySnapshot()) { XCTAssertEqual($0 as? StoreError, .wrongKey(keyFile: tmp.keyFile)) }
    }

    // MARK: point 11: the key

    func testKeyRotationReSealsEverythingAndTheOldKeyOpensNothing() throws {
        let tmp = try TempStore()
        let store = try tmp.open()
        try seedRoster(store, in: tmp)
        try store.addEnrolments(student: "0101", [(fakeEmbedding(1), nil, nil), (fakeEmbedding(3), nil, nil)], maxPerStudent: 5)
        try store.addEnrolments(student: "0102", [(fakeEmbedding(2), nil, nil)], maxPerStudent: 5)
        let pseudonym = store.pseudonym(of: "0101")
        let oldKey = try XCTUnwrap(FileManager.default.contents(atPath: tmp.keyFile))
        let before = try store.gallerySnapshot().embeddings.map { $0.embedding }
        let version = try store.galleryVersion()

        let report = try store.rotateKey()
        XCTAssertEqual(report, KeyRotationReport(enrolments: 3, sightings: 0, unreadable: 0))
        XCTAssertNotEqual(FileManager.default.contents(atPath: tmp.keyFile), oldKey)
        XCTAssertFalse(FileManager.default.fileExists(atPath: tmp.keyFile + ".new"))
        XCTAssertGreaterThan(try store.galleryVersion(), version, "the daemon's gallery reloads")
        let reopened = try tmp.open()
        XCTAssertEqual(try reopened.gallerySnapshot().embeddings.map { $0.embedding }, before)
        XCTAssertEqual(reopened.pseudonym(of: "0101"), pseudonym, "log names survive a rotation")
        XCTAssertTrue(try reopened.auditEntries().contains { $0.action == "key.rotate" })
        // The old key (from a stolen backup, say) opens nothing.
        let old = tmp.dir + "/old.key"
        XCTAssertTrue(try FilePermissions.createPrivate(old, contents: [UInt8](oldKey)))
        XCTAssertThrowsError(try AttendanceStore(path: tmp.path, keyFile: old)) { XCTAssertEqual($0 as? StoreError, .wrongKey(keyFile: old)) }
    }

    func testARotationInterruptedBeforeTheKeyFileWasReplacedIsFinishedOnOpen() throws {
        let tmp = try TempStore()
        let store = try tmp.open()
        try seedRoster(store, in: tmp)
        try store.addEnrolments(student: "0101", [(fakeEmbedding(1), nil, nil)], maxPerStudent: 5)
        let oldKey = try XCTUnwrap(FileManager.default.contents(atPath: tmp.keyFile))
        try store.rotateKey()
        // Put the box back in the state of a power cut after the commit, before the rename.
        XCTAssertEqual(rename(tmp.keyFile, tmp.keyFile + ".new"), 0)
        XCTAssertTrue(try FilePermissions.createPrivate(tmp.keyFile, contents: [UInt8](oldKey)))
        let reopened = try tmp.open()
        XCTAssertEqual(try reopened.gallerySnapshot().embeddings.map { $0.embedding }, [fakeEmbedding(1)])
        XCTAssertFalse(FileManager.default.fileExists(atPath: tmp.keyFile + ".new"), "the rotation was finished")
        XCTAssertNotEqual(FileManager.default.contents(atPath: tmp.keyFile), oldKey)
    }

    // MARK: point 10: passwords in URLs

    func testEveryPasswordInACameraURLIsRedacted() {
        for (spec, secret) in [("rtsp://admin:P@ss1@10.0.0.5:554/stream1", "P@ss1"), ("rtsp://u:a/b?c#d@cam/x", "a/b?c#d"),
                               ("rtsps://viewer:s3cret@[fe80::1]:322/live", "s3cret")] {
            let redacted = CameraSource.redacted(spec)
            XCTAssertFalse(redacted.contains(secret), redacted)
            XCTAssertTrue(redacted.contains(":***@"), redacted)
            let error = CaptureError(.video(status: 6), operation: "cv_video_open", source: spec, detail: "cannot open \(spec) (timeout)")
            XCTAssertFalse("\(error)".contains(secret), "\(error)")
        }
        XCTAssertEqual(CameraSource.redacted("v4l2:/dev/video0"), "v4l2:/dev/video0")
        XCTAssertEqual(CameraSource.redacted("rtsp://10.0.0.5/stream1"), "rtsp://10.0.0.5/stream1")
    }

    // MARK: point 12: camera ids become file names

    func testACameraIDThatIsNotAFileNameIsRefused() {
        for bad in ["../../etc/x", "gate 1", "", "-gate", "cổng"] {
            let toml = "[[camera]]\nid = \"\(bad)\"\nsource = \"/dev/video0\"\n"
            XCTAssertThrowsError(try AttendanceConfig.parse(toml), bad) { error in
                XCTAssertTrue("\(error)".contains("camera[0].id"), "\(error)")
            }
        }
        XCTAssertNoThrow(try AttendanceConfig.parse("[[camera]]\nid = \"gate-1.in_2\"\nsource = \"/dev/video0\"\n"))
    }

    // MARK: the daemon in-process

    func demoDaemon(_ demo: GateDemo, store: AttendanceStore, configure: (inout AttendanceConfig) -> Void = { _ in },
                    options: (inout GateDaemon.Options) -> Void = { _ in }) throws -> GateDaemon {
        var config = demo.config
        config.metrics.enabled = false
        configure(&config)
        var o = GateDaemon.Options()
        o.replayStart = demo.replayStart
        o.timeScale = GateDemo.timeScale
        o.retryInterval = .milliseconds(200)
        o.galleryPollInterval = .milliseconds(200)
        options(&o)
        return try GateDaemon(config: config, store: store, models: GateReplayTests.models, options: o, logger: Logger(label: "test"))
    }

    func prepareDemo() throws -> GateDemo {
        guard FileManager.default.fileExists(atPath: GateReplayTests.samples + "/obama2.jpg") else { throw XCTSkip("run `make testdata`") }
        let dir = NSTemporaryDirectory() + "gate-\(UUID().uuidString)"
        addTeardownBlock { try? FileManager.default.removeItem(atPath: dir) }
        return try GateDemo.prepare(directory: dir, samples: GateReplayTests.samples, models: GateReplayTests.models,
                                    day: LocalDate(year: 2026, month: 11, day: 23))
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
        try store.dbPool.writeWithoutTransaction { db in
            let pages = try Int.fetchOne(db, sql: "PRAGMA page_count")!
            try db.execute(sql: "PRAGMA max_page_count = \(pages)")
            try db.execute(sql: """
                INSERT OR IGNORE INTO student(code, full_name, class_code, active, created_at, updated_at)
                SELECT 'F', 'F', code, 0, '', '' FROM school_class LIMIT 1
                """)
            var i = 0
            while true {
                do {
                    try db.inTransaction {
                        // Each entry no larger than a real record's in every table and index it touches.
                        try db.execute(sql: """
                            INSERT INTO attendance_event(id, student_code, school_day, session, kind, status, version, cancelled)
                            VALUES (?, 'F', '2000-01-01', ?, 'check_in', 'present', 1, 0)
                            """, arguments: ["f\(i)", "s\(i)"])
                        try db.execute(sql: "INSERT INTO outbox(record_id, version, event_kind, payload, state, created_at) VALUES (?, 1, 'NEW', '', 'pending', '')",
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
        let daemon = try demoDaemon(demo, store: store, options: { o in
            o.onEvent = { event in
                // After An is recorded, the disk is full for Cường.
                if case .recorded = event, filled.setOnce() { try! HardeningTests.fillDatabase(store) }
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
        let before = try await store.dbPool.read { try String.fetchAll($0, sql: "SELECT student_code FROM attendance_event WHERE student_code <> 'F'") }
        XCTAssertEqual(before, ["7900000001"])

        // The admin frees space.
        try await store.dbPool.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA max_page_count = 1073741823") }
        try await waitUntil("the held record is stored", seconds: 30) { await daemon.decider.unstoredCount == 0 }
        let healthy = await daemon.health()
        XCTAssertTrue(healthy.healthy, healthy.text)
        running.cancel()
        _ = try? await running.value
        let rows = try await store.dbPool.read { db in
            try Row.fetchAll(db, sql: "SELECT student_code, status FROM attendance_event WHERE student_code <> 'F' ORDER BY occurred_at")
                .map { "\($0[0] as String) \($0[1] as String)" }
        }
        XCTAssertEqual(rows, ["7900000001 present", "7900000003 late"])
        let queued = try await store.dbPool.read { try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM outbox WHERE record_id NOT LIKE 'f%'") }
        XCTAssertEqual(queued, 2)
    }

    /// A clock behind the high-water mark shows on /health (503) before any face arrives.
    func testAWrongClockMakesHealthSay503() async throws {
        let demo = try prepareDemo()
        let clock = TestClock(Date())
        let store = try AttendanceStore(path: demo.config.database.path, keyFile: demo.config.database.resolvedKeyFile, now: { clock.now })
        let mark = Timestamp.string(clock.now)
        try await store.dbPool.write { db in
            try db.execute(sql: "INSERT INTO meta(key, value) VALUES ('clock_high_water', ?)", arguments: [mark])
        }
        let daemon = try demoDaemon(demo, store: store)
        let before = await daemon.health()
        XCTAssertNil(before.clockProblem)
        clock.advance(-2 * 86_400)  // the RTC battery died over the weekend
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
        let daemon = try demoDaemon(demo, store: store, configure: { c in
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
        XCTAssertTrue(daemon.state.everyCameraReported, "READY does not wait for a camera that is known unavailable")
        try await waitUntil("the file camera recorded both students", seconds: 120) { try GateReplayTests.eventCount(store) == 2 }
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
        let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) } }
        XCTAssertEqual(bound, 0)
        var timeout = timeval(tv_sec: 0, tv_usec: 200_000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))

        let store = try AttendanceStore.open(config: demo.config)
        let daemon = try demoDaemon(demo, store: store, options: { o in
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
        let store = try AttendanceStore.open(config: demo.config)
        let crops = demo.directory + "/crops"
        let daemon = try demoDaemon(demo, store: store, configure: { c in
            c.privacy.keepUnknownCropsDays = 7
            c.privacy.unknownCropsDir = crops
        }, options: { $0.exitWhenDone = true })
        try await daemon.run()
        let files = try FileManager.default.contentsOfDirectory(atPath: crops)
        XCTAssertFalse(files.isEmpty, "the astronaut's chip is kept")
        XCTAssertEqual(try FileManager.default.attributesOfItem(atPath: crops)[.posixPermissions] as? Int, 0o700)
        let paths = Set(try await store.dbPool.read { try String.fetchAll($0, sql: "SELECT crop_path FROM unknown_face WHERE crop_path IS NOT NULL") })
        for f in files {
            XCTAssertEqual(try FileManager.default.attributesOfItem(atPath: crops + "/" + f)[.posixPermissions] as? Int, 0o600, f)
            XCTAssertTrue(paths.contains(crops + "/" + f), "\(f) has its row")
        }
    }
}

/// True the first time only.
final class LockedFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var done = false
    func setOnce() -> Bool { lock.lock(); defer { lock.unlock() }; if done { return false }; done = true; return true }
}
