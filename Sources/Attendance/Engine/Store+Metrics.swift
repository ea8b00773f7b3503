import AttendanceCore
import Crypto
import Foundation
import GRDB

extension EventLedger {
    /// Records not yet delivered to the sector database (pending, not parked): the outbox depth metric.
    public func outboxDepth() throws -> Int {
        try store.dbPool.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM outbox WHERE state = 'pending'") ?? 0 }
    }
}

extension AuditLog {
    /// Audits a configuration change: when the config file's SHA-256 differs from the one the
    /// daemon last started with, an entry `config.change` records the file and both hashes.
    /// Returns whether it changed.
    @discardableResult
    public func configChange(path: String, contents: Data) throws -> Bool {
        let hash = SHA256.hash(data: contents).map { String(format: "%02x", $0) }.joined()
        let previous = try store.dbPool.read { db in
            try String.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'config_sha256'")
        }
        guard previous != hash else { return false }
        try store.dbPool.write { db in
            try db.execute(
                sql:
                    "INSERT INTO meta(key, value) VALUES ('config_sha256', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                arguments: [hash])
        }
        try append(action: "config.change", subject: path, detail: "sha256 \(previous ?? "none") -> \(hash)")
        return true
    }
}

extension EventLedger {
    /// A short text that changes whenever anything the day's report shows changes (a new record, a
    /// correction, an excuse, an unknown face): the console's live Today page polls it cheaply.
    public func changeMark(on day: LocalDate) throws -> String {
        try store.dbPool.read { db in
            let row = try Row.fetchOne(
                db,
                sql: """
                    SELECT (SELECT COUNT(*) || '.' || COALESCE(SUM(version), 0) || '.' || COALESCE(SUM(cancelled), 0)
                              FROM attendance_event WHERE school_day = ?1) AS events,
                           (SELECT COUNT(*) FROM excuse WHERE school_day = ?1) AS excuses,
                           (SELECT COALESCE(MAX(id), 0) FROM unknown_face) AS unknown,
                           (SELECT COUNT(*) FROM student WHERE active = 1) AS students
                    """, arguments: [day.description])
            let events: String = row?["events"] ?? ""
            let excuses: Int = row?["excuses"] ?? 0
            let unknown: Int64 = row?["unknown"] ?? 0
            let students: Int = row?["students"] ?? 0
            return "\(events)/\(excuses)/\(unknown)/\(students)"
        }
    }
}
