import AttendanceCore
import Foundation
import GRDB

/// A confident gate sighting of an enrolled student, waiting for the teacher's approval to join the
/// student's enrolment. Only its embedding is kept (sealed), never an image.
public struct GateSighting: Sendable, Equatable {
    public var id: Int64
    public var student: String
    public var distance: Float
    public var margin: Float
    public var camera: String
    public var seenAt: String
}

extension GateSighting: FetchableRecord {
    enum Columns {
        static let id = Column("id"), student = Column("student_code"), distance = Column("distance")
        static let margin = Column("margin"), camera = Column("camera"), seenAt = Column("seen_at")
    }

    public init(row: Row) {
        self.init(
            id: row[Columns.id], student: row[Columns.student], distance: Float(row[Columns.distance] as Double),
            margin: Float(row[Columns.margin] as Double), camera: row[Columns.camera], seenAt: row[Columns.seenAt])
    }
}

extension EnrolmentRegister {
    /// Keeps the embedding of a decided gate sighting for the teacher to approve: at most one waits per
    /// student (the first is kept), and none for a student whose enrolment is full. Returns whether it was kept.
    @discardableResult
    public func proposeSighting(
        student: String, embedding: [Float], distance: Float, margin: Float, camera: String,
        at time: Date
    ) throws -> Bool {
        let maxPerStudent = store.config.recognition.maxEmbeddingsPerStudent
        let sealed = try store.cipher.seal(embedding, student: student)
        return try store.writer.write { db in
            guard try AttendanceStore.activeConsent(db, student: student) != nil else { return false }
            let enrolled =
                try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM enrolment WHERE student_code = ?", arguments: [student]) ?? 0
            guard enrolled < maxPerStudent else { return false }
            try db.execute(
                sql: """
                    INSERT INTO gate_sighting(student_code, sealed_embedding, distance, margin, camera, seen_at)
                    VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(student_code) DO NOTHING
                    """,
                arguments: [
                    student, sealed, Double(distance), Double(margin.isFinite ? margin : 9), camera, Timestamp.string(time),
                ])
            return db.changesCount > 0
        }
    }

    /// The sightings waiting for approval, by class and student (a class code narrows it).
    public func pendingSightings(classCode: String? = nil) throws -> [GateSighting] {
        let classCode = classCode.map(SchoolClass.normalisedCode)
        return try store.writer.read { db in
            try GateSighting.fetchAll(
                db,
                sql: """
                    SELECT g.id, g.student_code, g.distance, g.margin, g.camera, g.seen_at FROM gate_sighting g
                    JOIN student s ON s.code = g.student_code
                    WHERE (? IS NULL OR s.class_code = ?) ORDER BY s.class_code, g.student_code
                    """, arguments: [classCode, classCode]
            )
        }
    }

    /// A waiting sighting's embedding, opened.
    public func sightingEmbedding(id: Int64) throws -> (sighting: GateSighting, embedding: [Float]) {
        let row = try store.writer.read { db in
            try Row.fetchOne(
                db,
                sql:
                    "SELECT id, student_code, distance, margin, camera, seen_at, sealed_embedding FROM gate_sighting WHERE id = ?",
                arguments: [id])
        }
        guard let row else { throw StoreError.invalid("no gate sighting \(id) is waiting (already approved or rejected?)") }
        let s = GateSighting(row: row)
        return (s, try store.cipher.open(row["sealed_embedding"], student: s.student))
    }

    /// Approval: the sighting joins the student's enrolment, in one transaction with its removal and the audit.
    public func promoteSighting(id: Int64) throws {
        try store.requireLocalGallery()
        let maxPerStudent = store.config.recognition.maxEmbeddingsPerStudent
        try store.writer.write { db in
            guard
                let row = try Row.fetchOne(
                    db, sql: "SELECT student_code, sealed_embedding, camera, distance FROM gate_sighting WHERE id = ?",
                    arguments: [id])
            else {
                throw StoreError.invalid("no gate sighting \(id) is waiting (already approved or rejected?)")
            }
            let student: String = row["student_code"], blob: Data = row["sealed_embedding"]
            let camera: String = row["camera"], distance: Double = row["distance"]
            guard try AttendanceStore.activeConsent(db, student: student) != nil else { throw StoreError.noConsent(student) }
            let existing =
                try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM enrolment WHERE student_code = ?", arguments: [student]) ?? 0
            guard existing < maxPerStudent else {
                throw StoreError.invalid(
                    "student '\(student)' already has \(existing) enrolled faces, the limit (recognition.max_embeddings_per_student)"
                )
            }
            try db.execute(
                sql: """
                    INSERT INTO enrolment(student_code, sealed_embedding, quality, source, created_at, created_by)
                    VALUES (?, ?, ?, ?, ?, ?)
                    """,
                arguments: [
                    student, blob, String(format: "{\"gate_distance\":%.3f}", distance), "gate:" + camera,
                    Timestamp.string(Date()), AttendanceStore.actor,
                ])
            try db.execute(sql: "DELETE FROM gate_sighting WHERE id = ?", arguments: [id])
            try AttendanceStore.bumpGalleryVersion(db)
            try AttendanceStore.audit(
                db, action: "enrol.sighting", student: student, detail: "approved gate sighting; total=\(existing + 1)")
        }
    }

    /// The sighting's embedding was enrolled on the school's server (postgresql mode: `SchoolServer.approveSighting`):
    /// this box's row goes, audited here; the enrolment itself reaches this box's copy by the gallery refresh.
    public func sightingEnrolledOnServer(id: Int64) throws {
        try dropSighting(id: id, action: "enrol.sighting", detail: "approved gate sighting; stored on the school's server")
    }

    /// Deletes a waiting sighting, audited, in one transaction.
    func dropSighting(id: Int64, action: String, detail: String?) throws {
        try store.writer.write { db in
            guard
                let student = try String.fetchOne(db, sql: "SELECT student_code FROM gate_sighting WHERE id = ?", arguments: [id])
            else {
                throw StoreError.invalid("no gate sighting \(id) is waiting (already approved or rejected?)")
            }
            try db.execute(sql: "DELETE FROM gate_sighting WHERE id = ?", arguments: [id])
            try AttendanceStore.audit(db, action: action, student: student, detail: detail)
        }
    }

    /// The quality and source an approved sighting is enrolled with (on either backend).
    public static func sightingProvenance(_ s: GateSighting) -> (quality: String, source: String) {
        (String(format: "{\"gate_distance\":%.3f}", Double(s.distance)), "gate:" + s.camera)
    }

    /// Rejection: the sighting's embedding is deleted.
    public func rejectSighting(id: Int64, reason: String? = nil) throws {
        try dropSighting(id: id, action: "sighting.reject", detail: reason.map { "reason=\($0)" })
    }
}
