import AttendanceCore
import Crypto
import Foundation

/// Seals face embeddings with AES-256-GCM under the school's key file.
///
/// Each sealed value is the combined form (12-byte nonce | ciphertext | 16-byte tag) of the
/// embedding's 128 little-endian Float32 values. The student code is authenticated as
/// associated data, so a sealed embedding copied onto another student's row fails to open
/// instead of silently matching the wrong child.
public struct EmbeddingCipher: Sendable {
    /// Raw key bytes; `SymmetricKey` itself is not Sendable, so it is rebuilt per call (cheap).
    private let keyBytes: [UInt8]
    public static let keyByteCount = 32

    public init(keyBytes: [UInt8]) throws {
        guard keyBytes.count == Self.keyByteCount else {
            throw StoreError.invalid("an AES-256 key has \(Self.keyByteCount) bytes, not \(keyBytes.count)")
        }
        self.keyBytes = keyBytes
    }

    public static func randomKey() -> [UInt8] {
        SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) }
    }

    private var key: SymmetricKey { SymmetricKey(data: keyBytes) }
    var rawKey: [UInt8] { keyBytes }

    public func seal(_ embedding: [Float], student: String) throws -> Data {
        var plain = [UInt8]()
        plain.reserveCapacity(embedding.count * 4)
        for v in embedding {
            withUnsafeBytes(of: v.bitPattern.littleEndian) { plain.append(contentsOf: $0) }
        }
        let box = try AES.GCM.seal(plain, using: key, authenticating: Array(student.utf8))
        guard let combined = box.combined else { throw StoreError.invalid("AES-GCM produced no combined form") }
        return combined
    }

    /// Throws `CipherError.authentication` when the key (or the student) does not match.
    public func open(_ sealed: Data, student: String) throws -> [Float] {
        let plain: Data
        do {
            plain = try AES.GCM.open(
                AES.GCM.SealedBox(combined: sealed), using: key,
                authenticating: Array(student.utf8))
        } catch {
            throw CipherError.authentication
        }
        guard plain.count % 4 == 0 else { throw CipherError.malformed }
        let bytes = [UInt8](plain)
        return stride(from: 0, to: bytes.count, by: 4).map { i in
            let bits = UInt32(bytes[i]) | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2]) << 16 | UInt32(bytes[i + 3]) << 24
            return Float(bitPattern: bits)
        }
    }

    /// A known plaintext sealed at database creation: lets `open` detect a wrong key before any
    /// embedding is touched.
    static let checkPlaintext = "attendance key check v1"

    func sealCheck() throws -> String {
        let box = try AES.GCM.seal(Array(Self.checkPlaintext.utf8), using: key)
        return box.combined!.base64EncodedString()
    }

    func verifyCheck(_ text: String) -> Bool {
        guard let data = Data(base64Encoded: text),
            let box = try? AES.GCM.SealedBox(combined: data),
            let plain = try? AES.GCM.open(box, using: key)
        else { return false }
        return plain == Data(Self.checkPlaintext.utf8)
    }

    public enum CipherError: Error, Sendable {
        case authentication, malformed
    }
}

/// The key file: 32 random bytes, mode 0600, created on first use.
enum KeyFile {
    static func load(_ path: String) throws -> [UInt8]? {
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        try FilePermissions.requirePrivate(path)
        guard let data = FileManager.default.contents(atPath: path) else {
            throw StoreError.io(path: path, reason: "cannot read the key file (is it owned by another user?)")
        }
        guard data.count == EmbeddingCipher.keyByteCount else {
            throw StoreError.badKeyFile(
                path: path,
                reason: "it has \(data.count) bytes; a key file has exactly 32. "
                    + "Did you point database.key_file at another file?")
        }
        return [UInt8](data)
    }

    static func create(_ path: String) throws -> [UInt8] {
        let key = EmbeddingCipher.randomKey()
        guard try FilePermissions.createPrivate(path, contents: key) else {
            // Another process created it first: use theirs.
            guard let existing = try load(path) else { throw StoreError.io(path: path, reason: "key file vanished") }
            return existing
        }
        return key
    }
}
