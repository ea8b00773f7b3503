import Foundation

/// One attendance record as the education sector database (CSDL ngành) sees it.
///
/// The sector's records carry a record id, an event kind, a version that only goes up,
/// an update time and the keys school / grade / class / student code (the student code,
/// mã định danh, never changes). The gateway is idempotent by (recordID, version).
public struct SectorRecord: Codable, Sendable, Equatable {
    public enum EventKind: String, Codable, Sendable { case new = "NEW", update = "UPDATE", cancel = "CANCEL" }

    public var recordID: String
    public var eventKind: EventKind
    public var version: Int
    /// When this version was made (ISO-8601, UTC).
    public var updatedAt: String
    public var schoolCode: String
    public var gradeCode: String
    public var classCode: String
    public var studentCode: String
    /// The school day, yyyy-MM-dd in the school's time zone.
    public var schoolDay: String
    /// The session (shift) name, e.g. "morning".
    public var session: String
    /// "check_in" or "check_out".
    public var kind: String
    /// "present", "late", "absent" or "excused".
    public var status: String
    /// When the student was seen (ISO-8601, UTC); nil for a status set by hand.
    public var occurredAt: String?
    public var camera: String?

    public init(
        recordID: String, eventKind: EventKind, version: Int, updatedAt: String, schoolCode: String,
        gradeCode: String, classCode: String, studentCode: String, schoolDay: String, session: String,
        kind: String, status: String, occurredAt: String?, camera: String?
    ) {
        self.recordID = recordID; self.eventKind = eventKind; self.version = version; self.updatedAt = updatedAt
        self.schoolCode = schoolCode; self.gradeCode = gradeCode; self.classCode = classCode; self.studentCode = studentCode
        self.schoolDay = schoolDay; self.session = session; self.kind = kind; self.status = status
        self.occurredAt = occurredAt; self.camera = camera
    }

    enum CodingKeys: String, CodingKey {
        case recordID = "record_id", eventKind = "event_kind", version, updatedAt = "updated_at"
        case schoolCode = "school_code", gradeCode = "grade_code", classCode = "class_code", studentCode = "student_code"
        case schoolDay = "school_day", session, kind, status, occurredAt = "occurred_at", camera
    }

    /// Canonical JSON (sorted keys), as stored in the outbox and sent on the wire.
    public func jsonData() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(self)
    }
}
