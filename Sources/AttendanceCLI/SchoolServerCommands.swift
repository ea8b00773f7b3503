import ArgumentParser
import Attendance
import AttendanceCore
import AttendancePostgres
import FaceEngine
import Foundation

// With `[database] backend = "postgresql"` an enrolment or an erasure made on this box goes to the school's server
// first (`SchoolServer`, AttendancePostgres); these only print.

/// The school's server in postgresql mode (this box's copy refreshed from it first), nil with SQLite; `what` says what
/// did not happen when it cannot be reached ("was imported").
func schoolServer(store: AttendanceStore, config: AttendanceConfig, before what: String) async throws -> SchoolServer? {
    do { return try await SchoolServer.connect(store: store, config: config, before: what) } catch {
        throw failLine("\(error)")
    }
}

/// postgresql mode: the school's records of these days (every gate's) into this box's copy before an export reads it;
/// with the server unreachable the export stops (one gate's records are not the school's). Nothing with SQLite.
func pullSchoolRecords(store: AttendanceStore, config: AttendanceConfig, from: LocalDate, to: LocalDate) async throws {
    guard let school = try await schoolServer(store: store, config: config, before: "was exported") else { return }
    _ = try await serverCall { try await school.pullEvents(from: from, to: to) }
}

/// `storeCall` for a change made on the school's server: its error as the one line every command prints.
func serverCall<T>(_ body: () async throws -> T) async throws -> T {
    do { return try await body() } catch let e as ExitCode { throw e } catch {
        throw failLine("\(error)" + (commandHint(error).map { "\n" + $0 } ?? ""))
    }
}

extension EnrolCommand {
    /// The school's server in postgresql mode (this box's copy refreshed from it first), nil with SQLite.
    func schoolServer(store: AttendanceStore, config: AttendanceConfig) async throws -> SchoolServer? {
        try await AttendanceCLI.schoolServer(store: store, config: config, before: "was enrolled")
    }

    /// Checks the faces and keeps the accepted ones: in this store (SQLite), or on the school's server first.
    func keep(
        _ enroller: Enroller, student: String, detected: [(source: String, faces: Result<[Face], EnrolmentRejection>)],
        school: SchoolServer?
    ) async throws -> [PhotoOutcome] {
        guard let school else { return try enroller.enrol(student: student, detected: detected, force: force) }
        return try await school.enrol(enroller, student: student, detected: detected, force: force)
    }
}

extension StudentCommand.Erase {
    /// postgresql mode: the erasure is made on the school's server and then in this box's copy.
    func eraseOnServer(store: AttendanceStore, config: AttendanceConfig, student: String) async throws {
        let r: SchoolServer.ErasureOutcome
        do {
            let server = SchoolServer(store: store, connector: try PostgresConnector(config: config.database))
            r = try await server.erase(student: student, reason: reason)
        } catch { throw failLine("\(error)") }
        let s = r.server
        print(
            "Erased \(student) on the school's server: \(s.enrolments) enrolled faces, \(s.consents) consent records, "
                + "\(s.events) attendance events, \(s.outbox) queued reports, \(s.excuses) excuses. The audit log records "
                + "the erasure.")
        if let problem = r.copyProblem {
            print("This box's copy is erased at its next refresh (\(problem)); so is every other gate's.")
        } else {
            print("This box's copy: erased. The other gates erase theirs within seconds (at their next refresh).")
            if let problem = r.compactionProblem { warnCompaction(problem) }
        }
    }
}
