import AttendanceCore
import Foundation
import GRDB

/// One table of the database as JSON, for `attendance db migrate` (the copy to the school's PostgreSQL server):
/// an array of objects keyed by column name, blobs (the sealed embeddings, still sealed) in base64.
public struct TableCopy: Sendable {
    public var table: String
    public var count: Int
    public var json: Data
}

extension AttendanceStore {
    /// The tables a copy to the shared server takes, in an order that keeps foreign keys satisfied.
    public static let copiedTables = [
        "meta", "school_class", "student", "student_alias", "consent", "enrolment", "gate_sighting", "attendance_event",
        "outbox", "excuse", "audit_log", "unknown_face", "erased_student", "review_hold", "console_user",
        "console_user_class",
    ]

    /// Every row of `tables`, read in one transaction (a consistent snapshot while the daemon writes).
    public func copyTables(_ tables: [String] = AttendanceStore.copiedTables) throws -> [TableCopy] {
        let known = Set(Self.copiedTables)
        for t in tables where !known.contains(t) { throw StoreError.invalid("no table \(t) to copy") }
        return try writer.read { db in
            try tables.map { table in
                var objects: [[String: Any]] = []
                for row in try Row.fetchAll(db, sql: "SELECT * FROM \(table)") {
                    var o: [String: Any] = [:]
                    for (column, value) in row {
                        switch value.storage {
                        case .null: o[column] = NSNull()
                        case .int64(let i): o[column] = i
                        case .double(let d): o[column] = d
                        case .string(let s): o[column] = s
                        case .blob(let b): o[column] = b.base64EncodedString()
                        }
                    }
                    objects.append(o)
                }
                return TableCopy(
                    table: table, count: objects.count, json: try JSONSerialization.data(withJSONObject: objects))
            }
        }
    }
}
