import AttendanceCore
import Foundation
import GRDB

// How the store reads the core's records from its rows (the core itself knows no SQLite): each record a
// `FetchableRecord` whose columns are named once, in its `Columns`.

extension Student: FetchableRecord {
    enum Columns {
        static let code = Column("code"), fullName = Column("full_name"), classCode = Column("class_code")
        static let gradeCode = Column("grade_code"), dateOfBirth = Column("date_of_birth"), gender = Column("gender")
        static let active = Column("active"), createdAt = Column("created_at"), updatedAt = Column("updated_at")
    }

    /// The student with the class's grade (the columns `init(row:)` reads).
    static let selectSQL = """
        SELECT s.code, s.full_name, s.class_code, c.grade_code, s.date_of_birth, s.gender, s.active,
               s.created_at, s.updated_at
        FROM student s JOIN school_class c ON c.code = s.class_code
        """

    public init(row: Row) {
        self.init(
            code: row[Columns.code], fullName: row[Columns.fullName], classCode: row[Columns.classCode],
            gradeCode: row[Columns.gradeCode], dateOfBirth: (row[Columns.dateOfBirth] as String?).flatMap(LocalDate.init),
            gender: row[Columns.gender], active: row[Columns.active], createdAt: row[Columns.createdAt],
            updatedAt: row[Columns.updatedAt])
    }
}

extension SchoolClass: FetchableRecord {
    enum Columns {
        static let code = Column("code"), gradeCode = Column("grade_code"), name = Column("name")
    }

    public init(row: Row) {
        self.init(code: row[Columns.code], gradeCode: row[Columns.gradeCode], name: row[Columns.name])
    }
}

extension Consent: FetchableRecord {
    enum Columns {
        static let id = Column("id"), studentCode = Column("student_code"), guardianName = Column("guardian_name")
        static let relation = Column("relation"), consentDate = Column("consent_date"), scope = Column("scope")
        static let recordedBy = Column("recorded_by"), recordedAt = Column("recorded_at")
        static let revokedAt = Column("revoked_at"), revokedBy = Column("revoked_by")
    }

    public init(row: Row) {
        self.init(
            id: row[Columns.id], studentCode: row[Columns.studentCode], guardianName: row[Columns.guardianName],
            relation: row[Columns.relation],
            consentDate: LocalDate(row[Columns.consentDate] as String) ?? LocalDate(year: 1970, month: 1, day: 1),
            scope: row[Columns.scope], recordedBy: row[Columns.recordedBy], recordedAt: row[Columns.recordedAt],
            revokedAt: row[Columns.revokedAt], revokedBy: row[Columns.revokedBy])
    }
}

extension HeldRecord: FetchableRecord {
    enum Columns {
        static let id = Column("id"), studentCode = Column("student_code"), schoolDay = Column("school_day")
        static let session = Column("session"), kind = Column("kind"), status = Column("status")
        static let occurredAt = Column("occurred_at"), camera = Column("camera"), distance = Column("distance")
        static let fullName = Column("full_name"), classCode = Column("class_code"), liveness = Column("liveness")
        static let reason = Column("reason"), state = Column("state")
        static let decidedBy = Column("decided_by"), decidedAt = Column("decided_at")
    }

    /// The hold with its student's name and class (the columns `init(row:)` reads).
    static let selectSQL = """
        SELECT h.*, s.full_name, s.class_code
        FROM review_hold h JOIN student s ON s.code = h.student_code
        """

    public init(row: Row) {
        self.init(
            id: row[Columns.id],
            event: NewAttendanceEvent(
                studentCode: row[Columns.studentCode],
                schoolDay: LocalDate(row[Columns.schoolDay] as String) ?? LocalDate(year: 1970, month: 1, day: 1),
                session: row[Columns.session], kind: EventKind(rawValue: row[Columns.kind]) ?? .checkIn,
                status: AttendanceStatus(rawValue: row[Columns.status]) ?? .present,
                occurredAt: Timestamp.date(row[Columns.occurredAt]) ?? Date(timeIntervalSince1970: 0),
                camera: row[Columns.camera], distance: Float(row[Columns.distance] as Double)),
            studentName: row[Columns.fullName], classCode: row[Columns.classCode],
            liveness: (row[Columns.liveness] as Double?).map(Float.init),
            reason: HoldReason(rawValue: row[Columns.reason]) ?? .spoof,
            state: HoldState(rawValue: row[Columns.state]) ?? .pending,
            decidedBy: row[Columns.decidedBy], decidedAt: (row[Columns.decidedAt] as String?).flatMap(Timestamp.date))
    }
}
