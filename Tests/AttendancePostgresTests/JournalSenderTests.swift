import Attendance
import AttendanceCore
import AttendanceTesting
import Foundation
import Logging
import PostgresNIO
import XCTest

@testable import AttendancePostgres

/// Gates write to their SQLite journals; the journal sender moves the decisions to the school's PostgreSQL.
final class JournalSenderTests: XCTestCase {
    /// The school's server with its roster (copied from the office's database, as `attendance db migrate` does).
    func school(students: Int, on cluster: PostgresCluster? = nil) async throws -> (TestDatabase, GateJournal) {
        let db = try await freshDatabase(on: cluster)
        let office = try GateJournal(students: students)
        _ = try await SchoolCopy.run(from: office.store, to: db.owner)
        return (db, office)
    }

    func sender(_ gate: GateJournal, _ db: TestDatabase, name: String) -> JournalSender {
        var s = JournalSender(store: gate.store, connector: db.gate, gate: name, logger: quietLogger)
        s.pollInterval = .milliseconds(20)
        s.retryDelay = .milliseconds(50)
        s.maxRetryDelay = .milliseconds(400)
        return s
    }

    func testTwoGatesWithOverlappingStudentsGiveOneArrivalPerStudentPerSession() async throws {
        let (db, office) = try await school(students: 40)
        let front = try GateJournal(students: 40, key: office.keyBytes)
        let back = try GateJournal(students: 40, key: office.keyBytes)
        // The front gate sees students 0-29 arrive; the back gate 20-39 (20-29 pass both), and 0-9 leave by it.
        let t0 = Date()
        for i in 0..<30 { try front.record(i, camera: "front-1", at: t0.addingTimeInterval(Double(i))) }
        for i in 20..<40 { try back.record(i, camera: "back-1", at: t0.addingTimeInterval(Double(i) + 0.5)) }
        for i in 0..<10 { try back.record(i, kind: .checkOut, camera: "back-1", session: "morning") }

        let a = sender(front, db, name: "front")
        let b = sender(back, db, name: "back")
        let tasks = [Task { try await a.run() }, Task { try await b.run() }]
        try await eventually("both journals sent") {
            try front.store.events.unsharedCount() == 0 && back.store.events.unsharedCount() == 0
        }
        for t in tasks { t.cancel() }
        for t in tasks { try await t.value }

        assertEqual(try await db.int("SELECT count(*) FROM attendance_event WHERE kind = 'check_in'"), 40)
        assertEqual(
            try await db.int(
                "SELECT count(*) FROM (SELECT student_code FROM attendance_event WHERE kind = 'check_in' "
                    + "GROUP BY student_code, school_day, session HAVING count(*) > 1) d"), 0,
            "one arrival per student per session")
        assertEqual(try await db.int("SELECT count(*) FROM attendance_event WHERE kind = 'check_out'"), 10)
        assertEqual(
            try await db.int("SELECT count(DISTINCT student_code) FROM attendance_event WHERE kind = 'check_in'"), 40)
        // Each overlapping student's row came from one gate, and the school's outbox has one NEW per record.
        assertEqual(try await db.int("SELECT count(*) FROM outbox"), 50)
        assertEqual(try await db.int("SELECT count(*) FROM outbox o JOIN attendance_event e USING (record_id, version)"), 50)
        assertEqual(
            try await db.int("SELECT count(*) FROM attendance_event WHERE gate = 'front' AND kind = 'check_in'")
                + (try await db.int("SELECT count(*) FROM attendance_event WHERE gate = 'back' AND kind = 'check_in'")), 40)
        // The server's record id is the ledger's deterministic one.
        let expected = EventLedger.recordID(
            school: "79000001", student: GateJournal.code(25), day: GateJournal.day, session: "morning", kind: .checkIn)
        assertEqual(
            try await db.strings(
                "SELECT record_id FROM attendance_event WHERE student_code = '\(GateJournal.code(25))' AND kind = 'check_in'"),
            [expected])
        // Sending again changes nothing.
        let again = try await db.gate.withConnection { c in try await a.sendBatch(on: c) }
        assertEqual(again, 0)
    }

    func testAServerDownForTheMiddleOfABurstLosesNothingAndDuplicatesNothing() async throws {
        try requirePostgres()
        // A cluster of its own: this test stops it.
        let cluster = try PostgresCluster()
        defer { try? cluster.stop() }
        let (db, office) = try await school(students: 300, on: cluster)
        let gate = try GateJournal(students: 300, key: office.keyBytes)
        let s = sender(gate, db, name: "gate-1")
        let task = Task { try await s.run() }

        for i in 0..<100 { try gate.record(i, camera: "gate-1") }
        try await eventually("the first third on the server") { try await db.int("SELECT count(*) FROM attendance_event") == 100 }

        try cluster.pause()
        for i in 100..<200 { try gate.record(i, camera: "gate-1") }
        // The server is down: the gate kept recording, and all of the middle third waits in its journal.
        assertEqual(try gate.store.events.unsharedCount(), 100)
        try await Task.sleep(for: .milliseconds(300)) // the sender fails and retries meanwhile
        assertEqual(try gate.store.events.unsharedCount(), 100, "nothing is marked sent while the server is down")
        try cluster.resume()

        for i in 200..<300 { try gate.record(i, camera: "gate-1") }
        try await eventually("the journal empties") { try gate.store.events.unsharedCount() == 0 }
        task.cancel()
        try await task.value

        assertEqual(try await db.int("SELECT count(*) FROM attendance_event"), 300)
        assertEqual(try await db.int("SELECT count(DISTINCT student_code) FROM attendance_event"), 300)
        assertEqual(try await db.int("SELECT count(*) FROM outbox"), 300, "every record once in the school's outbox")
        assertEqual(try gate.store.events.unshared(limit: 10).count, 0)
    }

    func testAServerDownAtStartThenUpReceivesEverythingOnce() async throws {
        try requirePostgres()
        let cluster = try PostgresCluster()
        defer { try? cluster.stop() }
        let (db, office) = try await school(students: 20, on: cluster)
        try cluster.pause()
        let gate = try GateJournal(students: 20, key: office.keyBytes)
        let s = sender(gate, db, name: "gate-1")
        let task = Task { try await s.run() }
        for i in 0..<20 { try gate.record(i, camera: "gate-1") }
        try await Task.sleep(for: .milliseconds(200))
        assertEqual(try gate.store.events.unsharedCount(), 20, "recorded at the gate, waiting in its journal")
        try cluster.resume()
        try await eventually("the journal empties") { try gate.store.events.unsharedCount() == 0 }
        task.cancel()
        try await task.value
        assertEqual(try await db.int("SELECT count(*) FROM attendance_event"), 20)
        assertEqual(try await db.int("SELECT count(*) FROM outbox"), 20)
    }

    func testAStudentTheServerDoesNotKnowIsAClearErrorAndStaysInTheJournal() async throws {
        let (db, office) = try await school(students: 2)
        let gate = try GateJournal(students: 3, key: office.keyBytes) // one more student than the server's roster
        try gate.record(2, camera: "gate-1")
        do {
            _ = try await db.gate.withConnection { c in try await sender(gate, db, name: "gate-1").sendBatch(on: c) }
            XCTFail("sent a student the server does not know")
        } catch let p as PostgresProblem {
            XCTAssertTrue(p.description.contains("is the roster on the server up to date?"), p.description)
            XCTAssertFalse(p.description.contains(GateJournal.code(2)), "no student code in the message")
        }
        assertEqual(try gate.store.events.unsharedCount(), 1, "kept in the journal")
        assertEqual(try await db.int("SELECT count(*) FROM attendance_event"), 0)
    }

    func testACorrectionOnTheBoxReplacesTheOlderVersionOnTheServerNeverTheReverse() async throws {
        let (db, office) = try await school(students: 2)
        let gate = try GateJournal(students: 2, key: office.keyBytes)
        try gate.record(0, camera: "gate-1")
        let s = sender(gate, db, name: "gate-1")
        _ = try await db.gate.withConnection { c in try await s.sendBatch(on: c) }
        _ = try gate.store.events.correct(
            student: GateJournal.code(0), day: GateJournal.day, session: "morning", status: .excused,
            reason: "giấy phép của phụ huynh")
        assertEqual(try gate.store.events.unsharedCount(), 1, "the correction (version 2) is due")
        _ = try await db.gate.withConnection { c in try await s.sendBatch(on: c) }
        assertEqual(try await db.strings("SELECT status || ' v' || version FROM attendance_event"), ["excused v2"])
        assertEqual(try await db.strings("SELECT event_kind FROM outbox ORDER BY version"), ["NEW", "UPDATE"])

        // Another box that still has version 1 (it recorded the same arrival) does not undo the correction.
        let other = try GateJournal(students: 2, key: office.keyBytes)
        try other.record(0, camera: "gate-2")
        _ = try await db.gate.withConnection { c in try await sender(other, db, name: "gate-2").sendBatch(on: c) }
        assertEqual(
            try await db.strings("SELECT status || ' v' || version || ' ' || gate FROM attendance_event"),
            [
                "excused v2 gate-1"
            ])
        assertEqual(try other.store.events.unsharedCount(), 0, "its copy is on the server: nothing left to send")
    }

    /// A check-in the liveness check held back is made in the gate's journal first, like a record, and sent to the
    /// school's review queue: the same print shown at two gates is one held check-in there; a teacher on any box decides
    /// it on the server, and that box's journal and its own hold follow.
    func testHeldCheckInsReachTheSchoolsReviewQueueOnceAndAreDecidedFromAnyBox() async throws {
        let (db, office) = try await school(students: 4)
        let front = try GateJournal(students: 0, key: office.keyBytes)
        let back = try GateJournal(students: 0, key: office.keyBytes)
        for g in [front, back] { try await SchoolGallerySync.refreshOnce(store: g.store, connector: db.gate) }
        func seen(_ i: Int) -> NewAttendanceEvent {
            NewAttendanceEvent(
                studentCode: GateJournal.code(i), schoolDay: GateJournal.day, session: "morning", kind: .checkIn,
                status: .present, occurredAt: Date(), camera: "gate-1", distance: 0.3)
        }
        for g in [front, back] { _ = try g.store.reviews.hold(seen(0), liveness: 0.1, reason: .spoof) }
        _ = try front.store.reviews.hold(seen(1), liveness: nil, reason: .notCheckable)
        assertEqual(try front.store.reviews.unsharedCount(), 2)
        for (g, name) in [(front, "front"), (back, "back")] {
            _ = try await db.gate.withConnection { c in try await sender(g, db, name: name).sendBatch(on: c) }
            assertEqual(try g.store.reviews.unsharedCount(), 0, name)
        }
        assertEqual(try await db.int("SELECT count(*) FROM review_hold"), 2, "one per student and session")
        let again = try await db.gate.withConnection { c in try await sender(front, db, name: "front").sendBatch(on: c) }
        assertEqual(again, 0, "sent once")

        let school = SchoolServer(store: back.store, connector: db.gate)
        let queue = try await school.heldCheckIns(state: .pending, classes: nil, day: nil)
        assertEqual(queue.map(\.event.studentCode), [GateJournal.code(0), GateJournal.code(1)])
        assertEqual(try await school.acceptHeld(id: queue[0].id), true)
        try await school.rejectHeld(id: queue[1].id, reason: "ảnh trên điện thoại")
        assertEqual(try await db.strings("SELECT state FROM review_hold ORDER BY id"), ["accepted", "rejected"])
        assertEqual(
            try await db.int("SELECT count(*) FROM attendance_event WHERE student_code = '\(GateJournal.code(0))'"), 1)
        assertEqual(try await db.int("SELECT count(*) FROM outbox"), 1, "queued for the sector once")
        assertEqual(
            try back.store.events.recorded(on: GateJournal.day).map(\.studentCode), [GateJournal.code(0)],
            "the deciding box's journal has the record")
        assertEqual(try back.store.events.unsharedCount(), 0, "nothing to send back")
        assertEqual(try back.store.reviews.list(state: .pending), [], "its own hold of that check-in closed")
        assertEqual(
            try await db.strings("SELECT action FROM audit_log WHERE action LIKE 'review.%' ORDER BY id"),
            ["review.accept", "review.reject"])
        // The front gate's own holds, decided on the back box, are closed there at its next pull (its menu's badge).
        assertEqual(try front.store.reviews.list(state: .pending).count, 2)
        try await SchoolServer(store: front.store, connector: db.gate).pullEvents(from: GateJournal.day, to: GateJournal.day)
        assertEqual(try front.store.reviews.list(state: .pending), [])
        assertEqual(try front.store.reviews.list(state: nil).map(\.state), [.accepted, .rejected])
        assertEqual(try front.store.events.recorded(on: GateJournal.day).map(\.studentCode), [GateJournal.code(0)])
    }
}

/// The figures for the note (slow: a 3,000-record burst; `make test` runs it, `make test-unit` skips it).
final class JournalFiguresEndToEndTests: XCTestCase {
    func school(students: Int) async throws -> (TestDatabase, GateJournal) {
        let db = try await freshDatabase()
        let office = try GateJournal(students: students)
        _ = try await SchoolCopy.run(from: office.store, to: db.owner)
        return (db, office)
    }

    /// Figures for the note: records/s one gate writes to PostgreSQL on loopback (a synthetic burst already in the
    /// journal), and the time from a decision (its journal commit) to its row on the server, network up.
    func testFiguresBurstThroughputAndDecisionToServerLatency() async throws {
        let n = 3000
        let (db, office) = try await school(students: n)
        let gate = try GateJournal(students: n, key: office.keyBytes)
        for i in 0..<n { try gate.record(i, camera: "gate-1") }
        assertEqual(try gate.store.events.unsharedCount(), n)

        let s = JournalSender(store: gate.store, connector: db.gate, gate: "gate-1", logger: quietLogger)
        let clock = ContinuousClock()
        let start = clock.now
        var batches = 0
        try await db.gate.withConnection { c in
            while try await s.sendBatch(on: c) > 0 { batches += 1 }
        }
        let burst = clock.now - start
        assertEqual(try await db.int("SELECT count(*) FROM attendance_event"), n)
        assertEqual(try await db.int("SELECT count(*) FROM outbox"), n)
        let seconds = Double(burst.components.attoseconds) / 1e18 + Double(burst.components.seconds)
        print(
            String(
                format: "FIGURE journal burst: %d records in %d batches of %d, %.2f s, %.0f records/s", n, batches,
                s.batchSize, seconds, Double(n) / seconds))

        // Decision to server row, with the sender's default poll interval: record one event on the second
        // session, wait for its row.
        let live = JournalSender(store: gate.store, connector: db.gate, gate: "gate-1", logger: quietLogger)
        let task = Task { try await live.run() }
        var latencies: [Double] = []
        let probe = try await db.owner.connect()
        for i in 0..<40 {
            try gate.record(i, camera: "gate-1", session: "afternoon")
            let decided = clock.now
            let id = EventLedger.recordID(
                school: "79000001", student: GateJournal.code(i), day: GateJournal.day, session: "afternoon", kind: .checkIn)
            while true {
                let rows = try await probe.query("SELECT 1 FROM attendance_event WHERE record_id = \(id)", logger: quietLogger)
                    .collect()
                if !rows.isEmpty { break }
                try await Task.sleep(for: .milliseconds(2))
            }
            let d = clock.now - decided
            latencies.append(Double(d.components.attoseconds) / 1e15 + Double(d.components.seconds) * 1000)
        }
        try await probe.close()
        task.cancel()
        try await task.value
        latencies.sort()
        print(
            String(
                format: "FIGURE decision to server row (poll %@): median %.1f ms, p90 %.1f ms, max %.1f ms over %d decisions",
                "\(live.pollInterval)", latencies[latencies.count / 2], latencies[latencies.count * 9 / 10],
                latencies.last!, latencies.count))
        assertEqual(try gate.store.events.unsharedCount(), 0)
        assertEqual(try await db.int("SELECT count(*) FROM attendance_event WHERE session = 'afternoon'"), 40)
    }
}
