import AttendanceCore
import Foundation
import Logging
import PostgresNIO
import SectorConnector
import ServiceLifecycle

/// The school's outbox on the PostgreSQL server as the sector sender's queue, over one connection (the one
/// that holds the sender's advisory lock: when it dies, so do the lock and this queue).
public struct PostgresOutbox: OutboxQueue {
    let connection: PostgresConnection
    let maximumWait: TimeInterval
    let logger: Logger

    public init(connection: PostgresConnection, maximumWait: TimeInterval = BackoffPolicy().maximum, logger: Logger) {
        self.connection = connection
        self.maximumWait = maximumWait
        var l = logger
        l.logLevel = max(l.logLevel, .warning)
        self.logger = l
    }

    public func pending(after: RecordKey?, dueBy: Date?, limit: Int) async throws -> [OutboxItem] {
        let afterID = after?.recordID ?? ""
        let afterVersion = after?.version ?? -1
        let due = dueBy.map(Timestamp.string)
        let far = dueBy.map { Timestamp.string($0.addingTimeInterval(maximumWait)) }
        let rows = try await connection.query(
            """
            SELECT record_id, version, payload, attempts FROM outbox
            WHERE state = 'pending'
              AND (record_id > \(afterID) OR (record_id = \(afterID) AND version > \(afterVersion)))
              AND (\(due)::text IS NULL OR next_attempt_at IS NULL OR next_attempt_at <= \(due) OR next_attempt_at > \(far))
            ORDER BY record_id, version LIMIT \(max(0, limit))
            """, logger: logger)
        var items: [OutboxItem] = []
        for try await (id, version, payload, attempts) in rows.decode((String, Int, String, Int).self) {
            items.append(
                OutboxItem(key: RecordKey(recordID: id, version: version), payload: Data(payload.utf8), attempts: attempts))
        }
        return items
    }

    public func markDelivered(_ keys: [RecordKey], at: Date) async throws {
        guard !keys.isEmpty else { return }
        try await connection.query(
            """
            UPDATE outbox o SET state = 'delivered', delivered_at = \(Timestamp.string(at)), last_error = NULL
            FROM unnest(\(keys.map(\.recordID))::text[], \(keys.map(\.version))::integer[]) AS k(record_id, version)
            WHERE o.record_id = k.record_id AND o.version = k.version AND o.state <> 'delivered'
            """, logger: logger)
    }

    public func reschedule(_ retries: [OutboxRetry]) async throws {
        for r in retries {
            try await connection.query(
                """
                UPDATE outbox SET attempts = \(r.attempts), next_attempt_at = \(Timestamp.string(r.nextAttemptAt)),
                       last_error = \(String(r.error.prefix(500)))
                WHERE record_id = \(r.key.recordID) AND version = \(r.key.version) AND state = 'pending'
                """, logger: logger)
        }
    }

    public func park(_ parkings: [OutboxParking]) async throws {
        for p in parkings {
            try await connection.query(
                """
                UPDATE outbox SET state = 'parked', last_error = \(String(p.reason.prefix(500)))
                WHERE record_id = \(p.key.recordID) AND version = \(p.key.version) AND state = 'pending'
                """, logger: logger)
        }
    }

    public func nextAttemptDate() async throws -> Date? {
        let rows = try await connection.query(
            """
            SELECT count(*)::bigint, count(*) FILTER (WHERE next_attempt_at IS NULL)::bigint, min(next_attempt_at)
            FROM outbox WHERE state = 'pending'
            """, logger: logger)
        for try await (pending, unscheduled, earliest) in rows.decode((Int, Int, String?).self) {
            guard pending > 0 else { return nil }
            if unscheduled > 0 { return Date.distantPast }
            guard let next = earliest.flatMap(Timestamp.date) else { return Date.distantPast }
            return min(next, Date().addingTimeInterval(maximumWait))
        }
        return nil
    }
}

/// Exactly one sender to the sector database for the whole school, whichever boxes run: each box runs this
/// service; the one whose connection holds the PostgreSQL advisory lock drains the school's outbox (on that same
/// connection), the others wait and try the lock again. When the holder dies, its connection closes, the server
/// frees the lock, and a waiting box takes over within `standbyInterval`.
public struct SchoolSectorSender: Service {
    /// The advisory lock's key ("attendance sector sender").
    public static let lockKey: Int64 = 7_100_170_003
    public let connector: PostgresConnector
    public let transport: any BatchTransport
    public var options = SectorSender<PostgresOutbox>.Options()
    public var standbyInterval: Duration = .seconds(2)
    public var pollInterval: Duration = .seconds(1)
    let logger: Logger

    public init(connector: PostgresConnector, transport: any BatchTransport, logger: Logger) {
        self.connector = connector
        self.transport = transport
        self.logger = logger
    }

    /// Called once the service has stopped (the HTTP client's shutdown).
    public var onStop: (@Sendable () async -> Void)?

    public func run() async throws {
        await cancelWhenGracefulShutdown { await loop() }
        await onStop?()
    }

    func loop() async {
        var lastProblem: String?
        while !Task.isCancelled {
            do {
                let c = try await connector.connect()
                do {
                    try await PostgresSchema.check(on: c)
                    let held =
                        try await c.query("SELECT pg_try_advisory_lock(\(Self.lockKey))", logger: logger)
                        .collect().first?.decode(Bool.self) ?? false
                    if held {
                        logger.notice("this box sends the school's outbox to the sector database")
                        lastProblem = nil
                        try await drainWhileHeld(on: c)
                    }
                } catch {
                    try? await c.close()
                    throw error
                }
                try? await c.close()
                try await Task.sleep(for: standbyInterval)
            } catch is CancellationError {
                break
            } catch {
                if Task.isCancelled { break }
                let problem = connector.explain(error).description
                if problem != lastProblem {
                    logger.warning("school outbox not sent: \(problem); retrying")
                    lastProblem = problem
                }
                do { try await Task.sleep(for: standbyInterval) } catch { break }
            }
        }
    }

    func drainWhileHeld(on c: PostgresConnection) async throws {
        let sender = SectorSender(queue: PostgresOutbox(connection: c, logger: logger), transport: transport, options: options)
        while !Task.isCancelled && !c.isClosed {
            _ = try await sender.drain()
            try await Task.sleep(for: pollInterval)
        }
    }
}
