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
        NewAttendanceEvent(
            studentCode: student, schoolDay: day, session: session, kind: .checkIn, status: .present,
            occurredAt: day.at(LocalTime(hour: 7, minute: 0), in: .gmt), camera: "g", distance: 0.3)
    }

    let monday = LocalDate(year: 2026, month: 12, day: 7)
    var mondayMorning: Date { monday.at(LocalTime(hour: 7, minute: 0), in: .gmt) }

    // MARK: point 3: the wrong clock

    func testAClockBehindTheHighWaterMarkOrBeforeTheReleaseRecordsNothing() throws {
        let tmp = try TempStore()
        let clock = TestClock(mondayMorning)
        let store = try AttendanceStore(path: tmp.path, keyFile: tmp.keyFile, config: AttendanceConfig(), now: { clock.now })
        try seedRoster(store, in: tmp)
        XCTAssertTrue(try store.events.record(event("0101", day: monday)))
        XCTAssertEqual(try store.clockHighWater(), mondayMorning)

        // NTP steps the clock back a minute: fine. A dead RTC puts it back a day: refused.
        clock.advance(-60)
        XCTAssertNil(try store.clockProblem())
        clock.set(mondayMorning.addingTimeInterval(-86_400))
        XCTAssertThrowsError(try store.events.record(event("0102", day: monday))) { error in
            guard case .behindHighWater? = error as? ClockProblem else { return XCTFail("\(error)") }
            XCTAssertTrue("\(error)".contains("timedatectl"), "\(error)")
        }
        // Before the release: certainly wrong, whatever the mark says.
        clock.set(Timestamp.date("2000-01-01T00:00:00.000Z")!)
        XCTAssertThrowsError(try store.events.record(event("0102", day: monday))) { error in
            guard case .beforeRelease? = error as? ClockProblem else { return XCTFail("\(error)") }
        }
        XCTAssertEqual(try eventCount(store), 1, "nothing recorded while the clock was wrong")
        XCTAssertEqual(try store.writer.read { try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM outbox") }, 1)
        XCTAssertEqual(try store.clockHighWater(), mondayMorning, "a refused clock does not move the mark")

        // The clock is right again: recording resumes.
        clock.set(mondayMorning.addingTimeInterval(120))
        XCTAssertTrue(try store.events.record(event("0102", day: monday)))
    }

    func testAClockYearsAheadRecordsNothingUntilTheAdminAcceptsIt() throws {
        let tmp = try TempStore()
        let clock = TestClock(mondayMorning)
        let store = try AttendanceStore(path: tmp.path, keyFile: tmp.keyFile, config: AttendanceConfig(), now: { clock.now })
        try seedRoster(store, in: tmp)
        XCTAssertTrue(try store.events.record(event("0101", day: monday)))
        // After the summer holidays (90 days): records again on its own.
        clock.advance(90 * 86_400)
        XCTAssertNil(try store.clockProblem())
        // Three years ahead: refused, and says what to do.
        clock.advance(3 * 365 * 86_400)
        let later = LocalDate(clock.now, in: .gmt)
        XCTAssertThrowsError(try store.events.record(event("0102", day: later))) { error in
            guard case .farAhead? = error as? ClockProblem else { return XCTFail("\(error)") }
            XCTAssertTrue("\(error)".contains("attendance clock accept"), "\(error)")
        }
        try store.acceptClock()
        XCTAssertTrue(try store.events.record(event("0102", day: later)))
        XCTAssertTrue(try store.auditLog.entries().contains { $0.action == "clock.accept" })
        // The mark itself was wrong (a clock that ran ahead dated that record): accept moves it back, audited.
        clock.set(LocalDate(year: 2027, month: 1, day: 4).at(LocalTime(hour: 7, minute: 0), in: .gmt))
        XCTAssertThrowsError(try store.events.record(event("0201", day: LocalDate(year: 2027, month: 1, day: 4))))
        try store.acceptClock()
        XCTAssertTrue(try store.events.record(event("0201", day: LocalDate(year: 2027, month: 1, day: 4))))
        // A clock before the release is never "accepted".
        clock.set(Timestamp.date("2001-01-01T00:00:00.000Z")!)
        XCTAssertThrowsError(try store.acceptClock())
    }

    func testRetentionWithAClockYearsAheadKeepsUndeliveredAndRecentRecords() async throws {
        let tmp = try TempStore()
        let clock = TestClock(mondayMorning)
        var config = AttendanceConfig()
        config.privacy.retentionDays = 365
        let store = try AttendanceStore(path: tmp.path, keyFile: tmp.keyFile, config: config, now: { clock.now })
        try seedRoster(store, in: tmp)
        XCTAssertTrue(try store.events.record(event("0101", day: monday)))
        XCTAssertTrue(try store.events.record(event("0102", day: monday)))
        // One of them reached the sector database.
        let outbox = SQLiteOutbox(store: store)
        let an = try await outbox.pending(after: nil, dueBy: nil, limit: 10).filter {
            String(decoding: $0.payload, as: UTF8.self).contains("\"0101\"")
        }
        XCTAssertEqual(an.count, 1)
        try await outbox.markDelivered(an.map(\.key), at: clock.now)
        // The clock jumps five years ahead; the hourly retention pass runs with it.
        clock.advance(5 * 365 * 86_400)
        let report = try store.retention.purge()
        XCTAssertEqual(report.events, 0, "the high-water mark, not the wrong clock, ages the records")
        XCTAssertEqual(try eventCount(store), 2)
        // Even judged by a clock past retention, the undelivered record stays.
        let far = try store.retention.purge(now: mondayMorning.addingTimeInterval(2 * 365 * 86_400))
        XCTAssertEqual(far.events, 0, "still capped by the mark: \(far)")
        try await store.writer.write {
            try $0.execute(sql: "UPDATE meta SET value = '2029-01-01T00:00:00.000Z' WHERE key = 'clock_high_water'")
        }
        let aged = try store.retention.purge(now: Timestamp.date("2029-01-01T00:00:00.000Z")!)
        XCTAssertEqual(aged.events, 1, "the delivered one goes")
        XCTAssertEqual(aged.keptUndelivered, 1, "the undelivered one stays, with its outbox row")
        XCTAssertEqual(try countRows(store, "SELECT COUNT(*) FROM outbox WHERE state = 'pending'"), 1)
    }

    func testOutboxRetryTimesSurviveABackwardJump() async throws {
        let tmp = try TempStore()
        let store = try tmp.open()
        try seedRoster(store, in: tmp)
        XCTAssertTrue(try store.events.record(event("0101", day: monday)))
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
        XCTAssertLessThanOrEqual(
            try XCTUnwrap(next), Date().addingTimeInterval(outbox.maximumWait + 1),
            "the sender never sleeps longer than the backoff")
    }

    // MARK: point 5: one damaged row

    func testOneDamagedEnrolmentIsSkippedAndTheWrongKeyStillRefuses() throws {
        let tmp = try TempStore()
        let store = try tmp.open()
        try seedRoster(store, in: tmp)
        try store.enrolments.add(student: "0101", [(fakeEmbedding(1), nil, nil)])
        try store.enrolments.add(student: "0102", [(fakeEmbedding(2), nil, nil)])
        // Flip one byte of 0102's sealed embedding.
        try store.writer.write { db in
            var blob = try Data.fetchOne(db, sql: "SELECT sealed_embedding FROM enrolment WHERE student_code = '0102'")!
            blob[20] ^= 0x01
            try db.execute(sql: "UPDATE enrolment SET sealed_embedding = ? WHERE student_code = '0102'", arguments: [blob])
        }
        let snapshot = try store.enrolments.snapshot()
        XCTAssertEqual(snapshot.embeddings.map(\.student), ["0101"])
        XCTAssertEqual(snapshot.unreadable, ["0102"])
        XCTAssertEqual(try store.enrolments.unreadable(), ["0102"])
        let faces = try EnrolledFaces(store: store)
        XCTAssertNoThrow(try faces.reload())
        XCTAssertEqual(faces.current().unreadable, ["0102"])

        // Every row unreadable is a wrong key, not bad luck: refused.
        try store.writer.write { db in
            var blob = try Data.fetchOne(db, sql: "SELECT sealed_embedding FROM enrolment WHERE student_code = '0101'")!
            blob[20] ^= 0x01
            try db.execute(sql: "UPDATE enrolment SET sealed_embedding = ? WHERE student_code = '0101'", arguments: [blob])
        }
        XCTAssertThrowsError(try store.enrolments.snapshot()) {
            XCTAssertEqual($0 as? StoreError, .wrongKey(keyFile: tmp.keyFile))
        }
    }

    // MARK: point 11: the key

    func testKeyRotationReSealsEverythingAndTheOldKeyOpensNothing() throws {
        let tmp = try TempStore()
        let store = try tmp.open()
        try seedRoster(store, in: tmp)
        try store.enrolments.add(student: "0101", [(fakeEmbedding(1), nil, nil), (fakeEmbedding(3), nil, nil)])
        try store.enrolments.add(student: "0102", [(fakeEmbedding(2), nil, nil)])
        let pseudonym = store.pseudonym(of: "0101")
        let oldKey = try XCTUnwrap(FileManager.default.contents(atPath: tmp.keyFile))
        let before = try store.enrolments.snapshot().embeddings.map { $0.embedding }
        let version = try store.enrolments.galleryVersion()

        let report = try store.rotateKey()
        XCTAssertEqual(report, KeyRotationReport(enrolments: 3, sightings: 0, unreadable: 0))
        XCTAssertNotEqual(FileManager.default.contents(atPath: tmp.keyFile), oldKey)
        XCTAssertFalse(FileManager.default.fileExists(atPath: tmp.keyFile + ".new"))
        XCTAssertGreaterThan(try store.enrolments.galleryVersion(), version, "the daemon's gallery reloads")
        let reopened = try tmp.open()
        XCTAssertEqual(try reopened.enrolments.snapshot().embeddings.map { $0.embedding }, before)
        XCTAssertEqual(reopened.pseudonym(of: "0101"), pseudonym, "log names survive a rotation")
        XCTAssertTrue(try reopened.auditLog.entries().contains { $0.action == "key.rotate" })
        // The old key (from a stolen backup, say) opens nothing.
        let old = tmp.dir + "/old.key"
        XCTAssertTrue(try FilePermissions.createPrivate(old, contents: [UInt8](oldKey)))
        XCTAssertThrowsError(try AttendanceStore(path: tmp.path, keyFile: old, config: AttendanceConfig())) {
            XCTAssertEqual($0 as? StoreError, .wrongKey(keyFile: old))
        }
    }

    func testARotationInterruptedBeforeTheKeyFileWasReplacedIsFinishedOnOpen() throws {
        let tmp = try TempStore()
        let store = try tmp.open()
        try seedRoster(store, in: tmp)
        try store.enrolments.add(student: "0101", [(fakeEmbedding(1), nil, nil)])
        let oldKey = try XCTUnwrap(FileManager.default.contents(atPath: tmp.keyFile))
        try store.rotateKey()
        // Put the box back in the state of a power cut after the commit, before the rename.
        XCTAssertEqual(rename(tmp.keyFile, tmp.keyFile + ".new"), 0)
        XCTAssertTrue(try FilePermissions.createPrivate(tmp.keyFile, contents: [UInt8](oldKey)))
        let reopened = try tmp.open()
        XCTAssertEqual(try reopened.enrolments.snapshot().embeddings.map { $0.embedding }, [fakeEmbedding(1)])
        XCTAssertFalse(FileManager.default.fileExists(atPath: tmp.keyFile + ".new"), "the rotation was finished")
        XCTAssertNotEqual(FileManager.default.contents(atPath: tmp.keyFile), oldKey)
    }

    // MARK: point 10: passwords in URLs

    func testEveryPasswordInACameraURLIsRedacted() {
        for (spec, secret) in [
            ("rtsp://admin:P@ss1@10.0.0.5:554/stream1", "P@ss1"), ("rtsp://u:a/b?c#d@cam/x", "a/b?c#d"),
            ("rtsps://viewer:s3cret@[fe80::1]:322/live", "s3cret"),
        ] {
            let redacted = CameraSource.redacted(spec)
            XCTAssertFalse(redacted.contains(secret), redacted)
            XCTAssertTrue(redacted.contains(":***@"), redacted)
            let error = CaptureError(
                .video(status: 6), operation: "vio_reader_open", source: spec, detail: "cannot open \(spec) (timeout)")
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

    /// The daemon refuses a database opened with another school, schedule or privacy section: record ids,
    /// excuses and retention would follow the store's config, not the daemon's.
    func testTheDaemonRefusesAStoreOpenedWithAnotherSchool() throws {
        let tmp = try TempStore()
        var config = AttendanceConfig()
        config.cameras = [.init(id: "gate", source: "file:/nonexistent.mp4")]
        var other = config
        other.school.code = "ANOTHER-SCHOOL"
        XCTAssertThrowsError(
            try GateDaemon(config: config, store: try tmp.open(config: other), models: ModelPaths(directory: tmp.dir))
        ) { error in
            XCTAssertTrue("\(error)".contains("another school"), "\(error)")
        }
    }
}
