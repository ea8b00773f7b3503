import Attendance
import AttendanceCore
import Foundation
import Logging
import NIOCore
import NIOSSL
import PostgresNIO

/// A problem with the school's PostgreSQL server, said so that the admin knows what to fix. Never holds a
/// password or a student's code (the server's own messages are kept only for its sign-in and schema errors).
public struct PostgresProblem: Error, Sendable, CustomStringConvertible, Equatable {
    public enum Kind: Sendable, Equatable {
        /// The server cannot be reached now (down, network, timeout): retry later, nothing is lost.
        case unreachable
        /// The server refused us (password, role, database, TLS): a configuration to fix; retrying will not help.
        case refused
        /// The server's schema is not the one this binary knows.
        case schema
        /// A statement failed on the server.
        case query
    }
    public let kind: Kind
    public let description: String
    public init(_ kind: Kind, _ description: String) {
        self.kind = kind
        self.description = description
    }
}

/// How to reach the school's server: the `[database]` section of the config, with the password read from its
/// 0600 file. Opens single connections; each user (the journal sender, the migration) owns its own.
public struct PostgresConnector: Sendable {
    public let url: PostgresURL
    let password: String?
    public let tls: AttendanceConfig.Database.TLSMode
    public let caFile: String?
    public var connectTimeout: Duration = .seconds(10)
    /// PostgresNIO's own logs (which may show statements' values) are kept at warning and above.
    let logger: Logger

    public init(
        url: PostgresURL, password: String?, tls: AttendanceConfig.Database.TLSMode, caFile: String? = nil,
        logger: Logger = Logger(label: "attendance.postgres")
    ) {
        self.url = url
        self.password = password
        self.tls = tls
        self.caFile = caFile
        var l = logger
        l.logLevel = max(l.logLevel, .warning)
        self.logger = l
    }

    /// From the config's `[database]` (backend `postgresql`): reads the password file (it must be 0600).
    public init(config: AttendanceConfig.Database, logger: Logger = Logger(label: "attendance.postgres")) throws {
        guard let url = config.url else {
            throw PostgresProblem(.refused, "database.url is not set: postgresql://USER@HOST:PORT/DATABASE")
        }
        self.init(url: url, password: try config.password(), tls: config.tls, caFile: config.caFile, logger: logger)
    }

    /// The same server and role, another database (tests, and the migration's own checks).
    public func with(database: String) -> PostgresConnector {
        var u = url
        u.database = database
        var c = PostgresConnector(url: u, password: password, tls: tls, caFile: caFile, logger: logger)
        c.connectTimeout = connectTimeout
        return c
    }

    /// Opens one connection, or throws a `PostgresProblem` that says what is wrong.
    public func connect() async throws -> PostgresConnection {
        let tlsSetting: PostgresConnection.Configuration.TLS
        switch tls {
        case .disable:
            tlsSetting = .disable
        case .require:
            var t = TLSConfiguration.makeClientConfiguration()
            t.certificateVerification = .fullVerification
            if let caFile {
                guard FileManager.default.isReadableFile(atPath: caFile) else {
                    throw PostgresProblem(.refused, "database.ca_file \(caFile) cannot be read")
                }
                t.trustRoots = .file(caFile)
            }
            do {
                tlsSetting = .require(try NIOSSLContext(configuration: t))
            } catch {
                throw PostgresProblem(.refused, "database.ca_file \(caFile ?? "(system roots)"): not usable for TLS: \(error)")
            }
        }
        var configuration = PostgresConnection.Configuration(
            host: url.host, port: url.port, username: url.user, password: password, database: url.database, tls: tlsSetting)
        configuration.options.connectTimeout = .seconds(Int64(connectTimeout.components.seconds))
        if tls == .require { configuration.options.tlsServerName = url.host }
        do {
            return try await PostgresConnection.connect(configuration: configuration, id: 1, logger: logger)
        } catch {
            throw explain(error)
        }
    }

    /// Runs `body` on a new connection, closed afterwards.
    @discardableResult
    public func withConnection<R: Sendable>(_ body: (PostgresConnection) async throws -> R) async throws -> R {
        let c = try await connect()
        do {
            let r = try await body(c)
            try? await c.close()
            return r
        } catch {
            try? await c.close()
            // The store's own refusals (no such student, no consent, a clock that cannot date a record) stay as they are.
            if error is StoreError || error is ClockProblem { throw error }
            throw explain(error)
        }
    }

    /// Runs `body`; if it has not finished after `timeout`, closes `connection` (which fails what waits on it) and
    /// throws: a server that stalled without closing the TCP connection, or a lock held there, must not hold a
    /// journal batch or a gallery refresh for ever. The one deadline of every long-lived connection.
    /// `timedOut` hears the reason first, before the connection closes (what else waits on it fails then too).
    public static func withDeadline<R: Sendable>(
        _ timeout: Duration, closing connection: PostgresConnection,
        timedOut: (@Sendable (PostgresProblem) -> Void)? = nil, _ body: @escaping @Sendable () async throws -> R
    ) async throws -> R {
        try await withThrowingTaskGroup(of: R?.self) { group in
            group.addTask { try await body() }
            group.addTask {
                try await Task.sleep(for: timeout)
                return nil
            }
            defer { group.cancelAll() }
            while let next = try await group.next() {
                if let r = next { return r }
                let problem = PostgresProblem(
                    .unreachable, "the school's database did not answer within \(timeout) (stalled, or a lock held there)")
                timedOut?(problem)
                try? await connection.close()
                throw problem
            }
            throw CancellationError()
        }
    }

    /// A PostgresNIO error as a `PostgresProblem` naming the server and what to check.
    public func explain(_ error: any Error) -> PostgresProblem {
        if let p = error as? PostgresProblem { return p }
        if let t = error as? PostgresTransactionError {
            if let inner = t.closureError ?? t.commitError ?? t.beginError { return explain(inner) }
        }
        let server = "the school's database at \(url.host):\(url.port)"
        guard let e = error as? PSQLError else {
            return PostgresProblem(.unreachable, "\(server): \(error)")
        }
        switch e.code {
        case .server:
            let state = e.serverInfo?[.sqlState] ?? "?"
            let message = e.serverInfo?[.message] ?? "no message"
            switch state {
            case "28P01":
                return PostgresProblem(
                    .refused, "\(server) refused the password of role \(url.user) (check database.password_file)")
            case "28000":
                return PostgresProblem(
                    .refused, "\(server) does not let role \(url.user) sign in from this box: \(message) (pg_hba.conf)")
            case "3D000":
                return PostgresProblem(.refused, "\(server) has no database \(url.database)")
            case "42501":
                return PostgresProblem(.refused, "\(server): role \(url.user) lacks a right it needs: \(message)")
            case "23503":
                return PostgresProblem(
                    .query,
                    "\(server): \(message): the server lacks a student this box recorded; is the roster on the server "
                        + "up to date? (the records wait in the journal)")
            case "23505" where message.contains("attendance_event"):
                return PostgresProblem(
                    .query,
                    "\(server): \(message): the server has this event under another record id; do all boxes have the "
                        + "same [school] code? (the records wait in the journal)")
            case "57P01", "57P02", "57P03", "08000", "08003", "08006", "53300":
                return PostgresProblem(.unreachable, "\(server) is shutting down or not accepting connections (\(state))")
            default:
                // The message, never the detail: a detail can repeat a row's values (a student's code).
                return PostgresProblem(.query, "\(server): \(message) (SQLSTATE \(state))")
            }
        case .connectionError:
            let why = e.underlying.map { "\($0)" } ?? "no reason given"
            if why.contains("connectTimeout") || why.contains("timeout") {
                return PostgresProblem(.unreachable, "\(server): no answer within \(connectTimeout) (server down or network?)")
            }
            if why.localizedCaseInsensitiveContains("refused") {
                return PostgresProblem(.unreachable, "\(server): connection refused (is the server running, is the port right?)")
            }
            if e.underlying is NIOSSLError || why.contains("SSL") || why.contains("certificate") {
                return PostgresProblem(.refused, "\(server): TLS failed: \(why) (database.tls, database.ca_file)")
            }
            return PostgresProblem(.unreachable, "\(server): cannot connect: \(why)")
        case .sslUnsupported:
            return PostgresProblem(
                .refused, "\(server) does not offer TLS and database.tls = \"require\" (turn ssl on in postgresql.conf)")
        case .serverClosedConnection, .clientClosedConnection, .uncleanShutdown:
            return PostgresProblem(.unreachable, "\(server) closed the connection")
        case .authMechanismRequiresPassword:
            return PostgresProblem(.refused, "\(server) asks role \(url.user) for a password: set database.password_file")
        case .unsupportedAuthMechanism, .saslError:
            return PostgresProblem(.refused, "\(server): sign-in of role \(url.user) failed (\(e.code))")
        default:
            return PostgresProblem(.query, "\(server): \(e.code)")
        }
    }
}
