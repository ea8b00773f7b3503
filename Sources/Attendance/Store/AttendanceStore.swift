import AttendanceCore
import Crypto
import Foundation
import GRDB
import SectorConnector

/// The attendance database: students, consent, sealed enrolments, events with their outbox,
/// the audit log. One SQLite file in WAL mode, shared by the daemon and the CLI processes;
/// every change that belongs together is one transaction.
public final class AttendanceStore: Sendable {
    /// The one writer (a `DatabasePool` on a file, a `DatabaseQueue` in memory for tests). Not public:
    /// other modules go through the store's concern types (`roster`, `events`, ...), so that the outbox,
    /// the audit log and `gallery_version` stay consistent and the SQL stays behind this module (the
    /// school's shared PostgreSQL is a second backend). Inside the module only those types use it.
    let writer: any DatabaseWriter
    public let path: String
    public let keyFile: String
    let cipher: EmbeddingCipher
    let pseudonymHolder: PseudonymKeyHolder
    var pseudonymKey: PseudonymKey { pseudonymHolder.key }
    /// Which clock times may date a record (see `ClockPolicy`).
    public let clockPolicy: ClockPolicy
    /// The wall clock the store dates its writes with (a parameter so tests can set it wrong).
    public let now: @Sendable () -> Date
    /// The school's settings the store's rules read, given once at open: the school code in record ids,
    /// the schedule for corrections and excuses, the retention periods, the enrolment limits, the time zone.
    public let config: AttendanceConfig

    /// Opens the database named by the config, creating it (and its key) on first use.
    public static func open(config: AttendanceConfig) throws -> AttendanceStore {
        try AttendanceStore(path: config.database.path, keyFile: config.database.resolvedKeyFile, config: config)
    }

    /// Opens or creates `path` (mode 0600) and its AES key `keyFile` (mode 0600), runs the migrations,
    /// and checks that the key is the one the database was created with.
    ///
    /// Refuses files other users can read, a missing key for a database with enrolments, and a wrong key.
    public convenience init(
        path: String, keyFile: String, config: AttendanceConfig, clockPolicy: ClockPolicy = ClockPolicy(),
        now: @escaping @Sendable () -> Date = { Date() }
    ) throws {
        for p in [path, path + "-wal", path + "-shm", keyFile] {
            try FilePermissions.requirePrivate(p)
        }
        try FilePermissions.createPrivate(path)
        let pool: DatabasePool
        do {
            pool = try DatabasePool(path: path, configuration: Self.configuration)
            // GRDB sets the writer to NORMAL when it turns WAL on, after prepareDatabase: set it again.
            try pool.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA synchronous = FULL") }
            try Schema.migrator.migrate(pool)
        } catch let error as DatabaseError {
            throw StoreError.io(path: path, reason: "cannot open the database: \(error.message ?? "\(error)")")
        }
        let (cipher, check) = try Self.loadKey(keyFile: keyFile, writer: pool)
        try self.init(
            writer: pool, path: path, keyFile: keyFile, cipher: cipher, keyCheck: check, config: config,
            clockPolicy: clockPolicy, now: now)
    }

    /// A store in memory, with a key that exists only in this process: the same schema, rules and
    /// transactions as on a file, for tests of the store's behaviour that need no file (nothing survives it).
    public static func inMemory(
        config: AttendanceConfig, clockPolicy: ClockPolicy = ClockPolicy(), now: @escaping @Sendable () -> Date = { Date() }
    ) throws -> AttendanceStore {
        let queue = try DatabaseQueue(configuration: configuration)
        try Schema.migrator.migrate(queue)
        let cipher = try EmbeddingCipher(keyBytes: EmbeddingCipher.randomKey())
        return try AttendanceStore(
            writer: queue, path: ":memory:", keyFile: "(in memory)", cipher: cipher, keyCheck: try cipher.sealCheck(),
            config: config, clockPolicy: clockPolicy, now: now)
    }

    private init(
        writer: any DatabaseWriter, path: String, keyFile: String, cipher: EmbeddingCipher, keyCheck: String?,
        config: AttendanceConfig, clockPolicy: ClockPolicy, now: @escaping @Sendable () -> Date
    ) throws {
        self.writer = writer
        self.path = path
        self.keyFile = keyFile
        self.cipher = cipher
        self.config = config
        self.clockPolicy = clockPolicy
        self.now = now
        if let keyCheck {
            try writer.write { db in
                try db.execute(
                    sql: "INSERT INTO meta(key, value) VALUES ('key_check', ?) "
                        + "ON CONFLICT(key) DO UPDATE SET value = excluded.value", arguments: [keyCheck])
            }
        }
        do {
            pseudonymHolder = PseudonymKeyHolder(try PseudonymKey.loadOrCreate(writer: writer, cipher: cipher))
        } catch is EmbeddingCipher.CipherError {
            throw StoreError.wrongKey(keyFile: keyFile)
        }
    }

    /// The one connection configuration, on a file and in memory.
    static var configuration: Configuration {
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
        return configuration
    }

    /// The cipher for `keyFile`, and the key-check value to store when the database has none yet.
    private static func loadKey(keyFile: String, writer: any DatabaseWriter) throws -> (EmbeddingCipher, String?) {
        let (storedCheck, enrolments) = try writer.read { db in
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
