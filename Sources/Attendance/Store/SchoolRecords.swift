import AttendanceCore
import Foundation
import GRDB

/// The store's concerns a school's database must agree on, whichever backend holds it: the embedded SQLite store of
/// a one-box school (`SQLiteSchoolRecords`) or the school's shared PostgreSQL (`PostgresSchoolRecords`, in
/// AttendancePostgres). The roster import, consent (and the child's own agreement from age 7), sealed enrolments
/// (at most `recognition.max_embeddings_per_student`), erasure, the append-only audit log and one arrival or departure
/// per student, day, session and kind, corrections, cancellations, excuses and the review queue. Each write is one transaction on its backend, with the same checks, the same
/// errors (`StoreError`) and the same audit entries; callers (the CLI, the contract tests) do not care which backend.
///
/// The embeddings are sealed with the box's key before they reach either backend; neither sees one in clear.
public protocol SchoolRecords: Sendable {
    /// "sqlite" or "postgresql" (for messages).
    var backend: String { get }

    // MARK: roster

    /// Applies a parsed roster in one transaction (see `RosterBook.importRoster`); a dry run changes nothing.
    func importRoster(_ roster: Roster, options: RosterImportOptions) async throws -> RosterImportReport
    func student(code: String) async throws -> Student?
    /// In class-list order (`RosterBook.students`).
    func students(classCode: String?, activeOnly: Bool) async throws -> [Student]
    func classes() async throws -> [SchoolClass]

    // MARK: consent

    /// Records a guardian's consent (audited); the child's own agreement is required from age 7.
    func recordConsent(
        student: String, guardian: String, relation: String, date: LocalDate, scope: String, childAgreed: Bool,
        source: String
    ) async throws -> Consent
    /// Revokes the consent in force and deletes the student's embeddings (audited); returns how many.
    func revokeConsent(student: String, reason: String?) async throws -> Int
    func activeConsent(student: String) async throws -> Consent?
    func consentHistory(student: String) async throws -> [Consent]

    // MARK: enrolments

    /// Seals and stores a student's embeddings (active, consent in force, within the limit; audited); the new ids.
    func enrol(student: String, _ items: [(embedding: [Float], quality: String?, source: String?)]) async throws -> [Int64]
    /// Deletes the student's embeddings (consent stays; audited); returns how many.
    func unenrol(student: String) async throws -> Int
    /// The student's embeddings, opened with the box's key, oldest first.
    func embeddings(student: String) async throws -> [[Float]]

    // MARK: erasure

    /// Removes every trace of the student; one audit entry (by the erasure pseudonym) records it.
    func erase(student: String, reason: String?) async throws -> ErasureReport

    // MARK: events

    /// Records an arrival or departure with its outbox row, once per student, day, session and kind.
    func record(_ event: NewAttendanceEvent) async throws -> Bool
    /// The events of a school day, by student code, session and kind.
    func events(on day: LocalDate) async throws -> [RecordedEvent]
    /// Outbox rows waiting for the sector database.
    func pendingOutbox() async throws -> Int

    // MARK: corrections and excuses (`EventLedger+Corrections`)

    /// Sets a student's check-in (or check-out) status by hand: the event's version goes up (an UPDATE for the sector),
    /// or it is created (NEW); audited with the reason. nil when it already had that status.
    func correct(
        student: String, day: LocalDate, session: String?, kind: EventKind, status: AttendanceStatus, reason: String,
        now: Date
    ) async throws -> EventChange?
    /// Withdraws an event recorded by mistake (a CANCEL with a higher version); audited.
    func cancelEvent(
        student: String, day: LocalDate, session: String?, kind: EventKind, reason: String, now: Date
    ) async throws -> EventChange
    /// Records an excuse for a school day (replacing an earlier one); the day's ended sessions without a check-in become
    /// excused; audited (the reason stays in the excuse table).
    func excuse(student: String, day: LocalDate, reason: String, now: Date) async throws -> ExcuseResult
    /// The excuses of a day and/or a student (nil: any), by day and student.
    func excuses(day: LocalDate?, student: String?) async throws -> [Excuse]

    // MARK: the review queue (`ReviewQueue`)

    /// Holds back a decided check-in the liveness check did not find real (the clock checked as for a record).
    func hold(_ event: NewAttendanceEvent, liveness: Float?, reason: HoldReason) async throws -> HoldOutcome
    /// Held check-ins, oldest first: by state (nil: every state), of these classes (nil: every class), of one day.
    func heldCheckIns(state: HoldState?, classes: [String]?, day: LocalDate?) async throws -> [HeldRecord]
    /// A teacher confirms the student was there: recorded as the gate decided it (the clock checked), the hold closed,
    /// audited. False when the student had been recorded for that session meanwhile.
    func acceptHeld(id: Int64) async throws -> Bool
    /// A teacher confirms it was not the student: the hold closed, nothing recorded; audited.
    func rejectHeld(id: Int64, reason: String?) async throws

    // MARK: audit

    /// Appends an entry (`subject` as given).
    func appendAudit(action: String, subject: String?, detail: String?) async throws
    /// Appends an entry about a student, named by an alias erasure unlinks.
    func appendAudit(action: String, student: String, detail: String?) async throws
    /// Every entry, oldest first, aliases resolved while the student exists.
    func auditEntries() async throws -> [AuditEntry]
}

/// An attendance event as a backend holds it (of the day `SchoolRecords.events(on:)` asked for).
public struct RecordedEvent: Sendable, Equatable, Codable {
    public var studentCode: String
    public var session: String
    public var kind: String
    public var recordID: String
    public var version: Int
    public var status: String
    public var cancelled: Bool

    public init(
        studentCode: String, session: String, kind: String, recordID: String, version: Int, status: String, cancelled: Bool
    ) {
        self.studentCode = studentCode; self.session = session; self.kind = kind; self.recordID = recordID
        self.version = version; self.status = status; self.cancelled = cancelled
    }

    /// The order both backends list events in.
    public static func order(_ a: RecordedEvent, _ b: RecordedEvent) -> Bool {
        (a.studentCode, a.session, a.kind) < (b.studentCode, b.session, b.kind)
    }
}

/// The embedded backend: the box's own SQLite store, through its concerns (`store.roster`, `store.consent`, ...).
/// In postgresql mode its writes refuse (`AttendanceStore.sharedGalleryRefusal`): the box's copy is the server's.
public struct SQLiteSchoolRecords: SchoolRecords {
    public let store: AttendanceStore
    public init(store: AttendanceStore) { self.store = store }
    public var backend: String { "sqlite" }

    public func importRoster(_ roster: Roster, options: RosterImportOptions) async throws -> RosterImportReport {
        try store.roster.importRoster(roster, options: options)
    }
    public func student(code: String) async throws -> Student? { try store.roster.student(code: code) }
    public func students(classCode: String?, activeOnly: Bool) async throws -> [Student] {
        try store.roster.students(classCode: classCode, activeOnly: activeOnly)
    }
    public func classes() async throws -> [SchoolClass] { try store.roster.classes() }

    public func recordConsent(
        student: String, guardian: String, relation: String, date: LocalDate, scope: String, childAgreed: Bool,
        source: String
    ) async throws -> Consent {
        try store.consent.record(
            student: student, guardian: guardian, relation: relation, date: date, scope: scope, childAgreed: childAgreed,
            source: source)
    }
    public func revokeConsent(student: String, reason: String?) async throws -> Int {
        try store.consent.revoke(student: student, reason: reason)
    }
    public func activeConsent(student: String) async throws -> Consent? { try store.consent.active(student: student) }
    public func consentHistory(student: String) async throws -> [Consent] { try store.consent.history(student: student) }

    public func enrol(student: String, _ items: [(embedding: [Float], quality: String?, source: String?)]) async throws
        -> [Int64]
    {
        try store.enrolments.add(student: student, items)
    }
    public func unenrol(student: String) async throws -> Int { try store.enrolments.remove(student: student) }
    public func embeddings(student: String) async throws -> [[Float]] {
        try store.enrolments.embeddings(student: student)
    }

    public func erase(student: String, reason: String?) async throws -> ErasureReport {
        try store.retention.erase(student: student, reason: reason)
    }

    public func record(_ event: NewAttendanceEvent) async throws -> Bool { try store.events.record(event) }
    public func events(on day: LocalDate) async throws -> [RecordedEvent] { try store.events.recorded(on: day) }
    public func pendingOutbox() async throws -> Int { try store.events.outboxDepth() }

    public func correct(
        student: String, day: LocalDate, session: String?, kind: EventKind, status: AttendanceStatus, reason: String,
        now: Date
    ) async throws -> EventChange? {
        try store.events.correct(
            student: student, day: day, session: session, kind: kind, status: status, reason: reason, now: now)
    }
    public func cancelEvent(
        student: String, day: LocalDate, session: String?, kind: EventKind, reason: String, now: Date
    ) async throws -> EventChange {
        try store.events.cancelEvent(student: student, day: day, session: session, kind: kind, reason: reason, now: now)
    }
    public func excuse(student: String, day: LocalDate, reason: String, now: Date) async throws -> ExcuseResult {
        try store.events.excuse(student: student, day: day, reason: reason, now: now)
    }
    public func excuses(day: LocalDate?, student: String?) async throws -> [Excuse] {
        try store.events.excuses(day: day, student: student)
    }

    public func hold(_ event: NewAttendanceEvent, liveness: Float?, reason: HoldReason) async throws -> HoldOutcome {
        try store.reviews.hold(event, liveness: liveness, reason: reason)
    }
    public func heldCheckIns(state: HoldState?, classes: [String]?, day: LocalDate?) async throws -> [HeldRecord] {
        try store.reviews.list(state: state, classes: classes, day: day)
    }
    public func acceptHeld(id: Int64) async throws -> Bool { try store.reviews.accept(id: id) }
    public func rejectHeld(id: Int64, reason: String?) async throws { try store.reviews.reject(id: id, reason: reason) }

    public func appendAudit(action: String, subject: String?, detail: String?) async throws {
        try store.auditLog.append(action: action, subject: subject, detail: detail)
    }
    public func appendAudit(action: String, student: String, detail: String?) async throws {
        try store.auditLog.append(action: action, student: student, detail: detail)
    }
    public func auditEntries() async throws -> [AuditEntry] { try store.auditLog.entries() }
}

extension EventLedger {
    /// The events of a school day (cancelled ones too), by student code, session and kind.
    public func recorded(on day: LocalDate) throws -> [RecordedEvent] {
        try store.writer.read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT id, student_code, session, kind, status, version, cancelled FROM attendance_event
                    WHERE school_day = ? ORDER BY student_code, session, kind
                    """, arguments: [day.description]
            ).map {
                RecordedEvent(
                    studentCode: $0["student_code"], session: $0["session"], kind: $0["kind"], recordID: $0["id"],
                    version: $0["version"], status: $0["status"], cancelled: $0["cancelled"])
            }
        }
    }
}
