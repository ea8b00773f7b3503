import Foundation

/// What happened to a decided sighting.
public enum DecisionResult: Sendable, Equatable {
    /// Stored (and queued for the sector database).
    case recorded(NewAttendanceEvent)
    /// The student already has this event for this session (one pass, one check-in).
    case alreadyRecorded
    /// Seen again within the cooldown after a record.
    case coolingDown
    /// Not a school day, or outside every session window for the student's class.
    case outsideSchedule
    /// The student is not (or no longer) on the roster.
    case notOnRoster
}

/// Turns "this student passed camera C at time T" into an attendance event, across all cameras:
/// schedule and late rules, cooldown, and exactly one record per student, session and kind
/// (the store's uniqueness makes that hold across restarts too).
public actor AttendanceDecider {
    public let store: AttendanceStore
    public let schedule: SchoolSchedule
    public let schoolCode: String
    public let cooldown: TimeInterval
    private var lastRecorded: [String: Date] = [:]

    public init(store: AttendanceStore, config: AttendanceConfig) {
        self.store = store
        self.schedule = SchoolSchedule(config)
        self.schoolCode = config.school.code
        self.cooldown = TimeInterval(config.schedule.cooldownSeconds)
    }

    public func decide(student: String, distance: Float, at time: Date, camera: String, direction: String) throws -> DecisionResult {
        if let last = lastRecorded[student], time.timeIntervalSince(last) >= 0, time.timeIntervalSince(last) < cooldown {
            return .coolingDown
        }
        // Read fresh each time (decisions are rare): a roster import in another process may have
        // moved or deactivated the student.
        guard let s = try store.student(code: student), s.active else { return .notOnRoster }
        let classCode = s.classCode
        guard let slot = schedule.slot(at: time, classCode: classCode, direction: direction) else { return .outsideSchedule }
        let event = NewAttendanceEvent(studentCode: student, schoolDay: slot.day, session: slot.session, kind: slot.kind,
                                       status: slot.status, occurredAt: time, camera: camera, distance: distance)
        guard try store.recordEvent(event, schoolCode: schoolCode) else { return .alreadyRecorded }
        lastRecorded[student] = time
        return .recorded(event)
    }
}
