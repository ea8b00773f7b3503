import AttendanceCore
import CClock
import Foundation
import GRDB

/// Whether the system clock can date a record. A gate box's clock goes wrong in two ways: a dead RTC
/// battery puts it back (to 1970, or to the image's build date) until NTP answers, and a bad time source
/// can put it years ahead. A record dated by such a clock lands on the wrong school day, and a retention
/// pass run by it deletes what it should keep. The store keeps a high-water mark: the latest clock time
/// at which it recorded; a clock before it, before this release, or implausibly far after it is refused.
public struct ClockPolicy: Sendable, Equatable {
    /// No record can be dated before this software was released.
    public var notBefore: Date
    /// How far behind the high-water mark the clock may be (NTP steps, a second camera's frame).
    public var backwardTolerance: TimeInterval
    /// How far after the high-water mark a record may be. Longer than the summer holidays, so a box that
    /// was switched off for them starts recording again on its own; a longer gap needs `attendance clock accept`.
    public var maximumGap: TimeInterval

    public init(
        notBefore: Date = ClockPolicy.releaseDate, backwardTolerance: TimeInterval = 300,
        maximumGap: TimeInterval = 200 * 86_400
    ) {
        self.notBefore = notBefore; self.backwardTolerance = backwardTolerance; self.maximumGap = maximumGap
    }

    /// This release's date (UTC midnight): a clock before it is certainly wrong.
    public static let releaseDate = Timestamp.date("2026-12-01T00:00:00.000Z")!

    /// Why `now` cannot date a record, given the high-water mark; nil when it can.
    public func problem(now: Date, highWater: Date?) -> ClockProblem? {
        if now < notBefore { return .beforeRelease(now: now, release: notBefore) }
        guard let highWater else { return nil }
        if now < highWater.addingTimeInterval(-backwardTolerance) { return .behindHighWater(now: now, highWater: highWater) }
        if now > highWater.addingTimeInterval(maximumGap) { return .farAhead(now: now, highWater: highWater) }
        return nil
    }
}

/// Why the clock was not trusted. The text is for the technician reading the journal or /health.
public enum ClockProblem: Error, Sendable, Equatable, CustomStringConvertible {
    case beforeRelease(now: Date, release: Date)
    case behindHighWater(now: Date, highWater: Date)
    case farAhead(now: Date, highWater: Date)

    public var description: String {
        switch self {
        case let .beforeRelease(now, release):
            return
                "the system clock says \(Timestamp.string(now)), before this software's release (\(Timestamp.string(release))): "
                + "it is wrong (a dead RTC battery?). Nothing is recorded until it is set: check `timedatectl` and NTP."
        case let .behindHighWater(now, highWater):
            return
                "the system clock says \(Timestamp.string(now)), but this database already recorded at \(Timestamp.string(highWater)): "
                + "the clock went back. Nothing is recorded until it is right again: check `timedatectl` and NTP. If the clock is "
                + "right now and the earlier time was the wrong one (a clock that ran ahead), run `attendance clock accept`."
        case let .farAhead(now, highWater):
            let days = Int(now.timeIntervalSince(highWater) / 86_400)
            return "the system clock says \(Timestamp.string(now)), \(days) days after this database last recorded "
                + "(\(Timestamp.string(highWater))): a jump that large is more likely a wrong clock than a long break. "
                + "Nothing is recorded; if the clock is right, run `attendance clock accept`."
        }
    }
}

extension AttendanceStore {
    /// The latest clock time at which this database recorded an event (nil: never).
    public func clockHighWater() throws -> Date? {
        try writer.read { db in try Self.highWater(db) }
    }

    static func highWater(_ db: Database) throws -> Date? {
        try String.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'clock_high_water'").flatMap(Timestamp.date)
    }

    /// Why the clock cannot date a record now (nil: it can). Cheap: one read.
    public func clockProblem() throws -> ClockProblem? {
        clockPolicy.problem(now: now(), highWater: try clockHighWater())
    }

    /// Inside a recording transaction: refuses an untrusted clock, else moves the mark forward.
    static func checkAndAdvanceClock(_ db: Database, now: Date, policy: ClockPolicy) throws {
        if let problem = policy.problem(now: now, highWater: try highWater(db)) { throw problem }
        try db.execute(
            sql: """
                INSERT INTO meta(key, value) VALUES ('clock_high_water', ?1)
                ON CONFLICT(key) DO UPDATE SET value = max(value, excluded.value)
                """, arguments: [Timestamp.string(now)])
    }

    /// The admin's word that the clock is right (`attendance clock accept`): the mark moves to now, forward
    /// after a long gap, or back when a clock that ran ahead dated a record. Refuses a clock before the
    /// release: that is never right.
    public func acceptClock() throws {
        let now = now()
        try writer.write { db in
            let old = try Self.highWater(db)
            if case let problem? = clockPolicy.problem(now: now, highWater: old), case .beforeRelease = problem { throw problem }
            try db.execute(
                sql: """
                    INSERT INTO meta(key, value) VALUES ('clock_high_water', ?1)
                    ON CONFLICT(key) DO UPDATE SET value = excluded.value
                    """, arguments: [Timestamp.string(now)])
            try Self.audit(
                db, action: "clock.accept", subject: nil,
                detail: "high-water mark \(old.map(Timestamp.string) ?? "none") -> \(Timestamp.string(now))")
        }
    }
}

/// The kernel's view of the clock: whether NTP (or chrony, or timesyncd) has synchronised it.
public enum KernelClock {
    /// False while the kernel's STA_UNSYNC flag is set (`adjtimex`): nothing has disciplined the clock
    /// since boot, so it is whatever the RTC said. A box without network time stays unsynchronised.
    public static func isSynchronised() -> Bool {
        cclock_clock_synchronised() == 1
    }
}
