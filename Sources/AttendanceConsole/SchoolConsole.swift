import Attendance
import AttendanceCore
import FaceEngine
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTLS
import Logging
import Mustache
import NIOCore
import ServiceLifecycle

/// The request context of the console: Hummingbird's core storage plus the peer's address (sign-in throttling).
public struct ConsoleContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    public let remoteAddress: String

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress?.ipAddress ?? "local"
    }

    /// The routes collect their bodies with their own limits (photos, rosters, forms).
    public var maxUploadSize: Int { 64 * 1024 * 1024 }
}

/// The school's web console: server-rendered pages for the admin, the homeroom teachers and the principal,
/// over the same store and the same rules as the CLI. `application()` is a swift-service-lifecycle `Service`:
/// `attendance serve` adds it to the gate daemon's group, `attendance console` runs it alone.
public final class SchoolConsole: Sendable {
    public let store: AttendanceStore
    /// With `[database] backend = "postgresql"`: the school's server, where the console's changes are written first
    /// (the box's store is a copy of it, refreshed from it); nil with SQLite.
    public let school: (any ServerFirstWrites)?
    public var config: AttendanceConfig { store.config }
    let reports: AttendanceReports
    let health: (@Sendable () async -> GateHealth)?
    let library: MustacheLibrary
    let throttle = LoginThrottle()
    let engine: EnrolmentEngine
    let logger: Logger
    /// HTTPS (cookies marked `Secure`), or nil for plain HTTP on loopback.
    public let tls: ConsoleTLS?

    /// Cookie names.
    static let sessionCookie = "sid"
    static let loginCookie = "login"
    static let languageCookie = "lang"

    /// - Parameters:
    ///   - health: the gate daemon's health, for the Today page (nil when the console runs alone).
    ///   - tls: serve HTTPS with this identity (`ConsoleTLS.load`); nil: plain HTTP, which only a loopback
    ///     address may serve.
    ///   - school: the school's server in postgresql mode (the changes go there first), nil with SQLite.
    public init(
        store: AttendanceStore, models: ModelPaths = .discover(), health: (@Sendable () async -> GateHealth)? = nil,
        tls: ConsoleTLS? = nil, school: (any ServerFirstWrites)? = nil, logger: Logger = Logger(label: "attendance.console")
    ) throws {
        guard tls != nil || store.config.console.isLoopback else {
            throw StoreError.invalid(
                "console.bind = \(store.config.console.bind): plain HTTP is only served on loopback; this address needs TLS")
        }
        self.tls = tls
        self.store = store
        self.school = school
        self.reports = AttendanceReports(store: store)
        self.health = health
        self.engine = EnrolmentEngine(models: models)
        self.logger = logger
        var library = MustacheLibrary()
        for (name, text) in ConsoleTemplates.all { try library.register(text, named: name) }
        self.library = library
    }

    /// Opens the console for `store`'s config: loads or makes the TLS identity when the config asks for
    /// HTTPS (the self-signed pair lives next to the database) and logs its fingerprint.
    public static func configured(
        store: AttendanceStore, models: ModelPaths = .discover(), health: (@Sendable () async -> GateHealth)? = nil,
        school: (any ServerFirstWrites)? = nil, logger: Logger = Logger(label: "attendance.console")
    ) throws -> SchoolConsole {
        var tls: ConsoleTLS?
        if store.config.console.usesTLS {
            let state = (store.path as NSString).deletingLastPathComponent
            let identity = try ConsoleTLS.load(config: store.config.console, stateDirectory: state.isEmpty ? "." : state)
            logger.notice(
                "console TLS certificate \(identity.created ? "created" : "loaded"): check this fingerprint in the browser",
                metadata: ["sha256": "\(identity.fingerprint)", "certificate": "\(identity.certificatePath)"])
            tls = identity
        }
        return try SchoolConsole(store: store, models: models, health: health, tls: tls, school: school, logger: logger)
    }

    /// The address the console is served at.
    public var url: String {
        let host = config.console.bind.contains(":") ? "[\(config.console.bind)]" : config.console.bind
        return "\(tls == nil ? "http" : "https")://\(host):\(config.console.port)/"
    }

    /// The HTTP(S) application on `console.bind:console.port`, as a `Service`.
    public func application() throws -> some Service {
        let configuration = ApplicationConfiguration(
            address: .hostname(config.console.bind, port: config.console.port), serverName: nil)
        if let tls {
            return Application(
                router: router(), server: try .tls(.http1(), tlsConfiguration: tls.configuration), configuration: configuration,
                logger: logger)
        }
        return Application(router: router(), server: .http1(), configuration: configuration, logger: logger)
    }

    /// Runs the console alone (`attendance console`, the demo) until SIGTERM or SIGINT. Open live pages
    /// end at the graceful shutdown; whatever is still running after 3 s is cancelled.
    public func run() async throws {
        var configuration = ServiceGroupConfiguration(
            services: [try application()], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        configuration.maximumGracefulShutdownDuration = .seconds(3)
        configuration.maximumCancellationDuration = .seconds(5)
        try await ServiceGroup(configuration: configuration).run()
    }

    /// Every route (the tests drive this router in-process).
    public func router() -> Router<ConsoleContext> {
        let router = Router(context: ConsoleContext.self)
        router.get("/static/console.css") { _, _ in Self.asset(ConsoleTemplates.css, type: "text/css; charset=utf-8") }
        router.get("/static/console.js") { _, _ in
            Self.asset(ConsoleTemplates.js, type: "text/javascript; charset=utf-8")
        }
        router.get("/login") { req, ctx in await self.loginPage(req, ctx) }
        router.post("/login") { req, ctx in await self.login(req, ctx) }
        router.post("/logout") { req, ctx in await self.respond(req, ctx, form: true) { v in try self.logout(v) } }
        router.get("/language") { req, _ in self.language(req) }
        router.get("/") { req, ctx in await self.respond(req, ctx) { v in try await self.today(v) } }
        router.get("/today/fragment") { req, ctx in
            await self.respond(req, ctx) { v in
                try await self.pull(from: self.today, to: self.today)
                return try self.todayFragment(v)
            }
        }
        router.get("/today/events") { req, ctx in await self.respond(req, ctx) { v in try self.todayEvents(v) } }
        router.get("/classes/:class") { req, ctx in
            await self.respond(req, ctx) { v in
                try await self.pull(from: self.today, to: self.today)
                return try self.classPage(v, ctx.parameters.get("class") ?? "")
            }
        }
        router.get("/api/classes/:class/today") { req, ctx in
            await self.respond(req, ctx) { v in
                try await self.pull(from: self.today, to: self.today)
                return try self.classJSON(v, ctx.parameters.get("class") ?? "")
            }
        }
        router.get("/students/:code") { req, ctx in
            await self.respond(req, ctx) { v in
                try await self.pull(from: self.today, to: self.today)
                return try self.studentPage(v, ctx.parameters.get("code") ?? "")
            }
        }
        for action in ["consent", "consent/revoke", "unenrol", "excuse", "correct", "erase"] {
            router.post("/students/:code/\(action)") { req, ctx in
                await self.respond(req, ctx, form: true) { v in
                    try await self.studentAction(v, ctx.parameters.get("code") ?? "", action: action)
                }
            }
        }
        router.post("/students/:code/enrol") { req, ctx in
            await self.respond(req, ctx, upload: self.config.console.maxPhotoBytes * 5) { v in
                try await self.enrol(v, ctx.parameters.get("code") ?? "")
            }
        }
        router.get("/roster") { req, ctx in await self.respond(req, ctx) { v in try self.rosterPage(v) } }
        router.post("/roster") { req, ctx in
            await self.respond(req, ctx, upload: self.config.console.maxRosterBytes + 64 * 1024) { v in
                try await self.rosterCheck(v)
            }
        }
        router.post("/roster/confirm") { req, ctx in
            await self.respond(req, ctx, form: true, limit: self.config.console.maxRosterBytes * 4) { v in
                try await self.rosterConfirm(v)
            }
        }
        router.get("/exports") { req, ctx in await self.respond(req, ctx) { v in try self.exportsPage(v) } }
        router.get("/exports/daily") { req, ctx in await self.respond(req, ctx) { v in try await self.exportDaily(v) } }
        router.get("/exports/absences") { req, ctx in
            await self.respond(req, ctx) { v in try await self.exportAbsences(v) }
        }
        router.get("/audit") { req, ctx in await self.respond(req, ctx) { v in try self.auditPage(v) } }
        router.get("/review") { req, ctx in await self.respond(req, ctx) { v in try await self.reviewPage(v) } }
        for decision in ["accept", "reject"] {
            router.post("/review/:id/\(decision)") { req, ctx in
                await self.respond(req, ctx, form: true) { v in
                    try await self.decideReview(v, ctx.parameters.get("id") ?? "", accept: decision == "accept")
                }
            }
        }
        router.get("/users") { req, ctx in await self.respond(req, ctx) { v in try self.usersPage(v) } }
        router.post("/users") { req, ctx in await self.respond(req, ctx, form: true) { v in try self.addUser(v) } }
        for toggle in ["disable", "enable"] {
            router.post("/users/:name/\(toggle)") { req, ctx in
                await self.respond(req, ctx, form: true) { v in
                    try self.toggleUser(v, ctx.parameters.get("name") ?? "", disable: toggle == "disable")
                }
            }
        }
        router.post("/users/:name/password") { req, ctx in
            await self.respond(req, ctx, form: true) { v in try self.setPassword(v, ctx.parameters.get("name") ?? "") }
        }
        return router
    }
}

// MARK: - One request: its user, language, form, and the answer

/// What a route knows about the request it answers.
struct Visit: Sendable {
    let request: Request
    let session: ConsoleSession
    let token: String
    let language: ConsoleLanguage
    /// The urlencoded form (POST routes with `form: true`), or the query.
    let form: [String: String]
    /// The multipart parts (upload routes).
    let parts: [FormPart]
    var user: ConsoleUser { session.user }

    func field(_ name: String) -> String? {
        let v = form[name]?.trimmingCharacters(in: .whitespacesAndNewlines)
        return v?.isEmpty == false ? v : nil
    }
}

/// A page that cannot be shown or an action that cannot be done: shown as a page with this status,
/// and nothing was changed.
struct ConsoleRefusal: Error {
    var status: HTTPResponse.Status
    var key: String
    var args: [String] = []

    static let forbidden = ConsoleRefusal(status: .forbidden, key: "error.forbidden")
    static let notFound = ConsoleRefusal(status: .notFound, key: "error.notFound")
    static let csrf = ConsoleRefusal(status: .forbidden, key: "error.csrf")
    static func bad(_ why: String) -> ConsoleRefusal { ConsoleRefusal(status: .badRequest, key: "error.badInput", args: [why]) }
    static func tooLarge(_ bytes: Int) -> ConsoleRefusal {
        ConsoleRefusal(status: .contentTooLarge, key: "error.tooLarge", args: [String(bytes / (1024 * 1024))])
    }
}

extension SchoolConsole {
    var sessionIdle: TimeInterval { TimeInterval(config.console.sessionIdleMinutes * 60) }

    func language(of request: Request) -> ConsoleLanguage {
        request.cookies[Self.languageCookie].flatMap { ConsoleLanguage(rawValue: $0.value) }
            ?? ConsoleLanguage(rawValue: config.console.language) ?? .vi
    }

    /// Resolves the session, checks the CSRF token of a state-changing request, reads the body within
    /// `limit`, runs `body` as the console user (the audit log names them), and turns refusals and store
    /// errors into pages. Every answer carries the console's security headers.
    func respond(
        _ request: Request, _ context: ConsoleContext, form: Bool = false, upload: Int? = nil, limit: Int = 256 * 1024,
        _ body: @Sendable (Visit) async throws -> Response
    ) async -> Response {
        let lang = language(of: request)
        // The live Today updates are the page's own doing, not the user's: they do not move the idle clock,
        // and they get a 401 instead of the sign-in page (which would land inside the table).
        let background = request.uri.path.hasPrefix("/today/") || request.uri.path.hasPrefix("/api/")
        guard let token = request.cookies[Self.sessionCookie]?.value,
            let session = try? store.accounts.session(token: token, idle: sessionIdle, touch: !background)
        else {
            if request.method == .get && !background {
                var r = Response.redirect(to: "/login?expired=\(request.cookies[Self.sessionCookie] == nil ? 0 : 1)")
                Self.secure(&r)
                return r
            }
            return page(
                lang, status: .unauthorized, title: lang.text("login.expired"), template: "message", session: nil,
                data: [
                    "heading": lang.text("login.title"), "text": lang.text("login.expired"), "kind": "error", "back": "/login",
                ])
        }
        var request = request
        do {
            // The query (GET pages' filters); a POST's fields, its CSRF token among them, come from its body only.
            var fields = request.method == .get ? Self.urlDecodedForm(request.uri.query ?? "") : [:]
            var parts: [FormPart] = []
            if form {
                let buffer = try await Self.collect(&request, limit: limit)
                for (k, v) in Self.urlDecodedForm(String(buffer: buffer)) { fields[k] = v }
            } else if let upload {
                let buffer = try await Self.collect(&request, limit: upload)
                guard let boundary = Multipart.boundary(contentType: request.headers[.contentType]) else {
                    throw ConsoleRefusal.bad("multipart/form-data")
                }
                do { parts = try Multipart.parse(Array(buffer: buffer), boundary: boundary) } catch {
                    throw ConsoleRefusal.bad("multipart/form-data")
                }
                for p in parts where p.filename == nil { fields[p.name] = p.text }
            }
            if request.method != .get {
                guard let sent = fields["csrf"], SecretToken.same(sent, session.csrfToken) else { throw ConsoleRefusal.csrf }
            }
            let visit = Visit(
                request: request, session: session, token: token, language: lang, form: fields, parts: parts)
            var response = try await AttendanceStore.$actingUser.withValue(session.user.auditName) { try await body(visit) }
            Self.secure(&response)
            return response
        } catch let refusal as ConsoleRefusal {
            return refused(refusal, lang, session)
        } catch let error as StoreError {
            switch error {
            case .unknownStudent: return refused(.notFound, lang, session)
            case .noConsent: return refused(ConsoleRefusal(status: .badRequest, key: "error.noConsent"), lang, session)
            case .childMustAgree: return refused(ConsoleRefusal(status: .badRequest, key: "error.childMustAgree"), lang, session)
            case .inactiveStudent: return refused(ConsoleRefusal(status: .badRequest, key: "error.inactive"), lang, session)
            case .invalid: return refused(.bad(error.description), lang, session)
            case .io, .wrongKey, .missingKey, .badKeyFile, .unsafePermissions:
                logger.error("console: the store failed", metadata: ["path": "\(request.uri.path)", "error": "\(error)"])
                return refused(ConsoleRefusal(status: .internalServerError, key: "error.server"), lang, session)
            }
        } catch {
            logger.error("console request failed", metadata: ["path": "\(request.uri.path)", "error": "\(error)"])
            return refused(ConsoleRefusal(status: .internalServerError, key: "error.server"), lang, session)
        }
    }

    func refused(_ r: ConsoleRefusal, _ lang: ConsoleLanguage, _ session: ConsoleSession?) -> Response {
        let text = lang.text(r.key, r.args.joined(separator: "; "))
        return page(
            lang, status: r.status, title: lang.text("error.title"), template: "message", session: session,
            data: ["heading": lang.text("error.title"), "text": text, "kind": "error", "back": "/"])
    }

    /// Collects a body of at most `limit` bytes, or refuses it (413) before anything is done with it.
    static func collect(_ request: inout Request, limit: Int) async throws -> ByteBuffer {
        if let length = request.headers[.contentLength].flatMap({ Int($0) }), length > limit {
            throw ConsoleRefusal.tooLarge(limit)
        }
        do { return try await request.collectBody(upTo: limit) } catch { throw ConsoleRefusal.tooLarge(limit) }
    }

    static func urlDecodedForm(_ text: String) -> [String: String] {
        var out: [String: String] = [:]
        for pair in text.split(separator: "&") {
            let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            func decode(_ s: Substring) -> String {
                String(s).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? String(s)
            }
            out[decode(kv[0])] = kv.count > 1 ? decode(kv[1]) : ""
        }
        return out
    }

    /// No caching of personal pages, no inline or third-party script, no framing, no referrer outside the box.
    static func secure(_ response: inout Response) {
        response.headers[.contentSecurityPolicy] =
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
            + "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
        if response.headers[.cacheControl] == nil { response.headers[.cacheControl] = "no-store" }
        response.headers[.xContentTypeOptions] = "nosniff"
        response.headers[HTTPField.Name("Referrer-Policy")!] = "same-origin"
        response.headers[HTTPField.Name("X-Frame-Options")!] = "DENY"
    }

    static func asset(_ text: String, type: String) -> Response {
        var r = Response(
            status: .ok, headers: [.contentType: type, .cacheControl: "max-age=3600"],
            body: .init(byteBuffer: ByteBuffer(string: text)))
        secure(&r)
        return r
    }

    /// Renders `template` inside the layout, with the catalogue as `t` and the user's navigation.
    func page(
        _ lang: ConsoleLanguage, status: HTTPResponse.Status = .ok, title: String, template: String,
        session: ConsoleSession?, live: Bool = false, data: [String: Any]
    ) -> Response {
        var context = data
        let t = Self.nested(lang.texts)
        context["t"] = t
        context["csrf"] = session?.csrfToken ?? ""
        let body = library.render(context, withTemplate: template) ?? ""
        var layout: [String: Any] = ["t": t, "lang": lang.rawValue, "title": title, "body": body, "live": live]
        layout["otherLang"] = lang == .vi ? "en" : "vi"
        if let s = session {
            layout["user"] = true
            layout["name"] = s.user.name
            layout["csrf"] = s.csrfToken
            layout["canImport"] = s.user.may(.importRoster)
            layout["canAudit"] = s.user.may(.readAudit)
            layout["canUsers"] = s.user.may(.manageUsers)
            // The badge counts this box's own held check-ins (a cheap local read on every page); the review page
            // itself lists the school's (`heldCheckIns`, from the server in postgresql mode).
            let held = try? store.reviews.list().filter { s.user.may(.viewClass($0.classCode)) }.count
            layout["reviewCount"] = held.flatMap { $0 > 0 ? $0 : nil } ?? false
        }
        var r = Response(
            status: status, headers: [.contentType: "text/html; charset=utf-8"],
            body: .init(byteBuffer: ByteBuffer(string: library.render(layout, withTemplate: "layout") ?? "")))
        Self.secure(&r)
        return r
    }

    /// The flat catalogue ("nav.today") as nested dictionaries, as Mustache's dotted names read them.
    static func nested(_ flat: [String: String]) -> [String: Any] {
        var out: [String: Any] = [:]
        for (key, value) in flat {
            let path = key.split(separator: ".").map(String.init)
            func insert(_ dict: inout [String: Any], _ i: Int) {
                if i == path.count - 1 { dict[path[i]] = value; return }
                var child = dict[path[i]] as? [String: Any] ?? [:]
                insert(&child, i + 1)
                dict[path[i]] = child
            }
            insert(&out, 0)
        }
        return out
    }

    func done(_ v: Visit, _ text: String, back: String) -> Response {
        page(
            v.language, title: v.language.text("done.title"), template: "message", session: v.session,
            data: ["heading": v.language.text("done.title"), "text": text, "kind": "done", "back": back])
    }

    func require(_ v: Visit, _ action: ConsoleAction) throws {
        guard v.user.may(action) else {
            logger.notice("console: refused", metadata: ["user": "\(v.user.name)", "path": "\(v.request.uri.path)"])
            throw ConsoleRefusal.forbidden
        }
    }
}

// MARK: - Formatting in the school's time zone

extension SchoolConsole {
    var timeZone: TimeZone { reports.timeZone }
    var today: LocalDate { reports.today }

    /// dd/mm/yyyy, as Vietnamese schools write dates.
    static func display(_ d: LocalDate) -> String {
        String(format: "%02d/%02d/%04d", d.day, d.month, d.year)
    }

    func time(_ date: Date?) -> String {
        guard let date else { return "" }
        let f = DateFormatter()
        f.timeZone = timeZone
        f.dateFormat = "HH:mm"
        return f.string(from: date)
    }

    func dateTime(_ stamp: String) -> String {
        guard let date = Timestamp.date(stamp) else { return stamp }
        let f = DateFormatter()
        f.timeZone = timeZone
        f.dateFormat = "dd/MM/yyyy HH:mm:ss"
        return f.string(from: date)
    }
}

// MARK: - The face engine, loaded on the first enrolment

/// The console's face engine: loaded once, on the first upload, and used by one enrolment at a time.
actor EnrolmentEngine {
    let models: ModelPaths
    private var engine: FaceEngine?

    init(models: ModelPaths) { self.models = models }

    /// The photos' faces checked and kept: in the store, or on the school's server first (`school`, postgresql mode).
    func enrol(
        _ enroller: Enroller, student: String, images: [(name: String, bytes: [UInt8])], force: Bool,
        school: (any ServerFirstWrites)?
    ) async throws -> [PhotoOutcome] {
        if engine == nil { engine = try FaceEngine(models: models, recognition: enroller.recognition) }
        guard let school, let engine else {
            return try enroller.enrol(student: student, images: images, engine: engine!, force: force)
        }
        try enroller.checkEligible(student)
        return try await school.enrol(
            enroller, student: student, detected: Enroller.detect(images: images, engine: engine), force: force)
    }
}
