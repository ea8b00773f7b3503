import Foundation
import XCTest

@testable import CaptureKit

/// JPEG frames (MJPEG cameras and videos): kept as the device sent them, their grey thumbnail decoded at reduced scale
/// without the picture, the picture decoded when first read; undecodable data refused with the reason.
final class FrameTests: XCTestCase {
    var directory: URL!

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("frame-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: directory)
    }

    /// A picture with structure: a horizontal ramp in blue, a vertical one in green, a bright square.
    func picture(width: Int, height: Int) -> Frame {
        var pixels = [UInt8](repeating: 0, count: width * height * 3)
        for y in 0..<height {
            for x in 0..<width {
                let i = (y * width + x) * 3
                pixels[i] = UInt8(x * 255 / width)
                pixels[i + 1] = UInt8(y * 255 / height)
                let inSquare = x > width / 3 && x < width / 2 && y > height / 3 && y < height / 2
                pixels[i + 2] = inSquare ? 250 : 40
            }
        }
        return frame(width: width, height: height, pixels: pixels)
    }

    func frame(width: Int, height: Int, pixels: [UInt8]) -> Frame {
        Frame(
            cameraID: "gate", sequence: 0, deviceSequence: 0, width: width, height: height, pixels: pixels,
            driverTimestamp: nil, capturedAt: .now(), wallTime: Date())
    }

    func jpeg(of frame: Frame) throws -> [UInt8] {
        let path = directory.appendingPathComponent("frame.jpg").path
        try frame.write(to: path)
        return [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
    }

    func jpegFrame(_ data: [UInt8], width: Int, height: Int) throws(CaptureError) -> Frame {
        try Frame(
            cameraID: "gate", sequence: 0, deviceSequence: 0, width: width, height: height, jpeg: data, driverTimestamp: nil,
            capturedAt: .now(), wallTime: Date())
    }

    func meanDifference(_ a: [UInt8], _ b: [UInt8]) -> Double {
        XCTAssertEqual(a.count, b.count)
        return Double(zip(a, b).reduce(0) { $0 + abs(Int($1.0) - Int($1.1)) }) / Double(max(a.count, 1))
    }

    func testAJPEGFramesThumbnailAndPixelsMatchTheRawPicture() throws {
        for (width, height) in [(640, 480), (1280, 720), (320, 240), (64, 48)] {
            let raw = picture(width: width, height: height)
            let encoded = try jpegFrame(try jpeg(of: raw), width: width, height: height)
            XCTAssertNotNil(encoded.jpeg)
            let size = Frame.thumbnailSize(width: width, height: height)
            let thumbnail = try encoded.greyThumbnail()
            XCTAssertEqual(thumbnail.count, size.width * size.height, "\(width)x\(height)")
            XCTAssertLessThan(
                meanDifference(thumbnail, try raw.greyThumbnail()), 2.0, "\(width)x\(height): the same block means")
            XCTAssertEqual(encoded.pixels.count, width * height * 3)
            XCTAssertLessThan(meanDifference(encoded.pixels, raw.pixels), 3.0, "\(width)x\(height): the same picture")
        }
    }

    func testUndecodableDataIsRefusedWithTheReason() throws {
        let good = try jpeg(of: picture(width: 320, height: 240))
        let cases: [(String, [UInt8], Int, Int)] = [
            ("no JPEG at all", [UInt8](repeating: 0x42, count: 4096), 320, 240),
            ("empty", [], 320, 240),
            ("the header cut short", Array(good.prefix(20)), 320, 240),
            ("another size than the stream's", good, 640, 480),
        ]
        for (name, data, width, height) in cases {
            XCTAssertThrowsError(try jpegFrame(data, width: width, height: height), name) { error in
                guard let error = error as? CaptureError else { return XCTFail("\(name): \(error)") }
                XCTAssertFalse(error.description.isEmpty, name)
                XCTAssertEqual(error.source, "gate", name)
            }
        }
    }

    /// A picture whose data ends early (a camera's truncated buffer) decodes as far as it goes (libjpeg fills the rest
    /// in, as FFmpeg and the camera converters do) rather than dropping the frame: its warnings are not printed.
    func testATruncatedPictureDecodesAsFarAsItGoes() throws {
        let raw = picture(width: 320, height: 240)
        let good = try jpeg(of: raw)
        let truncated = try jpegFrame(Array(good.prefix(good.count * 2 / 3)), width: 320, height: 240)
        let thumbnail = try truncated.greyThumbnail()
        XCTAssertEqual(thumbnail.count, 80 * 60)
        let pixels = truncated.pixels
        XCTAssertEqual(pixels.count, 320 * 240 * 3)
        // The top rows are the picture's.
        XCTAssertLessThan(meanDifference(Array(pixels.prefix(320 * 3 * 40)), Array(raw.pixels.prefix(320 * 3 * 40))), 3.0)
    }

    /// The thumbnail comes from the pixels once they are decoded (cheaper than a second pass over the JPEG), and both
    /// ways give the same block means.
    func testTheThumbnailFollowsWhicheverIsAtHand() throws {
        let data = try jpeg(of: picture(width: 640, height: 480))
        let fromJPEG = try jpegFrame(data, width: 640, height: 480).greyThumbnail()
        let decodedFirst = try jpegFrame(data, width: 640, height: 480)
        XCTAssertEqual(decodedFirst.pixels.count, 640 * 480 * 3)
        let fromPixels = try decodedFirst.greyThumbnail()
        XCTAssertLessThan(meanDifference(fromJPEG, fromPixels), 1.5)
    }

    func testReplacingThePixelsDropsTheJPEG() throws {
        var encoded = try jpegFrame(try jpeg(of: picture(width: 320, height: 240)), width: 320, height: 240)
        encoded.pixels = [UInt8](repeating: 7, count: 320 * 240 * 3)
        XCTAssertNil(encoded.jpeg)
        XCTAssertEqual(try encoded.greyThumbnail(), [UInt8](repeating: 7, count: 80 * 60))
    }
}
