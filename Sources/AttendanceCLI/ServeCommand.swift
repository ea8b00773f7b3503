import ArgumentParser
import Attendance
import CaptureKit
import FaceEngine
import FaceMatch
import Foundation
import Hummingbird
import Logging
import Metrics
import Prometheus
import SectorConnector
import ServiceLifecycle

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the gate daemon: every configured camera, recognition, records, metrics.",
        discussion: """
        Reads the TOML config (--config or $ATTENDANCE_CONFIG; deploy/attendance.toml documents every key),
        runs one pipeline per [[camera]] concurrently, records decisions in the SQLite database, reloads
        the gallery within seconds of a new enrolment, and serves Prometheus metrics and /health on
        metrics.bind:metrics.port (127.0.0.1:9464 by default). SIGTERM or SIGINT stops it within 5 s.

        Replay a recorded gate video as if it were a camera:
          attendance serve --config gate.toml --replay-start 2026-11-23T06:55:00+07:00 --time-scale 60 --exit-when-done
        """
    )

    @OptionGroup var global: GlobalOptions

    @Option(help: ArgumentHelp("For file: cameras: the wall-clock time of the video's first frame (ISO-8601). Without it, files play in real time with the current clock.", valueName: "time"))
    var replayStart: String?

    @Option(help: "For file: cameras with --replay-start: school seconds per second of video.")
    var timeScale: Double = 1

    @Flag(help: "Exit when every camera source has ended (file replays) instead of serving on.")
    var exitWhenDone = false

    @Option(help: "Log level: trace, debug, info, notice, warning, error.")
    var logLevel: String = "info"

    func run() async throws {
        let config: AttendanceConfig
        do { config = try global.loadConfig() } catch { throw failLine("\(error)") }
        guard !config.cameras.isEmpty else {
            throw failLine("no cameras configured: add a [[camera]] section (see deploy/attendance.toml)")
        }
        LoggingSystem.bootstrap { label in
            var h = StreamLogHandler.standardError(label: label)
            h.logLevel = Logger.Level(rawValue: logLevel) ?? .info
            return h
        }
        let logger = Logger(label: "attendance.serve")
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))

        let store: AttendanceStore
        do { store = try AttendanceStore.open(config: config) } catch { throw failLine("\(error)") }
        if let path = config.sourcePath, let text = FileManager.default.contents(atPath: path) {
            // The audit log records every change of the daemon's configuration.
            do { try store.auditConfigChange(path: path, contents: text) } catch { throw failLine("\(error)") }
        }
        let faces = try EnrolledFaces(store: store)
        do { try faces.reload() } catch { throw failLine("cannot load the enrolled faces: \(error)") }
        let models = ModelPaths.discover()
        // Fail now, clearly, rather than in every camera task.
        do { _ = try FaceEngine(models: models) } catch { throw failLine("\(error)") }

        var clock = PipelineClock.live
        if let replayStart {
            guard let start = ISO8601DateFormatter().date(from: replayStart) else {
                throw failLine("--replay-start '\(replayStart)' is not an ISO-8601 time like 2026-11-23T06:55:00+07:00")
            }
            clock = .replay(start: start, fps: 0, scale: timeScale)
        }
        let decider = AttendanceDecider(store: store, config: config)
        let rules = RecognitionRules(config.recognition)
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = []
        let cameraServices = config.cameras.map { camera in
            CameraService(camera: camera, rules: rules, models: models, faces: faces, decider: decider, clock: clock,
                          privacy: config.privacy, logger: logger)
        }
        let ended = EndedCameras(total: cameraServices.count)
        for c in cameraServices {
            services.append(.init(service: CameraServiceRunner(service: c, ended: ended, exitWhenDone: exitWhenDone),
                                  successTerminationBehavior: .ignore,
                                  failureTerminationBehavior: .gracefullyShutdownGroup, serviceName: "camera \(c.camera.id)"))
        }
        services.append(.init(service: PollingService(name: "gallery") { await faces.run(logger: logger) }, serviceName: "gallery"))
        services.append(.init(service: PollingService(name: "retention") {
            while !Task.isCancelled {
                do {
                    // Old events and their outbox rows, expired unknown-face crops and counts.
                    let report = try store.purge(config: config)
                    logger.info("retention purge", metadata: ["report": "\(report)"])
                } catch { logger.error("retention purge failed", metadata: ["error": "\(error)"]) }
                try? await Task.sleep(for: .seconds(3600))
            }
        }, serviceName: "retention"))
        if !config.connector.endpoint.isEmpty {
            // The outbox drains to the sector gateway whatever the network does; records wait in SQLite meanwhile.
            let connection: (SectorSender<SQLiteOutbox>, SectorClient)
            do {
                connection = try SectorConnection.make(config: config, store: store, logger: Logger(label: "attendance.sector"))
            } catch { throw failLine("\(error)") }
            let (sender, client) = connection
            services.append(.init(service: PollingService(name: "sector") {
                await sender.run()
                await client.shutdown()
            }, serviceName: "sector"))
        } else {
            logger.notice("connector.endpoint is empty: records stay in the outbox for `attendance sync` or exports")
        }
        if config.metrics.enabled {
            let router = Router()
            router.get("/metrics") { _, _ in
                let depth = (try? store.outboxDepth()) ?? -1
                Gauge(label: "attendance_outbox_depth").record(depth)
                let index = faces.current()
                Gauge(label: "attendance_gallery_version").record(index.version)
                Gauge(label: "attendance_gallery_embeddings").record(index.snapshot.count)
                return registry.emitToString()
            }
            // 200 "ok" while no camera has failed; 503 with the failed camera's error otherwise.
            router.get("/health") { _, _ -> String in
                let (text, failed) = await ended.report()
                if failed { throw HTTPError(.serviceUnavailable, message: "degraded\n" + text + "\n") }
                return "ok\n" + text + "\n"
            }
            let app = Application(router: router,
                                  configuration: .init(address: .hostname(config.metrics.bind, port: config.metrics.port)),
                                  logger: Logger(label: "attendance.metrics"))
            services.append(.init(service: app, serviceName: "metrics"))
        }
        if exitWhenDone {
            services.append(.init(service: PollingService(name: "done") { await ended.waitAll() },
                                  successTerminationBehavior: .gracefullyShutdownGroup, serviceName: "done"))
        }
        var groupConfig = ServiceGroupConfiguration(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        groupConfig.maximumGracefulShutdownDuration = .seconds(4)
        groupConfig.maximumCancellationDuration = .seconds(1)
        logger.info("serving", metadata: ["cameras": "\(config.cameras.map(\.id))", "database": "\(config.database.path)",
                                          "embeddings": "\(faces.current().snapshot.count)"])
        try await ServiceGroup(configuration: groupConfig).run()
        logger.info("stopped")
    }
}

/// Where each camera stands, for /health and --exit-when-done.
actor EndedCameras {
    let total: Int
    var ended = 0
    var waiters: [CheckedContinuation<Void, Never>] = []
    /// Camera id -> "running", "ended" or "failed: <error>".
    var states: [String: String] = [:]
    init(total: Int) { self.total = total }
    func started(_ camera: String) { states[camera] = "running" }
    func end(_ camera: String, failure: String? = nil) {
        states[camera] = failure.map { "failed: \($0)" } ?? "ended"
        ended += 1
        if ended >= total { waiters.forEach { $0.resume() }; waiters.removeAll() }
    }
    func waitAll() async {
        if ended >= total { return }
        await withCheckedContinuation { waiters.append($0) }
    }
    /// One line per camera, and whether any camera failed.
    func report() -> (text: String, failed: Bool) {
        let lines = states.sorted { $0.key < $1.key }.map { "camera \($0.key): \($0.value)" }
        return (lines.joined(separator: "\n"), states.values.contains { $0.hasPrefix("failed") })
    }
}

/// One camera's pipeline as a service.
struct CameraService: Sendable {
    let camera: AttendanceConfig.Camera
    let rules: RecognitionRules
    let models: ModelPaths
    let faces: EnrolledFaces
    let decider: AttendanceDecider
    let clock: PipelineClock
    let privacy: AttendanceConfig.Privacy
    let logger: Logger

    func run() async throws {
        var options = CaptureOptions()
        var clock = self.clock
        if case let .replay(start, _, scale) = clock {
            if camera.source.hasPrefix("file:") {
                options.pacing = .asFastAsPossible
                clock = .replay(start: start, fps: try Self.fps(of: camera.source), scale: scale)
            } else {
                // --replay-start is for recorded video; a live camera keeps the real clock.
                clock = .live
            }
        }
        let source = try CameraSource.make(camera.source, cameraID: camera.id, options: options, logger: logger)
        let pipeline = CameraPipeline(camera: camera, rules: rules, models: models, faces: faces, decider: decider,
                                      clock: clock, privacy: privacy, logger: logger)
        let stats = try await pipeline.run(source: source)
        logger.info("camera finished", metadata: ["camera": "\(camera.id)", "frames": "\(stats.frames)", "decisions": "\(stats.decisions)"])
    }

    static func fps(of spec: String) throws -> Double {
        let path = String(spec.dropFirst("file:".count))
        return try VideoInfo(path: path).fps
    }
}

struct CameraServiceRunner: Service {
    let service: CameraService
    let ended: EndedCameras
    let exitWhenDone: Bool
    func run() async throws {
        await ended.started(service.camera.id)
        var failure: String?
        do {
            try await cancelWhenGracefulShutdown { try await service.run() }
        } catch is CancellationError {
        } catch {
            // One misconfigured camera must not take the other gates down: log it, show it in /health, carry on.
            service.logger.error("camera stopped", metadata: ["camera": "\(service.camera.id)", "error": "\(error)"])
            failure = "\(error)"
        }
        await ended.end(service.camera.id, failure: failure)
        if !exitWhenDone {
            // A finished replay leaves the daemon serving metrics until stopped.
            try? await gracefulShutdown()
        }
    }
}

/// A long-running loop as a service; cancelled on shutdown.
struct PollingService: Service {
    let name: String
    let body: @Sendable () async -> Void
    func run() async throws {
        await cancelWhenGracefulShutdown { await body() }
    }
}
