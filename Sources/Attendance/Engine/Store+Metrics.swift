import GRDB

extension AttendanceStore {
    /// Records not yet delivered to the sector database (pending, not parked): the outbox depth metric.
    public func outboxDepth() throws -> Int {
        try dbPool.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM outbox WHERE state = 'pending'") ?? 0 }
    }
}
