import AttendanceCore
import Foundation
import GRDB
import SectorConnector

/// What a manual change did to one attendance event and which record it queued for the sector.
public struct EventChange: Sendable, Equatable, Codable {
    public var recordID: String
    public var session: String
    public var kind: EventKind
    /// nil: the event did not exist and was created.
    public var previousStatus: AttendanceStatus?
    public var status: AttendanceStatus
    /// The outbox record queued: NEW (a created event), UPDATE or CANCEL, and its version.
    public var eventKind: SectorRecord.EventKind
    public var version: Int

    public init(
        recordID: String, session: String, kind: EventKind, previousStatus: AttendanceStatus?, status: AttendanceStatus,
        eventKind: SectorRecord.EventKind, version: Int
    ) {
        self.recordID = recordID; self.session = session; self.kind = kind; self.previousStatus = previousStatus
        self.status = status; self.eventKind = eventKind; self.version = version
    }
}

/// What an excuse did.
public struct ExcuseResult: Sendable, Equatable, Codable {
    public var student: String
    public var day: LocalDate
    /// True when an excuse already existed for the day (its reason was replaced).
    public var replaced: Bool
    public var changes: [EventChange]

    public init(student: String, day: LocalDate, replaced: Bool, changes: [EventChange]) {
        self.student = student; self.day = day; self.replaced = replaced; self.changes = changes
    }
}

/// An excuse as recorded (the reason stays in the excuse table; the audit log does not copy it).
public struct Excuse: Sendable, Hashable, Codable {
    public var student: String
    public var day: LocalDate
    public var reason: String
    public var recordedBy: String

    public init(student: String, day: LocalDate, reason: String, recordedBy: String) {
        self.student = student; self.day = day; self.reason = reason; self.recordedBy = recordedBy
    }
}

// MARK: the rules of a manual change, on any backend (`EventLedger` here, `PostgresSchoolRecords` on the server)

extension EventLedger {
    /// A manual change's reason, trimmed; refused (nothing changed) when empty. `what`: "a correction".
    public static func manualReason(_ reason: String, for what: String) throws -> String {
        let reason = reason.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !reason.isEmpty else { throw StoreError.invalid("\(what) needs a reason (kept in the audit log)") }
        return reason
    }

    /// The session a correction names, or the class's first when it names none.
    public static func session(named name: String?, forClass classCode: String, schedule: SchoolSchedule) throws -> String {
        let sessions = schedule.sessions(forClass: classCode).map(\.name)
        guard let first = sessions.first else {
            throw StoreError.invalid("no session of the config's schedule applies to class \(classCode)")
        }
        guard let name else { return first }
        guard sessions.contains(name) else {
            throw StoreError.invalid(
                "class \(classCode) has no session '\(name)' (sessions: \(sessions.joined(separator: ", ")))")
        }
        return name
    }

    /// The version a changed event gets: above the event's and any queued for its record, so it only ever goes up.
    public static func nextVersion(event: Int, queued: Int?) -> Int { max(event, queued ?? 0) + 1 }

    /// Whether setting `status` changes the event as it stands (nil: there is none, it is created): not when it
    /// already has that status and is not cancelled.
    public static func changes(status: AttendanceStatus, current: (status: AttendanceStatus, cancelled: Bool)?) -> Bool {
        guard let current else { return true }
        return current.status != status || current.cancelled
    }

    /// The day an excuse names must be a school day of the schedule.
    public static func checkExcusable(_ day: LocalDate, schedule: SchoolSchedule) throws {
        guard schedule.isSchoolDay(day) else {
            throw StoreError.invalid(
                "\(day) is not a school day in the config's schedule (weekday or holiday); nothing to excuse")
        }
    }

    /// The sessions of `day` an excuse may set to excused: those of the class that ended by `now` (a session not
    /// ended yet gets only the excuse, so a student who comes after all is still recorded).
    public static func endedSessions(classCode: String, day: LocalDate, schedule: SchoolSchedule, now: Date) -> [String] {
        schedule.sessions(forClass: classCode).compactMap { session in
            guard let end = LocalTime(session.end), now >= day.at(end, in: schedule.timeZone) else { return nil }
            return session.name
        }
    }

    /// Whether an excuse sets an ended session's check-in (nil: none) to excused: not a check-in on time or late.
    public static func excuses(checkIn current: (status: AttendanceStatus, cancelled: Bool)?) -> Bool {
        guard let current else { return true }
        return current.cancelled || current.status == .absent
    }

    /// The refusal of a cancellation with no event to cancel.
    public static func nothingToCancel(student: String, day: LocalDate, session: String, kind: EventKind) -> StoreError {
        StoreError.invalid("\(student) has no \(kind.rawValue) on \(day) (\(session)) to cancel")
    }

    /// The audit entries of manual changes (the same words on both backends).
    public static func correctionDetail(day: LocalDate, change: EventChange, reason: String) -> String {
        "\(day) \(change.session) \(change.kind.rawValue): \(change.previousStatus?.rawValue ?? "none") -> "
            + "\(change.status.rawValue) (\(change.eventKind.rawValue) v\(change.version)); reason: \(reason.prefix(300))"
    }

    public static func cancellationDetail(day: LocalDate, change: EventChange, reason: String) -> String {
        "\(day) \(change.session) \(change.kind.rawValue) (CANCEL v\(change.version)); reason: \(reason.prefix(300))"
    }

    public static func excuseAudit(day: LocalDate, replaced: Bool, changes: [EventChange]) -> (action: String, detail: String) {
        let summary = changes.map { "\($0.session) \($0.eventKind.rawValue) v\($0.version)" }.joined(separator: ", ")
        return (
            replaced ? "attendance.excuse.replace" : "attendance.excuse",
            "\(day); records: \(summary.isEmpty ? "none" : summary)"
        )
    }
}

extension AttendanceStore {

    // MARK: helpers (one transaction each caller)

    struct StoredEvent {
        var id: String, status: AttendanceStatus, version: Int, cancelled: Bool, occurredAt: String?, camera: String?
    }

    static func correctionStudent(_ db: Database, _ code: String) throws -> Student {
        guard let s = try student(db, code: code) else { throw StoreError.unknownStudent(code) }
        return s
    }

    static func event(_ db: Database, student: String, day: LocalDate, session: String, kind: EventKind) throws -> StoredEvent? {
        try Row.fetchOne(
            db,
            sql: """
                SELECT id, status, version, cancelled, occurred_at, camera FROM attendance_event
                WHERE student_code = ? AND school_day = ? AND session = ? AND kind = ?
                """, arguments: [student, day.description, session, kind.rawValue]
        ).map { r in
            StoredEvent(
                id: r["id"], status: AttendanceStatus(rawValue: r["status"]) ?? .absent, version: r["version"],
                cancelled: r["cancelled"], occurredAt: r["occurred_at"], camera: r["camera"])
        }
    }

    /// A version above both the event's and any queued for its record, so it only ever goes up.
    static func nextVersion(_ db: Database, _ e: StoredEvent) throws -> Int {
        let queued = try Int.fetchOne(db, sql: "SELECT MAX(version) FROM outbox WHERE record_id = ?", arguments: [e.id])
        return EventLedger.nextVersion(event: e.version, queued: queued)
    }
}

extension EventLedger {
    // MARK: helpers (inside the caller's transaction)

    /// The session a correction names, or the class's first when it names none.
    func session(named name: String?, for s: Student) throws -> String {
        try Self.session(named: name, forClass: s.classCode, schedule: SchoolSchedule(store.config))
    }

    /// Sets an event's status (an UPDATE with a higher version) or creates it (NEW), with its outbox row.
    func setStatus(
        _ db: Database, student s: Student, day: LocalDate, session: String, kind: EventKind,
        status: AttendanceStatus, now: Date
    ) throws -> EventChange? {
        if let e = try AttendanceStore.event(db, student: s.code, day: day, session: session, kind: kind) {
            guard Self.changes(status: status, current: (e.status, e.cancelled)) else { return nil }
            let version = try AttendanceStore.nextVersion(db, e)
            try db.execute(
                sql: "UPDATE attendance_event SET status = ?, version = ?, cancelled = 0 WHERE id = ?",
                arguments: [status.rawValue, version, e.id])
            try enqueue(
                db, id: e.id, kind: .update, version: version, student: s, day: day, session: session, eventKind: kind,
                status: status, occurredAt: e.occurredAt, camera: e.camera, now: now)
            return EventChange(
                recordID: e.id, session: session, kind: kind, previousStatus: e.cancelled ? nil : e.status,
                status: status, eventKind: .update, version: version)
        }
        let id = EventLedger.recordID(school: store.config.school.code, student: s.code, day: day, session: session, kind: kind)
        try db.execute(
            sql: """
                INSERT INTO attendance_event(id, student_code, school_day, session, kind, status, occurred_at, camera, distance, version, cancelled)
                VALUES (?, ?, ?, ?, ?, ?, NULL, NULL, NULL, 1, 0)
                """, arguments: [id, s.code, day.description, session, kind.rawValue, status.rawValue])
        try enqueue(
            db, id: id, kind: .new, version: 1, student: s, day: day, session: session, eventKind: kind,
            status: status, occurredAt: nil, camera: nil, now: now)
        return EventChange(
            recordID: id, session: session, kind: kind, previousStatus: nil, status: status, eventKind: .new, version: 1)
    }

    /// The one outbox write: arrivals, revivals, corrections, cancellations and excuses all queue through it,
    /// in the transaction that changed the event.
    func enqueue(
        _ db: Database, id: String, kind: SectorRecord.EventKind, version: Int, student s: Student, day: LocalDate,
        session: String, eventKind: EventKind, status: AttendanceStatus, occurredAt: String?, camera: String?, now: Date
    ) throws {
        let at = Timestamp.string(now)
        let payload = try Self.outboxPayload(
            id: id, kind: kind, version: version, school: store.config.school.code, student: s, day: day, session: session,
            eventKind: eventKind, status: status, occurredAt: occurredAt, camera: camera, at: at)
        try db.execute(
            sql: """
                INSERT INTO outbox(record_id, version, event_kind, payload, state, attempts, created_at)
                VALUES (?, ?, ?, ?, 'pending', 0, ?)
                """, arguments: [id, version, kind.rawValue, payload, at])
    }

    /// An outbox row's payload: the sector record (JSON) of an event's version, on any backend.
    public static func outboxPayload(
        id: String, kind: SectorRecord.EventKind, version: Int, school: String, student s: Student, day: LocalDate,
        session: String, eventKind: EventKind, status: AttendanceStatus, occurredAt: String?, camera: String?, at: String
    ) throws -> String {
        let record = SectorRecord(
            recordID: id, eventKind: kind, version: version, updatedAt: at, schoolCode: school,
            gradeCode: s.gradeCode, classCode: s.classCode, studentCode: s.code, schoolDay: day.description,
            session: session, kind: eventKind.rawValue, status: status.rawValue, occurredAt: occurredAt, camera: camera)
        return String(decoding: try record.jsonData(), as: UTF8.self)
    }

    /// Sets the status of a student's check-in (or check-out) for a day and session by hand — the camera
    /// missed them, or the status was wrong. Changes the event (its version goes up) and queues an UPDATE
    /// with that version for the sector, or creates the event (NEW, version 1) when there was none, in one
    /// transaction with an audit entry. Returns nil when the event already had that status.
    ///
    /// `reason` is kept in the audit log: say what happened ("camera missed her"), not health details.
    public func correct(
        student code: String, day: LocalDate, session: String? = nil, kind: EventKind = .checkIn,
        status: AttendanceStatus, reason: String, now: Date = Date()
    ) throws -> EventChange? {
        let reason = try Self.manualReason(reason, for: "a correction")
        return try store.writer.write { db in
            let s = try AttendanceStore.correctionStudent(db, code)
            let session = try self.session(named: session, for: s)
            guard
                let change = try setStatus(db, student: s, day: day, session: session, kind: kind, status: status, now: now)
            else { return nil }
            try AttendanceStore.audit(
                db, action: "attendance.correct", student: s.code,
                detail: Self.correctionDetail(day: day, change: change, reason: reason))
            return change
        }
    }

    /// Withdraws an event recorded by mistake (a face matched the wrong student): the event is marked
    /// cancelled and a CANCEL record with a higher version is queued. Audited.
    public func cancelEvent(
        student code: String, day: LocalDate, session: String? = nil, kind: EventKind = .checkIn,
        reason: String, now: Date = Date()
    ) throws -> EventChange {
        let reason = try Self.manualReason(reason, for: "a cancellation")
        return try store.writer.write { db in
            let s = try AttendanceStore.correctionStudent(db, code)
            let session = try self.session(named: session, for: s)
            guard let e = try AttendanceStore.event(db, student: s.code, day: day, session: session, kind: kind), !e.cancelled
            else { throw Self.nothingToCancel(student: s.code, day: day, session: session, kind: kind) }
            let version = try AttendanceStore.nextVersion(db, e)
            try db.execute(
                sql: "UPDATE attendance_event SET version = ?, cancelled = 1 WHERE id = ?", arguments: [version, e.id])
            try enqueue(
                db, id: e.id, kind: .cancel, version: version, student: s, day: day, session: session, eventKind: kind,
                status: e.status, occurredAt: e.occurredAt, camera: e.camera, now: now)
            let change = EventChange(
                recordID: e.id, session: session, kind: kind, previousStatus: e.status, status: e.status,
                eventKind: .cancel, version: version)
            try AttendanceStore.audit(
                db, action: "attendance.cancel", student: s.code,
                detail: Self.cancellationDetail(day: day, change: change, reason: reason))
            return change
        }
    }

    /// Records that a student's absence on `day` is excused (có phép). In one transaction: the excuse
    /// (replacing an earlier one), each of the day's sessions that ended without the student checking in
    /// set to `excused` (an UPDATE, or a NEW event when there was none), and an audit entry. A check-in on
    /// time or late is left alone. Sessions that have not ended yet (a planned absence) get only the excuse,
    /// so a student who comes after all is still recorded. The reason stays in the excuse table, which is
    /// erased with the student; the append-only audit log does not copy it.
    public func excuse(student code: String, day: LocalDate, reason: String, now: Date = Date()) throws
        -> ExcuseResult
    {
        let reason = try Self.manualReason(reason, for: "an excuse")
        let schedule = SchoolSchedule(store.config)
        try Self.checkExcusable(day, schedule: schedule)
        return try store.writer.write { db in
            let s = try AttendanceStore.correctionStudent(db, code)
            let existed =
                try Bool.fetchOne(
                    db, sql: "SELECT EXISTS(SELECT 1 FROM excuse WHERE student_code = ? AND school_day = ?)",
                    arguments: [s.code, day.description]) ?? false
            try db.execute(
                sql: """
                    INSERT INTO excuse(student_code, school_day, reason, recorded_by, recorded_at) VALUES (?, ?, ?, ?, ?)
                    ON CONFLICT(student_code, school_day) DO UPDATE SET
                        reason = excluded.reason, recorded_by = excluded.recorded_by, recorded_at = excluded.recorded_at
                    """, arguments: [s.code, day.description, reason, AttendanceStore.actor, Timestamp.string(now)])
            var changes: [EventChange] = []
            for session in Self.endedSessions(classCode: s.classCode, day: day, schedule: schedule, now: now) {
                let current = try AttendanceStore.event(db, student: s.code, day: day, session: session, kind: .checkIn)
                guard Self.excuses(checkIn: current.map { ($0.status, $0.cancelled) }) else { continue }
                if let change = try setStatus(
                    db, student: s, day: day, session: session, kind: .checkIn, status: .excused, now: now)
                {
                    changes.append(change)
                }
            }
            let audit = Self.excuseAudit(day: day, replaced: existed, changes: changes)
            try AttendanceStore.audit(db, action: audit.action, student: s.code, detail: audit.detail)
            return ExcuseResult(student: s.code, day: day, replaced: existed, changes: changes)
        }
    }

    /// The excuses recorded for a day (or a student), for the CLI.
    public func excuses(day: LocalDate? = nil, student: String? = nil) throws -> [Excuse] {
        try store.writer.read { db in
            var sql = "SELECT student_code, school_day, reason, recorded_by FROM excuse WHERE 1"
            var args: StatementArguments = []
            if let day { sql += " AND school_day = ?"; args += [day.description] }
            if let student { sql += " AND student_code = ?"; args += [student] }
            sql += " ORDER BY school_day, student_code"
            return try Row.fetchAll(db, sql: sql, arguments: args).compactMap { r in
                LocalDate(r["school_day"] as String).map {
                    Excuse(student: r["student_code"], day: $0, reason: r["reason"], recordedBy: r["recorded_by"])
                }
            }
        }
    }
}
