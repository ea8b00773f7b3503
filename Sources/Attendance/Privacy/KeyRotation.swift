import AttendanceCore
import Foundation
import GRDB

#if canImport(Glibc)
    import Glibc
#endif

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
        // One rotation at a time, across processes: the lock file beside the key.
        let lock = Glibc.open(keyFile + ".lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard lock >= 0 else { throw StoreError.io(path: keyFile + ".lock", reason: String(cString: strerror(errno))) }
        defer { close(lock) }
        guard flock(lock, LOCK_EX | LOCK_NB) == 0 else {
            throw StoreError.invalid("another key rotation is running (\(keyFile).lock is held); wait for it to finish")
        }
        // Under the lock, a `.new` file that does not open this database is a rotation that never committed:
        // safe to replace. One that does is the live key of a rotation whose rename failed: never delete it.
        if let pending = try? KeyFile.load(pendingKeyFile), let pendingCipher = try? EmbeddingCipher(keyBytes: pending),
            let check = try writer.read({ try String.fetchOne($0, sql: "SELECT value FROM meta WHERE key = 'key_check'") }),
            pendingCipher.verifyCheck(check)
        {
            throw StoreError.io(
                path: pendingKeyFile,
                reason: "holds the key this database is sealed with (an earlier rotation could "
                    + "not rename it): make the key's folder writable and run any command once, then rotate again")
        }
        unlink(pendingKeyFile)
        let newBytes = EmbeddingCipher.randomKey()
        let newCipher = try EmbeddingCipher(keyBytes: newBytes)
        guard try FilePermissions.createPrivate(pendingKeyFile, contents: newBytes) else {
            throw StoreError.io(path: pendingKeyFile, reason: "appeared while the rotation held the lock")
        }
        try FilePermissions.sync(pendingKeyFile)
        try FilePermissions.sync(Self.folder(of: keyFile))
        let report: KeyRotationReport
        do {
            report = try writer.write { db -> KeyRotationReport in
                var r = KeyRotationReport()
                for table in ["enrolment", "gate_sighting"] {
                    let rows = try Row.fetchAll(db, sql: "SELECT id, student_code, sealed_embedding FROM \(table)")
                    for row in rows {
                        let student: String = row["student_code"]
                        guard let plain = try? cipher.open(row["sealed_embedding"], student: student) else {
                            r.unreadable += 1; continue
                        }
                        try db.execute(
                            sql: "UPDATE \(table) SET sealed_embedding = ? WHERE id = ?",
                            arguments: [try newCipher.seal(plain, student: student), row["id"] as Int64])
                        if table == "enrolment" { r.enrolments += 1 } else { r.sightings += 1 }
                    }
                }
                if r.unreadable > 0, r.enrolments + r.sightings == 0 {
                    throw StoreError.invalid(
                        "no sealed row opens with the current key: refusing to rotate (check database.key_file)")
                }
                try db.execute(
                    sql: "UPDATE meta SET value = ? WHERE key = 'pseudonym_key'",
                    arguments: [try newCipher.sealSecret(pseudonymKey.bytes, authenticating: PseudonymKey.associatedData)])
                try db.execute(sql: "UPDATE meta SET value = ? WHERE key = 'key_check'", arguments: [try newCipher.sealCheck()])
                try Self.bumpGalleryVersion(db)
                try Self.audit(
                    db, action: "key.rotate", subject: keyFile,
                    detail: "enrolments=\(r.enrolments); sightings=\(r.sightings); unreadable=\(r.unreadable)")
                return r
            }
        } catch {
            unlink(pendingKeyFile)
            throw error
        }
        try Self.finishRotation(keyFile: keyFile)
        // The old key's pages (none: keys are not in the database) and the old sealed values go with the WAL.
        try? retention.compact()
        return report
    }

    /// Moves `<key_file>.new` over the key file (atomic rename, then the folder synced).
    static func finishRotation(keyFile: String) throws {
        guard rename(keyFile + ".new", keyFile) == 0 else {
            throw StoreError.io(path: keyFile, reason: "cannot replace the key file: \(String(cString: strerror(errno)))")
        }
        try FilePermissions.sync(folder(of: keyFile))
    }

    static func folder(of path: String) -> String {
        let dir = (path as NSString).deletingLastPathComponent
        return dir.isEmpty ? "." : dir
    }
}
