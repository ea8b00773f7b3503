import Crypto
import Foundation
import _CryptoExtras

/// Console passwords, hashed with scrypt (memory-hard: a stolen database is expensive to guess through).
///
/// Stored as `scrypt$<log2 N>$<r>$<p>$<salt, base64>$<hash, base64>`, so the cost can be raised later
/// without invalidating the hashes already stored.
public struct PasswordHash: Sendable {
    /// log2 of scrypt's N. 2^15 with r = 8 needs 32 MB and about 0.1 s per sign-in on this class of box.
    public var logN: Int
    public var r = 8
    public var p = 1

    public static let standard = PasswordHash(logN: 15)

    public init(logN: Int, r: Int = 8, p: Int = 1) {
        self.logN = logN; self.r = r; self.p = p
    }

    public func hash(_ password: String) throws -> String {
        let salt = EmbeddingCipher.randomKey().prefix(16)
        let key = try derive(password, salt: Array(salt), logN: logN, r: r, p: p)
        return "scrypt$\(logN)$\(r)$\(p)$\(Data(salt).base64EncodedString())$\(Data(key).base64EncodedString())"
    }

    /// Whether `password` is the one `stored` was made from (false for a malformed hash, never a throw).
    public static func verify(_ password: String, against stored: String) -> Bool {
        let parts = stored.split(separator: "$", omittingEmptySubsequences: false)
        guard parts.count == 6, parts[0] == "scrypt", let logN = Int(parts[1]), let r = Int(parts[2]), let p = Int(parts[3]),
            (10...20).contains(logN), (1...32).contains(r), (1...16).contains(p),
            let salt = Data(base64Encoded: String(parts[4])), let expected = Data(base64Encoded: String(parts[5])),
            let key = try? derive(password, salt: Array(salt), logN: logN, r: r, p: p)
        else { return false }
        return SecretToken.same(key, Array(expected))
    }

    private static func derive(_ password: String, salt: [UInt8], logN: Int, r: Int, p: Int) throws -> [UInt8] {
        let key = try KDF.Scrypt.deriveKey(
            from: Array(password.utf8), salt: salt, outputByteCount: 32, rounds: 1 << logN, blockSize: r, parallelism: p)
        return key.withUnsafeBytes { Array($0) }
    }

    private func derive(_ password: String, salt: [UInt8], logN: Int, r: Int, p: Int) throws -> [UInt8] {
        try Self.derive(password, salt: salt, logN: logN, r: r, p: p)
    }
}

/// Session and form tokens: 32 random bytes, URL-safe base64; only their SHA-256 is stored.
public enum SecretToken {
    public static func make() -> String {
        Data(EmbeddingCipher.randomKey()).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    public static func digest(_ token: String) -> String {
        SHA256.hash(data: Data(token.utf8)).map { String(format: "%02x", $0) }.joined()
    }

    /// Constant-time comparison: it must not tell how many leading bytes matched (tokens, password hashes).
    public static func same(_ a: some Collection<UInt8>, _ b: some Collection<UInt8>) -> Bool {
        guard a.count == b.count else { return false }
        var diff: UInt8 = 0
        for (x, y) in zip(a, b) { diff |= x ^ y }
        return diff == 0
    }

    public static func same(_ a: String, _ b: String) -> Bool { same(a.utf8, b.utf8) }
}
