import ArgumentParser
import Foundation
import Hummingbird
import Logging
import NIOCore
import SectorConnector

/// The reference sector gateway: the other end of the connector, as docs/CONNECTOR.md states it.
/// It stores what it receives, checks the bearer token, rejects malformed records, and can be told to fail.
@main
struct SectorGatewayCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sector-gateway",
        abstract: "Reference gateway of the sector database (CSDL ngành) for tests and demos.",
        discussion: """
            Listens on loopback only. POST /v1/attendance-records takes {"records":[...]} with \
            'Authorization: Bearer <token>' and answers one result per record (accepted, duplicate, stale, rejected). \
            GET /v1/attendance-records[?latest=true] lists what it holds; GET/PUT /admin/faults reads or sets the \
            faults below; GET /admin/stats counts requests; GET /health needs no token. \
            The first line on standard output is 'listening on http://HOST:PORT'.
            """)

    @Option(help: "Loopback address to bind (127.0.0.1, ::1 or localhost).")
    var host = "127.0.0.1"

    @Option(help: "TCP port; 0 picks a free one (see the first output line).")
    var port = 0

    @Option(help: ArgumentHelp("JSON-lines file holding the received records (created if missing).", valueName: "file"))
    var store: String

    @Option(help: ArgumentHelp("File holding the bearer token clients must send.", valueName: "file"))
    var tokenFile: String

    @Option(help: "Fraction of POSTs answered 500 before anything is stored.")
    var failRate = 0.0

    @Option(help: "Fraction of POSTs stored but answered 500 (a lost acknowledgement).")
    var failAfterStoreRate = 0.0

    @Option(help: "Fraction of POSTs whose connection is closed without an answer.")
    var dropRate = 0.0

    @Option(help: "Delay before handling each POST, in milliseconds (above the client's timeout: a timeout).")
    var delayMs = 0

    @Option(help: "Delay after storing a batch, before answering, in milliseconds.")
    var delayAfterStoreMs = 0

    @Flag(help: "Exit when standard input closes (a test harness that dies takes the gateway with it).")
    var exitOnStdinEOF = false

    @Option(help: "Seed of the fault dice (same seed, same faults for the same requests).")
    var seed: UInt64 = 1

    func validate() throws {
        guard ["127.0.0.1", "::1", "localhost"].contains(host) else {
            throw ValidationError("the reference gateway binds loopback only (127.0.0.1, ::1 or localhost)")
        }
        guard (0...65535).contains(port) else { throw ValidationError("port out of range") }
    }

    func run() async throws {
        let token: BearerToken
        do { token = try BearerToken.load(fromFile: tokenFile) } catch { throw ValidationError("\(error)") }
        var plan = FaultPlan()
        plan.failRate = failRate
        plan.failAfterStoreRate = failAfterStoreRate
        plan.dropRate = dropRate
        plan.delayMs = delayMs
        plan.delayAfterStoreMs = delayAfterStoreMs
        do { try plan.validate() } catch GatewayError.badRequest(let m) { throw ValidationError(m) }
        let state = try GatewayState(storePath: store, faults: plan, seed: seed)
        // A store file that cannot grow (a full disk, a file-size limit) must fail the write, answered 500,
        // not kill the gateway with SIGXFSZ.
        signal(SIGXFSZ, SIG_IGN)
        if exitOnStdinEOF {
            Thread.detachNewThread {
                while !FileHandle.standardInput.availableData.isEmpty {}
                Foundation.exit(0)
            }
        }

        let router = Router(context: GatewayContext.self)
        GatewayRoutes(state: state, token: token).add(to: router)
        var logger = Logger(label: "sector-gateway")
        logger.logLevel = .warning
        let app = Application(
            router: router,
            configuration: .init(address: .hostname(host, port: port), serverName: "sector-gateway"),
            onServerRunning: { channel in
                let bound = channel.localAddress?.port ?? port
                let shown = host.contains(":") ? "[\(host)]" : host
                // Written straight to fd 1 (no stdio buffering): tests wait for this line.
                FileHandle.standardOutput.write(Data("listening on http://\(shown):\(bound)\n".utf8))
            },
            logger: logger)
        try await app.runService()
    }
}

/// The request context, with the channel so that a fault can drop the connection.
struct GatewayContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    let channel: any Channel

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        channel = source.channel
    }
}

struct GatewayRoutes: Sendable {
    let state: GatewayState
    let token: BearerToken

    func add(to router: Router<GatewayContext>) {
        router.get("health") { _, _ in json(.ok, ["status": "ok"]) }
        router.post("v1/attendance-records") { request, context in try await post(request, context) }
        router.get("v1/attendance-records") { request, _ in
            guard authorized(request) else { return await unauthorized() }
            let latest = request.uri.queryParameters.get("latest") == "true"
            return json(.ok, ["records": await state.records(latestOnly: latest)])
        }
        router.get("admin/stats") { request, _ in
            guard authorized(request) else { return await unauthorized() }
            return json(.ok, await state.stats)
        }
        router.get("admin/faults") { request, _ in
            guard authorized(request) else { return await unauthorized() }
            return json(.ok, await state.faults)
        }
        router.put("admin/faults") { request, _ in
            guard authorized(request) else { return await unauthorized() }
            do {
                let body = try await request.body.collect(upTo: 64 << 10)
                let plan = try JSONDecoder().decode(FaultPlan.self, from: Data(body.readableBytesView))
                try plan.validate()
                await state.setFaults(plan)
                return json(.ok, plan)
            } catch GatewayError.badRequest(let m) {
                return json(.badRequest, ErrorBody(error: m))
            } catch {
                return json(.badRequest, ErrorBody(error: "expected a fault plan: \(IncomingSlot.describe(error))"))
            }
        }
    }

    func authorized(_ request: Request) -> Bool {
        guard let value = request.headers[.authorization], value.hasPrefix("Bearer ") else { return false }
        return token.matches(String(value.dropFirst("Bearer ".count)))
    }

    func unauthorized() async -> Response {
        await state.unauthorized()
        var r = json(.unauthorized, ErrorBody(error: "missing or wrong bearer token"))
        r.headers[.wwwAuthenticate] = "Bearer"
        return r
    }

    func post(_ request: Request, _ context: GatewayContext) async throws -> Response {
        guard authorized(request) else { return await unauthorized() }
        let (verdict, delayMs) = await state.admit()
        if delayMs > 0 { try await Task.sleep(nanoseconds: UInt64(delayMs) * 1_000_000) }
        switch verdict {
        case .proceed: break
        case .fail: return json(.internalServerError, ErrorBody(error: "injected failure"))
        case .status(let code):
            return json(HTTPResponse.Status(code: code), ErrorBody(error: "injected status \(code)"))
        case .drop:
            try? await context.channel.close()
            return Response(status: .internalServerError)
        }

        let batch: IncomingBatch
        do {
            let body = try await request.body.collect(upTo: WireContract.maxBodyBytes)
            batch = try JSONDecoder().decode(IncomingBatch.self, from: Data(body.readableBytesView))
        } catch let error as NIOTooManyBytesError {
            return json(.contentTooLarge, ErrorBody(error: "body larger than \(WireContract.maxBodyBytes) bytes (\(error))"))
        } catch {
            return json(.badRequest, ErrorBody(error: "expected {\"records\":[...]}: \(IncomingSlot.describe(error))"))
        }
        guard !batch.records.isEmpty else { return json(.badRequest, ErrorBody(error: "records is empty")) }
        guard batch.records.count <= WireContract.maxBatchSize else {
            return json(.contentTooLarge, ErrorBody(error: "more than \(WireContract.maxBatchSize) records in one batch"))
        }
        let results = try await state.apply(batch.records, receivedAt: Date())
        let (lose, delayAfter) = await state.afterStore()
        if delayAfter > 0 { try await Task.sleep(nanoseconds: UInt64(delayAfter) * 1_000_000) }
        if lose {
            return json(.internalServerError, ErrorBody(error: "injected failure after storing"))
        }
        let anyRejected = results.contains { $0.status == .rejected }
        return json(anyRejected ? .unprocessableContent : .ok, BatchResult(results: results))
    }
}

/// A JSON response with sorted keys.
func json(_ status: HTTPResponse.Status, _ value: some Encodable) -> Response {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    let data = (try? encoder.encode(value)) ?? Data("{\"error\":\"encoding failed\"}".utf8)
    return Response(
        status: status, headers: [.contentType: "application/json"],
        body: .init(byteBuffer: ByteBuffer(bytes: data)))
}
