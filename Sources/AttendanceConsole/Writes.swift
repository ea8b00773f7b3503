import Attendance
import AttendanceCore
import Foundation

// The console's changes: on the school's server first when the box has one (`school`, postgresql mode: the box's
// store is a copy of the server's and refuses them), else in the store's concerns. The same rules, errors and
// audit entries either way (`SchoolRecords`).

extension SchoolConsole {
    func importRoster(_ roster: Roster, options: RosterImportOptions) async throws -> RosterImportReport {
        if let school { return try await school.importRoster(roster, options: options) }
        return try store.roster.importRoster(roster, options: options)
    }

    func recordConsent(student: String, guardian: String, relation: String, date: LocalDate, childAgreed: Bool)
        async throws -> Consent
    {
        if let school {
            return try await school.recordConsent(
                student: student, guardian: guardian, relation: relation, date: date, scope: Consent.defaultScope,
                childAgreed: childAgreed, source: "console")
        }
        return try store.consent.record(
            student: student, guardian: guardian, relation: relation, date: date, scope: Consent.defaultScope,
            childAgreed: childAgreed, source: "console")
    }

    func revokeConsent(student: String, reason: String?) async throws -> Int {
        if let school { return try await school.revokeConsent(student: student, reason: reason) }
        return try store.consent.revoke(student: student, reason: reason)
    }

    func unenrol(student: String) async throws -> Int {
        if let school { return try await school.unenrol(student: student) }
        return try store.enrolments.remove(student: student)
    }

    func erase(student: String, reason: String?) async throws {
        if let school { return try await school.eraseStudent(student, reason: reason) }
        _ = try store.retention.erase(student: student, reason: reason)
    }

    func excuse(student: String, day: LocalDate, reason: String) async throws -> ExcuseResult {
        if let school { return try await school.excuse(student: student, day: day, reason: reason) }
        return try store.events.excuse(student: student, day: day, reason: reason)
    }

    /// The check-in of the student's first session (the console's correction form).
    func correct(student: String, day: LocalDate, status: AttendanceStatus, reason: String) async throws -> EventChange? {
        if let school {
            return try await school.correct(
                student: student, day: day, session: nil, kind: .checkIn, status: status, reason: reason)
        }
        return try store.events.correct(student: student, day: day, session: nil, kind: .checkIn, status: status, reason: reason)
    }

    func cancelEvent(student: String, day: LocalDate, reason: String) async throws -> EventChange {
        if let school {
            return try await school.cancelEvent(student: student, day: day, session: nil, kind: .checkIn, reason: reason)
        }
        return try store.events.cancelEvent(student: student, day: day, session: nil, kind: .checkIn, reason: reason)
    }

    /// The pending held check-ins: the school's (every gate's journal sends its own there), or this store's.
    func heldCheckIns() async throws -> [HeldRecord] {
        if let school { return try await school.heldCheckIns(state: .pending, classes: nil, day: nil) }
        return try store.reviews.list()
    }

    func heldCheckIn(id: Int64) async throws -> HeldRecord? {
        if let school { return try await school.heldCheckIn(id: id) }
        return try store.reviews.held(id: id)
    }

    func acceptHeld(id: Int64) async throws -> Bool {
        if let school { return try await school.acceptHeld(id: id) }
        return try store.reviews.accept(id: id)
    }

    func rejectHeld(id: Int64, reason: String?) async throws {
        if let school { return try await school.rejectHeld(id: id, reason: reason) }
        try store.reviews.reject(id: id, reason: reason)
    }
}

extension SchoolConsole {
    /// In postgresql mode, the school's records of these days (every gate's, and changes made on other boxes) into this
    /// box's copy before a page or an export reads it. A page shows the copy when the server cannot be reached (logged
    /// once per request); an export (`required`) is refused then, rather than counting one gate's records as the school's.
    func pull(from: LocalDate, to: LocalDate, required: Bool = false) async throws {
        guard let school else { return }
        do { try await school.pullEvents(from: from, to: to) } catch {
            if required { throw error }
            logger.notice("console: the school's records not read from its server; this box's copy shown")
        }
    }
}
