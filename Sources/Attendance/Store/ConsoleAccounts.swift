import AttendanceCore
import Foundation
import GRDB

/// A signed-in console session, as the console's routes see it.
public struct ConsoleSession: Sendable, Equatable {
    public var user: ConsoleUser
    /// The token every state-changing form of this session must carry.
    public var csrfToken: String
    public var lastSeen: Date
}

extension ConsoleAccounts {
    /// Adds an account. Audited (by the acting user: the OS user from the CLI, the admin in the console).
    @discardableResult
    public func add(
        name: String, role: ConsoleRole, classes: [String] = [], password: String, hashing: PasswordHash = .standard
    ) throws -> ConsoleUser {
        if let why = ConsoleUserName.problem(name) { throw StoreError.invalid("\(name): \(why)") }
        if let why = ConsoleUserName.passwordProblem(password) { throw StoreError.invalid(why) }
        if role == .teacher && classes.isEmpty { throw StoreError.invalid("a teacher account needs at least one class") }
        if role != .teacher && !classes.isEmpty { throw StoreError.invalid("only a teacher account has classes") }
        let hash = try hashing.hash(password)
        return try store.writer.write { db in
            if try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM console_user WHERE name = ?", arguments: [name]) ?? 0 > 0 {
                throw StoreError.invalid("there is already a console user named \(name)")
            }
            let known = Set(try String.fetchAll(db, sql: "SELECT DISTINCT class_code FROM student"))
            let unknown = classes.filter { !known.contains($0) }
            if !unknown.isEmpty {
                throw StoreError.invalid("no student in class \(unknown.joined(separator: ", ")): import the roster first")
            }
            try db.execute(
                sql: "INSERT INTO console_user(name, role, password_hash, created_at) VALUES (?, ?, ?, ?)",
                arguments: [name, role.rawValue, hash, Timestamp.string(store.now())])
            let id = db.lastInsertedRowID
            for c in Set(classes) {
                try db.execute(sql: "INSERT INTO console_user_class(user_id, class_code) VALUES (?, ?)", arguments: [id, c])
            }
            try AttendanceStore.audit(
                db, action: "console.user_add", subject: name,
                detail: "role \(role.rawValue)" + (classes.isEmpty ? "" : ", classes \(classes.sorted().joined(separator: ","))"))
            return ConsoleUser(id: id, name: name, role: role, classes: classes.sorted())
        }
    }

    /// Every account, by name.
    public func users() throws -> [ConsoleUser] {
        try store.writer.read { db in
            try Row.fetchAll(db, sql: "SELECT id FROM console_user ORDER BY name").compactMap { row in
                try Self.user(db, id: row["id"])
            }
        }
    }

    public func user(named name: String) throws -> ConsoleUser? {
        try store.writer.read { db in
            guard let id = try Int64.fetchOne(db, sql: "SELECT id FROM console_user WHERE name = ?", arguments: [name]) else {
                return nil
            }
            return try Self.user(db, id: id)
        }
    }

    static func user(_ db: Database, id: Int64) throws -> ConsoleUser? {
        guard
            let row = try Row.fetchOne(db, sql: "SELECT id, name, role, disabled FROM console_user WHERE id = ?", arguments: [id])
        else { return nil }
        let classes = try String.fetchAll(
            db, sql: "SELECT class_code FROM console_user_class WHERE user_id = ? ORDER BY class_code", arguments: [id])
        guard let role = ConsoleRole(rawValue: row["role"]) else { return nil }
        return ConsoleUser(id: row["id"], name: row["name"], role: role, classes: classes, disabled: row["disabled"])
    }

    /// Enables or disables an account; disabling ends its sessions. The last enabled admin cannot be disabled.
    public func setDisabled(_ name: String, _ disabled: Bool) throws {
        try store.writer.write { db in
            guard let id = try Int64.fetchOne(db, sql: "SELECT id FROM console_user WHERE name = ?", arguments: [name]),
                let user = try Self.user(db, id: id)
            else { throw StoreError.invalid("no console user named \(name)") }
            if disabled && user.role == .admin {
                let admins =
                    try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM console_user WHERE role = 'admin' AND disabled = 0") ?? 0
                if admins <= 1 { throw StoreError.invalid("\(name) is the last admin: add another admin first") }
            }
            try db.execute(sql: "UPDATE console_user SET disabled = ? WHERE id = ?", arguments: [disabled, id])
            if disabled { try db.execute(sql: "DELETE FROM console_session WHERE user_id = ?", arguments: [id]) }
            try AttendanceStore.audit(
                db, action: disabled ? "console.user_disable" : "console.user_enable", subject: name, detail: nil)
        }
    }

    /// Sets a new password and ends the account's other sessions.
    public func setPassword(_ name: String, _ password: String, hashing: PasswordHash = .standard) throws {
        if let why = ConsoleUserName.passwordProblem(password) { throw StoreError.invalid(why) }
        let hash = try hashing.hash(password)
        try store.writer.write { db in
            guard let id = try Int64.fetchOne(db, sql: "SELECT id FROM console_user WHERE name = ?", arguments: [name]) else {
                throw StoreError.invalid("no console user named \(name)")
            }
            try db.execute(sql: "UPDATE console_user SET password_hash = ? WHERE id = ?", arguments: [hash, id])
            try db.execute(sql: "DELETE FROM console_session WHERE user_id = ?", arguments: [id])
            try AttendanceStore.audit(db, action: "console.password_set", subject: name, detail: nil)
        }
    }

    /// Checks a password and, when it is right, opens a session: returns the session token (for the
    /// cookie) and the session. Nil for an unknown name, a wrong password or a disabled account (the
    /// caller cannot tell which, nor can whoever is guessing). A failed sign-in is audited by name.
    public func signIn(name: String, password: String) throws -> (token: String, session: ConsoleSession)? {
        let found = try store.writer.read { db -> (Int64, String)? in
            guard
                let row = try Row.fetchOne(
                    db, sql: "SELECT id, password_hash FROM console_user WHERE name = ? AND disabled = 0", arguments: [name])
            else { return nil }
            return (row["id"], row["password_hash"])
        }
        // The hash is computed even for an unknown name, so the time taken does not tell names apart.
        let stored = found?.1 ?? Self.decoyHash
        let right = PasswordHash.verify(password, against: stored)
        guard let (id, _) = found, right else {
            try store.auditLog.append(action: "console.sign_in_failed", subject: String(name.prefix(64)), detail: nil)
            return nil
        }
        let token = SecretToken.make()
        let csrf = SecretToken.make()
        let now = store.now()
        return try store.writer.write { db in
            try db.execute(
                sql: "INSERT INTO console_session(token_hash, user_id, csrf_token, created_at, last_seen) VALUES (?, ?, ?, ?, ?)",
                arguments: [SecretToken.digest(token), id, csrf, Timestamp.string(now), Timestamp.string(now)])
            guard let user = try Self.user(db, id: id) else { throw StoreError.invalid("the account vanished") }
            try AttendanceStore.$actingUser.withValue(user.auditName) {
                try AttendanceStore.audit(db, action: "console.sign_in", subject: user.name, detail: nil)
            }
            return (token, ConsoleSession(user: user, csrfToken: csrf, lastSeen: now))
        }
    }

    /// A hash of nothing anyone knows, verified against for unknown names.
    private static let decoyHash: String = (try? PasswordHash.standard.hash(SecretToken.make())) ?? ""

    /// The session a cookie's token stands for, if it exists, its account is enabled and it was used
    /// within `idle`. Using it moves its idle clock (written at most once a minute) unless `touch` is false
    /// (what a page does by itself, like the live Today updates, must not keep a session alive). An expired
    /// one is deleted.
    public func session(token: String, idle: TimeInterval, touch: Bool = true) throws -> ConsoleSession? {
        let digest = SecretToken.digest(token)
        let now = store.now()
        let found = try store.writer.read { db -> (ConsoleSession, Bool)? in
            guard
                let row = try Row.fetchOne(
                    db, sql: "SELECT user_id, csrf_token, last_seen FROM console_session WHERE token_hash = ?",
                    arguments: [digest])
            else { return nil }
            guard let user = try Self.user(db, id: row["user_id"]), !user.disabled,
                let last = Timestamp.date(row["last_seen"])
            else { return nil }
            let expired = now.timeIntervalSince(last) > idle || now < last.addingTimeInterval(-300)
            return (ConsoleSession(user: user, csrfToken: row["csrf_token"], lastSeen: last), expired)
        }
        guard let (session, expired) = found else { return nil }
        if expired {
            try store.writer.write { db in
                try db.execute(sql: "DELETE FROM console_session WHERE token_hash = ?", arguments: [digest])
            }
            return nil
        }
        if touch && now.timeIntervalSince(session.lastSeen) > 60 {
            try store.writer.write { db in
                try db.execute(
                    sql: "UPDATE console_session SET last_seen = ? WHERE token_hash = ?",
                    arguments: [Timestamp.string(now), digest])
            }
        }
        return session
    }

    /// Ends a session (sign out).
    public func signOut(token: String) throws {
        try store.writer.write { db in
            let user = try Int64.fetchOne(
                db, sql: "SELECT user_id FROM console_session WHERE token_hash = ?", arguments: [SecretToken.digest(token)])
            try db.execute(sql: "DELETE FROM console_session WHERE token_hash = ?", arguments: [SecretToken.digest(token)])
            if let user, let u = try Self.user(db, id: user) {
                try AttendanceStore.$actingUser.withValue(u.auditName) {
                    try AttendanceStore.audit(db, action: "console.sign_out", subject: u.name, detail: nil)
                }
            }
        }
    }

    /// Deletes sessions idle for longer than `idle` (the console does this now and then).
    @discardableResult
    public func purgeSessions(idle: TimeInterval) throws -> Int {
        let cutoff = Timestamp.string(store.now().addingTimeInterval(-idle))
        return try store.writer.write { db in
            try db.execute(sql: "DELETE FROM console_session WHERE last_seen < ?", arguments: [cutoff])
            return db.changesCount
        }
    }
}
