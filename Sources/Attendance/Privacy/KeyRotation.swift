import AttendanceCore
import Foundation
import GRDB

/// What `rotateKey()` re-sealed.
public struct KeyRotationReport: Sendable, Equatable, Codable {
    public var enrolments = 0
    public var sightings = 0
    /// Rows that did not open with the old key either (damaged): left as they were, still unreadable.
    public var unreadable = 0
}

extension AttendanceStore {
    /// The key file's name while a rotation is under way.
    var pendingKeyFile: String { keyFile + ".new" }

    /// Replaces the embedding key: a new random key, every sealed embedding and gate sighting re-sealed
    /// under it in one transaction, then the key file replaced. Stop the daemon first (it holds the old key).
    ///
    /// Crash-safe in every order: the new key is on disk (`<key_file>.new`, 0600, fsync) before the
    /// transaction commits, and opening the database finishes a rotation whose rename did not happen.
    @discardableResult
    public func rotateKey() throws -> KeyRotationReport {
        let newBytes = EmbeddingCipher.randomKey()
        let newCipher = try EmbeddingCipher(keyBytes: newBytes)
        unlink(pendingKeyFile)
        guard try FilePermissions.createPrivate(pendingKeyFile, contents: newBytes) else {
            throw StoreError.io(path: pendingKeyFile, reason: "exists: another rotation is running?")
        }
        try FilePermissions.sync(pendingKeyFile)
        let report: KeyRotationReport
        do {
            report = try dbPool.write { db -> KeyRotationReport in
                var r = KeyRotationReport()
                for table in ["enrolment", "gate_sighting"] {
                    let rows = try Row.fetchAll(db, sql: "SELECT id, student_code, sealed_embedding FROM \(table)")
                    for row in rows {
                        let student: String = row[1]
                        guard let plain = try? cipher.open(row[2], student: student) else { r.unreadable += 1; continue }
                        try db.execute(sql: "UPDATE \(table) SET sealed_embedding = ? WHERE id = ?",
                                       arguments: [try newCipher.seal(plain, student: student), row[0] as Int64])
                        if table == "enrolment" { r.enrolments += 1 } else { r.sightings += 1 }
                    }
                }
                try db.execute(sql: "UPDATE meta SET value = ? WHERE key = 'pseudonym_key'",
                               arguments: [try newCipher.sealSecret(pseudonymKey.bytes, authenticating: PseudonymKey.associatedData)])
                try db.execute(sql: "UPDATE meta SET value = ? WHERE key = 'key_check'", arguments: [try newCipher.sealCheck()])
                try Self.bumpGalleryVersion(db)
                try Self.audit(db, action: "key.rotate", subject: keyFile,
                               detail: "enrolments=\(r.enrolments); sightings=\(r.sightings); unreadable=\(r.unreadable)")
                return r
            }
        } catch {
            unlink(pendingKeyFile)
            throw error
        }
        try Self.finishRotation(keyFile: keyFile)
        // The old key's pages (none: keys are not in the database) and the old sealed values go with the WAL.
        try? compact()
        return report
    }

    /// Moves `<key_file>.new` over the key file (atomic rename, then the folder synced).
    static func finishRotation(keyFile: String) throws {
        guard rename(keyFile + ".new", keyFile) == 0 else {
            throw StoreError.io(path: keyFile, reason: "cannot replace the key file: \(String(cString: strerror(errno)))")
        }
        try FilePermissions.sync((keyFile as NSString).deletingLastPathComponent.isEmpty ? "." : (keyFile as NSString).deletingLastPathComponent)
    }
}
