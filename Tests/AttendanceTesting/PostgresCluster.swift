import Foundation

/// A throwaway PostgreSQL cluster (`scripts/pg-cluster.sh`) started by the test process itself, like the
/// reference gateway: initdb in a temporary folder, a non-root user, a free port on 127.0.0.1, password
/// (scram) sign-in for the owner and the gate roles. It is stopped and removed when the test process ends,
/// however it ends (the script watches our pid).
public final class PostgresCluster: Sendable {
    public let directory: String
    public let port: Int
    /// `postgresql://attendance_owner@127.0.0.1:PORT/attendance` and its 0600 password file.
    public let ownerURL: String
    public let ownerPasswordFile: String
    /// `postgresql://attendance_gate@127.0.0.1:PORT/attendance` (the daemons' role) and its password file.
    public let gateURL: String
    public let gatePasswordFile: String

    /// The repository's `scripts/pg-cluster.sh`.
    public static var script: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("scripts/pg-cluster.sh").path
    }

    /// Why the tests cannot have a cluster on this machine (no server binaries), or nil.
    public static var unavailableReason: String? {
        if let bin = ProcessInfo.processInfo.environment["PG_BIN"] {
            return FileManager.default.isExecutableFile(atPath: bin + "/initdb") ? nil : "no initdb in PG_BIN=\(bin)"
        }
        let versions = (try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql")) ?? []
        if versions.contains(where: { FileManager.default.isExecutableFile(atPath: "/usr/lib/postgresql/\($0)/bin/initdb") }) {
            return nil
        }
        return "PostgreSQL's server binaries are not installed (apt-get install postgresql, or make deps)"
    }

    /// Starts a new cluster (about 3 s), or with `existing`, uses the one `pg-cluster.sh start` made in that folder.
    public init(existing: String? = nil) throws {
        let out: String
        if let existing {
            guard let data = FileManager.default.contents(atPath: existing + "/cluster.env") else {
                throw HarnessError("no cluster in \(existing) (PG_CLUSTER_DIR): \(existing)/cluster.env is missing")
            }
            out = String(decoding: data, as: UTF8.self)
        } else {
            out = try Self.run(["start", "--watch", "\(getpid())"])
        }
        var values: [String: String] = [:]
        for line in out.split(separator: "\n") {
            guard let eq = line.firstIndex(of: "=") else { continue }
            values[String(line[..<eq])] = String(line[line.index(after: eq)...])
        }
        guard let dir = values["PG_CLUSTER_DIR"], let port = values["PG_PORT"].flatMap(Int.init),
            let ownerURL = values["PG_OWNER_URL"], let ownerFile = values["PG_OWNER_PASSWORD_FILE"],
            let gateURL = values["PG_GATE_URL"], let gateFile = values["PG_GATE_PASSWORD_FILE"]
        else { throw HarnessError("pg-cluster.sh start printed no cluster: \(out)") }
        directory = dir
        self.port = port
        self.ownerURL = ownerURL
        ownerPasswordFile = ownerFile
        self.gateURL = gateURL
        gatePasswordFile = gateFile
    }

    /// One cluster for the whole test process, started on first use; `$PG_CLUSTER_DIR` names one already running
    /// (`scripts/pg-cluster.sh start DIR`), kept afterwards.
    public static func shared() throws -> PostgresCluster {
        try sharedLock.withLock { box in
            if let c = box.cluster { return c }
            let c = try PostgresCluster(existing: ProcessInfo.processInfo.environment["PG_CLUSTER_DIR"])
            box.cluster = c
            return c
        }
    }

    private final class Box: @unchecked Sendable { var cluster: PostgresCluster? }
    private static let sharedLock = LockedBox(Box())

    /// The server goes down (fast shutdown), its data kept: the school network is down.
    public func pause() throws { _ = try Self.run(["pause", directory]) }
    /// The server comes back on the same port.
    public func resume() throws { _ = try Self.run(["resume", directory]) }
    /// Stops the server and removes its folder.
    public func stop() throws { _ = try Self.run(["stop", directory]) }

    /// The same URL naming another database of this cluster.
    public func url(_ base: String, database: String) -> String {
        guard let slash = base.lastIndex(of: "/") else { return base }
        return base[...slash] + database
    }

    @discardableResult
    static func run(_ arguments: [String]) throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/bash")
        p.arguments = [script] + arguments
        let out = Pipe()
        let err = Pipe()
        p.standardOutput = out
        p.standardError = err
        p.standardInput = FileHandle.nullDevice
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        let errData = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else {
            throw HarnessError(
                "pg-cluster.sh \(arguments.first ?? ""): exit \(p.terminationStatus): \(String(decoding: errData, as: UTF8.self))"
            )
        }
        return String(decoding: data, as: UTF8.self)
    }
}

/// A value behind a lock (the test support has no other shared state).
final class LockedBox<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private let value: Value
    init(_ value: Value) { self.value = value }
    func withLock<R>(_ body: (Value) throws -> R) rethrows -> R {
        lock.lock()
        defer { lock.unlock() }
        return try body(value)
    }
}
