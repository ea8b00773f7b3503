import AttendanceCore
import Foundation
import GRDB

/// What holding a check-in back did.
public enum HoldOutcome: Sendable, Equatable {
    /// A new held check-in, for a teacher to accept or reject.
    case held(id: Int64)
    /// This student's check-in for that session is already held (the same print shown twice): nothing new.
    case alreadyHeld
    /// The student is already recorded for that session (they passed the gate themselves): nothing to hold.
    case alreadyRecorded
}

extension ReviewQueue {
    /// Holds back a decided check-in that the liveness check did not find real: stored with its session and status as
    /// the gate decided them, but not attendance (not in the reports, not sent to the sector) until a teacher accepts
    /// it. One transaction; the clock is checked as for a record (`EventLedger.record`). No image is kept.
    public func hold(_ e: NewAttendanceEvent, liveness: Float?, reason: HoldReason) throws -> HoldOutcome {
        let clockNow = store.now()
        return try store.writer.write { db in
            try AttendanceStore.checkAndAdvanceClock(db, now: clockNow, policy: store.clockPolicy)
            guard try AttendanceStore.student(db, code: e.studentCode) != nil else {
                throw StoreError.unknownStudent(e.studentCode)
            }
            let existing = try AttendanceStore.event(
                db, student: e.studentCode, day: e.schoolDay, session: e.session, kind: e.kind)
            if Self.recordedAlready(existing.map { ($0.status, $0.cancelled) }) { return .alreadyRecorded }
            try db.execute(
                sql: """
                    INSERT INTO review_hold(student_code, school_day, session, kind, status, occurred_at, camera, distance,
                                            liveness, reason)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    ON CONFLICT(student_code, school_day, session, kind) DO NOTHING
                    """,
                arguments: [
                    e.studentCode, e.schoolDay.description, e.session, e.kind.rawValue, e.status.rawValue,
                    Timestamp.string(e.occurredAt), e.camera, Double(e.distance), liveness.map { Double($0) }, reason.rawValue,
                ])
            return db.changesCount == 0 ? .alreadyHeld : .held(id: db.lastInsertedRowID)
        }
    }

    /// Held check-ins, oldest first: by state (nil: every state), of these classes (nil: every class), of one day.
    public func list(state: HoldState? = .pending, classes: [String]? = nil, day: LocalDate? = nil) throws -> [HeldRecord] {
        var conditions: [String] = []
        var arguments: StatementArguments = []
        if let state {
            conditions.append("h.state = ?")
            arguments += [state.rawValue]
        }
        if let classes {
            conditions.append("s.class_code IN (\(classes.map { _ in "?" }.joined(separator: ",")))")
            arguments += StatementArguments(classes.map(SchoolClass.normalisedCode))
        }
        if let day {
            conditions.append("h.school_day = ?")
            arguments += [day.description]
        }
        let filter = conditions.isEmpty ? "" : " WHERE " + conditions.joined(separator: " AND ")
        return try store.writer.read { db in
            try HeldRecord.fetchAll(
                db, sql: HeldRecord.selectSQL + filter + " ORDER BY h.occurred_at, h.id", arguments: arguments)
        }
    }

    /// One held check-in (nil: no such id).
    public func held(id: Int64) throws -> HeldRecord? {
        try store.writer.read { db in
            try HeldRecord.fetchOne(db, sql: HeldRecord.selectSQL + " WHERE h.id = ?", arguments: [id])
        }
    }

    /// A teacher confirms the student was really there: the check-in is recorded as the gate decided it (time, session,
    /// status) and queued for the sector, in the same audited transaction that closes the hold. Returns false when the
    /// student had been recorded for that session meanwhile (then only the hold is closed).
    @discardableResult
    public func accept(id: Int64) throws -> Bool {
        let clockNow = store.now()
        return try store.writer.write { db in
            try AttendanceStore.checkAndAdvanceClock(db, now: clockNow, policy: store.clockPolicy)
            let held = try Self.pending(db, id: id)
            let recorded = try store.events.insert(db, held.event, now: clockNow)
            try Self.close(db, held, as: .accepted, now: clockNow, detail: Self.acceptDetail(recorded: recorded))
            return recorded
        }
    }

    /// A teacher confirms it was not the student (a photo, a screen): the hold is closed and nothing is recorded.
    public func reject(id: Int64, reason: String? = nil) throws {
        let clockNow = store.now()
        try store.writer.write { db in
            let held = try Self.pending(db, id: id)
            try Self.close(db, held, as: .rejected, now: clockNow, detail: Self.rejectDetail(reason: reason))
        }
    }

    private static func pending(_ db: Database, id: Int64) throws -> HeldRecord {
        try pending(try HeldRecord.fetchOne(db, sql: HeldRecord.selectSQL + " WHERE h.id = ?", arguments: [id]), id: id)
    }

    private static func close(_ db: Database, _ held: HeldRecord, as state: HoldState, now: Date, detail: String?) throws {
        try db.execute(
            sql: "UPDATE review_hold SET state = ?, decided_by = ?, decided_at = ? WHERE id = ?",
            arguments: [state.rawValue, AttendanceStore.actor, Timestamp.string(now), held.id])
        let audit = decisionAudit(held, as: state, detail: detail)
        try AttendanceStore.audit(db, action: audit.action, student: held.event.studentCode, detail: audit.detail)
    }
}

// MARK: the rules of a teacher's decision, on any backend (`ReviewQueue` here, `PostgresSchoolRecords` on the server)

extension ReviewQueue {
    /// The held check-in a teacher may still decide (nil: no such id), or why not; nothing changed.
    public static func pending(_ held: HeldRecord?, id: Int64) throws -> HeldRecord {
        guard let held else { throw StoreError.invalid("no held check-in #\(id) (see `attendance review`)") }
        guard held.state == .pending else {
            throw StoreError.invalid(
                "held check-in #\(id) was already \(held.state.rawValue) by \(held.decidedBy ?? "?"); nothing changed")
        }
        return held
    }

    /// Whether a new hold is kept: not when the student is already recorded for that session (an event, not
    /// cancelled), or already held (the insert's UNIQUE key).
    public static func recordedAlready(_ current: (status: AttendanceStatus, cancelled: Bool)?) -> Bool {
        current.map { !$0.cancelled } ?? false
    }

    public static func acceptDetail(recorded: Bool) -> String { recorded ? "recorded" : "already recorded" }
    public static func rejectDetail(reason: String?) -> String? { reason.map { "reason=\($0)" } }

    /// The audit entry of a decision (the same words on both backends).
    public static func decisionAudit(_ held: HeldRecord, as state: HoldState, detail: String?) -> (action: String, detail: String)
    {
        let what =
            "#\(held.id) \(held.event.schoolDay) \(held.event.session) \(held.event.kind.rawValue) (\(held.reason.rawValue))"
        return (state == .accepted ? "review.accept" : "review.reject", what + (detail.map { "; \($0)" } ?? ""))
    }
}
