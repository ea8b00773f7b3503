import Attendance
import AttendanceCore
import AttendancePostgres
import AttendanceTesting
import FaceEngine
import Foundation
import Logging
import PostgresNIO
import XCTest

// The gallery from the school's server (#17 point 2) and erasure everywhere (point 5), against a real PostgreSQL:
// each gate matches against the school's sealed enrolments, kept in its own SQLite store, refreshed by
// LISTEN/NOTIFY; an erasure on the server removes the student from every gate's copy.

/// A 128-float descriptor, different for each seed (the distance between two seeds is about 0.9).
func descriptor(_ seed: Int) -> [Float] {
    var g = SplitMix64(seed: UInt64(seed) &+ 7)
    return (0..<128).map { _ in Float.random(in: -0.1...0.1, using: &g) }
}

/// A box whose students (`GateJournal`) each have `faces` enrolments, copied to `db` as the school's server.
func schoolOnServer(_ db: TestDatabase, students: Int, faces: Int = 2) async throws -> GateJournal {
    let office = try GateJournal(students: students)
    for i in 0..<students {
        try office.store.enrolments.add(
            student: GateJournal.code(i), (0..<faces).map { (descriptor(i * 10 + $0), nil, "test") })
    }
    _ = try await SchoolCopy.run(from: office.store, to: db.owner)
    return office
}

/// A gate box holding the school's key, following the server's gallery as `attendance serve` does.
final class FollowingGate {
    let box: GateJournal
    let faces: EnrolledFaces
    let task: Task<Void, Never>

    init(key: Data, db: TestDatabase) throws {
        box = try GateJournal(students: 0, key: key)
        let faces = try EnrolledFaces(store: box.store)
        try faces.reload()
        self.faces = faces
        // As `attendance serve` composes it: the cameras' gallery reloads as soon as the copy changed.
        let sync = SchoolGallerySync(store: box.store, connector: db.gate, reloading: faces, logger: quietLogger)
        task = Task { try? await sync.run() }
    }

    deinit { task.cancel() }

    var embeddings: Int { faces.current().snapshot.count }

    func recognises(_ student: String, _ d: [Float]) throws -> Bool {
        guard let m = try faces.current().best(d) else { return false }
        return m.student == student && m.distance < 0.01
    }
}

/// The bytes of a store's database files (the file, its write-ahead log, its shared memory).
func databaseBytes(_ store: AttendanceStore) -> Data {
    var all = Data()
    for p in [store.path, store.path + "-wal", store.path + "-shm"] {
        all.append(FileManager.default.contents(atPath: p) ?? Data())
    }
    return all
}

final class SchoolGalleryTests: XCTestCase {
    func testAGateMatchesAgainstTheSchoolsGalleryAndKeepsItWithTheServerDown() async throws {
        let db = try await freshDatabase()
        let office = try await schoolOnServer(db, students: 3)
        let gate = try FollowingGate(key: office.keyBytes, db: db)
        try await eventually("the gate has the school's six faces") { gate.embeddings == 6 }
        for i in 0..<3 {
            XCTAssertTrue(try gate.recognises(GateJournal.code(i), descriptor(i * 10 + 1)), "student \(i)")
        }
        assertEqual(try gate.box.store.roster.students().count, 3)

        // The cache holds the server's sealed rows as they are, never an embedding in clear.
        let onServer = try await db.strings(
            "SELECT translate(encode(sealed_embedding, 'base64'), E'\\n', '') FROM enrolment ORDER BY id")
        let copy = try gate.box.store.copyTables(["enrolment"])[0]
        let rows = try XCTUnwrap(try JSONSerialization.jsonObject(with: copy.json) as? [[String: Any]])
        assertEqual(
            rows.sorted { ($0["id"] as! NSNumber).int64Value < ($1["id"] as! NSNumber).int64Value }.map {
                $0["sealed_embedding"] as! String
            },
            onServer)
        let bytes = databaseBytes(gate.box.store)
        let plain = descriptor(1)[0..<3].reduce(into: Data()) { d, f in
            withUnsafeBytes(of: f.bitPattern.littleEndian) { d.append(contentsOf: $0) }
        }
        XCTAssertNil(bytes.range(of: plain), "no embedding in clear in the gate's files")

        // A new enrolment from another box reaches this gate; so does a consent revoked on the server.
        let newFace = descriptor(99)
        try await db.gate.withConnection { c in
            try await SchoolGallery.enrol(
                student: GateJournal.code(2), [(newFace, nil, "other box")], store: office.store, on: c)
        }
        try await eventually("the new face is matched at the gate") { try gate.recognises(GateJournal.code(2), newFace) }
        try await db.owner.withConnection { c in
            try await c.query(
                "UPDATE consent SET revoked_at = '2026-12-03T01:00:00.000Z', revoked_by = 'test' WHERE student_code = \(GateJournal.code(0))",
                logger: quietLogger)
        }
        try await eventually("the revoked student is no longer matched") {
            try !gate.recognises(GateJournal.code(0), descriptor(1))
        }
        assertEqual(gate.embeddings, 5)
        let audit = try await db.strings(
            "SELECT subject || ' ' || detail FROM audit_log WHERE action = 'enrol' ORDER BY id DESC LIMIT 1")
        XCTAssertTrue(audit.first?.hasSuffix("embeddings added=1; total=3") == true, "\(audit)")
        XCTAssertTrue(audit.first?.hasPrefix("S-") == true, "the server's audit names the student by an alias: \(audit)")

        // A restart with the server down: the gate's own copy still recognises everyone it recognised.
        gate.task.cancel()
        let path = gate.box.store.path
        var config = AttendanceConfig()
        config.school.code = "79000001"
        config.database.path = path
        let reopened = try AttendanceStore.open(config: config)
        let down = PostgresConnector(
            url: try PostgresURL(parsing: "postgresql://attendance_gate@127.0.0.1:\(try freePort())/\(db.name)"),
            password: "x", tls: .disable)
        do {
            try await SchoolGallerySync.refreshOnce(store: reopened, connector: down)
            XCTFail("the server is down")
        } catch let p as PostgresProblem {
            assertEqual(p.kind, .unreachable)
        }
        let faces = try EnrolledFaces(store: reopened)
        try faces.reload()
        assertEqual(faces.current().snapshot.count, 5)
        assertEqual(try faces.current().best(newFace)?.student, GateJournal.code(2))
    }

    /// Every box names a student by the school's pseudonym key (the first box's, on the server), not one of its own: an
    /// erasure made on one box is recognised by a class list imported on another, which refuses the erased student's
    /// old consent.
    func testEveryBoxNamesAStudentWithTheSchoolsPseudonymKey() async throws {
        let db = try await freshDatabase()
        let office = try await schoolOnServer(db, students: 3)
        let (a, b) = (try GateJournal(students: 0, key: office.keyBytes), try GateJournal(students: 0, key: office.keyBytes))
        let code = GateJournal.code(1)
        let school = office.store.pseudonym(of: code)
        XCTAssertNotEqual(a.store.pseudonym(of: code), school, "each box made its own at first start")
        for g in [a, b] { try await SchoolGallerySync.refreshOnce(store: g.store, connector: db.gate) }
        assertEqual([a.store.pseudonym(of: code), b.store.pseudonym(of: code)], [school, school])
        assertEqual(try AttendanceStore.open(config: a.store.config).pseudonym(of: code), school, "kept across a restart")

        let erased = try await SchoolServer(store: a.store, connector: db.gate).erase(student: code, reason: nil)
        assertEqual(erased.server.consents, 1)
        let roster = try RosterParser.parse(
            text: """
                Mã định danh,Họ và tên,Lớp,Ngày sinh,Người giám hộ,Quan hệ,Ngày đồng ý,Học sinh đồng ý
                \(code),Học Sinh 1,6A2,05/09/2013,Phụ huynh 1,mẹ,01/09/2025,Có
                """, file: "lai.csv", today: GateJournal.day)
        let r = try await SchoolServer(store: b.store, connector: db.gate).importRoster(roster, options: RosterImportOptions())
        assertEqual(r.added, [code])
        assertEqual(r.consentsRefusedErased, [code], "the erasure made on box A is recognised on box B")
        assertEqual(try await db.int("SELECT count(*) FROM consent WHERE student_code = '\(code)'"), 0)
    }

    func testAGateCatchesUpWithChangesMadeWhileItsConnectionWasLost() async throws {
        try requirePostgres()
        // A cluster of its own: this test stops it.
        let cluster = try PostgresCluster()
        defer { try? cluster.stop() }
        let db = try await freshDatabase(on: cluster)
        let office = try await schoolOnServer(db, students: 3)
        let gate = try FollowingGate(key: office.keyBytes, db: db)
        try await eventually("the gate has the school's faces") { gate.embeddings == 6 }

        // The server stops (the gate's LISTEN connection dies with it) and comes back; a change made then (no
        // gate was listening when it was made, on a fresh start of the server) still reaches the gate.
        try cluster.pause()
        try await Task.sleep(for: .milliseconds(500))
        XCTAssertTrue(try gate.recognises(GateJournal.code(1), descriptor(10)), "the copy serves meanwhile")
        try cluster.resume()
        let face = descriptor(77)
        try await db.gate.withConnection { c in
            try await SchoolGallery.enrol(
                student: GateJournal.code(1), [(face, nil, "office")], store: office.store, on: c)
        }
        try await eventually("the change made while the gate was reconnecting arrives") {
            try gate.recognises(GateJournal.code(1), face)
        }
    }

    func testAWrongKeyAnUncopiedBoxAndLocalChangesAreRefusedChangingNothing() async throws {
        let db = try await freshDatabase()
        let office = try await schoolOnServer(db, students: 3)

        // A box with a key of its own: the school's faces would not open there.
        let stranger = try GateJournal(students: 0)
        do {
            try await SchoolGallerySync.refreshOnce(store: stranger.store, connector: db.gate)
            XCTFail("another key")
        } catch let p as PostgresProblem {
            XCTAssertTrue(p.description.contains("is not the school's"), p.description)
        }
        assertEqual(try stranger.store.roster.students(activeOnly: false).count, 0, "nothing copied")
        do {
            try await db.gate.withConnection { c in
                try await SchoolGallery.enrol(
                    student: GateJournal.code(0), [(descriptor(5), nil, nil)], store: stranger.store,
                    on: c)
            }
            XCTFail("another key")
        } catch let p as PostgresProblem {
            XCTAssertTrue(p.description.contains("nothing was enrolled"), p.description)
        }

        // A box whose own students were never copied to the server: its roster is not deleted.
        let island = try GateJournal(students: 5, key: office.keyBytes)
        do {
            try await SchoolGallerySync.refreshOnce(store: island.store, connector: db.gate)
            XCTFail("students the server lacks")
        } catch let e as StoreError {
            XCTAssertTrue(e.description.contains("2 student(s) the school's server does not have"), e.description)
        }
        assertEqual(try island.store.roster.students().count, 5)
        assertEqual(try island.store.schoolGallery.serverVersion(), nil)

        // The server's own rules: no consent, no enrolment; nothing written.
        try await db.owner.withConnection { c in
            try await c.query("DELETE FROM consent WHERE student_code = \(GateJournal.code(1))", logger: quietLogger)
        }
        do {
            try await db.gate.withConnection { c in
                try await SchoolGallery.enrol(
                    student: GateJournal.code(1), [(descriptor(6), nil, nil)], store: office.store,
                    on: c)
            }
            XCTFail("no consent")
        } catch let e as StoreError {
            assertEqual(e, .noConsent(GateJournal.code(1)))
        }
        assertEqual(try await db.int("SELECT count(*) FROM enrolment"), 6)

        // A box in postgresql mode refuses local changes to the gallery (they would vanish at the next refresh).
        let dir = NSTemporaryDirectory() + "pg-box-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: dir) }
        var config = AttendanceConfig()
        config.database.path = dir + "/gate.sqlite"
        config.database.backend = .postgresql
        let box = try AttendanceStore.open(config: config)
        XCTAssertThrowsError(try box.enrolments.add(student: "x", [(descriptor(1), nil, nil)])) {
            assertEqual($0 as? StoreError, .invalid(AttendanceStore.sharedGalleryRefusal))
        }
        XCTAssertThrowsError(try box.retention.erase(student: "x")) {
            XCTAssertTrue("\($0)".contains("máy chủ của trường"), "\($0)")
        }
    }

    func testAnErasureOnTheServerReachesEveryGateAndLeavesNoBytes() async throws {
        let db = try await freshDatabase()
        let office = try await schoolOnServer(db, students: 3)
        let front = try FollowingGate(key: office.keyBytes, db: db)
        let back = try FollowingGate(key: office.keyBytes, db: db)
        try await eventually("both gates have the school's faces") { front.embeddings == 6 && back.embeddings == 6 }
        // The student was seen at both gates today (one event each in their journals).
        for gate in [front, back] { try gate.box.record(1, camera: "cam") }
        let code = GateJournal.code(1)
        let name = "Học Sinh 1"
        for gate in [front, back] {
            XCTAssertNotNil(databaseBytes(gate.box.store).range(of: Data(name.utf8)), "the scan does see the name")
        }

        let pseudonym = office.store.pseudonym(of: code)
        let erased = try await db.gate.withConnection { c in
            try await SchoolGallery.erase(student: code, pseudonym: pseudonym, reason: "parent's request", on: c)
        }
        assertEqual(erased.enrolments, 2)
        assertEqual(erased.consents, 1)
        for table in ["student"] {
            assertEqual(try await db.int("SELECT count(*) FROM \(table) WHERE code = '\(code)'"), 0)
        }
        for table in ["consent", "enrolment", "attendance_event", "excuse", "student_alias", "gate_sighting"] {
            assertEqual(try await db.int("SELECT count(*) FROM \(table) WHERE student_code = '\(code)'"), 0, table)
        }
        assertEqual(try await db.int("SELECT count(*) FROM outbox WHERE payload LIKE '%\(code)%'"), 0)
        assertEqual(try await db.strings("SELECT pseudonym FROM erased_student"), [pseudonym])
        assertEqual(
            try await db.strings("SELECT subject FROM audit_log WHERE action = 'student.erase'"), [pseudonym],
            "one audit entry, by the keyed hash")
        assertEqual(
            try await db.int(
                "SELECT count(*) FROM audit_log WHERE coalesce(subject, '') || coalesce(detail, '') LIKE '%\(code)%'"),
            0)

        for gate in [front, back] {
            try await eventually("the gate's copy erased the student") {
                try gate.box.store.roster.student(code: code) == nil && gate.embeddings == 4
            }
            XCTAssertFalse(try gate.recognises(code, descriptor(10)))
            assertEqual(try gate.box.store.events.unsharedCount(), 0, "the student's journal went with them")
            let entry = try XCTUnwrap(try gate.box.store.auditLog.entries().last { $0.action == "student.erase" })
            assertEqual(entry.subject, gate.box.store.pseudonym(of: code))
            // The gate's own erasure rules: secure_delete and the write-ahead log folded back.
            let bytes = databaseBytes(gate.box.store)
            XCTAssertNil(bytes.range(of: Data(name.utf8)), "no byte of the name is left")
            XCTAssertNil(bytes.range(of: Data(code.utf8)), "no byte of the code is left")
        }
        // The others are untouched.
        XCTAssertTrue(try front.recognises(GateJournal.code(0), descriptor(0)))
        XCTAssertTrue(try back.recognises(GateJournal.code(2), descriptor(21)))
    }

    func testASightingApprovedOnABoxIsEnrolledOnTheServerFirst() async throws {
        let db = try await freshDatabase()
        let office = try await schoolOnServer(db, students: 3, faces: 1)
        let box = try GateJournal(students: 0, key: office.keyBytes)
        try await SchoolGallerySync.refreshOnce(store: box.store, connector: db.gate)
        // The gate saw student 0 confidently (a face close to her enrolled one) and kept the sighting for a teacher.
        var near = descriptor(0)
        near[0] += 0.01
        try box.store.enrolments.proposeSighting(
            student: GateJournal.code(0), embedding: near, distance: 0.2, margin: 0.5, camera: "cong-sau", at: Date())
        let id = try XCTUnwrap(try box.store.enrolments.pendingSightings().first?.id)

        // The server cannot be reached: nothing is enrolled, the sighting still waits.
        let nowhere = PostgresURL(user: db.gate.url.user, host: "127.0.0.1", port: try freePort(), database: db.name)
        let down = SchoolServer(
            store: box.store,
            connector: PostgresConnector(url: nowhere, password: try secret(db.cluster.gatePasswordFile), tls: .disable))
        do {
            _ = try await down.approveSighting(Enroller(store: box.store), id: id, force: false)
            XCTFail("no server")
        } catch let e as StoreError {
            XCTAssertTrue(e.description.contains("not stored on the school's server"), e.description)
            XCTAssertTrue(e.description.contains("nothing was enrolled"), e.description)
        }
        assertEqual(try await db.int("SELECT count(*) FROM enrolment"), 3)
        assertEqual(try box.store.enrolments.pendingSightings().map(\.id), [id])

        let school = SchoolServer(store: box.store, connector: db.gate)
        assertEqual(try await school.approveSighting(Enroller(store: box.store), id: id, force: false), nil)
        assertEqual(
            try await db.strings("SELECT source FROM enrolment WHERE student_code = '\(GateJournal.code(0))' ORDER BY id"),
            ["test", "gate:cong-sau"], "on the server")
        assertEqual(try box.store.enrolments.list(student: GateJournal.code(0)).count, 2, "in the box's copy")
        assertEqual(try box.store.enrolments.pendingSightings(), [])
        assertEqual(try box.store.auditLog.entries().last?.action, "enrol.sighting")
        assertEqual(
            try await db.strings("SELECT detail FROM audit_log WHERE action = 'enrol' ORDER BY id DESC LIMIT 1"),
            ["embeddings added=1; total=2"])
    }

    func testAJournalHoldingAnErasedStudentWaitsForTheGatesCopyThenSendsTheRest() async throws {
        let db = try await freshDatabase()
        let office = try await schoolOnServer(db, students: 3)
        let box = try GateJournal(students: 0, key: office.keyBytes)
        try await SchoolGallerySync.refreshOnce(store: box.store, connector: db.gate)
        // Seen at this gate while it was cut off; erased at the office meanwhile.
        for i in 0..<3 { try box.record(i, camera: "gate-1") }
        _ = try await db.gate.withConnection { c in
            try await SchoolGallery.erase(
                student: GateJournal.code(1), pseudonym: office.store.pseudonym(of: GateJournal.code(1)), reason: nil,
                on: c)
        }
        var sender = JournalSender(store: box.store, connector: db.gate, gate: "gate-1", logger: quietLogger)
        sender.retryDelay = .milliseconds(50)
        sender.maxRetryDelay = .milliseconds(200)
        let sending = Task { try await sender.run() }
        try await Task.sleep(for: .milliseconds(500))
        assertEqual(try box.store.events.unsharedCount(), 3, "the server refuses the batch: the student is gone")
        assertEqual(try await db.int("SELECT count(*) FROM attendance_event"), 0, "nothing half-written")

        try await SchoolGallerySync.refreshOnce(store: box.store, connector: db.gate)
        try await eventually("the rest of the journal sent") { try box.store.events.unsharedCount() == 0 }
        sending.cancel()
        try await sending.value
        assertEqual(
            try await db.strings("SELECT student_code FROM attendance_event ORDER BY student_code"),
            [GateJournal.code(0), GateJournal.code(2)])
    }
}

/// The time for an enrolment made on another box to be matched at a gate: the other box seals and writes it to the
/// server; the server's trigger notifies; the gate's SchoolGallerySync fetches the new sealed row, writes its copy in
/// one transaction, and its EnrolledFaces reloads. Printed, never asserted on (a shared 2-core machine).
/// Log lines kept for a test to read (a `LogHandler`).
final class LogLines: LogHandler, @unchecked Sendable {
    private let lock = NSLock()
    private var kept: [String] = []
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .info
    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }
    func log(event: LogEvent) { lock.withLock { kept.append("\(event.level) \(event.message)") } }
    var lines: [String] { lock.withLock { kept } }
    var logger: Logger { Logger(label: "test.lines") { _ in self } }
}

final class SchoolGalleryStallTests: XCTestCase {
    /// A server that takes the refresh's query and never answers it (here: a lock held on the table it reads, in a
    /// transaction left open): the refresh gives up at its deadline with a clear line in the log, the gate keeps
    /// matching its copy, and it catches up once the server answers again.
    func testAStalledServerDoesNotHoldTheRefresh() async throws {
        let db = try await freshDatabase()
        let office = try await schoolOnServer(db, students: 3)
        let gate = try GateJournal(students: 0, key: office.keyBytes)
        try await SchoolGallerySync.refreshOnce(store: gate.store, connector: db.gate)
        let faces = try EnrolledFaces(store: gate.store)
        try faces.reload()
        assertEqual(faces.current().snapshot.count, 6)

        let stall = try await db.owner.connect()
        try await stall.query("BEGIN", logger: quietLogger)
        try await stall.query("LOCK TABLE meta IN ACCESS EXCLUSIVE MODE", logger: quietLogger)
        await assertThrows(
            try await SchoolGallerySync.refreshOnce(store: gate.store, connector: db.gate, timeout: .milliseconds(300))
        ) { XCTAssertTrue("\($0)".contains("did not answer within"), "\($0)") }

        let log = LogLines()
        var sync = SchoolGallerySync(store: gate.store, connector: db.gate, reloading: faces, logger: log.logger)
        sync.refreshTimeout = .milliseconds(300)
        sync.retryDelay = .milliseconds(50)
        sync.maxRetryDelay = .milliseconds(200)
        let following = Task { try? await sync.run() }
        defer { following.cancel() }
        try await eventually("the stalled refresh logged") {
            log.lines.contains {
                $0.hasPrefix("warning") && $0.contains("did not answer within") && $0.contains("matches against its last copy")
            }
        }
        assertEqual(log.lines.filter { $0.contains("did not answer within") }.count, 1, "logged once, not at every retry")
        assertEqual(faces.current().snapshot.count, 6, "the gate keeps matching its copy")

        // The server answers again: the next retry refreshes, and a change made there reaches the gate.
        try await stall.query("ROLLBACK", logger: quietLogger)
        try await stall.close()
        try await eventually("back") { log.lines.contains { $0.contains("the school's database is back") } }
        _ = try await db.gate.withConnection { c in
            try await SchoolGallery.erase(
                student: GateJournal.code(2), pseudonym: office.store.pseudonym(of: GateJournal.code(2)), reason: nil, on: c)
        }
        try await eventually("the erasure reaches the gate") { faces.current().snapshot.count == 4 }
    }
}

final class GalleryFiguresEndToEndTests: XCTestCase {
    func testTimeFromAnEnrolmentOnAnotherBoxToAMatchAtTheGate() async throws {
        try await measure(students: 15, faces: 1, rounds: 15)
    }

    /// The same at the size of the school: 1,500 students with three faces each.
    func testTimeFromAnEnrolmentToAMatchInASchoolOf1500() async throws {
        try await measure(students: 1500, faces: 3, rounds: 10)
    }

    func measure(students: Int, faces: Int, rounds: Int) async throws {
        let db = try await freshDatabase()
        let office = try await schoolOnServer(db, students: students, faces: faces)
        let gate = try FollowingGate(key: office.keyBytes, db: db)
        try await eventually("the gate has the school's faces", within: 300) { gate.embeddings == students * faces }
        var times: [Double] = []
        for i in 0..<rounds {
            let face = descriptor(100_000 + i)
            let started = ContinuousClock.now
            try await db.gate.withConnection { c in
                try await SchoolGallery.enrol(
                    student: GateJournal.code(i), [(face, nil, "other box")], store: office.store,
                    on: c)
            }
            let deadline = started + .seconds(60)
            while try !gate.recognises(GateJournal.code(i), face), ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(1))
            }
            XCTAssertTrue(try gate.recognises(GateJournal.code(i), face))
            let elapsed = ContinuousClock.now - started
            times.append(Double(elapsed.components.attoseconds) / 1e15 + Double(elapsed.components.seconds) * 1000)
        }
        // Where the time goes: the daemon's own reload (open every sealed row, rebuild the index and each student's
        // nearest other), and a refresh from the server that finds nothing new (one consistent read of the roster).
        let reloadStarted = ContinuousClock.now
        try gate.faces.reload()
        let reload = ContinuousClock.now - reloadStarted
        let refreshStarted = ContinuousClock.now
        try await db.gate.withConnection { c in _ = try await SchoolGallery.refresh(gate.box.store, on: c, force: true) }
        let refresh = ContinuousClock.now - refreshStarted
        print("FIGURE of which: EnrolledFaces.reload \(reload), a forced refresh with nothing new \(refresh)")
        let sorted = times.sorted()
        func p(_ q: Double) -> Double { sorted[min(sorted.count - 1, Int(Double(sorted.count) * q))] }
        print(
            String(
                format: "FIGURE enrolment on another box -> matched at the gate: n=%d median %.1f ms, p90 %.1f ms, "
                    + "min %.1f ms, max %.1f ms (%d students, %d faces before)",
                rounds, p(0.5), p(0.9), sorted.first!, sorted.last!, students, students * faces))
    }
}

/// What a staff member does on a gate box in postgresql mode, through the real `attendance` executable: an enrolment,
/// an erasure, a roster import, a consent recorded or withdrawn and an unenrolment go to the school's server first
/// (and into this box's copy); with the server unreachable nothing is enrolled or imported.
final class GateBoxChangesEndToEndTests: XCTestCase {
    struct Run {
        var status: Int32
        var output: String
    }

    func attendance(_ arguments: [String], exe: String) throws -> Run {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: exe)
        p.arguments = arguments
        p.currentDirectoryURL = URL(fileURLWithPath: SchoolCopyEndToEndTests.root)
        let out = Pipe()
        p.standardOutput = out
        p.standardError = out
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return Run(status: p.terminationStatus, output: String(decoding: data, as: UTF8.self))
    }

    /// Another box in postgresql mode: the school's key copied by the admin, an empty database of its own; its config
    /// file's path.
    func boxConfig(_ name: String, url: String, dir: String, key: String, db: TestDatabase) throws -> String {
        let boxDir = dir + "/" + name
        try FileManager.default.createDirectory(atPath: boxDir, withIntermediateDirectories: true)
        _ = FileManager.default.createFile(
            atPath: boxDir + "/gate.sqlite.key", contents: FileManager.default.contents(atPath: key),
            attributes: [.posixPermissions: 0o600])
        let toml = """
            [school]
            code = "79-DEMO"

            [database]
            backend = "postgresql"
            path = "\(boxDir)/gate.sqlite"
            url = "\(url)"
            password_file = "\(db.cluster.gatePasswordFile)"
            tls = "disable"

            [recognition]
            liveness = "off"
            """
        try toml.write(toFile: boxDir + "/gate.toml", atomically: true, encoding: .utf8)
        return boxDir + "/gate.toml"
    }

    /// Corrections, cancellations, excuses and the review queue on a box: on the school's server first (where another
    /// gate's record is), then the box's journal; refused, changing nothing, while the server cannot be reached.
    func testCorrectionsExcusesAndReviewsOnABoxGoToTheServerFirst() async throws {
        let (samples, models, exe) = try gateBoxFixtures(needing: "obama3.jpg")
        let db = try await freshDatabase(migrate: false)
        let dir = NSTemporaryDirectory() + "gate-box-\(UUID().uuidString)"
        addTeardownBlock { try? FileManager.default.removeItem(atPath: dir) }
        let day = LocalDate(year: 2026, month: 11, day: 23)
        let demo = try GateDemo.prepare(directory: dir + "/office", samples: samples, models: models, day: day)
        _ = try await SchoolCopy.run(from: try AttendanceStore.open(config: demo.config), to: db.owner)
        let key = demo.config.database.resolvedKeyFile
        let back = try boxConfig("back", url: "\(db.gate.url)", dir: dir, key: key, db: db)
        let down = try boxConfig(
            "down", url: "postgresql://attendance_gate@127.0.0.1:\(try freePort())/\(db.name)", dir: dir, key: key, db: db)
        let (an, binh, cuong) = ("7900000001", "7900000002", "7900000003")

        // The front gate recorded An and held Bình's check-in (a print?): its journal sent both to the server.
        let frontConfig = try AttendanceConfig.load(
            path: try boxConfig("front", url: "\(db.gate.url)", dir: dir, key: key, db: db))
        let front = try AttendanceStore.open(config: frontConfig)
        try await SchoolGallerySync.refreshOnce(store: front, connector: db.gate)
        func seen(_ code: String) -> NewAttendanceEvent {
            NewAttendanceEvent(
                studentCode: code, schoolDay: day, session: "morning", kind: .checkIn, status: .present,
                occurredAt: day.at(LocalTime(hour: 7, minute: 5), in: frontConfig.school.timeZone), camera: "cong-truoc",
                distance: 0.3)
        }
        assertEqual(try front.events.record(seen(an)), true)
        assertEqual(try front.reviews.hold(seen(binh), liveness: 0.08, reason: .spoof), .held(id: 1))
        let sender = JournalSender(store: front, connector: db.gate, gate: "front", logger: quietLogger)
        _ = try await db.gate.withConnection { c in try await sender.sendBatch(on: c) }
        let mark = try await db.int("SELECT max(id) FROM audit_log")
        var local = AttendanceConfig()
        local.database.path = dir + "/back/gate.sqlite"

        // A correction on the back box: the front gate's record changes on the server (a higher version), and the
        // back box's journal takes it.
        let late = try attendance(
            ["correct", an, "--date", "\(day)", "--status", "late", "--reason", "đến lúc 07:20", "--config", back], exe: exe)
        assertEqual(late.status, 0, late.output)
        XCTAssertTrue(late.output.contains("present -> late (UPDATE v2"), late.output)
        assertEqual(
            try await db.strings("SELECT status || ' v' || version FROM attendance_event WHERE student_code = '\(an)'"),
            ["late v2"])
        let journal = try AttendanceStore.open(config: local)
        assertEqual(try journal.events.recorded(on: day).map { "\($0.status) v\($0.version)" }, ["late v2"])
        assertEqual(try journal.events.unsharedCount(), 0, "the box sends nothing back")

        // The server cannot be reached: refused, nothing changed anywhere.
        for arguments in [
            ["correct", an, "--date", "\(day)", "--cancel", "--reason", "nhầm", "--config", down],
            ["excuse", cuong, "--date", "\(day)", "--reason", "Ốm", "--config", down],
            ["review", "accept", "1", "--config", down],
        ] {
            let refused = try attendance(arguments, exe: exe)
            assertEqual(refused.status, 1, refused.output)
            XCTAssertTrue(refused.output.contains("the school's server cannot be reached"), refused.output)
        }
        // Bad input: a clear error, nothing changed.
        let unknown = try attendance(
            ["correct", "7999999999", "--date", "\(day)", "--status", "present", "--reason", "x", "--config", back], exe: exe)
        assertEqual(unknown.status, 1, unknown.output)
        XCTAssertTrue(unknown.output.contains("7999999999"), unknown.output)
        let noReason = try attendance(["excuse", cuong, "--date", "\(day)", "--reason", " ", "--config", back], exe: exe)
        assertEqual(noReason.status, 1, noReason.output)
        XCTAssertTrue(noReason.output.contains("an excuse needs a reason"), noReason.output)
        assertEqual(try await db.int("SELECT max(id) FROM audit_log"), mark + 1, "only the correction audited so far")

        // An excuse: the day's ended sessions excused on the server, the excuse in the box's copy too.
        let excused = try attendance(["excuse", cuong, "--date", "\(day)", "--reason", "Ốm", "--config", back], exe: exe)
        assertEqual(excused.status, 0, excused.output)
        XCTAssertTrue(excused.output.contains("excused \(cuong) on \(day)"), excused.output)
        assertEqual(try await db.int("SELECT count(*) FROM excuse WHERE student_code = '\(cuong)'"), 1)
        assertEqual(
            try await db.int("SELECT count(*) FROM attendance_event WHERE student_code = '\(cuong)' AND status = 'excused'"),
            excused.output.components(separatedBy: "-> excused").count - 1)
        assertEqual(try journal.events.excuses(day: day).map(\.student), [cuong])

        // The review queue is the school's: the front gate's hold, decided on the back box.
        let queue = try attendance(["review", "--config", back], exe: exe)
        assertEqual(queue.status, 0, queue.output)
        XCTAssertTrue(queue.output.contains(binh) && queue.output.contains("spoof?"), queue.output)
        let accepted = try attendance(["review", "accept", "1", "--config", back], exe: exe)
        assertEqual(accepted.status, 0, accepted.output)
        XCTAssertTrue(accepted.output.contains("1: recorded"), accepted.output)
        let twice = try attendance(["review", "reject", "1", "--config", back], exe: exe)
        assertEqual(twice.status, 1, twice.output)
        XCTAssertTrue(twice.output.contains("was already accepted"), twice.output)
        assertEqual(
            try await db.strings("SELECT status FROM attendance_event WHERE student_code = '\(binh)'"), ["present"],
            "recorded on the server")
        assertEqual(try journal.events.recorded(on: day).map(\.studentCode).filter { $0 == binh }, [binh])

        // The cancellation of a wrong recognition, then every change audited on the server, by who made it.
        let cancelled = try attendance(
            ["correct", an, "--date", "\(day)", "--cancel", "--reason", "nhận nhầm", "--config", back], exe: exe)
        assertEqual(cancelled.status, 0, cancelled.output)
        XCTAssertTrue(cancelled.output.contains("CANCEL v3"), cancelled.output)
        assertEqual(
            try await db.strings("SELECT action FROM audit_log WHERE id > \(mark) ORDER BY id"),
            ["attendance.correct", "attendance.excuse", "review.accept", "attendance.cancel"])
        assertEqual(
            try await db.strings("SELECT DISTINCT os_user FROM audit_log WHERE id > \(mark)"), [AttendanceStore.actor])
        let record = EventLedger.recordID(school: "79-DEMO", student: an, day: day, session: "morning", kind: .checkIn)
        assertEqual(
            try await db.strings(
                "SELECT event_kind || ' v' || version FROM outbox WHERE record_id = '\(record)' ORDER BY version"),
            ["NEW v1", "UPDATE v2", "CANCEL v3"], "queued for the sector on the server")

        // An export on a third box, which recorded nothing itself: the school's records, read from the server.
        let third = try boxConfig("third", url: "\(db.gate.url)", dir: dir, key: key, db: db)
        let csvFile = dir + "/diem-danh.csv"
        let exported = try attendance(
            ["export", "daily", "--date", "\(day)", "--output", csvFile, "--config", third], exe: exe)
        assertEqual(exported.status, 0, exported.output)
        let rows = try String(contentsOfFile: csvFile, encoding: .utf8).split(separator: "\n")
        XCTAssertTrue(rows.contains { $0.contains(binh) && $0.contains("Có mặt") }, "\(rows)")
        XCTAssertTrue(rows.contains { $0.contains(cuong) && $0.contains("Vắng có phép") }, "\(rows)")
        let offline = try attendance(
            ["export", "daily", "--date", "\(day)", "--output", dir + "/offline.csv", "--config", down], exe: exe)
        assertEqual(offline.status, 1, offline.output)
        XCTAssertTrue(offline.output.contains("the school's server cannot be reached"), offline.output)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/offline.csv"), "no export from one box's copy")

        // Every face discarded from one box (a lost key): refused on a box of a school on PostgreSQL.
        let faces = try await db.int("SELECT count(*) FROM enrolment")
        let all = try attendance(["unenrol", "--all", "--yes", "--config", back], exe: exe)
        assertEqual(all.status, 1, all.output)
        XCTAssertTrue(all.output.contains("Nothing was deleted"), all.output)
        assertEqual(try await db.int("SELECT count(*) FROM enrolment"), faces)
        XCTAssertGreaterThan(try AttendanceStore.open(config: local).enrolments.counts().values.reduce(0, +), 0)
    }

    func testEnrolmentAndErasureOnABoxGoToTheServerFirst() async throws {
        let (samples, models, exe) = try gateBoxFixtures(needing: "obama3.jpg")
        let db = try await freshDatabase(migrate: false)
        let dir = NSTemporaryDirectory() + "gate-box-\(UUID().uuidString)"
        addTeardownBlock { try? FileManager.default.removeItem(atPath: dir) }
        let demo = try GateDemo.prepare(
            directory: dir + "/office", samples: samples, models: models, day: LocalDate(year: 2026, month: 11, day: 23))
        _ = try await SchoolCopy.run(from: try AttendanceStore.open(config: demo.config), to: db.owner)

        func box(_ name: String, url: String) throws -> String {
            try boxConfig(name, url: url, dir: dir, key: demo.config.database.resolvedKeyFile, db: db)
        }
        let back = try box("back", url: "\(db.gate.url)")
        let an = "7900000001"

        let enrolled = try attendance(["enrol", an, "--photo", samples + "/obama3.jpg", "--config", back], exe: exe)
        assertEqual(enrolled.status, 0, enrolled.output)
        XCTAssertTrue(enrolled.output.contains("accepted"), enrolled.output)
        assertEqual(try await db.int("SELECT count(*) FROM enrolment WHERE student_code = '\(an)'"), 2, "on the server")
        var local = AttendanceConfig()
        local.database.path = dir + "/back/gate.sqlite"
        assertEqual(try AttendanceStore.open(config: local).enrolments.list(student: an).count, 2, "in the box's copy")

        let noConsent = try attendance(["enrol", "7900000002", "--photo", samples + "/obama3.jpg", "--config", back], exe: exe)
        assertEqual(noConsent.status, 1)
        XCTAssertTrue(noConsent.output.contains("no guardian consent"), noConsent.output)

        let consent = try attendance(
            [
                "consent", "record", "7900000002", "--guardian", "Trần Văn Hùng", "--relation", "father", "--date", "2026-11-20",
                "--child-agrees", "--config", back,
            ], exe: exe)
        assertEqual(consent.status, 0, consent.output)
        assertEqual(try await db.int("SELECT count(*) FROM consent WHERE student_code = '7900000002'"), 1, "on the server")
        XCTAssertNotNil(try AttendanceStore.open(config: local).consent.active(student: "7900000002"), "in the box's copy")

        let down = try box("down", url: "postgresql://attendance_gate@127.0.0.1:\(try freePort())/\(db.name)")
        let refused = try attendance(["enrol", an, "--photo", samples + "/obama3.jpg", "--config", down], exe: exe)
        assertEqual(refused.status, 1)
        XCTAssertTrue(refused.output.contains("the school's server cannot be reached"), refused.output)
        XCTAssertTrue(refused.output.contains("nothing was enrolled"), refused.output)
        assertEqual(try await db.int("SELECT count(*) FROM enrolment"), 3)

        let erased = try attendance(["student", "erase", "7900000003", "--yes", "--config", back], exe: exe)
        assertEqual(erased.status, 0, erased.output)
        XCTAssertTrue(erased.output.contains("on the school's server"), erased.output)
        assertEqual(try await db.int("SELECT count(*) FROM student WHERE code = '7900000003'"), 0)
        assertEqual(try await db.int("SELECT count(*) FROM enrolment"), 2)
        XCTAssertNil(try AttendanceStore.open(config: local).roster.student(code: "7900000003"), "nor in the box's copy")

        // A class list imported on a box: on the server first (a new student, the one missing made inactive), then the
        // box's copy; with the server unreachable nothing is imported anywhere.
        let csv = dir + "/6a1.csv"
        let classList = """
            Mã định danh,Họ và tên,Lớp,Ngày sinh,Giới tính
            7900000001,Nguyễn Văn An,6A1,2014-03-12,Nam
            7900000004,Đỗ Thị Dung,6A1,2014-05-01,Nữ

            """
        try classList.write(toFile: csv, atomically: true, encoding: .utf8)
        let offline = try attendance(["roster", "import", csv, "--config", down], exe: exe)
        assertEqual(offline.status, 1, offline.output)
        XCTAssertTrue(offline.output.contains("the school's server cannot be reached"), offline.output)
        XCTAssertTrue(offline.output.contains("nothing was imported"), offline.output)
        assertEqual(try await db.int("SELECT count(*) FROM student WHERE code = '7900000004'"), 0)
        let dry = try attendance(["roster", "import", csv, "--dry-run", "--config", back], exe: exe)
        assertEqual(dry.status, 0, dry.output)
        XCTAssertTrue(dry.output.contains("added:       1") && dry.output.contains("Dry run: nothing was changed"), dry.output)
        assertEqual(try await db.int("SELECT count(*) FROM student WHERE code = '7900000004'"), 0, "a dry run on the server")
        let mark = try await db.int("SELECT max(id) FROM audit_log")
        let imported = try attendance(["roster", "import", csv, "--config", back], exe: exe)
        assertEqual(imported.status, 0, imported.output)
        XCTAssertTrue(imported.output.contains("added:       1"), imported.output)
        assertEqual(try await db.strings("SELECT code FROM student WHERE active ORDER BY code"), [an, "7900000004"])
        assertEqual(
            try AttendanceStore.open(config: local).roster.students().map(\.code), [an, "7900000004"], "the box's copy")

        // Consent withdrawn and faces removed on a box: on the server, then the copy.
        let revoked = try attendance(["consent", "revoke", "7900000002", "--reason", "thư", "--config", back], exe: exe)
        assertEqual(revoked.status, 0, revoked.output)
        assertEqual(try await db.int("SELECT count(*) FROM consent WHERE revoked_at IS NULL AND student_code = '7900000002'"), 0)
        let unenrolled = try attendance(["unenrol", an, "--config", back], exe: exe)
        assertEqual(unenrolled.status, 0, unenrolled.output)
        XCTAssertTrue(unenrolled.output.contains("2 enrolled faces"), unenrolled.output)
        assertEqual(try await db.int("SELECT count(*) FROM enrolment"), 0)
        assertEqual(try AttendanceStore.open(config: local).enrolments.list(student: an).count, 0, "nor in the box's copy")
        assertEqual(
            try await db.strings("SELECT action FROM audit_log WHERE id > \(mark) ORDER BY id"),
            ["roster.import", "consent.revoke", "unenrol"], "audited on the server")
    }
}
