import Attendance
import AttendanceCore
import Foundation
import Logging
import PostgresNIO
import SectorConnector

/// The school's shared PostgreSQL as a `SchoolRecords` backend: the same roster import, consent, enrolments, erasure,
/// events and audit log as the SQLite store (`SQLiteSchoolRecords`), with the same rules (shared with the store:
/// `AttendanceStore.rosterChange`, `consentToRecord`, `EventLedger.recordID`, `outboxPayload`), the same errors and
/// the same audit entries, over the server's schema (`PostgresSchema`). Each write is one server transaction; the
/// gallery trigger bumps the server's gallery version and notifies the gates in it.
///
/// `box` is the gate box's own store: its key seals the embeddings before they leave the box (and opens them again),
/// its pseudonym key names an erased student, its config gives the school code and the enrolment limit. One
/// connection per call, closed afterwards.
public struct PostgresSchoolRecords: SchoolRecords {
    public let connector: PostgresConnector
    public let box: AttendanceStore

    public init(connector: PostgresConnector, box: AttendanceStore) {
        self.connector = connector
        self.box = box
    }

    public var backend: String { "postgresql" }

    static let logger = SchoolGallery.logger

    /// `body` in one transaction on a new connection (rolled back when it throws, or with `rollback`: a dry run);
    /// the closure's own errors (a `StoreError`) are thrown as they are, the server's explained (`PostgresProblem`).
    func transaction<R: Sendable>(rollback: Bool = false, _ body: (PostgresConnection) async throws -> R) async throws -> R {
        try await connector.withConnection { c in
            try await c.query("BEGIN", logger: Self.logger)
            do {
                let r = try await body(c)
                try await c.query(rollback ? "ROLLBACK" : "COMMIT", logger: Self.logger)
                return r
            } catch {
                _ = try? await c.query("ROLLBACK", logger: Self.logger)
                throw error
            }
        }
    }

    /// A read on a new connection.
    func read<R: Sendable>(_ body: (PostgresConnection) async throws -> R) async throws -> R {
        try await connector.withConnection(body)
    }

    // MARK: roster

    static let studentSQL = """
        SELECT s.code, s.full_name, s.class_code, c.grade_code, s.date_of_birth, s.gender, s.active, s.created_at,
               s.updated_at
        FROM student s JOIN school_class c ON c.code = s.class_code
        """

    static func students(_ c: PostgresConnection, _ query: PostgresQuery) async throws -> [Student] {
        var out: [Student] = []
        for try await (code, name, klass, grade, born, gender, active, created, updated) in try await c.query(
            query, logger: logger
        ).decode((String, String, String, String, String?, String?, Bool, String, String).self) {
            out.append(
                Student(
                    code: code, fullName: name, classCode: klass, gradeCode: grade, dateOfBirth: born.flatMap(LocalDate.init),
                    gender: gender, active: active, createdAt: created, updatedAt: updated))
        }
        return out
    }

    static func student(_ c: PostgresConnection, code: String, lock: Bool = false) async throws -> Student? {
        try await students(
            c, PostgresQuery(unsafeSQL: studentSQL + " WHERE s.code = $1" + (lock ? " FOR UPDATE OF s" : ""), binds: binds(code))
        ).first
    }

    static func binds(_ values: String...) -> PostgresBindings {
        var b = PostgresBindings()
        for v in values { b.append(v) }
        return b
    }

    public func student(code: String) async throws -> Student? {
        try await read { c in try await Self.student(c, code: code) }
    }

    public func students(classCode: String?, activeOnly: Bool) async throws -> [Student] {
        let rows = try await read { c in
            var b = PostgresBindings()
            b.append(classCode.map(SchoolClass.normalisedCode))
            b.append(activeOnly)
            let sql = Self.studentSQL + " WHERE ($1::text IS NULL OR s.class_code = $1) AND (NOT $2 OR s.active)"
            return try await Self.students(c, PostgresQuery(unsafeSQL: sql, binds: b))
        }
        return rows.sorted(by: Student.classListOrder)
    }

    public func classes() async throws -> [SchoolClass] {
        try await read { c in
            var out: [SchoolClass] = []
            for try await (code, grade, name) in try await c.query(
                "SELECT code, grade_code, name FROM school_class", logger: Self.logger
            ).decode((String, String, String?).self) {
                out.append(SchoolClass(code: code, gradeCode: grade, name: name))
            }
            return out.sorted { ($0.gradeCode, $0.code) < ($1.gradeCode, $1.code) }
        }
    }

    /// The roster import (`RosterBook.importRoster`) on the server, in one transaction; concurrent imports from
    /// several boxes wait for each other (an advisory lock). A dry run computes the same report and rolls back.
    public func importRoster(_ roster: Roster, options: RosterImportOptions) async throws -> RosterImportReport {
        try await connector.withConnection { c in try await SchoolGallery.useSchoolPseudonymKey(box, on: c) }
        let pseudonyms = Dictionary(roster.entries.map { ($0.code, box.pseudonym(of: $0.code)) }, uniquingKeysWith: { a, _ in a })
        return try await transaction(rollback: options.dryRun) { c in
            try await Self.applyRoster(c, roster, options: options, pseudonyms: pseudonyms)
        }
    }

    /// A consent row as the roster import compares it.
    struct ConsentKey: Hashable {
        var guardian: String, relation: String, date: String, active: Bool
    }

    /// The import reads what it compares in three queries (the listed students, locked; their consents; the erasure
    /// register's entries for them), then writes only what changes: a re-imported class list of 1,500 unchanged
    /// students is a handful of statements, not thousands.
    static func applyRoster(
        _ c: PostgresConnection, _ roster: Roster, options: RosterImportOptions, pseudonyms: [String: String]
    ) async throws -> RosterImportReport {
        // One roster import at a time for the whole school (a constant key: "attendance roster").
        try await c.query("SELECT pg_advisory_xact_lock(7100170002)", logger: logger)
        var report = RosterImportReport(file: roster.file, dryRun: options.dryRun)
        let now = Timestamp.string(Date())
        let file = (roster.file as NSString).lastPathComponent
        var grades: [String: String] = [:]
        for try await (code, grade) in try await c.query("SELECT code, grade_code FROM school_class", logger: logger)
            .decode((String, String).self)
        {
            grades[code] = grade
        }
        for k in roster.classes {
            if grades[k.code] == nil {
                try await c.query(
                    "INSERT INTO school_class(code, grade_code) VALUES (\(k.code), \(k.gradeCode))", logger: logger)
                report.classesAdded.append(k.code)
            } else if grades[k.code] != k.gradeCode {
                try await c.query("UPDATE school_class SET grade_code = \(k.gradeCode) WHERE code = \(k.code)", logger: logger)
            }
        }
        let codes = roster.entries.map(\.code)
        var b = PostgresBindings()
        b.append(codes)
        let stored = Dictionary(
            try await students(c, PostgresQuery(unsafeSQL: studentSQL + " WHERE s.code = ANY($1) FOR UPDATE OF s", binds: b))
                .map { ($0.code, $0) }, uniquingKeysWith: { a, _ in a })
        var consents: [String: Set<ConsentKey>] = [:]
        for try await (code, guardian, relation, date, active) in try await c.query(
            """
            SELECT student_code, guardian_name, relation, consent_date, revoked_at IS NULL FROM consent
            WHERE student_code = ANY(\(codes))
            """, logger: logger
        ).decode((String, String, String, String, Bool).self) {
            consents[code, default: []].insert(ConsentKey(guardian: guardian, relation: relation, date: date, active: active))
        }
        var erased: [String: String] = [:]
        for try await (pseudonym, at) in try await c.query(
            "SELECT pseudonym, erased_at FROM erased_student WHERE pseudonym = ANY(\(Array(pseudonyms.values)))", logger: logger
        ).decode((String, String).self) {
            erased[pseudonym] = at
        }
        let keyLoss = try await c.query("SELECT value FROM meta WHERE key = 'consent_cutoff'", logger: logger).collect()
            .first?.decode(String.self)
        for entry in roster.entries {
            let student: Student
            if let old = stored[entry.code] {
                let (e, fields) = AttendanceStore.rosterChange(entry, of: old, in: roster)
                student = Student(
                    code: e.code, fullName: e.fullName, classCode: e.classCode, gradeCode: e.gradeCode,
                    dateOfBirth: e.dateOfBirth, gender: e.gender)
                if fields.isEmpty {
                    report.unchanged += 1
                } else {
                    try await c.query(
                        """
                        UPDATE student SET full_name = \(e.fullName), class_code = \(e.classCode),
                            date_of_birth = \(e.dateOfBirth?.description), gender = \(e.gender), active = true, updated_at = \(now)
                        WHERE code = \(e.code)
                        """, logger: logger)
                    report.changed.append(.init(code: e.code, fields: fields))
                }
            } else {
                student = Student(
                    code: entry.code, fullName: entry.fullName, classCode: entry.classCode, gradeCode: entry.gradeCode,
                    dateOfBirth: entry.dateOfBirth, gender: entry.gender)
                try await c.query(
                    """
                    INSERT INTO student(code, full_name, class_code, date_of_birth, gender, active, created_at, updated_at)
                    VALUES (\(entry.code), \(entry.fullName), \(entry.classCode), \(entry.dateOfBirth?.description),
                            \(entry.gender), true, \(now), \(now))
                    """, logger: logger)
                report.added.append(entry.code)
            }
            guard let k = entry.consent else { continue }
            let date = k.date.description
            let known = consents[entry.code] ?? []
            let same = known.contains(ConsentKey(guardian: k.guardian, relation: k.relation, date: date, active: true))
            let revokedSame = known.contains { !$0.active && $0.guardian == k.guardian && $0.date == date }
            let cutoff = AttendanceStore.consentCutoff(erasedAt: pseudonyms[entry.code].flatMap { erased[$0] }, keyLoss: keyLoss)
            switch AttendanceStore.rosterConsentDecision(k, same: same, revokedSame: revokedSame, cutoff: cutoff) {
            case .alreadyKnown: break
            case .refusedErased: report.consentsRefusedErased.append(entry.code)
            case .record:
                _ = try await recordConsent(
                    c, student: student, guardian: k.guardian, relation: k.relation, date: k.date,
                    scope: k.scope ?? Consent.defaultScope, childAgreed: k.childAgreed,
                    source: "roster \(file) line \(entry.line)")
                report.consentsRecorded.append(entry.code)
            }
        }
        let listed = Set(codes)
        let classes = Set(roster.entries.map(\.classCode))
        var missing: [String] = []
        for try await (code, cls) in try await c.query(
            "SELECT code, class_code FROM student WHERE active AND NOT (code = ANY(\(codes))) FOR UPDATE", logger: logger
        ).decode((String, String).self) where !listed.contains(code) && (options.wholeSchool || classes.contains(cls)) {
            missing.append(code)
        }
        if !missing.isEmpty {
            try await c.query(
                "UPDATE student SET active = false, updated_at = \(now) WHERE code = ANY(\(missing))", logger: logger)
        }
        report.deactivated = missing.sorted()
        try await audit(c, action: "roster.import", subject: file, detail: AttendanceStore.rosterAuditDetail(report))
        return report
    }

    // MARK: consent

    public func recordConsent(
        student: String, guardian: String, relation: String, date: LocalDate, scope: String, childAgreed: Bool,
        source: String
    ) async throws -> Consent {
        try await transaction { c in
            try await Self.recordConsent(
                c, student: student, guardian: guardian, relation: relation, date: date, scope: scope,
                childAgreed: childAgreed, source: source)
        }
    }

    static func recordConsent(
        _ c: PostgresConnection, student: String, guardian: String, relation: String, date: LocalDate, scope: String,
        childAgreed: Bool, source: String
    ) async throws -> Consent {
        guard let s = try await Self.student(c, code: student, lock: true) else { throw StoreError.unknownStudent(student) }
        return try await recordConsent(
            c, student: s, guardian: guardian, relation: relation, date: date, scope: scope, childAgreed: childAgreed,
            source: source)
    }

    /// The consent rules (`AttendanceStore.consentToRecord`), then the consent, the student's audit alias (made on first
    /// use) and the audit entry in one statement.
    static func recordConsent(
        _ c: PostgresConnection, student s: Student, guardian: String, relation: String, date: LocalDate, scope: String,
        childAgreed: Bool, source: String
    ) async throws -> Consent {
        let (guardian, relation, scope) = try AttendanceStore.consentToRecord(
            s, guardian: guardian, relation: relation, date: date, scope: scope, childAgreed: childAgreed)
        let now = Timestamp.string(Date())
        let actor = AttendanceStore.actor
        let detail = "relation=\(relation); date=\(date); scope=\(scope); via=\(source)"
        let id =
            try await c.query(
                """
                WITH made AS (
                    INSERT INTO consent(student_code, guardian_name, relation, consent_date, scope, recorded_by, recorded_at)
                    VALUES (\(s.code), \(guardian), \(relation), \(date.description), \(scope), \(actor), \(now)) RETURNING id),
                fresh AS (
                    INSERT INTO student_alias(student_code, alias) VALUES (\(s.code), \(SchoolGallery.freshAlias()))
                    ON CONFLICT (student_code) DO NOTHING RETURNING alias),
                audited AS (
                    INSERT INTO audit_log(at, os_user, action, subject, detail)
                    SELECT \(now), \(actor), 'consent.record',
                           (SELECT alias FROM fresh UNION ALL SELECT alias FROM student_alias WHERE student_code = \(s.code)
                            LIMIT 1),
                           \(detail))
                SELECT id FROM made
                """, logger: logger
            ).collect().first?.decode(Int64.self) ?? 0
        return Consent(
            id: id, studentCode: s.code, guardianName: guardian, relation: relation, consentDate: date, scope: scope,
            recordedBy: actor, recordedAt: now)
    }

    public func revokeConsent(student: String, reason: String?) async throws -> Int {
        try await transaction { c in
            guard try await Self.student(c, code: student, lock: true) != nil else { throw StoreError.unknownStudent(student) }
            guard try await Self.consents(c, student: student).contains(where: \.isActive) else {
                throw StoreError.invalid("student '\(student)' has no consent in force; nothing to revoke")
            }
            let now = Timestamp.string(Date())
            try await c.query(
                """
                UPDATE consent SET revoked_at = \(now), revoked_by = \(AttendanceStore.actor)
                WHERE student_code = \(student) AND revoked_at IS NULL
                """, logger: Self.logger)
            let deleted = try await Self.deleteFaces(c, student: student)
            try await Self.audit(
                c, action: "consent.revoke", student: student,
                detail: "embeddings deleted=\(deleted)" + (reason.map { "; reason=\($0)" } ?? ""))
            return deleted
        }
    }

    /// Deletes the student's enrolments and gate sighting; returns how many enrolments.
    static func deleteFaces(_ c: PostgresConnection, student: String) async throws -> Int {
        let n =
            try await c.query(
                "WITH gone AS (DELETE FROM enrolment WHERE student_code = \(student) RETURNING 1) SELECT count(*) FROM gone",
                logger: logger
            ).collect().first?.decode(Int.self) ?? 0
        try await c.query("DELETE FROM gate_sighting WHERE student_code = \(student)", logger: logger)
        return n
    }

    static func consents(_ c: PostgresConnection, student: String) async throws -> [Consent] {
        var out: [Consent] = []
        for try await (id, code, guardian, relation, date, scope, by, at, revokedAt, revokedBy) in try await c.query(
            """
            SELECT id, student_code, guardian_name, relation, consent_date, scope, recorded_by, recorded_at, revoked_at,
                   revoked_by
            FROM consent WHERE student_code = \(student) ORDER BY id
            """, logger: logger
        ).decode((Int64, String, String, String, String, String, String, String, String?, String?).self) {
            guard let day = LocalDate(date) else { continue }
            out.append(
                Consent(
                    id: id, studentCode: code, guardianName: guardian, relation: relation, consentDate: day, scope: scope,
                    recordedBy: by, recordedAt: at, revokedAt: revokedAt, revokedBy: revokedBy))
        }
        return out
    }

    public func activeConsent(student: String) async throws -> Consent? {
        try await consentHistory(student: student).last(where: \.isActive)
    }

    public func consentHistory(student: String) async throws -> [Consent] {
        try await read { c in try await Self.consents(c, student: student) }
    }

    // MARK: enrolments

    /// `SchoolGallery.enrol`: the school's key check, the student active with consent, the limit; audited.
    public func enrol(student: String, _ items: [(embedding: [Float], quality: String?, source: String?)]) async throws
        -> [Int64]
    {
        try await connector.withConnection { c in try await SchoolGallery.enrol(student: student, items, store: box, on: c) }
    }

    public func unenrol(student: String) async throws -> Int {
        try await transaction { c in
            guard try await Self.student(c, code: student, lock: true) != nil else { throw StoreError.unknownStudent(student) }
            let n = try await Self.deleteFaces(c, student: student)
            try await Self.audit(c, action: "unenrol", student: student, detail: "embeddings deleted=\(n)")
            return n
        }
    }

    public func embeddings(student: String) async throws -> [[Float]] {
        let sealed = try await read { c in
            var out: [Data] = []
            for try await blob in try await c.query(
                "SELECT sealed_embedding FROM enrolment WHERE student_code = \(student) ORDER BY id", logger: Self.logger
            ).decode(Data.self) {
                out.append(blob)
            }
            return out
        }
        return try sealed.map { try box.schoolGallery.open($0, student: student) }
    }

    // MARK: erasure

    /// `SchoolGallery.erase` (one audited server transaction, the box's pseudonym in the erasure register).
    public func erase(student: String, reason: String?) async throws -> ErasureReport {
        let r = try await connector.withConnection { c in
            try await SchoolGallery.useSchoolPseudonymKey(box, on: c)
            return try await SchoolGallery.erase(student: student, pseudonym: box.pseudonym(of: student), reason: reason, on: c)
        }
        var report = ErasureReport(student: student)
        report.enrolments = r.enrolments
        report.consents = r.consents
        report.events = r.events
        report.outbox = r.outbox
        report.excuses = r.excuses
        return report
    }

    // MARK: events

    /// `EventLedger.record` on the server: the clock rule against the school's high-water mark
    /// (`checkAndAdvanceClock`), then one event per student, day, session and kind with its outbox row
    /// (`insert`). The gates themselves write their journal and `JournalSender` moves it here; this is the same rule for
    /// a box that writes to the server directly.
    public func record(_ e: NewAttendanceEvent) async throws -> Bool {
        try await transaction { c in
            let now = try await checkAndAdvanceClock(c)
            return try await insert(c, e, now: now)
        }
    }

    public func events(on day: LocalDate) async throws -> [RecordedEvent] {
        try await read { c in
            var out: [RecordedEvent] = []
            for try await (id, student, session, kind, status, version, cancelled) in try await c.query(
                """
                SELECT record_id, student_code, session, kind, status, version, cancelled FROM attendance_event
                WHERE school_day = \(day.description)
                """, logger: Self.logger
            ).decode((String, String, String, String, String, Int, Bool).self) {
                out.append(
                    RecordedEvent(
                        studentCode: student, session: session, kind: kind, recordID: id, version: version, status: status,
                        cancelled: cancelled))
            }
            return out.sorted(by: RecordedEvent.order)
        }
    }

    public func pendingOutbox() async throws -> Int {
        try await read { c in
            try await c.query("SELECT count(*) FROM outbox WHERE state = 'pending'", logger: Self.logger).collect().first?
                .decode(Int.self) ?? 0
        }
    }

    // MARK: audit

    static func audit(_ c: PostgresConnection, action: String, subject: String?, detail: String?) async throws {
        try await c.query(
            """
            INSERT INTO audit_log(at, os_user, action, subject, detail)
            VALUES (\(Timestamp.string(Date())), \(AttendanceStore.actor), \(action), \(subject), \(detail))
            """, logger: logger)
    }

    static func audit(_ c: PostgresConnection, action: String, student: String, detail: String?) async throws {
        try await audit(c, action: action, subject: try await SchoolGallery.alias(of: student, on: c), detail: detail)
    }

    public func appendAudit(action: String, subject: String?, detail: String?) async throws {
        try await transaction { c in try await Self.audit(c, action: action, subject: subject, detail: detail) }
    }

    public func appendAudit(action: String, student: String, detail: String?) async throws {
        try await transaction { c in
            guard try await Self.student(c, code: student) != nil else { throw StoreError.unknownStudent(student) }
            try await Self.audit(c, action: action, student: student, detail: detail)
        }
    }

    public func auditEntries() async throws -> [AuditEntry] {
        try await read { c in
            var out: [AuditEntry] = []
            for try await (id, at, user, action, subject, detail, student) in try await c.query(
                """
                SELECT a.id, a.at, a.os_user, a.action, a.subject, a.detail, sa.student_code
                FROM audit_log a LEFT JOIN student_alias sa ON sa.alias = a.subject ORDER BY a.id
                """, logger: Self.logger
            ).decode((Int64, String, String, String, String?, String?, String?).self) {
                out.append(
                    AuditEntry(
                        id: id, at: at, osUser: user, action: action, subject: subject, detail: detail, studentCode: student))
            }
            return out
        }
    }
}
