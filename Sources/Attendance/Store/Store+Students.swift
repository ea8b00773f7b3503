import AttendanceCore
import Foundation
import GRDB

extension AttendanceStore {

    static func student(_ db: Database, code: String) throws -> Student? {
        try Student.fetchOne(db, sql: Student.selectSQL + " WHERE s.code = ?", arguments: [code])
    }

    // MARK: consent

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

    // MARK: enrolments

}

extension Consent {
    /// What the guardian agrees to unless a roster or the CLI says otherwise.
    public static let defaultScope = "face recognition for school attendance"
}

extension Student {
    /// Class-list order: class, given name (last word), then the full name.
    static func classListOrder(_ a: Student, _ b: Student) -> Bool {
        if a.classCode != b.classCode { return a.classCode.localizedStandardCompare(b.classCode) == .orderedAscending }
        let ga = a.fullName.split(separator: " ").last.map(String.init) ?? a.fullName
        let gb = b.fullName.split(separator: " ").last.map(String.init) ?? b.fullName
        let vi = Locale(identifier: "vi_VN")
        let c = ga.compare(gb, options: [.caseInsensitive], range: nil, locale: vi)
        if c != .orderedSame { return c == .orderedAscending }
        let f = a.fullName.compare(b.fullName, options: [.caseInsensitive], range: nil, locale: vi)
        if f != .orderedSame { return f == .orderedAscending }
        return a.code < b.code
    }
}

extension RosterBook {
    public func student(code: String) throws -> Student? {
        try store.writer.read { db in try AttendanceStore.student(db, code: code) }
    }

    /// Students of one class (or all), in class-list order: class, then given name (the last word,
    /// as Vietnamese class lists sort), then full name.
    public func students(classCode: String? = nil, activeOnly: Bool = true) throws -> [Student] {
        let rows = try store.writer.read { db in
            var sql = Student.selectSQL + " WHERE 1"
            var args: StatementArguments = []
            if let classCode { sql += " AND s.class_code = ?"; args += [SchoolClass.normalisedCode(classCode)] }
            if activeOnly { sql += " AND s.active = 1" }
            return try Student.fetchAll(db, sql: sql, arguments: args)
        }
        return rows.sorted(by: Student.classListOrder)
    }

    public func classes() throws -> [SchoolClass] {
        try store.writer.read { db in
            try SchoolClass.fetchAll(db, sql: "SELECT code, grade_code, name FROM school_class ORDER BY grade_code, code")
        }
    }
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

extension EnrolmentRegister {
    public func list(student: String) throws -> [EnrolmentInfo] {
        try store.writer.read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT id, student_code, quality, source, created_at, created_by FROM enrolment
                    WHERE student_code = ? ORDER BY id
                    """, arguments: [student]
            ).map {
                EnrolmentInfo(
                    id: $0["id"], studentCode: $0["student_code"], quality: $0["quality"], source: $0["source"],
                    createdAt: $0["created_at"], createdBy: $0["created_by"])
            }
        }
    }

    /// Number of embeddings per student (students without any are absent).
    public func counts() throws -> [String: Int] {
        try store.writer.read { db in
            var counts: [String: Int] = [:]
            for row in try Row.fetchAll(
                db, sql: "SELECT student_code, COUNT(*) AS embedding_count FROM enrolment GROUP BY student_code")
            {
                counts[row["student_code"]] = row["embedding_count"]
            }
            return counts
        }
    }

    /// Every stored embedding, decrypted, whatever the student's state (for enrolment's
    /// swapped-photo check, which must also see inactive students).
    public func all() throws -> [(student: String, embedding: [Float])] {
        let rows = try store.writer.read { db in
            try Row.fetchAll(db, sql: "SELECT student_code, sealed_embedding FROM enrolment ORDER BY student_code, id")
                .map { ($0["student_code"] as String, $0["sealed_embedding"] as Data) }
        }
        return try rows.map { (student: $0.0, embedding: try store.open($0.1, student: $0.0)) }
    }

    /// Seals and stores embeddings for one student in one transaction (consent checked inside it),
    /// bumps the gallery version and audits. Returns the new rows' ids.
    @discardableResult
    public func add(
        student: String, _ items: [(embedding: [Float], quality: String?, source: String?)]
    ) throws -> [Int64] {
        try store.requireLocalGallery()
        let maxPerStudent = store.config.recognition.maxEmbeddingsPerStudent
        let sealed = try items.map { (try store.cipher.seal($0.embedding, student: student), $0.quality, $0.source) }
        return try store.writer.write { db in
            guard let s = try AttendanceStore.student(db, code: student) else { throw StoreError.unknownStudent(student) }
            guard s.active else { throw StoreError.inactiveStudent(student) }
            guard try AttendanceStore.activeConsent(db, student: student) != nil else { throw StoreError.noConsent(student) }
            let existing =
                try Int.fetchOne(
                    db, sql: "SELECT COUNT(*) FROM enrolment WHERE student_code = ?",
                    arguments: [student]) ?? 0
            guard existing + sealed.count <= maxPerStudent else {
                throw StoreError.invalid(
                    "student '\(student)' would have \(existing + sealed.count) enrolled faces; "
                        + "the limit is \(maxPerStudent) (recognition.max_embeddings_per_student)")
            }
            let now = Timestamp.string(Date())
            var ids: [Int64] = []
            for (blob, quality, source) in sealed {
                try db.execute(
                    sql: """
                        INSERT INTO enrolment(student_code, sealed_embedding, quality, source, created_at, created_by)
                        VALUES (?, ?, ?, ?, ?, ?)
                        """, arguments: [student, blob, quality, source, now, AttendanceStore.actor])
                ids.append(db.lastInsertedRowID)
            }
            if !ids.isEmpty {
                try AttendanceStore.bumpGalleryVersion(db)
                try AttendanceStore.audit(
                    db, action: "enrol", student: student, detail: "embeddings added=\(ids.count); total=\(existing + ids.count)")
            }
            return ids
        }
    }

    /// Deletes the student's embeddings (consent stays). Returns how many.
    @discardableResult
    public func remove(student: String) throws -> Int {
        try store.requireLocalGallery()
        return try store.writer.write { db in
            guard try AttendanceStore.student(db, code: student) != nil else { throw StoreError.unknownStudent(student) }
            try db.execute(sql: "DELETE FROM enrolment WHERE student_code = ?", arguments: [student])
            let n = db.changesCount
            try db.execute(sql: "DELETE FROM gate_sighting WHERE student_code = ?", arguments: [student])
            try AttendanceStore.bumpGalleryVersion(db)
            try AttendanceStore.audit(db, action: "unenrol", student: student, detail: "embeddings deleted=\(n)")
            return n
        }
    }

    /// Deletes every embedding in the database (e.g. after the key file was lost). Audited.
    @discardableResult
    public static func discardAll(path: String) throws -> Int {
        // Opened without the key: a lost key is exactly when this is needed.
        try FilePermissions.requirePrivate(path)
        guard FileManager.default.fileExists(atPath: path) else { throw StoreError.io(path: path, reason: "no such database") }
        let pool = try DatabasePool(path: path, configuration: AttendanceStore.configuration)
        try Schema.migrator.migrate(pool)
        return try pool.write { db in
            try db.execute(sql: "DELETE FROM enrolment")
            let n = db.changesCount
            try db.execute(sql: "DELETE FROM gate_sighting")
            // The erasure register is keyed by the lost key's pseudonym secret: it no longer says who was erased.
            // Remember the day instead, so no roster consent dated before it comes back (see RosterImport).
            if try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM erased_student") ?? 0 > 0 {
                try db.execute(
                    sql: """
                        INSERT INTO meta(key, value) VALUES ('consent_cutoff', ?)
                        ON CONFLICT(key) DO UPDATE SET value = excluded.value
                        """, arguments: [Timestamp.string(Date())])
                try db.execute(sql: "DELETE FROM erased_student")
            }
            try db.execute(sql: "DELETE FROM meta WHERE key IN ('key_check', 'pseudonym_key')")
            try AttendanceStore.bumpGalleryVersion(db)
            try AttendanceStore.audit(db, action: "unenrol.all", subject: nil, detail: "embeddings deleted=\(n)")
            return n
        }
    }
}
