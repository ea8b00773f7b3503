import Foundation

/// The wire contract between the school and the sector gateway (docs/CONNECTOR.md is the prose version).
///
/// `POST {endpoint}/v1/attendance-records`, `Authorization: Bearer <token>`,
/// `Content-Type: application/json`, body `{"records":[SectorRecord, ...]}` (1...``maxBatchSize`` records).
/// The answer carries one ``RecordResult`` per record, in the request's order:
/// `{"results":[{"record_id":..,"version":..,"status":"accepted"|"duplicate"|"stale"|"rejected","reason":..}]}`
/// with HTTP 200 when no record was rejected and 422 when at least one was (the others were still processed).
public enum WireContract {
    /// The path under the configured endpoint that takes batches.
    public static let recordsPath = "v1/attendance-records"
    /// The most records a gateway accepts in one request.
    public static let maxBatchSize = 1000
    /// The largest request body a gateway accepts (bytes).
    public static let maxBodyBytes = 4 << 20
    /// The largest answer the client reads (bytes).
    public static let maxResponseBytes = 4 << 20
}

/// The identity the sector is idempotent by: a record id and one of its versions.
public struct RecordKey: Hashable, Sendable, Comparable, CustomStringConvertible, Codable {
    public var recordID: String
    public var version: Int
    public init(recordID: String, version: Int) { self.recordID = recordID; self.version = version }
    public var description: String { "\(recordID)@v\(version)" }
    public static func < (a: RecordKey, b: RecordKey) -> Bool { (a.recordID, a.version) < (b.recordID, b.version) }
    enum CodingKeys: String, CodingKey { case recordID = "record_id", version }
}

extension SectorRecord {
    public var key: RecordKey { RecordKey(recordID: recordID, version: version) }
}

/// The request body.
public struct RecordBatch: Codable, Sendable {
    public var records: [SectorRecord]
    public init(records: [SectorRecord]) { self.records = records }
}

/// What the gateway did with one record.
public struct RecordResult: Codable, Sendable, Equatable {
    public enum Status: String, Codable, Sendable {
        /// Stored now.
        case accepted
        /// This (record_id, version) was already stored with the same content: nothing to do (a retried send).
        case duplicate
        /// A higher version of this record is already stored: this one is superseded.
        case stale
        /// Malformed or conflicting; `reason` says why. Sending it again will not help.
        case rejected
    }
    public var recordID: String?
    public var version: Int?
    public var status: Status
    public var reason: String?

    public init(recordID: String?, version: Int?, status: Status, reason: String? = nil) {
        self.recordID = recordID; self.version = version; self.status = status; self.reason = reason
    }

    /// Accepted, duplicate and stale all mean the sector holds this version or a newer one.
    public var isDelivered: Bool { status != .rejected }

    enum CodingKeys: String, CodingKey { case recordID = "record_id", version, status, reason }
}

/// The response body (also the body of a 422 for a batch with rejected records).
public struct BatchResult: Codable, Sendable {
    public var results: [RecordResult]
    public init(results: [RecordResult]) { self.results = results }
}

/// The body of every error answer that is not about single records (401, 400, 413, 500 ...).
public struct ErrorBody: Codable, Sendable {
    public var error: String
    public init(error: String) { self.error = error }
}

// MARK: - Validation (shared by the client, which refuses to send a bad record, and the reference gateway)

extension SectorRecord {
    static let statuses: Set<String> = ["present", "late", "absent", "excused"]
    static let kinds: Set<String> = ["check_in", "check_out"]

    /// The reasons this record does not meet the contract; empty when it does.
    public func contractViolations() -> [String] {
        var problems: [String] = []
        func code(_ name: String, _ value: String, max: Int = 64) {
            if value.isEmpty {
                problems.append("\(name) is empty")
            } else if value.count > max {
                problems.append("\(name) is longer than \(max) characters")
            } else if value.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) {
                problems.append("\(name) contains control characters")
            }
        }
        code("record_id", recordID)
        if !recordID.unicodeScalars.allSatisfy({
            $0.isASCII && (CharacterSet.alphanumerics.contains($0) || "-_.:".unicodeScalars.contains($0))
        }) {
            problems.append("record_id may hold only ASCII letters, digits and - _ . :")
        }
        if version < 1 { problems.append("version must be 1 or more") }
        if eventKind != .new && version < 2 { problems.append("\(eventKind.rawValue) needs a version above 1") }
        if ISO8601.parse(updatedAt) == nil { problems.append("updated_at is not an ISO-8601 instant") }
        code("school_code", schoolCode)
        code("grade_code", gradeCode)
        code("class_code", classCode)
        code("student_code", studentCode)
        code("session", session)
        if !Self.isDay(schoolDay) { problems.append("school_day is not a date yyyy-MM-dd") }
        if !Self.kinds.contains(kind) { problems.append("kind must be check_in or check_out") }
        if !Self.statuses.contains(status) { problems.append("status must be present, late, absent or excused") }
        if let occurredAt, ISO8601.parse(occurredAt) == nil { problems.append("occurred_at is not an ISO-8601 instant") }
        if let camera { code("camera", camera, max: 128) }
        return problems
    }

    static func isDay(_ s: String) -> Bool {
        let p = s.split(separator: "-", omittingEmptySubsequences: false)
        guard p.count == 3, p[0].count == 4, p[1].count == 2, p[2].count == 2,
            let y = Int(p[0]), let m = Int(p[1]), let d = Int(p[2]), (1...12).contains(m), (1...31).contains(d)
        else { return false }
        var cal = Calendar(identifier: .gregorian)
        cal.timeZone = TimeZone(identifier: "UTC")!
        guard let date = cal.date(from: DateComponents(year: y, month: m, day: d)) else { return false }
        return cal.component(.day, from: date) == d
    }
}

/// ISO-8601 instants as the contract writes them (UTC, with or without fractional seconds).
public enum ISO8601 {
    public static func parse(_ s: String) -> Date? {
        if let d = try? Date(s, strategy: Date.ISO8601FormatStyle(includingFractionalSeconds: true)) { return d }
        return try? Date(s, strategy: Date.ISO8601FormatStyle())
    }
    public static func string(_ d: Date) -> String {
        d.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true))
    }
}
