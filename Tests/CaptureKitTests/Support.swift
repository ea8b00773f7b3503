import CFakeV4L2
import Foundation
import Logging
import Synchronization
import XCTest

@testable import CaptureKit

/// The fake V4L2 device of DESIGN.md, configured per test. Its state is process-wide, so
/// the tests that use it live in one XCTestCase (XCTest runs them one after another).
enum FakeCamera {
    static func add(
        _ path: String, formats: UInt32 = FAKE_V4L2_MJPEG | FAKE_V4L2_YUYV,
        sizes: [(UInt32, UInt32)] = [(640, 480), (1280, 720)], fps: UInt32 = 30, card: String = "Fake Camera"
    ) throws {
        var config = fake_v4l2_config()
        config.formats = formats
        config.size_count = UInt32(sizes.count)
        config.fps = fps
        withUnsafeMutableBytes(of: &config.sizes) { raw in
            let slots = raw.bindMemory(to: fake_v4l2_size.self)
            for (i, size) in sizes.enumerated() { slots[i] = fake_v4l2_size(width: size.0, height: size.1) }
        }
        let rc = path.withCString { p in
            card.withCString { c in
                config.path = p
                config.card = c
                return fake_v4l2_add(&config)
            }
        }
        if rc != 0 { throw CaptureError(.system(errno: rc), operation: "fake_v4l2_add", source: path) }
    }

    static func stats(_ path: String) -> fake_v4l2_stats {
        var s = fake_v4l2_stats()
        XCTAssertEqual(fake_v4l2_get_stats(path, &s), 0, "no fake device at \(path)")
        return s
    }

    static func setPresent(_ path: String, _ present: Bool) {
        XCTAssertEqual(fake_v4l2_set_present(path, present ? 1 : 0), 0)
    }

    static func reset() { fake_v4l2_reset() }

    /// The sequence number the fake stamped into a frame's pixels (nil if unreadable).
    static func stamp(of frame: Frame) -> UInt32? {
        var sequence: UInt32 = 0
        let rc = frame.pixels.withUnsafeBufferPointer {
            fake_v4l2_read_stamp($0.baseAddress, UInt32(frame.width), UInt32(frame.height), frame.bytesPerRow, &sequence)
        }
        return rc == 0 ? sequence : nil
    }
}

/// Fourcc text of a fake's current format.
func fourcc(_ value: UInt32) -> String { PixelFormat(rawValue: value).description }

/// Keeps every log record, to check what was logged and how often.
final class LogRecorder: Sendable {
    struct Record: Sendable {
        var level: Logger.Level
        var message: String
    }
    private let records = Mutex<[Record]>([])

    var all: [Record] { records.withLock { $0 } }
    func count(_ message: String) -> Int { all.filter { $0.message == message }.count }
    func append(_ record: Record) { records.withLock { $0.append(record) } }

    var logger: Logger {
        Logger(label: "capture-test") { _ in Handler(recorder: self) }
    }

    struct Handler: LogHandler {
        let recorder: LogRecorder
        var metadata: Logger.Metadata = [:]
        var metadataProvider: Logger.MetadataProvider?
        var logLevel: Logger.Level = .trace

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            recorder.append(Record(level: event.level, message: event.message.description))
        }
    }
}

/// Polls `condition` until it holds; fails (instead of hanging) after a generous bound.
/// Only a guard against a hang: no test asserts how long anything takes.
func eventually(
    _ what: String, file: StaticString = #filePath, line: UInt = #line, _ condition: () -> Bool
) async throws {
    for _ in 0..<3000 {
        if condition() { return }
        try await Task.sleep(for: .milliseconds(20))
    }
    XCTFail("timed out waiting for: \(what)", file: file, line: line)
    throw CancellationError()
}

/// Resident set size of this process in bytes.
func residentBytes() -> Int {
    guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8),
        let pages = text.split(separator: " ").dropFirst().first.flatMap({ Int($0) })
    else { return 0 }
    return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
}
