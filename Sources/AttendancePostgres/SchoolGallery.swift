import Attendance
import AttendanceCore
import Foundation
import Logging
import PostgresNIO

/// The school's gallery on the server (`[database] backend = "postgresql"`): what each gate recognises (classes,
/// students, consent, sealed enrolments), read into the gate's local cache, and the two changes a box makes there:
/// an enrolment and an erasure, each in one audited server transaction. The embeddings are sealed on the box with
/// the school's key before they leave it; the server stores and returns the sealed bytes only.
public enum SchoolGallery {
    static let logger: Logger = {
        var l = Logger(label: "attendance.postgres.gallery")
        l.logLevel = .warning
        return l
    }()

    /// The server's gallery version (bumped by a trigger with every change; migration 2).
    public static func version(on c: PostgresConnection) async throws -> Int64 {
        let v =
            try await c.query("SELECT value FROM meta WHERE key = 'gallery_version'", logger: logger).collect().first?
            .decode(String.self)
        return v.flatMap { Int64($0) } ?? 0
    }

    /// Brings `store`'s local cache up to the server's gallery, if the server's version moved since the last
    /// refresh (or `force`). Reads one consistent snapshot (a repeatable-read transaction) and fetches only the
    /// sealed rows this box lacks. Returns nil when there was nothing to do.
    ///
    /// Refuses, changing nothing, a box whose key file is not the school's (the server's key check does not open).
    @discardableResult
    public static func refresh(
        _ store: AttendanceStore, on c: PostgresConnection, force: Bool = false
    ) async throws -> SchoolGalleryChange? {
        let cache = store.schoolGallery
        if !force, let seen = try cache.serverVersion(), try await version(on: c) == seen { return nil }
        let local = try cache.enrolmentKeys()
        let seen = force ? (roster: nil, enrolments: nil) : try cache.seenGroupVersions()
        let snapshot = try await inner {
            try await c.withTransaction(logger: logger) { c -> SchoolGallerySnapshot in
                try await c.query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY", logger: logger)
                if let check = try await c.query("SELECT value FROM meta WHERE key = 'key_check'", logger: logger)
                    .collect().first?.decode(String.self), !cache.keyMatches(check)
                {
                    throw PostgresProblem(
                        .refused,
                        "this box's key file (\(store.keyFile)) is not the school's: the faces on the school's server were "
                            + "sealed with another key. Copy the school's key file to this box (the same file on every box, "
                            + "mode 0600; see the README, \"Several gates, one school\"); this box keeps its last copy")
                }
                let v = try await version(on: c)
                var rosterVersion: Int64 = 0
                var enrolmentVersion: Int64 = 0
                for try await (r, e) in try await c.query(
                    """
                    SELECT coalesce(sum(value::bigint) FILTER (WHERE key IN ('gallery_version:school_class',
                               'gallery_version:student', 'gallery_version:consent')), 0)::bigint,
                           coalesce(sum(value::bigint) FILTER (WHERE key = 'gallery_version:enrolment'), 0)::bigint
                    FROM meta WHERE key LIKE 'gallery_version:%'
                    """, logger: logger
                ).decode((Int64, Int64).self) {
                    rosterVersion = r
                    enrolmentVersion = e
                }
                let readRoster = seen.roster != rosterVersion
                let readEnrolments = seen.enrolments != enrolmentVersion
                var classes: [SchoolGallerySnapshot.ClassRow] = []
                var students: [SchoolGallerySnapshot.StudentRow] = []
                var consents: [SchoolGallerySnapshot.ConsentRow] = []
                var keys: [SchoolGallerySnapshot.EnrolmentKey] = []
                var rows: [SchoolGallerySnapshot.EnrolmentRow] = []
                if readRoster {
                    for try await (code, grade, name) in try await c.query(
                        "SELECT code, grade_code, name FROM school_class ORDER BY code", logger: logger
                    ).decode((String, String, String?).self) {
                        classes.append(.init(code: code, gradeCode: grade, name: name))
                    }
                    for try await (code, name, klass, born, gender, active, created, updated) in try await c.query(
                        """
                        SELECT code, full_name, class_code, date_of_birth, gender, active, created_at, updated_at
                        FROM student ORDER BY code
                        """, logger: logger
                    ).decode((String, String, String, String?, String?, Bool, String, String).self) {
                        students.append(
                            .init(
                                code: code, fullName: name, classCode: klass, dateOfBirth: born, gender: gender, active: active,
                                createdAt: created, updatedAt: updated))
                    }
                    for try await (id, student, guardian, relation, date, scope, by, at, revokedAt, revokedBy)
                        in try await c.query(
                            """
                            SELECT id, student_code, guardian_name, relation, consent_date, scope, recorded_by, recorded_at,
                                   revoked_at, revoked_by
                            FROM consent ORDER BY id
                            """, logger: logger
                        ).decode((Int64, String, String, String, String, String, String, String, String?, String?).self)
                    {
                        consents.append(
                            .init(
                                id: id, studentCode: student, guardianName: guardian, relation: relation, consentDate: date,
                                scope: scope, recordedBy: by, recordedAt: at, revokedAt: revokedAt, revokedBy: revokedBy))
                    }
                }
                if readEnrolments {
                    for try await (id, student, created) in try await c.query(
                        "SELECT id, student_code, created_at FROM enrolment ORDER BY id", logger: logger
                    ).decode((Int64, String, String).self) {
                        keys.append(.init(id: id, studentCode: student, createdAt: created))
                    }
                    let missing = keys.filter { !local.contains($0) }.map(\.id)
                    if !missing.isEmpty {
                        for try await (id, student, sealed, quality, source, created, by) in try await c.query(
                            """
                            SELECT id, student_code, sealed_embedding, quality, source, created_at, created_by
                            FROM enrolment WHERE id = ANY(\(missing)) ORDER BY id
                            """, logger: logger
                        ).decode((Int64, String, Data, String?, String?, String, String).self) {
                            rows.append(
                                .init(
                                    key: .init(id: id, studentCode: student, createdAt: created), sealed: sealed,
                                    quality: quality, source: source, createdBy: by))
                        }
                    }
                }
                var snapshot = SchoolGallerySnapshot(
                    version: v, classes: classes, students: students, consents: consents, enrolmentKeys: keys,
                    newEnrolments: rows)
                snapshot.rosterVersion = rosterVersion
                snapshot.enrolmentVersion = enrolmentVersion
                snapshot.includesRoster = readRoster
                snapshot.includesEnrolments = readEnrolments
                return snapshot
            }
        }
        let change = try cache.apply(snapshot)
        // The school's pseudonym key (the first box's, copied by `db migrate`, or the first to enrol, erase or import):
        // every box names a student alike, so an erasure made on one is recognised by a roster import on another.
        try await useSchoolPseudonymKey(store, on: c)
        return change
    }

    /// Stores a student's accepted faces on the school's server in one transaction: the student must be there,
    /// active, with consent in force, and stay within `recognition.max_embeddings_per_student` (the store's config);
    /// audited on the server (by the student's alias there). The faces are sealed here with `store`'s key, which must be the school's (the server's key
    /// check; a server without one takes this box's). Returns the new rows' ids. Every gate (this one included)
    /// picks them up through its gallery refresh.
    @discardableResult
    public static func enrol(
        student: String, _ items: [(embedding: [Float], quality: String?, source: String?)], store: AttendanceStore,
        on c: PostgresConnection
    ) async throws -> [Int64] {
        let sealed = try items.map { (try store.schoolGallery.seal($0.embedding, student: student), $0.quality, $0.source) }
        let myCheck = try store.schoolGallery.keyCheck()
        let maxPerStudent = store.config.recognition.maxEmbeddingsPerStudent
        return try await inner {
            try await c.withTransaction(logger: logger) { c -> [Int64] in
                if let myCheck {
                    try await c.query(
                        "INSERT INTO meta(key, value) VALUES ('key_check', \(myCheck)) ON CONFLICT (key) DO NOTHING",
                        logger: logger)
                }
                try await offerPseudonymKey(store, on: c)
                let check = try await c.query("SELECT value FROM meta WHERE key = 'key_check'", logger: logger).collect()
                    .first?.decode(String.self)
                if let check, !store.schoolGallery.keyMatches(check) {
                    throw PostgresProblem(
                        .refused,
                        "this box's key file (\(store.keyFile)) is not the school's: the other boxes could not open faces "
                            + "sealed with it. Copy the school's key file to this box first; nothing was enrolled")
                }
                guard
                    let active = try await c.query(
                        "SELECT active FROM student WHERE code = \(student) FOR UPDATE", logger: logger
                    ).collect().first?.decode(Bool.self)
                else { throw StoreError.unknownStudent(student) }
                guard active else { throw StoreError.inactiveStudent(student) }
                let consents =
                    try await c.query(
                        "SELECT count(*) FROM consent WHERE student_code = \(student) AND revoked_at IS NULL", logger: logger
                    ).collect().first?.decode(Int.self) ?? 0
                guard consents > 0 else { throw StoreError.noConsent(student) }
                let existing =
                    try await c.query(
                        "SELECT count(*) FROM enrolment WHERE student_code = \(student)", logger: logger
                    ).collect().first?.decode(Int.self) ?? 0
                guard existing + sealed.count <= maxPerStudent else {
                    throw StoreError.invalid(
                        "student '\(student)' would have \(existing + sealed.count) enrolled faces on the school's server; "
                            + "the limit is \(maxPerStudent) (recognition.max_embeddings_per_student)")
                }
                let now = Timestamp.string(Date())
                let actor = AttendanceStore.actor
                var ids: [Int64] = []
                for (blob, quality, source) in sealed {
                    let id = try await c.query(
                        """
                        INSERT INTO enrolment(student_code, sealed_embedding, quality, source, created_at, created_by)
                        VALUES (\(student), \(blob), \(quality), \(source), \(now), \(actor)) RETURNING id
                        """, logger: logger
                    ).collect().first?.decode(Int64.self)
                    if let id { ids.append(id) }
                }
                let alias = try await Self.alias(of: student, on: c)
                try await c.query(
                    """
                    INSERT INTO audit_log(at, os_user, action, subject, detail)
                    VALUES (\(now), \(actor), 'enrol', \(alias), \("embeddings added=\(ids.count); total=\(existing + ids.count)"))
                    """, logger: logger)
                return ids
            }
        }
    }

    /// What an erasure removed on the server.
    public struct Erasure: Sendable, Equatable {
        public var enrolments = 0
        public var consents = 0
        public var events = 0
        public var outbox = 0
        public var excuses = 0
    }

    /// Erases a student on the school's server in one transaction: the roster row and everything that hangs on it
    /// (consent, enrolments, gate sightings, events, excuses, the audit alias) and the school outbox's records of
    /// the student; the erasure register keeps `pseudonym` (a keyed hash, never the code) and one audit entry names
    /// it. Every gate erases its own copy within seconds (the gallery refresh: a student gone from the server is
    /// erased by the gate's own rules).
    public static func erase(
        student: String, pseudonym: String, reason: String?, on c: PostgresConnection
    ) async throws -> Erasure {
        try await inner {
            try await c.withTransaction(logger: logger) { c -> Erasure in
                guard
                    try await c.query("SELECT 1 FROM student WHERE code = \(student) FOR UPDATE", logger: logger).collect()
                        .count == 1
                else { throw StoreError.unknownStudent(student) }
                func count(_ table: String) async throws -> Int {
                    try await c.query(
                        PostgresQuery(unsafeSQL: "SELECT count(*) FROM \(table) WHERE student_code = $1", binds: binds(student)),
                        logger: logger
                    ).collect().first?.decode(Int.self) ?? 0
                }
                var r = Erasure()
                r.enrolments = try await count("enrolment")
                r.consents = try await count("consent")
                r.events = try await count("attendance_event")
                r.excuses = try await count("excuse")
                r.outbox =
                    try await c.query(
                        """
                        WITH gone AS (
                            DELETE FROM outbox
                            WHERE record_id IN (SELECT record_id FROM attendance_event WHERE student_code = \(student))
                               OR (payload::jsonb ->> 'student_code') = \(student)
                            RETURNING 1)
                        SELECT count(*) FROM gone
                        """, logger: logger
                    ).collect().first?.decode(Int.self) ?? 0
                // ON DELETE CASCADE: consent, enrolment, gate_sighting, attendance_event, excuse, student_alias.
                try await c.query("DELETE FROM student WHERE code = \(student)", logger: logger)
                let now = Timestamp.string(Date())
                try await c.query(
                    """
                    INSERT INTO erased_student(pseudonym, erased_at) VALUES (\(pseudonym), \(now))
                    ON CONFLICT (pseudonym) DO UPDATE SET erased_at = EXCLUDED.erased_at
                    """, logger: logger)
                let detail =
                    "enrolments=\(r.enrolments); consents=\(r.consents); events=\(r.events); outbox=\(r.outbox); "
                    + "excuses=\(r.excuses)" + (reason.map { "; reason=\($0.normalizedText)" } ?? "")
                try await c.query(
                    """
                    INSERT INTO audit_log(at, os_user, action, subject, detail)
                    VALUES (\(now), \(AttendanceStore.actor), 'student.erase', \(pseudonym), \(detail))
                    """, logger: logger)
                return r
            }
        }
    }

    /// A transaction's own error (a `StoreError` the closure threw, the server's message) rather than its wrapper.
    static func inner<R: Sendable>(_ body: () async throws -> R) async throws -> R {
        do { return try await body() } catch let e as PostgresTransactionError {
            throw e.closureError ?? e.commitError ?? e.beginError ?? e
        }
    }

    static func binds(_ value: String) -> PostgresBindings {
        var b = PostgresBindings()
        b.append(value)
        return b
    }

    /// A new audit alias (as the store's own: `S-` and six random bytes).
    /// The school's pseudonym key on this box before a write that names a student by it (an erasure, a roster
    /// import's check of the erasure register): the server takes this box's when it has none, and this box adopts
    /// the server's when it differs (`SchoolGalleryCache.adoptPseudonymKey`).
    public static func useSchoolPseudonymKey(_ store: AttendanceStore, on c: PostgresConnection) async throws {
        try await offerPseudonymKey(store, on: c)
        if let school = try await c.query("SELECT value FROM meta WHERE key = 'pseudonym_key'", logger: logger).collect()
            .first?.decode(String.self)
        {
            try store.schoolGallery.adoptPseudonymKey(sealed: school)
        }
    }

    /// A server without a pseudonym key takes this box's (sealed with the school's key), in the caller's
    /// transaction; the first box's wins, and the others adopt it at their next refresh.
    static func offerPseudonymKey(_ store: AttendanceStore, on c: PostgresConnection) async throws {
        guard let mine = try store.schoolGallery.sealedPseudonymKey() else { return }
        // Never from a box whose key is not the school's (its key would not open on the others).
        if let check = try await c.query("SELECT value FROM meta WHERE key = 'key_check'", logger: logger).collect()
            .first?.decode(String.self), !store.schoolGallery.keyMatches(check)
        {
            return
        }
        try await c.query(
            "INSERT INTO meta(key, value) VALUES ('pseudonym_key', \(mine)) ON CONFLICT (key) DO NOTHING", logger: logger)
    }

    static func freshAlias() -> String {
        "S-" + (0..<6).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
    }

    /// The student's audit alias on the server, made on first use (as the store's own).
    static func alias(of student: String, on c: PostgresConnection) async throws -> String {
        let fresh = freshAlias()
        return try await c.query(
            """
            WITH made AS (
                INSERT INTO student_alias(student_code, alias) VALUES (\(student), \(fresh))
                ON CONFLICT (student_code) DO NOTHING RETURNING alias)
            SELECT alias FROM made UNION ALL SELECT alias FROM student_alias WHERE student_code = \(student)
            """, logger: logger
        ).collect().first?.decode(String.self) ?? fresh
    }
}
