import ArgumentParser
import Attendance
import AttendanceCore
import Foundation
import Logging
import SectorConnector

struct SyncCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sync",
        abstract: "Send the outbox to the sector database now, or show what is pending.",
        discussion: """
            The daemon sends on its own; use this after an outage or to check. The contract with the gateway \
            is in docs/CONNECTOR.md. Examples:
              attendance sync                  send every pending record now
              attendance sync --retry-parked   queue parked records again first (after fixing the token, say)
              attendance sync status           pending, parked and delivered counts, and the last errors
            """,
        subcommands: [SyncPushCommand.self, SyncStatusCommand.self],
        defaultSubcommand: SyncPushCommand.self
    )
}

struct SyncPushCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "push",
        abstract: "Send every pending record now, whatever its retry schedule (the default).")

    @OptionGroup var global: GlobalOptions

    @Flag(help: "Queue parked records again before sending.")
    var retryParked = false

    @Flag(name: .shortAndLong, help: "Log each batch.")
    var verbose = false

    func run() async throws {
        let (store, config) = try global.openStore()
        let outbox = SQLiteOutbox(store: store)
        if retryParked {
            let n = try storeCall { try outbox.requeueParked() }
            print("queued \(n) parked record(s) again")
        }
        var logger = Logger(label: "sector")
        logger.logLevel = verbose ? .debug : .error
        let (sender, client): (SectorSender<SQLiteOutbox>, SectorClient)
        do { (sender, client) = try SectorConnection.make(config: config, store: store, logger: logger) } catch {
            throw failLine("\(error)")
        }
        let report: DrainReport
        do { report = try await sender.drain(ignoringSchedule: true) } catch {
            await client.shutdown()
            throw failLine("outbox: \(error)")
        }
        await client.shutdown()
        let status = try storeCall { try outbox.status(problemLimit: 0) }
        print(
            "delivered \(report.delivered), parked \(report.parked) in \(report.batches) batch(es); "
                + "now pending \(status.pending), parked \(status.parked), delivered \(status.delivered)")
        if let reason = report.interruption {
            throw failLine("stopped: \(reason); \(status.pending) record(s) stay pending and will be retried", code: 3)
        }
    }
}

struct SyncStatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Pending, parked and delivered counts of the outbox, and the latest errors.")

    @OptionGroup var global: GlobalOptions

    @Flag(help: "Print JSON.")
    var json = false

    func run() async throws {
        let (store, config) = try global.openStore()
        let status = try storeCall { try SQLiteOutbox(store: store).status() }
        if json { return try printJSON(status) }
        print("endpoint:  \(config.connector.endpoint.isEmpty ? "(none: exports only)" : config.connector.endpoint)")
        print("pending:   \(status.pending)" + (status.oldestPending.map { " (oldest queued \($0))" } ?? ""))
        print(
            "parked:    \(status.parked)"
                + (status.parked > 0 ? "  (see below; `attendance sync --retry-parked` queues them again)" : ""))
        print("delivered: \(status.delivered)" + (status.lastDelivered.map { " (last \($0))" } ?? ""))
        if let next = status.nextAttempt, status.pending > 0 { print("next try:  \(next)") }
        if !status.problems.isEmpty {
            print("\nlatest errors:")
            print(
                table(
                    [["record", "version", "state", "attempts", "error"]]
                        + status.problems.map { [$0.recordID, String($0.version), $0.state, String($0.attempts), $0.error] }))
        }
    }
}
