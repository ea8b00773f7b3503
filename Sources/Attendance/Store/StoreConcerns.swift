import AttendanceCore
import Foundation

// The store's concerns, each its own type: the roster, consent, enrolments (with the gate's sightings),
// the event ledger (events and their outbox, corrections, excuses), the audit log, retention (erasure,
// purge). They are views over the one `AttendanceStore`, whose single pool is their only way to the
// database: every write method is one transaction that keeps its concern's invariants, and a write that
// spans concerns (an erasure, a roster import that deactivates students) is still one transaction. The
// SQL stays behind these types, so a second backend replaces them, not their callers.

extension AttendanceStore {
    /// Students and classes, and the roster import.
    public var roster: RosterBook { RosterBook(store: self) }
    /// Guardians' consent (and the child's own agreement from age 7).
    public var consent: ConsentRegister { ConsentRegister(store: self) }
    /// Sealed embeddings, the gallery the cameras search, and the gate's sightings awaiting a teacher.
    public var enrolments: EnrolmentRegister { EnrolmentRegister(store: self) }
    /// Attendance events with their outbox rows, unknown faces, corrections and excuses.
    public var events: EventLedger { EventLedger(store: self) }
    /// Check-ins the liveness check held back for a teacher (accept records them, reject drops them).
    public var reviews: ReviewQueue { ReviewQueue(store: self) }
    /// Who did what (append-only).
    public var auditLog: AuditLog { AuditLog(store: self) }
    /// Erasure, retention purges, compaction.
    public var retention: Retention { Retention(store: self) }
    /// The web console's accounts and signed-in sessions.
    public var accounts: ConsoleAccounts { ConsoleAccounts(store: self) }
}

/// Students and classes, and the roster import (`AttendanceStore.roster`).
public struct RosterBook: Sendable {
    let store: AttendanceStore
}

/// Consent records (`AttendanceStore.consent`).
public struct ConsentRegister: Sendable {
    let store: AttendanceStore
}

/// Enrolments and gate sightings (`AttendanceStore.enrolments`).
public struct EnrolmentRegister: Sendable {
    let store: AttendanceStore
}

/// Attendance events and the outbox (`AttendanceStore.events`).
public struct EventLedger: Sendable {
    let store: AttendanceStore
}

/// Held check-ins awaiting a teacher (`AttendanceStore.reviews`).
public struct ReviewQueue: Sendable {
    let store: AttendanceStore
}

/// The audit log (`AttendanceStore.auditLog`).
public struct AuditLog: Sendable {
    let store: AttendanceStore
}

/// Erasure and retention (`AttendanceStore.retention`).
public struct Retention: Sendable {
    let store: AttendanceStore
}

/// Console accounts and sessions (`AttendanceStore.accounts`).
public struct ConsoleAccounts: Sendable {
    let store: AttendanceStore
}
