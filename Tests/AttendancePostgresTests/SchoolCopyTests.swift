import Attendance
import AttendanceCore
import AttendanceTesting
import FaceEngine
import Foundation
import Logging
import PostgresNIO
import SectorConnector
import XCTest

@testable import AttendancePostgres

/// `attendance db migrate --to`: a one-box school's SQLite database copied into PostgreSQL in one transaction.
final class SchoolCopyTests: XCTestCase {
    func testEveryConcernIsCopiedWithItsCountsAndTheEmbeddingsStaySealed() async throws {
        let db = try await freshDatabase(migrate: false)
        let box = try GateJournal(students: 6)
        let store = box.store
        for i in 0..<3 {
            try store.enrolments.add(
                student: GateJournal.code(i),
                [(embedding: (0..<128).map { Float($0 + i) / 256 }, quality: "good", source: "photo-\(i).jpg")])
        }
        for i in 0..<4 { try box.record(i, camera: "gate-1") }
        _ = try store.events.correct(
            student: GateJournal.code(1), day: GateJournal.day, session: "morning", status: .late, reason: "đến muộn")
        _ = try store.consent.revoke(student: GateJournal.code(5), reason: "phụ huynh rút lại")
        try store.events.recordUnknownFace(at: Date(), camera: "gate-1", cropPath: "/var/lib/attendance/crops/x.jpg")
        try store.accounts.add(
            name: "co.lan", role: .teacher, classes: ["6A1"], password: "mật khẩu đủ dài 1", hashing: PasswordHash(logN: 10))
        _ = try store.reviews.hold(
            NewAttendanceEvent(
                studentCode: GateJournal.code(4), schoolDay: GateJournal.day, session: "morning", kind: .checkIn,
                status: .present, occurredAt: Date(), camera: "gate-1", distance: 0.3),
            liveness: 0.05, reason: .spoof)
        let local = try store.copyTables()

        let report = try await SchoolCopy.run(from: store, to: db.owner)
        assertEqual(report.schemaVersionsApplied, PostgresSchema.migrations.map(\.version))
        for copy in local {
            // The server's own rows besides the copy's: the migration's audit entry, the gallery triggers' counters.
            let rows = try await db.int(
                "SELECT count(*) FROM \(copy.table)" + (copy.table == "meta" ? " WHERE key NOT LIKE 'gallery_version:%'" : ""))
            assertEqual(rows, copy.count + (copy.table == "audit_log" ? 1 : 0), copy.table)
            assertEqual(report.rows(copy.table), copy.count, copy.table)
        }
        assertEqual(report.rows("student"), 6)
        assertEqual(report.rows("enrolment"), 3)
        assertEqual(report.rows("attendance_event"), 4)
        assertEqual(report.rows("outbox"), 5, "four NEW and the correction's UPDATE")
        assertEqual(report.rows("review_hold"), 1, "the held check-in, for the teacher to decide")
        assertEqual(report.rows("console_user"), 1)
        assertEqual(report.rows("console_user_class"), 1)
        assertEqual(
            try await db.strings("SELECT name || ' ' || role || ' ' || disabled::text FROM console_user"),
            ["co.lan teacher false"])
        let accounts = try XCTUnwrap(
            try JSONSerialization.jsonObject(with: local.first { $0.table == "console_user" }!.json) as? [[String: Any]])
        assertEqual(
            try await db.strings("SELECT password_hash FROM console_user"), accounts.map { $0["password_hash"] as! String },
            "the scrypt hash, as it is")
        assertEqual(try await db.strings("SELECT action FROM audit_log ORDER BY id DESC LIMIT 1"), ["database.migrate"])

        // The sealed bytes on the server are this box's, byte for byte; they open only with the box's key.
        let localSealed =
            try JSONSerialization.jsonObject(with: local.first { $0.table == "enrolment" }!.json)
            as! [[String: Any]]
        let serverSealed = try await db.strings(
            "SELECT translate(encode(sealed_embedding, 'base64'), E'\\n', '') FROM enrolment ORDER BY id")
        assertEqual(serverSealed, localSealed.map { $0["sealed_embedding"] as! String })
        let embeddings = try store.enrolments.recognisable()
        for e in embeddings {
            XCTAssertFalse(
                serverSealed.contains(Data(e.embedding.withUnsafeBufferPointer { Data(buffer: $0) }).base64EncodedString()))
        }
        // Booleans and the event's deterministic id.
        assertEqual(try await db.int("SELECT count(*) FROM student WHERE active"), 6)
        assertEqual(
            try await db.strings("SELECT status || ' v' || version FROM attendance_event ORDER BY record_id").sorted(),
            ["late v2", "present v1", "present v1", "present v1"])
        assertEqual(try await db.int("SELECT count(*) FROM consent WHERE revoked_at IS NOT NULL"), 1)
        assertEqual(try await db.strings("SELECT coalesce(camera, '-') FROM unknown_face"), ["gate-1"], "no crop path")
        // The box's journal has nothing to send: the copy holds its events.
        assertEqual(try store.events.unsharedCount(), 0)
        // New rows get new ids after the copied ones.
        assertEqual(
            try await db.int(
                "INSERT INTO audit_log(at, os_user, action) VALUES ('x', 'y', 'z') RETURNING id"),
            try await db.int("SELECT max(id) FROM audit_log"))

        // A second copy into the same database is refused, and changes nothing.
        let before = try await db.int("SELECT count(*) FROM audit_log")
        do {
            _ = try await SchoolCopy.run(from: store, to: db.owner)
            XCTFail("copied twice")
        } catch let p as PostgresProblem {
            XCTAssertTrue(
                p.description.contains("already holds 6 row(s) in student: migrate into an empty database"), p.description)
        }
        assertEqual(try await db.int("SELECT count(*) FROM audit_log"), before)
    }

    func testTheGateRoleCannotRunTheCopy() async throws {
        let db = try await freshDatabase(migrate: false)
        let box = try GateJournal(students: 1)
        do {
            _ = try await SchoolCopy.run(from: box.store, to: db.gate)
            XCTFail("the gate role created the schema")
        } catch let p as PostgresProblem {
            assertEqual(p.kind, .refused, p.description)
            XCTAssertTrue(p.description.contains("role attendance_gate lacks a right"), p.description)
        }
    }
}

/// The demo school (`GateDemo.prepare`: enrolled from sample photos) copied to PostgreSQL, then a replay of the
/// gate video whose journal the sender moves to the server: the known answer arrives there.
final class SchoolCopyEndToEndTests: XCTestCase {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path

    func testTheDemoSchoolMigratesAndAReplayReachesTheServer() async throws {
        let samples = Self.root + "/.testdata"
        guard FileManager.default.fileExists(atPath: samples + "/obama2.jpg") else { throw XCTSkip("run `make testdata`") }
        let models = ModelPaths(directory: Self.root + "/Models")
        guard FileManager.default.fileExists(atPath: models.embedding) else { throw XCTSkip("run `make models`") }
        let db = try await freshDatabase(migrate: false)
        let dir = NSTemporaryDirectory() + "gate-pg-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let demo = try GateDemo.prepare(
            directory: dir, samples: samples, models: models, day: LocalDate(year: 2026, month: 11, day: 23))
        let store = try AttendanceStore.open(config: demo.config)

        let report = try await SchoolCopy.run(from: store, to: db.owner)
        assertEqual(report.rows("student"), 3)
        assertEqual(report.rows("consent"), 2)
        assertEqual(report.rows("enrolment"), 2)
        assertEqual(report.rows("attendance_event"), 0)

        var sender = JournalSender(store: store, connector: db.gate, gate: "gate-box-1", logger: quietLogger)
        sender.pollInterval = .milliseconds(50)
        let sending = Task { try await sender.run() }
        _ = try await demo.replay(store: store, models: models, logger: quietLogger)
        try await eventually("the replay's journal sent") { try store.events.unsharedCount() == 0 }
        sending.cancel()
        try await sending.value

        assertEqual(
            try await db.strings(
                "SELECT student_code || ' ' || kind || ' ' || status FROM attendance_event ORDER BY student_code"),
            ["7900000001 check_in present", "7900000003 check_in late"], "the demo's known answer, on the server")
        assertEqual(try await db.int("SELECT count(*) FROM outbox WHERE event_kind = 'NEW'"), 2)
    }
}

/// Two gate daemons (`attendance serve`, two boxes replaying the same students) against one PostgreSQL: one
/// arrival per student per session on the server, and nothing left in either journal.
final class TwoGateDaemonsEndToEndTests: XCTestCase {
    func testTwoServeProcessesRecordEachStudentOnceOnTheServer() async throws {
        let (samples, models, exe) = try gateBoxFixtures(needing: "obama2.jpg")
        let db = try await freshDatabase(migrate: false)
        let day = LocalDate(year: 2026, month: 11, day: 23)
        var boxes: [(GateDemo, String)] = []
        for name in ["front", "back"] {
            let dir = NSTemporaryDirectory() + "gate-\(name)-\(UUID().uuidString)"
            addTeardownBlock { try? FileManager.default.removeItem(atPath: dir) }
            let demo = try GateDemo.prepare(directory: dir, samples: samples, models: models, day: day)
            let toml = demo.configTOML().replacingOccurrences(
                of: "[database]\n",
                with: """
                    [database]
                    backend = "postgresql"
                    url = "\(db.gate.url)"
                    password_file = "\(db.cluster.gatePasswordFile)"
                    tls = "disable"

                    """)
            let path = dir + "/gate.toml"
            try toml.write(toFile: path, atomically: true, encoding: .utf8)
            boxes.append((demo, path))
        }
        _ = try await SchoolCopy.run(from: try AttendanceStore.open(config: boxes[0].0.config), to: db.owner)

        let start = ISO8601DateFormatter.string(
            from: boxes[0].0.replayStart, timeZone: TimeZone(identifier: "Asia/Ho_Chi_Minh")!,
            formatOptions: [.withInternetDateTime])
        let daemons = try boxes.map { _, config -> Process in
            let p = Process()
            p.executableURL = URL(fileURLWithPath: exe)
            p.arguments = [
                "serve", "--config", config, "--replay-start", start, "--time-scale", "60", "--exit-when-done",
                "--log-level", "warning",
            ]
            p.standardOutput = FileHandle.nullDevice
            try p.run()
            return p
        }
        for p in daemons {
            p.waitUntilExit()
            assertEqual(p.terminationStatus, 0, "the daemon finished its replay")
        }
        for (demo, _) in boxes {
            assertEqual(try AttendanceStore.open(config: demo.config).events.unsharedCount(), 0, "its journal is empty")
        }
        assertEqual(
            try await db.strings(
                "SELECT student_code || ' ' || kind || ' ' || status FROM attendance_event ORDER BY student_code"),
            ["7900000001 check_in present", "7900000003 check_in late"], "one arrival per student, whichever gate")
        assertEqual(try await db.int("SELECT count(*) FROM outbox"), 2)
    }
}

/// Exactly one sender to the sector database for the school: two `attendance serve` boxes with the same connector;
/// the one holding the PostgreSQL advisory lock sends, and when it is SIGKILLed the other takes over. Every outbox
/// row reaches the reference gateway (a record sent twice across the takeover is answered `duplicate`, stored once).
final class SchoolSectorSenderEndToEndTests: XCTestCase {
    func testTheOtherBoxTakesOverWhenTheSenderIsKilled() async throws {
        let (samples, models, exe) = try gateBoxFixtures(needing: "obama2.jpg")
        let db = try await freshDatabase(migrate: false)
        let dir = NSTemporaryDirectory() + "sector-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: dir) }
        let gateway = try await ReferenceGateway(directory: URL(fileURLWithPath: dir))
        defer { gateway.stop() }

        let day = LocalDate(year: 2026, month: 11, day: 23)
        var configs: [String] = []
        var demos: [GateDemo] = []
        for name in ["front", "back"] {
            let boxDir = dir + "/" + name
            let demo = try GateDemo.prepare(directory: boxDir, samples: samples, models: models, day: day)
            let toml =
                demo.configTOML().replacingOccurrences(
                    of: "[database]\n",
                    with: """
                        [database]
                        backend = "postgresql"
                        url = "\(db.gate.url)"
                        password_file = "\(db.cluster.gatePasswordFile)"
                        tls = "disable"

                        """)
                    + """

                    [connector]
                    endpoint = "\(gateway.baseURL)"
                    token_file = "\(gateway.tokenFile)"
                    allow_insecure_http = true
                    batch_size = 5
                    """
            try toml.write(toFile: boxDir + "/gate.toml", atomically: true, encoding: .utf8)
            configs.append(boxDir + "/gate.toml")
            demos.append(demo)
        }
        _ = try await SchoolCopy.run(from: try AttendanceStore.open(config: demos[0].config), to: db.owner)
        let start = ISO8601DateFormatter.string(
            from: demos[0].replayStart, timeZone: TimeZone(identifier: "Asia/Ho_Chi_Minh")!,
            formatOptions: [.withInternetDateTime])
        func launch(_ config: String) throws -> Process {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: exe)
            p.arguments = [
                "serve", "--config", config, "--replay-start", start, "--time-scale", "60", "--log-level", "error",
            ]
            p.standardOutput = FileHandle.nullDevice
            p.standardError = FileHandle.nullDevice
            try p.run()
            return p
        }
        let lockHolders = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
        let first = try launch(configs[0])
        defer { if first.isRunning { first.terminate() } }
        try await eventually("the first box holds the sender's lock") { try await db.int(lockHolders) == 1 }
        let second = try launch(configs[1])
        defer {
            if second.isRunning {
                second.terminate()
                second.waitUntilExit()
            }
        }
        // Both replays record the demo's two arrivals; the server keeps one of each; the holder sends them.
        try await eventually("the demo's arrivals delivered", within: 120) {
            try await db.int("SELECT count(*) FROM outbox WHERE state = 'delivered'") == 2
        }
        assertEqual(try await db.int(lockHolders), 1, "one sender for the school")

        kill(first.processIdentifier, SIGKILL)
        first.waitUntilExit()
        // New rows in the school's outbox (corrections made at the office, say): the other box must send them.
        try await db.owner.withConnection { c in
            for i in 0..<7 {
                let d = LocalDate(year: 2026, month: 11, day: 10 + i)
                let id = EventLedger.recordID(
                    school: "79-DEMO", student: "7900000002", day: d, session: "morning", kind: .checkIn)
                let record = SectorRecord(
                    recordID: id, eventKind: .new, version: 1, updatedAt: "2026-11-23T01:00:00.000Z",
                    schoolCode: "79-DEMO", gradeCode: "6", classCode: "6A1", studentCode: "7900000002",
                    schoolDay: d.description, session: "morning", kind: "check_in", status: "excused", occurredAt: nil,
                    camera: nil)
                let payload = String(decoding: try record.jsonData(), as: UTF8.self)
                try await c.query(
                    """
                    INSERT INTO outbox(record_id, version, event_kind, payload, created_at)
                    VALUES (\(id), 1, 'NEW', \(payload), '2026-11-23T01:00:00.000Z')
                    """, logger: quietLogger)
            }
        }
        try await eventually("the other box took over and delivered everything", within: 120) {
            try await db.int("SELECT count(*) FROM outbox WHERE state = 'delivered'") == 9
        }
        assertEqual(try await db.int("SELECT count(*) FROM outbox WHERE state <> 'delivered'"), 0)
        let stats = try await gateway.stats()
        assertEqual(stats.stored, 9, "every outbox row stored once at the gateway")
        assertEqual(stats.rejected, 0)
        assertEqual(try await db.int(lockHolders), 1, "the second box holds the lock now")
    }
}
