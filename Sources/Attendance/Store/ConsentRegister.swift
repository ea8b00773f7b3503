import AttendanceCore
import Foundation
import GRDB

// Guardians' consent, and the child's own from age 7 (`AttendanceStore.consent`).

extension AttendanceStore {

    static func activeConsent(_ db: Database, student: String) throws -> Consent? {
        try Consent.fetchOne(
            db, sql: "SELECT * FROM consent WHERE student_code = ? AND revoked_at IS NULL ORDER BY id DESC LIMIT 1",
            arguments: [student])
    }

    static func recordConsent(
        _ db: Database, student: String, guardian: String, relation: String, date: LocalDate,
        scope: String, childAgreed: Bool, source: String
    ) throws -> Consent {
        guard let s = try Self.student(db, code: student) else { throw StoreError.unknownStudent(student) }
        let (guardian, relation, scope) = try consentToRecord(
            s, guardian: guardian, relation: relation, date: date, scope: scope, childAgreed: childAgreed)
        let now = Timestamp.string(Date())
        try db.execute(
            sql: """
                INSERT INTO consent(student_code, guardian_name, relation, consent_date, scope, recorded_by, recorded_at)
                VALUES (?, ?, ?, ?, ?, ?, ?)
                """, arguments: [student, guardian, relation, date.description, scope, Self.actor, now])
        let id = db.lastInsertedRowID
        try audit(
            db, action: "consent.record", student: student,
            detail: "relation=\(relation); date=\(date); scope=\(scope); via=\(source)")
        // Enrolments kept from before a revocation cannot exist (revocation deletes them), but a
        // consent can make an inactive-consent student's embeddings count again: tell the daemon.
        try bumpGalleryVersion(db)
        return try Consent.fetchOne(db, sql: "SELECT * FROM consent WHERE id = ?", arguments: [id])!
    }
}

extension AttendanceStore {
    /// The consent rules a new record must pass, on any backend: a guardian and a relation, a date neither in the
    /// future nor before the birth, the child's own agreement from age 7 (`Consent.childMustAgree`). Returns the
    /// guardian, relation and scope as they are stored.
    public static func consentToRecord(
        _ s: Student, guardian: String, relation: String, date: LocalDate, scope: String, childAgreed: Bool
    ) throws -> (guardian: String, relation: String, scope: String) {
        let guardian = guardian.normalizedText, relation = relation.normalizedText
        guard !guardian.isEmpty else { throw StoreError.invalid("the guardian's name is empty") }
        guard !relation.isEmpty else { throw StoreError.invalid("the guardian's relation to the student is empty") }
        try Consent.checkDate(date, student: s)
        var scope = scope.normalizedText
        if scope.isEmpty { scope = Consent.defaultScope }
        if Consent.childMustAgree(s, on: date) {
            guard childAgreed else { throw StoreError.childMustAgree(s.code) }
        }
        if childAgreed { scope += Consent.childAgreedSuffix }
        return (guardian, relation, scope)
    }
}

extension Consent {
    /// What the guardian agrees to unless a roster or the CLI says otherwise.
    public static let defaultScope = "face recognition for school attendance"
}

extension ConsentRegister {
    /// Every consent record of the student, oldest first (revoked ones too: they are the history).
    public func history(student: String) throws -> [Consent] {
        try store.writer.read { db in
            try Consent.fetchAll(db, sql: "SELECT * FROM consent WHERE student_code = ? ORDER BY id", arguments: [student])
        }
    }

    /// The consent in force, if any.
    public func active(student: String) throws -> Consent? {
        try store.writer.read { db in try AttendanceStore.activeConsent(db, student: student) }
    }

    /// Whether a consent is in force for the student (the decider asks before every record).
    public func isActive(student: String) throws -> Bool {
        try store.writer.read { db in try AttendanceStore.activeConsent(db, student: student) != nil }
    }

    /// Records a guardian's consent (audited). Returns the new record.
    @discardableResult
    public func record(
        student: String, guardian: String, relation: String, date: LocalDate,
        scope: String = Consent.defaultScope, childAgreed: Bool = false,
        source: String = "cli"
    ) throws -> Consent {
        try store.requireLocalGallery()
        return try store.writer.write { db in
            try AttendanceStore.recordConsent(
                db, student: student, guardian: guardian, relation: relation, date: date,
                scope: scope, childAgreed: childAgreed, source: source)
        }
    }

    /// Revokes the student's consent and deletes their embeddings, in one audited transaction.
    /// Returns how many embeddings were deleted; throws when no consent was in force.
    @discardableResult
    public func revoke(student: String, reason: String? = nil) throws -> Int {
        try store.requireLocalGallery()
        return try store.writer.write { db in
            guard try AttendanceStore.student(db, code: student) != nil else { throw StoreError.unknownStudent(student) }
            guard try AttendanceStore.activeConsent(db, student: student) != nil else {
                throw StoreError.invalid("student '\(student)' has no consent in force; nothing to revoke")
            }
            let now = Timestamp.string(Date())
            try db.execute(
                sql: "UPDATE consent SET revoked_at = ?, revoked_by = ? WHERE student_code = ? AND revoked_at IS NULL",
                arguments: [now, AttendanceStore.actor, student])
            try db.execute(sql: "DELETE FROM enrolment WHERE student_code = ?", arguments: [student])
            let deleted = db.changesCount
            try db.execute(sql: "DELETE FROM gate_sighting WHERE student_code = ?", arguments: [student])
            try AttendanceStore.bumpGalleryVersion(db)
            try AttendanceStore.audit(
                db, action: "consent.revoke", student: student,
                detail: "embeddings deleted=\(deleted)" + (reason.map { "; reason=\($0)" } ?? ""))
            return deleted
        }
    }
}
