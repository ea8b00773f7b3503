import AttendanceCore
import Foundation
import GRDB

/// What importing a roster did (or, with a dry run, would do).
public struct RosterImportReport: Sendable, Equatable, Codable {
    public struct Change: Sendable, Equatable, Codable {
        public var code: String
        /// "full_name", "class", "date_of_birth", "gender", "reactivated".
        public var fields: [String]
        public init(code: String, fields: [String]) { self.code = code; self.fields = fields }
    }
    public var file: String
    public var dryRun: Bool
    public var added: [String] = []
    public var changed: [Change] = []
    public var unchanged = 0
    /// Active students of the roster's classes (or of the school, with `wholeSchool`) it no longer lists.
    public var deactivated: [String] = []
    public var classesAdded: [String] = []
    public var consentsRecorded: [String] = []
    /// Students erased earlier whose roster consent predates the erasure: not recorded again (a consent given
    /// after the erasure, with a later date, is).
    public var consentsRefusedErased: [String] = []
    public var total: Int { added.count + changed.count + unchanged }
    public init(file: String, dryRun: Bool) { self.file = file; self.dryRun = dryRun }
}

/// What a roster line's consent columns do (`AttendanceStore.rosterConsentDecision`).
public enum RosterConsentDecision: Sendable, Equatable {
    case record
    /// The same consent is in force, or was revoked (an old roster does not bring it back).
    case alreadyKnown
    /// Given before the student's erasure (or the key loss): not recorded, reported.
    case refusedErased
}

public struct RosterImportOptions: Sendable {
    public var dryRun = false
    /// The file is the whole school's roster: students of *any* class missing from it become
    /// inactive. Without it only students of the classes the file lists are considered, so each
    /// homeroom teacher can import their own class.
    public var wholeSchool = false
    public init(dryRun: Bool = false, wholeSchool: Bool = false) { self.dryRun = dryRun; self.wholeSchool = wholeSchool }
}

extension AttendanceStore {

    /// The last consent date a roster may not bring back for this student: the day of their erasure, or of the
    /// loss of the key file (which hid who had been erased, `EnrolmentRegister.discardAll`), whichever is later. Both are
    /// stored in UTC; the school's day can be a day ahead (Asia/Ho_Chi_Minh is UTC+7), so the day after counts too.
    static func consentCutoff(_ db: Database, erasedAt: String?) throws -> LocalDate? {
        consentCutoff(
            erasedAt: erasedAt, keyLoss: try String.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'consent_cutoff'"))
    }

    /// `consentCutoff` from the two stored times (the erasure's, the key loss's `meta.consent_cutoff`), on any backend.
    public static func consentCutoff(erasedAt: String?, keyLoss: String?) -> LocalDate? {
        let days = [erasedAt, keyLoss].compactMap { $0.flatMap { LocalDate(String($0.prefix(10))) } }
        return days.max()?.adding(days: 1)
    }

    /// A roster line against the stored student: the line as it will be stored (a roster without the date-of-birth or
    /// gender column keeps the stored value) and the fields that change (`RosterImportReport.Change.fields`).
    public static func rosterChange(_ entry: RosterEntry, of old: Student, in roster: Roster) -> (RosterEntry, [String]) {
        var e = entry
        if !roster.hasDateOfBirth { e.dateOfBirth = old.dateOfBirth }
        if !roster.hasGender { e.gender = old.gender }
        var fields: [String] = []
        if old.fullName != e.fullName { fields.append("full_name") }
        if old.classCode != e.classCode { fields.append("class") }
        if old.dateOfBirth != e.dateOfBirth { fields.append("date_of_birth") }
        if old.gender != e.gender { fields.append("gender") }
        if !old.active { fields.append("reactivated") }
        return (e, fields)
    }

    /// Whether a roster's consent columns record a new consent (nil) or why not: the same consent is in force
    /// (`same`), was revoked (`revokedSame`: re-importing an old roster does not bring it back), or predates the
    /// student's erasure or the key loss (`cutoff`: reported in `consentsRefusedErased`).
    public static func rosterConsentDecision(
        _ c: RosterConsent, same: Bool, revokedSame: Bool, cutoff: LocalDate?
    ) -> RosterConsentDecision {
        if same || revokedSame { return .alreadyKnown }
        if let cutoff, c.date <= cutoff { return .refusedErased }
        return .record
    }

    /// The import's one audit entry's detail.
    public static func rosterAuditDetail(_ report: RosterImportReport) -> String {
        "added=\(report.added.count); changed=\(report.changed.count); unchanged=\(report.unchanged); "
            + "deactivated=\(report.deactivated.count); consents=\(report.consentsRecorded.count)"
            + (report.consentsRefusedErased.isEmpty
                ? "" : "; consents refused (erased before)=\(report.consentsRefusedErased.count)")
    }

    static func applyRoster(
        _ db: Database, _ roster: Roster, options: RosterImportOptions,
        pseudonymKey: PseudonymKey
    ) throws -> RosterImportReport {
        var report = RosterImportReport(file: roster.file, dryRun: options.dryRun)
        let now = Timestamp.string(Date())
        for c in roster.classes {
            let grade = try String.fetchOne(db, sql: "SELECT grade_code FROM school_class WHERE code = ?", arguments: [c.code])
            if grade == nil {
                try db.execute(sql: "INSERT INTO school_class(code, grade_code) VALUES (?, ?)", arguments: [c.code, c.gradeCode])
                report.classesAdded.append(c.code)
            } else if grade != c.gradeCode {
                try db.execute(sql: "UPDATE school_class SET grade_code = ? WHERE code = ?", arguments: [c.gradeCode, c.code])
            }
        }
        var activeChanged = false
        for e in roster.entries {
            if let old = try student(db, code: e.code) {
                let (e, fields) = rosterChange(e, of: old, in: roster)
                if !old.active { activeChanged = true }
                if fields.isEmpty {
                    report.unchanged += 1
                } else {
                    try db.execute(
                        sql: """
                            UPDATE student SET full_name = ?, class_code = ?, date_of_birth = ?, gender = ?, active = 1, updated_at = ?
                            WHERE code = ?
                            """, arguments: [e.fullName, e.classCode, e.dateOfBirth?.description, e.gender, now, e.code])
                    report.changed.append(.init(code: e.code, fields: fields))
                }
            } else {
                try db.execute(
                    sql: """
                        INSERT INTO student(code, full_name, class_code, date_of_birth, gender, active, created_at, updated_at)
                        VALUES (?, ?, ?, ?, ?, 1, ?, ?)
                        """, arguments: [e.code, e.fullName, e.classCode, e.dateOfBirth?.description, e.gender, now, now])
                report.added.append(e.code)
            }
            if let c = e.consent {
                let same =
                    try Bool.fetchOne(
                        db,
                        sql: """
                            SELECT EXISTS (SELECT 1 FROM consent WHERE student_code = ? AND revoked_at IS NULL
                                           AND guardian_name = ? AND relation = ? AND consent_date = ?)
                            """, arguments: [e.code, c.guardian, c.relation, c.date.description]) ?? false
                // A revoked consent is not brought back by re-importing an old roster: only a new date does.
                let revokedSame =
                    try Bool.fetchOne(
                        db,
                        sql: """
                            SELECT EXISTS (SELECT 1 FROM consent WHERE student_code = ? AND revoked_at IS NOT NULL
                                           AND guardian_name = ? AND consent_date = ?)
                            """, arguments: [e.code, c.guardian, c.date.description]) ?? false
                // An erased student's old consent is not brought back either: the erasure register (a keyed
                // hash of the code, never the code) remembers the day of the erasure.
                let erasedOn = try String.fetchOne(
                    db, sql: "SELECT erased_at FROM erased_student WHERE pseudonym = ?",
                    arguments: [pseudonymKey.pseudonym(of: e.code)])
                switch rosterConsentDecision(
                    c, same: same, revokedSame: revokedSame, cutoff: try Self.consentCutoff(db, erasedAt: erasedOn))
                {
                case .alreadyKnown: break
                case .refusedErased: report.consentsRefusedErased.append(e.code)
                case .record:
                    _ = try recordConsent(
                        db, student: e.code, guardian: c.guardian, relation: c.relation, date: c.date,
                        scope: c.scope ?? Consent.defaultScope, childAgreed: c.childAgreed,
                        source: "roster \((roster.file as NSString).lastPathComponent) line \(e.line)")
                    report.consentsRecorded.append(e.code)
                }
            }
        }
        let listed = Set(roster.entries.map(\.code))
        let classes = Set(roster.entries.map(\.classCode))
        let active = try Row.fetchAll(db, sql: "SELECT code, class_code FROM student WHERE active = 1")
        for row in active {
            let code: String = row["code"], cls: String = row["class_code"]
            guard !listed.contains(code), options.wholeSchool || classes.contains(cls) else { continue }
            try db.execute(sql: "UPDATE student SET active = 0, updated_at = ? WHERE code = ?", arguments: [now, code])
            report.deactivated.append(code)
            activeChanged = true
        }
        report.deactivated.sort()
        if activeChanged { try bumpGalleryVersion(db) }
        try audit(
            db, action: "roster.import", subject: (roster.file as NSString).lastPathComponent,
            detail: rosterAuditDetail(report))
        return report
    }
}

extension RosterBook {
    /// Applies a parsed roster in one transaction: new students added, changed ones updated,
    /// missing ones deactivated (never deleted), consent columns recorded. A dry run computes the
    /// same report and rolls everything back.
    @discardableResult
    public func importRoster(_ roster: Roster, options: RosterImportOptions = RosterImportOptions()) throws -> RosterImportReport
    {
        if !options.dryRun { try store.requireLocalGallery() }
        var report = RosterImportReport(file: roster.file, dryRun: options.dryRun)
        let work = { (db: Database) throws -> Void in
            report = try AttendanceStore.applyRoster(db, roster, options: options, pseudonymKey: store.pseudonymKey)
        }
        if options.dryRun {
            // Same code path as a real import, then roll back: the report cannot drift from reality.
            try store.writer.writeWithoutTransaction { db in
                try db.inTransaction(.immediate) {
                    try work(db)
                    return .rollback
                }
            }
        } else {
            try store.writer.write(work)
        }
        return report
    }
}
