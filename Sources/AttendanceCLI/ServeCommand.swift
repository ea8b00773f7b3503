import ArgumentParser
import Attendance
import AttendanceConsole
import AttendanceCore
import AttendancePostgres
import Foundation
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
            metrics.bind:metrics.port (127.0.0.1:9464 by default), and the web console on console.bind:console.port
            (127.0.0.1:8080; [console] enabled = false turns it off). SIGTERM or SIGINT stops it within 5 s.
            Under systemd (Type=notify) it reports READY once every camera has delivered a frame or is known
            unavailable, and feeds the watchdog while no camera pipeline is stuck.

            Replay a recorded gate video as if it were a camera:
              attendance serve --config gate.toml --replay-start 2026-11-23T06:55:00+07:00 --time-scale 60 --exit-when-done
            """
    )

    @OptionGroup var global: GlobalOptions

    @Option(
        help: ArgumentHelp(
            "For file: cameras: the wall-clock time of the video's first frame (ISO-8601). Without it, files play in real time with the current clock.",
            valueName: "time"))
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
        var options = GateDaemon.Options()
        if let replayStart {
            guard let start = ISO8601DateFormatter().date(from: replayStart) else {
                throw failLine("--replay-start '\(replayStart)' is not an ISO-8601 time like 2026-11-23T06:55:00+07:00")
            }
            options.replayStart = start
            options.timeScale = timeScale
        }
        options.exitWhenDone = exitWhenDone
        let level = Logger.Level(rawValue: logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            var h = StreamLogHandler.standardError(label: label)
            h.logLevel = level
            return h
        }
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(GateMetricsFactory(registry: registry))
        options.registry = registry

        let daemon: GateDaemon
        var alongside: [any Service]
        do {
            daemon = try GateDaemon(config: config, options: options)
            alongside = try SchoolGateServices.make(for: daemon, config: config)
        } catch { throw failLine("\(error)") }
        if config.console.enabled {
            // The web console over the daemon's own store, showing the daemon's health on its Today page.
            let console: SchoolConsole
            do {
                console = try SchoolConsole.configured(
                    store: daemon.store, models: daemon.models, health: { await daemon.health() },
                    school: try SchoolServer.make(store: daemon.store, config: config))
                alongside.append(try console.application())
            } catch { throw failLine("\(error)") }
            Logger(label: "attendance.serve").notice(
                "console on \(console.url) (attendance user add NAME --role admin for the first account)")
        }
        do { try await daemon.run(alongside: alongside) } catch { throw failLine("\(error)") }
    }
}
