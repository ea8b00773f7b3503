import Foundation
import SectorConnector
import XCTest

/// The contract's pure parts: classification, backoff, URLs, validation, the body.
final class ConnectorUnitTests: XCTestCase {
    func testClassification() throws {
        let ok = try JSONEncoder().encode(BatchResult(results: [RecordResult(recordID: "a", version: 1, status: .accepted)]))
        XCTAssertEqual(
            SectorClient.classify(status: 200, body: ok, retryAfter: nil, expected: 1),
            .results([RecordResult(recordID: "a", version: 1, status: .accepted)]))
        // A 2xx whose answer does not cover the batch proves nothing: retry.
        guard case .retryable = SectorClient.classify(status: 200, body: ok, retryAfter: nil, expected: 2) else {
            return XCTFail()
        }
        guard case .retryable = SectorClient.classify(status: 200, body: Data("oops".utf8), retryAfter: nil, expected: 1) else {
            return XCTFail()
        }
        // 422 with per-record results is applied record by record; without, the batch is refused.
        XCTAssertEqual(
            SectorClient.classify(status: 422, body: ok, retryAfter: nil, expected: 1),
            .results([RecordResult(recordID: "a", version: 1, status: .accepted)]))
        XCTAssertEqual(
            SectorClient.classify(status: 422, body: Data(#"{"error":"bad"}"#.utf8), retryAfter: nil, expected: 1),
            .rejected("HTTP 422: bad"))
        for code in [408, 429, 500, 502, 503, 504] {
            guard case .retryable(_, let after) = SectorClient.classify(status: code, body: Data(), retryAfter: 3, expected: 1)
            else {
                return XCTFail("\(code) should be retryable")
            }
            XCTAssertEqual(after, 3)
        }
        for code in [400, 401, 403, 404, 409, 413] {
            guard case .rejected(let reason) = SectorClient.classify(status: code, body: Data(), retryAfter: nil, expected: 1)
            else {
                return XCTFail("\(code) should park")
            }
            XCTAssertTrue(reason.hasPrefix("HTTP \(code)"))
        }
        guard case .retryable = SectorClient.classify(status: 302, body: Data(), retryAfter: nil, expected: 1) else {
            return XCTFail()
        }
    }

    func testBackoffGrowsWithJitterAndCap() {
        let policy = BackoffPolicy(initial: 2, multiplier: 2, maximum: 60)
        var rng = SystemRandomNumberGenerator()
        for attempts in 1...40 {
            let ceiling = min(60, 2 * pow(2, Double(attempts - 1)))
            XCTAssertEqual(policy.ceiling(attempts: attempts), ceiling)
            for _ in 0..<20 {
                let d = policy.delay(attempts: attempts, using: &rng)
                XCTAssertGreaterThanOrEqual(d, ceiling / 2)
                XCTAssertLessThanOrEqual(d, ceiling)
            }
        }
        XCTAssertEqual(policy.ceiling(attempts: 100_000), 60)
        let spread = Set((0..<50).map { _ in policy.delay(attempts: 3, using: &rng) })
        XCTAssertGreaterThan(spread.count, 40, "jitter spreads retries")
    }

    func testEndpointRules() throws {
        XCTAssertEqual(
            try SectorClient.recordsURL(endpoint: "https://gw.example/api", allowInsecureHTTP: false),
            "https://gw.example/api/v1/attendance-records")
        XCTAssertEqual(
            try SectorClient.recordsURL(endpoint: "https://gw.example/", allowInsecureHTTP: false),
            "https://gw.example/v1/attendance-records")
        XCTAssertThrowsError(try SectorClient.recordsURL(endpoint: "http://gw.example", allowInsecureHTTP: false))
        XCTAssertNoThrow(try SectorClient.recordsURL(endpoint: "http://127.0.0.1:8080", allowInsecureHTTP: true))
        XCTAssertNoThrow(try SectorClient.recordsURL(endpoint: "http://localhost:8080", allowInsecureHTTP: true))
        XCTAssertNoThrow(try SectorClient.recordsURL(endpoint: "http://[::1]:8080", allowInsecureHTTP: true))
        // allow_insecure_http is for a gateway on this box only: plain http to another host stays refused.
        for host in [
            "http://gw.example", "http://192.168.1.10:8080", "http://127.0.0.1.evil.example", "http://localhost.example",
        ] {
            XCTAssertThrowsError(try SectorClient.recordsURL(endpoint: host, allowInsecureHTTP: true), host) { error in
                XCTAssertTrue(
                    "\(error)".contains("only for a gateway on this box") || "\(error)".contains("plain http"), "\(error)")
            }
        }
        XCTAssertThrowsError(try SectorClient.recordsURL(endpoint: "ftp://gw.example", allowInsecureHTTP: true))
        XCTAssertThrowsError(try SectorClient.recordsURL(endpoint: "gw.example", allowInsecureHTTP: true))
        XCTAssertThrowsError(try SectorClient.recordsURL(endpoint: "https://gw.example/?token=x", allowInsecureHTTP: false))
    }

    func testTokenIsRedactedAndComparedExactly() throws {
        let t = try BearerToken("abc.DEF-123\n")
        XCTAssertEqual(t.authorizationValue, "Bearer abc.DEF-123")
        XCTAssertEqual("\(t)", "<redacted token>")
        XCTAssertEqual(String(reflecting: t), "<redacted token>")
        XCTAssertTrue(t.matches("abc.DEF-123"))
        XCTAssertFalse(t.matches("abc.DEF-12"))
        XCTAssertFalse(t.matches("abc.DEF-1234"))
        XCTAssertThrowsError(try BearerToken("  \n"))
        XCTAssertThrowsError(try BearerToken("two words"))
    }

    func testValidation() {
        var r = sampleRecords(1)[0]
        XCTAssertEqual(r.contractViolations(), [])
        r.eventKind = .update
        XCTAssertEqual(r.contractViolations(), ["UPDATE needs a version above 1"])
        r = sampleRecords(1)[0]
        r.recordID = "bad id"
        r.kind = "arrive"
        r.occurredAt = "yesterday"
        r.studentCode = ""
        let problems = r.contractViolations()
        XCTAssertEqual(problems.count, 4, "\(problems)")
        r = sampleRecords(1)[0]
        r.schoolDay = "2026-02-29"
        XCTAssertEqual(r.contractViolations(), ["school_day is not a date yyyy-MM-dd"])
        r.schoolDay = "2028-02-29"
        XCTAssertEqual(r.contractViolations(), [])
    }

    func testBodyCarriesStoredPayloadsByteForByte() throws {
        let payloads = try sampleRecords(2).map { try $0.jsonData() }
        let body = Data(SectorClient.body(for: payloads).readableBytesView)
        let decoded = try JSONDecoder().decode(RecordBatch.self, from: body)
        XCTAssertEqual(decoded.records, sampleRecords(2))
        let text = String(decoding: body, as: UTF8.self)
        for p in payloads { XCTAssertTrue(text.contains(String(decoding: p, as: UTF8.self))) }
    }

    func testSenderParksPayloadsThatBreakTheContractWithoutSending() async throws {
        let outbox = MemoryOutbox()
        var bad = sampleRecords(1)[0]
        bad.status = "sick"
        try await outbox.add(bad)
        await outbox.addRaw(RecordKey(recordID: "garbage", version: 1), payload: Data("{".utf8))
        let transport = CountingTransport()
        let sender = SectorSender(queue: outbox, transport: transport, options: .init(batchSize: 10, backoff: testBackoff))
        let report = try await sender.drain()
        XCTAssertEqual(report.parked, 2)
        XCTAssertEqual(report.batches, 0)
        XCTAssertEqual(transport.calls, 0)
        let reason = await outbox.row(bad.key)?.lastError ?? ""
        XCTAssertTrue(reason.contains("status must be"), reason)
    }

    func testRunLoopDeliversAndStopsOnCancel() async throws {
        let outbox = MemoryOutbox()
        for r in sampleRecords(7) { try await outbox.add(r) }
        let transport = CountingTransport()
        let sender = SectorSender(
            queue: outbox, transport: transport, options: .init(batchSize: 3, backoff: testBackoff, pollInterval: 0.01))
        let task = Task { await sender.run() }
        for _ in 0..<1000 where await outbox.count(.pending) > 0 { try await Task.sleep(nanoseconds: 5_000_000) }
        task.cancel()
        await task.value
        let delivered = await outbox.count(.delivered)
        XCTAssertEqual(delivered, sampleRecords(7).count)
    }
}

/// Answers "accepted" for every record and counts calls.
final class CountingTransport: BatchTransport, @unchecked Sendable {
    private let lock = NSLock()
    private var _calls = 0
    var calls: Int { lock.withLock { _calls } }
    func send(payloads: [Data]) async -> BatchOutcome {
        lock.withLock { _calls += 1 }
        let results = payloads.map { p -> RecordResult in
            let r = try? JSONDecoder().decode(SectorRecord.self, from: p)
            return RecordResult(recordID: r?.recordID, version: r?.version, status: .accepted)
        }
        return .results(results)
    }

    /// The token file is refused while group or others can read it (the docs say 0600).
    func testATokenFileOthersCanReadIsRefused() throws {
        let dir = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("sector.token").path
        try Data("s3cret-token\n".utf8).write(to: URL(fileURLWithPath: path))
        for mode in [0o640, 0o644, 0o604] as [mode_t] {
            chmod(path, mode)
            XCTAssertThrowsError(try BearerToken.load(fromFile: path)) { error in
                XCTAssertTrue("\(error)".contains("chmod 600"), "\(error)")
                XCTAssertFalse("\(error)".contains("s3cret"), "the error never shows the token")
            }
        }
        chmod(path, 0o600)
        XCTAssertEqual(try BearerToken.load(fromFile: path).authorizationValue, "Bearer s3cret-token")
    }
}
