import Attendance
import AttendanceCore
import Foundation
import Logging
import ServiceLifecycle

/// What a gate box runs beside its `GateDaemon` when the school shares one PostgreSQL server
/// (`[database] backend = "postgresql"`): the executable only adds these to the daemon's group.
///
/// - `JournalSender`: this box's decisions, written first to its own SQLite journal as always, go to the server
///   whenever it can be reached (idempotent by record id).
/// - `SchoolGallerySync`: the gallery this gate matches against is the school's, copied (sealed) into the local
///   store within a moment of each change (LISTEN/NOTIFY); the cameras reload as soon as it changed.
/// - `SchoolSectorSender` (with a `[connector]`): the school's outbox on the server, sent to the sector by
///   whichever box holds the sender's advisory lock. The daemon itself never sends its own journal's outbox.
public enum SchoolGateServices {
    public static func make(for daemon: GateDaemon, config: AttendanceConfig, gate: String = ProcessInfo.processInfo.hostName)
        throws -> [any Service]
    {
        guard config.database.backend == .postgresql else { return [] }
        let connector = try PostgresConnector(config: config.database)
        var services: [any Service] = [
            JournalSender(store: daemon.store, connector: connector, gate: gate, logger: Logger(label: "attendance.journal"))
        ]
        services.append(
            SchoolGallerySync(
                store: daemon.store, connector: connector, reloading: daemon.faces, logger: Logger(label: "attendance.gallery")))
        Logger(label: "attendance.serve").notice(
            "school database \(connector.url): this gate's journal is sent there, its gallery read from there")
        if !config.connector.endpoint.isEmpty {
            let sectorLogger = Logger(label: "attendance.sector")
            let client = try SectorConnection.client(config: config.connector, logger: sectorLogger)
            var sector = SchoolSectorSender(connector: connector, transport: client, logger: sectorLogger)
            sector.options = .init(batchSize: config.connector.batchSize)
            sector.onStop = { await client.shutdown() }
            services.append(sector)
        }
        return services
    }
}
