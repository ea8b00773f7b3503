import AttendanceCore
import Crypto
import Foundation
import GRDB

/// A student's pseudonym for logs and the erasure audit: a short keyed hash of the student code
/// (HMAC-SHA256 under a random secret kept in the database, sealed with the embedding key). The same
/// student always gets the same pseudonym, so a technician can follow one child through the journal,
/// but the journal alone cannot be turned back into codes, even by trying every possible code.
struct PseudonymKey: Sendable {
    let bytes: [UInt8]

    func pseudonym(of student: String) -> String {
        let mac = HMAC<SHA256>.authenticationCode(for: Data(student.utf8), using: SymmetricKey(data: bytes))
        return "st-" + mac.prefix(6).map { String(format: "%02x", $0) }.joined()
    }

    static let associatedData = Array("attendance pseudonym key v1".utf8)

    /// The database's secret, made on first use.
    static func loadOrCreate(writer: any DatabaseWriter, cipher: EmbeddingCipher) throws -> PseudonymKey {
        let stored = try writer.read { db in
            try String.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'pseudonym_key'")
        }
        if let sealed = stored {
            return PseudonymKey(bytes: try cipher.openSecret(sealed, authenticating: associatedData))
        }
        let fresh = EmbeddingCipher.randomKey()
        let sealed = try cipher.sealSecret(fresh, authenticating: associatedData)
        return try writer.write { db in
            // Another process may have made it first: theirs wins.
            try db.execute(
                sql: "INSERT INTO meta(key, value) VALUES ('pseudonym_key', ?) ON CONFLICT(key) DO NOTHING", arguments: [sealed])
            let stored = try String.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'pseudonym_key'")!
            return PseudonymKey(bytes: try cipher.openSecret(stored, authenticating: associatedData))
        }
    }
}

/// The store's pseudonym key, replaced once when a box of a school on PostgreSQL adopts the school's
/// (`SchoolGalleryCache.adoptPseudonymKey`), so every box names a student alike.
final class PseudonymKeyHolder: @unchecked Sendable {
    private let lock = NSLock()
    private var current: PseudonymKey
    init(_ key: PseudonymKey) { current = key }
    var key: PseudonymKey { lock.withLock { current } }
    func replace(with key: PseudonymKey) { lock.withLock { current = key } }
}

extension EmbeddingCipher {
    /// Seals a small secret (base64 of the combined AES-GCM box).
    func sealSecret(_ secret: [UInt8], authenticating data: [UInt8]) throws -> String {
        let box = try AES.GCM.seal(secret, using: SymmetricKey(data: rawKey), authenticating: data)
        return box.combined!.base64EncodedString()
    }

    func openSecret(_ text: String, authenticating data: [UInt8]) throws -> [UInt8] {
        guard let combined = Data(base64Encoded: text), let box = try? AES.GCM.SealedBox(combined: combined),
            let plain = try? AES.GCM.open(box, using: SymmetricKey(data: rawKey), authenticating: data)
        else {
            throw CipherError.authentication
        }
        return [UInt8](plain)
    }
}

extension AttendanceStore {
    /// The student's pseudonym for log lines and the erasure audit (see `PseudonymKey`).
    public func pseudonym(of student: String) -> String { pseudonymKey.pseudonym(of: student) }
}
