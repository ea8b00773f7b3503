import Foundation
import Logging

/// What one pass over the outbox did.
public struct DrainReport: Sendable, Equatable, CustomStringConvertible {
    public var delivered = 0
    public var parked = 0
    public var rescheduled = 0
    public var batches = 0
    /// Set when the pass stopped early because the gateway could not be reached or answered 408/429/5xx:
    /// the records not yet tried stay due, and the next pass (after a backoff) takes them.
    public var interruption: String?

    public init() {}

    public var description: String {
        var s = "delivered \(delivered), parked \(parked), rescheduled \(rescheduled) in \(batches) batch(es)"
        if let interruption { s += "; stopped: \(interruption)" }
        return s
    }
}

/// Drains an ``OutboxQueue`` through a ``BatchTransport``.
///
/// Delivery is at least once, and exactly once at the gateway because it is idempotent by
/// (record_id, version): a record leaves the queue only after the gateway answered for it
/// (accepted, duplicate or stale), so a crash, a kill or a lost answer means it is sent again, never lost.
public struct SectorSender<Queue: OutboxQueue>: Sendable {
    public struct Options: Sendable {
        public var batchSize: Int
        public var backoff: BackoffPolicy
        /// How often the loop looks for new records when nothing is scheduled sooner.
        public var pollInterval: Double
        public init(batchSize: Int = 50, backoff: BackoffPolicy = BackoffPolicy(), pollInterval: Double = 5) {
            precondition(batchSize >= 1 && batchSize <= WireContract.maxBatchSize, "batch size out of range")
            self.batchSize = batchSize; self.backoff = backoff; self.pollInterval = pollInterval
        }
    }

    public let queue: Queue
    public let transport: any BatchTransport
    public let options: Options
    let logger: Logger
    let now: @Sendable () -> Date

    public init(
        queue: Queue, transport: any BatchTransport, options: Options = Options(),
        logger: Logger = Logger(label: "sector.sender"), now: @escaping @Sendable () -> Date = { Date() }
    ) {
        self.queue = queue; self.transport = transport; self.options = options; self.logger = logger; self.now = now
    }

    /// One pass: every pending record that is due (or every pending record, with `ignoringSchedule`, which is
    /// what `attendance sync` does) is sent at most once, batch by batch. Stops at the first batch that fails
    /// in a retryable way, since the next one would most likely fail the same way.
    public func drain(ignoringSchedule: Bool = false) async throws -> DrainReport {
        var report = DrainReport()
        var cursor: RecordKey?
        let dueBy: Date? = ignoringSchedule ? nil : now()
        while !Task.isCancelled {
            let items = try await queue.pending(after: cursor, dueBy: dueBy, limit: options.batchSize)
            guard let last = items.last else { break }
            cursor = last.key

            // A payload that is not a valid record would make the gateway refuse the whole batch: park it here.
            var batch: [OutboxItem] = []
            var parkings: [OutboxParking] = []
            for item in items {
                if let problem = Self.localProblem(item) {
                    parkings.append(OutboxParking(key: item.key, reason: "not sent: \(problem)"))
                } else {
                    batch.append(item)
                }
            }
            if !parkings.isEmpty {
                try await queue.park(parkings)
                report.parked += parkings.count
                logger.warning("parked records that break the contract", metadata: ["count": "\(parkings.count)"])
            }
            guard !batch.isEmpty else { continue }

            report.batches += 1
            let outcome = await transport.send(payloads: batch.map(\.payload))
            switch outcome {
            case .results(let results):
                var delivered: [RecordKey] = []
                var parked: [OutboxParking] = []
                var retries: [OutboxRetry] = []
                for (item, result) in zip(batch, results) {
                    if let id = result.recordID, let v = result.version, RecordKey(recordID: id, version: v) != item.key {
                        retries.append(retry(item, error: "the gateway answered for \(id)@v\(v) in the place of \(item.key)"))
                    } else if result.isDelivered {
                        delivered.append(item.key)
                    } else {
                        parked.append(
                            OutboxParking(key: item.key, reason: "rejected by the gateway: \(result.reason ?? "no reason given")")
                        )
                    }
                }
                if !delivered.isEmpty { try await queue.markDelivered(delivered, at: now()) }
                if !parked.isEmpty { try await queue.park(parked) }
                if !retries.isEmpty { try await queue.reschedule(retries) }
                report.delivered += delivered.count
                report.parked += parked.count
                report.rescheduled += retries.count
                logger.debug("batch answered", metadata: ["delivered": "\(delivered.count)", "parked": "\(parked.count)"])
                if !parked.isEmpty {
                    logger.warning(
                        "the gateway rejected records", metadata: ["count": "\(parked.count)", "first": "\(parked[0].reason)"])
                }
            case .retryable(let reason, let retryAfter):
                let retries = batch.map { retry($0, error: reason, atLeast: retryAfter) }
                try await queue.reschedule(retries)
                report.rescheduled += retries.count
                report.interruption = reason
                logger.info("batch not delivered, will retry", metadata: ["count": "\(batch.count)", "reason": "\(reason)"])
                return report
            case .rejected(let reason):
                let parked = batch.map { OutboxParking(key: $0.key, reason: reason) }
                try await queue.park(parked)
                report.parked += parked.count
                logger.error("the gateway refused a batch", metadata: ["count": "\(batch.count)", "reason": "\(reason)"])
            }
        }
        return report
    }

    /// Runs until the task is cancelled: drain what is due, then sleep until the next record is due
    /// (at most `pollInterval`), backing off while the gateway keeps failing.
    public func run() async {
        var failedPasses = 0
        while !Task.isCancelled {
            var wait = options.pollInterval
            do {
                let report = try await drain()
                failedPasses = report.interruption == nil ? 0 : failedPasses + 1
                if let next = try await queue.nextAttemptDate() {
                    wait = min(wait, max(0, next.timeIntervalSince(now())))
                }
            } catch {
                failedPasses += 1
                logger.error("outbox error", metadata: ["error": "\(error)"])
            }
            if failedPasses > 0 { wait = max(wait, options.backoff.delay(attempts: failedPasses)) }
            do { try await Task.sleep(nanoseconds: UInt64(max(0.01, wait) * 1e9)) } catch { return }
        }
    }

    func retry(_ item: OutboxItem, error: String, atLeast floor: Double? = nil) -> OutboxRetry {
        let attempts = item.attempts + 1
        let delay = max(options.backoff.delay(attempts: attempts), min(floor ?? 0, options.backoff.maximum))
        return OutboxRetry(key: item.key, attempts: attempts, nextAttemptAt: now().addingTimeInterval(delay), error: error)
    }

    /// Why a stored payload cannot be sent, or nil.
    static func localProblem(_ item: OutboxItem) -> String? {
        let record: SectorRecord
        do { record = try JSONDecoder().decode(SectorRecord.self, from: item.payload) } catch {
            return "the stored payload is not a SectorRecord (\(error))"
        }
        if record.key != item.key { return "the payload is \(record.key), the outbox row \(item.key)" }
        let problems = record.contractViolations()
        return problems.isEmpty ? nil : problems.joined(separator: "; ")
    }
}
