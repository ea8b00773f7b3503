import Foundation
import GRDB

/// A student on the roster. `code` is the sector database's mã định danh: fixed, never reused.
public struct Student: Sendable, Equatable, Codable {
    public var code: String
    /// NFC, exactly as on the roster.
    public var fullName: String
    public var classCode: String
    public var gradeCode: String
    public var dateOfBirth: LocalDate?
    /// "male", "female" or nil.
    public var gender: String?
    /// False once a newer roster no longer lists the student (kept, never silently deleted).
    public var active: Bool
    public var createdAt: String
    public var updatedAt: String

    public init(code: String, fullName: String, classCode: String, gradeCode: String, dateOfBirth: LocalDate? = nil,
                gender: String? = nil, active: Bool = true, createdAt: String = "", updatedAt: String = "") {
        self.code = code; self.fullName = fullName; self.classCode = classCode; self.gradeCode = gradeCode
        self.dateOfBirth = dateOfBirth; self.gender = gender; self.active = active
        self.createdAt = createdAt; self.updatedAt = updatedAt
    }

    static let selectSQL = """
        SELECT s.code, s.full_name, s.class_code, c.grade_code, s.date_of_birth, s.gender, s.active,
               s.created_at, s.updated_at
        FROM student s JOIN school_class c ON c.code = s.class_code
        """

    init(row: Row) {
        code = row[0]; fullName = row[1]; classCode = row[2]; gradeCode = row[3]
        dateOfBirth = (row[4] as String?).flatMap(LocalDate.init)
        gender = row[5]; active = row[6]; createdAt = row[7]; updatedAt = row[8]
    }
}

/// A class (lớp), e.g. "6A1" in grade (khối) "6".
public struct SchoolClass: Sendable, Equatable, Codable {
    public var code: String
    public var gradeCode: String
    public var name: String?
    public init(code: String, gradeCode: String, name: String? = nil) {
        self.code = code; self.gradeCode = gradeCode; self.name = name
    }

    /// The grade of a class code from its leading digits: "6A1" -> "6", "10C2" -> "10"; nil without digits.
    public static func gradeCode(fromClass code: String) -> String? {
        let digits = code.trimmingCharacters(in: .whitespaces).prefix { $0.isASCII && $0.isNumber }
        guard !digits.isEmpty, let n = Int(digits) else { return nil }
        return String(n)
    }
}

/// A guardian's consent to processing the child's face data (Decree 13/2023: who, when, for what).
public struct Consent: Sendable, Equatable, Codable {
    public var id: Int64
    public var studentCode: String
    public var guardianName: String
    /// "mother", "father", "guardian", ... as given.
    public var relation: String
    public var consentDate: LocalDate
    public var scope: String
    public var recordedBy: String
    public var recordedAt: String
    public var revokedAt: String?
    public var revokedBy: String?
    public var isActive: Bool { revokedAt == nil }

    init(row: Row) {
        id = row["id"]; studentCode = row["student_code"]; guardianName = row["guardian_name"]
        relation = row["relation"]; consentDate = LocalDate(row["consent_date"] as String) ?? LocalDate(year: 1970, month: 1, day: 1)
        scope = row["scope"]; recordedBy = row["recorded_by"]; recordedAt = row["recorded_at"]
        revokedAt = row["revoked_at"]; revokedBy = row["revoked_by"]
    }
}

/// What the store knows about one enrolled face (never the face itself: no image is kept).
public struct EnrolmentInfo: Sendable, Equatable, Codable {
    public var id: Int64
    public var studentCode: String
    /// The quality gate's measurements as JSON.
    public var quality: String?
    public var source: String?
    public var createdAt: String
    public var createdBy: String
}

public enum EventKind: String, Sendable, Codable, CaseIterable {
    case checkIn = "check_in", checkOut = "check_out"
}

public enum AttendanceStatus: String, Sendable, Codable, CaseIterable {
    case present, late, absent, excused
}

/// A decided sighting, ready to be recorded (and queued for the sector database).
public struct NewAttendanceEvent: Sendable, Equatable {
    public var studentCode: String
    public var schoolDay: LocalDate
    public var session: String
    public var kind: EventKind
    public var status: AttendanceStatus
    public var occurredAt: Date
    public var camera: String
    public var distance: Float

    public init(studentCode: String, schoolDay: LocalDate, session: String, kind: EventKind,
                status: AttendanceStatus, occurredAt: Date, camera: String, distance: Float) {
        self.studentCode = studentCode; self.schoolDay = schoolDay; self.session = session
        self.kind = kind; self.status = status; self.occurredAt = occurredAt; self.camera = camera; self.distance = distance
    }
}

/// One line of the append-only audit log.
public struct AuditEntry: Sendable, Equatable, Codable {
    public var id: Int64
    public var at: String
    public var osUser: String
    public var action: String
    /// As stored: student subjects are aliases ("S-…"), see `AttendanceStore.audit(action:student:detail:)`.
    public var subject: String?
    public var detail: String?
    /// The student the alias stands for, while that student exists (nil after erasure).
    public var studentCode: String?
}
