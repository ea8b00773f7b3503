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
