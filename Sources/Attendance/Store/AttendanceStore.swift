import AttendanceCore
import Crypto
import Foundation
import GRDB
import SectorConnector

/// The attendance database: students, consent, sealed enrolments, events with their outbox,
/// the audit log. One SQLite file in WAL mode, shared by the daemon and the CLI processes;
/// every change that belongs together is one transaction.
public final class AttendanceStore: Sendable {
    /// The one pool. Not public: other modules go through the store's methods, so that the outbox,
    /// the audit log and `gallery_version` stay consistent and the SQL stays behind this module (a
    /// second backend is planned).
    let dbPool: DatabasePool
    public let path: String
    public let keyFile: String
    let cipher: EmbeddingCipher
    let pseudonymKey: PseudonymKey
    /// Which clock times may date a record (see `ClockPolicy`).
    public let clockPolicy: ClockPolicy
    /// The wall clock the store dates its writes with (a parameter so tests can set it wrong).
    public let now: @Sendable () -> Date
    /// The school's settings the store's rules read, given once at open: the school code in record ids,
    /// the schedule for corrections and excuses, the retention periods, the time zone.
    public let config: AttendanceConfig

    /// Opens the database named by the config, creating it (and its key) on first use.
    public static func open(config: AttendanceConfig) throws -> AttendanceStore {
        try AttendanceStore(path: config.database.path, keyFile: config.database.resolvedKeyFile, config: config)
    }

    /// Opens or creates `path` (mode 0600) and its AES key `keyFile` (mode 0600), runs the migrations,
    /// and checks that the key is the one the database was created with.
    ///
    /// Refuses files other users can read, a missing key for a database with enrolments, and a wrong key.
    public init(
        path: String, keyFile: String, config: AttendanceConfig, clockPolicy: ClockPolicy = ClockPolicy(),
        now: @escaping @Sendable () -> Date = { Date() }
    ) throws {
        self.config = config
        self.path = path
        self.keyFile = keyFile
        self.clockPolicy = clockPolicy
        self.now = now
        for p in [path, path + "-wal", path + "-shm", keyFile] {
            try FilePermissions.requirePrivate(p)
        }
        try FilePermissions.createPrivate(path)

        var configuration = Configuration()
        configuration.foreignKeysEnabled = true
        configuration.busyMode = .timeout(15)
        configuration.label = "attendance"
        configuration.prepareDatabase { db in
            // Deleted rows (embeddings, erased students) are overwritten, not left in free pages.
            try db.execute(sql: "PRAGMA secure_delete = ON")
            // A commit that returned survives a power cut (WAL's default NORMAL can lose the last ones,
            // after the record may already have reached the sector gateway). Every connection: writer and readers.
            try db.execute(sql: "PRAGMA synchronous = FULL")
        }
        do {
            dbPool = try DatabasePool(path: path, configuration: configuration)
            // GRDB sets the writer to NORMAL when it turns WAL on, after prepareDatabase: set it again.
            try dbPool.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA synchronous = FULL") }
            try Schema.migrator.migrate(dbPool)
        } catch let error as DatabaseError {
            throw StoreError.io(path: path, reason: "cannot open the database: \(error.message ?? "\(error)")")
        }

        let (cipher, check) = try Self.loadKey(keyFile: keyFile, pool: dbPool)
        self.cipher = cipher
        if let check {
            try dbPool.write { db in
                try db.execute(
                    sql: "INSERT INTO meta(key, value) VALUES ('key_check', ?) "
                        + "ON CONFLICT(key) DO UPDATE SET value = excluded.value", arguments: [check])
            }
        }
        do {
            pseudonymKey = try PseudonymKey.loadOrCreate(pool: dbPool, cipher: cipher)
        } catch is EmbeddingCipher.CipherError {
            throw StoreError.wrongKey(keyFile: keyFile)
        }
    }

    /// The cipher for `keyFile`, and the key-check value to store when the database has none yet.
    private static func loadKey(keyFile: String, pool: DatabasePool) throws -> (EmbeddingCipher, String?) {
        let (storedCheck, enrolments) = try pool.read { db in
            (
                try String.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'key_check'"),
                try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM enrolment") ?? 0
            )
        }
        if let bytes = try KeyFile.load(keyFile) {
            let cipher = try EmbeddingCipher(keyBytes: bytes)
            if let storedCheck {
                guard cipher.verifyCheck(storedCheck) else {
                    // A key rotation that committed but did not get to rename its new key file: finish it.
                    if let pending = try? KeyFile.load(keyFile + ".new"), let next = try? EmbeddingCipher(keyBytes: pending),
                        next.verifyCheck(storedCheck)
                    {
                        // A process that cannot write the key's folder (the daemon: read-only there) uses the new
                        // key as it is; the next command that can, renames it.
                        try? finishRotation(keyFile: keyFile)
                        return (next, nil)
                    }
                    throw StoreError.wrongKey(keyFile: keyFile)
                }
                // A `.new` file beside a key that still matches is a rotation under way (or one that never
                // committed): never touch it here; `rotateKey` replaces it under its lock.
                return (cipher, nil)
            }
            return (cipher, try cipher.sealCheck())
        }
        if enrolments > 0 { throw StoreError.missingKey(keyFile: keyFile, enrolments: enrolments) }
        let cipher = try EmbeddingCipher(keyBytes: try KeyFile.create(keyFile))
        return (cipher, try cipher.sealCheck())
    }

    // MARK: gallery

    static func galleryVersion(_ db: Database) throws -> Int64 {
        Int64(try String.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'gallery_version'") ?? "0") ?? 0
    }

    static func bumpGalleryVersion(_ db: Database) throws {
        try db.execute(
            sql: """
                UPDATE meta SET value = CAST(CAST(value AS INTEGER) + 1 AS TEXT) WHERE key = 'gallery_version'
                """)
    }

    func open(_ sealed: Data, student: String) throws -> [Float] {
        do {
            return try cipher.open(sealed, student: student)
        } catch {
            throw StoreError.wrongKey(keyFile: keyFile)
        }
    }

    // MARK: events

    // MARK: audit

    static func audit(_ db: Database, action: String, subject: String?, detail: String?) throws {
        try db.execute(
            sql: "INSERT INTO audit_log(at, os_user, action, subject, detail) VALUES (?, ?, ?, ?, ?)",
            arguments: [Timestamp.string(Date()), actor, action, subject, detail])
    }

    static func audit(_ db: Database, action: String, student: String, detail: String?) throws {
        try audit(db, action: action, subject: try alias(db, student: student), detail: detail)
    }

    /// The student's audit alias, made on first use.
    static func alias(_ db: Database, student: String) throws -> String {
        if let a = try String.fetchOne(db, sql: "SELECT alias FROM student_alias WHERE student_code = ?", arguments: [student]) {
            return a
        }
        let alias = "S-" + EmbeddingCipher.randomKey().prefix(6).map { String(format: "%02x", $0) }.joined()
        try db.execute(sql: "INSERT INTO student_alias(student_code, alias) VALUES (?, ?)", arguments: [student, alias])
        return alias
    }

    /// Who the audit log and the records' `recorded_by` name for changes made in this task: the console
    /// user it acts for (`console:NAME`, bound by the console around each request), else the OS user.
    @TaskLocal public static var actingUser: String?

    /// The name written as the author of a change (see `actingUser`).
    public static var actor: String { actingUser ?? osUser }

    /// The operating-system user running this process, as the audit log names them.
    public static let osUser: String = {
        var name = "uid \(geteuid())"
        var pwd = passwd()
        var result: UnsafeMutablePointer<passwd>?
        var buffer = [CChar](repeating: 0, count: 4096)
        if getpwuid_r(geteuid(), &pwd, &buffer, buffer.count, &result) == 0, result != nil, let n = pwd.pw_name {
            name = String(cString: n)
        }
        if geteuid() == 0, let sudo = ProcessInfo.processInfo.environment["SUDO_USER"], !sudo.isEmpty {
            name += " (sudo by \(sudo))"
        }
        return name
    }()
}

extension EnrolmentRegister {
    /// Bumped in the same transaction as every change to who can be recognised (enrol, unenrol,
    /// consent revocation, erasure, roster (de)activation): poll it cheaply, reload on change.
    public func galleryVersion() throws -> Int64 {
        try store.dbPool.read { db in try AttendanceStore.galleryVersion(db) }
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
        let (version, rows) = try store.dbPool.read { db -> (Int64, [(String, Data)]) in
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
        let rows = try store.dbPool.read { db in
            try Row.fetchAll(db, sql: "SELECT student_code, sealed_embedding FROM enrolment").map {
                ($0["student_code"] as String, $0["sealed_embedding"] as Data)
            }
        }
        return Set(rows.filter { (try? store.cipher.open($0.1, student: $0.0)) == nil }.map(\.0))
    }
}

extension EventLedger {
    /// The sector record id of a student's event: derived from school, student, day, session and kind, so
    /// an event lost to a power cut and recorded again reaches the sector as the same record, never a
    /// second one. A UUID-shaped string (SHA-256, version 5 and variant bits set).
    public static func recordID(school: String, student: String, day: LocalDate, session: String, kind: EventKind) -> String {
        let key = ["attendance-record", school, student, day.description, session, kind.rawValue].joined(separator: "\u{1F}")
        var b = Array(SHA256.hash(data: Data(key.utf8)).prefix(16))
        b[6] = (b[6] & 0x0F) | 0x50
        b[8] = (b[8] & 0x3F) | 0x80
        let hex = b.map { String(format: "%02x", $0) }.joined()
        let parts = [
            hex.prefix(8), hex.dropFirst(8).prefix(4), hex.dropFirst(12).prefix(4), hex.dropFirst(16).prefix(4),
            hex.dropFirst(20),
        ]
        return parts.joined(separator: "-")
    }

    /// Records an event and queues it for the sector database (outbox, NEW, version 1) in one
    /// transaction. Returns false, changing nothing, when the student already has an event of
    /// this kind for this day and session. An event an admin cancelled (a wrong match) does not count:
    /// the student's own arrival then revives that record with the new time and status (an UPDATE with a
    /// higher version), so the real student is recorded after all.
    ///
    /// Throws `ClockProblem`, changing nothing, while the clock cannot be trusted to date the record.
    public func record(_ e: NewAttendanceEvent) throws -> Bool {
        let clockNow = store.now()
        let schoolCode = store.config.school.code
        return try store.dbPool.write { db in
            try AttendanceStore.checkAndAdvanceClock(db, now: clockNow, policy: store.clockPolicy)
            return try Self.insert(db, e, schoolCode: schoolCode, now: clockNow)
        }
    }

    /// `record`'s write, inside a transaction that has checked the clock (also a teacher's accepted review).
    static func insert(_ db: Database, _ e: NewAttendanceEvent, schoolCode: String, now clockNow: Date) throws -> Bool {
        guard let student = try AttendanceStore.student(db, code: e.studentCode) else {
            throw StoreError.unknownStudent(e.studentCode)
        }
        let occurred = Timestamp.string(e.occurredAt)
        if let existing = try AttendanceStore.event(
            db, student: e.studentCode, day: e.schoolDay, session: e.session, kind: e.kind)
        {
            guard existing.cancelled else { return false }
            let version = try AttendanceStore.nextVersion(db, existing)
            try db.execute(
                sql: """
                    UPDATE attendance_event SET status = ?, occurred_at = ?, camera = ?, distance = ?, version = ?, cancelled = 0
                    WHERE id = ?
                    """, arguments: [e.status.rawValue, occurred, e.camera, Double(e.distance), version, existing.id])
            try AttendanceStore.queue(
                db, id: existing.id, kind: .update, version: version, student: student, day: e.schoolDay,
                session: e.session, eventKind: e.kind, status: e.status, occurredAt: occurred, camera: e.camera,
                schoolCode: schoolCode, now: clockNow)
            return true
        }
        let recordID = EventLedger.recordID(
            school: schoolCode, student: e.studentCode, day: e.schoolDay, session: e.session, kind: e.kind)
        try db.execute(
            sql: """
                INSERT INTO attendance_event(id, student_code, school_day, session, kind, status, occurred_at,
                                             camera, distance, version, cancelled)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 1, 0)
                """,
            arguments: [
                recordID, e.studentCode, e.schoolDay.description, e.session, e.kind.rawValue,
                e.status.rawValue, occurred, e.camera, Double(e.distance),
            ])
        // The same one outbox write as corrections and revivals use.
        try AttendanceStore.queue(
            db, id: recordID, kind: .new, version: 1, student: student, day: e.schoolDay, session: e.session,
            eventKind: e.kind, status: e.status, occurredAt: occurred, camera: e.camera,
            schoolCode: schoolCode, now: clockNow)
        return true
    }

    /// Counts a face nobody matched. `cropPath` only when the school opted in to keeping crops. Returns the row id.
    @discardableResult
    public func recordUnknownFace(at: Date, camera: String?, cropPath: String?) throws -> Int64 {
        try store.dbPool.write { db in
            try db.execute(
                sql: "INSERT INTO unknown_face(seen_at, camera, crop_path) VALUES (?, ?, ?)",
                arguments: [Timestamp.string(at), camera, cropPath])
            return db.lastInsertedRowID
        }
    }

    /// The crop of an unknown-face row could not be written: the row keeps the count, not the path.
    public func forgetUnknownCrop(row: Int64) throws {
        try store.dbPool.write { db in
            try db.execute(sql: "UPDATE unknown_face SET crop_path = NULL WHERE id = ?", arguments: [row])
        }
    }

    /// Unknown faces counted on a day (in the school's time zone).
    public func unknownFaceCount(on day: LocalDate, timeZone: TimeZone) throws -> Int {
        let from = Timestamp.string(day.at(LocalTime(hour: 0, minute: 0), in: timeZone))
        let to = Timestamp.string(day.adding(days: 1).at(LocalTime(hour: 0, minute: 0), in: timeZone))
        return try store.dbPool.read { db in
            try Int.fetchOne(
                db, sql: "SELECT COUNT(*) FROM unknown_face WHERE seen_at >= ? AND seen_at < ?", arguments: [from, to]) ?? 0
        }
    }
}

extension AuditLog {
    /// Appends to the audit log (the log refuses updates and deletes). `subject` is stored as given:
    /// to name a student, use `append(action:student:detail:)`, which stores an erasable alias.
    public func append(action: String, subject: String?, detail: String?) throws {
        try store.dbPool.write { db in try AttendanceStore.audit(db, action: action, subject: subject, detail: detail) }
    }

    /// Appends an entry about a student, naming them by alias so erasure can unlink the log.
    public func append(action: String, student: String, detail: String?) throws {
        try store.dbPool.write { db in try AttendanceStore.audit(db, action: action, student: student, detail: detail) }
    }

    /// Audit entries from `since` on (oldest first), student aliases resolved while the student exists.
    public func entries(since: Date? = nil, limit: Int? = nil) throws -> [AuditEntry] {
        try store.dbPool.read { db in
            var sql = """
                SELECT a.id, a.at, a.os_user, a.action, a.subject, a.detail, sa.student_code
                FROM audit_log a LEFT JOIN student_alias sa ON sa.alias = a.subject
                """
            var args: StatementArguments = []
            if let since { sql += " WHERE a.at >= ?"; args += [Timestamp.string(since)] }
            sql += " ORDER BY a.id DESC"
            if let limit { sql += " LIMIT \(max(0, limit))" }
            return try Row.fetchAll(db, sql: sql, arguments: args).map { r in
                AuditEntry(
                    id: r["id"], at: r["at"], osUser: r["os_user"], action: r["action"], subject: r["subject"],
                    detail: r["detail"], studentCode: r["student_code"])
            }.reversed()
        }
    }
}
