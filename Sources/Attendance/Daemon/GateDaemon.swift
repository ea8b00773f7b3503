import AttendanceCore
import CaptureKit
import FaceEngine
import Foundation
import Hummingbird
import Logging
import Metrics
import Prometheus
import SectorConnector
import ServiceLifecycle

/// The gate daemon: one pipeline per camera, the gallery kept in step with the database, decided records
/// that the store refused written as soon as it accepts them again, retention, the sector drain, `/metrics`
/// and `/health`, and systemd's readiness and watchdog. Each long-running part is a `Service`; this type
/// only composes them from an `AttendanceConfig` (swift-service-lifecycle's "libraries" guide), so
/// `attendance serve`, the tests and the demo run the same daemon.
public struct GateDaemon: Sendable {
    public struct Options: Sendable {
        /// File cameras: the wall-clock time of the video's first frame; nil plays files in real time with the real clock.
        public var replayStart: Date?
        /// File cameras with `replayStart`: school seconds per second of video.
        public var timeScale: Double = 1
        /// File cameras with `replayStart`: `.asFastAsPossible` (every frame, times from the frame numbers) or
        /// `.realtime` (played at the file's rate like a camera, frames the pipeline misses are dropped: the benchmarks).
        public var replayPacing: CaptureOptions.Pacing = .asFastAsPossible
        /// Stop when every camera has ended (file replays) instead of serving on.
        public var exitWhenDone = false
        /// Told of every pipeline event (the demo prints them).
        public var onEvent: @Sendable (PipelineEvent) -> Void = { _ in }
        /// The registry `/metrics` exposes (the process's metrics factory must write into it).
        public var registry: PrometheusCollectorRegistry?
        public var galleryPollInterval: Duration = .seconds(2)
        public var retryInterval: Duration = .seconds(2)
        public var retentionInterval: Duration = .seconds(3600)
        public var systemd = SystemdNotifier()
        public init() {}
    }

    public let config: AttendanceConfig
    public let store: AttendanceStore
    public let faces: EnrolledFaces
    public let decider: AttendanceDecider
    public let state: GateState
    public let models: ModelPaths
    public let options: Options
    let logger: Logger

    /// Opens the store (or uses `store`), loads the enrolled faces and checks the models, so that a daemon
    /// that cannot work fails here, with one clear message, not in every camera task.
    public init(
        config: AttendanceConfig, store: AttendanceStore? = nil, models: ModelPaths = .discover(),
        options: Options = Options(), logger: Logger = Logger(label: "attendance.serve")
    ) throws {
        guard !config.cameras.isEmpty else {
            throw GateDaemonError.configuration("no cameras configured: add a [[camera]] section (see deploy/attendance.toml)")
        }
        let store = try store ?? AttendanceStore.open(config: config)
        // The store dates record ids, excuses and retention by its own config: it must be the daemon's.
        guard store.config.school == config.school, store.config.schedule == config.schedule,
            store.config.privacy == config.privacy, store.config.recognition.liveness == config.recognition.liveness
        else {
            throw GateDaemonError.configuration(
                "the database was opened with another school, schedule, privacy or liveness setting than the daemon's config")
        }
        if let path = config.sourcePath, let text = FileManager.default.contents(atPath: path) {
            // The audit log records every change of the daemon's configuration.
            try store.auditLog.configChange(path: path, contents: text)
        }
        let faces = try EnrolledFaces(store: store)
        do { try faces.reload() } catch { throw GateDaemonError.gallery("\(error)") }
        _ = try FaceEngine(models: models, recognition: config.recognition)
        if config.recognition.liveness != .off {
            do { _ = try LivenessChecker(models: models) } catch {
                throw GateDaemonError.configuration(
                    "recognition.liveness = \"\(config.recognition.liveness.rawValue)\" needs the liveness models: "
                        + "\(error.message) (or set recognition.liveness = \"off\" to run without the check)")
            }
        }
        self.config = config
        self.store = store
        self.faces = faces
        self.decider = AttendanceDecider(store: store)
        self.state = GateState(cameras: config.cameras.map(\.id))
        self.models = models
        self.options = options
        self.logger = logger
    }

    /// Runs until SIGTERM/SIGINT (or, with `exitWhenDone`, until every camera has ended). A camera that
    /// fails does not stop the others; it shows on `/health`. `alongside` are more services run in the same
    /// group and stopped with it (the web console: it lives in a module above this one).
    public func run(alongside extra: [any Service] = []) async throws {
        // One worker thread each for OpenCV and OpenBLAS (#16): the cameras' own tasks (two stages per camera:
        // the detector of one frame beside the landmarks and embeddings of the previous one) keep the cores busy,
        // and the libraries' own threads only add CPU: `make bench-face` measured 4 embeddings at 64-72 ms of CPU
        // with one OpenBLAS thread against 121-210 with two (its threads spin while they wait), and a res10 pass
        // at 48-50 ms of CPU with one OpenCV thread against 53-60 with two (AMD EPYC, 2 cores).
        let threads = FaceEngine.setThreads(opencv: 1, blas: 1)
        logger.debug(
            "library threads",
            metadata: [
                "opencv": "\(threads.opencv)", "openblas": "\(threads.blas.map { "\($0)" } ?? "not OpenBLAS")",
                "openblas_kernels": "\(FaceEngine.blasKernels ?? "-")",
            ])
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = extra.map { .init(service: $0) }
        for camera in config.cameras {
            services.append(
                .init(
                    service: CameraService(daemon: self, camera: camera),
                    successTerminationBehavior: .ignore, failureTerminationBehavior: .ignore,
                    serviceName: "camera \(camera.id)"))
        }
        services.append(
            .init(
                service: LoopService { await faces.run(every: options.galleryPollInterval, logger: logger) },
                serviceName: "gallery"))
        services.append(.init(service: LoopService { await retryUnstoredRecords() }, serviceName: "unstored records"))
        services.append(.init(service: LoopService { await retention() }, serviceName: "retention"))
        services.append(
            .init(service: LoopService { await systemd() }, successTerminationBehavior: .ignore, serviceName: "systemd"))
        if config.database.backend == .postgresql {
            // The school's outbox is on its shared server, sent by whichever box holds the sender's lock
            // (AttendancePostgres' SchoolSectorSender, composed beside this daemon), never from this box's journal.
        } else if !config.connector.endpoint.isEmpty {
            // The outbox drains to the sector gateway whatever the network does; records wait in SQLite meanwhile.
            let (sender, client) = try SectorConnection.make(
                config: config, store: store, logger: Logger(label: "attendance.sector"))
            services.append(
                .init(
                    service: LoopService {
                        await sender.run()
                        await client.shutdown()
                    }, serviceName: "sector"))
        } else {
            logger.notice("connector.endpoint is empty: records stay in the outbox for `attendance sync` or exports")
        }
        if config.metrics.enabled {
            services.append(.init(service: httpApplication(), serviceName: "metrics"))
        }
        if options.exitWhenDone {
            services.append(
                .init(
                    service: LoopService {
                        while !state.allEnded, !Task.isCancelled { try? await Task.sleep(for: .milliseconds(100)) }
                        // Give a record the store refused one more chance before leaving.
                        _ = await decider.retryUnstored()
                    }, successTerminationBehavior: .gracefullyShutdownGroup, serviceName: "done"))
        }
        var groupConfig = ServiceGroupConfiguration(
            services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        groupConfig.maximumGracefulShutdownDuration = .seconds(4)
        // A store call can be inside SQLite's 15 s busy wait, which cancellation cannot cut short; past this
        // limit swift-service-lifecycle aborts the process (and the held records with it).
        groupConfig.maximumCancellationDuration = .seconds(20)
        logger.info(
            "serving", metadata: ["cameras": "\(config.cameras.map(\.id))", "embeddings": "\(faces.current().snapshot.count)"])
        do {
            try await ServiceGroup(configuration: groupConfig).run()
        } catch {
            await stopped()
            throw error
        }
        await stopped()
    }

    /// The last word on records: written if the store takes them now, else counted as lost, loudly.
    func stopped() async {
        options.systemd.notify("STOPPING=1")
        _ = await decider.retryUnstored()
        let left = await decider.unstoredCount
        if left > 0 {
            let error = await decider.storeError ?? ""
            Counter(label: "attendance_dropped_records_total").increment(by: left)
            logger.error(
                "stopping with decided records the database never accepted: they are lost",
                metadata: ["records": "\(left)", "error": "\(error)"])
        }
        logger.info("stopped")
    }

    // MARK: the services' bodies

    func retryUnstoredRecords() async {
        let gauge = Gauge(label: "attendance_unstored_records")
        while !Task.isCancelled {
            if await decider.unstoredCount > 0 {
                let stored = await decider.retryUnstored()
                for event in stored {
                    logger.notice(
                        "recorded after the database accepted writes again",
                        metadata: [
                            "student": "\(store.pseudonym(of: event.studentCode))", "session": "\(event.session)",
                            "kind": "\(event.kind.rawValue)", "camera": "\(event.camera)",
                        ])
                }
            }
            gauge.record(await decider.unstoredCount)
            try? await Task.sleep(for: options.retryInterval)
        }
    }

    func retention() async {
        while !Task.isCancelled {
            do {
                // Old delivered events, expired unknown-face crops and counts, unreviewed sightings.
                let report = try store.retention.purge()
                logger.info("retention purge", metadata: ["report": "\(report)"])
                if report.keptUndelivered > 0 {
                    logger.warning(
                        "records older than privacy.retention_days are kept until the sector database has them",
                        metadata: ["records": "\(report.keptUndelivered)"])
                }
            } catch {
                logger.error("retention purge failed", metadata: ["error": "\(error)"])
            }
            try? await Task.sleep(for: options.retentionInterval)
        }
    }

    /// READY once every camera delivered a frame or is known failed or unavailable; then WATCHDOG
    /// while no pipeline is stuck inside a frame, so systemd restarts a hung daemon.
    func systemd() async {
        let notifier = options.systemd
        guard notifier.socketPath != nil else { return }
        while !state.everyCameraReported, !Task.isCancelled { try? await Task.sleep(for: .milliseconds(100)) }
        notifier.notify("READY=1\nSTATUS=serving \(config.cameras.count) camera(s)")
        logger.info("told systemd the daemon is ready")
        guard let interval = notifier.watchdogInterval else { return }
        // A frame may legitimately wait out the database's 15 s busy timeout; one stuck for longer than
        // 2/3 of WatchdogSec is hung: stop pinging, and systemd restarts the daemon within the rest of it.
        let hungAfter = max(interval + interval / 3, .seconds(10))
        while !Task.isCancelled {
            let hung = state.hungCameras(longerThan: hungAfter)
            if hung.isEmpty {
                notifier.notify("WATCHDOG=1")
            } else {
                logger.critical(
                    "camera pipeline stuck inside one frame: not feeding the watchdog, systemd will restart the daemon",
                    metadata: ["cameras": "\(hung)"])
            }
            try? await Task.sleep(for: interval / 2)
        }
    }

    // MARK: /health and /metrics

    /// What `/health` answers: 503 while any problem is listed.
    public func health() async -> GateHealth {
        var h = GateHealth()
        h.cameras = state.report()
        h.unstoredRecords = await decider.unstoredCount
        h.storeError = await decider.storeError
        h.droppedRecords = await decider.droppedRecords
        do { h.clockProblem = try store.clockProblem() } catch { h.storeError = h.storeError ?? "\(error)" }
        h.clockSynchronised = KernelClock.isSynchronised()
        h.outboxDepth = try? store.events.outboxDepth()
        let index = faces.current()
        h.embeddings = index.snapshot.count
        h.unreadableEmbeddings = index.unreadable.map(store.pseudonym(of:))
        let limit = Double(config.metrics.cameraUnavailableSeconds)
        for c in h.cameras {
            if case let .failed(error) = c.phase { h.problems.append("camera \(c.id) failed: \(error)") }
            if let s = c.unavailableSeconds, s > limit {
                h.problems.append(
                    "camera \(c.id) has delivered no frame for \(Int(s)) s (limit metrics.camera_unavailable_seconds = \(Int(limit)))"
                )
            }
        }
        if let e = h.storeError {
            h.problems.append("the database refuses writes (\(e)); \(h.unstoredRecords) decided record(s) wait in memory")
        }
        if let c = h.clockProblem { h.problems.append("clock: \(c)") }
        return h
    }

    func httpApplication() -> some Service {
        let router = Router()
        let registry = options.registry
        router.get("/metrics") { _, _ -> String in
            let h = await health()
            Gauge(label: "attendance_outbox_depth").record(h.outboxDepth ?? -1)
            Gauge(label: "attendance_gallery_version").record(faces.current().version)
            Gauge(label: "attendance_gallery_embeddings").record(h.embeddings)
            Gauge(label: "attendance_gallery_unreadable_embeddings").record(h.unreadableEmbeddings.count)
            Gauge(label: "attendance_unstored_records").record(h.unstoredRecords)
            Gauge(label: "attendance_clock_trusted").record(h.clockProblem == nil ? 1 : 0)
            Gauge(label: "attendance_clock_synchronized").record(h.clockSynchronised ? 1 : 0)
            Gauge(label: "attendance_cameras_unavailable").record(h.problems.filter { $0.hasPrefix("camera ") }.count)
            return registry?.emitToString() ?? ""
        }
        router.get("/health") { _, _ -> String in
            let h = await health()
            if !h.healthy { throw HTTPError(.serviceUnavailable, message: h.text) }
            return h.text
        }
        return Application(
            router: router, configuration: .init(address: .hostname(config.metrics.bind, port: config.metrics.port)),
            logger: Logger(label: "attendance.metrics"))
    }
}

/// The daemon's state as `/health` reports it.
public struct GateHealth: Sendable {
    public var cameras: [GateState.CameraReport] = []
    public var unstoredRecords = 0
    public var storeError: String?
    public var droppedRecords = 0
    public var clockProblem: ClockProblem?
    public var clockSynchronised = false
    public var outboxDepth: Int?
    public var embeddings = 0
    /// Pseudonyms of the students with an enrolment that could not be opened.
    public var unreadableEmbeddings: [String] = []
    /// What makes the gate unhealthy (503); empty when healthy.
    public var problems: [String] = []

    public var healthy: Bool { problems.isEmpty }

    /// Line one "ok" or "degraded", then one line per camera and per concern.
    public var text: String {
        var lines = [healthy ? "ok" : "degraded"]
        lines += problems.map { "problem: " + $0 }
        for c in cameras {
            let phase: String
            switch c.phase {
            case .starting: phase = "starting"
            case .running: phase = "running"
            case .ended: phase = "ended"
            case .failed(let e): phase = "failed: \(e)"
            }
            let last = c.secondsSinceLastFrame.map { String(format: "last frame %.1f s ago", $0) } ?? "no frame yet"
            lines.append("camera \(c.id): \(phase); \(c.capture); \(last)")
        }
        lines.append(
            "store: " + (storeError.map { "refusing writes: \($0)" } ?? "ok")
                + "; unstored records \(unstoredRecords); dropped \(droppedRecords)")
        lines.append("outbox: " + (outboxDepth.map { "\($0) pending" } ?? "unknown"))
        lines.append(
            "clock: " + (clockProblem == nil ? "trusted" : "NOT trusted") + "; "
                + (clockSynchronised ? "synchronised" : "not synchronised (kernel STA_UNSYNC: no NTP since boot)"))
        lines.append(
            "gallery: \(embeddings) embedding(s)"
                + (unreadableEmbeddings.isEmpty
                    ? ""
                    : "; unreadable enrolments of \(unreadableEmbeddings.joined(separator: ", ")) (see `attendance students`)"))
        return lines.joined(separator: "\n") + "\n"
    }
}

public enum GateDaemonError: Error, CustomStringConvertible, Sendable {
    case configuration(String)
    case gallery(String)
    public var description: String {
        switch self {
        case let .configuration(s): return s
        case let .gallery(s): return "cannot load the enrolled faces: \(s)"
        }
    }
}

/// One camera's pipeline as a service. A failure is logged and shown on /health; the other cameras go on.
struct CameraService: Service {
    let daemon: GateDaemon
    let camera: AttendanceConfig.Camera

    func run() async throws {
        var failure: String?
        do {
            try await cancelWhenGracefulShutdown { try await runPipeline() }
        } catch is CancellationError {
        } catch {
            daemon.logger.error("camera stopped", metadata: ["camera": "\(camera.id)", "error": "\(error)"])
            failure = "\(error)"
        }
        daemon.state.ended(camera.id, failure: failure)
    }

    func runPipeline() async throws {
        var options = CaptureOptions()
        var clock = PipelineClock.live
        if let start = daemon.options.replayStart {
            if camera.source.hasPrefix("file:") {
                options.pacing = daemon.options.replayPacing
                let path = String(camera.source.dropFirst("file:".count))
                clock = .replay(start: start, fps: try VideoInfo(path: path).fps, scale: daemon.options.timeScale)
            }
            // A live camera keeps the real clock: a replay start is for recorded video.
        }
        let source = try CameraSource.make(camera.source, cameraID: camera.id, options: options, logger: daemon.logger)
        daemon.state.started(camera.id, source: source)
        let pipeline = CameraPipeline(
            camera: camera, rules: RecognitionRules(daemon.config.recognition), models: daemon.models,
            faces: daemon.faces, decider: daemon.decider, clock: clock, privacy: daemon.config.privacy,
            logger: daemon.logger, monitor: daemon.state, capture: daemon.config.capture)
        let stats = try await pipeline.run(source: source, onEvent: daemon.options.onEvent)
        daemon.logger.info(
            "camera finished",
            metadata: ["camera": "\(camera.id)", "frames": "\(stats.frames)", "decisions": "\(stats.decisions)"])
    }
}

/// A loop that runs until cancelled; cancelled on graceful shutdown.
struct LoopService: Service {
    let body: @Sendable () async -> Void
    func run() async throws {
        await cancelWhenGracefulShutdown { await body() }
    }
}
