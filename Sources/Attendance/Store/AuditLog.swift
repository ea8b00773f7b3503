import AttendanceCore
import Crypto
import Foundation
import GRDB

// The audit log (append-only: the schema's triggers refuse updates and deletes).

extension AuditLog {
    /// Appends to the audit log (the log refuses updates and deletes). `subject` is stored as given:
    /// to name a student, use `append(action:student:detail:)`, which stores an erasable alias.
    public func append(action: String, subject: String?, detail: String?) throws {
        try store.writer.write { db in try AttendanceStore.audit(db, action: action, subject: subject, detail: detail) }
    }

    /// Appends an entry about a student, naming them by alias so erasure can unlink the log.
    public func append(action: String, student: String, detail: String?) throws {
        try store.writer.write { db in try AttendanceStore.audit(db, action: action, student: student, detail: detail) }
    }

    /// Audit entries from `since` on (oldest first), student aliases resolved while the student exists.
    public func entries(since: Date? = nil, limit: Int? = nil) throws -> [AuditEntry] {
        try store.writer.read { db in
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

extension AuditLog {
    /// Audits a configuration change: when the config file's SHA-256 differs from the one the
    /// daemon last started with, an entry `config.change` records the file and both hashes.
    /// Returns whether it changed.
    @discardableResult
    public func configChange(path: String, contents: Data) throws -> Bool {
        let hash = SHA256.hash(data: contents).map { String(format: "%02x", $0) }.joined()
        let previous = try store.writer.read { db in
            try String.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'config_sha256'")
        }
        guard previous != hash else { return false }
        try store.writer.write { db in
            try db.execute(
                sql:
                    "INSERT INTO meta(key, value) VALUES ('config_sha256', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                arguments: [hash])
        }
        try append(action: "config.change", subject: path, detail: "sha256 \(previous ?? "none") -> \(hash)")
        return true
    }
}
