import Attendance
import AttendanceCore
import Foundation
import Logging
import PostgresNIO

/// `attendance db migrate --to postgresql://…`: copies a one-box school's SQLite database into an empty
/// PostgreSQL database in one transaction (the schema first, then roster, consent, sealed embeddings, events,
/// outbox, audit, the erasure register), and checks that every table holds as many rows on the server as it
/// read here before committing. The embeddings stay sealed: the server gets the bytes, never the key.
public enum SchoolCopy {
    /// How many rows of each table reached the server (in copy order).
    public struct Report: Sendable, Equatable {
        public var counts: [(table: String, rows: Int)]
        public var schemaVersionsApplied: [Int]
        public static func == (a: Report, b: Report) -> Bool {
            a.counts.map(\.table) == b.counts.map(\.table) && a.counts.map(\.rows) == b.counts.map(\.rows)
                && a.schemaVersionsApplied == b.schemaVersionsApplied
        }
        public func rows(_ table: String) -> Int? { counts.first { $0.table == table }?.rows }
    }

    struct Column {
        let source: String
        let target: String
        /// The type the JSON value is read as.
        let recordType: String
        /// The value written, from `x.<source>`.
        let expression: String
        init(_ name: String, _ type: String = "text", as target: String? = nil, expression: String? = nil) {
            source = name
            self.target = target ?? name
            recordType = type
            self.expression = expression ?? "x.\(name)"
        }
        static func bool(_ name: String) -> Column { Column(name, "bigint", expression: "(x.\(name) <> 0)") }
        static func bytes(_ name: String) -> Column { Column(name, "text", expression: "decode(x.\(name), 'base64')") }
    }

    /// Each copied table's columns on the server (SQLite's names; its 0/1 integers become booleans, its blobs bytea).
    static let tables: [(name: String, columns: [Column], identity: Bool)] = [
        ("meta", [Column("key"), Column("value")], false),
        ("school_class", [Column("code"), Column("grade_code"), Column("name")], false),
        (
            "student",
            [
                Column("code"), Column("full_name"), Column("class_code"), Column("date_of_birth"), Column("gender"),
                .bool("active"), Column("created_at"), Column("updated_at"),
            ], false
        ),
        ("student_alias", [Column("student_code"), Column("alias")], false),
        (
            "consent",
            [
                Column("id", "bigint"), Column("student_code"), Column("guardian_name"), Column("relation"),
                Column("consent_date"), Column("scope"), Column("recorded_by"), Column("recorded_at"),
                Column("revoked_at"), Column("revoked_by"),
            ], true
        ),
        (
            "enrolment",
            [
                Column("id", "bigint"), Column("student_code"), .bytes("sealed_embedding"), Column("quality"),
                Column("source"), Column("created_at"), Column("created_by"),
            ], true
        ),
        (
            "gate_sighting",
            [
                Column("id", "bigint"), Column("student_code"), .bytes("sealed_embedding"),
                Column("distance", "double precision"), Column("margin", "double precision"), Column("camera"),
                Column("seen_at"),
            ], true
        ),
        (
            "attendance_event",
            [
                Column("id", as: "record_id"), Column("student_code"), Column("school_day"), Column("session"),
                Column("kind"), Column("status"), Column("occurred_at"), Column("camera"),
                Column("distance", "double precision"), Column("version", "integer"), .bool("cancelled"),
                Column("gate", expression: "'migration'"),
            ], false
        ),
        (
            "outbox",
            [
                Column("record_id"), Column("version", "integer"), Column("event_kind"), Column("payload"),
                Column("state"), Column("attempts", "integer"), Column("next_attempt_at"), Column("last_error"),
                Column("created_at"), Column("delivered_at"),
            ], false
        ),
        (
            "excuse",
            [Column("student_code"), Column("school_day"), Column("reason"), Column("recorded_by"), Column("recorded_at")],
            false
        ),
        (
            "audit_log",
            [Column("id", "bigint"), Column("at"), Column("os_user"), Column("action"), Column("subject"), Column("detail")],
            true
        ),
        ("unknown_face", [Column("id", "bigint"), Column("seen_at"), Column("camera")], true),
        ("erased_student", [Column("pseudonym"), Column("erased_at")], false),
        (
            "review_hold",
            [
                Column("id", "bigint"), Column("student_code"), Column("school_day"), Column("session"), Column("kind"),
                Column("status"), Column("occurred_at"), Column("camera"), Column("distance", "double precision"),
                Column("liveness", "double precision"), Column("reason"), Column("state"), Column("decided_by"),
                Column("decided_at"),
            ], true
        ),
        (
            "console_user",
            [
                Column("id", "bigint"), Column("name"), Column("role"), Column("password_hash"), .bool("disabled"),
                Column("created_at"),
            ], true
        ),
        ("console_user_class", [Column("user_id", "bigint"), Column("class_code")], false),
    ]

    static let logger: Logger = {
        var l = Logger(label: "attendance.postgres.copy")
        l.logLevel = .warning
        return l
    }()

    /// Copies `store` into the (empty) database `connector` names, as its owner role, and grants `daemonRole`
    /// its rights. With `schemaOnly`, creates or upgrades the schema and copies nothing.
    /// Nothing is changed on the server unless every count matches.
    public static func run(
        from store: AttendanceStore, to connector: PostgresConnector, daemonRole: String? = "attendance_gate",
        schemaOnly: Bool = false
    ) async throws -> Report {
        try await connector.withConnection { c in
            let applied = try await PostgresSchema.migrate(on: c, daemonRole: daemonRole)
            if schemaOnly { return Report(counts: [], schemaVersionsApplied: applied) }
            let copies = try store.copyTables(tables.map(\.name))
            let counts = try await c.withTransaction(logger: logger) { c -> [(table: String, rows: Int)] in
                for t in ["student", "attendance_event", "enrolment", "audit_log"] {
                    let n = try await count(t, on: c)
                    if n > 0 {
                        throw PostgresProblem(
                            .refused,
                            "the school's database \(connector.url.database) already holds \(n) row(s) in \(t): "
                                + "migrate into an empty database (nothing was copied)")
                    }
                }
                // The schema's own meta rows (none today) give way to the box's.
                try await c.query("DELETE FROM meta", logger: logger)
                var counts: [(table: String, rows: Int)] = []
                for (spec, copy) in zip(tables, copies) {
                    try await insert(copy, spec: spec, on: c)
                    let n = try await count(spec.name, on: c)
                    guard n == copy.count else {
                        throw PostgresProblem(
                            .query, "\(spec.name): \(copy.count) row(s) read here, \(n) on the server: nothing was copied")
                    }
                    counts.append((spec.name, n))
                }
                let detail = counts.map { "\($0.table) \($0.rows)" }.joined(separator: ", ")
                try await c.query(
                    """
                    INSERT INTO audit_log(at, os_user, action, subject, detail)
                    VALUES (\(Timestamp.string(Date())), \(AttendanceStore.actor), 'database.migrate', NULL, \(detail))
                    """, logger: logger)
                return counts
            }
            // Copied events are on the server: this box's journal need not send them again.
            let events = copies.first { $0.table == "attendance_event" }
            if let events, let rows = try JSONSerialization.jsonObject(with: events.json) as? [[String: Any]] {
                try store.events.markShared(
                    rows.compactMap { r in
                        guard let id = r["id"] as? String, let v = (r["version"] as? NSNumber)?.intValue else { return nil }
                        return JournalKey(recordID: id, version: v)
                    })
            }
            try store.auditLog.append(
                action: "database.migrate", subject: nil,
                detail: "copied to \(connector.url): " + counts.map { "\($0.table) \($0.rows)" }.joined(separator: ", "))
            return Report(counts: counts, schemaVersionsApplied: applied)
        }
    }

    static func count(_ table: String, on c: PostgresConnection) async throws -> Int {
        try await c.query(PostgresQuery(unsafeSQL: "SELECT count(*) FROM \(table)"), logger: logger).collect().first?
            .decode(Int.self) ?? 0
    }

    static func insert(_ copy: TableCopy, spec: (name: String, columns: [Column], identity: Bool), on c: PostgresConnection)
        async throws
    {
        guard copy.count > 0 else { return }
        let sourceColumns = spec.columns.filter { !$0.expression.hasPrefix("'") }
        let record = sourceColumns.map { "\($0.source) \($0.recordType)" }.joined(separator: ", ")
        let targets = spec.columns.map(\.target).joined(separator: ", ")
        let values = spec.columns.map(\.expression).joined(separator: ", ")
        var query = PostgresQuery(
            unsafeSQL: """
                INSERT INTO \(spec.name) (\(targets))
                SELECT \(values) FROM jsonb_to_recordset($1::jsonb) AS x(\(record))
                """)
        query.binds.append(String(decoding: copy.json, as: UTF8.self))
        try await c.query(query, logger: logger)
        if spec.identity {
            try await c.query(
                PostgresQuery(
                    unsafeSQL:
                        "SELECT setval(pg_get_serial_sequence('\(spec.name)', 'id'), (SELECT max(id) FROM \(spec.name)))"),
                logger: logger)
        }
    }
}
