import Attendance
import AttendanceCore
import AttendanceTesting
import Foundation
import PostgresNIO
import XCTest

@testable import AttendancePostgres

/// The server schema, its roles and the errors an admin meets, against a real PostgreSQL.
final class PostgresSchemaTests: XCTestCase {
    func testTheSchemaIsCreatedOnceAndTheGateChecksIt() async throws {
        let db = try await freshDatabase(migrate: false)
        let first = try await db.owner.withConnection { c in try await PostgresSchema.migrate(on: c) }
        assertEqual(first, PostgresSchema.migrations.map(\.version))
        let again = try await db.owner.withConnection { c in try await PostgresSchema.migrate(on: c) }
        assertEqual(again, [], "migrating twice applies nothing")
        try await db.gate.withConnection { c in try await PostgresSchema.check(on: c) }
        let tables = try await db.strings(
            "SELECT tablename::text FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename")
        assertEqual(
            Set(tables),
            Set(PostgresSchema.rowTables + PostgresSchema.ownerTables + ["audit_log", "schema_version"]),
            "the school's tables mirror the SQLite store's")
    }

    func testAGateRefusesAnEmptyOrANewerSchemaAndChangesNothing() async throws {
        let empty = try await freshDatabase(migrate: false)
        await assertProblem(.schema, containing: "no attendance schema yet") {
            try await empty.gate.withConnection { c in try await PostgresSchema.check(on: c) }
        }

        let db = try await freshDatabase()
        try await db.owner.withConnection { c in
            try await c.query(
                "INSERT INTO schema_version(version, description) VALUES (99, 'from the future')", logger: quietLogger)
        }
        await assertProblem(
            .schema, containing: "schema version 99, newer than this attendance knows (\(PostgresSchema.knownVersion))"
        ) {
            try await db.gate.withConnection { c in try await PostgresSchema.check(on: c) }
        }
        await assertProblem(.schema, containing: "update attendance on this box; nothing was changed") {
            _ = try await db.owner.withConnection { c in try await PostgresSchema.migrate(on: c) }
        }
        let versions = try await db.ints("SELECT version FROM schema_version ORDER BY version")
        assertEqual(versions, PostgresSchema.migrations.map(\.version) + [99])
    }

    func testWrongPasswordWrongDatabaseAndAServerThatIsNotThereAreClearMessages() async throws {
        let db = try await freshDatabase()
        let wrongPassword = PostgresConnector(url: db.gate.url, password: "not-the-password", tls: .disable)
        await assertProblem(.refused, containing: "refused the password of role attendance_gate") {
            try await wrongPassword.withConnection { _ in }
        }
        let noPassword = PostgresConnector(url: db.gate.url, password: nil, tls: .disable)
        await assertProblem(.refused, containing: "set database.password_file") {
            try await noPassword.withConnection { _ in }
        }
        await assertProblem(.refused, containing: "has no database no_such_school") {
            try await db.gate.with(database: "no_such_school").withConnection { _ in }
        }
        // A port nobody listens on: the server is down.
        var down = db.gate.url
        down.port = try freePort()
        await assertProblem(.unreachable, containing: "connection refused (is the server running") {
            try await PostgresConnector(url: down, password: "x", tls: .disable).withConnection { _ in }
        }
        // The server does not offer TLS; the box requires it.
        await assertProblem(.refused, containing: "does not offer TLS") {
            try await PostgresConnector(url: db.gate.url, password: "x", tls: .require).withConnection { _ in }
        }
    }

    func testAPasswordFileOthersCanReadIsRefusedBeforeConnecting() throws {
        let dir = NSTemporaryDirectory() + "pg-config-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        _ = FileManager.default.createFile(
            atPath: dir + "/pw", contents: Data("secret\n".utf8), attributes: [.posixPermissions: 0o640])
        var config = AttendanceConfig.Database()
        config.backend = .postgresql
        config.url = PostgresURL(user: "attendance_gate", host: "127.0.0.1", port: 5432, database: "attendance")
        config.passwordFile = dir + "/pw"
        config.tls = .disable
        XCTAssertThrowsError(try PostgresConnector(config: config)) { error in
            XCTAssertTrue("\(error)".contains("mode 640"), "\(error)")
            XCTAssertFalse("\(error)".contains("secret"))
        }
    }

    func testTheAuditLogIsAppendOnlyAndTheGateRoleCannotDropAnything() async throws {
        let db = try await freshDatabase()
        try await db.gate.withConnection { c in
            try await c.query(
                "INSERT INTO audit_log(at, os_user, action) VALUES ('2026-12-02T07:00:00.000Z', 'gate', 'test')",
                logger: quietLogger)
        }
        assertEqual(try await db.int("SELECT count(*) FROM audit_log"), 1, "the gate role appends")
        for sql in ["UPDATE audit_log SET action = 'x'", "DELETE FROM audit_log", "TRUNCATE audit_log"] {
            // Even the owner: the trigger refuses.
            await assertProblem(.query, containing: "audit_log is append-only") {
                try await db.owner.withConnection { c in _ = try await c.query(PostgresQuery(unsafeSQL: sql), logger: quietLogger)
                }
            }
        }
        for sql in [
            "UPDATE audit_log SET action = 'x'", "DELETE FROM audit_log", "DROP TABLE audit_log",
            "ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_change", "DROP TRIGGER audit_log_no_change ON audit_log",
            "DROP TABLE attendance_event", "TRUNCATE attendance_event", "CREATE TABLE mine(x int)",
        ] {
            await assertProblem(.refused, containing: "role attendance_gate lacks a right it needs") {
                try await db.gate.withConnection { c in _ = try await c.query(PostgresQuery(unsafeSQL: sql), logger: quietLogger)
                }
            }
        }
        assertEqual(try await db.int("SELECT count(*) FROM audit_log"), 1)
        assertEqual(try await db.strings("SELECT action FROM audit_log"), ["test"])
    }

    func testTheScriptSplitterKeepsFunctionBodiesAndCommentsWhole() {
        let parts = PostgresSchema.statements(
            """
            -- a comment; with a semicolon and the log's apostrophe
            CREATE TABLE a(x text DEFAULT ';');
            CREATE FUNCTION f() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'no; never'; END $$;
            SELECT 1
            """)
        assertEqual(parts.count, 3, "\(parts)")
        XCTAssertTrue(parts[0].hasSuffix("CREATE TABLE a(x text DEFAULT ';')"))
        XCTAssertTrue(parts[1].hasSuffix("END $$"))
        assertEqual(parts[2], "SELECT 1")
    }

    func assertProblem(
        _ kind: PostgresProblem.Kind, containing text: String, file: StaticString = #filePath, line: UInt = #line,
        _ body: () async throws -> Void
    ) async {
        do {
            try await body()
            XCTFail("no error; expected \(kind): \(text)", file: file, line: line)
        } catch let p as PostgresProblem {
            assertEqual(p.kind, kind, p.description, file: file, line: line)
            XCTAssertTrue(p.description.contains(text), p.description, file: file, line: line)
        } catch {
            XCTFail("not a PostgresProblem: \(String(reflecting: error))", file: file, line: line)
        }
    }
}

func freePort() throws -> Int {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = ["python3", "-c", "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])"]
    let out = Pipe()
    p.standardOutput = out
    try p.run()
    p.waitUntilExit()
    return Int(
        String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            .trimmingCharacters(in: .whitespacesAndNewlines)) ?? 1
}
