import ArgumentParser
import Attendance
import AttendanceCore
import AttendancePostgres
import FaceEngine
import Foundation

/// With `[database] backend = "postgresql"`: the school's server, where an enrolment or an erasure made on this box
/// is written first (this box's store is a copy of the school's gallery, refreshed from the server).
struct SchoolServer {
    let store: AttendanceStore
    let connector: PostgresConnector

    /// Brings this box's copy up to the server's, or fails with a one-line message: nothing is changed while the
    /// school's server cannot be reached (a change made only here would be undone by the next refresh).
    func refresh(before what: String) async throws {
        do { try await SchoolGallerySync.refreshOnce(store: store, connector: connector) } catch {
            throw failLine(
                "không kết nối được máy chủ của trường / the school's server cannot be reached: \(problem(error)); "
                    + "nothing \(what). Try again when the server is back (this box's gate keeps recognising "
                    + "students from its copy meanwhile).")
        }
    }

    func problem(_ error: any Error) -> String {
        switch error {
        case let e as StoreError: return e.description
        case let e as PostgresProblem: return e.description
        default: return connector.explain(error).description
        }
    }
}

extension EnrolCommand {
    /// The school's server in postgresql mode (this box's copy refreshed from it first), nil with SQLite.
    func schoolServer(store: AttendanceStore, config: AttendanceConfig) async throws -> SchoolServer? {
        guard config.database.backend == .postgresql else { return nil }
        let connector: PostgresConnector
        do { connector = try PostgresConnector(config: config.database) } catch { throw failLine("\(error)") }
        let server = SchoolServer(store: store, connector: connector)
        try await server.refresh(before: "was enrolled")
        return server
    }

    /// Checks the faces and keeps the accepted ones: in this store (SQLite), or on the school's server first, then
    /// in this box's copy (postgresql; every other gate picks them up within seconds).
    func keep(
        _ enroller: Enroller, student: String, detected: [(source: String, faces: Result<[Face], EnrolmentRejection>)],
        school: SchoolServer?
    ) async throws -> [PhotoOutcome] {
        guard let school else { return try enroller.enrol(student: student, detected: detected, force: force) }
        let (outcomes, accepted) = try enroller.assess(student: student, detected: detected, force: force)
        guard !accepted.isEmpty else { return outcomes }
        do {
            try await school.connector.withConnection { c in
                try await SchoolGallery.enrol(
                    student: student, accepted, store: school.store, on: c)
            }
        } catch let e as StoreError {
            throw e
        } catch {
            throw StoreError.invalid(
                "không lưu được lên máy chủ của trường / not stored on the school's server: \(school.problem(error)); "
                    + "nothing was enrolled")
        }
        // This box's copy now, rather than at the daemon's next refresh (which catches up if this fails).
        _ = try? await SchoolGallerySync.refreshOnce(store: school.store, connector: school.connector)
        return outcomes
    }
}

extension StudentCommand.Erase {
    /// postgresql mode: the erasure is made on the school's server (one audited transaction) and then in this box's
    /// copy; every other gate erases its copy at its next refresh (within seconds while it is connected).
    func eraseOnServer(store: AttendanceStore, config: AttendanceConfig, student: String) async throws {
        let connector: PostgresConnector
        do { connector = try PostgresConnector(config: config.database) } catch { throw failLine("\(error)") }
        let server = SchoolServer(store: store, connector: connector)
        let r: SchoolGallery.Erasure
        do {
            r = try await connector.withConnection { c in
                try await SchoolGallery.erase(
                    student: student, pseudonym: store.pseudonym(of: student), reason: reason, on: c)
            }
        } catch {
            throw failLine(
                "không xoá được trên máy chủ của trường / not erased on the school's server: \(server.problem(error)); "
                    + "nothing was erased")
        }
        print(
            "Erased \(student) on the school's server: \(r.enrolments) enrolled faces, \(r.consents) consent records, "
                + "\(r.events) attendance events, \(r.outbox) queued reports, \(r.excuses) excuses. The audit log records "
                + "the erasure.")
        do {
            let change = try await SchoolGallerySync.refreshOnce(store: store, connector: connector)
            print("This box's copy: erased. The other gates erase theirs within seconds (at their next refresh).")
            if let problem = change?.compaction { warnCompaction(problem) }
        } catch {
            print(
                "This box's copy is erased at its next refresh (\(server.problem(error))); so is every other gate's.")
        }
    }
}
