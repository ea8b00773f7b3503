// capture-bench: what capture + conversion to BGR costs per frame and per camera, measured
// through the real libv4l2/libv4lconvert path against the user-space fake device.
//
// The fake draws (and for MJPEG, JPEG-encodes) each frame inside VIDIOC_DQBUF on the
// capture thread; it reports that CPU time, and it is subtracted so the figures are what
// a real camera would cost. Medians of several trials.
import CFakeV4L2
import CaptureKit
import Foundation
import Glibc

func processCPUNanoseconds() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

func fakeStats(_ path: String) -> fake_v4l2_stats {
    var s = fake_v4l2_stats()
    _ = fake_v4l2_get_stats(path, &s)
    return s
}

func median(_ values: [Double]) -> Double {
    let sorted = values.sorted()
    guard !sorted.isEmpty else { return .nan }
    return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
}

func addFake(_ path: String, format: UInt32, width: UInt32, height: UInt32, fps: UInt32) {
    fake_v4l2_reset()
    var config = fake_v4l2_config()
    config.formats = format
    config.size_count = 1
    config.fps = fps
    config.sizes.0 = fake_v4l2_size(width: width, height: height)
    let rc = path.withCString { p in
        config.path = p
        return fake_v4l2_add(&config)
    }
    precondition(rc == 0, "fake_v4l2_add: \(rc)")
}

struct Case {
    var name: String
    var format: UInt32
    var width: UInt32
    var height: UInt32
}

let path = "/dev/video-bench"
let cases = [
    Case(name: "YUYV", format: FAKE_V4L2_YUYV, width: 640, height: 480),
    Case(name: "MJPEG", format: FAKE_V4L2_MJPEG, width: 640, height: 480),
    Case(name: "YUYV", format: FAKE_V4L2_YUYV, width: 1280, height: 720),
    Case(name: "MJPEG", format: FAKE_V4L2_MJPEG, width: 1280, height: 720),
]
let trials = Int(ProcessInfo.processInfo.environment["BENCH_TRIALS"] ?? "") ?? 7
let framesPerTrial = Int(ProcessInfo.processInfo.environment["BENCH_FRAMES"] ?? "") ?? 60
let realtimeSeconds = Double(ProcessInfo.processInfo.environment["BENCH_SECONDS"] ?? "") ?? 4

print(
    "capture-bench: libv4l2 mmap streaming, YUYV through libv4lconvert to BGR, MJPEG kept as JPEG and decoded to BGR when "
        + "the pixels are read (the convert column is then the header check), fake device, "
        + "\(ProcessInfo.processInfo.activeProcessorCount) cores"
)
print(
    "per-frame cost: \(trials) trials x \(framesPerTrial) frames, every frame delivered; CPU at 30 fps: \(realtimeSeconds) s per case"
)
print("")
print("format  size        CPU ms/frame  convert ms/frame  |  CPU per camera at 30 fps (fake device's drawing, excluded)")

for c in cases {
    // 1. Cost per frame: the device runs far faster than capture can take frames, so the
    //    capture thread is always busy; CPU per delivered frame, fake drawing excluded.
    addFake(path, format: c.format, width: c.width, height: c.height, fps: 1000)
    var options = CaptureOptions(width: Int(c.width), height: Int(c.height))
    options.preferredFormats = [c.name == "MJPEG" ? .mjpeg : .yuyv]
    var cpuPerFrame: [Double] = []
    var convertPerFrame: [Double] = []
    for _ in 0..<trials {
        let camera = V4L2Camera(path: path, options: options)
        var iterator = camera.makeAsyncIterator()
        _ = try await iterator.next() // open + first frame outside the measurement
        let gen0 = fakeStats(path).generate_ns
        let conv0 = camera.statistics.conversionTime
        let delivered0 = camera.statistics.framesDelivered
        let cpu0 = processCPUNanoseconds()
        // Every picture read whole: an MJPEG frame is decoded when its pixels are first read (CJPEG), not on capture.
        for _ in 0..<framesPerTrial { _ = try await iterator.next()?.pixels.count }
        let cpu = processCPUNanoseconds() - cpu0
        let gen = fakeStats(path).generate_ns - gen0
        let stats = camera.statistics
        let delivered = Double(stats.framesDelivered - delivered0)
        cpuPerFrame.append((Double(cpu) - Double(gen)) / 1e6 / delivered)
        let conv = stats.conversionTime - conv0
        convertPerFrame.append((Double(conv.components.seconds) * 1e3 + Double(conv.components.attoseconds) / 1e15) / delivered)
        _ = consume iterator
        while fakeStats(path).open_fds > 0 { try await Task.sleep(for: .milliseconds(5)) }
    }

    // 2. CPU per camera at 30 fps, consumer taking every frame.
    addFake(path, format: c.format, width: c.width, height: c.height, fps: 30)
    let camera = V4L2Camera(path: path, options: options)
    var iterator = camera.makeAsyncIterator()
    _ = try await iterator.next()
    let gen0 = fakeStats(path).generate_ns
    let cpu0 = processCPUNanoseconds()
    let wall0 = MonotonicTime.now()
    while MonotonicTime.now().duration(since: wall0) < .milliseconds(Int(realtimeSeconds * 1000)) {
        _ = try await iterator.next()?.pixels.count
    }
    let wall = Double(MonotonicTime.now().nanoseconds - wall0.nanoseconds)
    let cpu = Double(processCPUNanoseconds() - cpu0)
    let gen = Double(fakeStats(path).generate_ns - gen0)
    let stats = camera.statistics
    _ = consume iterator

    let size = "\(c.width)x\(c.height)"
    func pad(_ text: String, _ width: Int) -> String {
        text.padding(toLength: max(width, text.count), withPad: " ", startingAt: 0)
    }
    print(
        pad(c.name, 8) + pad(size, 12)
            + String(
                format: "%12.2f  %16.2f  |  %5.1f %%  (%.1f %%)   delivered %llu, skipped %llu",
                median(cpuPerFrame), median(convertPerFrame), (cpu - gen) / wall * 100, gen / wall * 100,
                stats.framesDelivered, stats.framesSkipped))
    while fakeStats(path).open_fds > 0 { try await Task.sleep(for: .milliseconds(5)) }
}
