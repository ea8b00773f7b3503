import Foundation

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

    public init(
        code: String, fullName: String, classCode: String, gradeCode: String, dateOfBirth: LocalDate? = nil,
        gender: String? = nil, active: Bool = true, createdAt: String = "", updatedAt: String = ""
    ) {
        self.code = code; self.fullName = fullName; self.classCode = classCode; self.gradeCode = gradeCode
        self.dateOfBirth = dateOfBirth; self.gender = gender; self.active = active
        self.createdAt = createdAt; self.updatedAt = updatedAt
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

    /// A class code as the school's records keep it: "Lớp 6a1", " 6a1 " -> "6A1". Every class code typed by a person
    /// (a roster file, a command, a console form) goes through this before it is compared.
    public static func normalisedCode(_ text: String) -> String {
        var code = text.trimmingCharacters(in: .whitespaces)
        let folded = code.folding(options: [.caseInsensitive, .diacriticInsensitive], locale: nil)
        if folded.hasPrefix("lop "), let space = code.firstIndex(of: " ") {
            code = String(code[code.index(after: space)...]).trimmingCharacters(in: .whitespaces)
        }
        return code.uppercased()
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

    public init(
        id: Int64, studentCode: String, guardianName: String, relation: String, consentDate: LocalDate, scope: String,
        recordedBy: String, recordedAt: String, revokedAt: String? = nil, revokedBy: String? = nil
    ) {
        self.id = id; self.studentCode = studentCode; self.guardianName = guardianName; self.relation = relation
        self.consentDate = consentDate; self.scope = scope; self.recordedBy = recordedBy; self.recordedAt = recordedAt
        self.revokedAt = revokedAt; self.revokedBy = revokedBy
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

    public init(id: Int64, studentCode: String, quality: String?, source: String?, createdAt: String, createdBy: String) {
        self.id = id; self.studentCode = studentCode; self.quality = quality; self.source = source
        self.createdAt = createdAt; self.createdBy = createdBy
    }
}

public enum EventKind: String, Sendable, Codable, CaseIterable {
    case checkIn = "check_in", checkOut = "check_out"
}

public enum AttendanceStatus: String, Sendable, Codable, CaseIterable {
    case present, late, absent, excused
}

/// A decided sighting, ready to be recorded (and queued for the sector database).
public struct NewAttendanceEvent: Sendable, Equatable, Codable {
    public var studentCode: String
    public var schoolDay: LocalDate
    public var session: String
    public var kind: EventKind
    public var status: AttendanceStatus
    public var occurredAt: Date
    public var camera: String
    public var distance: Float

    public init(
        studentCode: String, schoolDay: LocalDate, session: String, kind: EventKind,
        status: AttendanceStatus, occurredAt: Date, camera: String, distance: Float
    ) {
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
    /// As stored: student subjects are aliases ("S-…"), see `AuditLog.append(action:student:detail:)`.
    public var subject: String?
    public var detail: String?
    /// The student the alias stands for, while that student exists (nil after erasure).
    public var studentCode: String?

    public init(id: Int64, at: String, osUser: String, action: String, subject: String?, detail: String?, studentCode: String?) {
        self.id = id; self.at = at; self.osUser = osUser; self.action = action
        self.subject = subject; self.detail = detail; self.studentCode = studentCode
    }
}

/// Why the gate held a decided check-in back for a teacher instead of recording it.
public enum HoldReason: String, Sendable, Codable, CaseIterable {
    /// The face looked like a print or a screen (mean real score under `recognition.liveness_threshold`).
    case spoof
    /// No frame of the track could be checked (the face filled the frame, or stayed at its edge).
    case notCheckable = "not_checkable"
}

/// Where a held check-in stands.
public enum HoldState: String, Sendable, Codable, CaseIterable {
    case pending, accepted, rejected
}

/// A decided check-in the liveness check held back: not present until a teacher accepts it.
public struct HeldRecord: Sendable, Equatable, Codable {
    public var id: Int64
    public var event: NewAttendanceEvent
    public var studentName: String
    public var classCode: String
    /// The track's mean real score (nil: not checkable).
    public var liveness: Float?
    public var reason: HoldReason
    public var state: HoldState
    /// Who accepted or rejected it (the audit's name), and when.
    public var decidedBy: String?
    public var decidedAt: Date?

    public init(
        id: Int64, event: NewAttendanceEvent, studentName: String, classCode: String, liveness: Float?,
        reason: HoldReason, state: HoldState, decidedBy: String? = nil, decidedAt: Date? = nil
    ) {
        self.id = id; self.event = event; self.studentName = studentName; self.classCode = classCode
        self.liveness = liveness; self.reason = reason; self.state = state; self.decidedBy = decidedBy
        self.decidedAt = decidedAt
    }
}
