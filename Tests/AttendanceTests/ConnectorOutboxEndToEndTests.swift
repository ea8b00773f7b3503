import Attendance
import AttendanceCore
import AttendanceTesting
import Foundation
import GRDB
import Logging
import SectorConnector
import XCTest

/// The SQLite outbox, the sender over it, and `attendance sync` as a process, against the real gateway.
final class ConnectorOutboxEndToEndTests: XCTestCase {
    var dir: URL!
    override func setUpWithError() throws { dir = try Fixture.temporaryDirectory() }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    let fastBackoff = BackoffPolicy(initial: 0.001, multiplier: 2, maximum: 0.01)

    func sender(
        _ store: AttendanceStore, port: Int, token: String, batch: Int = 10,
        failFast: Bool = false
    ) throws -> (SectorSender<SQLiteOutbox>, SectorClient) {
        // failFast: a refused connection fails at once instead of async-http-client retrying it until the timeout.
        let client = try SectorClient(
            endpoint: "http://127.0.0.1:\(port)", token: try BearerToken(token), timeoutSeconds: 10,
            allowInsecureHTTP: true, retryConnectionEstablishment: !failFast)
        return (
            SectorSender(
                queue: SQLiteOutbox(store: store), transport: client, options: .init(batchSize: batch, backoff: fastBackoff)),
            client
        )
    }

    func drainAll(_ sender: SectorSender<SQLiteOutbox>, _ store: AttendanceStore, passes: Int = 200) async throws {
        for _ in 0..<passes {
            if try SQLiteOutbox(store: store).status().pending == 0 { return }
            _ = try await sender.drain(ignoringSchedule: true)
        }
        XCTFail("outbox still pending after \(passes) passes")
    }

    /// The gateway holds each outbox (record_id, version) exactly once, with the payload the outbox stored.
    func assertGatewayMatchesOutbox(
        _ gateway: ReferenceGateway, _ store: AttendanceStore, file: StaticString = #filePath, line: UInt = #line
    ) async throws {
        let rows = try Fixture.outbox(store)
        XCTAssertTrue(
            rows.allSatisfy { $0.state == "delivered" }, "\(rows.filter { $0.state != "delivered" }.count) not delivered",
            file: file, line: line)
        let held = try await gateway.records()
        XCTAssertEqual(held.count, rows.count, "stored once each", file: file, line: line)
        XCTAssertEqual(Set(held.map(\.key)), Set(rows.map(\.key)), file: file, line: line)
        let payloads = Dictionary(uniqueKeysWithValues: rows.map { ($0.key, $0.payload) })
        for r in held {
            XCTAssertEqual(String(decoding: try r.jsonData(), as: UTF8.self), payloads[r.key], file: file, line: line)
        }
    }

    func testOutboxQueueSemantics() async throws {
        let store = try Fixture.makeStore(in: dir)
        try Fixture.recordEvents(store, count: 12)
        let outbox = SQLiteOutbox(store: store)
        let all = try await outbox.pending(after: nil, dueBy: nil, limit: 100)
        XCTAssertEqual(all.count, 12)
        XCTAssertEqual(all.map(\.key), all.map(\.key).sorted())
        let firstFive = try await outbox.pending(after: nil, dueBy: Date(), limit: 5)
        let rest = try await outbox.pending(after: firstFive.last!.key, dueBy: Date(), limit: 100)
        XCTAssertEqual(firstFive.map(\.key) + rest.map(\.key), all.map(\.key), "keyset paging covers everything once")
        let due = try await outbox.nextAttemptDate()
        XCTAssertEqual(due, .distantPast, "new records are due at once")

        let later = Date().addingTimeInterval(600) // within the backoff's maximum (900 s)
        try await outbox.reschedule([OutboxRetry(key: all[0].key, attempts: 1, nextAttemptAt: later, error: "transport: refused")]
        )
        try await outbox.park([OutboxParking(key: all[1].key, reason: "HTTP 403: no")])
        try await outbox.markDelivered([all[2].key], at: Date())
        let dueNow = try await outbox.pending(after: nil, dueBy: Date(), limit: 100).map(\.key)
        XCTAssertFalse(dueNow.contains(all[0].key), "a rescheduled record waits")
        XCTAssertFalse(dueNow.contains(all[1].key))
        XCTAssertFalse(dueNow.contains(all[2].key))
        XCTAssertEqual(dueNow.count, 9)
        let anyTime = try await outbox.pending(after: nil, dueBy: nil, limit: 100)
        XCTAssertEqual(anyTime.first { $0.key == all[0].key }?.attempts, 1, "sync now ignores the schedule")

        let status = try outbox.status()
        XCTAssertEqual(status.pending, 10)
        XCTAssertEqual(status.parked, 1)
        XCTAssertEqual(status.delivered, 1)
        XCTAssertEqual(Set(status.problems.map(\.error)), ["transport: refused", "HTTP 403: no"])

        XCTAssertEqual(try outbox.requeueParked(), 1)
        XCTAssertEqual(try outbox.status().parked, 0)
        XCTAssertEqual(try store.auditLog.entries().last?.action, "outbox.requeue")
        // Stored payloads are what the store wrote, and decode as records of the contract.
        for item in anyTime {
            let r = try JSONDecoder().decode(SectorRecord.self, from: item.payload)
            XCTAssertEqual(r.key, item.key)
            XCTAssertEqual(r.contractViolations(), [])
        }
    }

    func testGatewayDownThenUpDeliversEveryOutboxRowExactlyOnce() async throws {
        let store = try Fixture.makeStore(in: dir)
        try Fixture.recordEvents(store, count: 40)
        let probe = try await ReferenceGateway(directory: dir)
        let port = probe.port, token = probe.token
        probe.stop()

        let (s, client) = try sender(store, port: port, token: token, failFast: true)
        for _ in 0..<3 {
            let report = try await s.drain(ignoringSchedule: true)
            XCTAssertNotNil(report.interruption)
            XCTAssertEqual(report.delivered, 0)
        }
        XCTAssertEqual(try SQLiteOutbox(store: store).status().pending, 40)
        XCTAssertEqual(try SQLiteOutbox(store: store).status().parked, 0)

        let gateway = try await ReferenceGateway(directory: dir, port: port, token: token)
        defer { gateway.stop() }
        try await drainAll(s, store)
        await client.shutdown()
        try await assertGatewayMatchesOutbox(gateway, store)
        let stats = try await gateway.stats()
        XCTAssertEqual(stats.accepted, 40)
    }

    func testServerErrorsAndLostAcknowledgementsWithSQLite() async throws {
        let store = try Fixture.makeStore(in: dir)
        try Fixture.recordEvents(store, count: 60)
        let gateway = try await ReferenceGateway(
            directory: dir, arguments: ["--fail-rate", "0.3", "--fail-after-store-rate", "0.2", "--seed", "11"])
        defer { gateway.stop() }
        let (s, client) = try sender(store, port: gateway.port, token: gateway.token, batch: 7)
        try await drainAll(s, store)
        await client.shutdown()
        try await assertGatewayMatchesOutbox(gateway, store)
        let stats = try await gateway.stats()
        XCTAssertGreaterThan(stats.duplicate, 0, "lost acknowledgements came back as duplicates")
    }

    func testCorrectionsReachTheGatewayAsHigherVersions() async throws {
        let store = try Fixture.makeStore(in: dir)
        try Fixture.recordEvents(store, count: 5)
        let day = LocalDate("2026-09-07")!
        let gateway = try await ReferenceGateway(directory: dir)
        defer { gateway.stop() }
        let (s, client) = try sender(store, port: gateway.port, token: gateway.token)
        try await drainAll(s, store)

        let late = try XCTUnwrap(
            try store.events.correct(student: "HS0001", day: day, status: .late, reason: "clock was wrong"))
        XCTAssertEqual(late.eventKind, .update)
        XCTAssertEqual(late.version, 2)
        let cancel = try store.events.cancelEvent(student: "HS0002", day: day, reason: "wrong match")
        XCTAssertEqual(cancel.version, 2)
        _ = try store.events.excuse(student: "HS0003", day: LocalDate("2026-09-08")!, reason: "ốm")
        try await drainAll(s, store)
        await client.shutdown()
        try await assertGatewayMatchesOutbox(gateway, store)

        let latest = Dictionary(
            uniqueKeysWithValues: try await gateway.records(latestOnly: true).map {
                ($0.studentCode + $0.schoolDay + $0.session, $0)
            })
        XCTAssertEqual(latest["HS00012026-09-07morning"]?.status, "late")
        XCTAssertEqual(latest["HS00012026-09-07morning"]?.eventKind, .update)
        XCTAssertEqual(latest["HS00022026-09-07morning"]?.eventKind, .cancel)
        XCTAssertEqual(latest["HS00032026-09-08morning"]?.status, "excused")
        XCTAssertEqual(latest["HS00032026-09-08afternoon"]?.status, "excused")
    }

    /// The sender, as the real `attendance sync` process, is killed with SIGKILL while a batch it sent is
    /// stored at the gateway but not yet acknowledged; twice. Then a clean run: nothing lost, nothing twice.
    func testSyncKilledMidBatchLosesNothing() async throws {
        let attendance = try Fixture.executable("attendance")
        let store = try Fixture.makeStore(in: dir)
        try Fixture.recordEvents(store, count: 30)
        let gateway = try await ReferenceGateway(directory: dir, arguments: ["--delay-after-store-ms", "3000"])
        defer { gateway.stop() }
        let configPath = try writeConfig(port: gateway.port, tokenFile: gateway.tokenFile, batch: 5)

        var killedWithStored: [Int] = []
        for target in [5, 15] {
            let child = Process()
            child.executableURL = attendance
            child.arguments = ["sync", "--config", configPath]
            child.standardOutput = FileHandle.nullDevice
            child.standardError = FileHandle.nullDevice
            try child.run()
            // Wait until the gateway has stored `target` records: the batch that got it there is now
            // waiting 3 s for its acknowledgement, so the child is mid-batch.
            var stored = 0
            for _ in 0..<1000 where stored < target && child.isRunning {
                stored = try await gateway.stats().stored
                if stored < target { try await Task.sleep(nanoseconds: 10_000_000) }
            }
            XCTAssertTrue(child.isRunning, "the child was still sending")
            kill(child.processIdentifier, SIGKILL)
            child.waitUntilExit()
            XCTAssertEqual(child.terminationReason, .uncaughtSignal)
            killedWithStored.append(stored)
            let delivered = try SQLiteOutbox(store: store).status().delivered
            XCTAssertLessThan(delivered, stored, "the gateway holds records the outbox has not marked")
        }
        XCTAssertEqual(killedWithStored, [5, 15])

        try await gateway.setFaults([:])
        let final = Process()
        final.executableURL = attendance
        final.arguments = ["sync", "--config", configPath]
        let out = Pipe()
        final.standardOutput = out
        final.standardError = out
        try final.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        final.waitUntilExit()
        XCTAssertEqual(final.terminationStatus, 0, text)
        try await assertGatewayMatchesOutbox(gateway, store)
        let stats = try await gateway.stats()
        XCTAssertEqual(stats.accepted, 30)
        XCTAssertGreaterThanOrEqual(stats.duplicate, 5, "the unacknowledged batches were sent again and absorbed")

        // `attendance sync status` reads the same numbers.
        let status = Process()
        status.executableURL = attendance
        status.arguments = ["sync", "status", "--json", "--config", configPath]
        let so = Pipe()
        status.standardOutput = so
        try status.run()
        let json = so.fileHandleForReading.readDataToEndOfFile()
        status.waitUntilExit()
        let decoded = try JSONDecoder().decode(SQLiteOutbox.Status.self, from: json)
        XCTAssertEqual(decoded.delivered, 30)
        XCTAssertEqual(decoded.pending, 0)
    }

    static func config(port: Int, tokenFile: String) -> AttendanceConfig {
        var c = AttendanceConfig()
        c.school.code = "79000001"
        c.connector.endpoint = "http://127.0.0.1:\(port)"
        c.connector.tokenFile = tokenFile
        c.connector.allowInsecureHTTP = true
        return c
    }

    func writeConfig(port: Int, tokenFile: String, batch: Int) throws -> String {
        let path = dir.appendingPathComponent("attendance.toml").path
        let text = """
            [school]
            code = "79000001"

            [database]
            path = "\(dir.appendingPathComponent("att.sqlite").path)"
            key_file = "\(dir.appendingPathComponent("att.key").path)"

            [connector]
            endpoint = "http://127.0.0.1:\(port)"
            token_file = "\(tokenFile)"
            batch_size = \(batch)
            timeout_seconds = 60
            allow_insecure_http = true
            """
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        return path
    }
}
