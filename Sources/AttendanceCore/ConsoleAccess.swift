/// Who may do what in the school's web console: the one place for the rules (the console's routes ask here).

/// A console account's role.
public enum ConsoleRole: String, Sendable, Codable, CaseIterable {
    /// Everything, including the accounts.
    case admin
    /// Only their own classes: the students, the day, consent and enrolment of their students, excuses.
    case teacher
    /// Reads everything and exports; changes nothing (in particular no biometric data).
    case principal
}

/// A console account (never holds the password or its hash).
public struct ConsoleUser: Sendable, Equatable, Codable {
    public var id: Int64
    /// The sign-in name, unique without regard to case.
    public var name: String
    public var role: ConsoleRole
    /// A teacher's classes (empty for the other roles).
    public var classes: [String]
    public var disabled: Bool

    public init(id: Int64, name: String, role: ConsoleRole, classes: [String], disabled: Bool = false) {
        self.id = id; self.name = name; self.role = role; self.classes = classes; self.disabled = disabled
    }

    /// The audit log's name for changes made through the console.
    public var auditName: String { "console:\(name)" }
}

/// What a console user asks to do.
public enum ConsoleAction: Sendable, Equatable {
    /// See a class's day, its students and their attendance.
    case viewClass(String)
    /// Every class at once (the school's Today page, the exports of the whole school).
    case viewSchool
    /// Record or revoke consent, enrol or remove faces, for a student of this class.
    case changeBiometrics(classCode: String)
    /// Excuse an absence, correct a status, cancel a wrong match, for a student of this class.
    case changeAttendance(classCode: String)
    /// Erase a student on request (every record).
    case eraseStudent
    /// Import a roster.
    case importRoster
    /// Download an export (of a class, or of the school when nil).
    case export(classCode: String?)
    /// Read the audit log.
    case readAudit
    /// Add, disable or change accounts.
    case manageUsers
}

extension ConsoleUser {
    /// Whether this user may do `action`. A disabled account may do nothing.
    public func may(_ action: ConsoleAction) -> Bool {
        if disabled { return false }
        switch role {
        case .admin:
            return true
        case .principal:
            switch action {
            case .viewClass, .viewSchool, .export, .readAudit: return true
            case .changeBiometrics, .changeAttendance, .eraseStudent, .importRoster, .manageUsers: return false
            }
        case .teacher:
            switch action {
            case .viewClass(let c), .changeBiometrics(let c), .changeAttendance(let c): return classes.contains(c)
            case .export(let c?): return classes.contains(c)
            case .export(nil), .viewSchool, .eraseStudent, .importRoster, .readAudit, .manageUsers: return false
            }
        }
    }

    /// The classes this user sees on the Today page: all of `schoolClasses`, or a teacher's own.
    public func visibleClasses(of schoolClasses: [String]) -> [String] {
        if disabled { return [] }
        return role == .teacher ? schoolClasses.filter(classes.contains) : schoolClasses
    }
}

/// Sign-in names: letters, digits and . _ - (3 to 64), so they read well in the audit log.
public enum ConsoleUserName {
    public static func problem(_ name: String) -> String? {
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
        if name.count < 3 || name.count > 64 { return "a user name has 3 to 64 characters" }
        if !name.allSatisfy(allowed.contains) { return "a user name has only letters a-z, digits and . _ -" }
        return nil
    }

    /// Passwords: at least this many characters (a school's accounts are reachable from its network).
    public static let minimumPasswordLength = 10

    public static func passwordProblem(_ password: String) -> String? {
        password.count < minimumPasswordLength ? "a password has at least \(minimumPasswordLength) characters" : nil
    }
}
