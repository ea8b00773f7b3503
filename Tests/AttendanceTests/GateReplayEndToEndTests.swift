import AttendanceTesting
import CaptureKit
import FaceEngine
import FaceMatch
import Foundation
import GRDB
import Logging
import XCTest

@testable import Attendance
@testable import AttendanceCore

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// End to end: a composed gate video with a known answer through the real pipeline
/// (OpenCV + dlib + FaceMatch + SQLite), in-process and as a daemon process killed mid-run.
final class GateReplayEndToEndTests: XCTestCase {

    func prepare(cameras: Int = 1) throws -> GateDemo { try prepareDemo(cameras: cameras) }

    func replay(_ demo: GateDemo) async throws -> (stats: [PipelineStatistics], store: AttendanceStore) {
        let store = try AttendanceStore.open(config: demo.config)
        let stats = try await demo.replay(store: store, models: SourceTree.models, logger: Logger(label: "test"))
        return (stats, store)
    }

    struct EventRow: Equatable {
        var student: String, kind: String, status: String, session: String, minute: String
    }

    func events(_ store: AttendanceStore, tz: TimeZone) throws -> [EventRow] {
        let f = DateFormatter()
        f.dateFormat = "HH:mm"
        f.timeZone = tz
        return try store.writer.read { db in
            try Row.fetchAll(
                db, sql: "SELECT student_code, kind, status, session, occurred_at FROM attendance_event ORDER BY occurred_at"
            )
            .map {
                EventRow(
                    student: $0[0], kind: $0[1], status: $0[2], session: $0[3],
                    minute: f.string(from: Timestamp.date($0[4] as String)!))
            }
        }
    }

    /// Every enrolled face recorded exactly once with the right status; the stranger never recorded.
    func assertKnownAnswer(_ store: AttendanceStore, config: AttendanceConfig, file: StaticString = #filePath, line: UInt = #line)
        throws
    {
        let tz = TimeZone(identifier: "Asia/Ho_Chi_Minh")!
        let rows = try events(store, tz: tz)
        XCTAssertEqual(
            rows.map(\.student), ["7900000001", "7900000003"], "An then Cường, once each: \(rows)", file: file, line: line)
        XCTAssertEqual(rows.map(\.status), ["present", "late"], file: file, line: line)
        XCTAssertEqual(rows.map(\.kind), ["check_in", "check_in"], file: file, line: line)
        // obama2 walks past 06:56-06:58:30, biden 07:02-07:04:30 (school time).
        if rows.count == 2 {
            XCTAssert(["06:56", "06:57", "06:58"].contains(rows[0].minute), "An at \(rows[0].minute)", file: file, line: line)
            XCTAssert(["07:02", "07:03", "07:04"].contains(rows[1].minute), "Cường at \(rows[1].minute)", file: file, line: line)
        }
        let day = LocalDate(year: 2026, month: 11, day: 23)
        let report = try AttendanceReports(store: store).daily(day)
        let status = Dictionary(uniqueKeysWithValues: report.rows.map { ($0.studentCode, $0.status.rawValue) })
        XCTAssertEqual(status, ["7900000001": "present", "7900000002": "absent", "7900000003": "late"], file: file, line: line)
        XCTAssertGreaterThanOrEqual(
            try store.events.unknownFaceCount(on: day, timeZone: tz), 1, "the astronaut is counted as unknown",
            file: file, line: line)
        let outbox = try store.writer.read { db in
            try Row.fetchAll(db, sql: "SELECT o.record_id, o.version, o.event_kind FROM outbox o ORDER BY o.created_at")
        }
        XCTAssertEqual(outbox.count, rows.count, "one outbox record per event", file: file, line: line)
        XCTAssert(outbox.allSatisfy { ($0[1] as Int) == 1 && ($0[2] as String) == "NEW" }, file: file, line: line)
    }

    func testReplayHasTheKnownAnswer() async throws {
        let demo = try prepare()
        let (stats, store) = try await replay(demo)
        XCTAssertEqual(stats.count, 1)
        XCTAssertEqual(stats[0].frames, 190, "every frame of the 19 s video at 10 fps")
        XCTAssertGreaterThan(stats[0].embeddings, 0)
        XCTAssertGreaterThan(stats[0].gatedFrames, 0, "the motion gate kept frames with nobody in them from the detector")
        try assertKnownAnswer(store, config: demo.config)
    }

    /// Learning from the gate: each recognised student leaves one sighting (128 numbers, sealed) for the
    /// teacher; an approved one joins the enrolment, a rejected one and an erased student's leave nothing.
    func testGateSightingsWaitForTheTeacher() async throws {
        let demo = try prepare()
        let (_, store) = try await replay(demo)
        try assertKnownAnswer(store, config: demo.config)
        let waiting = try store.enrolments.pendingSightings()
        XCTAssertEqual(waiting.map(\.student), ["7900000001", "7900000003"], "one per recorded student")
        XCTAssertEqual(try store.enrolments.pendingSightings(classCode: "6A2").map(\.student), ["7900000003"])
        for w in waiting { XCTAssertLessThan(w.distance, demo.config.recognition.threshold) }
        let sealed = try await store.writer.read { db in try Data.fetchAll(db, sql: "SELECT sealed_embedding FROM gate_sighting")
        }
        let plain = try store.enrolments.sightingEmbedding(id: waiting[0].id).embedding
        let raw = plain.withUnsafeBytes { Data($0) }
        XCTAssertFalse(sealed.contains { $0.range(of: raw.prefix(16)) != nil }, "sealed, not plain floats")

        let enroller = Enroller(store: store)
        let before = try store.enrolments.galleryVersion()
        XCTAssertNil(try enroller.approveSighting(id: waiting[0].id))
        XCTAssertEqual(try store.enrolments.list(student: "7900000001").map(\.source), ["photo:obama.jpg", "gate:gate-1"])
        XCTAssertGreaterThan(try store.enrolments.galleryVersion(), before, "the gate reloads")
        XCTAssertThrowsError(try enroller.approveSighting(id: waiting[0].id), "approved once")
        try store.enrolments.rejectSighting(id: waiting[1].id, reason: "test")
        XCTAssertEqual(try store.enrolments.list(student: "7900000003").count, 1)
        XCTAssertTrue(try store.enrolments.pendingSightings().isEmpty)
        let actions = try store.auditLog.entries(since: nil, limit: nil).map(\.action)
        XCTAssertTrue(actions.contains("enrol.sighting") && actions.contains("sighting.reject"), "\(actions)")

        // Nothing waits for a student who is erased, or whose consent is revoked.
        let (_, again) = try await replay(demo)
        XCTAssertEqual(
            try again.enrolments.pendingSightings().map(\.student), [], "already recorded this session: no new decision")
        try store.enrolments.proposeSighting(
            student: "7900000003", embedding: plain, distance: 0.3, margin: 0.2, camera: "gate-1", at: Date())
        _ = try store.consent.revoke(student: "7900000003")
        XCTAssertTrue(try store.enrolments.pendingSightings().isEmpty, "revoking consent deletes the waiting sighting")
        XCTAssertFalse(
            try store.enrolments.proposeSighting(
                student: "7900000003", embedding: plain, distance: 0.3, margin: 0.2, camera: "gate-1",
                at: Date()), "no consent, nothing kept")
        // Nobody reviewed it: the retention pass deletes it after privacy.keep_sightings_days.
        XCTAssertTrue(
            try store.enrolments.proposeSighting(
                student: "7900000001", embedding: plain, distance: 0.3, margin: 0.2, camera: "gate-1",
                at: Date()))
        XCTAssertEqual(try store.retention.purge(now: Date().addingTimeInterval(29 * 86_400)).sightings, 0)
        XCTAssertEqual(try store.retention.purge(now: Date().addingTimeInterval(31 * 86_400)).sightings, 1)
        XCTAssertTrue(try store.enrolments.pendingSightings().isEmpty)
    }

    /// An admin cancels An's record (say it was a wrong match); An passes the gate again in the same
    /// session: recorded again, as the same sector record.
    func testCancelledRecordThenTheStudentPassesAgain() async throws {
        let demo = try prepare()
        let (_, store) = try await replay(demo)
        try assertKnownAnswer(store, config: demo.config)
        let day = LocalDate(year: 2026, month: 11, day: 23)
        _ = try store.events.cancelEvent(student: "7900000001", day: day, session: "morning", reason: "test")
        let report = try AttendanceReports(store: store).daily(day)
        XCTAssertEqual(report.rows.first { $0.studentCode == "7900000001" }?.status.rawValue, "absent", "cancelled")
        let (_, again) = try await replay(demo)
        let tz = TimeZone(identifier: "Asia/Ho_Chi_Minh")!
        XCTAssertEqual(
            try events(again, tz: tz).map(\.student), ["7900000001", "7900000003"], "the same record revived, no second one")
        let after = try AttendanceReports(store: again).daily(day)
        XCTAssertEqual(after.rows.first { $0.studentCode == "7900000001" }?.status.rawValue, "present")
        let kinds = try await again.writer.read { db in
            try String.fetchAll(
                db,
                sql: "SELECT o.event_kind FROM outbox o JOIN attendance_event e ON e.id = o.record_id "
                    + "WHERE e.student_code = '7900000001' ORDER BY o.version")
        }
        XCTAssertEqual(kinds, ["NEW", "CANCEL", "UPDATE"])
    }

    func testTwoCamerasAtOnceRecordEachStudentOnce() async throws {
        let demo = try prepare(cameras: 2)
        let (stats, store) = try await replay(demo)
        XCTAssertEqual(stats.count, 2)
        XCTAssertEqual(stats.map(\.frames), [190, 190])
        try assertKnownAnswer(store, config: demo.config)
    }

    /// The daemon killed with SIGKILL right after its first decision and started again on the
    /// same replay: no event lost, none duplicated, the outbox in step with the events.
    func testDaemonKilledMidRunLosesAndDuplicatesNothing() async throws {
        let demo = try prepare()
        let exe = try SourceTree.executable()
        let configPath = demo.directory + "/demo.toml"
        try demo.configTOML().write(toFile: configPath, atomically: true, encoding: .utf8)
        let start = ISO8601DateFormatter.string(
            from: demo.replayStart, timeZone: TimeZone(identifier: "Asia/Ho_Chi_Minh")!,
            formatOptions: [.withInternetDateTime])
        let args = [
            "serve", "--config", configPath, "--replay-start", start, "--time-scale", "60", "--exit-when-done",
            "--log-level", "warning",
        ]
        let store = try AttendanceStore.open(config: demo.config)

        let first = try Self.launch(exe, args)
        // Wait for the first decision to be committed, then kill without warning.
        var waited = 0
        while try eventCount(store) == 0 {
            guard first.isRunning, waited < 1200 else { break }
            try await Task.sleep(for: .milliseconds(100))
            waited += 1
        }
        XCTAssertTrue(first.isRunning, "the daemon should still be replaying when killed")
        kill(first.processIdentifier, SIGKILL)
        first.waitUntilExit()
        XCTAssertEqual(first.terminationReason, .uncaughtSignal)
        let afterKill = try events(store, tz: TimeZone(identifier: "Asia/Ho_Chi_Minh")!)
        XCTAssertGreaterThanOrEqual(afterKill.count, 1)

        let second = try Self.launch(exe, args)
        second.waitUntilExit()
        XCTAssertEqual(second.terminationStatus, 0, "the restarted daemon finishes the replay")
        try assertKnownAnswer(store, config: demo.config)
    }

    /// A teacher enrols a student with the CLI while the daemon serves: the daemon's gallery
    /// (seen through its /metrics) grows within seconds, without a restart; SIGTERM then stops it.
    func testEnrolmentWhileTheDaemonServesTakesEffectWithoutRestart() async throws {
        let demo = try prepare()
        let exe = try SourceTree.executable()
        let port = Int.random(in: 20000...45000)
        let configPath = demo.directory + "/demo.toml"
        let toml = demo.configTOML().replacingOccurrences(of: "port = 0", with: "port = \(port)")
        try toml.write(toFile: configPath, atomically: true, encoding: .utf8)
        let daemon = try Self.launch(exe, ["serve", "--config", configPath, "--log-level", "warning"])
        defer { if daemon.isRunning { kill(daemon.processIdentifier, SIGKILL) } }

        func gauge(_ name: String) async -> Double? {
            guard let url = URL(string: "http://127.0.0.1:\(port)/metrics"),
                let (data, _) = try? await URLSession.shared.data(from: url)
            else { return nil }
            for line in String(decoding: data, as: UTF8.self).split(separator: "\n") where line.hasPrefix(name + " ") {
                return Double(line.split(separator: " ").last ?? "")
            }
            return nil
        }
        func waitFor(_ name: String, _ value: Double) async throws {
            for _ in 0..<300 {
                if await gauge(name) == value { return }
                try await Task.sleep(for: .milliseconds(100))
            }
            XCTFail("\(name) never reached \(value) (last: \(String(describing: await gauge(name))))")
        }
        try await waitFor("attendance_gallery_embeddings", 2)
        let (health, response) = try await URLSession.shared.data(from: URL(string: "http://127.0.0.1:\(port)/health")!)
        XCTAssertEqual((response as? HTTPURLResponse)?.statusCode, 200)
        XCTAssertTrue(
            String(decoding: health, as: UTF8.self).contains("camera gate-1: "), String(decoding: health, as: UTF8.self))

        // The teacher's commands, as a separate process on the same database.
        let consent = try Self.launch(
            exe,
            [
                "consent", "record", "7900000002", "--guardian", "Trần Văn Bảo", "--relation", "father",
                "--date", "2026-11-20", "--child-agrees", "--config", configPath,
            ])
        consent.waitUntilExit()
        XCTAssertEqual(consent.terminationStatus, 0)
        let enrol = try Self.launch(
            exe, ["enrol", "7900000002", "--photo", SourceTree.samples + "/astronaut.png", "--config", configPath])
        enrol.waitUntilExit()
        XCTAssertEqual(enrol.terminationStatus, 0)
        try await waitFor("attendance_gallery_embeddings", 3)

        // The live daemon's metrics follow Prometheus' conventions (issue #12 point 14).
        let (metrics, _) = try await URLSession.shared.data(from: URL(string: "http://127.0.0.1:\(port)/metrics")!)
        let text = String(decoding: metrics, as: UTF8.self)
        XCTAssertTrue(text.contains("# HELP attendance_frames_total "), text)
        XCTAssertTrue(text.contains("attendance_dropped_frames_total"), "dropped frames are a counter")
        if let promtool = ["/usr/bin/promtool", "/usr/local/bin/promtool"].first(
            where: FileManager.default.isExecutableFile(atPath:))
        {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: promtool)
            p.arguments = ["check", "metrics"]
            let input = Pipe(), out = Pipe()
            p.standardInput = input
            p.standardOutput = out
            p.standardError = out
            try p.run()
            input.fileHandleForWriting.write(metrics)
            try input.fileHandleForWriting.close()
            let report = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            p.waitUntilExit()
            XCTAssertEqual(p.terminationStatus, 0, "promtool check metrics:\n\(report)")
            XCTAssertEqual(report.trimmingCharacters(in: .whitespacesAndNewlines), "", "promtool check metrics:\n\(report)")
        } else {
            print("promtool is not installed (Debian package prometheus): the metrics' conventions were not checked")
        }

        kill(daemon.processIdentifier, SIGTERM)
        let stopAsked = ContinuousClock.now
        while daemon.isRunning && ContinuousClock.now - stopAsked < .seconds(20) { try await Task.sleep(for: .milliseconds(50)) }
        XCTAssertFalse(daemon.isRunning, "SIGTERM stops the daemon")
        XCTAssertEqual(daemon.terminationStatus, 0)
        print("daemon stopped \(ContinuousClock.now - stopAsked) after SIGTERM")
    }

    /// `attendance enrol --camera`: shots of the right person are enrolled; shots of an enrolled
    /// classmate are refused as a likely swap.
    func testEnrolmentFromACameraSource() throws {
        let demo = try prepare()
        let exe = try SourceTree.executable()
        let db = demo.config.database.path
        let consent = try Self.launch(
            exe,
            [
                "consent", "record", "7900000002", "--guardian", "Trần Văn Bảo", "--relation", "father",
                "--date", "2026-11-20", "--child-agrees", "--db", db,
            ])
        consent.waitUntilExit()
        XCTAssertEqual(consent.terminationStatus, 0)
        // A camera that sees only Bình (the astronaut photo walking past).
        let video = demo.directory + "/binh.avi"
        try ReplayScript(duration: 3, passages: [.init(image: SourceTree.samples + "/astronaut.png", from: 0, to: 3)])
            .write(to: video, engine: FaceEngine(models: SourceTree.models))
        let (ok, okOut) = try Self.run(exe, ["enrol", "7900000002", "--camera", "file:" + video, "--shots", "2", "--db", db])
        XCTAssertEqual(ok, 0, okOut)
        XCTAssertTrue(okOut.contains("good shot 2 of 2"), okOut)
        XCTAssertTrue(okOut.contains("2 of 2 shots accepted"), okOut)
        // The gate video shows An first: enrolling those shots as Cường is refused.
        let (bad, badOut) = try Self.run(
            exe, ["enrol", "7900000003", "--camera", "file:" + demo.video, "--shots", "1", "--db", db])
        XCTAssertNotEqual(bad, 0)
        XCTAssertTrue(badOut.contains("looks like student 7900000001"), badOut)
        // Issue #15: Bình's photo on a phone held up to the camera is not Bình in person.
        let phone = demo.directory + "/binh-phone.avi"
        try ReplayScript(
            duration: 3,
            passages: [.init(image: SourceTree.samples + "/astronaut.png", from: 0, to: 3, presentation: .phoneScreen)]
        ).write(to: phone, engine: FaceEngine(models: SourceTree.models))
        let (spoof, spoofOut) = try Self.run(
            exe, ["enrol", "7900000002", "--camera", "file:" + phone, "--shots", "1", "--db", db])
        XCTAssertNotEqual(spoof, 0)
        XCTAssertTrue(spoofOut.contains("looks like a photo or a screen"), spoofOut)
        let store = try AttendanceStore.open(config: demo.config)
        XCTAssertEqual(try store.enrolments.list(student: "7900000002").count, 2, "the phone's shots changed nothing")
        XCTAssertEqual(try store.enrolments.list(student: "7900000003").count, 1, "the refused shot changed nothing")
    }

    /// Issue #12 point 10: nothing the daemon writes (its log, OpenCV's and FFmpeg's messages on the same
    /// stderr) holds a camera password, a student code or a student name, at the default level `info`.
    func testTheDaemonLogsNoSecretAndNoStudentCode() async throws {
        let demo = try prepare()
        let exe = try SourceTree.executable()
        let configPath = demo.directory + "/demo.toml"
        let toml =
            demo.configTOML() + """

                [[camera]]
                id = "gate-rtsp"
                source = "rtsp://admin:secret-pw-123@127.0.0.1:9/stream1"

                """
        try toml.write(toFile: configPath, atomically: true, encoding: .utf8)
        let start = ISO8601DateFormatter.string(
            from: demo.replayStart, timeZone: TimeZone(identifier: "Asia/Ho_Chi_Minh")!,
            formatOptions: [.withInternetDateTime])
        let output = Pipe()
        let daemon = try Self.launch(
            exe, ["serve", "--config", configPath, "--replay-start", start, "--time-scale", "60"], output: output)
        defer { if daemon.isRunning { kill(daemon.processIdentifier, SIGKILL) } }
        let collected = LogBuffer()
        let reader = Thread { while case let d = output.fileHandleForReading.availableData, !d.isEmpty { collected.append(d) } }
        reader.start()
        let store = try AttendanceStore.open(config: demo.config)
        for _ in 0..<1200 where try eventCount(store) < 2 { try await Task.sleep(for: .milliseconds(100)) }
        XCTAssertEqual(try eventCount(store), 2, "the replay camera recorded while the RTSP camera kept failing")
        try await Task.sleep(for: .seconds(3)) // a few reconnect attempts of the RTSP camera
        kill(daemon.processIdentifier, SIGTERM)
        daemon.waitUntilExit()
        try await Task.sleep(for: .milliseconds(300))
        let log = collected.text
        XCTAssertTrue(log.contains("gate-rtsp"), "the RTSP camera's failures are logged:\n\(log)")
        XCTAssertTrue(log.contains("recorded"), log)
        var needles = ["secret-pw-123"]
        for line in GateDemo.rosterCSV.split(separator: "\n").dropFirst() {
            let fields = line.split(separator: ",").map(String.init)
            needles += [fields[0], fields[1]] // the code and the full name
        }
        for needle in needles {
            XCTAssertFalse(
                log.contains(needle),
                "the log holds '\(needle)':\n\(log.split(separator: "\n").filter { $0.contains(needle) }.joined(separator: "\n"))"
            )
        }
        XCTAssertTrue(log.contains(store.pseudonym(of: "7900000001")), "students are named by their pseudonym")
    }

    /// Issue #12 point 6: a crash loop. The daemon replays the gate video with the reference gateway
    /// receiving, and is SIGKILLed at 30 random moments (while loading, recording, sending); then it runs
    /// to the end and `attendance sync` drains. The database passes `PRAGMA integrity_check`, and every
    /// expected student is recorded exactly once, in the store and at the gateway.
    func testThirtyKillsAtRandomMomentsLoseAndDuplicateNothing() async throws {
        let demo = try prepare()
        let exe = try SourceTree.executable()
        let dir = URL(fileURLWithPath: demo.directory)
        let gateway = try await ReferenceGateway(directory: dir)
        defer { gateway.stop() }
        let configPath = demo.directory + "/demo.toml"
        let toml =
            demo.configTOML() + """

                [connector]
                endpoint = "http://127.0.0.1:\(gateway.port)"
                token_file = "\(gateway.tokenFile)"
                batch_size = 1
                allow_insecure_http = true

                """
        try toml.write(toFile: configPath, atomically: true, encoding: .utf8)
        let start = ISO8601DateFormatter.string(
            from: demo.replayStart, timeZone: TimeZone(identifier: "Asia/Ho_Chi_Minh")!,
            formatOptions: [.withInternetDateTime])
        let args = [
            "serve", "--config", configPath, "--replay-start", start, "--time-scale", "60", "--exit-when-done", "--log-level",
            "error",
        ]
        let store = try AttendanceStore.open(config: demo.config)
        var delays: [Double] = []
        var killedWithEvents = 0
        for _ in 0..<30 {
            let delay = Double.random(in: 0.2...6)
            delays.append(delay)
            let p = try Self.launch(exe, args, output: Pipe())
            try await Task.sleep(for: .milliseconds(Int(delay * 1000)))
            if p.isRunning { kill(p.processIdentifier, SIGKILL) }
            p.waitUntilExit()
            if try eventCount(store) > 0 { killedWithEvents += 1 }
        }
        print(
            "kill delays (s): \(delays.map { String(format: "%.1f", $0) }.joined(separator: " ")); kills after a record: \(killedWithEvents)"
        )
        let (status, out) = try Self.run(exe, Array(args.dropLast(2)))
        XCTAssertEqual(status, 0, out)
        let (synced, syncOut) = try Self.run(exe, ["sync", "--config", configPath])
        XCTAssertEqual(synced, 0, syncOut)

        let integrity = try await store.writer.read { try String.fetchAll($0, sql: "PRAGMA integrity_check") }
        XCTAssertEqual(integrity, ["ok"])
        try assertKnownAnswer(store, config: demo.config)
        let held = try await gateway.records()
        XCTAssertEqual(held.map(\.studentCode).sorted(), ["7900000001", "7900000003"], "each student once at the gateway")
        XCTAssertEqual(Set(held.map(\.recordID)).count, 2)
        let outbox = try await store.writer.read { try String.fetchAll($0, sql: "SELECT state FROM outbox") }
        XCTAssertEqual(outbox, ["delivered", "delivered"])
    }

    /// Issue #12 point 8: `consent revoke`, `unenrol` and `student erase` leave no sealed embedding (nor, for
    /// erase, the student's code) in the database file, its -wal or its -shm, while a daemon runs and reads:
    /// its gallery drops the student within seconds and its checkpoint removes the old pages.
    func testErasureLeavesNoBytesWhileTheDaemonRuns() async throws {
        let demo = try prepare()
        let exe = try SourceTree.executable()
        let port = Int.random(in: 20000...45000)
        let configPath = demo.directory + "/demo.toml"
        try demo.configTOML().replacingOccurrences(of: "port = 0", with: "port = \(port)").write(
            toFile: configPath, atomically: true, encoding: .utf8)
        let daemon = try Self.launch(exe, ["serve", "--config", configPath, "--log-level", "warning"])
        defer { if daemon.isRunning { kill(daemon.processIdentifier, SIGKILL) } }
        func embeddings() async -> Double? {
            guard let (data, _) = try? await URLSession.shared.data(from: URL(string: "http://127.0.0.1:\(port)/metrics")!) else {
                return nil
            }
            return String(decoding: data, as: UTF8.self).split(separator: "\n")
                .first { $0.hasPrefix("attendance_gallery_embeddings ") }.flatMap { Double($0.split(separator: " ").last ?? "") }
        }
        func waitFor(_ what: String, _ condition: () async throws -> Bool) async throws {
            for _ in 0..<300 { if try await condition() { return }; try await Task.sleep(for: .milliseconds(100)) }
            XCTFail("timed out: \(what)")
        }
        let path = demo.config.database.path
        func fileBytes() -> Data {
            var all = Data()
            for p in [path, path + "-wal", path + "-shm"] { all.append(FileManager.default.contents(atPath: p) ?? Data()) }
            return all
        }
        let store = try AttendanceStore.open(config: demo.config)
        func sealed(_ student: String) throws -> [Data] {
            try store.writer.read {
                try Data.fetchAll($0, sql: "SELECT sealed_embedding FROM enrolment WHERE student_code = ?", arguments: [student])
            }
            .map { $0.prefix(40) }
        }
        // A third student to unenrol.
        for args in [
            [
                "consent", "record", "7900000002", "--guardian", "Trần Văn Bảo", "--relation", "father", "--date", "2026-11-20",
                "--child-agrees",
            ],
            ["enrol", "7900000002", "--photo", SourceTree.samples + "/astronaut.png"],
        ] {
            let (status, out) = try Self.run(exe, args + ["--config", configPath])
            XCTAssertEqual(status, 0, out)
        }
        try await waitFor("the daemon loaded 3 faces") { await embeddings() == 3 }

        let steps: [(student: String, command: [String], codeGoes: Bool)] = [
            ("7900000001", ["consent", "revoke", "7900000001", "--reason", "parent's letter"], false),
            ("7900000002", ["unenrol", "7900000002"], false),
            ("7900000003", ["student", "erase", "7900000003", "--yes", "--reason", "parent's request"], true),
        ]
        var expected = 3.0
        for step in steps {
            var needles = try sealed(step.student)
            XCTAssertFalse(needles.isEmpty)
            XCTAssertTrue(
                needles.allSatisfy { fileBytes().range(of: $0) != nil },
                "the sealed embedding is on disk before \(step.command[0])")
            if step.codeGoes { needles.append(Data(step.student.utf8)) }
            let (status, out) = try Self.run(exe, step.command + ["--config", configPath])
            XCTAssertEqual(status, 0, out)
            expected -= 1
            try await waitFor("the daemon's gallery dropped \(step.student)") { await embeddings() == expected }
            try await waitFor("no byte of \(step.student)'s data left after \(step.command.joined(separator: " "))") {
                let bytes = fileBytes()
                return needles.allSatisfy { bytes.range(of: $0) == nil }
            }
        }
        XCTAssertTrue(daemon.isRunning, "the daemon served throughout")
        kill(daemon.processIdentifier, SIGTERM)
        daemon.waitUntilExit()
    }

    /// Runs the command to its end; its exit status and everything it printed.
    static func run(_ exe: String, _ args: [String]) throws -> (Int32, String) {
        let pipe = Pipe()
        let p = try launch(exe, args, output: pipe)
        let out = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: out, as: UTF8.self))
    }

    /// Starts the command with the checkout's models; stdout and stderr go to `output` when given.
    static func launch(_ exe: String, _ args: [String], output: Pipe? = nil) throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: exe)
        p.arguments = args
        var env = ProcessInfo.processInfo.environment
        env["ATTENDANCE_MODELS"] = SourceTree.root + "/Models"
        p.environment = env
        if let output {
            p.standardOutput = output
            p.standardError = output
        }
        try p.run()
        return p
    }
}
