import CFakeV4L2
import CVideoIO
import Foundation
import Logging
import XCTest

@testable import CaptureKit

/// Source parsing, negotiation rules and backoff: no device involved.
final class CaptureKitUnitTests: XCTestCase {
    func testSourceSpecs() throws {
        let camera = try CameraSource.make("v4l2:/dev/video3")
        XCTAssertEqual((camera as? V4L2Camera)?.path, "/dev/video3")
        XCTAssertEqual(camera.cameraID, "v4l2:/dev/video3")
        XCTAssertEqual((try CameraSource.make("/dev/video1") as? V4L2Camera)?.path, "/dev/video1")

        let rtsp = try CameraSource.make("rtsp://admin:secret@10.0.0.5/stream1")
        XCTAssertEqual((rtsp as? VideoSource)?.isLive, true)
        XCTAssertEqual(rtsp.cameraID, "rtsp://admin:***@10.0.0.5/stream1", "a password never reaches logs")

        let file = try CameraSource.make("file:/tmp/gate.avi", cameraID: "gate")
        XCTAssertEqual((file as? VideoSource)?.url, "/tmp/gate.avi")
        XCTAssertEqual((file as? VideoSource)?.isLive, false)
        XCTAssertEqual(file.cameraID, "gate")
        XCTAssertEqual((try CameraSource.make("file:///tmp/a.mp4") as? VideoSource)?.url, "/tmp/a.mp4")

        for bad in ["", "v4l2:", "http//x", "camera0", "file:"] {
            XCTAssertThrowsError(try CameraSource.make(bad), bad) { error in
                XCTAssertEqual((error as? CaptureError)?.code, .invalidSource)
            }
        }
    }

    func testNegotiationPrefersMJPEGAtTheRequestedSizeElseYUYV() {
        let both = [
            FormatOffer(format: .mjpeg, sizes: [FrameSize(width: 640, height: 480), FrameSize(width: 1280, height: 720)]),
            FormatOffer(format: .yuyv, sizes: [FrameSize(width: 640, height: 480), FrameSize(width: 1280, height: 720)]),
        ]
        let at720 = CaptureOptions(width: 1280, height: 720)
        XCTAssertEqual(V4L2Camera.negotiate(offers: both, options: at720)?.format, .mjpeg)
        XCTAssertEqual(V4L2Camera.negotiate(offers: both, options: at720)?.width, 1280)

        // MJPEG only at 720p, YUYV at 480p: the requested 480p wins over the preferred format.
        let split = [
            FormatOffer(format: .mjpeg, sizes: [FrameSize(width: 1280, height: 720)]),
            FormatOffer(format: .yuyv, sizes: [FrameSize(width: 640, height: 480)]),
        ]
        let vga = CaptureOptions(width: 640, height: 480)
        XCTAssertEqual(V4L2Camera.negotiate(offers: split, options: vga)?.format, .yuyv)

        // Nothing at the requested size: the nearest offered size.
        let choice = V4L2Camera.negotiate(offers: both, options: CaptureOptions(width: 800, height: 600))
        XCTAssertEqual(choice?.format, .mjpeg)
        XCTAssertEqual(choice?.width, 640)
        XCTAssertEqual(choice?.height, 480)

        // A stepwise range is snapped to its steps.
        var range = FrameSize(width: 160, height: 120)
        range.range = (maxWidth: 1920, maxHeight: 1080, stepWidth: 16, stepHeight: 8)
        let stepped = V4L2Camera.negotiate(
            offers: [FormatOffer(format: .yuyv, sizes: [range])], options: CaptureOptions(width: 1000, height: 700))
        XCTAssertEqual(stepped?.width, 992)
        XCTAssertEqual(stepped?.height, 696)

        // Formats libv4lconvert cannot turn into BGR are never chosen.
        let exotic = [FormatOffer(format: PixelFormat("H264")!, sizes: [FrameSize(width: 640, height: 480)])]
        XCTAssertNil(V4L2Camera.negotiate(offers: exotic, options: vga))
    }

    func testBackoffDoublesUpToThirtySeconds() {
        let delays = (0..<10).map { CaptureEngine.backoff(attempt: $0, initial: .milliseconds(500), max: .seconds(30)) }
        XCTAssertEqual(
            delays.prefix(7),
            [.milliseconds(500), .seconds(1), .seconds(2), .seconds(4), .seconds(8), .seconds(16), .seconds(30)])
        XCTAssertTrue(delays.dropFirst(6).allSatisfy { $0 == .seconds(30) })
        XCTAssertEqual(CaptureEngine.backoff(attempt: 10_000, initial: .milliseconds(500), max: .seconds(30)), .seconds(30))
    }

    func testErrorsCarryOperationAndErrno() {
        let error = CaptureError(.system(errno: ENODEV), operation: "VIDIOC_DQBUF", source: "/dev/video0")
        XCTAssertEqual(error.errno, ENODEV)
        XCTAssertTrue(error.isTransient)
        XCTAssertTrue(error.description.contains("VIDIOC_DQBUF"))
        XCTAssertTrue(error.description.contains("errno \(ENODEV)"))
        XCTAssertFalse(CaptureError(.notACaptureDevice, operation: "VIDIOC_QUERYCAP", source: "/dev/video1").isTransient)
    }

    func testPixelFormatFourcc() {
        XCTAssertEqual(PixelFormat.mjpeg.rawValue, 0x4750_4A4D)
        XCTAssertEqual(PixelFormat.yuyv.description, "YUYV")
        XCTAssertNil(PixelFormat("MJPEG"))
    }
}

/// Real V4L2 clients against the user-space fake device (DESIGN.md). The fake's state is
/// process-wide; XCTest runs these one after another.
final class V4L2CameraTests: XCTestCase {
    override func setUp() { FakeCamera.reset() }

    /// A dropped iterator stops its capture thread asynchronously: let it close its device
    /// before the next test reconfigures the fake.
    override func tearDown() async throws {
        try await eventually("every capture thread closed its device") { fake_v4l2_open_fd_count() == 0 }
        FakeCamera.reset()
    }

    func testDescribeListsFormatsSizesAndRates() throws {
        try FakeCamera.add("/dev/video40", fps: 25, card: "Gate Camera")
        let description = try V4L2Camera.describe(path: "/dev/video40")
        XCTAssertEqual(description.driver, "fake_v4l2")
        XCTAssertEqual(description.card, "Gate Camera")
        XCTAssertEqual(description.formats.map(\.format), [.mjpeg, .yuyv])
        XCTAssertEqual(description.formats.first?.compressed, true)
        XCTAssertEqual(description.formats[1].sizes.map { "\($0)" }, ["640x480 @ 25 fps", "1280x720 @ 25 fps"])
        XCTAssertEqual(FakeCamera.stats("/dev/video40").open_fds, 0, "describe closes the device")

        let listed = V4L2Camera.enumerate(extraPaths: ["/dev/video40", "/dev/video99"])
        XCTAssertEqual(listed.filter { $0.path == "/dev/video40" }.count, 1)
        XCTAssertFalse(listed.contains { $0.path == "/dev/video99" }, "a missing node is left out")

        XCTAssertThrowsError(try V4L2Camera.describe(path: "/dev/video99")) { error in
            XCTAssertEqual((error as? CaptureError)?.errno, ENOENT)
            XCTAssertEqual((error as? CaptureError)?.operation, "open")
        }
    }

    /// Takes `count` frames from a fresh iteration of `source`, then cancels it.
    private func frames(_ count: Int, from source: some FrameSource) async throws -> [Frame] {
        var iterator = source.makeAsyncIterator()
        var result: [Frame] = []
        while result.count < count, let frame = try await iterator.next() { result.append(frame) }
        return result
    }

    func testFormatNegotiationOnTheDevice() async throws {
        try FakeCamera.add("/dev/video41")
        let mjpeg = try await frames(3, from: V4L2Camera(path: "/dev/video41", options: CaptureOptions(width: 640, height: 480)))
        XCTAssertEqual(fourcc(FakeCamera.stats("/dev/video41").pixelformat), "MJPG")
        XCTAssertEqual(mjpeg.map(\.width), [640, 640, 640])
        XCTAssertEqual(mjpeg.map(\.height), [480, 480, 480])
        for frame in mjpeg { XCTAssertEqual(FakeCamera.stamp(of: frame).map(UInt64.init), frame.deviceSequence) }
        // The camera's JPEG is kept as it came (decoded above when the stamp read the pixels), its thumbnail 80x60.
        XCTAssertTrue(mjpeg.allSatisfy { $0.jpeg != nil })
        XCTAssertEqual(try mjpeg.first?.greyThumbnail().count, 80 * 60)

        var yuyvFirst = CaptureOptions(width: 1280, height: 720)
        yuyvFirst.preferredFormats = [.yuyv, .mjpeg]
        let yuyv = try await frames(3, from: V4L2Camera(path: "/dev/video41", options: yuyvFirst))
        XCTAssertEqual(fourcc(FakeCamera.stats("/dev/video41").pixelformat), "YUYV")
        XCTAssertEqual(yuyv.first?.width, 1280)
        XCTAssertEqual(yuyv.first?.pixels.count, 1280 * 720 * 3)
        XCTAssertNil(yuyv.first?.jpeg, "YUYV arrives as pixels")
        for frame in yuyv { XCTAssertEqual(FakeCamera.stamp(of: frame).map(UInt64.init), frame.deviceSequence) }

        // A YUYV-only camera asked for a size it lacks: YUYV at the nearest size.
        try FakeCamera.add("/dev/video42", formats: FAKE_V4L2_YUYV, sizes: [(320, 240), (640, 480)])
        let nearest = try await frames(
            1, from: V4L2Camera(path: "/dev/video42", options: CaptureOptions(width: 352, height: 288)))
        XCTAssertEqual(fourcc(FakeCamera.stats("/dev/video42").pixelformat), "YUYV")
        XCTAssertEqual(nearest.first?.width, 320)
        XCTAssertEqual(nearest.first?.height, 240)
    }

    func testThreeHundredFramesWithSequenceContinuity() async throws {
        try FakeCamera.add("/dev/video43", fps: 60)
        let camera = V4L2Camera(path: "/dev/video43", cameraID: "gate-1")
        let frames = try await frames(300, from: camera)
        XCTAssertEqual(frames.count, 300)

        // Each frame is the device's own picture: its stamped number is its sequence number.
        for frame in frames {
            XCTAssertEqual(frame.cameraID, "gate-1")
            XCTAssertEqual(
                FakeCamera.stamp(of: frame).map(UInt64.init), frame.deviceSequence, "pixels of frame \(frame.sequence)")
            XCTAssertEqual(frame.sequence, frame.deviceSequence, "one session: no offset")
            XCTAssertNotNil(frame.driverTimestamp)
        }
        // Sequence numbers only go up; every jump is accounted for as a skip or a loss.
        let jumps = zip(frames, frames.dropFirst()).map { Int($1.sequence) - Int($0.sequence) - 1 }
        XCTAssertTrue(jumps.allSatisfy { $0 >= 0 })
        XCTAssertTrue(zip(frames, frames.dropFirst()).allSatisfy { $1.driverTimestamp! > $0.driverTimestamp! })

        try await eventually("capture thread stopped") { camera.state == .stopped }
        let stats = camera.statistics
        let device = FakeCamera.stats("/dev/video43")
        XCTAssertLessThanOrEqual(jumps.reduce(0, +), Int(stats.framesSkipped + stats.framesLost))
        XCTAssertEqual(stats.framesDelivered, 300)
        XCTAssertEqual(stats.framesCaptured, stats.framesDelivered + stats.framesSkipped + stats.corruptFrames)
        XCTAssertEqual(stats.corruptFrames, 0)
        // Continuity at the device: every number up to the last frame taken was either
        // captured or counted lost (a frame the driver dropped while all buffers were full).
        XCTAssertEqual(stats.framesCaptured, device.frames_dequeued)
        XCTAssertEqual(stats.framesCaptured + stats.framesLost, device.last_sequence + 1)
        XCTAssertLessThanOrEqual(stats.framesLost, device.frames_dropped)
        XCTAssertEqual(device.open_fds, 0, "fd closed")
        XCTAssertEqual(device.mapped_buffers, 0, "buffers unmapped")
    }

    func testCancellationClosesTheDevice() async throws {
        try FakeCamera.add("/dev/video44")
        let camera = V4L2Camera(path: "/dev/video44")
        let task = Task {
            var count = 0
            for try await _ in camera { count += 1 }
            return count
        }
        try await eventually("streaming") { camera.statistics.framesDelivered >= 3 }
        XCTAssertEqual(FakeCamera.stats("/dev/video44").open_fds, 1)
        XCTAssertEqual(FakeCamera.stats("/dev/video44").mapped_buffers, 4, "four mmap buffers")
        task.cancel()
        let delivered = try await task.value
        XCTAssertGreaterThanOrEqual(delivered, 3)
        // next() returned nil only after the capture thread had closed the device.
        let stats = FakeCamera.stats("/dev/video44")
        XCTAssertEqual(stats.open_fds, 0)
        XCTAssertEqual(stats.streaming_fds, 0)
        XCTAssertEqual(stats.mapped_buffers, 0)
        XCTAssertEqual(camera.state, .stopped)

        // Leaving a loop early (break) stops capture too.
        for try await _ in camera { break }
        try await eventually("closed after break") { FakeCamera.stats("/dev/video44").open_fds == 0 }
        XCTAssertEqual(FakeCamera.stats("/dev/video44").mapped_buffers, 0)
    }

    func testDeviceVanishesMidStreamAndComesBack() async throws {
        try FakeCamera.add("/dev/video45", fps: 30)
        let log = LogRecorder()
        var options = CaptureOptions()
        options.initialBackoff = .milliseconds(10)
        options.maxBackoff = .milliseconds(80)
        let camera = V4L2Camera(path: "/dev/video45", options: options, logger: log.logger)
        var iterator = camera.makeAsyncIterator()
        var before: [Frame] = []
        for _ in 0..<10 { before.append(try await iterator.next()!) }

        let attempts = FakeCamera.stats("/dev/video45").open_attempts
        FakeCamera.setPresent("/dev/video45", false) // unplugged
        // Several reopen attempts fail while it is gone...
        try await eventually("reopen attempts") { FakeCamera.stats("/dev/video45").open_attempts >= attempts + 4 }
        guard case .reconnecting(let error) = camera.state else { return XCTFail("state \(camera.state)") }
        XCTAssertTrue([ENODEV, ENOENT].contains(error.errno ?? 0), "\(error)")
        XCTAssertEqual(FakeCamera.stats("/dev/video45").open_fds, 0, "the dead fd was closed")
        XCTAssertEqual(FakeCamera.stats("/dev/video45").mapped_buffers, 0, "its buffers unmapped")

        FakeCamera.setPresent("/dev/video45", true) // plugged back in
        var after: [Frame] = []
        for _ in 0..<10 { after.append(try await iterator.next()!) }

        XCTAssertGreaterThan(after.first!.sequence, before.last!.sequence, "sequence keeps going up across the reconnect")
        XCTAssertLessThan(after.first!.deviceSequence, 10, "the driver restarted its own count")
        for frame in after { XCTAssertEqual(FakeCamera.stamp(of: frame).map(UInt64.init), frame.deviceSequence) }
        let stats = camera.statistics
        XCTAssertEqual(stats.reconnects, 1)
        XCTAssertGreaterThanOrEqual(stats.failedOpens, 3)
        XCTAssertEqual(FakeCamera.stats("/dev/video45").open_fds, 1)
        // Logged once per state change, not once per attempt.
        XCTAssertEqual(log.count("camera lost; reopening with backoff"), 1)
        XCTAssertEqual(log.count("camera streaming"), 2)
        XCTAssertEqual(log.all.filter { $0.level >= .warning }.count, 1, "\(log.all)")
    }

    func testSlowConsumerSkipsFramesWithoutBlockingCaptureOrGrowingMemory() async throws {
        try FakeCamera.add("/dev/video46", formats: FAKE_V4L2_YUYV, sizes: [(1280, 720)], fps: 60)
        let camera = V4L2Camera(path: "/dev/video46", options: CaptureOptions(width: 1280, height: 720))
        var iterator = camera.makeAsyncIterator()
        var frames: [UInt64] = []
        var rss: [Int] = []
        for i in 0..<30 {
            let frame = try await iterator.next()!
            XCTAssertEqual(FakeCamera.stamp(of: frame).map(UInt64.init), frame.deviceSequence, "the newest frame, intact")
            frames.append(frame.sequence)
            if i == 5 || i == 29 { rss.append(residentBytes()) }
            try await Task.sleep(for: .milliseconds(60)) // a consumer much slower than 60 fps
        }
        let stats = camera.statistics
        XCTAssertGreaterThan(stats.framesSkipped, 30, "frames produced while the consumer was busy were skipped")
        // Every captured frame is delivered, skipped, or (at most two) in hand right now.
        let accounted = stats.framesDelivered + stats.framesSkipped + stats.corruptFrames
        XCTAssertTrue((accounted...accounted + 2).contains(stats.framesCaptured), "\(stats)")
        XCTAssertEqual(stats.framesDelivered, 30)
        XCTAssertGreaterThan(frames.last! - frames.first!, 29 * 2, "the consumer got fresh frames, not a backlog")
        // 24 slow iterations at 60 fps pass ~90 frames of 2.7 MB: a queue would add hundreds of MB.
        XCTAssertLessThan(rss[1] - rss[0], 40 << 20, "memory stays flat")
        XCTAssertEqual(FakeCamera.stats("/dev/video46").mapped_buffers, 4)
        XCTAssertEqual(stats.conversionTime > .zero, true)
    }

    func testTwoCamerasAtOnce() async throws {
        try FakeCamera.add("/dev/video47", formats: FAKE_V4L2_MJPEG, sizes: [(640, 480)], fps: 30)
        try FakeCamera.add("/dev/video48", formats: FAKE_V4L2_YUYV, sizes: [(320, 240)], fps: 20)
        let cameras = [
            V4L2Camera(path: "/dev/video47", cameraID: "door"),
            V4L2Camera(path: "/dev/video48", cameraID: "hall", options: CaptureOptions(width: 320, height: 240)),
        ]
        let results = try await withThrowingTaskGroup(of: (String, [Frame], Bool).self) { group in
            for camera in cameras {
                group.addTask {
                    var frames: [Frame] = []
                    var bothStreaming = false
                    for try await frame in camera {
                        frames.append(frame)
                        let a = FakeCamera.stats("/dev/video47").streaming_fds, b = FakeCamera.stats("/dev/video48").streaming_fds
                        bothStreaming = bothStreaming || (a == 1 && b == 1)
                        if frames.count == 30 { break }
                    }
                    return (camera.cameraID, frames, bothStreaming)
                }
            }
            var all: [String: ([Frame], Bool)] = [:]
            for try await (id, frames, both) in group { all[id] = (frames, both) }
            return all
        }
        XCTAssertEqual(results["door"]?.0.count, 30)
        XCTAssertEqual(results["hall"]?.0.count, 30)
        XCTAssertTrue(results["door"]!.0.allSatisfy { $0.cameraID == "door" && $0.width == 640 })
        XCTAssertTrue(results["hall"]!.0.allSatisfy { $0.cameraID == "hall" && $0.width == 320 && $0.height == 240 })
        XCTAssertTrue(results["door"]!.1 || results["hall"]!.1, "both cameras streamed at the same time")
        for (_, (frames, _)) in results {
            for frame in frames { XCTAssertEqual(FakeCamera.stamp(of: frame).map(UInt64.init), frame.deviceSequence) }
        }
        try await eventually("both closed") {
            FakeCamera.stats("/dev/video47").open_fds == 0 && FakeCamera.stats("/dev/video48").open_fds == 0
        }
    }
}

/// File replay through OpenCV's VideoCapture.
final class VideoSourceTests: XCTestCase {
    private var directory: URL!

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("capturekit-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: directory)
    }

    /// Writes an MJPEG .avi whose frame i is a uniform grey of level 10 * i.
    private func makeVideo(frames: Int, fps: Double) throws -> String {
        let path = directory.appendingPathComponent("gate.avi").path
        let writer = try VideoWriter(path: path, fps: fps, width: 320, height: 240)
        for i in 0..<frames {
            try writer.write(bgr: [UInt8](repeating: UInt8(10 * i), count: 320 * 240 * 3))
        }
        return path
    }

    private func meanLevel(_ frame: Frame) -> Int {
        Int(frame.pixels.reduce(0) { $0 + Int($1) } / frame.pixels.count)
    }

    func testFileReplayAsFastAsPossibleDeliversEveryFrameThenEnds() async throws {
        let path = try makeVideo(frames: 20, fps: 25)
        var options = CaptureOptions()
        options.pacing = .asFastAsPossible
        let source = try CameraSource.make("file:\(path)", cameraID: "replay", options: options)
        var frames: [Frame] = []
        for try await frame in source { frames.append(frame) }
        XCTAssertEqual(frames.map(\.deviceSequence), Array(0..<20))
        XCTAssertEqual(frames.map(\.sequence), Array(0..<20))
        for (i, frame) in frames.enumerated() {
            XCTAssertEqual(frame.width, 320)
            XCTAssertEqual(frame.height, 240)
            XCTAssertEqual(Double(meanLevel(frame)), Double(10 * i), accuracy: 4, "frame \(i) is the file's frame \(i)")
        }
        XCTAssertEqual(source.state, .ended)
        XCTAssertEqual(source.statistics.framesSkipped, 0)
        // An MJPEG file is read as its JPEG pictures: the thumbnail without decoding, the picture when read.
        XCTAssertTrue(frames.allSatisfy { $0.jpeg != nil })
        for (i, frame) in frames.enumerated() {
            let thumbnail = try frame.greyThumbnail()
            XCTAssertEqual(thumbnail.count, 80 * 60)
            XCTAssertEqual(Double(thumbnail.reduce(0) { $0 + Int($1) } / thumbnail.count), Double(10 * i), accuracy: 4)
        }
    }

    func testFileReplayAtItsFrameRateAndLooping() async throws {
        let path = try makeVideo(frames: 10, fps: 50)
        var options = CaptureOptions()
        options.loop = true
        let source = VideoSource(url: path, options: options)
        var frames: [Frame] = []
        for try await frame in source {
            frames.append(frame)
            if frames.count == 25 { break }
        }
        XCTAssertEqual(frames.count, 25)
        XCTAssertTrue(
            zip(frames, frames.dropFirst()).allSatisfy { $1.sequence > $0.sequence }, "sequence keeps going across loops")
        XCTAssertGreaterThanOrEqual(frames.last!.sequence, 24, "it went round more than twice")
        for frame in frames {
            XCTAssertEqual(frame.deviceSequence, frame.sequence % 10, "frame index within the file")
            XCTAssertEqual(Double(meanLevel(frame)), Double(10 * Int(frame.deviceSequence)), accuracy: 4)
        }
    }

    /// An RTSP camera that cannot be reached is retried with backoff (never a busy loop,
    /// logged once), and cancelling stops it.
    func testUnreachableRTSPStreamIsRetriedWithBackoff() async throws {
        let log = LogRecorder()
        var options = CaptureOptions()
        options.initialBackoff = .milliseconds(10)
        options.maxBackoff = .milliseconds(40)
        let source = try CameraSource.make("rtsp://127.0.0.1:9/gate", options: options, logger: log.logger)
        let task = Task {
            for try await _ in source { XCTFail("no frame expected") }
        }
        try await eventually("several reopen attempts") { source.statistics.failedOpens >= 3 }
        guard case .reconnecting(let error) = source.state else { return XCTFail("state \(source.state)") }
        XCTAssertEqual(error.operation, "vio_reader_open")
        task.cancel()
        try await task.value
        XCTAssertEqual(source.state, .stopped)
        XCTAssertEqual(log.count("camera unavailable; retrying with backoff"), 1, "\(log.all)")
        XCTAssertEqual(source.statistics.reconnects, 0)
    }

    func testMissingFileFailsWithTheReason() async throws {
        let source = VideoSource(url: directory.appendingPathComponent("absent.avi").path)
        do {
            for try await _ in source { XCTFail("no frame expected") }
            XCTFail("expected an error")
        } catch let error as CaptureError {
            XCTAssertEqual(error.operation, "vio_reader_open")
            XCTAssertEqual(error.code, .video(status: Int32(VIO_ERR_IO.rawValue)))
            XCTAssertTrue(error.description.contains("absent.avi"), error.description)
        }
        guard case .failed = source.state else { return XCTFail("state \(source.state)") }
    }
}
