import Attendance
import AttendanceCore
import Foundation
import Logging
import PostgresNIO
import ServiceLifecycle

/// Keeps this gate's local gallery (the sealed rows in its SQLite store) in step with the school's server: a
/// refresh at start, then one within a moment of every change (the server's trigger notifies channel
/// `attendance_gallery`; this service LISTENs), a version poll every `pollInterval` in case a notification was
/// missed, and reconnection with a doubling delay while the server cannot be reached or does not answer a refresh
/// within `refreshTimeout` (a stalled server, a lock held there). The gate keeps matching against its last copy
/// meanwhile, across restarts too.
///
/// A refresh writes the cache in one transaction and bumps the local gallery version, which the daemon's
/// `EnrolledFaces` reloads on; `onChange` lets the daemon reload at once rather than at its next poll. A student
/// gone from the server (erased there) is erased here by the gate's own rules, and the write-ahead log folded back.
public struct SchoolGallerySync: Service {
    public let store: AttendanceStore
    public let connector: PostgresConnector
    /// Called after a refresh that changed the cache (the daemon reloads its enrolled faces then).
    public var onChange: (@Sendable (SchoolGalleryChange) -> Void)?
    /// While connected: how often the version is compared anyway (a notification lost with a connection).
    public var pollInterval: Duration = .seconds(15)
    public var retryDelay: Duration = .milliseconds(500)
    public var maxRetryDelay: Duration = .seconds(30)
    /// A refresh (or the schema check before it) the server has not answered within this is given up: the connection
    /// is closed, the problem logged, and the gate keeps matching its copy until the retry succeeds.
    public var refreshTimeout: Duration = SchoolGallerySync.defaultRefreshTimeout
    public static let defaultRefreshTimeout: Duration = .seconds(30)
    let logger: Logger

    public init(
        store: AttendanceStore, connector: PostgresConnector, logger: Logger,
        onChange: (@Sendable (SchoolGalleryChange) -> Void)? = nil
    ) {
        self.store = store
        self.connector = connector
        self.logger = logger
        self.onChange = onChange
    }

    /// As `attendance serve` composes it: `faces` (the daemon's cameras' gallery) reloads at once after a change.
    public init(store: AttendanceStore, connector: PostgresConnector, reloading faces: EnrolledFaces, logger: Logger) {
        self.init(store: store, connector: connector, logger: logger) { _ in
            do { try faces.reload() } catch {
                logger.error("gallery reload failed", metadata: ["error": "\(error)"])
            }
        }
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown { await loop() }
    }

    /// One refresh on a connection of its own (the CLI after an enrolment or an erasure, so this box's copy is
    /// current before the command returns).
    @discardableResult
    public static func refreshOnce(
        store: AttendanceStore, connector: PostgresConnector, timeout: Duration = defaultRefreshTimeout
    ) async throws -> SchoolGalleryChange? {
        try await connector.withConnection { c in
            try await PostgresConnector.withDeadline(timeout, closing: c) { try await SchoolGallery.refresh(store, on: c) }
        }
    }

    func describe(_ error: any Error) -> String {
        switch error {
        case let e as StoreError: return e.description
        case let e as PostgresProblem: return e.description
        default: return connector.explain(error).description
        }
    }

    func loop() async {
        let state = RetryState(retryDelay)
        while !Task.isCancelled {
            do {
                let c = try await connector.connect()
                do {
                    try await PostgresConnector.withDeadline(refreshTimeout, closing: c) {
                        try await PostgresSchema.check(on: c)
                    }
                    try await follow(on: c) {
                        if state.recovered(retryDelay) {
                            logger.notice("the school's database is back: this gate's gallery is current again")
                        }
                    }
                } catch {
                    try? await c.close()
                    throw error
                }
                try? await c.close()
            } catch is CancellationError {
                break
            } catch {
                if Task.isCancelled { break }
                let problem = describe(error)
                if state.failed(problem) {
                    logger.warning(
                        "gallery not refreshed from the school's database: \(problem); this gate matches against its last copy, retrying (up to every \(maxRetryDelay))"
                    )
                }
                do { try await Task.sleep(for: state.nextDelay(max: maxRetryDelay)) } catch { break }
            }
        }
    }

    /// LISTENs on `c` and refreshes at once, on every notification and every `pollInterval`, until the connection
    /// fails (thrown) or the task is cancelled. `refreshed` runs after each successful refresh.
    func follow(on c: PostgresConnection, refreshed: @escaping @Sendable () -> Void) async throws {
        let failure = ErrorBox()
        try await c.listen(on: PostgresSchema.galleryChannel) { notifications in
            let (signals, wake) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
            wake.yield() // the first refresh, now that LISTEN is in place
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    while true {
                        try await Task.sleep(for: pollInterval)
                        wake.yield()
                    }
                }
                group.addTask {
                    do {
                        for await _ in signals {
                            try Task.checkCancellation()
                            try await PostgresConnector.withDeadline(
                                refreshTimeout, closing: c, timedOut: { failure.set($0) }
                            ) { try await refresh(on: c) }
                            refreshed()
                        }
                    } catch {
                        // Ends the LISTEN below too: the loop reconnects.
                        failure.set(error)
                        try? await c.close()
                        throw error
                    }
                }
                defer { group.cancelAll() }
                // A refresh that failed (or timed out) closed the connection: its reason, not the closing's.
                do { for try await _ in notifications { wake.yield() } } catch { throw failure.get() ?? error }
                throw failure.get() ?? PostgresProblem(.unreachable, "the school's database closed the connection")
            }
        }
    }

    func refresh(on c: PostgresConnection) async throws {
        guard let change = try await SchoolGallery.refresh(store, on: c) else { return }
        if change.changed {
            logger.info(
                "gallery refreshed from the school's database",
                metadata: [
                    "students_written": "\(change.studentsWritten)", "students_erased": "\(change.studentsErased)",
                    "consents_written": "\(change.consentsWritten)", "enrolments_added": "\(change.enrolmentsAdded)",
                    "enrolments_removed": "\(change.enrolmentsRemoved)",
                ])
            onChange?(change)
        }
        if let problem = change.compaction {
            logger.warning("an erasure from the school's database is committed here, but: \(problem)")
        }
    }
}

/// The first error a child task saw, for the parent to report (rather than the connection's closing it caused).
final class ErrorBox: @unchecked Sendable {
    private let lock = NSLock()
    private var error: (any Error)?
    func set(_ e: any Error) {
        lock.lock()
        if error == nil { error = e }
        lock.unlock()
    }
    func get() -> (any Error)? {
        lock.lock()
        defer { lock.unlock() }
        return error
    }
}

/// The retry delay and the last problem logged (each problem is logged once until it changes or clears).
final class RetryState: @unchecked Sendable {
    private let lock = NSLock()
    private var delay: Duration
    private var lastProblem: String?
    init(_ delay: Duration) { self.delay = delay }

    /// A refresh succeeded: resets the delay; true when a problem had been logged.
    func recovered(_ initial: Duration) -> Bool {
        lock.lock()
        defer { lock.unlock() }
        delay = initial
        let had = lastProblem != nil
        lastProblem = nil
        return had
    }

    /// True when `problem` is new (to be logged).
    func failed(_ problem: String) -> Bool {
        lock.lock()
        defer { lock.unlock() }
        let new = problem != lastProblem
        lastProblem = problem
        return new
    }

    /// The delay to wait now; doubles the next one up to `max`.
    func nextDelay(max: Duration) -> Duration {
        lock.lock()
        defer { lock.unlock() }
        let d = delay
        delay = min(delay * 2, max)
        return d
    }
}
