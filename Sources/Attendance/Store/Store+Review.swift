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

extension HeldRecord {
    static let selectSQL = """
        SELECT h.*, s.full_name, s.class_code
        FROM review_hold h JOIN student s ON s.code = h.student_code
        """

    init(row: Row) {
        let day: String = row["school_day"]
        self.init(
            id: row["id"],
            event: NewAttendanceEvent(
                studentCode: row["student_code"], schoolDay: LocalDate(day) ?? LocalDate(year: 1970, month: 1, day: 1),
                session: row["session"], kind: EventKind(rawValue: row["kind"]) ?? .checkIn,
                status: AttendanceStatus(rawValue: row["status"]) ?? .present,
                occurredAt: Timestamp.date(row["occurred_at"]) ?? Date(timeIntervalSince1970: 0), camera: row["camera"],
                distance: Float(row["distance"] as Double)),
            studentName: row["full_name"], classCode: row["class_code"],
            liveness: (row["liveness"] as Double?).map(Float.init),
            reason: HoldReason(rawValue: row["reason"]) ?? .spoof, state: HoldState(rawValue: row["state"]) ?? .pending,
            decidedBy: row["decided_by"], decidedAt: (row["decided_at"] as String?).flatMap(Timestamp.date))
    }
}

extension ReviewQueue {
    /// Holds back a decided check-in that the liveness check did not find real: stored with its session and status as
    /// the gate decided them, but not attendance (not in the reports, not sent to the sector) until a teacher accepts
    /// it. One transaction; the clock is checked as for a record (`EventLedger.record`). No image is kept.
    public func hold(_ e: NewAttendanceEvent, liveness: Float?, reason: HoldReason) throws -> HoldOutcome {
        let clockNow = store.now()
        return try store.dbPool.write { db in
            try AttendanceStore.checkAndAdvanceClock(db, now: clockNow, policy: store.clockPolicy)
            guard try AttendanceStore.student(db, code: e.studentCode) != nil else {
                throw StoreError.unknownStudent(e.studentCode)
            }
            if let existing = try AttendanceStore.event(
                db, student: e.studentCode, day: e.schoolDay, session: e.session, kind: e.kind), !existing.cancelled
            {
                return .alreadyRecorded
            }
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
            arguments += StatementArguments(classes)
        }
        if let day {
            conditions.append("h.school_day = ?")
            arguments += [day.description]
        }
        let filter = conditions.isEmpty ? "" : " WHERE " + conditions.joined(separator: " AND ")
        return try store.dbPool.read { db in
            try Row.fetchAll(db, sql: HeldRecord.selectSQL + filter + " ORDER BY h.occurred_at, h.id", arguments: arguments)
                .map(HeldRecord.init(row:))
        }
    }

    /// One held check-in (nil: no such id).
    public func held(id: Int64) throws -> HeldRecord? {
        try store.dbPool.read { db in
            try Row.fetchOne(db, sql: HeldRecord.selectSQL + " WHERE h.id = ?", arguments: [id]).map(HeldRecord.init(row:))
        }
    }

    /// A teacher confirms the student was really there: the check-in is recorded as the gate decided it (time, session,
    /// status) and queued for the sector, in the same audited transaction that closes the hold. Returns false when the
    /// student had been recorded for that session meanwhile (then only the hold is closed).
    @discardableResult
    public func accept(id: Int64) throws -> Bool {
        let clockNow = store.now()
        let schoolCode = store.config.school.code
        return try store.dbPool.write { db in
            try AttendanceStore.checkAndAdvanceClock(db, now: clockNow, policy: store.clockPolicy)
            let held = try Self.pending(db, id: id)
            let recorded = try EventLedger.insert(db, held.event, schoolCode: schoolCode, now: clockNow)
            try Self.close(db, held, as: .accepted, now: clockNow, detail: recorded ? "recorded" : "already recorded")
            return recorded
        }
    }

    /// A teacher confirms it was not the student (a photo, a screen): the hold is closed and nothing is recorded.
    public func reject(id: Int64, reason: String? = nil) throws {
        let clockNow = store.now()
        try store.dbPool.write { db in
            let held = try Self.pending(db, id: id)
            try Self.close(db, held, as: .rejected, now: clockNow, detail: reason.map { "reason=\($0)" })
        }
    }

    private static func pending(_ db: Database, id: Int64) throws -> HeldRecord {
        guard let row = try Row.fetchOne(db, sql: HeldRecord.selectSQL + " WHERE h.id = ?", arguments: [id]) else {
            throw StoreError.invalid("no held check-in #\(id) (see `attendance review`)")
        }
        let held = HeldRecord(row: row)
        guard held.state == .pending else {
            throw StoreError.invalid(
                "held check-in #\(id) was already \(held.state.rawValue) by \(held.decidedBy ?? "?"); nothing changed")
        }
        return held
    }

    private static func close(_ db: Database, _ held: HeldRecord, as state: HoldState, now: Date, detail: String?) throws {
        try db.execute(
            sql: "UPDATE review_hold SET state = ?, decided_by = ?, decided_at = ? WHERE id = ?",
            arguments: [state.rawValue, AttendanceStore.actor, Timestamp.string(now), held.id])
        let what =
            "#\(held.id) \(held.event.schoolDay) \(held.event.session) \(held.event.kind.rawValue) (\(held.reason.rawValue))"
        try AttendanceStore.audit(
            db, action: state == .accepted ? "review.accept" : "review.reject", student: held.event.studentCode,
            detail: what + (detail.map { "; \($0)" } ?? ""))
    }
}
