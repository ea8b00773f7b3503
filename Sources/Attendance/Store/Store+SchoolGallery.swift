import AttendanceCore
import Foundation
import GRDB

/// The school's gallery as the server holds it (`[database] backend = "postgresql"`), for a gate's local cache:
/// classes, students, consent, and the sealed enrolments. The embeddings stay sealed with the school's key (the
/// server never sees them in clear); only `newEnrolments` carry bytes, the rows this box does not hold yet.
public struct SchoolGallerySnapshot: Sendable {
    public struct ClassRow: Sendable, Hashable {
        public var code: String
        public var gradeCode: String
        public var name: String?
        public init(code: String, gradeCode: String, name: String?) {
            self.code = code
            self.gradeCode = gradeCode
            self.name = name
        }
    }

    public struct StudentRow: Sendable, Hashable {
        public var code: String
        public var fullName: String
        public var classCode: String
        public var dateOfBirth: String?
        public var gender: String?
        public var active: Bool
        public var createdAt: String
        public var updatedAt: String
        public init(
            code: String, fullName: String, classCode: String, dateOfBirth: String?, gender: String?, active: Bool,
            createdAt: String, updatedAt: String
        ) {
            self.code = code
            self.fullName = fullName
            self.classCode = classCode
            self.dateOfBirth = dateOfBirth
            self.gender = gender
            self.active = active
            self.createdAt = createdAt
            self.updatedAt = updatedAt
        }
    }

    public struct ConsentRow: Sendable, Hashable {
        public var id: Int64
        public var studentCode: String
        public var guardianName: String
        public var relation: String
        public var consentDate: String
        public var scope: String
        public var recordedBy: String
        public var recordedAt: String
        public var revokedAt: String?
        public var revokedBy: String?
        public init(
            id: Int64, studentCode: String, guardianName: String, relation: String, consentDate: String, scope: String,
            recordedBy: String, recordedAt: String, revokedAt: String?, revokedBy: String?
        ) {
            self.id = id
            self.studentCode = studentCode
            self.guardianName = guardianName
            self.relation = relation
            self.consentDate = consentDate
            self.scope = scope
            self.recordedBy = recordedBy
            self.recordedAt = recordedAt
            self.revokedAt = revokedAt
            self.revokedBy = revokedBy
        }
    }

    /// An enrolment row's identity: rows are never changed, only added and deleted, so these three say whether
    /// the box's copy is the server's row.
    public struct EnrolmentKey: Sendable, Hashable {
        public var id: Int64
        public var studentCode: String
        public var createdAt: String
        public init(id: Int64, studentCode: String, createdAt: String) {
            self.id = id
            self.studentCode = studentCode
            self.createdAt = createdAt
        }
    }

    public struct EnrolmentRow: Sendable {
        public var key: EnrolmentKey
        public var sealed: Data
        public var quality: String?
        public var source: String?
        public var createdBy: String
        public init(key: EnrolmentKey, sealed: Data, quality: String?, source: String?, createdBy: String) {
            self.key = key
            self.sealed = sealed
            self.quality = quality
            self.source = source
            self.createdBy = createdBy
        }
    }

    /// The server's gallery version (bumped by a trigger with every change to these tables).
    public var version: Int64
    /// The versions of the roster's tables (classes, students, consent) and of the enrolments: a refresh reads
    /// only the group whose version moved since the copy's (an enrolment does not re-read 1,500 students).
    public var rosterVersion: Int64 = 0
    public var enrolmentVersion: Int64 = 0
    /// Whether `classes`, `students` and `consents` were read (else the copy's are current).
    public var includesRoster = true
    /// Whether `enrolmentKeys` and `newEnrolments` were read (else the copy's are current).
    public var includesEnrolments = true
    public var classes: [ClassRow]
    public var students: [StudentRow]
    public var consents: [ConsentRow]
    /// Every enrolment on the server.
    public var enrolmentKeys: [EnrolmentKey]
    /// The sealed rows of `enrolmentKeys` this box lacks.
    public var newEnrolments: [EnrolmentRow]

    public init(
        version: Int64, classes: [ClassRow], students: [StudentRow], consents: [ConsentRow],
        enrolmentKeys: [EnrolmentKey], newEnrolments: [EnrolmentRow]
    ) {
        self.version = version
        self.classes = classes
        self.students = students
        self.consents = consents
        self.enrolmentKeys = enrolmentKeys
        self.newEnrolments = newEnrolments
    }
}

/// What one refresh of the local cache changed.
public struct SchoolGalleryChange: Sendable, Equatable {
    public var studentsWritten = 0
    /// Students the server no longer has (erased there): erased here by the gate's own rules.
    public var studentsErased = 0
    public var consentsWritten = 0
    public var enrolmentsAdded = 0
    public var enrolmentsRemoved = 0
    /// The local gallery version was bumped (the daemon's `EnrolledFaces` reloads).
    public var changed: Bool {
        studentsWritten + studentsErased + consentsWritten + enrolmentsAdded + enrolmentsRemoved > 0
    }
    /// Set when an erasure committed but the write-ahead log could not be folded back yet.
    public var compaction: String?
    public init() {}
}

/// A gate's local, encrypted cache of the school's gallery (`[database] backend = "postgresql"`): the server's
/// classes, students, consent and sealed enrolment rows, kept in this box's SQLite store, so a restart with the
/// server down still recognises everyone. Written only by a refresh from the server (`apply`), in one transaction
/// that bumps the local gallery version, so the daemon's `EnrolledFaces` reloads as after a local enrolment.
public struct SchoolGalleryCache: Sendable {
    let store: AttendanceStore

    /// The server gallery version this cache last applied; nil before the first refresh.
    public func serverVersion() throws -> Int64? {
        try store.writer.read { db in
            try String.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'school_gallery_version'").flatMap { Int64($0) }
        }
    }

    /// The versions of the server's two groups of tables this copy last applied (nil: never).
    public func seenGroupVersions() throws -> (roster: Int64?, enrolments: Int64?) {
        try store.writer.read { db in
            func v(_ key: String) throws -> Int64? {
                try String.fetchOne(db, sql: "SELECT value FROM meta WHERE key = ?", arguments: [key]).flatMap { Int64($0) }
            }
            return (try v("school_gallery_roster_version"), try v("school_gallery_enrolment_version"))
        }
    }

    /// The enrolment rows this box holds.
    public func enrolmentKeys() throws -> Set<SchoolGallerySnapshot.EnrolmentKey> {
        try store.writer.read { db in try Self.enrolmentKeys(db) }
    }

    static func enrolmentKeys(_ db: Database) throws -> Set<SchoolGallerySnapshot.EnrolmentKey> {
        Set(
            try Row.fetchAll(db, sql: "SELECT id, student_code, created_at FROM enrolment").map {
                SchoolGallerySnapshot.EnrolmentKey(id: $0["id"], studentCode: $0["student_code"], createdAt: $0["created_at"])
            })
    }

    /// This box's key check (a value sealed with its key file), for the server to hold when it has none.
    public func keyCheck() throws -> String? {
        try store.writer.read { db in try String.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'key_check'") }
    }

    /// Whether `check` (the server's key check) was sealed with this box's key file.
    public func keyMatches(_ check: String) -> Bool { store.cipher.verifyCheck(check) }

    /// Seals an embedding with the school's key for the server (the student's code as associated data).
    public func seal(_ embedding: [Float], student: String) throws -> Data {
        try store.cipher.seal(embedding, student: student)
    }

    /// Opens an embedding sealed with the school's key (a wrong key or a row moved to another student throws).
    public func open(_ sealed: Data, student: String) throws -> [Float] {
        try store.open(sealed, student: student)
    }

    /// Makes the cache the server's gallery, in one transaction; bumps the local gallery version when anything
    /// changed. A student the server no longer has was erased there (or removed by the admin): erased here by the
    /// gate's own rules (`Retention.erase`: events, queued records, held check-ins, the audit alias; the erasure
    /// register and one audit entry), then the write-ahead log is folded back so no bytes are left.
    ///
    /// The first refresh of a box that holds students the server lacks changes nothing and throws: that is a box
    /// whose database was never copied to the server, and deleting its roster would lose the school's data.
    @discardableResult
    /// This box's pseudonym key, sealed with its key (offered to the school's server when it has none).
    public func sealedPseudonymKey() throws -> String? {
        try store.writer.read { db in try String.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'pseudonym_key'") }
    }

    /// The school's pseudonym key (from the server's meta, sealed with the school's key): this box names students as
    /// every other box does from now on (the erasure register a roster import checks, the logs). One that does not
    /// open with this box's key changes nothing (the refresh's key check says why). True when it was adopted.
    @discardableResult
    public func adoptPseudonymKey(sealed: String) throws -> Bool {
        guard let bytes = try? store.cipher.openSecret(sealed, authenticating: PseudonymKey.associatedData),
            bytes != store.pseudonymKey.bytes
        else { return false }
        try store.writer.write { db in
            try db.execute(
                sql: """
                    INSERT INTO meta(key, value) VALUES ('pseudonym_key', ?)
                    ON CONFLICT(key) DO UPDATE SET value = excluded.value
                    """, arguments: [sealed])
        }
        store.pseudonymHolder.replace(with: PseudonymKey(bytes: bytes))
        return true
    }

    public func apply(_ s: SchoolGallerySnapshot) throws -> SchoolGalleryChange {
        var change = try store.writer.write { db -> SchoolGalleryChange in
            var c = SchoolGalleryChange()
            let first =
                try String.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'school_gallery_version'") == nil
            if s.includesRoster {
                let onServer = Set(s.students.map(\.code))
                let absent = try String.fetchAll(db, sql: "SELECT code FROM student ORDER BY code").filter {
                    !onServer.contains($0)
                }
                if first && !absent.isEmpty {
                    throw StoreError.invalid(
                        "this box holds \(absent.count) student(s) the school's server does not have; their data is not "
                            + "deleted. Copy this box's database to the server first (attendance db migrate --to "
                            + "postgresql://OWNER@HOST:PORT/DATABASE), or, if the server is right, move this box's database "
                            + "file away and start again. Nothing was changed.")
                }
                let localClasses = Set(
                    try Row.fetchAll(db, sql: "SELECT code, grade_code, name FROM school_class").map {
                        SchoolGallerySnapshot.ClassRow(code: $0["code"], gradeCode: $0["grade_code"], name: $0["name"])
                    })
                for k in s.classes where !localClasses.contains(k) {
                    try db.execute(
                        sql: """
                            INSERT INTO school_class(code, grade_code, name) VALUES (?, ?, ?)
                            ON CONFLICT(code) DO UPDATE SET grade_code = excluded.grade_code, name = excluded.name
                            WHERE grade_code IS NOT excluded.grade_code OR name IS NOT excluded.name
                            """, arguments: [k.code, k.gradeCode, k.name])
                }
                // Only the rows that differ are written (a refresh usually changes one student of 1,500).
                let localStudents = Dictionary(
                    try Row.fetchAll(db, sql: "SELECT * FROM student").map { r in
                        let code: String = r["code"]
                        return (
                            code,
                            SchoolGallerySnapshot.StudentRow(
                                code: code, fullName: r["full_name"], classCode: r["class_code"], dateOfBirth: r["date_of_birth"],
                                gender: r["gender"], active: r["active"], createdAt: r["created_at"], updatedAt: r["updated_at"])
                        )
                    }, uniquingKeysWith: { a, _ in a })
                for st in s.students where localStudents[st.code] != st {
                    try db.execute(
                        sql: """
                            INSERT INTO student(code, full_name, class_code, date_of_birth, gender, active, created_at, updated_at)
                            VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                            ON CONFLICT(code) DO UPDATE SET full_name = excluded.full_name, class_code = excluded.class_code,
                                date_of_birth = excluded.date_of_birth, gender = excluded.gender, active = excluded.active,
                                created_at = excluded.created_at, updated_at = excluded.updated_at
                            WHERE full_name IS NOT excluded.full_name OR class_code IS NOT excluded.class_code
                               OR date_of_birth IS NOT excluded.date_of_birth OR gender IS NOT excluded.gender
                               OR active IS NOT excluded.active OR created_at IS NOT excluded.created_at
                               OR updated_at IS NOT excluded.updated_at
                            """,
                        arguments: [
                            st.code, st.fullName, st.classCode, st.dateOfBirth, st.gender, st.active, st.createdAt, st.updatedAt,
                        ])
                    c.studentsWritten += db.changesCount
                }
                for code in absent {
                    try Self.eraseCached(db, student: code, store: store)
                    c.studentsErased += 1
                }

                // Consent: the server's rows, exactly (a revocation there stops recognition here).
                let localConsents = Set(
                    try Row.fetchAll(db, sql: "SELECT * FROM consent").map { r in
                        SchoolGallerySnapshot.ConsentRow(
                            id: r["id"], studentCode: r["student_code"], guardianName: r["guardian_name"],
                            relation: r["relation"], consentDate: r["consent_date"], scope: r["scope"],
                            recordedBy: r["recorded_by"], recordedAt: r["recorded_at"], revokedAt: r["revoked_at"],
                            revokedBy: r["revoked_by"])
                    })
                let serverConsents = Set(s.consents)
                for gone in localConsents.subtracting(serverConsents) {
                    try db.execute(sql: "DELETE FROM consent WHERE id = ?", arguments: [gone.id])
                    c.consentsWritten += 1
                }
                for k in serverConsents.subtracting(localConsents) {
                    try db.execute(
                        sql: """
                            INSERT INTO consent(id, student_code, guardian_name, relation, consent_date, scope, recorded_by,
                                                recorded_at, revoked_at, revoked_by)
                            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                            """,
                        arguments: [
                            k.id, k.studentCode, k.guardianName, k.relation, k.consentDate, k.scope, k.recordedBy,
                            k.recordedAt, k.revokedAt, k.revokedBy,
                        ])
                    c.consentsWritten += 1
                }

            }
            if s.includesEnrolments {
                // Enrolments: rows are never changed, so a key present on both sides is the same row.
                let local = try Self.enrolmentKeys(db)
                let server = Set(s.enrolmentKeys)
                for gone in local.subtracting(server) {
                    try db.execute(sql: "DELETE FROM enrolment WHERE id = ?", arguments: [gone.id])
                    c.enrolmentsRemoved += 1
                }
                for e in s.newEnrolments where !local.contains(e.key) && server.contains(e.key) {
                    try db.execute(
                        sql: """
                            INSERT INTO enrolment(id, student_code, sealed_embedding, quality, source, created_at, created_by)
                            VALUES (?, ?, ?, ?, ?, ?, ?)
                            """,
                        arguments: [e.key.id, e.key.studentCode, e.sealed, e.quality, e.source, e.key.createdAt, e.createdBy])
                    c.enrolmentsAdded += 1
                }
            }
            if c.changed { try AttendanceStore.bumpGalleryVersion(db) }
            var versions = [("school_gallery_version", s.version)]
            if s.includesRoster { versions.append(("school_gallery_roster_version", s.rosterVersion)) }
            if s.includesEnrolments { versions.append(("school_gallery_enrolment_version", s.enrolmentVersion)) }
            for (key, value) in versions {
                try db.execute(
                    sql: "INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                    arguments: [key, "\(value)"])
            }
            return c
        }
        if change.studentsErased > 0 || change.enrolmentsRemoved > 0 {
            do { try store.retention.compact() } catch { change.compaction = "\(error)" }
        }
        return change
    }

    /// A student the school's server no longer has: every trace here goes, as `Retention.erase` does it.
    static func eraseCached(_ db: Database, student code: String, store: AttendanceStore) throws {
        func count(_ sql: String) throws -> Int { try Int.fetchOne(db, sql: sql, arguments: [code]) ?? 0 }
        let enrolments = try count("SELECT COUNT(*) FROM enrolment WHERE student_code = ?")
        let events = try count("SELECT COUNT(*) FROM attendance_event WHERE student_code = ?")
        try db.execute(
            sql: """
                DELETE FROM outbox
                WHERE record_id IN (SELECT id FROM attendance_event WHERE student_code = ?1)
                   OR json_extract(payload, '$.student_code') = ?1
                """, arguments: [code])
        let outbox = db.changesCount
        // ON DELETE CASCADE: consent, enrolment, gate_sighting, attendance_event (and journal_shared), excuse,
        // review_hold, student_alias.
        try db.execute(sql: "DELETE FROM student WHERE code = ?", arguments: [code])
        let pseudonym = store.pseudonymKey.pseudonym(of: code)
        try db.execute(
            sql: """
                INSERT INTO erased_student(pseudonym, erased_at) VALUES (?, ?)
                ON CONFLICT(pseudonym) DO UPDATE SET erased_at = excluded.erased_at
                """, arguments: [pseudonym, Timestamp.string(store.now())])
        try AttendanceStore.audit(
            db, action: "student.erase", subject: pseudonym,
            detail: "gone from the school's server; enrolments=\(enrolments); events=\(events); outbox=\(outbox)")
    }
}

extension AttendanceStore {
    /// This box's copy of the school's gallery (`[database] backend = "postgresql"`).
    public var schoolGallery: SchoolGalleryCache { SchoolGalleryCache(store: self) }

    /// With `[database] backend = "postgresql"` the school's roster, consent and faces live on the server and this
    /// store holds a copy the gallery refresh overwrites: a change made only here would vanish at the next refresh,
    /// so it is refused, changing nothing.
    func requireLocalGallery() throws {
        guard config.database.backend == .postgresql else { return }
        throw StoreError.invalid(Self.sharedGalleryRefusal)
    }

    /// Why a gate box in postgresql mode refuses a local change to the roster, consent or faces (Vietnamese first:
    /// the console and the CLI are read by school staff).
    public static let sharedGalleryRefusal =
        "Danh sách học sinh, sự đồng ý và khuôn mặt của trường được lưu trên máy chủ của trường (PostgreSQL); "
        + "máy này chỉ giữ bản sao, nên không thay đổi tại đây; hãy dùng các lệnh `attendance` bên dưới (chúng ghi lên máy "
        + "chủ trước). / The school's roster, consent and faces live on the "
        + "school's server (PostgreSQL); this box only keeps a copy, so nothing was changed here. Use the commands, on "
        + "any box (they write to the server first, then this copy): `attendance roster import`, `attendance consent "
        + "record` / `revoke`, `attendance enrol`, `attendance unenrol`, `attendance sightings approve`, "
        + "`attendance student erase`."
}
