import AttendanceTesting
import Foundation
import SectorConnector
import XCTest

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

/// A fresh temporary folder per test.
func makeTemporaryDirectory() throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("sector-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

/// An in-memory outbox with the semantics the SQLite one must have.
actor MemoryOutbox: OutboxQueue {
    enum State: String { case pending, delivered, parked }
    struct Row {
        var payload: Data
        var state: State = .pending
        var attempts = 0
        var nextAttemptAt = Date.distantPast
        var lastError: String?
    }
    private(set) var rows: [RecordKey: Row] = [:]
    private(set) var deliveredCalls: [RecordKey: Int] = [:]

    func add(_ record: SectorRecord) throws {
        rows[record.key] = Row(payload: try record.jsonData())
    }
    func addRaw(_ key: RecordKey, payload: Data) { rows[key] = Row(payload: payload) }

    func pending(after: RecordKey?, dueBy: Date?, limit: Int) -> [OutboxItem] {
        rows.filter { key, row in
            row.state == .pending && (after.map { key > $0 } ?? true) && (dueBy.map { row.nextAttemptAt <= $0 } ?? true)
        }
        .sorted { $0.key < $1.key }
        .prefix(limit)
        .map { OutboxItem(key: $0.key, payload: $0.value.payload, attempts: $0.value.attempts) }
    }
    func markDelivered(_ keys: [RecordKey], at: Date) {
        for k in keys {
            rows[k]?.state = .delivered
            deliveredCalls[k, default: 0] += 1
        }
    }
    func reschedule(_ retries: [OutboxRetry]) {
        for r in retries {
            rows[r.key]?.attempts = r.attempts
            rows[r.key]?.nextAttemptAt = r.nextAttemptAt
            rows[r.key]?.lastError = r.error
        }
    }
    func park(_ parkings: [OutboxParking]) {
        for p in parkings {
            rows[p.key]?.state = .parked
            rows[p.key]?.lastError = p.reason
        }
    }
    func nextAttemptDate() -> Date? {
        rows.values.filter { $0.state == .pending }.map(\.nextAttemptAt).min()
    }
    func count(_ state: State) -> Int { rows.values.filter { $0.state == state }.count }
    func keys(_ state: State) -> Set<RecordKey> { Set(rows.filter { $0.value.state == state }.keys) }
    func row(_ key: RecordKey) -> Row? { rows[key] }
}

/// Test records: `n` students checking in, with an UPDATE (version 2) for every fifth.
func sampleRecords(_ n: Int, day: String = "2026-09-07") -> [SectorRecord] {
    var out: [SectorRecord] = []
    for i in 0..<n {
        let id = String(format: "evt-%05d-%@", i, day)
        let base = SectorRecord(
            recordID: id, eventKind: .new, version: 1, updatedAt: "2026-09-07T00:\(String(format: "%02d", i % 60)):00Z",
            schoolCode: "79000001", gradeCode: "6", classCode: "6A\(i % 3)", studentCode: String(format: "HS%06d", i),
            schoolDay: day, session: "morning", kind: "check_in", status: i % 7 == 0 ? "late" : "present",
            occurredAt: "2026-09-07T00:\(String(format: "%02d", i % 60)):00Z", camera: "gate-1")
        out.append(base)
        if i % 5 == 0 {
            var update = base
            update.eventKind = .update
            update.version = 2
            update.status = "excused"
            update.updatedAt = "2026-09-07T05:00:00Z"
            out.append(update)
        }
    }
    return out
}

/// Backoff small enough for tests (milliseconds), so retries are due again almost at once.
let testBackoff = BackoffPolicy(initial: 0.001, multiplier: 2, maximum: 0.01)
