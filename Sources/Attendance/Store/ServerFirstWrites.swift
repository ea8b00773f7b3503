import AttendanceCore
import FaceEngine
import Foundation

/// The changes staff make on a gate box (and the school's records they read) that, with `[database] backend = "postgresql"`, are written on the school's
/// server first and then in the box's copy, nothing changed while the server cannot be reached (`SchoolServer`, in
/// AttendancePostgres). The console is handed one on such a box (its own store refuses these changes there:
/// `AttendanceStore.sharedGalleryRefusal`); with SQLite it writes the store's concerns itself. The rules, the errors
/// and the audit entries are the store's, on the server (`SchoolRecords`).
public protocol ServerFirstWrites: Sendable {
    func importRoster(_ roster: Roster, options: RosterImportOptions) async throws -> RosterImportReport
    func recordConsent(
        student: String, guardian: String, relation: String, date: LocalDate, scope: String, childAgreed: Bool,
        source: String
    ) async throws -> Consent
    func revokeConsent(student: String, reason: String?) async throws -> Int
    func unenrol(student: String) async throws -> Int
    /// The `Enroller`'s checks against the school's faces (this box's copy), then the accepted faces on the server.
    func enrol(
        _ enroller: Enroller, student: String, detected: [(source: String, faces: Result<[Face], EnrolmentRejection>)],
        force: Bool
    ) async throws -> [PhotoOutcome]
    /// Erases the student on the server (one audited transaction), then in this box's copy (or at its next refresh).
    func eraseStudent(_ student: String, reason: String?) async throws
    func correct(
        student: String, day: LocalDate, session: String?, kind: EventKind, status: AttendanceStatus, reason: String
    ) async throws -> EventChange?
    func cancelEvent(student: String, day: LocalDate, session: String?, kind: EventKind, reason: String) async throws
        -> EventChange
    func excuse(student: String, day: LocalDate, reason: String) async throws -> ExcuseResult
    func heldCheckIns(state: HoldState?, classes: [String]?, day: LocalDate?) async throws -> [HeldRecord]
    func heldCheckIn(id: Int64) async throws -> HeldRecord?
    func acceptHeld(id: Int64) async throws -> Bool
    func rejectHeld(id: Int64, reason: String?) async throws
    /// The school's events and excuses of these days into this box's journal (every gate's), before a report reads it.
    @discardableResult func pullEvents(from: LocalDate, to: LocalDate) async throws -> Int
}
