import AttendanceTesting
import Foundation
import Logging
import SectorConnector
import XCTest

/// The connector against the real reference gateway process, under the faults the issue names.
final class ConnectorFaultEndToEndTests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws { dir = try makeTemporaryDirectory() }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    func makeSender(
        _ outbox: MemoryOutbox, port: Int, token: String, batch: Int = 25, timeout: Double = 10,
        failFast: Bool = false, logger: Logger = Logger(label: "test")
    ) throws -> (SectorSender<MemoryOutbox>, SectorClient) {
        let client = try SectorClient(
            endpoint: "http://127.0.0.1:\(port)", token: try BearerToken(token),
            timeoutSeconds: timeout, allowInsecureHTTP: true,
            retryConnectionEstablishment: !failFast, logger: logger)
        let sender = SectorSender(
            queue: outbox, transport: client,
            options: .init(batchSize: batch, backoff: testBackoff, pollInterval: 0.01), logger: logger)
        return (sender, client)
    }

    /// Drains until nothing is pending (each pass sends every pending record at most once), at most `passes` times.
    @discardableResult
    func drainUntilEmpty(_ sender: SectorSender<MemoryOutbox>, _ outbox: MemoryOutbox, passes: Int = 200) async throws -> Int {
        var n = 0
        while await outbox.count(.pending) > 0 {
            n += 1
            if n > passes { XCTFail("still \(await outbox.count(.pending)) pending after \(passes) passes"); break }
            _ = try await sender.drain(ignoringSchedule: true)
        }
        return n
    }

    /// The gateway holds exactly the outbox's keys, each once.
    func assertExactlyOnce(
        _ gateway: ReferenceGateway, _ records: [SectorRecord], file: StaticString = #filePath, line: UInt = #line
    ) async throws {
        let held = try await gateway.records()
        let keys = held.map(\.key)
        XCTAssertEqual(keys.count, Set(keys).count, "a (record_id, version) stored twice", file: file, line: line)
        XCTAssertEqual(Set(keys), Set(records.map(\.key)), file: file, line: line)
        // What arrived is what was sent, field for field.
        let sent = Dictionary(uniqueKeysWithValues: records.map { ($0.key, $0) })
        for r in held { XCTAssertEqual(r, sent[r.key], file: file, line: line) }
    }

    func testGatewayDownThenUpDeliversEverythingExactlyOnce() async throws {
        // Learn a free port, then take the gateway down for the first part of the run.
        let first = try await ReferenceGateway(directory: dir)
        let port = first.port, token = first.token
        first.stop()

        let outbox = MemoryOutbox()
        let records = sampleRecords(120)
        for r in records { try await outbox.add(r) }
        let (sender, client) = try makeSender(outbox, port: port, token: token, failFast: true)
        defer { Task { await client.shutdown() } }

        for _ in 0..<3 {
            let report = try await sender.drain()
            XCTAssertNotNil(report.interruption)
            XCTAssertEqual(report.delivered, 0)
            XCTAssertEqual(report.parked, 0)
            XCTAssertEqual(report.batches, 1, "a pass stops at the first unreachable batch")
        }
        let pendingWhileDown = await outbox.count(.pending)
        XCTAssertEqual(pendingWhileDown, records.count, "nothing is lost or parked while the gateway is down")
        // Three passes, each stopped after one batch of 25 (the second batch a pass tries may be another
        // one, when the first is not due again yet): 75 failed attempts in all, each with the transport error.
        let rows = await outbox.rows.values
        XCTAssertEqual(rows.reduce(0) { $0 + $1.attempts }, 75)
        for row in rows where row.attempts > 0 {
            XCTAssertTrue(row.lastError?.hasPrefix("transport:") == true, row.lastError ?? "")
        }

        let gateway = try await ReferenceGateway(directory: dir, port: port, token: token)
        defer { gateway.stop() }
        try await drainUntilEmpty(sender, outbox)

        let delivered = await outbox.count(.delivered)
        XCTAssertEqual(delivered, records.count)
        try await assertExactlyOnce(gateway, records)
        let stats = try await gateway.stats()
        XCTAssertEqual(stats.accepted, records.count)
        XCTAssertEqual(stats.rejected, 0)
    }

    func testThirtyPercentServerErrorsStillDeliverEverything() async throws {
        let gateway = try await ReferenceGateway(directory: dir, arguments: ["--fail-rate", "0.3", "--seed", "7"])
        defer { gateway.stop() }
        let outbox = MemoryOutbox()
        let records = sampleRecords(200)
        for r in records { try await outbox.add(r) }
        let (sender, client) = try makeSender(outbox, port: gateway.port, token: gateway.token, batch: 10)
        defer { Task { await client.shutdown() } }

        try await drainUntilEmpty(sender, outbox)

        let stats = try await gateway.stats()
        XCTAssertGreaterThan(stats.injected_failures, 5, "the fault was really injected")
        let delivered = await outbox.count(.delivered)
        let parked = await outbox.count(.parked)
        XCTAssertEqual(delivered, records.count)
        XCTAssertEqual(parked, 0)
        try await assertExactlyOnce(gateway, records)
    }

    func testRetriedDuplicatesAreAbsorbed() async throws {
        // Half the acknowledgements are lost after storing, and a fifth of connections are dropped.
        let gateway = try await ReferenceGateway(
            directory: dir, arguments: ["--fail-after-store-rate", "0.5", "--drop-rate", "0.2", "--seed", "3"])
        defer { gateway.stop() }
        let outbox = MemoryOutbox()
        let records = sampleRecords(150)
        for r in records { try await outbox.add(r) }
        let (sender, client) = try makeSender(outbox, port: gateway.port, token: gateway.token, batch: 10)
        defer { Task { await client.shutdown() } }

        try await drainUntilEmpty(sender, outbox)

        let stats = try await gateway.stats()
        XCTAssertGreaterThan(stats.injected_failures_after_store, 0)
        XCTAssertGreaterThan(stats.injected_drops, 0)
        XCTAssertGreaterThan(stats.duplicate, 0, "records were sent again after a lost acknowledgement")
        XCTAssertEqual(stats.accepted, records.count)
        XCTAssertEqual(stats.rejected, 0)
        let delivered = await outbox.count(.delivered)
        XCTAssertEqual(delivered, records.count)
        try await assertExactlyOnce(gateway, records)
    }

    /// The gateway acknowledges only what is on disk: while its store file cannot grow (a full disk,
    /// made here with a file-size limit on the running gateway) nothing is acknowledged nor remembered,
    /// so once the disk has room the retries are stored, not answered "duplicate" for records it never kept.
    func testAGatewayThatCannotWriteAcknowledgesNothingAndStoresTheRetry() async throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/prlimit") else {
            throw XCTSkip("prlimit (util-linux) is not installed")
        }
        let gateway = try await ReferenceGateway(directory: dir)
        defer { gateway.stop() }
        func limitFileSize(_ soft: String) throws {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/prlimit")
            p.arguments = ["--pid", "\(gateway.process.processIdentifier)", "--fsize=\(soft):unlimited"]
            try p.run()
            p.waitUntilExit()
            XCTAssertEqual(p.terminationStatus, 0, "prlimit --fsize=\(soft)")
        }
        let outbox = MemoryOutbox()
        let records = sampleRecords(20)
        for r in records { try await outbox.add(r) }
        let (sender, client) = try makeSender(outbox, port: gateway.port, token: gateway.token, batch: 5)
        defer { Task { await client.shutdown() } }

        let size = (try FileManager.default.attributesOfItem(atPath: gateway.storePath)[.size] as? Int) ?? 0
        try limitFileSize("\(size)")
        _ = try await sender.drain(ignoringSchedule: true)
        let deliveredWhileFull = await outbox.count(.delivered)
        XCTAssertEqual(deliveredWhileFull, 0, "nothing acknowledged while the gateway could not write")
        let heldWhileFull = try await gateway.records()
        XCTAssertEqual(heldWhileFull.count, 0)
        XCTAssertEqual(
            try FileManager.default.attributesOfItem(atPath: gateway.storePath)[.size] as? Int, size, "no half-written line left")

        try limitFileSize("unlimited")
        try await drainUntilEmpty(sender, outbox)
        let stats = try await gateway.stats()
        XCTAssertEqual(stats.duplicate, 0, "a record the gateway never stored is not a duplicate")
        XCTAssertEqual(stats.accepted, records.count)
        try await assertExactlyOnce(gateway, records)
    }

    func testTimeoutIsRetriedAndTheLateStoreAbsorbed() async throws {
        let gateway = try await ReferenceGateway(directory: dir, arguments: ["--delay-ms", "1500"])
        defer { gateway.stop() }
        let outbox = MemoryOutbox()
        let records = Array(sampleRecords(4))
        for r in records { try await outbox.add(r) }
        let (sender, client) = try makeSender(outbox, port: gateway.port, token: gateway.token, timeout: 0.3)
        defer { Task { await client.shutdown() } }

        let report = try await sender.drain(ignoringSchedule: true)
        XCTAssertEqual(report.delivered, 0)
        XCTAssertNotNil(report.interruption)
        // The slow gateway finishes storing after the client gave up.
        var stored = 0
        for _ in 0..<200 where stored < records.count {
            stored = try await gateway.stats().stored
            if stored < records.count { try await Task.sleep(nanoseconds: 50_000_000) }
        }
        XCTAssertEqual(stored, records.count)

        try await gateway.setFaults([:])
        try await drainUntilEmpty(sender, outbox)
        let stats = try await gateway.stats()
        XCTAssertEqual(stats.duplicate, records.count)
        try await assertExactlyOnce(gateway, records)
    }

    func testGatewayRestartKeepsWhatItStored() async throws {
        let gateway = try await ReferenceGateway(directory: dir)
        let outbox = MemoryOutbox()
        let records = sampleRecords(30)
        for r in records { try await outbox.add(r) }
        let (sender, client) = try makeSender(outbox, port: gateway.port, token: gateway.token)
        defer { Task { await client.shutdown() } }
        try await drainUntilEmpty(sender, outbox)
        gateway.stop()

        let again = try await ReferenceGateway(directory: dir, port: gateway.port, token: gateway.token)
        defer { again.stop() }
        try await assertExactlyOnce(again, records)
        // A record sent again after the restart is a duplicate, not a second copy.
        let (status, data) = try await again.request(
            "POST", "/v1/attendance-records",
            body: Data(SectorClient.body(for: [try records[0].jsonData()]).readableBytesView))
        XCTAssertEqual(status, 200)
        XCTAssertEqual(try JSONDecoder().decode(BatchResult.self, from: data).results.map(\.status), [.duplicate])
    }

    func testStaleVersionCountsAsDelivered() async throws {
        let gateway = try await ReferenceGateway(directory: dir)
        defer { gateway.stop() }
        let all = sampleRecords(1) // v1 NEW and v2 UPDATE of the same record
        XCTAssertEqual(all.map(\.version), [1, 2])
        let outbox = MemoryOutbox()
        try await outbox.add(all[1])
        let (sender, client) = try makeSender(outbox, port: gateway.port, token: gateway.token)
        defer { Task { await client.shutdown() } }
        try await drainUntilEmpty(sender, outbox)
        try await outbox.add(all[0])
        try await drainUntilEmpty(sender, outbox)

        let stats = try await gateway.stats()
        XCTAssertEqual(stats.stale, 1)
        let delivered = await outbox.count(.delivered)
        XCTAssertEqual(delivered, 2)
        let latest = try await gateway.records(latestOnly: true)
        XCTAssertEqual(latest, [all[1]])
    }

    func testConflictingContentIsParkedWithTheGatewaysReason() async throws {
        let gateway = try await ReferenceGateway(directory: dir)
        defer { gateway.stop() }
        let original = sampleRecords(3)
        let outbox = MemoryOutbox()
        for r in original { try await outbox.add(r) }
        let (sender, client) = try makeSender(outbox, port: gateway.port, token: gateway.token)
        defer { Task { await client.shutdown() } }
        try await drainUntilEmpty(sender, outbox)

        // Same (record_id, version), different content, in a batch with a good new record.
        let second = MemoryOutbox()
        var changed = original[0]
        changed.status = "absent"
        var fresh = original[0]
        fresh.recordID = "evt-fresh"
        try await second.add(changed)
        try await second.add(fresh)
        let (sender2, client2) = try makeSender(second, port: gateway.port, token: gateway.token)
        defer { Task { await client2.shutdown() } }
        let report = try await sender2.drain(ignoringSchedule: true)
        XCTAssertEqual(report.delivered, 1)
        XCTAssertEqual(report.parked, 1)
        let parkedRow = await second.row(changed.key)
        XCTAssertEqual(parkedRow?.state, .parked)
        XCTAssertTrue(parkedRow?.lastError?.contains("already stored with different content") == true, parkedRow?.lastError ?? "")
        let freshState = await second.row(fresh.key)?.state
        XCTAssertEqual(freshState, .delivered)
    }

    func testNonRetryableStatusParksAndRetryableStatusKeeps() async throws {
        let gateway = try await ReferenceGateway(directory: dir)
        defer { gateway.stop() }
        let records = sampleRecords(5)

        try await gateway.setFaults(["force_status": 429])
        let a = MemoryOutbox()
        for r in records { try await a.add(r) }
        let (sa, ca) = try makeSender(a, port: gateway.port, token: gateway.token)
        defer { Task { await ca.shutdown() } }
        let ra = try await sa.drain(ignoringSchedule: true)
        XCTAssertEqual(ra.parked, 0)
        XCTAssertEqual(ra.rescheduled, records.count)
        let pendingA = await a.count(.pending)
        XCTAssertEqual(pendingA, records.count)

        try await gateway.setFaults(["force_status": 403])
        let rb = try await sa.drain(ignoringSchedule: true)
        XCTAssertEqual(rb.parked, records.count)
        let reason = await a.row(records[0].key)?.lastError ?? ""
        XCTAssertTrue(reason.hasPrefix("HTTP 403"), reason)
    }

    func testWrongTokenIsRefusedAndNeverLogged() async throws {
        let gateway = try await ReferenceGateway(directory: dir)
        defer { gateway.stop() }
        let secret = "s3cret-\(UUID().uuidString)"
        let capture = LogCapture()
        var logger = Logger(label: "capture") { _ in capture }
        logger.logLevel = .trace
        let outbox = MemoryOutbox()
        for r in sampleRecords(3) { try await outbox.add(r) }
        let (sender, client) = try makeSender(outbox, port: gateway.port, token: secret, logger: logger)
        defer { Task { await client.shutdown() } }
        let report = try await sender.drain(ignoringSchedule: true)
        XCTAssertEqual(report.parked, 4)
        let reason = await outbox.row(sampleRecords(3)[0].key)?.lastError ?? ""
        XCTAssertTrue(reason.hasPrefix("HTTP 401"), reason)
        let unauthorized = try await gateway.stats().unauthorized
        XCTAssertEqual(unauthorized, 1)
        XCTAssertFalse(capture.lines.isEmpty, "the capture saw the sender's logs")
        XCTAssertFalse(capture.lines.contains { $0.contains(secret) }, "the token reached a log line")
        XCTAssertFalse(String(describing: try BearerToken(secret)).contains(secret))
        XCTAssertFalse(reason.contains(secret))
    }

    func testMalformedRecordsAreRejectedWith422AndAReason() async throws {
        let gateway = try await ReferenceGateway(directory: dir)
        defer { gateway.stop() }
        let good = try String(decoding: sampleRecords(1)[0].jsonData(), as: UTF8.self)
        let missing = #"{"record_id":"evt-x","version":1,"event_kind":"NEW"}"#
        var bad = sampleRecords(1)[0]
        bad.recordID = "evt-bad"
        bad.status = "sick"
        bad.schoolDay = "2026-02-30"
        let badJSON = try String(decoding: bad.jsonData(), as: UTF8.self)
        let body = Data("{\"records\":[\(good),\(missing),\(badJSON),42]}".utf8)
        let (status, data) = try await gateway.request("POST", "/v1/attendance-records", body: body)
        XCTAssertEqual(status, 422)
        let results = try JSONDecoder().decode(BatchResult.self, from: data).results
        XCTAssertEqual(results.map(\.status), [.accepted, .rejected, .rejected, .rejected])
        XCTAssertEqual(results[1].recordID, "evt-x")
        XCTAssertTrue(results[1].reason?.contains("missing field") == true, results[1].reason ?? "")
        XCTAssertTrue(results[2].reason?.contains("status must be") == true, results[2].reason ?? "")
        XCTAssertTrue(results[2].reason?.contains("school_day") == true, results[2].reason ?? "")
        let held = try await gateway.records().map(\.recordID)
        XCTAssertEqual(held, [sampleRecords(1)[0].recordID])

        let (s400, _) = try await gateway.request("POST", "/v1/attendance-records", body: Data("not json".utf8))
        XCTAssertEqual(s400, 400)
        let (sEmpty, _) = try await gateway.request("POST", "/v1/attendance-records", body: Data(#"{"records":[]}"#.utf8))
        XCTAssertEqual(sEmpty, 400)
        let (s401, _) = try await gateway.request("POST", "/v1/attendance-records", body: body, token: "wrong")
        XCTAssertEqual(s401, 401)
        let (sList401, _) = try await gateway.request("GET", "/v1/attendance-records", token: "wrong")
        XCTAssertEqual(sList401, 401)
    }

    func testGatewayRefusesNonLoopbackBind() throws {
        let p = Process()
        p.executableURL = ReferenceGateway.executable
        p.arguments = ["--host", "0.0.0.0", "--store", dir.appendingPathComponent("x.jsonl").path, "--token-file", "/dev/null"]
        let err = Pipe()
        p.standardError = err
        p.standardOutput = Pipe()
        try p.run()
        p.waitUntilExit()
        XCTAssertNotEqual(p.terminationStatus, 0)
        let text = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        XCTAssertTrue(text.contains("loopback"), text)
    }
}

/// Collects every log line (message and metadata) so a test can look for a leaked secret.
final class LogCapture: LogHandler, @unchecked Sendable {
    private let lock = NSLock()
    private var _lines: [String] = []
    var lines: [String] { lock.withLock { _lines } }
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace
    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }
    func log(event: LogEvent) {
        let all = self.metadata.merging(event.metadata ?? [:]) { $1 }
        lock.withLock { _lines.append("\(event.level) \(event.message) \(all) \(event.error.map { "\($0)" } ?? "")") }
    }
}
