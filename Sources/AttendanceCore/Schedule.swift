import Foundation

/// What a sighting at a given instant means for a student of a given class:
/// which school day and session, check-in or check-out, and the status.
public struct ScheduleSlot: Sendable, Equatable {
    public var day: LocalDate
    public var session: String
    public var kind: EventKind
    public var status: AttendanceStatus
    /// Minutes after the session's start (negative: early).
    public var minutesAfterStart: Double
}

/// The school's timetable: sessions (shifts) per day, late and absent thresholds,
/// school days and holidays, in the school's time zone.
public struct SchoolSchedule: Sendable {
    public let timeZone: TimeZone
    public let config: AttendanceConfig.Schedule

    public init(config: AttendanceConfig.Schedule, timeZone: TimeZone) {
        self.config = config
        self.timeZone = timeZone
    }

    public init(_ config: AttendanceConfig) {
        self.init(
            config: config.schedule,
            timeZone: config.school.timeZone)
    }

    public func isSchoolDay(_ day: LocalDate) -> Bool {
        config.schoolDays.contains(day.isoWeekday) && !config.holidays.contains(day.description)
    }

    /// The sessions a class attends (a session with no class list applies to every class).
    public func sessions(forClass classCode: String) -> [AttendanceConfig.Session] {
        config.sessions.filter { $0.classes.isEmpty || $0.classes.contains(classCode) }
    }

    /// Classifies a sighting. nil: not a school day, or outside every session's windows
    /// (a face at the gate at noon on Sunday records nothing).
    /// - Parameter direction: "in" cameras record arrivals and (in a departure window) departures;
    ///   "out" cameras record departures only.
    public func slot(at instant: Date, classCode: String, direction: String = "in") -> ScheduleSlot? {
        let day = LocalDate(instant, in: timeZone)
        guard isSchoolDay(day) else { return nil }
        for s in sessions(forClass: classCode) {
            guard let start = LocalTime(s.start), let end = LocalTime(s.end) else { continue }
            let startAt = day.at(start, in: timeZone)
            let minutes = instant.timeIntervalSince(startAt) / 60
            if let from = s.checkoutFrom.flatMap(LocalTime.init), let until = s.checkoutUntil.flatMap(LocalTime.init),
                instant >= day.at(from, in: timeZone), instant < day.at(until, in: timeZone)
            {
                return ScheduleSlot(day: day, session: s.name, kind: .checkOut, status: .present, minutesAfterStart: minutes)
            }
            guard direction == "in" else { continue }
            let opens = s.opens.flatMap(LocalTime.init).map { day.at($0, in: timeZone) } ?? startAt.addingTimeInterval(-3600)
            guard instant >= opens, instant < day.at(end, in: timeZone) else { continue }
            let status: AttendanceStatus
            if minutes > Double(config.absentAfterMinutes) {
                status = .absent
            } else if minutes > Double(config.lateAfterMinutes) {
                status = .late
            } else {
                status = .present
            }
            return ScheduleSlot(day: day, session: s.name, kind: .checkIn, status: status, minutesAfterStart: minutes)
        }
        return nil
    }
}
