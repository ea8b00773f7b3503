import Attendance
import AttendanceCore
import FaceEngine
import Foundation

/// With `[database] backend = "postgresql"`: the school's server, where an enrolment or an erasure made on a gate box
/// is written first (the box's store is a copy of the school's gallery, refreshed from the server). Nothing is
/// changed while the server cannot be reached: a change made only on the box would be undone by its next refresh.
public struct SchoolServer: ServerFirstWrites {
    public let store: AttendanceStore
    public let connector: PostgresConnector

    /// The school's server for this config with the box's copy brought up to it, or nil with SQLite. Throws
    /// (changing nothing) when the server cannot be reached; `what` says what did not happen ("was enrolled").
    public static func connect(store: AttendanceStore, config: AttendanceConfig, before what: String) async throws
        -> SchoolServer?
    {
        guard config.database.backend == .postgresql else { return nil }
        let server = SchoolServer(store: store, connector: try PostgresConnector(config: config.database))
        try await server.refresh(before: what)
        return server
    }

    /// The school's server for this config without a refresh first (the console: each change refreshes the copy
    /// after it, and the daemon's sync keeps it current), or nil with SQLite. Throws only on a wrong `[database]`.
    public static func make(store: AttendanceStore, config: AttendanceConfig) throws -> SchoolServer? {
        guard config.database.backend == .postgresql else { return nil }
        return SchoolServer(store: store, connector: try PostgresConnector(config: config.database))
    }

    public init(store: AttendanceStore, connector: PostgresConnector) {
        self.store = store
        self.connector = connector
    }

    /// Brings this box's copy up to the server's, or throws a one-line reason that nothing `what`.
    public func refresh(before what: String) async throws {
        do { try await SchoolGallerySync.refreshOnce(store: store, connector: connector) } catch {
            throw StoreError.invalid(
                "không kết nối được máy chủ của trường / the school's server cannot be reached: \(problem(error)); "
                    + "nothing \(what). Try again when the server is back (this box's gate keeps recognising "
                    + "students from its copy meanwhile).")
        }
    }

    /// Checks the faces against the whole school (the `Enroller`'s gate) and stores the accepted ones on the server,
    /// then in this box's copy; every other gate picks them up within seconds.
    public func enrol(
        _ enroller: Enroller, student: String, detected: [(source: String, faces: Result<[Face], EnrolmentRejection>)],
        force: Bool
    ) async throws -> [PhotoOutcome] {
        let (outcomes, accepted) = try enroller.assess(student: student, detected: detected, force: force)
        guard !accepted.isEmpty else { return outcomes }
        _ = try await write("nothing was enrolled") { try await records.enrol(student: student, accepted) }
        await refreshCopy()
        return outcomes
    }

    /// The school's records on the server (`PostgresSchoolRecords`), sealed and pseudonymised with this box's keys.
    public var records: PostgresSchoolRecords { PostgresSchoolRecords(connector: connector, box: store) }

    /// A roster import on the server (one transaction; a dry run changes nothing), then this box's copy.
    public func importRoster(_ roster: Roster, options: RosterImportOptions) async throws -> RosterImportReport {
        let r = try await write("nothing was imported") { try await records.importRoster(roster, options: options) }
        if !options.dryRun { await refreshCopy() }
        return r
    }

    /// A guardian's consent recorded on the server (the child's own from age 7), then in this box's copy.
    public func recordConsent(
        student: String, guardian: String, relation: String, date: LocalDate, scope: String, childAgreed: Bool,
        source: String = "cli"
    ) async throws -> Consent {
        let c = try await write("no consent was recorded") {
            try await records.recordConsent(
                student: student, guardian: guardian, relation: relation, date: date, scope: scope, childAgreed: childAgreed,
                source: source)
        }
        await refreshCopy()
        return c
    }

    /// A consent revoked on the server (the student's faces deleted there in the same transaction), then in this box's
    /// copy; every other gate stops recognising the student at its next refresh. Returns how many faces went.
    public func revokeConsent(student: String, reason: String?) async throws -> Int {
        let n = try await write("nothing was revoked") { try await records.revokeConsent(student: student, reason: reason) }
        await refreshCopy()
        return n
    }

    /// A student's faces deleted on the server (consent stays), then in this box's copy. Returns how many.
    public func unenrol(student: String) async throws -> Int {
        let n = try await write("nothing was deleted") { try await records.unenrol(student: student) }
        await refreshCopy()
        return n
    }

    /// A gate sighting a teacher approved: the same identity checks as on a one-box school (`Enroller.assessSighting`,
    /// against this box's copy of the school's faces), then its embedding enrolled on the server (sealed, audited; the
    /// student active with consent, within the limit), then this box's sighting row resolved and its copy refreshed.
    /// Returns why not (nothing changed), or nil when it was added.
    public func approveSighting(_ enroller: Enroller, id: Int64, force: Bool) async throws -> EnrolmentRejection? {
        let (sighting, embedding, problem) = try enroller.assessSighting(id: id, force: force)
        if let problem { return problem }
        let (quality, source) = EnrolmentRegister.sightingProvenance(sighting)
        _ = try await write("nothing was enrolled") {
            try await records.enrol(student: sighting.student, [(embedding, quality, source)])
        }
        try store.enrolments.sightingEnrolledOnServer(id: id)
        await refreshCopy()
        return nil
    }

    // MARK: corrections, excuses and the review queue

    /// A correction made on the school's server (one audited transaction: the event's version goes up there, so it
    /// wins over any gate's), then this box's journal takes the server's events of that student and day.
    public func correct(
        student: String, day: LocalDate, session: String?, kind: EventKind, status: AttendanceStatus, reason: String
    ) async throws -> EventChange? {
        let change = try await write("nothing was corrected") {
            try await records.correct(
                student: student, day: day, session: session, kind: kind, status: status, reason: reason, now: store.now())
        }
        await refreshEvents(student: student, day: day)
        return change
    }

    /// A wrong recognition withdrawn on the school's server (a CANCEL with a higher version), then this box's journal.
    public func cancelEvent(
        student: String, day: LocalDate, session: String?, kind: EventKind, reason: String
    ) async throws -> EventChange {
        let change = try await write("nothing was cancelled") {
            try await records.cancelEvent(
                student: student, day: day, session: session, kind: kind, reason: reason, now: store.now())
        }
        await refreshEvents(student: student, day: day)
        return change
    }

    /// An excuse recorded on the school's server (the ended sessions excused there), then this box's journal.
    public func excuse(student: String, day: LocalDate, reason: String) async throws -> ExcuseResult {
        let r = try await write("nothing was excused") {
            try await records.excuse(student: student, day: day, reason: reason, now: store.now())
        }
        await refreshEvents(student: student, day: day)
        return r
    }

    /// One of the school's held check-ins (nil: no such id).
    public func heldCheckIn(id: Int64) async throws -> HeldRecord? {
        try await read("the held check-in") { try await records.heldCheckIn(id: id) }
    }

    /// The school's held check-ins (every gate's journal sends its own there).
    public func heldCheckIns(state: HoldState?, classes: [String]?, day: LocalDate?) async throws -> [HeldRecord] {
        try await read("the held check-ins") { try await records.heldCheckIns(state: state, classes: classes, day: day) }
    }

    /// A teacher's acceptance on the school's server (recorded there as the gate decided it, the clock checked), then
    /// this box's journal and its own hold of that check-in, if it made one. False: already recorded meanwhile.
    public func acceptHeld(id: Int64) async throws -> Bool {
        let recorded = try await write("nothing was recorded") { try await records.acceptHeld(id: id) }
        await refreshHold(id: id)
        return recorded
    }

    /// A teacher's rejection on the school's server, then this box's own hold of that check-in, if any.
    public func rejectHeld(id: Int64, reason: String?) async throws {
        try await write("nothing was rejected") { try await records.rejectHeld(id: id, reason: reason) }
        await refreshHold(id: id)
    }

    /// The school's events and excuses of the days `from`...`to` into this box's journal (every gate's records, and
    /// the changes made on other boxes, this box's own held check-ins decided elsewhere among them), so that its reports, exports and console pages show the whole school. Throws
    /// a one-line bilingual reason, changing nothing, when the server cannot be reached. Returns the events written.
    @discardableResult
    public func pullEvents(from: LocalDate, to: LocalDate) async throws -> Int {
        do {
            let (events, excuses, decided) = try await (
                records.journalRecords(from: from, to: to), records.excuses(from: from, to: to),
                records.decidedHolds(from: from, to: to)
            )
            // This box's own holds a teacher decided on another box are closed here too (the menu's badge).
            for held in decided { try store.reviews.applyDecision(of: held) }
            return try store.events.applyFromServer(events, excuses: excuses)
        } catch let e as StoreError { throw e } catch {
            throw StoreError.invalid(
                "không đọc được dữ liệu điểm danh từ máy chủ của trường / the school's attendance could not be read from "
                    + "its server: \(problem(error)); this box alone has only its own gate's records")
        }
    }

    /// This box's journal now: the server's events and excuse of the student and day (the daemon's journal sender
    /// never sends an older version back). A failure leaves the journal as it was; the server keeps the change.
    func refreshEvents(student: String, day: LocalDate) async {
        do {
            let (events, excuses) = try await (
                records.journalRecords(student: student, day: day), records.excuses(day: day, student: student)
            )
            try store.events.applyFromServer(events, excuses: excuses)
        } catch {
            SchoolGallery.logger.notice("this box's journal not refreshed after a change on the server: \(problem(error))")
        }
    }

    func refreshHold(id: Int64) async {
        do {
            guard let held = try await records.heldCheckIn(id: id) else { return }
            await refreshEvents(student: held.event.studentCode, day: held.event.schoolDay)
            try store.reviews.applyDecision(of: held)
        } catch {
            SchoolGallery.logger.notice("this box's review queue not refreshed after a decision: \(problem(error))")
        }
    }

    /// A read of `what` on the server; its failure as one bilingual line.
    func read<R: Sendable>(_ what: String, _ body: () async throws -> R) async throws -> R {
        do { return try await body() } catch let e as StoreError { throw e } catch {
            throw StoreError.invalid(
                "không đọc được từ máy chủ của trường / \(what) could not be read from the school's server: \(problem(error))")
        }
    }

    /// `body` on the server; the rules' refusals (`StoreError`, `ClockProblem`) as they are, anything else as one
    /// bilingual line saying that `nothing` happened.
    func write<R: Sendable>(_ nothing: String, _ body: () async throws -> R) async throws -> R {
        do { return try await body() } catch let e as StoreError { throw e } catch let e as ClockProblem { throw e } catch {
            throw StoreError.invalid(
                "không lưu được lên máy chủ của trường / not stored on the school's server: \(problem(error)); \(nothing)")
        }
    }

    /// This box's copy now, rather than at the daemon's next refresh (which catches up if this fails).
    func refreshCopy() async {
        _ = try? await SchoolGallerySync.refreshOnce(store: store, connector: connector)
    }

    /// What an erasure on the server did, and what became of this box's copy.
    public struct ErasureOutcome: Sendable {
        public var server: SchoolGallery.Erasure
        /// nil: this box's copy is erased too; else why it waits for the next refresh.
        public var copyProblem: String?
        /// The copy was erased but its write-ahead log could not be folded back yet (see `Retention.compact`).
        public var compactionProblem: String?
    }

    /// Erases the student on the school's server (one audited transaction), then in this box's copy; every other gate
    /// erases its copy at its next refresh (within seconds while connected). Throws, erasing nothing, when the server
    /// refuses or cannot be reached.
    public func erase(student: String, reason: String?) async throws -> ErasureOutcome {
        let r: SchoolGallery.Erasure
        do {
            r = try await connector.withConnection { c in
                try await SchoolGallery.useSchoolPseudonymKey(store, on: c)
                return try await SchoolGallery.erase(
                    student: student, pseudonym: store.pseudonym(of: student), reason: reason, on: c)
            }
        } catch {
            throw StoreError.invalid(
                "không xoá được trên máy chủ của trường / not erased on the school's server: \(problem(error)); "
                    + "nothing was erased")
        }
        do {
            let change = try await SchoolGallerySync.refreshOnce(store: store, connector: connector)
            return ErasureOutcome(server: r, copyProblem: nil, compactionProblem: change?.compaction)
        } catch {
            return ErasureOutcome(server: r, copyProblem: problem(error), compactionProblem: nil)
        }
    }

    /// `erase`, for callers that need only whether it happened (the console).
    public func eraseStudent(_ student: String, reason: String?) async throws {
        _ = try await erase(student: student, reason: reason)
    }

    func problem(_ error: any Error) -> String {
        switch error {
        case let e as StoreError: return e.description
        case let e as PostgresProblem: return e.description
        default: return connector.explain(error).description
        }
    }
}
