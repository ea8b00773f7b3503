import CV4L2
import CVideoIO
import Foundation
import Logging
import Synchronization

/// What the capture thread learns from one `grab`.
enum GrabResult {
    case frame(FrameInfo)
    /// Nothing within the timeout.
    case timeout
    /// The wake fd fired (stop requested, or a consumer is waiting).
    case woken
    /// A finite source reached its end.
    case end
}

struct FrameInfo {
    /// Names the grabbed buffer for `retrieve`/`release` (a V4L2 buffer index).
    var token: Int
    var deviceSequence: UInt64
    var driverTimestamp: MonotonicTime?
    var width: Int
    var height: Int
}

/// One concrete device, driven only from its capture thread (so it need not be Sendable).
protocol CaptureDriver: AnyObject {
    /// The device path or URL, for errors and logs.
    var source: String { get }
    /// Live sources reconnect when they end or stall; files finish.
    var isLive: Bool { get }
    /// Grab only while a consumer waits (file replay as fast as possible: nothing is skipped).
    var isDemandDriven: Bool { get }
    /// Opens (or reopens) the device and starts it; returns what was negotiated.
    func open() throws(CaptureError) -> String
    /// Waits up to `timeoutMilliseconds` for the next frame, or until `wakeFD` is readable.
    func grab(timeoutMilliseconds: Int32, wakeFD: Int32) throws(CaptureError) -> GrabResult
    /// A grabbed frame's picture (only called for frames a consumer will get): BGR pixels, or a JPEG as the device
    /// sent it, its header checked (`FramePicture(jpeg:)`); throws when it cannot be decoded.
    func retrieve(_ token: Int) throws(CaptureError) -> FramePicture
    /// Gives a grabbed frame's buffer back to the device. At most two are held at once.
    func release(_ token: Int)
    /// Stops and closes; safe to call when not open.
    func close()
}

/// Runs one capture session on a dedicated thread: open, stream, reconnect with backoff,
/// hand the newest frame to the waiting consumer.
///
/// The thread owns the driver; the consumer side talks to it only through `shared` (a
/// mutex) and the wake fd, so a slow consumer can never block capture.
final class CaptureEngine: Sendable {
    let cameraID: String
    let options: CaptureOptions
    let logger: Logger
    private let makeDriver: @Sendable () -> any CaptureDriver
    private let wakeFD: Int32
    private let shared = Mutex(Shared())
    /// Corrupt frames are counted; only the first is logged.
    private let corruptLogged = Atomic<Bool>(false)

    private struct Shared {
        var started = false
        var stopRequested = false
        var waiter: CheckedContinuation<Frame?, any Error>?
        /// Set when the thread has closed the device and will deliver nothing more.
        var finished = false
        var finalError: CaptureError?
        var errorReported = false
        var statistics = CaptureStatistics()
        var state = CaptureState.idle
        var everStreamed = false
    }

    init(cameraID: String, options: CaptureOptions, logger: Logger, makeDriver: @escaping @Sendable () -> any CaptureDriver) {
        self.cameraID = cameraID
        self.options = options
        self.logger = logger
        self.makeDriver = makeDriver
        self.wakeFD = cv4l2_wake_create()
    }

    deinit { cv4l2_wake_close(wakeFD) }

    var statistics: CaptureStatistics { shared.withLock { $0.statistics } }
    var state: CaptureState { shared.withLock { $0.state } }

    func start() {
        let first = shared.withLock { s -> Bool in
            defer { s.started = true }
            return !s.started
        }
        guard first else { return }
        let thread = Thread { [self] in self.run() }
        thread.name = "capture \(cameraID)"
        thread.start()
    }

    /// Asks the thread to stop; returns at once (the thread closes the device and exits).
    func requestStop() {
        shared.withLock { $0.stopRequested = true }
        cv4l2_wake_signal(wakeFD)
    }

    // MARK: consumer side

    func next() async throws -> Frame? {
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Frame?, any Error>) in
                enum Action { case wait, end, fail(CaptureError) }
                let action = shared.withLock { s -> Action in
                    if s.finished {
                        if let error = s.finalError, !s.errorReported {
                            s.errorReported = true
                            return .fail(error)
                        }
                        return .end
                    }
                    precondition(s.waiter == nil, "a FrameSource iterator must be used from one task at a time")
                    s.waiter = continuation
                    return .wait
                }
                switch action {
                case .wait: cv4l2_wake_signal(wakeFD) // a demand-driven driver grabs now
                case .end: continuation.resume(returning: nil)
                case .fail(let error): continuation.resume(throwing: error)
                }
            }
        } onCancel: {
            // The thread sees the request, closes the device, then resumes the waiter with nil.
            requestStop()
        }
    }

    // MARK: capture thread

    private var stopRequested: Bool { shared.withLock { $0.stopRequested } }
    private var consumerWaiting: Bool { shared.withLock { $0.waiter != nil } }

    /// Hands a frame to the waiting consumer; false if it stopped waiting meanwhile.
    private func deliver(_ frame: Frame) -> Bool {
        let waiter = shared.withLock { s -> CheckedContinuation<Frame?, any Error>? in
            defer { s.waiter = nil }
            return s.waiter
        }
        guard let waiter else { return false }
        waiter.resume(returning: frame)
        return true
    }

    private func setState(_ new: CaptureState) {
        let (changed, everStreamed) = shared.withLock { s -> (Bool, Bool) in
            defer {
                s.state = new
                if case .streaming = new { s.everStreamed = true }
            }
            return (s.state.kind != new.kind, s.everStreamed)
        }
        guard changed else { return }
        var metadata: Logger.Metadata = ["camera": "\(cameraID)"]
        switch new {
        case .idle: break
        case .opening: logger.debug("opening camera", metadata: metadata)
        case .streaming(let what):
            metadata["format"] = "\(what)"
            logger.info("camera streaming", metadata: metadata)
        case .reconnecting(let error):
            metadata["error"] = "\(error)"
            if everStreamed {
                logger.warning("camera lost; reopening with backoff", metadata: metadata)
            } else {
                logger.warning("camera unavailable; retrying with backoff", metadata: metadata)
            }
        case .ended: logger.info("video ended", metadata: metadata)
        case .stopped: logger.info("camera stopped", metadata: metadata)
        case .failed(let error):
            metadata["error"] = "\(error)"
            logger.error("camera failed", metadata: metadata)
        }
    }

    private func update(_ body: (inout CaptureStatistics) -> Void) {
        shared.withLock { body(&$0.statistics) }
    }

    private func finish(error: CaptureError?) {
        let waiter = shared.withLock { s -> CheckedContinuation<Frame?, any Error>? in
            s.finished = true
            s.finalError = error
            defer { s.waiter = nil }
            if s.waiter != nil, error != nil { s.errorReported = true }
            return s.waiter
        }
        if let error { waiter?.resume(throwing: error) } else { waiter?.resume(returning: nil) }
    }

    /// Sleeps for `duration` unless a stop request cuts it short.
    private func sleepUnlessStopped(_ duration: Duration) {
        let deadline = MonotonicTime.now().nanoseconds &+ UInt64(max(0, duration.nanosecondsValue))
        while !stopRequested {
            let now = MonotonicTime.now().nanoseconds
            if now >= deadline { return }
            let ms = Int32(min(1000, (deadline - now + 999_999) / 1_000_000))
            if cv4l2_wake_sleep(wakeFD, ms) != 0 { cv4l2_wake_drain(wakeFD) }
        }
    }

    /// The delay before reopen attempt `attempt` (0-based): initial * 2^attempt, capped.
    static func backoff(attempt: Int, initial: Duration, max cap: Duration) -> Duration {
        let first = Swift.max(1, initial.nanosecondsValue)
        let limit = Swift.max(first, cap.nanosecondsValue)
        let shift = Swift.min(Swift.max(0, attempt), 62)
        return .nanoseconds(first > limit >> shift ? limit : first << shift)
    }

    private func run() {
        let driver = makeDriver()
        var attempt = 0
        var opened = false
        var nextSequence: UInt64 = 0
        setState(.opening)
        while !stopRequested {
            do throws(CaptureError) {
                let what: String
                do throws(CaptureError) {
                    what = try driver.open()
                } catch {
                    update { $0.failedOpens += 1 }
                    throw error
                }
                if opened { update { $0.reconnects += 1 } }
                opened = true
                setState(.streaming(what))
                let ended = try stream(driver, nextSequence: &nextSequence, onFirstFrame: { attempt = 0 }).ended
                driver.close()
                if stopRequested { break }
                if ended {
                    if options.loop { continue }
                    setState(.ended)
                    finish(error: nil)
                    return
                }
            } catch {
                driver.close()
                guard error.isTransient, driver.isLive else {
                    setState(.failed(error))
                    finish(error: error)
                    return
                }
                setState(.reconnecting(error))
                sleepUnlessStopped(Self.backoff(attempt: attempt, initial: options.initialBackoff, max: options.maxBackoff))
                attempt += 1
            }
        }
        driver.close()
        setState(.stopped)
        finish(error: nil)
    }

    /// Streams until stopped (returns ended = false) or a finite source ends (ended = true).
    ///
    /// Latest-frame delivery: a frame that arrives while the consumer is busy is held (its
    /// buffer stays dequeued, unconverted); a newer one replaces it and the older buffer goes
    /// back to the device, counted as skipped. When the consumer asks, it gets the held frame
    /// at once. Only delivered frames are converted, so a slow consumer costs no CPU.
    private func stream(
        _ driver: any CaptureDriver, nextSequence: inout UInt64, onFirstFrame: () -> Void
    ) throws(CaptureError) -> (ended: Bool, gotFrames: Bool) {
        var lastDeviceSequence: UInt64?
        var sessionBase: UInt64 = 0
        var held: (info: FrameInfo, sequence: UInt64, capturedAt: MonotonicTime, wallTime: Date)?
        var lastFrameAt = MonotonicTime.now()
        let stallNanos = options.stallTimeout.nanosecondsValue
        defer {
            if let held {
                driver.release(held.info.token)
                update { $0.framesSkipped += 1 }
            }
        }
        while true {
            if stopRequested { return (false, lastDeviceSequence != nil) }
            if let h = held, consumerWaiting {
                held = nil
                defer { driver.release(h.info.token) }
                hand(driver, h.info, sequence: h.sequence, capturedAt: h.capturedAt, wallTime: h.wallTime)
                continue
            }
            if driver.isDemandDriven && !consumerWaiting {
                if cv4l2_wake_sleep(wakeFD, 1000) != 0 { cv4l2_wake_drain(wakeFD) }
                continue
            }
            switch try driver.grab(timeoutMilliseconds: 250, wakeFD: wakeFD) {
            case .woken:
                cv4l2_wake_drain(wakeFD)
            case .timeout:
                if driver.isLive, MonotonicTime.now().duration(since: lastFrameAt).nanosecondsValue > stallNanos {
                    throw CaptureError(.stalled, operation: "poll", source: driver.source)
                }
            case .end:
                if driver.isLive {
                    throw CaptureError(
                        .video(status: Int32(VIO_ERR_END.rawValue)), operation: "vio_reader_read", source: driver.source,
                        detail: "stream ended")
                }
                return (true, lastDeviceSequence != nil)
            case .frame(let info):
                let capturedAt = MonotonicTime.now()
                lastFrameAt = capturedAt
                if let last = lastDeviceSequence {
                    if info.deviceSequence > last + 1 {
                        let lost = info.deviceSequence - last - 1
                        update { $0.framesLost += lost }
                    }
                } else {
                    sessionBase = nextSequence &- info.deviceSequence
                    onFirstFrame()
                }
                lastDeviceSequence = info.deviceSequence
                let sequence = sessionBase &+ info.deviceSequence
                nextSequence = sequence &+ 1
                update { $0.framesCaptured += 1 }
                if let old = held {
                    driver.release(old.info.token)
                    update { $0.framesSkipped += 1 }
                    held = nil
                }
                if consumerWaiting {
                    defer { driver.release(info.token) }
                    hand(driver, info, sequence: sequence, capturedAt: capturedAt, wallTime: Date())
                } else {
                    held = (info, sequence, capturedAt, Date())
                }
            }
        }
    }

    /// Converts a grabbed frame and hands it to the waiting consumer.
    private func hand(_ driver: any CaptureDriver, _ info: FrameInfo, sequence: UInt64, capturedAt: MonotonicTime, wallTime: Date)
    {
        let t0 = MonotonicTime.now()
        let picture: FramePicture
        do {
            picture = try driver.retrieve(info.token)
        } catch {
            update { $0.corruptFrames += 1 }
            if corruptLogged.compareExchange(expected: false, desired: true, ordering: .relaxed).exchanged {
                logger.warning("undecodable frame skipped", metadata: ["camera": "\(cameraID)", "error": "\(error)"])
            }
            return
        }
        let elapsed = MonotonicTime.now().duration(since: t0)
        let frame = Frame(
            cameraID: cameraID, sequence: sequence, deviceSequence: info.deviceSequence,
            width: info.width, height: info.height, picture: picture,
            driverTimestamp: info.driverTimestamp, capturedAt: capturedAt, wallTime: wallTime)
        let handed = deliver(frame)
        update {
            $0.conversionTime += elapsed
            if handed { $0.framesDelivered += 1 } else { $0.framesSkipped += 1 }
        }
    }
}

extension Duration {
    /// The duration in whole nanoseconds (saturating).
    var nanosecondsValue: Int64 {
        let (seconds, attoseconds) = components
        let (ns, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        if overflow { return seconds < 0 ? .min : .max }
        return ns.addingReportingOverflow(attoseconds / 1_000_000_000).overflow ? .max : ns + attoseconds / 1_000_000_000
    }
}
