import Attendance
import AttendanceCore
import Foundation
import Logging
import NIOCore
import PostgresNIO
import ServiceLifecycle

/// Moves this gate's decisions from its SQLite journal (the store, written first, durable as ever) to the
/// school's PostgreSQL server, and marks them sent in the journal only after the server committed them.
///
/// Idempotent by construction: an event's record id is `EventLedger.recordID` (school, student, day, session,
/// kind), the server keeps one row per record id (`INSERT … ON CONFLICT (record_id)`), and a newer version (a
/// correction made on this box) replaces an older one, never the reverse. So a batch sent twice (the commit
/// reached the server but the answer did not reach us), or the same student seen by two gates, is one row: the
/// first gate's. The event's sector outbox row is added in the same statement, only for the row that was
/// written, so the school's outbox matches its events.
///
/// Server down (or refusing): the batch stays in the journal, and the sender retries with a doubling delay
/// (`retryDelay` up to `maxRetryDelay`), logging each change of state once; nothing is lost and nothing waits
/// on the server at the gate.
public struct JournalSender: Service {
    public let store: AttendanceStore
    public let connector: PostgresConnector
    /// This box, as the server's `attendance_event.gate` names it.
    public let gate: String
    public var batchSize = 500
    /// How often an idle sender looks at the journal (the time a decision waits at most, network up).
    public var pollInterval: Duration = .milliseconds(100)
    public var retryDelay: Duration = .milliseconds(250)
    public var maxRetryDelay: Duration = .seconds(30)
    /// A batch the server has not answered within this is given up (the connection closed, the batch retried):
    /// a server that vanished without closing the TCP connection must not stall the journal.
    public var statementTimeout: Duration = .seconds(30)
    let logger: Logger

    public init(store: AttendanceStore, connector: PostgresConnector, gate: String, logger: Logger) {
        self.store = store
        self.connector = connector
        self.gate = gate
        self.logger = logger
    }

    /// How long a stopping daemon keeps trying to send what is left (the rest waits for the next start).
    public var finalDrainTimeout: Duration = .seconds(5)

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            await loop()
        }
        // Stopping (SIGTERM, a replay's end): one last attempt, not cancelled with the service, to leave the
        // journal empty. Whatever the server does not take now stays in the journal for the next start.
        await Task { await finalDrain() }.value
    }

    func finalDrain() async {
        guard (try? store.events.unsharedCount()) ?? 0 > 0 || (try? store.reviews.unsharedCount()) ?? 0 > 0 else { return }
        do {
            let c = try await connector.connect()
            do {
                try await PostgresConnector.withDeadline(finalDrainTimeout, closing: c) {
                    while try await sendBatch(on: c) > 0 {}
                }
            } catch {
                try? await c.close()
                throw error
            }
            try? await c.close()
        } catch {
            let waiting = (try? store.events.unsharedCount()) ?? -1
            logger.warning(
                "stopping with \(waiting) event(s) in this gate's journal (\(connector.explain(error))): sent at the next start")
        }
    }

    func loop() async {
        var connection: PostgresConnection?
        var delay = retryDelay
        var lastProblem: String?
        while !Task.isCancelled {
            do {
                if connection == nil {
                    let c = try await connector.connect()
                    do {
                        try await PostgresSchema.check(on: c)
                    } catch {
                        try? await c.close()
                        throw error
                    }
                    connection = c
                    if lastProblem != nil {
                        logger.notice("the school's database is back: sending this gate's journal")
                        lastProblem = nil
                    }
                }
                guard let c = connection, !c.isClosed else {
                    // The server closed it (a restart, a fast shutdown): open a new one.
                    connection = nil
                    continue
                }
                let sent = try await PostgresConnector.withDeadline(statementTimeout, closing: c) { try await sendBatch(on: c) }
                delay = retryDelay
                if sent < batchSize { try await Task.sleep(for: pollInterval) }
            } catch is CancellationError {
                break
            } catch {
                if Task.isCancelled { break }
                let problem = connector.explain(error)
                if problem.description != lastProblem {
                    let waiting = (try? store.events.unsharedCount()) ?? -1
                    logger.warning(
                        """
                        journal not sent: \(problem.description); \(waiting) event(s) wait in this gate's journal, \
                        retrying (up to every \(maxRetryDelay))
                        """)
                    lastProblem = problem.description
                }
                if let c = connection { try? await c.close() }
                connection = nil
                do { try await Task.sleep(for: delay) } catch { break }
                delay = min(delay * 2, maxRetryDelay)
            }
        }
        if let c = connection { try? await c.close() }
    }

    /// One batch: read from the journal, write to the server in one transaction, mark the committed versions in
    /// the journal; then the gate's held check-ins the server does not have yet (the review queue is the school's).
    /// Returns how many journal events and holds it covered.
    @discardableResult
    public func sendBatch(on c: PostgresConnection) async throws -> Int {
        let batch = try store.events.unshared(limit: batchSize)
        if !batch.isEmpty {
            try await Self.write(batch, gate: gate, on: c, logger: logger)
            try store.events.markShared(batch.map(\.key))
        }
        let holds = try store.reviews.unshared(limit: batchSize)
        if !holds.isEmpty {
            try await Self.write(holds, on: c, logger: logger)
            try store.reviews.markShared(holds.map(\.id))
        }
        return batch.count + holds.count
    }

    /// A held check-in as the server's `review_hold` takes it.
    struct HoldRow: Encodable {
        var studentCode: String, schoolDay: String, session: String, kind: String, status: String
        var occurredAt: String, camera: String, distance: Double, liveness: Double?, reason: String

        enum CodingKeys: String, CodingKey {
            case studentCode = "student_code", schoolDay = "school_day", session, kind, status
            case occurredAt = "occurred_at", camera, distance, liveness, reason
        }

        init(_ h: HeldRecord) {
            let e = h.event
            (studentCode, schoolDay, session, kind, status) = (
                e.studentCode, e.schoolDay.description, e.session, e.kind.rawValue, e.status.rawValue
            )
            (occurredAt, camera, distance) = (Timestamp.string(e.occurredAt), e.camera, Double(e.distance))
            (liveness, reason) = (h.liveness.map(Double.init), h.reason.rawValue)
        }
    }

    /// Writes held check-ins to the server in one statement: one per student, day, session and kind, whichever gate
    /// held it first (the table's UNIQUE key), pending for a teacher on any box.
    static func write(_ holds: [HeldRecord], on c: PostgresConnection, logger: Logger) async throws {
        let json = String(decoding: try JSONEncoder().encode(holds.map(HoldRow.init)), as: UTF8.self)
        var quiet = logger
        quiet.logLevel = .warning
        try await c.query(
            """
            INSERT INTO review_hold(student_code, school_day, session, kind, status, occurred_at, camera, distance,
                                    liveness, reason)
            SELECT student_code, school_day, session, kind, status, occurred_at, camera, distance, liveness, reason
            FROM jsonb_to_recordset(\(json)::jsonb) AS t(
                student_code text, school_day text, session text, kind text, status text, occurred_at text, camera text,
                distance double precision, liveness double precision, reason text)
            ORDER BY student_code, school_day, session, kind
            ON CONFLICT (student_code, school_day, session, kind) DO NOTHING
            """, logger: quiet)
    }

    /// Writes journal records to the server in one statement (one transaction): events first, then the outbox
    /// rows of the events this statement wrote.
    static func write(_ batch: [JournalRecord], gate: String, on c: PostgresConnection, logger: Logger) async throws {
        let json = String(decoding: try JSONEncoder().encode(batch), as: UTF8.self)
        var quiet = logger
        quiet.logLevel = .warning
        try await c.query(
            """
            WITH incoming AS (
                SELECT * FROM jsonb_to_recordset(\(json)::jsonb) AS t(
                    record_id text, student_code text, school_day text, session text, kind text, status text,
                    occurred_at text, camera text, distance double precision, version integer, cancelled boolean,
                    outbox_kind text, payload text, queued_at text)
            ), written AS (
                INSERT INTO attendance_event AS e (record_id, student_code, school_day, session, kind, status,
                                                   occurred_at, camera, distance, version, cancelled, gate)
                SELECT record_id, student_code, school_day, session, kind, status, occurred_at, camera, distance,
                       version, cancelled, \(gate) FROM incoming ORDER BY record_id
                ON CONFLICT (record_id) DO UPDATE
                    SET status = EXCLUDED.status, occurred_at = EXCLUDED.occurred_at, camera = EXCLUDED.camera,
                        distance = EXCLUDED.distance, version = EXCLUDED.version, cancelled = EXCLUDED.cancelled,
                        gate = EXCLUDED.gate, received_at = clock_timestamp()
                    WHERE e.version < EXCLUDED.version
                RETURNING record_id, version
            )
            INSERT INTO outbox (record_id, version, event_kind, payload, state, attempts, created_at)
            SELECT i.record_id, i.version, i.outbox_kind, i.payload, 'pending', 0, i.queued_at
            FROM incoming i JOIN written w ON w.record_id = i.record_id AND w.version = i.version
            WHERE i.payload IS NOT NULL
            ORDER BY i.record_id
            ON CONFLICT (record_id, version) DO NOTHING
            """, logger: quiet)
    }
}
