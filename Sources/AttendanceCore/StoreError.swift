import Foundation

/// Why the store refused: each case says what happened and what to do next,
/// because the person reading it is a teacher or a school's IT helper, not the author.
public enum StoreError: Error, CustomStringConvertible, Sendable, Equatable {
    /// A database or key file other users can read or write.
    case unsafePermissions(path: String, mode: UInt16)
    /// The key file does not open the embeddings sealed in this database.
    case wrongKey(keyFile: String)
    /// The key file is missing but the database holds sealed embeddings.
    case missingKey(keyFile: String, enrolments: Int)
    /// The key file exists but is not a 32-byte AES key.
    case badKeyFile(path: String, reason: String)
    case unknownStudent(String)
    case inactiveStudent(String)
    /// Enrolment needs the guardian's recorded consent first (Decree 13/2023, biometric data).
    case noConsent(String)
    /// The child is 7 or older: their own agreement is needed besides the guardian's (Decree 13/2023).
    case childMustAgree(String)
    case io(path: String, reason: String)
    case invalid(String)

    public var description: String {
        switch self {
        case let .unsafePermissions(path, mode):
            return "\(path) can be read or written by other users (mode \(String(mode, radix: 8))). "
                + "It holds children's personal data; fix it with: chmod 600 '\(path)'"
        case let .wrongKey(keyFile):
            return "the key file \(keyFile) does not match this database: the face data was encrypted with another key. "
                + "Use the key file that was created with this database (check database.key_file in the config); "
                + "nothing was changed."
        case let .missingKey(keyFile, n):
            return "the key file \(keyFile) is missing, but the database holds \(n) encrypted face enrolment(s). "
                + "Restore the key file from your backup; without it those enrolments cannot be used "
                + "(or discard every enrolment and enrol the students again)."
        case let .badKeyFile(path, reason):
            return "\(path) is not a usable key file: \(reason)"
        case let .unknownStudent(code):
            return "no student with code '\(code)' (check the code in the student list, or import the roster first)"
        case let .inactiveStudent(code):
            return "student '\(code)' is inactive (not on the latest roster); re-import a roster that lists them first"
        case let .noConsent(code):
            return "no guardian consent is recorded for student '\(code)'. Record the guardian's consent first "
                + "(who gave it, their relation to the child, the date)"
        case let .childMustAgree(code):
            return "student '\(code)' is \(Consent.childConsentAge) or older: Decree 13/2023 requires the child's own agreement "
                + "besides the guardian's. Ask the child, then record that they agree "
                + "(or fill the \"Học sinh đồng ý\"/child_agrees column of the roster)"
        case let .io(path, reason):
            return "\(path): \(reason)"
        case let .invalid(reason):
            return reason
        }
    }
}
