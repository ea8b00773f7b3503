import AttendanceCore
import Foundation
import GRDB

/// One student's day, as the daily report shows it.
public struct DailyRow: Sendable, Equatable, Codable {
    public var studentCode: String
    public var fullName: String
    public var classCode: String
    public var status: AttendanceStatus
    /// First and last time a camera saw the student that day (nil: not seen, or only set by hand).
    public var firstSeen: Date?
    public var lastSeen: Date?
    /// The camera of the first sighting.
    public var camera: String?
    /// The excuse's reason, when one is recorded for the day.
    public var excuse: String?

    enum CodingKeys: String, CodingKey {
        case studentCode = "student_code", fullName = "full_name", classCode = "class_code", status
        case firstSeen = "first_seen", lastSeen = "last_seen", camera, excuse
    }
}

/// Counts per class (and for the whole school, with `classCode` "*").
public struct ClassCount: Sendable, Equatable, Codable {
    public var classCode: String
    public var students = 0
    public var present = 0
    public var late = 0
    public var absent = 0
    public var excused = 0

    public init(classCode: String) { self.classCode = classCode }

    mutating func add(_ s: AttendanceStatus) {
        students += 1
        switch s {
        case .present: present += 1
        case .late: late += 1
        case .absent: absent += 1
        case .excused: excused += 1
        }
    }

    enum CodingKeys: String, CodingKey { case classCode = "class_code", students, present, late, absent, excused }
}

/// The day's attendance: one row per active student, and per-class counts.
public struct DailyReport: Sendable, Equatable, Codable {
    public var schoolCode: String
    public var schoolDay: LocalDate
    /// False on a weekend or holiday of the config's schedule (students not seen still count as absent).
    public var isSchoolDay: Bool
    public var classFilter: String?
    public var rows: [DailyRow]
    public var classes: [ClassCount]
    public var total: ClassCount

    enum CodingKeys: String, CodingKey {
        case schoolCode = "school_code", schoolDay = "school_day", isSchoolDay = "is_school_day", classFilter = "class"
        case rows = "students", classes, total
    }
}

/// One student's absences over a range of school days (the figure the sector database holds per semester).
public struct AbsenceRow: Sendable, Equatable, Codable {
    public var studentCode: String
    public var fullName: String
    public var dateOfBirth: LocalDate?
    public var classCode: String
    /// Excused plus unexcused.
    public var absentDays: Int
    public var excusedDays: Int
    public var unexcusedDays: Int
    public var lateDays: Int

    enum CodingKeys: String, CodingKey {
        case studentCode = "student_code", fullName = "full_name", dateOfBirth = "date_of_birth", classCode = "class_code"
        case absentDays = "absent_days", excusedDays = "excused_days", unexcusedDays = "unexcused_days", lateDays = "late_days"
    }
}

public struct AbsenceReport: Sendable, Equatable, Codable {
    public var schoolCode: String
    public var from: LocalDate
    public var to: LocalDate
    /// The school days counted (weekdays of the schedule, holidays left out).
    public var schoolDays: [LocalDate]
    public var classFilter: String?
    public var rows: [AbsenceRow]

    enum CodingKeys: String, CodingKey {
        case schoolCode = "school_code", from, to, schoolDays = "school_days", classFilter = "class", rows = "students"
    }
}

/// Reads the reports out of the store. The rule for a student's day:
/// seen on time in some session (`present`/`late` check-in) -> the worst of those (late beats present);
/// otherwise excused (an excuse is recorded, or an event was set to excused) -> `excused`;
/// otherwise -> `absent` (no event at all, or only a check-in past the absent threshold).
public struct AttendanceReports: Sendable {
    public let store: AttendanceStore
    /// The store's config: the school code and schedule the reports count by.
    public var config: AttendanceConfig { store.config }
    public let schedule: SchoolSchedule

    public init(store: AttendanceStore) {
        self.store = store
        self.schedule = SchoolSchedule(store.config)
    }

    public var timeZone: TimeZone { schedule.timeZone }

    struct EventRow {
        var student: String, day: String, kind: String, status: String, occurredAt: Date?, camera: String?
    }

    /// The day status from the events and the excuse of one student and day.
    static func status(events: [EventRow], excused: Bool) -> AttendanceStatus {
        let checkIns = events.filter { $0.kind == EventKind.checkIn.rawValue }
        if checkIns.contains(where: { $0.status == "late" }) { return .late }
        if checkIns.contains(where: { $0.status == "present" }) { return .present }
        if excused || checkIns.contains(where: { $0.status == "excused" }) { return .excused }
        return .absent
    }

    /// Events by student and day (of one student, or of everyone).
    func events(_ db: Database, from: LocalDate, to: LocalDate, student: String? = nil) throws -> [String: [String: [EventRow]]] {
        var byStudent: [String: [String: [EventRow]]] = [:]
        let rows = try Row.fetchAll(
            db,
            sql: """
                SELECT student_code, school_day, kind, status, occurred_at, camera FROM attendance_event
                WHERE school_day BETWEEN ? AND ? AND cancelled = 0 AND (?3 IS NULL OR student_code = ?3)
                ORDER BY occurred_at
                """, arguments: [from.description, to.description, student])
        for r in rows {
            let e = EventRow(
                student: r["student_code"], day: r["school_day"], kind: r["kind"], status: r["status"],
                occurredAt: (r["occurred_at"] as String?).flatMap(Timestamp.date), camera: r["camera"])
            byStudent[e.student, default: [:]][e.day, default: []].append(e)
        }
        return byStudent
    }

    func excuses(_ db: Database, from: LocalDate, to: LocalDate, student: String? = nil) throws -> [String: [String: String]] {
        var out: [String: [String: String]] = [:]
        for r in try Row.fetchAll(
            db,
            sql:
                "SELECT student_code, school_day, reason FROM excuse WHERE school_day BETWEEN ? AND ? AND (?3 IS NULL OR student_code = ?3)",
            arguments: [from.description, to.description, student])
        {
            out[r["student_code"], default: [:]][r["school_day"]] = r["reason"]
        }
        return out
    }

    public func daily(_ day: LocalDate, classCode: String? = nil) throws -> DailyReport {
        let students = try store.roster.students(classCode: classCode)
        let (events, excuses) = try store.writer.read { db in
            (try self.events(db, from: day, to: day), try self.excuses(db, from: day, to: day))
        }
        var rows: [DailyRow] = []
        var perClass: [String: ClassCount] = [:]
        var total = ClassCount(classCode: "*")
        for s in students {
            let row = Self.row(s, day, events: events, excuses: excuses)
            rows.append(row)
            perClass[s.classCode, default: ClassCount(classCode: s.classCode)].add(row.status)
            total.add(row.status)
        }
        let classOrder = rows.map(\.classCode).reduce(into: [String]()) { if !$0.contains($1) { $0.append($1) } }
        return DailyReport(
            schoolCode: config.school.code, schoolDay: day, isSchoolDay: schedule.isSchoolDay(day),
            classFilter: classCode, rows: rows, classes: classOrder.compactMap { perClass[$0] }, total: total)
    }

    /// One student's day from the events and excuses read for it.
    static func row(
        _ s: Student, _ day: LocalDate, events: [String: [String: [EventRow]]], excuses: [String: [String: String]]
    ) -> DailyRow {
        let evs = events[s.code]?[day.description] ?? []
        let excuse = excuses[s.code]?[day.description]
        let seen = evs.filter { $0.occurredAt != nil }.sorted { $0.occurredAt! < $1.occurredAt! }
        return DailyRow(
            studentCode: s.code, fullName: s.fullName, classCode: s.classCode,
            status: Self.status(events: evs, excused: excuse != nil), firstSeen: seen.first?.occurredAt,
            lastSeen: seen.last?.occurredAt, camera: seen.first?.camera, excuse: excuse)
    }

    /// One student's school days in [from, to], newest first, in one read (the console's student page).
    public func history(of student: Student, from: LocalDate, to: LocalDate) throws -> [(day: LocalDate, row: DailyRow)] {
        let (events, excuses) = try store.writer.read { db in
            (
                try self.events(db, from: from, to: to, student: student.code),
                try self.excuses(db, from: from, to: to, student: student.code)
            )
        }
        return schoolDays(from: from, to: to).reversed().map { ($0, Self.row(student, $0, events: events, excuses: excuses)) }
    }

    /// The school days in [from, to] by the config's schedule.
    public func schoolDays(from: LocalDate, to: LocalDate) -> [LocalDate] {
        var days: [LocalDate] = []
        var d = from
        while d <= to {
            if schedule.isSchoolDay(d) { days.append(d) }
            d = d.adding(days: 1)
        }
        return days
    }

    public func absences(from: LocalDate, to: LocalDate, classCode: String? = nil) throws -> AbsenceReport {
        guard from <= to else { throw StoreError.invalid("the range starts on \(from), after its last day \(to)") }
        let days = schoolDays(from: from, to: to)
        let students = try store.roster.students(classCode: classCode)
        let (events, excuses) = try store.writer.read { db in
            (try self.events(db, from: from, to: to), try self.excuses(db, from: from, to: to))
        }
        let rows = students.map { s -> AbsenceRow in
            var row = AbsenceRow(
                studentCode: s.code, fullName: s.fullName, dateOfBirth: s.dateOfBirth, classCode: s.classCode,
                absentDays: 0, excusedDays: 0, unexcusedDays: 0, lateDays: 0)
            for d in days {
                switch Self.status(events: events[s.code]?[d.description] ?? [], excused: excuses[s.code]?[d.description] != nil)
                {
                case .present: break
                case .late: row.lateDays += 1
                case .excused: row.excusedDays += 1
                case .absent: row.unexcusedDays += 1
                }
            }
            row.absentDays = row.excusedDays + row.unexcusedDays
            return row
        }
        return AbsenceReport(
            schoolCode: config.school.code, from: from, to: to, schoolDays: days, classFilter: classCode, rows: rows)
    }
}
