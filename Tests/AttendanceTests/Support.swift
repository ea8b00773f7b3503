import AttendanceTesting
import FaceEngine
import Foundation
import GRDB
import XCTest

@testable import Attendance
@testable import AttendanceCore

// The module's fixtures, in one place. Unit tests build what they need through the store's API on a
// temporary database; the end-to-end tests (classes named `...EndToEndTests`: models, built binaries,
// child processes) also find the checkout's models, samples and executables here.

/// The checkout the tests run from: its models, sample images and built executables.
enum SourceTree {
    static let root: String = {
        if let r = ProcessInfo.processInfo.environment["ATTENDANCE_SOURCE_ROOT"] { return r }
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path
    }()
    static var samples: String { root + "/.testdata" }
    static var models: ModelPaths { ModelPaths(directory: root + "/Models") }

    static func executable() throws -> String {
        let candidates = [
            BuiltProducts.directory.appendingPathComponent("attendance").path,
            root + "/.build/debug/attendance",
        ]
        guard let exe = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw XCTSkip("the attendance executable is not built (swift build)")
        }
        return exe
    }
}

/// Attendance events in the store.
func eventCount(_ store: AttendanceStore) throws -> Int {
    try store.writer.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM attendance_event") ?? 0 }
}

/// A fresh database and key in a private temporary folder, removed afterwards.
final class TempStore {
    let dir: String
    var path: String { dir + "/school.sqlite" }
    var keyFile: String { path + ".key" }

    init() throws {
        dir = NSTemporaryDirectory() + "attendance-test-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(atPath: dir) }

    func open(config: AttendanceConfig = AttendanceConfig()) throws -> AttendanceStore {
        try AttendanceStore(path: path, keyFile: keyFile, config: config)
    }

    func write(_ name: String, _ text: String) throws -> String {
        let p = dir + "/" + name
        try Data(text.utf8).write(to: URL(fileURLWithPath: p))
        return p
    }

    /// Every byte of the database, its WAL and its shared-memory file.
    func databaseBytes() -> Data {
        var all = Data()
        for p in [path, path + "-wal", path + "-shm"] { all.append(FileManager.default.contents(atPath: p) ?? Data()) }
        return all
    }
}

/// Imports a small roster: two classes, three students.
@discardableResult
func seedRoster(_ store: AttendanceStore, in tmp: TempStore, consent: Bool = true) throws -> RosterImportReport {
    let csv = """
        Mã định danh,Họ và tên,Lớp,Ngày sinh,Giới tính
        0101,Nguyễn Văn An,6A1,05/09/2013,Nam
        0102,Trần Thị Bình,6A1,2013-01-20,Nữ
        0201,Lê Hoàng Cường,7B2,12/12/2012,Nam
        """
    let roster = try RosterParser.parse(
        contentsOf: try tmp.write("seed.csv", csv), today: LocalDate(year: 2024, month: 9, day: 1))
    let report = try store.roster.importRoster(roster)
    if consent {
        for code in ["0101", "0102", "0201"] {
            try store.consent.record(
                student: code, guardian: "Phụ huynh \(code)", relation: "mother",
                date: LocalDate(year: 2024, month: 9, day: 1), childAgreed: true)
        }
    }
    return report
}

/// A deterministic 128-D vector (not a real face; for storage tests).
func fakeEmbedding(_ seed: Int) -> [Float] {
    (0..<128).map { i in Float(sin(Double(seed * 131 + i) * 0.37)) * 0.1 + Float(seed) * 0.001 }
}

/// One number from the store (callable from async tests, where GRDB's `read` is ambiguous).
func countRows(_ store: AttendanceStore, _ sql: String) throws -> Int {
    try store.writer.read { try Int.fetchOne($0, sql: sql) ?? 0 }
}

/// Bytes read from a pipe on another thread.
final class LogBuffer: @unchecked Sendable {
    private let lock = NSLock()
    private var data = Data()
    func append(_ d: Data) { lock.lock(); data.append(d); lock.unlock() }
    var text: String { lock.lock(); defer { lock.unlock() }; return String(decoding: data, as: UTF8.self) }
}

/// A flag that can be set once, from any thread.
final class LockedFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var done = false
    func setOnce() -> Bool { lock.lock(); defer { lock.unlock() }; if done { return false }; done = true; return true }
}

extension XCTestCase {
    /// The demo school and its composed gate video in a temporary folder removed after the test
    /// (skips without the sample images).
    func prepareDemo(cameras: Int = 1) throws -> GateDemo {
        guard FileManager.default.fileExists(atPath: SourceTree.samples + "/obama2.jpg") else {
            throw XCTSkip("run `make testdata`")
        }
        let dir = NSTemporaryDirectory() + "gate-\(UUID().uuidString)"
        addTeardownBlock { try? FileManager.default.removeItem(atPath: dir) }
        return try GateDemo.prepare(
            directory: dir, samples: SourceTree.samples, models: SourceTree.models,
            day: LocalDate(year: 2026, month: 11, day: 23), cameras: cameras)
    }
}
