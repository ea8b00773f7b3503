import AttendanceTesting
import Foundation
import XCTest

@testable import FaceMatch

final class GalleryFileTests: XCTestCase {
    private func sample(storage: GalleryStorage = .float32) throws -> GallerySnapshot {
        var rng = SplitMix64(state: 99)
        let g = try Gallery(dimension: 128, storage: storage)
        try g.add(
            (0..<50).map { i in
                GalleryEntry(
                    student: i % 7 == 0 ? "Nguyễn Văn \(i / 7)" : "s\(i % 19)", embedding: Embedding(rng.gaussianVector(128)))
            })
        return g.snapshot()
    }

    func testRoundTripThroughAFile() throws {
        let snap = try sample(storage: .int8)
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("facematch-\(UUID().uuidString).gallery")
        defer { try? FileManager.default.removeItem(at: url) }
        try snap.write(to: url)
        let back = try GallerySnapshot.read(from: url)
        XCTAssertEqual(back.students, snap.students)
        XCTAssertEqual(back.rowStudent, snap.rowStudent)
        XCTAssertEqual(back.storage, .int8)
        XCTAssertEqual(back.dimension, 128)
        for r in 0..<snap.count { XCTAssertEqual(back.row(r), snap.row(r)) }
        var rng = SplitMix64(state: 1)
        for _ in 0..<10 {
            let q = Embedding(rng.gaussianVector(128))
            XCTAssertEqual(try back.search(q, k: 4), try snap.search(q, k: 4))
        }
        let g = Gallery(snapshot: back)
        XCTAssertEqual(g.snapshot().count, 50)
        XCTAssertEqual(GalleryFile.encode(back), GalleryFile.encode(snap))
        XCTAssertEqual(GalleryFile.encode(try GallerySnapshot()).count, GalleryFile.headerSize + 4)
        XCTAssertEqual(try GalleryFile.decode(GalleryFile.encode(try GallerySnapshot())).count, 0)
    }

    func testTruncatedFilesAreRefused() throws {
        let bytes = GalleryFile.encode(try sample())
        for cut in [1, 4, 100, bytes.count / 2, bytes.count - 45] {
            XCTAssertThrowsError(try GalleryFile.decode(Array(bytes.dropLast(cut)))) { error in
                guard case let .truncated(expected, actual)? = error as? GalleryFileError else {
                    return XCTFail("cut \(cut): \(error)")
                }
                XCTAssertEqual(expected, bytes.count)
                XCTAssertEqual(actual, bytes.count - cut)
                XCTAssertTrue("\(error)".contains("truncated"))
            }
        }
        XCTAssertThrowsError(try GalleryFile.decode(Array(bytes.prefix(20)))) {
            XCTAssertEqual($0 as? GalleryFileError, .truncated(expectedBytes: 44, actualBytes: 20))
        }
        XCTAssertThrowsError(try GalleryFile.decode(bytes + [0])) {
            guard case .malformed? = $0 as? GalleryFileError else { return XCTFail("\($0)") }
        }
    }

    func testCorruptedFilesAreRefused() throws {
        let bytes = GalleryFile.encode(try sample())
        var rng = SplitMix64(state: 4)
        for _ in 0..<50 {
            var bad = bytes
            let at = 40 + rng.int(bytes.count - 40) // past the header's length field
            bad[at] ^= UInt8(1 << rng.int(8))
            XCTAssertThrowsError(try GalleryFile.decode(bad)) {
                guard case .checksumMismatch? = $0 as? GalleryFileError else { return XCTFail("byte \(at): \($0)") }
                XCTAssertTrue("\($0)".contains("corrupted"))
            }
        }
        var magic = bytes
        magic[0] = UInt8(ascii: "X")
        XCTAssertThrowsError(try GalleryFile.decode(magic)) { XCTAssertEqual($0 as? GalleryFileError, .notAGalleryFile) }
        var version = bytes
        version[8] = 3
        XCTAssertThrowsError(try GalleryFile.decode(version)) { XCTAssertEqual($0 as? GalleryFileError, .unsupportedVersion(3)) }
        XCTAssertThrowsError(try GalleryFile.decode([])) { XCTAssertEqual($0 as? GalleryFileError, .notAGalleryFile) }
    }

    /// A file whose checksum is right but whose contents contradict themselves is
    /// still refused (for example one written by a buggy tool).
    func testInconsistentContentsAreRefused() throws {
        var bytes = GalleryFile.encode(try sample())
        // Row 0's student index -> 1000 (out of range), then fix the checksum.
        let rowsAt = bytes.count - 4 - 50 * 128 * 4 - 50 * 4
        bytes[rowsAt] = 0xE8
        bytes[rowsAt + 1] = 0x03
        let body = Array(bytes.dropLast(4))
        let crc = CRC32.checksum(body)
        bytes = body
        bytes.appendLE(crc)
        XCTAssertThrowsError(try GalleryFile.decode(bytes)) {
            guard case let .malformed(why)? = $0 as? GalleryFileError else { return XCTFail("\($0)") }
            XCTAssertTrue(why.contains("row 0"), why)
        }
    }

    func testCRC32KnownAnswer() {
        XCTAssertEqual(CRC32.checksum(Array("123456789".utf8)), 0xCBF4_3926)
        XCTAssertEqual(CRC32.checksum([]), 0)
        XCTAssertEqual(CRC32.checksum(Array("The quick brown fox jumps over the lazy dog".utf8)), 0x414F_A339)
    }
}
