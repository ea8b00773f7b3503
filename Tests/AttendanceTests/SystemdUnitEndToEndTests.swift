import Foundation
import XCTest

/// deploy/attendance.service, checked with the systemd-analyze of the machine running the tests
/// (skipped where there is none). The exposure figure depends on the systemd version: README.md
/// states the one measured with systemd 252 (Debian 12).
final class SystemdUnitEndToEndTests: XCTestCase {
    /// Tests/AttendanceTests/SystemdUnitEndToEndTests.swift -> the repository.
    private static let repository = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    private static var unitFile: URL { repository.appendingPathComponent("deploy/attendance.service") }

    /// `systemd-analyze verify` checks that ExecStart= names an existing executable. The binary is not
    /// installed where the tests run, so verify a copy (same file name, hence the same unit name) whose
    /// ExecStart= runs `true`; every other line is the unit's own.
    func testUnitVerifies() throws {
        let analyze = try Self.systemdAnalyze()
        guard let trueBinary = ["/bin/true", "/usr/bin/true"].first(where: { FileManager.default.isExecutableFile(atPath: $0) })
        else {
            throw XCTSkip("no /bin/true to stand in for /usr/local/bin/attendance")
        }
        let text = try String(contentsOf: Self.unitFile, encoding: .utf8)
        var replaced = 0
        let lines = text.components(separatedBy: "\n").map { line -> String in
            guard line.hasPrefix("ExecStart=") else { return line }
            replaced += 1
            return "ExecStart=\(trueBinary)"
        }
        XCTAssertEqual(replaced, 1, "the unit should have exactly one ExecStart= line")

        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("SystemdUnitTests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let copy = dir.appendingPathComponent("attendance.service")
        try lines.joined(separator: "\n").write(to: copy, atomically: true, encoding: .utf8)

        let (status, output) = try Self.run(analyze, ["verify", "--man=no", "--generators=no", copy.path])
        let own = output.components(separatedBy: "\n").filter { $0.contains("attendance.service") }
        XCTAssertEqual(status, 0, "systemd-analyze verify failed:\n\(output)")
        XCTAssertTrue(own.isEmpty, "systemd-analyze verify complains about the unit:\n" + own.joined(separator: "\n"))
    }

    func testSecurityExposureIsAtMost2() throws {
        let analyze = try Self.systemdAnalyze()
        let (status, output) = try Self.run(analyze, ["security", "--offline=true", "--no-pager", Self.unitFile.path])
        XCTAssertEqual(status, 0, "systemd-analyze security failed:\n\(output)")
        guard let figure = Self.firstMatch(#"Overall exposure level for attendance\.service: ([0-9]+\.[0-9]+)"#, in: output),
            let exposure = Double(figure)
        else {
            return XCTFail("no \"Overall exposure level for attendance.service\" line in:\n\(output)")
        }
        XCTAssertLessThanOrEqual(exposure, 2.0, "exposure \(figure) is above 2.0:\n\(output)")

        let readme = try String(contentsOf: Self.repository.appendingPathComponent("README.md"), encoding: .utf8)
        let stated = readme.components(separatedBy: "\n").filter { $0.contains("systemd-analyze security") }
        let version = (try? Self.run(analyze, ["--version"]))?.output.components(separatedBy: "\n").first ?? "unknown systemd"
        XCTAssertTrue(
            stated.contains { $0.contains("exposure \(figure)") },
            "README.md should state the measured figure (\"exposure \(figure)\") on a line with "
                + "\"systemd-analyze security\" (measured with \(version)); README lines: "
                + (stated.isEmpty ? "none" : stated.joined(separator: " | ")))
    }

    // MARK: helpers

    /// /usr/bin/systemd-analyze, else the first on $PATH; skips the test when there is none.
    private static func systemdAnalyze() throws -> String {
        var candidates = ["/usr/bin/systemd-analyze"]
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        candidates += path.split(separator: ":").map { "\($0)/systemd-analyze" }
        guard let found = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw XCTSkip("systemd-analyze is not installed (not in /usr/bin nor on $PATH)")
        }
        return found
    }

    /// Runs `executable` with stdout and stderr on one pipe, read to the end before waiting for the
    /// exit (a full pipe would otherwise block the child forever).
    private static func run(_ executable: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        var environment = ProcessInfo.processInfo.environment
        environment["SYSTEMD_PAGER"] = "cat"
        environment["SYSTEMD_COLORS"] = "0"
        process.environment = environment
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    /// The first capture group of `pattern` in `text`.
    private static func firstMatch(_ pattern: String, in text: String) -> String? {
        guard let regex = try? NSRegularExpression(pattern: pattern),
            let match = regex.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)),
            match.numberOfRanges > 1, let range = Range(match.range(at: 1), in: text)
        else { return nil }
        return String(text[range])
    }
}
