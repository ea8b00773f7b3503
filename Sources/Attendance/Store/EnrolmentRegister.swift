import AttendanceCore
import Foundation
import GRDB

// Sealed embeddings and the gallery the cameras search (`AttendanceStore.enrolments`); gate sightings in
// EnrolmentRegister+Sightings.swift, the school server's gallery copy in Store+SchoolGallery.swift.

extension EnrolmentRegister {
    /// Bumped in the same transaction as every change to who can be recognised (enrol, unenrol,
    /// consent revocation, erasure, roster (de)activation): poll it cheaply, reload on change.
    public func galleryVersion() throws -> Int64 {
        try store.writer.read { db in try AttendanceStore.galleryVersion(db) }
    }

    /// Decrypted embeddings of the students who may be recognised: active, with unrevoked consent.
    public func recognisable() throws -> [(student: String, embedding: [Float])] {
        try snapshot().embeddings
    }

    /// The embeddings and the gallery version they belong to, read in one transaction.
    ///
    /// A row that does not open (one damaged byte) is skipped and its student listed in `unreadable`:
    /// one bad row must not stop the gate. When every row fails, the key is wrong: that throws.
    public func snapshot() throws -> (
        version: Int64, embeddings: [(student: String, embedding: [Float])], unreadable: [String]
    ) {
        let (version, rows) = try store.writer.read { db -> (Int64, [(String, Data)]) in
            let rows = try Row.fetchAll(
                db,
                sql: """
                    SELECT e.student_code, e.sealed_embedding FROM enrolment e
                    JOIN student s ON s.code = e.student_code
                    WHERE s.active = 1
                      AND EXISTS (SELECT 1 FROM consent c WHERE c.student_code = e.student_code AND c.revoked_at IS NULL)
                    ORDER BY e.student_code, e.id
                    """
            ).map { ($0["student_code"] as String, $0["sealed_embedding"] as Data) }
            return (try AttendanceStore.galleryVersion(db), rows)
        }
        var embeddings: [(student: String, embedding: [Float])] = []
        var unreadable: [String] = []
        for (student, sealed) in rows {
            if let e = try? store.cipher.open(sealed, student: student) {
                embeddings.append((student, e))
            } else if unreadable.last != student {
                unreadable.append(student)
            }
        }
        if !rows.isEmpty, embeddings.isEmpty { throw StoreError.wrongKey(keyFile: store.keyFile) }
        return (version, embeddings, unreadable)
    }

    /// Students with an enrolment row that does not open (for `attendance students`), any state.
    public func unreadable() throws -> Set<String> {
        let rows = try store.writer.read { db in
            try Row.fetchAll(db, sql: "SELECT student_code, sealed_embedding FROM enrolment").map {
                ($0["student_code"] as String, $0["sealed_embedding"] as Data)
            }
        }
        return Set(rows.filter { (try? store.cipher.open($0.1, student: $0.0)) == nil }.map(\.0))
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

    /// One student's embeddings, decrypted, oldest first (a row that does not open throws: the key is wrong).
    public func embeddings(student: String) throws -> [[Float]] {
        let rows = try store.writer.read { db in
            try Data.fetchAll(
                db, sql: "SELECT sealed_embedding FROM enrolment WHERE student_code = ? ORDER BY id", arguments: [student])
        }
        return try rows.map { try store.open($0, student: student) }
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

    /// `discardAll(path:)` for the database `config` names; refused, changing nothing, with `[database] backend =
    /// "postgresql"`: the school's faces and its key check live on the server, a box's copy discarded alone would be
    /// refilled by its next refresh, and a lost key is replaced on every box at once (not built yet: #17).
    @discardableResult
    public static func discardAll(config: AttendanceConfig) throws -> Int {
        guard config.database.backend != .postgresql else { throw StoreError.invalid(discardAllRefusal) }
        return try discardAll(path: config.database.path)
    }

    public static let discardAllRefusal =
        "Khuôn mặt của cả trường nằm trên máy chủ của trường (PostgreSQL): xoá tất cả chỉ trên máy này sẽ bị bản sao "
        + "ghi đè, và khoá của trường phải được thay trên mọi máy cùng lúc; chưa thể làm việc này từ một máy cổng. Không "
        + "có gì bị xoá. / The school's faces live on its server (PostgreSQL): discarding them on this box alone would be "
        + "undone by its next refresh, and a lost key must be replaced on every box at once, which a gate box cannot do "
        + "yet. Nothing was deleted. To remove one student's faces: `attendance unenrol STUDENT` (on the server first)."

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
