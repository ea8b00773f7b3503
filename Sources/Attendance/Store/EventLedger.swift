import AttendanceCore
import Crypto
import Foundation
import GRDB
import SectorConnector

// The event ledger: attendance events with their outbox rows (one transaction each), unknown faces, the
// outbox depth and the Today page's change mark. Corrections, cancellations and excuses: EventLedger+Corrections.

extension EventLedger {
    /// The sector record id of a student's event: derived from school, student, day, session and kind, so
    /// an event lost to a power cut and recorded again reaches the sector as the same record, never a
    /// second one. A UUID-shaped string (SHA-256, version 5 and variant bits set).
    public static func recordID(school: String, student: String, day: LocalDate, session: String, kind: EventKind) -> String {
        let key = ["attendance-record", school, student, day.description, session, kind.rawValue].joined(separator: "\u{1F}")
        var b = Array(SHA256.hash(data: Data(key.utf8)).prefix(16))
        b[6] = (b[6] & 0x0F) | 0x50
        b[8] = (b[8] & 0x3F) | 0x80
        let hex = b.map { String(format: "%02x", $0) }.joined()
        let parts = [
            hex.prefix(8), hex.dropFirst(8).prefix(4), hex.dropFirst(12).prefix(4), hex.dropFirst(16).prefix(4),
            hex.dropFirst(20),
        ]
        return parts.joined(separator: "-")
    }

    /// Records an event and queues it for the sector database (outbox, NEW, version 1) in one
    /// transaction. Returns false, changing nothing, when the student already has an event of
    /// this kind for this day and session. An event an admin cancelled (a wrong match) does not count:
    /// the student's own arrival then revives that record with the new time and status (an UPDATE with a
    /// higher version), so the real student is recorded after all.
    ///
    /// Throws `ClockProblem`, changing nothing, while the clock cannot be trusted to date the record.
    public func record(_ e: NewAttendanceEvent) throws -> Bool {
        let clockNow = store.now()
        return try store.writer.write { db in
            try AttendanceStore.checkAndAdvanceClock(db, now: clockNow, policy: store.clockPolicy)
            return try insert(db, e, now: clockNow)
        }
    }

    /// `record`'s write, inside a transaction that has checked the clock (also a teacher's accepted review).
    func insert(_ db: Database, _ e: NewAttendanceEvent, now clockNow: Date) throws -> Bool {
        guard let student = try AttendanceStore.student(db, code: e.studentCode) else {
            throw StoreError.unknownStudent(e.studentCode)
        }
        let occurred = Timestamp.string(e.occurredAt)
        if let existing = try AttendanceStore.event(
            db, student: e.studentCode, day: e.schoolDay, session: e.session, kind: e.kind)
        {
            guard existing.cancelled else { return false }
            let version = try AttendanceStore.nextVersion(db, existing)
            try db.execute(
                sql: """
                    UPDATE attendance_event SET status = ?, occurred_at = ?, camera = ?, distance = ?, version = ?, cancelled = 0
                    WHERE id = ?
                    """, arguments: [e.status.rawValue, occurred, e.camera, Double(e.distance), version, existing.id])
            try enqueue(
                db, id: existing.id, kind: .update, version: version, student: student, day: e.schoolDay,
                session: e.session, eventKind: e.kind, status: e.status, occurredAt: occurred, camera: e.camera,
                now: clockNow)
            return true
        }
        let recordID = EventLedger.recordID(
            school: store.config.school.code, student: e.studentCode, day: e.schoolDay, session: e.session, kind: e.kind)
        try db.execute(
            sql: """
                INSERT INTO attendance_event(id, student_code, school_day, session, kind, status, occurred_at,
                                             camera, distance, version, cancelled)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 1, 0)
                """,
            arguments: [
                recordID, e.studentCode, e.schoolDay.description, e.session, e.kind.rawValue,
                e.status.rawValue, occurred, e.camera, Double(e.distance),
            ])
        // The same one outbox write as corrections and revivals use.
        try enqueue(
            db, id: recordID, kind: .new, version: 1, student: student, day: e.schoolDay, session: e.session,
            eventKind: e.kind, status: e.status, occurredAt: occurred, camera: e.camera, now: clockNow)
        return true
    }

    /// Counts a face nobody matched. `cropPath` only when the school opted in to keeping crops. Returns the row id.
    @discardableResult
    public func recordUnknownFace(at: Date, camera: String?, cropPath: String?) throws -> Int64 {
        try store.writer.write { db in
            try db.execute(
                sql: "INSERT INTO unknown_face(seen_at, camera, crop_path) VALUES (?, ?, ?)",
                arguments: [Timestamp.string(at), camera, cropPath])
            return db.lastInsertedRowID
        }
    }

    /// The crop of an unknown-face row could not be written: the row keeps the count, not the path.
    public func forgetUnknownCrop(row: Int64) throws {
        try store.writer.write { db in
            try db.execute(sql: "UPDATE unknown_face SET crop_path = NULL WHERE id = ?", arguments: [row])
        }
    }

    /// Unknown faces counted on a day (in the school's time zone).
    public func unknownFaceCount(on day: LocalDate, timeZone: TimeZone) throws -> Int {
        let from = Timestamp.string(day.at(LocalTime(hour: 0, minute: 0), in: timeZone))
        let to = Timestamp.string(day.adding(days: 1).at(LocalTime(hour: 0, minute: 0), in: timeZone))
        return try store.writer.read { db in
            try Int.fetchOne(
                db, sql: "SELECT COUNT(*) FROM unknown_face WHERE seen_at >= ? AND seen_at < ?", arguments: [from, to]) ?? 0
        }
    }
}

extension EventLedger {
    /// Records not yet delivered to the sector database (pending, not parked): the outbox depth metric.
    public func outboxDepth() throws -> Int {
        try store.writer.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM outbox WHERE state = 'pending'") ?? 0 }
    }
}

extension EventLedger {
    /// A short text that changes whenever anything the day's report shows changes (a new record, a
    /// correction, an excuse, an unknown face): the console's live Today page polls it cheaply.
    public func changeMark(on day: LocalDate) throws -> String {
        try store.writer.read { db in
            let row = try Row.fetchOne(
                db,
                sql: """
                    SELECT (SELECT COUNT(*) || '.' || COALESCE(SUM(version), 0) || '.' || COALESCE(SUM(cancelled), 0)
                              FROM attendance_event WHERE school_day = ?1) AS events,
                           (SELECT COUNT(*) FROM excuse WHERE school_day = ?1) AS excuses,
                           (SELECT COALESCE(MAX(id), 0) FROM unknown_face) AS unknown,
                           (SELECT COUNT(*) FROM student WHERE active = 1) AS students
                    """, arguments: [day.description])
            let events: String = row?["events"] ?? ""
            let excuses: Int = row?["excuses"] ?? 0
            let unknown: Int64 = row?["unknown"] ?? 0
            let students: Int = row?["students"] ?? 0
            return "\(events)/\(excuses)/\(unknown)/\(students)"
        }
    }
}
