import AttendanceCore
import Foundation
import GRDB

/// What `erase(student:)` removed.
public struct ErasureReport: Sendable, Equatable, Codable {
    public var student: String
    public var enrolments = 0
    public var consents = 0
    public var events = 0
    public var outbox = 0
    public var excuses = 0
    /// Set when the erasure was committed but the write-ahead log could not be folded back yet (see `compact()`).
    public var compaction: String?

    public init(
        student: String, enrolments: Int = 0, consents: Int = 0, events: Int = 0, outbox: Int = 0, excuses: Int = 0,
        compaction: String? = nil
    ) {
        self.student = student; self.enrolments = enrolments; self.consents = consents; self.events = events
        self.outbox = outbox; self.excuses = excuses; self.compaction = compaction
    }
}

/// What a retention purge removed.
public struct PurgeReport: Sendable, Equatable, Codable {
    public var eventsBefore: String
    public var events = 0
    public var outbox = 0
    public var excuses = 0
    /// Held check-ins (accepted, rejected or never reviewed) of those days.
    public var heldCheckIns = 0
    public var unknownFaces = 0
    public var cropsDeleted = 0
    public var sightings = 0
    /// Events older than the retention period kept because their record has not been delivered.
    public var keptUndelivered = 0
    /// Set when the deletions were committed but the write-ahead log could not be folded back yet.
    public var compaction: String?
}

extension AttendanceStore {

    func purgeEvents(before day: LocalDate) throws -> PurgeReport {
        let report = try writer.write { db -> PurgeReport in
            var r = PurgeReport(eventsBefore: day.description)
            let d = day.description
            let undelivered = "SELECT record_id FROM outbox WHERE state <> 'delivered'"
            r.keptUndelivered =
                try Int.fetchOne(
                    db,
                    sql: """
                        SELECT COUNT(*) FROM attendance_event WHERE school_day < ? AND id IN (\(undelivered))
                        """, arguments: [d]) ?? 0
            try db.execute(
                sql: """
                    DELETE FROM outbox
                    WHERE state = 'delivered' AND record_id NOT IN (\(undelivered))
                      AND (record_id IN (SELECT id FROM attendance_event WHERE school_day < ?1)
                           OR json_extract(payload, '$.school_day') < ?1)
                    """, arguments: [d])
            r.outbox = db.changesCount
            try db.execute(
                sql: "DELETE FROM attendance_event WHERE school_day < ? AND id NOT IN (\(undelivered))", arguments: [d])
            r.events = db.changesCount
            try db.execute(sql: "DELETE FROM excuse WHERE school_day < ?", arguments: [d])
            r.excuses = db.changesCount
            try db.execute(sql: "DELETE FROM review_hold WHERE school_day < ?", arguments: [d])
            r.heldCheckIns = db.changesCount
            if r.events + r.outbox + r.excuses + r.heldCheckIns > 0 {
                try Self.audit(
                    db, action: "purge.events", subject: nil,
                    detail:
                        "before=\(d); events=\(r.events); outbox=\(r.outbox); excuses=\(r.excuses); held=\(r.heldCheckIns)")
            }
            return r
        }
        var done = report
        if report.events > 0 {
            do { try retention.compact() } catch { done.compaction = "\(error)" }
        }
        return done
    }

}

extension Retention {
    /// Removes every trace of the student (roster row, consent, embeddings, events, queued records,
    /// excuses, the audit alias), leaving one audit entry that records the erasure itself.
    /// Earlier audit entries name the student only by an alias that no longer resolves.
    ///
    /// Records already delivered to the sector database are outside this database; say so to whoever asked.
    @discardableResult
    public func erase(student code: String, reason: String? = nil) throws -> ErasureReport {
        try store.requireLocalGallery()
        var report = try store.writer.write { db -> ErasureReport in
            guard try AttendanceStore.student(db, code: code) != nil else { throw StoreError.unknownStudent(code) }
            var r = ErasureReport(student: code)
            func count(_ sql: String) throws -> Int { try Int.fetchOne(db, sql: sql, arguments: [code]) ?? 0 }
            r.enrolments = try count("SELECT COUNT(*) FROM enrolment WHERE student_code = ?")
            r.consents = try count("SELECT COUNT(*) FROM consent WHERE student_code = ?")
            r.events = try count("SELECT COUNT(*) FROM attendance_event WHERE student_code = ?")
            r.excuses = try count("SELECT COUNT(*) FROM excuse WHERE student_code = ?")
            try db.execute(
                sql: """
                    DELETE FROM outbox
                    WHERE record_id IN (SELECT id FROM attendance_event WHERE student_code = ?1)
                       OR json_extract(payload, '$.student_code') = ?1
                    """, arguments: [code])
            r.outbox = db.changesCount
            // ON DELETE CASCADE takes consent, enrolment, attendance_event, excuse, review_hold and student_alias.
            try db.execute(sql: "DELETE FROM student WHERE code = ?", arguments: [code])
            try AttendanceStore.bumpGalleryVersion(db)
            let pseudonym = store.pseudonymKey.pseudonym(of: code)
            try db.execute(
                sql:
                    "INSERT INTO erased_student(pseudonym, erased_at) VALUES (?, ?) ON CONFLICT(pseudonym) DO UPDATE SET erased_at = excluded.erased_at",
                arguments: [pseudonym, Timestamp.string(store.now())])
            // The audit names the erased student by the keyed hash: it proves which code was erased to whoever
            // holds the code and the database, and tells nobody else anything.
            try AttendanceStore.audit(
                db, action: "student.erase", subject: pseudonym,
                detail:
                    "enrolments=\(r.enrolments); consents=\(r.consents); events=\(r.events); outbox=\(r.outbox); excuses=\(r.excuses)"
                    + (reason.map { "; reason=\($0.normalizedText)" } ?? ""))
            return r
        }
        do { try compact() } catch { report.compaction = "\(error)" }
        return report
    }

    /// Deletes attendance events of school days before `day`, their delivered outbox rows and excuses.
    /// An event whose record has not reached the sector database yet (pending or parked in the outbox)
    /// stays, with its outbox rows, however old: retention must never lose a record. Returns how many events went.
    public func purgeEvents(olderThan day: LocalDate) throws -> Int {
        try store.purgeEvents(before: day).events
    }

    /// The daily retention job: events older than `privacy.retentionDays`, unknown-face crops older
    /// than `privacy.keepUnknownCropsDays` (all of them when it is 0), unknown-face counts older than
    /// the event retention, gate sightings nobody reviewed within `privacy.keepSightingsDays`.
    ///
    /// Events are judged against the earlier of `now` and the clock's high-water mark, so a clock that
    /// jumped ahead cannot age the records it has not even dated yet.
    @discardableResult
    public func purge(now: Date? = nil) throws -> PurgeReport {
        let config = store.config
        let now = now ?? store.now()
        let zone = config.school.timeZone
        let eventClock = min(now, try store.clockHighWater() ?? now)
        let today = LocalDate(eventClock, in: zone)
        var report = try store.purgeEvents(before: today.adding(days: -config.privacy.retentionDays))

        let cropCutoff = Timestamp.string(now.addingTimeInterval(-Double(config.privacy.keepUnknownCropsDays) * 86_400))
        let countCutoff = Timestamp.string(now.addingTimeInterval(-Double(config.privacy.retentionDays) * 86_400))
        let crops = try store.writer.read { db in
            try Row.fetchAll(
                db, sql: "SELECT id, crop_path FROM unknown_face WHERE crop_path IS NOT NULL AND seen_at < ?",
                arguments: [cropCutoff]
            ).map { ($0["id"] as Int64, $0["crop_path"] as String) }
        }
        for (_, path) in crops {
            if unlink(path) == 0 { report.cropsDeleted += 1 }
        }
        try store.writer.write { db in
            for (id, _) in crops {
                try db.execute(sql: "UPDATE unknown_face SET crop_path = NULL WHERE id = ?", arguments: [id])
            }
            try db.execute(sql: "DELETE FROM unknown_face WHERE seen_at < ?", arguments: [countCutoff])
            report.unknownFaces = db.changesCount
            if report.cropsDeleted + report.unknownFaces > 0 {
                try AttendanceStore.audit(
                    db, action: "purge.unknown_faces", subject: nil,
                    detail: "crops=\(report.cropsDeleted); rows=\(report.unknownFaces)")
            }
            let sightingCutoff = Timestamp.string(now.addingTimeInterval(-Double(config.privacy.keepSightingsDays) * 86_400))
            try db.execute(sql: "DELETE FROM gate_sighting WHERE seen_at < ?", arguments: [sightingCutoff])
            report.sightings = db.changesCount
            if report.sightings > 0 {
                try AttendanceStore.audit(db, action: "purge.sightings", subject: nil, detail: "rows=\(report.sightings)")
            }
        }
        return report
    }

    /// Moves the WAL back into the database and truncates it, so deleted pages (zeroed in the database
    /// file by `secure_delete`) do not linger as old frames in the -wal file. A daemon reading at the same
    /// moment can keep the WAL from being truncated: that is an error for the caller to report (the daemon
    /// checkpoints again on its next gallery change, which the erasure itself caused).
    public func compact() throws {
        do {
            try store.writer.writeWithoutTransaction { db in
                // A reader in another process makes the checkpoint wait; never hold the writer (and the
                // gate's records) for the whole 15 s busy timeout: 2 s, then report.
                try db.execute(sql: "PRAGMA busy_timeout = 2000")
                defer { try? db.execute(sql: "PRAGMA busy_timeout = 15000") }
                _ = try db.checkpoint(.truncate)
            }
        } catch let error as DatabaseError {
            throw StoreError.io(
                path: store.path + "-wal",
                reason: "could not fold the write-ahead log back into the database "
                    + "(\(error.message ?? "\(error)")): deleted data stays in the -wal file until the next checkpoint; "
                    + "run the command again, or stop the daemon and retry")
        }
    }
}
