import AttendanceCore
import Foundation
import GRDB

// How the store reads the core's records from its rows (the core itself knows no SQLite).

extension Student {
    static let selectSQL = """
        SELECT s.code, s.full_name, s.class_code, c.grade_code, s.date_of_birth, s.gender, s.active,
               s.created_at, s.updated_at
        FROM student s JOIN school_class c ON c.code = s.class_code
        """

    init(row: Row) {
        self.init(
            code: row["code"], fullName: row["full_name"], classCode: row["class_code"], gradeCode: row["grade_code"],
            dateOfBirth: (row["date_of_birth"] as String?).flatMap(LocalDate.init), gender: row["gender"],
            active: row["active"], createdAt: row["created_at"], updatedAt: row["updated_at"])
    }
}

extension Consent {
    init(row: Row) {
        self.init(
            id: row["id"], studentCode: row["student_code"], guardianName: row["guardian_name"], relation: row["relation"],
            consentDate: LocalDate(row["consent_date"] as String) ?? LocalDate(year: 1970, month: 1, day: 1),
            scope: row["scope"], recordedBy: row["recorded_by"], recordedAt: row["recorded_at"],
            revokedAt: row["revoked_at"], revokedBy: row["revoked_by"])
    }
}
