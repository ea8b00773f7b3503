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

        // With the shared database, the sector outbox is the school's (on the server), sent by one box at a time
        // (SchoolSectorSender below), never by each daemon from its own journal.
        var daemonConfig = config
        if config.database.backend == .postgresql { daemonConfig.connector.endpoint = "" }
        let daemon: GateDaemon
        do { daemon = try GateDaemon(config: daemonConfig, options: options) } catch { throw failLine("\(error)") }
        var alongside: [any Service] = []
        if config.database.backend == .postgresql {
            // The school's shared database: this box's decisions go to its SQLite journal first (as always), and
            // the journal sender moves them to PostgreSQL whenever the server can be reached.
            do {
                let connector = try PostgresConnector(config: config.database)
                alongside.append(
                    JournalSender(
                        store: daemon.store, connector: connector, gate: ProcessInfo.processInfo.hostName,
                        logger: Logger(label: "attendance.journal")))
                // The gallery this gate matches against is the school's, refreshed from the server into the local
                // (sealed) copy within a moment of each change; the cameras reload as soon as it changed.
                alongside.append(
                    SchoolGallerySync(
                        store: daemon.store, connector: connector, reloading: daemon.faces,
                        logger: Logger(label: "attendance.gallery")))
                Logger(label: "attendance.serve").notice(
                    "school database \(connector.url): this gate's journal is sent there, its gallery read from there")
                if !config.connector.endpoint.isEmpty {
                    let c = config.connector
                    guard let tokenFile = c.tokenFile else {
                        throw failLine("connector.token_file is not set: name a file (mode 0600) holding the gateway's token")
                    }
                    let client = try SectorClient(
                        endpoint: c.endpoint, token: try BearerToken.load(fromFile: tokenFile),
                        timeoutSeconds: c.timeoutSeconds, allowInsecureHTTP: c.allowInsecureHTTP,
                        logger: Logger(label: "attendance.sector"))
                    var sector = SchoolSectorSender(
                        connector: connector, transport: client, logger: Logger(label: "attendance.sector"))
                    sector.options = .init(batchSize: c.batchSize)
                    sector.onStop = { await client.shutdown() }
                    alongside.append(sector)
                }
            } catch { throw failLine("\(error)") }
        }
        if config.console.enabled {
            // The web console over the daemon's own store, showing the daemon's health on its Today page.
            let console: SchoolConsole
            do {
                console = try SchoolConsole.configured(
                    store: daemon.store, models: daemon.models, health: { await daemon.health() })
                alongside.append(try console.application())
            } catch { throw failLine("\(error)") }
            Logger(label: "attendance.serve").notice(
                "console on \(console.url) (attendance user add NAME --role admin for the first account)")
        }
        do { try await daemon.run(alongside: alongside) } catch { throw failLine("\(error)") }
    }
}
