import AttendanceCore
import Foundation
import GRDB
import Logging
import SectorConnector

/// The store's `outbox` table as the sender's queue. Each method is one SQLite transaction, durable
/// when it returns (WAL), so a sender killed at any point loses nothing: a record it had sent but not
/// yet marked is sent again, and the gateway answers `duplicate`.
public struct SQLiteOutbox: OutboxQueue {
    let writer: any DatabaseWriter
    /// The longest wait a retry can have been given (the backoff's maximum). A stored next attempt further
    /// away than this is the mark of a clock that jumped back: that record is due now, not in three years.
    public let maximumWait: TimeInterval

    public init(store: AttendanceStore, maximumWait: TimeInterval = BackoffPolicy().maximum) {
        self.writer = store.writer
        self.maximumWait = maximumWait
    }

    public func pending(after: RecordKey?, dueBy: Date?, limit: Int) async throws -> [OutboxItem] {
        try await writer.read { db in
            var sql = "SELECT record_id, version, payload, attempts FROM outbox WHERE state = 'pending'"
            var args: StatementArguments = []
            if let after {
                sql += " AND (record_id > ? OR (record_id = ? AND version > ?))"
                args += [after.recordID, after.recordID, after.version]
            }
            if let dueBy {
                sql += " AND (next_attempt_at IS NULL OR next_attempt_at <= ? OR next_attempt_at > ?)"
                args += [Timestamp.string(dueBy), Timestamp.string(dueBy.addingTimeInterval(maximumWait))]
            }
            sql += " ORDER BY record_id, version LIMIT ?"
            args += [max(0, limit)]
            return try Row.fetchAll(db, sql: sql, arguments: args).map { row in
                OutboxItem(
                    key: RecordKey(recordID: row["record_id"], version: row["version"]),
                    payload: Data((row["payload"] as String).utf8), attempts: row["attempts"])
            }
        }
    }

    public func markDelivered(_ keys: [RecordKey], at: Date) async throws {
        let when = Timestamp.string(at)
        try await writer.write { db in
            for k in keys {
                try db.execute(
                    sql: """
                        UPDATE outbox SET state = 'delivered', delivered_at = ?, last_error = NULL
                        WHERE record_id = ? AND version = ? AND state <> 'delivered'
                        """, arguments: [when, k.recordID, k.version])
            }
        }
    }

    public func reschedule(_ retries: [OutboxRetry]) async throws {
        try await writer.write { db in
            for r in retries {
                try db.execute(
                    sql: """
                        UPDATE outbox SET attempts = ?, next_attempt_at = ?, last_error = ?
                        WHERE record_id = ? AND version = ? AND state = 'pending'
                        """,
                    arguments: [
                        r.attempts, Timestamp.string(r.nextAttemptAt), String(r.error.prefix(500)), r.key.recordID, r.key.version,
                    ])
            }
        }
    }

    public func park(_ parkings: [OutboxParking]) async throws {
        try await writer.write { db in
            for p in parkings {
                try db.execute(
                    sql: """
                        UPDATE outbox SET state = 'parked', last_error = ?
                        WHERE record_id = ? AND version = ? AND state = 'pending'
                        """, arguments: [String(p.reason.prefix(500)), p.key.recordID, p.key.version])
            }
        }
    }

    public func nextAttemptDate() async throws -> Date? {
        try await writer.read { db in
            let row = try Row.fetchOne(
                db,
                sql: """
                    SELECT COUNT(*) AS pending_count, SUM(next_attempt_at IS NULL) AS unscheduled_count,
                           MIN(next_attempt_at) AS earliest_attempt_at
                    FROM outbox WHERE state = 'pending'
                    """)
            guard let row, (row["pending_count"] as Int) > 0 else { return nil }
            if (row["unscheduled_count"] as Int? ?? 0) > 0 { return Date.distantPast }
            guard let next = (row["earliest_attempt_at"] as String?).flatMap(Timestamp.date) else { return Date.distantPast }
            // Never further than the longest backoff, whatever the clock did since it was stored.
            return min(next, Date().addingTimeInterval(maximumWait))
        }
    }

    // MARK: for `attendance sync status` and `--retry-parked`

    /// The outbox at a glance.
    public struct Status: Sendable, Equatable, Codable {
        public var pending = 0
        public var parked = 0
        public var delivered = 0
        /// When the oldest pending record was queued.
        public var oldestPending: String?
        public var nextAttempt: String?
        public var lastDelivered: String?
        /// The most recent errors of pending and parked records (newest first).
        public var problems: [Problem] = []

        public struct Problem: Sendable, Equatable, Codable {
            public var recordID: String
            public var version: Int
            public var state: String
            public var attempts: Int
            public var error: String
        }
    }

    public func status(problemLimit: Int = 10) throws -> Status {
        try writer.read { db in
            var s = Status()
            for row in try Row.fetchAll(db, sql: "SELECT state, COUNT(*) AS state_count FROM outbox GROUP BY state") {
                switch row["state"] as String {
                case "pending": s.pending = row["state_count"]
                case "parked": s.parked = row["state_count"]
                case "delivered": s.delivered = row["state_count"]
                default: break
                }
            }
            s.oldestPending = try String.fetchOne(db, sql: "SELECT MIN(created_at) FROM outbox WHERE state = 'pending'")
            s.nextAttempt = try String.fetchOne(
                db, sql: "SELECT MIN(COALESCE(next_attempt_at, created_at)) FROM outbox WHERE state = 'pending'")
            s.lastDelivered = try String.fetchOne(db, sql: "SELECT MAX(delivered_at) FROM outbox WHERE state = 'delivered'")
            s.problems = try Row.fetchAll(
                db,
                sql: """
                    SELECT record_id, version, state, attempts, last_error FROM outbox
                    WHERE state IN ('pending', 'parked') AND last_error IS NOT NULL
                    ORDER BY COALESCE(next_attempt_at, created_at) DESC LIMIT ?
                    """, arguments: [problemLimit]
            ).map {
                Status.Problem(
                    recordID: $0["record_id"], version: $0["version"], state: $0["state"], attempts: $0["attempts"],
                    error: $0["last_error"])
            }
            return s
        }
    }

    /// Puts parked records back in the queue (after fixing the token, say). Audited. Returns how many.
    @discardableResult
    public func requeueParked() throws -> Int {
        try writer.write { db in
            try db.execute(
                sql: """
                    UPDATE outbox SET state = 'pending', attempts = 0, next_attempt_at = NULL
                    WHERE state = 'parked'
                    """)
            let n = db.changesCount
            if n > 0 {
                try AttendanceStore.audit(
                    db, action: "outbox.requeue", subject: nil, detail: "\(n) parked record(s) queued again")
            }
            return n
        }
    }
}

/// Builds the HTTP connector from the config: the endpoint, the token file, timeouts and batch size.
public enum SectorConnection {
    /// The client and a sender over the store's outbox. Call `client.shutdown()` when done.
    public static func make(
        config: AttendanceConfig, store: AttendanceStore, backoff: BackoffPolicy = BackoffPolicy(),
        logger: Logger = Logger(label: "sector")
    ) throws -> (SectorSender<SQLiteOutbox>, SectorClient) {
        guard config.database.backend == .sqlite else {
            throw ConnectorError.configuration(
                "database.backend = \"postgresql\": the school's outbox is on its shared server and is sent by the one box "
                    + "holding the sender's lock (the gate daemon); this box's own journal is never sent to the sector directly")
        }
        let c = config.connector
        let client = try Self.client(config: c, logger: logger)
        let sender = SectorSender(
            queue: SQLiteOutbox(store: store, maximumWait: backoff.maximum), transport: client,
            options: .init(batchSize: c.batchSize, backoff: backoff), logger: logger)
        return (sender, client)
    }

    /// The HTTPS client for `[connector]` (endpoint and token file checked). Call `shutdown()` when done.
    public static func client(config c: AttendanceConfig.Connector, logger: Logger = Logger(label: "sector")) throws
        -> SectorClient
    {
        guard !c.endpoint.isEmpty else {
            throw ConnectorError.configuration("connector.endpoint is not set in the config (exports still work without it)")
        }
        guard let tokenFile = c.tokenFile else {
            throw ConnectorError.configuration(
                "connector.token_file is not set: name a file (mode 0600) holding the gateway's token")
        }
        return try SectorClient(
            endpoint: c.endpoint, token: try BearerToken.load(fromFile: tokenFile), timeoutSeconds: c.timeoutSeconds,
            allowInsecureHTTP: c.allowInsecureHTTP, logger: logger)
    }
}
