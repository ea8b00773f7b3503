import Attendance
import AttendanceCore
import Foundation
import PostgresNIO
import SectorConnector

// Corrections, cancellations, excuses and the review queue on the school's server: the store's rules
// (`EventLedger.manualReason`, `session(named:forClass:schedule:)`, `nextVersion`, `changes(status:current:)`,
// `endedSessions`, `excuses(checkIn:)`, the audit details; `ReviewQueue.pending`, `recordedAlready`, `decisionAudit`;
// the clock rule `ClockPolicy.problem`) with the server's SQL, one transaction each, the same errors and audit entries.

extension PostgresSchoolRecords {
    /// An event as the server holds it (locked for the caller's transaction).
    struct ServerEvent {
        var id: String, status: AttendanceStatus, version: Int, cancelled: Bool, occurredAt: String?, camera: String?
    }

    static func event(
        _ c: PostgresConnection, student: String, day: LocalDate, session: String, kind: EventKind
    ) async throws -> ServerEvent? {
        guard
            let (id, status, version, cancelled, occurred, camera) = try await c.query(
                """
                SELECT record_id, status, version, cancelled, occurred_at, camera FROM attendance_event
                WHERE student_code = \(student) AND school_day = \(day.description) AND session = \(session)
                  AND kind = \(kind.rawValue) FOR UPDATE
                """, logger: logger
            ).collect().first?.decode((String, String, Int, Bool, String?, String?).self)
        else { return nil }
        return ServerEvent(
            id: id, status: AttendanceStatus(rawValue: status) ?? .absent, version: version, cancelled: cancelled,
            occurredAt: occurred, camera: camera)
    }

    static func nextVersion(_ c: PostgresConnection, _ e: ServerEvent) async throws -> Int {
        let queued =
            try await c.query("SELECT max(version) FROM outbox WHERE record_id = \(e.id)", logger: logger)
            .collect().first?.decode(Int?.self) ?? nil
        return EventLedger.nextVersion(event: e.version, queued: queued)
    }

    /// The clock rule of every record (`ClockPolicy.problem`, as `EventLedger.record` applies it in the journal)
    /// against the school's high-water mark on the server (`meta.clock_high_water`), moved forward in the caller's
    /// transaction. Throws `ClockProblem`, changing nothing, while this box's clock cannot date a record.
    func checkAndAdvanceClock(_ c: PostgresConnection) async throws -> Date {
        let now = box.now()
        let mark =
            try await c.query("SELECT value FROM meta WHERE key = 'clock_high_water' FOR UPDATE", logger: Self.logger)
            .collect().first?.decode(String.self)
        if let problem = box.clockPolicy.problem(now: now, highWater: mark.flatMap(Timestamp.date)) { throw problem }
        try await c.query(
            """
            INSERT INTO meta(key, value) VALUES ('clock_high_water', \(Timestamp.string(now)))
            ON CONFLICT (key) DO UPDATE SET value = greatest(meta.value, EXCLUDED.value)
            """, logger: Self.logger)
        return now
    }

    /// The one outbox write on the server: arrivals, revivals, corrections, cancellations, excuses and accepted
    /// reviews, in the transaction that changed the event (`EventLedger.outboxPayload`).
    func enqueue(
        _ c: PostgresConnection, id: String, kind: SectorRecord.EventKind, version: Int, student s: Student,
        day: LocalDate, session: String, eventKind: EventKind, status: AttendanceStatus, occurredAt: String?,
        camera: String?, now: Date
    ) async throws {
        let at = Timestamp.string(now)
        let payload = try EventLedger.outboxPayload(
            id: id, kind: kind, version: version, school: box.config.school.code, student: s, day: day, session: session,
            eventKind: eventKind, status: status, occurredAt: occurredAt, camera: camera, at: at)
        try await c.query(
            """
            INSERT INTO outbox(record_id, version, event_kind, payload, state, attempts, created_at)
            VALUES (\(id), \(version), \(kind.rawValue), \(payload), 'pending', 0, \(at))
            ON CONFLICT DO NOTHING
            """, logger: Self.logger)
    }

    /// `EventLedger.insert` on the server, inside a transaction that checked the clock: one event per student, day,
    /// session and kind (the record id, and the table's UNIQUE key when another gate commits the same one first),
    /// a cancelled one revived with a higher version; with its outbox row.
    func insert(_ c: PostgresConnection, _ e: NewAttendanceEvent, now: Date) async throws -> Bool {
        guard let s = try await Self.student(c, code: e.studentCode) else { throw StoreError.unknownStudent(e.studentCode) }
        let occurred = Timestamp.string(e.occurredAt)
        let id: String
        let version: Int
        let kind: SectorRecord.EventKind
        if let existing = try await Self.event(c, student: e.studentCode, day: e.schoolDay, session: e.session, kind: e.kind) {
            guard existing.cancelled else { return false }
            (id, version, kind) = (existing.id, try await Self.nextVersion(c, existing), .update)
            try await c.query(
                """
                UPDATE attendance_event SET status = \(e.status.rawValue), occurred_at = \(occurred), camera = \(e.camera),
                    distance = \(Double(e.distance)), version = \(version), cancelled = false
                WHERE record_id = \(id)
                """, logger: Self.logger)
        } else {
            (id, version, kind) = (
                EventLedger.recordID(
                    school: box.config.school.code, student: e.studentCode, day: e.schoolDay, session: e.session,
                    kind: e.kind), 1, .new
            )
            let inserted = try await c.query(
                """
                INSERT INTO attendance_event(record_id, student_code, school_day, session, kind, status, occurred_at,
                                             camera, distance, version, cancelled)
                VALUES (\(id), \(e.studentCode), \(e.schoolDay.description), \(e.session), \(e.kind.rawValue),
                        \(e.status.rawValue), \(occurred), \(e.camera), \(Double(e.distance)), 1, false)
                ON CONFLICT DO NOTHING RETURNING 1
                """, logger: Self.logger
            ).collect().count
            guard inserted == 1 else { return false }
        }
        try await enqueue(
            c, id: id, kind: kind, version: version, student: s, day: e.schoolDay, session: e.session, eventKind: e.kind,
            status: e.status, occurredAt: occurred, camera: e.camera, now: now)
        return true
    }

    /// `EventLedger.setStatus` on the server: an UPDATE with a higher version, or a NEW event; nil when unchanged.
    func setStatus(
        _ c: PostgresConnection, student s: Student, day: LocalDate, session: String, kind: EventKind,
        status: AttendanceStatus, now: Date
    ) async throws -> EventChange? {
        let current = try await Self.event(c, student: s.code, day: day, session: session, kind: kind)
        guard EventLedger.changes(status: status, current: current.map { ($0.status, $0.cancelled) }) else { return nil }
        if let e = current {
            let version = try await Self.nextVersion(c, e)
            try await c.query(
                """
                UPDATE attendance_event SET status = \(status.rawValue), version = \(version), cancelled = false
                WHERE record_id = \(e.id)
                """, logger: Self.logger)
            try await enqueue(
                c, id: e.id, kind: .update, version: version, student: s, day: day, session: session, eventKind: kind,
                status: status, occurredAt: e.occurredAt, camera: e.camera, now: now)
            return EventChange(
                recordID: e.id, session: session, kind: kind, previousStatus: e.cancelled ? nil : e.status, status: status,
                eventKind: .update, version: version)
        }
        let id = EventLedger.recordID(school: box.config.school.code, student: s.code, day: day, session: session, kind: kind)
        try await c.query(
            """
            INSERT INTO attendance_event(record_id, student_code, school_day, session, kind, status, version, cancelled)
            VALUES (\(id), \(s.code), \(day.description), \(session), \(kind.rawValue), \(status.rawValue), 1, false)
            """, logger: Self.logger)
        try await enqueue(
            c, id: id, kind: .new, version: 1, student: s, day: day, session: session, eventKind: kind, status: status,
            occurredAt: nil, camera: nil, now: now)
        return EventChange(
            recordID: id, session: session, kind: kind, previousStatus: nil, status: status, eventKind: .new, version: 1)
    }

    func lockedStudent(_ c: PostgresConnection, _ code: String) async throws -> Student {
        guard let s = try await Self.student(c, code: code, lock: true) else { throw StoreError.unknownStudent(code) }
        return s
    }

    var schedule: SchoolSchedule { SchoolSchedule(box.config) }

    // MARK: corrections

    public func correct(
        student code: String, day: LocalDate, session: String?, kind: EventKind, status: AttendanceStatus, reason: String,
        now: Date
    ) async throws -> EventChange? {
        let reason = try EventLedger.manualReason(reason, for: "a correction")
        return try await transaction { c in
            let s = try await lockedStudent(c, code)
            let session = try EventLedger.session(named: session, forClass: s.classCode, schedule: schedule)
            guard
                let change = try await setStatus(
                    c, student: s, day: day, session: session, kind: kind, status: status, now: now)
            else { return nil }
            try await Self.audit(
                c, action: "attendance.correct", student: s.code,
                detail: EventLedger.correctionDetail(day: day, change: change, reason: reason))
            return change
        }
    }

    public func cancelEvent(
        student code: String, day: LocalDate, session: String?, kind: EventKind, reason: String, now: Date
    ) async throws -> EventChange {
        let reason = try EventLedger.manualReason(reason, for: "a cancellation")
        return try await transaction { c in
            let s = try await lockedStudent(c, code)
            let session = try EventLedger.session(named: session, forClass: s.classCode, schedule: schedule)
            guard let e = try await Self.event(c, student: s.code, day: day, session: session, kind: kind), !e.cancelled
            else { throw EventLedger.nothingToCancel(student: s.code, day: day, session: session, kind: kind) }
            let version = try await Self.nextVersion(c, e)
            try await c.query(
                "UPDATE attendance_event SET version = \(version), cancelled = true WHERE record_id = \(e.id)",
                logger: Self.logger)
            try await enqueue(
                c, id: e.id, kind: .cancel, version: version, student: s, day: day, session: session, eventKind: kind,
                status: e.status, occurredAt: e.occurredAt, camera: e.camera, now: now)
            let change = EventChange(
                recordID: e.id, session: session, kind: kind, previousStatus: e.status, status: e.status,
                eventKind: .cancel, version: version)
            try await Self.audit(
                c, action: "attendance.cancel", student: s.code,
                detail: EventLedger.cancellationDetail(day: day, change: change, reason: reason))
            return change
        }
    }

    public func excuse(student code: String, day: LocalDate, reason: String, now: Date) async throws -> ExcuseResult {
        let reason = try EventLedger.manualReason(reason, for: "an excuse")
        let schedule = schedule
        try EventLedger.checkExcusable(day, schedule: schedule)
        return try await transaction { c in
            let s = try await lockedStudent(c, code)
            let existed =
                try await c.query(
                    """
                    INSERT INTO excuse(student_code, school_day, reason, recorded_by, recorded_at)
                    VALUES (\(s.code), \(day.description), \(reason), \(AttendanceStore.actor), \(Timestamp.string(now)))
                    ON CONFLICT (student_code, school_day) DO UPDATE SET
                        reason = EXCLUDED.reason, recorded_by = EXCLUDED.recorded_by, recorded_at = EXCLUDED.recorded_at
                    RETURNING xmax <> 0
                    """, logger: Self.logger
                ).collect().first?.decode(Bool.self) ?? false
            var changes: [EventChange] = []
            for session in EventLedger.endedSessions(classCode: s.classCode, day: day, schedule: schedule, now: now) {
                let current = try await Self.event(c, student: s.code, day: day, session: session, kind: .checkIn)
                guard EventLedger.excuses(checkIn: current.map { ($0.status, $0.cancelled) }) else { continue }
                if let change = try await setStatus(
                    c, student: s, day: day, session: session, kind: .checkIn, status: .excused, now: now)
                {
                    changes.append(change)
                }
            }
            let audit = EventLedger.excuseAudit(day: day, replaced: existed, changes: changes)
            try await Self.audit(c, action: audit.action, student: s.code, detail: audit.detail)
            return ExcuseResult(student: s.code, day: day, replaced: existed, changes: changes)
        }
    }

    public func excuses(day: LocalDate?, student: String?) async throws -> [Excuse] {
        try await read { c in
            var out: [Excuse] = []
            for try await (code, date, reason, by) in try await c.query(
                """
                SELECT student_code, school_day, reason, recorded_by FROM excuse
                WHERE (\(day?.description)::text IS NULL OR school_day = \(day?.description))
                  AND (\(student)::text IS NULL OR student_code = \(student))
                ORDER BY school_day, student_code
                """, logger: Self.logger
            ).decode((String, String, String, String).self) {
                guard let d = LocalDate(date) else { continue }
                out.append(Excuse(student: code, day: d, reason: reason, recordedBy: by))
            }
            return out
        }
    }

    // MARK: the review queue

    public func hold(_ e: NewAttendanceEvent, liveness: Float?, reason: HoldReason) async throws -> HoldOutcome {
        try await transaction { c in
            _ = try await checkAndAdvanceClock(c)
            guard try await Self.student(c, code: e.studentCode) != nil else { throw StoreError.unknownStudent(e.studentCode) }
            let current = try await Self.event(c, student: e.studentCode, day: e.schoolDay, session: e.session, kind: e.kind)
            if ReviewQueue.recordedAlready(current.map { ($0.status, $0.cancelled) }) { return .alreadyRecorded }
            let id = try await c.query(
                """
                INSERT INTO review_hold(student_code, school_day, session, kind, status, occurred_at, camera, distance,
                                        liveness, reason)
                VALUES (\(e.studentCode), \(e.schoolDay.description), \(e.session), \(e.kind.rawValue), \(e.status.rawValue),
                        \(Timestamp.string(e.occurredAt)), \(e.camera), \(Double(e.distance)), \(liveness.map { Double($0) }),
                        \(reason.rawValue))
                ON CONFLICT (student_code, school_day, session, kind) DO NOTHING RETURNING id
                """, logger: Self.logger
            ).collect().first?.decode(Int64.self)
            return id.map { .held(id: $0) } ?? .alreadyHeld
        }
    }

    static let heldSQL = """
        SELECT h.id, h.student_code, h.school_day, h.session, h.kind, h.status, h.occurred_at, h.camera, h.distance,
               h.liveness, h.reason, h.state, h.decided_by, h.decided_at, s.full_name, s.class_code
        FROM review_hold h JOIN student s ON s.code = h.student_code
        """

    static func held(_ c: PostgresConnection, _ query: PostgresQuery) async throws -> [HeldRecord] {
        var out: [HeldRecord] = []
        for try await row in try await c.query(query, logger: logger) {
            let (id, code, day, session, kind, status, occurred, camera, distance, liveness, reason, state, by, at, name, klass) =
                try row.decode(
                    (
                        Int64, String, String, String, String, String, String, String, Double, Double?, String, String,
                        String?, String?, String, String
                    ).self)
            out.append(
                HeldRecord(
                    id: id,
                    event: NewAttendanceEvent(
                        studentCode: code, schoolDay: LocalDate(day) ?? LocalDate(year: 1970, month: 1, day: 1),
                        session: session, kind: EventKind(rawValue: kind) ?? .checkIn,
                        status: AttendanceStatus(rawValue: status) ?? .present,
                        occurredAt: Timestamp.date(occurred) ?? Date(timeIntervalSince1970: 0), camera: camera,
                        distance: Float(distance)),
                    studentName: name, classCode: klass, liveness: liveness.map(Float.init),
                    reason: HoldReason(rawValue: reason) ?? .spoof, state: HoldState(rawValue: state) ?? .pending,
                    decidedBy: by, decidedAt: at.flatMap(Timestamp.date)))
        }
        return out
    }

    public func heldCheckIns(state: HoldState?, classes: [String]?, day: LocalDate?) async throws -> [HeldRecord] {
        try await read { c in
            var b = PostgresBindings()
            b.append(state?.rawValue)
            b.append(classes.map { $0.map(SchoolClass.normalisedCode) })
            b.append(day?.description)
            let sql =
                Self.heldSQL + """
                     WHERE ($1::text IS NULL OR h.state = $1) AND ($2::text[] IS NULL OR s.class_code = ANY($2))
                      AND ($3::text IS NULL OR h.school_day = $3)
                    ORDER BY h.occurred_at, h.id
                    """
            return try await Self.held(c, PostgresQuery(unsafeSQL: sql, binds: b))
        }
    }

    /// One held check-in (nil: no such id).
    public func heldCheckIn(id: Int64) async throws -> HeldRecord? {
        try await read { c in
            var b = PostgresBindings()
            b.append(id)
            return try await Self.held(c, PostgresQuery(unsafeSQL: Self.heldSQL + " WHERE h.id = $1", binds: b)).first
        }
    }

    /// The held check-ins of the days `from`...`to` a teacher has decided (on any box).
    public func decidedHolds(from: LocalDate, to: LocalDate) async throws -> [HeldRecord] {
        try await read { c in
            var b = PostgresBindings()
            b.append(from.description)
            b.append(to.description)
            return try await Self.held(
                c,
                PostgresQuery(
                    unsafeSQL: Self.heldSQL + " WHERE h.state <> 'pending' AND h.school_day BETWEEN $1 AND $2 ORDER BY h.id",
                    binds: b))
        }
    }

    /// The server's events of a student and day, as a gate's journal takes them (`EventLedger.applyFromServer`).
    public func journalRecords(student: String, day: LocalDate) async throws -> [JournalRecord] {
        try await journalRecords(from: day, to: day, student: student)
    }

    /// The server's events of the days `from`...`to` (of one student, or all), as a gate's journal takes them.
    public func journalRecords(from: LocalDate, to: LocalDate, student: String? = nil) async throws -> [JournalRecord] {
        try await read { c in
            var out: [JournalRecord] = []
            for try await (id, code, day, session, kind, status, occurred, camera, distance, version, cancelled)
                in try await c.query(
                    """
                    SELECT record_id, student_code, school_day, session, kind, status, occurred_at, camera, distance,
                           version, cancelled
                    FROM attendance_event
                    WHERE school_day BETWEEN \(from.description) AND \(to.description)
                      AND (\(student)::text IS NULL OR student_code = \(student))
                    """, logger: Self.logger
                ).decode((String, String, String, String, String, String, String?, String?, Double?, Int, Bool).self)
            {
                out.append(
                    JournalRecord(
                        recordID: id, studentCode: code, schoolDay: day, session: session, kind: kind, status: status,
                        occurredAt: occurred, camera: camera, distance: distance, version: version, cancelled: cancelled,
                        outboxKind: nil, payload: nil, queuedAt: nil))
            }
            return out
        }
    }

    /// The excuses of the days `from`...`to`.
    public func excuses(from: LocalDate, to: LocalDate) async throws -> [Excuse] {
        try await read { c in
            var out: [Excuse] = []
            for try await (code, date, reason, by) in try await c.query(
                """
                SELECT student_code, school_day, reason, recorded_by FROM excuse
                WHERE school_day BETWEEN \(from.description) AND \(to.description)
                """, logger: Self.logger
            ).decode((String, String, String, String).self) {
                guard let d = LocalDate(date) else { continue }
                out.append(Excuse(student: code, day: d, reason: reason, recordedBy: by))
            }
            return out
        }
    }

    func pendingHold(_ c: PostgresConnection, id: Int64) async throws -> HeldRecord {
        var b = PostgresBindings()
        b.append(id)
        let rows = try await Self.held(c, PostgresQuery(unsafeSQL: Self.heldSQL + " WHERE h.id = $1 FOR UPDATE OF h", binds: b))
        return try ReviewQueue.pending(rows.first, id: id)
    }

    func close(_ c: PostgresConnection, _ held: HeldRecord, as state: HoldState, now: Date, detail: String?) async throws {
        try await c.query(
            """
            UPDATE review_hold SET state = \(state.rawValue), decided_by = \(AttendanceStore.actor),
                decided_at = \(Timestamp.string(now))
            WHERE id = \(held.id)
            """, logger: Self.logger)
        let audit = ReviewQueue.decisionAudit(held, as: state, detail: detail)
        try await Self.audit(c, action: audit.action, student: held.event.studentCode, detail: audit.detail)
    }

    public func acceptHeld(id: Int64) async throws -> Bool {
        try await transaction { c in
            let now = try await checkAndAdvanceClock(c)
            let held = try await pendingHold(c, id: id)
            let recorded = try await insert(c, held.event, now: now)
            try await close(c, held, as: .accepted, now: now, detail: ReviewQueue.acceptDetail(recorded: recorded))
            return recorded
        }
    }

    public func rejectHeld(id: Int64, reason: String?) async throws {
        try await transaction { c in
            let held = try await pendingHold(c, id: id)
            try await close(c, held, as: .rejected, now: box.now(), detail: ReviewQueue.rejectDetail(reason: reason))
        }
    }
}
