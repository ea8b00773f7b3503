import AttendanceCore
import Foundation
import GRDB

/// An event of this gate's journal the school's shared server does not have yet (at this version), with the
/// outbox row queued for that version, if any. Codable: the journal sender sends a batch as one JSON value.
public struct JournalRecord: Sendable, Equatable, Codable {
    public var recordID: String
    public var studentCode: String
    public var schoolDay: String
    public var session: String
    public var kind: String
    public var status: String
    public var occurredAt: String?
    public var camera: String?
    public var distance: Double?
    public var version: Int
    public var cancelled: Bool
    /// The sector outbox row of this version: `NEW` / `UPDATE` / `CANCEL`, its JSON payload, when it was queued.
    public var outboxKind: String?
    public var payload: String?
    public var queuedAt: String?

    enum CodingKeys: String, CodingKey {
        case recordID = "record_id", studentCode = "student_code", schoolDay = "school_day", session, kind, status
        case occurredAt = "occurred_at", camera, distance, version, cancelled
        case outboxKind = "outbox_kind", payload, queuedAt = "queued_at"
    }

    public init(
        recordID: String, studentCode: String, schoolDay: String, session: String, kind: String, status: String,
        occurredAt: String?, camera: String?, distance: Double?, version: Int, cancelled: Bool, outboxKind: String?,
        payload: String?, queuedAt: String?
    ) {
        self.recordID = recordID; self.studentCode = studentCode; self.schoolDay = schoolDay; self.session = session
        self.kind = kind; self.status = status; self.occurredAt = occurredAt; self.camera = camera
        self.distance = distance; self.version = version; self.cancelled = cancelled; self.outboxKind = outboxKind
        self.payload = payload; self.queuedAt = queuedAt
    }

    /// Which version of which record the server committed.
    public var key: JournalKey { JournalKey(recordID: recordID, version: version) }
}

public struct JournalKey: Sendable, Hashable {
    public var recordID: String
    public var version: Int
    public init(recordID: String, version: Int) {
        self.recordID = recordID
        self.version = version
    }
}

extension EventLedger {
    /// The journal's events the school's server does not have at their current version, oldest first
    /// (by record id within a batch, so two gates' batches lock the server's rows in one order).
    public func unshared(limit: Int) throws -> [JournalRecord] {
        try store.writer.read { db in
            let rows = try Row.fetchAll(
                db,
                sql: """
                    SELECT e.id, e.student_code, e.school_day, e.session, e.kind, e.status, e.occurred_at, e.camera,
                           e.distance, e.version, e.cancelled, o.event_kind, o.payload, o.created_at
                    FROM attendance_event e
                    LEFT JOIN journal_shared j ON j.record_id = e.id
                    LEFT JOIN outbox o ON o.record_id = e.id AND o.version = e.version
                    WHERE j.version IS NULL OR j.version < e.version
                    ORDER BY e.rowid
                    LIMIT ?
                    """, arguments: [max(1, limit)])
            return rows.map { r in
                JournalRecord(
                    recordID: r["id"], studentCode: r["student_code"], schoolDay: r["school_day"], session: r["session"],
                    kind: r["kind"], status: r["status"], occurredAt: r["occurred_at"], camera: r["camera"],
                    distance: r["distance"], version: r["version"], cancelled: r["cancelled"], outboxKind: r["event_kind"],
                    payload: r["payload"], queuedAt: r["created_at"])
            }.sorted { $0.recordID < $1.recordID }
        }
    }

    /// The server committed these versions: they leave the journal's backlog (one transaction). A version
    /// older than the one already marked changes nothing, and an event changed since keeps its newer version due.
    public func markShared(_ keys: [JournalKey]) throws {
        guard !keys.isEmpty else { return }
        try store.writer.write { db in
            for k in keys {
                // An event erased or purged meanwhile has no row to mark (the foreign key): skip it.
                try db.execute(
                    sql: """
                        INSERT INTO journal_shared(record_id, version)
                        SELECT id, ? FROM attendance_event WHERE id = ?
                        ON CONFLICT(record_id) DO UPDATE SET version = max(version, excluded.version)
                        """, arguments: [k.version, k.recordID])
            }
        }
    }

    /// How many events the server does not have yet (at their current version).
    public func unsharedCount() throws -> Int {
        try store.writer.read { db in
            try Int.fetchOne(
                db,
                sql: """
                    SELECT COUNT(*) FROM attendance_event e LEFT JOIN journal_shared j ON j.record_id = e.id
                    WHERE j.version IS NULL OR j.version < e.version
                    """) ?? 0
        }
    }
}

extension EventLedger {
    /// The school's server has these events (another gate's records; a correction, a cancellation, an excuse or an
    /// accepted review made there from any box): this gate's journal takes the server's version where it is newer than
    /// its own, marked as shared (nothing to send back), so its reports and the console show the whole school. One
    /// transaction. No outbox row: the school's outbox is on the server. A student not in this box's copy yet is
    /// skipped (the next gallery refresh brings them, the next pull their records). Returns the events written.
    @discardableResult
    public func applyFromServer(_ records: [JournalRecord], excuses: [Excuse]) throws -> Int {
        // What this journal has of those days already (one read): only newer versions and new records are written,
        // so reading a day again with nothing new writes nothing.
        let days = Array(Set(records.map(\.schoolDay)))
        let known = try store.writer.read { db -> [String: Int] in
            guard !days.isEmpty else { return [:] }
            var out: [String: Int] = [:]
            let marks = days.map { _ in "?" }.joined(separator: ",")
            for row in try Row.fetchAll(
                db, sql: "SELECT id, version FROM attendance_event WHERE school_day IN (\(marks))",
                arguments: StatementArguments(days))
            {
                out[row["id"]] = row["version"]
            }
            return out
        }
        let newer = records.filter { r in known[r.recordID].map { $0 < r.version } ?? true }
        let excuseDays = Set(excuses.map(\.day))
        let knownExcuses = try excuseDays.reduce(into: Set<Excuse>()) { $0.formUnion(try self.excuses(day: $1)) }
        let changedExcuses = excuses.filter { !knownExcuses.contains($0) }
        guard !newer.isEmpty || !changedExcuses.isEmpty else { return 0 }
        return try store.writer.write { db in
            var written = 0
            for r in newer {
                try db.execute(
                    sql: """
                        INSERT INTO attendance_event(id, student_code, school_day, session, kind, status, occurred_at,
                                                     camera, distance, version, cancelled)
                        SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM student WHERE code = ?2)
                        ON CONFLICT(id) DO UPDATE SET status = excluded.status, occurred_at = excluded.occurred_at,
                            camera = excluded.camera, distance = excluded.distance, version = excluded.version,
                            cancelled = excluded.cancelled
                        WHERE attendance_event.version < excluded.version
                        """,
                    arguments: [
                        r.recordID, r.studentCode, r.schoolDay, r.session, r.kind, r.status, r.occurredAt, r.camera,
                        r.distance, r.version, r.cancelled,
                    ])
                written += db.changesCount
                try db.execute(
                    sql: """
                        INSERT INTO journal_shared(record_id, version) SELECT id, ? FROM attendance_event WHERE id = ?
                        ON CONFLICT(record_id) DO UPDATE SET version = max(version, excluded.version)
                        """, arguments: [r.version, r.recordID])
            }
            for e in changedExcuses {
                try db.execute(
                    sql: """
                        INSERT INTO excuse(student_code, school_day, reason, recorded_by, recorded_at)
                        SELECT ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM student WHERE code = ?1)
                        ON CONFLICT(student_code, school_day) DO UPDATE SET
                            reason = excluded.reason, recorded_by = excluded.recorded_by
                        """,
                    arguments: [e.student, e.day.description, e.reason, e.recordedBy, Timestamp.string(store.now())])
            }
            return written
        }
    }
}

extension ReviewQueue {
    /// This gate's pending held check-ins the school's server does not have yet, oldest first.
    public func unshared(limit: Int) throws -> [HeldRecord] {
        try store.writer.read { db in
            try HeldRecord.fetchAll(
                db,
                sql: HeldRecord.selectSQL + """
                     LEFT JOIN journal_shared_hold j ON j.hold_id = h.id
                    WHERE j.hold_id IS NULL AND h.state = 'pending' ORDER BY h.id LIMIT ?
                    """, arguments: [max(1, limit)])
        }
    }

    /// The server has these holds: they leave the journal's backlog.
    public func markShared(_ ids: [Int64]) throws {
        guard !ids.isEmpty else { return }
        try store.writer.write { db in
            for id in ids {
                try db.execute(
                    sql:
                        "INSERT INTO journal_shared_hold(hold_id) SELECT id FROM review_hold WHERE id = ? ON CONFLICT DO NOTHING",
                    arguments: [id])
            }
        }
    }

    /// How many pending holds the server does not have yet.
    public func unsharedCount() throws -> Int {
        try store.writer.read { db in
            try Int.fetchOne(
                db,
                sql: """
                    SELECT COUNT(*) FROM review_hold h LEFT JOIN journal_shared_hold j ON j.hold_id = h.id
                    WHERE j.hold_id IS NULL AND h.state = 'pending'
                    """) ?? 0
        }
    }

    /// A teacher decided this check-in on the school's server (from any box): this gate's own hold of the same
    /// student, day, session and kind, if any, is closed alike, so it is neither decided twice nor sent again. The
    /// audit entry is the server's.
    public func applyDecision(of held: HeldRecord) throws {
        try store.writer.write { db in
            try db.execute(
                sql: """
                    UPDATE review_hold SET state = ?, decided_by = ?, decided_at = ?
                    WHERE student_code = ? AND school_day = ? AND session = ? AND kind = ? AND state = 'pending'
                    """,
                arguments: [
                    held.state.rawValue, held.decidedBy, held.decidedAt.map(Timestamp.string), held.event.studentCode,
                    held.event.schoolDay.description, held.event.session, held.event.kind.rawValue,
                ])
        }
    }
}
