import Foundation
import SectorConnector
import SeededRandom

/// Faults the gateway can be told to inject (flags at start, or `PUT /admin/faults`).
struct FaultPlan: Codable, Sendable, Equatable {
    /// Fraction of POSTs answered 500 before anything is stored.
    var failRate: Double = 0
    /// Fraction of POSTs whose records are stored, but answered 500 (a lost acknowledgement).
    var failAfterStoreRate: Double = 0
    /// Fraction of POSTs whose connection is closed without an answer, before anything is stored.
    var dropRate: Double = 0
    /// Wait this long before handling each POST (longer than the client's timeout: a timeout).
    var delayMs: Int = 0
    /// Wait this long after storing a batch before answering (a sender killed in this window has
    /// records the gateway holds but the outbox has not marked).
    var delayAfterStoreMs: Int = 0
    /// The next N POSTs are answered 500, whatever the rates (deterministic tests).
    var failNext: Int = 0
    /// Answer every POST with this status (e.g. 401 or 429) before anything is stored.
    var forceStatus: Int?

    enum CodingKeys: String, CodingKey {
        case failRate = "fail_rate", failAfterStoreRate = "fail_after_store_rate", dropRate = "drop_rate"
        case delayMs = "delay_ms", delayAfterStoreMs = "delay_after_store_ms", failNext = "fail_next", forceStatus =
            "force_status"
    }

    init() {}
    init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        failRate = try c.decodeIfPresent(Double.self, forKey: .failRate) ?? 0
        failAfterStoreRate = try c.decodeIfPresent(Double.self, forKey: .failAfterStoreRate) ?? 0
        dropRate = try c.decodeIfPresent(Double.self, forKey: .dropRate) ?? 0
        delayMs = try c.decodeIfPresent(Int.self, forKey: .delayMs) ?? 0
        delayAfterStoreMs = try c.decodeIfPresent(Int.self, forKey: .delayAfterStoreMs) ?? 0
        failNext = try c.decodeIfPresent(Int.self, forKey: .failNext) ?? 0
        forceStatus = try c.decodeIfPresent(Int.self, forKey: .forceStatus)
    }

    func validate() throws {
        for (name, r) in [("fail_rate", failRate), ("fail_after_store_rate", failAfterStoreRate), ("drop_rate", dropRate)]
        where !(0...1).contains(r) {
            throw GatewayError.badRequest("\(name) must be between 0 and 1")
        }
        if delayMs < 0 || delayAfterStoreMs < 0 || failNext < 0 {
            throw GatewayError.badRequest("delays and fail_next must not be negative")
        }
        if let s = forceStatus, !(100...599).contains(s) { throw GatewayError.badRequest("force_status must be an HTTP status") }
    }
}

/// Counters for tests and the curious (`GET /admin/stats`).
struct GatewayStats: Codable, Sendable {
    var posts = 0
    var unauthorized = 0
    var injectedFailures = 0
    var injectedFailuresAfterStore = 0
    var injectedDrops = 0
    var accepted = 0
    var duplicate = 0
    var stale = 0
    var rejected = 0
    var stored = 0

    enum CodingKeys: String, CodingKey {
        case posts, unauthorized, accepted, duplicate, stale, rejected, stored
        case injectedFailures = "injected_failures", injectedFailuresAfterStore = "injected_failures_after_store"
        case injectedDrops = "injected_drops"
    }
}

enum GatewayError: Error {
    case badRequest(String)
    case tooLarge(String)
}

/// One stored record version, as kept in the JSON-lines file and listed by `GET /v1/attendance-records`.
struct StoredRecord: Codable, Sendable {
    var receivedAt: String
    var record: SectorRecord
    enum CodingKeys: String, CodingKey { case receivedAt = "received_at", record }
}

/// A record slot of an incoming batch: the record, or why it could not be read.
struct IncomingSlot: Decodable, Sendable {
    var record: SectorRecord?
    var problem: String?
    var recordID: String?
    var version: Int?

    private struct AnyKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    init(from decoder: any Decoder) throws {
        let c = try? decoder.container(keyedBy: AnyKey.self)
        recordID = try? c?.decodeIfPresent(String.self, forKey: AnyKey(stringValue: "record_id"))
        version = try? c?.decodeIfPresent(Int.self, forKey: AnyKey(stringValue: "version"))
        do {
            let r = try SectorRecord(from: decoder)
            let problems = r.contractViolations()
            if problems.isEmpty { record = r } else { problem = problems.joined(separator: "; ") }
        } catch {
            problem = Self.describe(error)
        }
    }

    static func describe(_ error: any Error) -> String {
        guard let e = error as? DecodingError else { return "\(error)" }
        func path(_ p: [any CodingKey]) -> String { p.filter { $0.intValue == nil }.map(\.stringValue).joined(separator: ".") }
        switch e {
        case .keyNotFound(let key, _): return "missing field \(key.stringValue)"
        case .typeMismatch(_, let ctx): return "field \(path(ctx.codingPath)) has the wrong type"
        case .valueNotFound(_, let ctx): return "field \(path(ctx.codingPath)) is null"
        case .dataCorrupted(let ctx):
            let p = path(ctx.codingPath)
            return p.isEmpty ? ctx.debugDescription : "field \(p): \(ctx.debugDescription)"
        @unknown default: return "\(e)"
        }
    }
}

struct IncomingBatch: Decodable, Sendable {
    var records: [IncomingSlot]
}

/// Everything the gateway holds: the records (durably, in a JSON-lines file), the faults and the counters.
actor GatewayState {
    private var versions: [String: [Int: Data]] = [:]
    private var highest: [String: Int] = [:]
    private var log: [StoredRecord] = []
    private let file: FileHandle
    private(set) var faults: FaultPlan
    private(set) var stats = GatewayStats()
    private var rng: SplitMix64

    init(storePath: String, faults: FaultPlan, seed: UInt64) throws {
        let fm = FileManager.default
        if !fm.fileExists(atPath: storePath) {
            guard fm.createFile(atPath: storePath, contents: nil) else {
                throw GatewayError.badRequest("cannot create \(storePath)")
            }
        }
        let data = try Data(contentsOf: URL(fileURLWithPath: storePath))
        let decoder = JSONDecoder()
        let lines = data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
        var validLength = 0
        var offset = 0
        for (i, line) in lines.enumerated() {
            offset += line.count + (i < lines.count - 1 ? 1 : 0)
            guard !line.isEmpty else { validLength = offset; continue }
            guard let stored = try? decoder.decode(StoredRecord.self, from: Data(line)) else {
                // A torn last line (a crash mid-append) was never acknowledged: drop it. Anything else is damage.
                if i == lines.count - 1 { break }
                throw GatewayError.badRequest("\(storePath): line \(i + 1) is not a stored record")
            }
            validLength = offset
            let canonical = try stored.record.jsonData()
            versions[stored.record.recordID, default: [:]][stored.record.version] = canonical
            highest[stored.record.recordID] = max(highest[stored.record.recordID] ?? 0, stored.record.version)
            log.append(stored)
        }
        file = try FileHandle(forUpdating: URL(fileURLWithPath: storePath))
        try file.truncate(atOffset: UInt64(validLength))
        try file.seekToEnd()
        if validLength > 0, data[validLength - 1] != UInt8(ascii: "\n") { try file.write(contentsOf: Data([UInt8(ascii: "\n")])) }
        self.faults = faults
        self.rng = SplitMix64(seed: seed)
        stats.stored = log.count
    }

    /// What to do with a POST before reading it.
    enum Verdict: Sendable { case proceed, fail, drop, status(Int) }

    func admit() -> (Verdict, delayMs: Int) {
        stats.posts += 1
        let delay = faults.delayMs
        if let s = faults.forceStatus { return (.status(s), delay) }
        if faults.failNext > 0 {
            faults.failNext -= 1
            stats.injectedFailures += 1
            return (.fail, delay)
        }
        if faults.dropRate > 0, roll() < faults.dropRate {
            stats.injectedDrops += 1
            return (.drop, delay)
        }
        if faults.failRate > 0, roll() < faults.failRate {
            stats.injectedFailures += 1
            return (.fail, delay)
        }
        return (.proceed, delay)
    }

    /// After storing: should the acknowledgement be lost, and how long to wait before answering?
    func afterStore() -> (lose: Bool, delayMs: Int) {
        let delay = faults.delayAfterStoreMs
        guard faults.failAfterStoreRate > 0, roll() < faults.failAfterStoreRate else { return (false, delay) }
        stats.injectedFailuresAfterStore += 1
        return (true, delay)
    }

    func unauthorized() { stats.unauthorized += 1 }

    func setFaults(_ plan: FaultPlan) { faults = plan }

    /// Applies a batch: idempotent by (record_id, version); a version below the highest stored is stale.
    /// The new lines are on disk (write, then fsync) before the dedupe map learns them and before this
    /// returns: a record is acknowledged only once it would survive a crash, and a failed write leaves the
    /// map (and the file, cut back to its old end) as they were, so the sender's retry is stored, not "duplicate".
    func apply(_ slots: [IncomingSlot], receivedAt: Date) throws -> [RecordResult] {
        var results: [RecordResult] = []
        var lines = Data()
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let at = ISO8601.string(receivedAt)
        // This batch's new versions, applied to the maps only after the write.
        var staged: [(id: String, version: Int, canonical: Data, stored: StoredRecord)] = []
        var counts = (duplicate: 0, rejected: 0, stale: 0)
        for slot in slots {
            guard let record = slot.record else {
                results.append(
                    RecordResult(
                        recordID: slot.recordID, version: slot.version, status: .rejected,
                        reason: slot.problem ?? "unreadable record"))
                counts.rejected += 1
                continue
            }
            let canonical = try record.jsonData()
            let id = record.recordID, v = record.version
            let top = ([highest[id]] + staged.filter { $0.id == id }.map { Optional($0.version) }).compactMap { $0 }.max()
            if let existing = versions[id]?[v] ?? staged.first(where: { $0.id == id && $0.version == v })?.canonical {
                if existing == canonical {
                    results.append(RecordResult(recordID: id, version: v, status: .duplicate))
                    counts.duplicate += 1
                } else {
                    results.append(
                        RecordResult(
                            recordID: id, version: v, status: .rejected,
                            reason: "version \(v) of \(id) is already stored with different content; send a higher version"))
                    counts.rejected += 1
                }
            } else if let top, v < top {
                results.append(RecordResult(recordID: id, version: v, status: .stale, reason: "version \(top) is stored"))
                counts.stale += 1
            } else {
                let stored = StoredRecord(receivedAt: at, record: record)
                lines.append(try encoder.encode(stored))
                lines.append(UInt8(ascii: "\n"))
                staged.append((id, v, canonical, stored))
                results.append(RecordResult(recordID: id, version: v, status: .accepted))
            }
        }
        if !lines.isEmpty {
            let end = try file.seekToEnd()
            do {
                try file.write(contentsOf: lines)
                try file.synchronize()
            } catch {
                // Nothing of this batch is acknowledged: cut off what may have been half-written.
                try? file.truncate(atOffset: end)
                try? file.synchronize()
                throw error
            }
        }
        for s in staged {
            versions[s.id, default: [:]][s.version] = s.canonical
            highest[s.id] = max(highest[s.id] ?? s.version, s.version)
            log.append(s.stored)
        }
        stats.accepted += staged.count
        stats.duplicate += counts.duplicate
        stats.rejected += counts.rejected
        stats.stale += counts.stale
        stats.stored = log.count
        return results
    }

    /// Every stored version in the order received, or only the highest version of each record.
    func records(latestOnly: Bool) -> [StoredRecord] {
        guard latestOnly else { return log }
        return log.filter { highest[$0.record.recordID] == $0.record.version }
    }

    private func roll() -> Double { Double(rng.next() >> 11) / Double(1 << 53) }
}
