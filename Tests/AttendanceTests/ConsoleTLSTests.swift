import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOSSL
import ServiceLifecycle
import XCTest

@testable import Attendance
@testable import AttendanceConsole
@testable import AttendanceCore

/// The console over HTTPS: the self-signed identity made on first start, reused after, served by
/// Hummingbird's TLS server and verified by a real TLS client (async-http-client) that trusts only it.
final class ConsoleTLSTests: XCTestCase {
    func testTheConsoleServesHTTPSWithItsOwnCertificate() async throws {
        let tmp = try TempStore()
        var config = AttendanceConfig()
        config.console.tls = true
        config.console.port = Int.random(in: 20000...45000)
        let store = try tmp.open(config: config)
        let console = try SchoolConsole.configured(store: store)
        let tls = try XCTUnwrap(console.tls)
        XCTAssertTrue(tls.created)
        XCTAssertEqual(tls.fingerprint.split(separator: ":").count, 32, tls.fingerprint)
        let key = tmp.dir + "/console-tls-key.pem"
        let mode = try XCTUnwrap(FileManager.default.attributesOfItem(atPath: key)[.posixPermissions] as? Int)
        XCTAssertEqual(mode & 0o777, 0o600, "the key is private")
        XCTAssertEqual(console.url, "https://127.0.0.1:\(config.console.port)/")
        // The next start reuses the pair: the fingerprint the admin checked stays valid.
        let again = try XCTUnwrap(try SchoolConsole.configured(store: store).tls)
        XCTAssertFalse(again.created)
        XCTAssertEqual(again.fingerprint, tls.fingerprint)

        let app = try console.application()
        let group = ServiceGroup(configuration: .init(services: [app], logger: Logger(label: "test")))
        let server = Task { try await group.run() }
        defer { server.cancel() }

        var trusting = TLSConfiguration.makeClientConfiguration()
        trusting.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(tls.certificatePath))
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: .init(tlsConfiguration: trusting))
        let strict = HTTPClient(eventLoopGroupProvider: .singleton)
        defer {
            _ = client.shutdown()
            _ = strict.shutdown()
        }
        var response: HTTPClientResponse?
        var failure: (any Error)?
        for _ in 0..<40 {
            do {
                response = try await client.execute(HTTPClientRequest(url: console.url + "login"), timeout: .seconds(2))
                break
            } catch {
                failure = error
                try await Task.sleep(for: .milliseconds(100))
            }
        }
        let r = try XCTUnwrap(response, "the HTTPS console answered: \(failure.map { "\($0)" } ?? "")")
        XCTAssertEqual(r.status, .ok)
        let cookie = r.headers["set-cookie"].joined(separator: "\n")
        XCTAssertTrue(cookie.contains("Secure") && cookie.contains("HttpOnly"), cookie)
        // A client that does not trust the self-signed certificate is refused: this is real TLS.
        do {
            _ = try await strict.execute(HTTPClientRequest(url: console.url + "login"), timeout: .seconds(5))
            XCTFail("an untrusted certificate was accepted")
        } catch {}
        try await client.shutdown()
        try await strict.shutdown()
        await group.triggerGracefulShutdown()
        _ = try? await server.value
    }

    func testPlainHTTPOnlyOnLoopback() throws {
        XCTAssertThrowsError(try AttendanceConfig.parse("[console]\nbind = \"0.0.0.0\"\ntls = false\n")) { e in
            XCTAssertTrue("\(e)".contains("plain HTTP is only served on loopback"), "\(e)")
        }
        let open = try AttendanceConfig.parse("[console]\nbind = \"0.0.0.0\"\n")
        XCTAssertTrue(open.console.usesTLS, "another address is served over TLS by default")
        XCTAssertFalse(AttendanceConfig().console.usesTLS, "loopback: plain HTTP by default")
        XCTAssertThrowsError(try AttendanceConfig.parse("[console]\ntls_certificate = \"c.pem\"\n"))
        let tmp = try TempStore()
        var config = AttendanceConfig()
        config.console.bind = "0.0.0.0"
        XCTAssertThrowsError(try SchoolConsole(store: try tmp.open(config: config), tls: nil))
    }
}
