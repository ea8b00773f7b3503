import Foundation

/// The gateway's bearer token. Its description is redacted so that it cannot reach a log line,
/// an error message or a crash report by accident; only ``authorizationValue`` reveals it.
public struct BearerToken: Sendable, Equatable, CustomStringConvertible, CustomDebugStringConvertible {
    private let secret: String

    public init(_ secret: String) throws {
        let trimmed = secret.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !trimmed.isEmpty else { throw ConnectorError.configuration("the bearer token is empty") }
        guard trimmed.unicodeScalars.allSatisfy({ $0.isASCII && $0.value > 0x20 && $0.value < 0x7F }) else {
            throw ConnectorError.configuration("the bearer token must be printable ASCII without spaces")
        }
        self.secret = trimmed
    }

    /// Reads the token from a file (trailing newline ignored). Refuses a file that group or others can
    /// read or write: the token opens the sector database for the whole school (make it 0600, owned by
    /// the daemon's user).
    public static func load(fromFile path: String) throws -> BearerToken {
        var st = stat()
        if stat(path, &st) == 0, st.st_mode & 0o077 != 0, (st.st_mode & S_IFMT) == S_IFREG {
            throw ConnectorError.configuration(
                "the token file \(path) can be read by other users (mode \(String(st.st_mode & 0o777, radix: 8))); "
                    + "fix it with: chmod 600 '\(path)' (and chown it to the daemon's user)")
        }
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
            throw ConnectorError.configuration("cannot read the token file \(path)")
        }
        return try BearerToken(text)
    }

    /// The `Authorization` header value.
    public var authorizationValue: String { "Bearer \(secret)" }

    /// Compares in time independent of where the first difference is.
    public func matches(_ candidate: String) -> Bool {
        let a = Array(secret.utf8), b = Array(candidate.utf8)
        var diff = UInt8(a.count == b.count ? 0 : 1)
        for i in 0..<max(a.count, b.count) {
            diff |= (i < a.count ? a[i] : 0) ^ (i < b.count ? b[i] : 0)
        }
        return diff == 0
    }

    public var description: String { "<redacted token>" }
    public var debugDescription: String { "<redacted token>" }
}
