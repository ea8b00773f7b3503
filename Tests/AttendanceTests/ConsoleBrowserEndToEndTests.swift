import AttendanceTesting
import Foundation
import XCTest

@testable import Attendance
@testable import AttendanceCore

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// The console in a real browser: headless Chromium from Debian, driven by selenium
/// (`Tests/console/browser_test.py`), against `attendance console` while `attendance serve` replays the demo
/// gate video into the same database. Writes the screenshots to `out/console/`.
final class ConsoleBrowserEndToEndTests: XCTestCase {
    func testATeacherWorksThroughTheConsoleInABrowser() async throws {
        guard FileManager.default.fileExists(atPath: SourceTree.samples + "/obama2.jpg") else {
            throw XCTSkip("run `make testdata`")
        }
        let exe = try SourceTree.executable()
        let dir = NSTemporaryDirectory() + "console-browser-\(UUID().uuidString)"
        addTeardownBlock { try? FileManager.default.removeItem(atPath: dir) }
        // Today: the console's Today page shows the real date, so the demo day is today.
        let demo = try GateDemo.prepare(directory: dir, samples: SourceTree.samples, models: SourceTree.models)
        let store = try AttendanceStore.open(config: demo.config)
        let password = "mat-khau-cua-co-lan"
        try store.accounts.add(
            name: "co.lan", role: .teacher, classes: ["6A1"], password: password, hashing: PasswordHash(logN: 12))
        try store.accounts.add(
            name: "thay.minh", role: .teacher, classes: ["6A2"], password: password, hashing: PasswordHash(logN: 12))
        // A check-in the liveness check held back this morning (Bình's photo on a phone?), for the teacher to decide.
        let held = NewAttendanceEvent(
            studentCode: "7900000002", schoolDay: demo.day, session: "morning", kind: .checkIn, status: .late,
            occurredAt: demo.replayStart.addingTimeInterval(600), camera: "gate-1", distance: 0.31)
        XCTAssertEqual(try store.reviews.hold(held, liveness: 0.08, reason: .spoof), .held(id: 1))

        let port = Int.random(in: 20000...45000)
        let serveConfig = try write(dir + "/serve.toml", demo.configTOML())
        let consoleConfig = try write(
            dir + "/console.toml",
            demo.configTOML().replacingOccurrences(
                of: "[console]\nenabled = false", with: "[console]\nenabled = true\nport = \(port)"))
        let console = Process()
        console.executableURL = URL(fileURLWithPath: exe)
        console.arguments = ["console", "--config", consoleConfig, "--log-level", "warning"]
        console.standardOutput = FileHandle.nullDevice
        try console.run()
        defer { console.terminate(); console.waitUntilExit() }
        let base = "http://127.0.0.1:\(port)"
        try await waitForServer(base + "/login")

        let out = SourceTree.root + "/out/console"
        let downloads = dir + "/downloads"
        for d in [out, downloads] { try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true) }
        let iso = ISO8601DateFormatter()
        let settings: [String: Any] = [
            "base": base, "out": out, "downloads": downloads, "password": password,
            "teacher": "co.lan", "other_teacher": "thay.minh", "class": "6A1",
            "student_enrolled_name": "Nguyễn Văn An", "student_new": "7900000002",
            "other_class_student_name": "Lê Hoàng Cường", "held_name": "Trần Thị Bình",
            "photos": [SourceTree.samples + "/astronaut.png", SourceTree.samples + "/32bit.png"],
            "serve": [
                exe, "serve", "--config", serveConfig, "--replay-start", iso.string(from: demo.replayStart),
                "--time-scale", String(GateDemo.timeScale), "--exit-when-done", "--log-level", "warning",
            ],
        ]
        let settingsFile = dir + "/browser.json"
        try JSONSerialization.data(withJSONObject: settings).write(to: URL(fileURLWithPath: settingsFile))

        let python = Process()
        python.executableURL = URL(fileURLWithPath: try browserPython())
        python.arguments = [SourceTree.root + "/Tests/console/browser_test.py", settingsFile]
        let output = Pipe()
        python.standardOutput = output
        python.standardError = output
        try python.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        python.waitUntilExit()
        print(text)
        XCTAssertEqual(python.terminationStatus, 0, text)
        XCTAssertTrue(text.contains("browser test passed"), text)
        for page in ["today", "class", "student", "review"] {
            for width in [360, 1366] {
                XCTAssertTrue(FileManager.default.fileExists(atPath: "\(out)/\(page)-\(width).png"), "\(page)-\(width).png")
            }
        }
        // What the browser did is in the database, under the console user's name.
        XCTAssertEqual(try store.consent.active(student: "7900000002")?.recordedBy, "console:co.lan")
        XCTAssertEqual(try store.enrolments.list(student: "7900000002").count, 1, "the good photo was enrolled")
        XCTAssertTrue(try store.auditLog.entries().contains { $0.action == "export.daily" && $0.osUser == "console:co.lan" })
        XCTAssertEqual(try store.reviews.list(state: .accepted).map(\.decidedBy), ["console:co.lan"], "accepted in the browser")
    }

    func write(_ path: String, _ text: String) throws -> String {
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        return path
    }

    func waitForServer(_ url: String) async throws {
        for _ in 0..<100 {
            if let (_, r) = try? await URLSession.shared.data(from: URL(string: url)!), (r as? HTTPURLResponse)?.statusCode == 200
            {
                return
            }
            try await Task.sleep(for: .milliseconds(200))
        }
        XCTFail("the console did not answer at \(url)")
    }

    /// The python with selenium and openpyxl (`scripts/browser-venv.sh`, run by `make testdata`).
    func browserPython() throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: SourceTree.root + "/scripts/browser-venv.sh")
        let out = Pipe()
        p.standardOutput = out
        try p.run()
        let path = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        p.waitUntilExit()
        guard p.terminationStatus == 0, FileManager.default.isExecutableFile(atPath: path) else {
            throw BrowserSetupError(reason: "scripts/browser-venv.sh failed: no selenium (make testdata installs it)")
        }
        return path
    }
}

struct BrowserSetupError: Error, CustomStringConvertible {
    var reason: String
    var description: String { reason }
}
