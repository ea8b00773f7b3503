import AttendanceCore
import Foundation
import GRDB

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
    /// The student's consent was revoked (or never recorded): never recorded, even if the gallery still
    /// held their face for the seconds before it reloads.
    case noConsent
    /// Decided, but the store refused the write (disk full, database locked): held in memory and
    /// written as soon as the store accepts it again (`AttendanceDecider.retryUnstored`).
    case queued(NewAttendanceEvent)
    /// The system clock cannot be trusted to date it (see `ClockPolicy`): not recorded.
    case clockUntrusted(ClockProblem)
    /// The face did not look real (`recognition.liveness = "flag"`): held as *needs review* for the homeroom
    /// teacher (`store.reviews`), not present until accepted.
    case heldForReview(NewAttendanceEvent, reason: HoldReason)
    /// The same student's check-in for this session is already held for review.
    case alreadyHeld
    /// The face did not look real (`recognition.liveness = "enforce"`): nothing recorded, only counted.
    case refusedAsSpoof(reason: HoldReason)
}

/// Turns "this student passed camera C at time T" into an attendance event, across all cameras:
/// schedule and late rules, cooldown, and exactly one record per student, session and kind
/// (the store's uniqueness makes that hold across restarts too).
public actor AttendanceDecider {
    public let store: AttendanceStore
    public let schedule: SchoolSchedule
    public let cooldown: TimeInterval
    private var lastRecorded: [String: Date] = [:]

    /// The schedule and cooldown are the store's config (the one the records' ids and excuses follow).
    public init(store: AttendanceStore, unstoredCapacity: Int = 10_000) {
        self.unstoredCapacity = unstoredCapacity
        self.store = store
        self.schedule = SchoolSchedule(store.config)
        self.cooldown = TimeInterval(store.config.schedule.cooldownSeconds)
        self.livenessMode = store.config.recognition.liveness
    }

    /// `recognition.liveness` of the store's config: the one mode the gate's pipelines and decisions follow.
    public nonisolated let livenessMode: AttendanceConfig.LivenessMode

    /// Decided records the store refused (disk full, locked), oldest first; bounded.
    private var unstored: [NewAttendanceEvent] = []
    /// How many decided records the queue can hold; beyond it the oldest are dropped (and counted).
    public let unstoredCapacity: Int
    public private(set) var storeFailures = 0
    public private(set) var droppedRecords = 0
    /// The store's last write error, nil once a write succeeded again.
    public private(set) var storeError: String?

    /// `liveness`: the track's verdict (`RecognitionRules.verdict(meanReal:)`); what a face that did not look real
    /// becomes is decided here, by `recognition.liveness`: held for review (flag), refused (enforce), or recorded (off).
    public func decide(
        student: String, distance: Float, at time: Date, camera: String, direction: String,
        liveness: LivenessVerdict = .real
    ) throws -> DecisionResult {
        if let last = lastRecorded[student], time.timeIntervalSince(last) >= 0, time.timeIntervalSince(last) < cooldown {
            return .coolingDown
        }
        // Read fresh each time (decisions are rare): a roster import or a consent revocation in another
        // process takes effect at once, before the gallery reloads.
        guard let s = try store.roster.student(code: student), s.active else { return .notOnRoster }
        guard try store.consent.isActive(student: student) else { return .noConsent }
        let classCode = s.classCode
        guard let slot = schedule.slot(at: time, classCode: classCode, direction: direction) else { return .outsideSchedule }
        let event = NewAttendanceEvent(
            studentCode: student, schoolDay: slot.day, session: slot.session, kind: slot.kind,
            status: slot.status, occurredAt: time, camera: camera, distance: distance)
        if unstored.contains(where: { $0.sameRecord(as: event) }) { return .alreadyRecorded }
        if let reason = holdReason(liveness) {
            // Not attendance, so no cooldown: the student's own pass a minute later is recorded as usual.
            if livenessMode == .enforce { return .refusedAsSpoof(reason: reason) }
            let score: Float?
            if case .spoof(let s) = liveness { score = s } else { score = nil }
            do {
                switch try store.reviews.hold(event, liveness: score, reason: reason) {
                case .held: return .heldForReview(event, reason: reason)
                case .alreadyHeld: return .alreadyHeld
                case .alreadyRecorded: return .alreadyRecorded
                }
            } catch let problem as ClockProblem {
                return .clockUntrusted(problem)
            }
        }
        if !unstored.isEmpty {
            // The store is refusing writes: join the queue rather than wait out another busy timeout per face
            // (a group at the gate would hold the frame past the watchdog); `retryUnstored` writes them in order.
            return hold(event, student: student, at: time)
        }
        do {
            guard try store.events.record(event) else { return .alreadyRecorded }
            storeError = nil
        } catch let problem as ClockProblem {
            return .clockUntrusted(problem)
        } catch StoreError.unknownStudent {
            return .notOnRoster // erased between the read above and the write
        } catch let error as DatabaseError {
            // The store refuses writes (SQLITE_FULL, BUSY, IOERR, READONLY): keep the decision, retry later.
            storeFailures += 1
            storeError = "\(error)"
            return hold(event, student: student, at: time)
        }
        lastRecorded[student] = time
        return .recorded(event)
    }

    /// Why a track with this verdict is not recorded (nil: it is).
    private func holdReason(_ verdict: LivenessVerdict) -> HoldReason? {
        guard livenessMode != .off else { return nil }
        switch verdict {
        case .real: return nil
        case .spoof: return .spoof
        case .notCheckable: return .notCheckable
        }
    }

    private func hold(_ event: NewAttendanceEvent, student: String, at time: Date) -> DecisionResult {
        unstored.append(event)
        if unstored.count > unstoredCapacity {
            unstored.removeFirst(unstored.count - unstoredCapacity)
            droppedRecords += 1
        }
        lastRecorded[student] = time
        return .queued(event)
    }

    /// Writes the held records, oldest first, until the store refuses again. Returns the ones stored now
    /// (a record the store already had, from another process say, is simply dropped from the queue).
    public func retryUnstored() -> [NewAttendanceEvent] {
        var stored: [NewAttendanceEvent] = []
        while let event = unstored.first {
            do {
                if try store.events.record(event) { stored.append(event) }
                storeError = nil
                unstored.removeFirst()
            } catch let error as DatabaseError {
                storeFailures += 1
                storeError = "\(error)"
                break
            } catch is ClockProblem {
                // The record was dated while the clock was right; keep it until the clock is right again.
                break
            } catch {
                // Not the store's refusal (the student was erased meanwhile): drop it (counted in droppedRecords, shown on /health).
                storeError = nil
                unstored.removeFirst()
                droppedRecords += 1
            }
        }
        return stored
    }

    /// The decided records not stored yet.
    public var unstoredCount: Int { unstored.count }
}

extension NewAttendanceEvent {
    /// The same student, day, session and kind: the store keeps one of these.
    func sameRecord(as other: NewAttendanceEvent) -> Bool {
        studentCode == other.studentCode && schoolDay == other.schoolDay && session == other.session && kind == other.kind
    }
}
