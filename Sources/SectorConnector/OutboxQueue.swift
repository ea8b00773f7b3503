import Foundation

/// One record waiting in the outbox: its key, the exact JSON stored with it, and how often it was tried.
///
/// The payload is sent byte for byte as stored, so every retry of a (record_id, version) is identical.
public struct OutboxItem: Sendable, Equatable {
    public var key: RecordKey
    /// A `SectorRecord` as canonical JSON.
    public var payload: Data
    /// Failed attempts so far.
    public var attempts: Int

    public init(key: RecordKey, payload: Data, attempts: Int) {
        self.key = key; self.payload = payload; self.attempts = attempts
    }
}

/// A record to try again later.
public struct OutboxRetry: Sendable, Equatable {
    public var key: RecordKey
    /// The attempt count after this failure.
    public var attempts: Int
    public var nextAttemptAt: Date
    public var error: String
    public init(key: RecordKey, attempts: Int, nextAttemptAt: Date, error: String) {
        self.key = key; self.attempts = attempts; self.nextAttemptAt = nextAttemptAt; self.error = error
    }
}

/// A record the gateway refused for good: it leaves the queue with its reason until someone requeues it.
public struct OutboxParking: Sendable, Equatable {
    public var key: RecordKey
    public var reason: String
    public init(key: RecordKey, reason: String) { self.key = key; self.reason = reason }
}

/// Where the sender takes records from and reports back to. The SQLite outbox in the Attendance module
/// implements it; tests use an in-memory one. Every method must be durable when it returns: the sender may
/// be killed at any moment, and a record is only ever lost if the queue forgets it.
public protocol OutboxQueue: Sendable {
    /// Pending records ordered by key, with a key above `after` (nil: from the start), due by `dueBy`
    /// (`next_attempt_at <= dueBy`; nil: whatever their schedule), at most `limit`.
    func pending(after: RecordKey?, dueBy: Date?, limit: Int) async throws -> [OutboxItem]
    /// The sector holds these versions (or newer): never send them again.
    func markDelivered(_ keys: [RecordKey], at: Date) async throws
    /// Try these again later.
    func reschedule(_ retries: [OutboxRetry]) async throws
    /// Stop trying these; keep the reason for the admin.
    func park(_ parkings: [OutboxParking]) async throws
    /// The earliest `next_attempt_at` among pending records; nil when nothing is pending.
    func nextAttemptDate() async throws -> Date?
}
