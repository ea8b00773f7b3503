import Attendance
import AttendanceCore
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

// The console's pages. Each route asks `ConsoleUser.may` first; every change goes through the store's own
// concern (the same transaction, rules and audit as the CLI), made as the console user.

// MARK: - Signing in and out

extension SchoolConsole {
    func loginPage(_ request: Request, _ context: ConsoleContext, problem: String? = nil, status: HTTPResponse.Status = .ok)
        async -> Response
    {
        let lang = language(of: request)
        if problem == nil, let token = request.cookies[Self.sessionCookie]?.value,
            (try? store.accounts.session(token: token, idle: sessionIdle)) != nil
        {
            return .redirect(to: "/")
        }
        // A sign-in form carries a token that must match its cookie (no sign-in from another site's form).
        let loginToken = SecretToken.make()
        var data: [String: Any] = ["loginToken": loginToken]
        if let problem {
            data["problem"] = problem
        } else if request.uri.queryParameters["expired"] == "1" {
            data["problem"] = lang.text("login.expired")
        }
        var r = page(lang, status: status, title: lang.text("login.title"), template: "login", session: nil, data: data)
        r.setCookie(
            Cookie(
                name: Self.loginCookie, value: loginToken, path: "/login", secure: tls != nil, httpOnly: true, sameSite: .strict))
        return r
    }

    func login(_ request: Request, _ context: ConsoleContext) async -> Response {
        let lang = language(of: request)
        var request = request
        guard let buffer = try? await Self.collect(&request, limit: 16 * 1024) else {
            return await loginPage(request, context, problem: lang.text("login.failed"), status: .contentTooLarge)
        }
        let form = Self.urlDecodedForm(String(buffer: buffer))
        guard let sent = form["csrf"], let cookie = request.cookies[Self.loginCookie]?.value, SecretToken.same(sent, cookie)
        else {
            return refused(.csrf, lang, nil)
        }
        let name = (form["name"] ?? "").trimmingCharacters(in: .whitespaces)
        let password = form["password"] ?? ""
        let keys = ["user:" + name.lowercased(), "address:" + context.remoteAddress]
        switch await throttle.begin(keys) {
        case .wait(let seconds):
            return await loginPage(request, context, problem: lang.text("login.throttled", seconds), status: .tooManyRequests)
        case .busy:
            return await loginPage(request, context, problem: lang.text("error.busy", 1), status: .tooManyRequests)
        case .go:
            break
        }
        let result: (token: String, session: ConsoleSession)?
        do { result = try store.accounts.signIn(name: name, password: password) } catch {
            await throttle.finished()
            logger.error("console sign-in failed", metadata: ["error": "\(error)"])
            return refused(ConsoleRefusal(status: .internalServerError, key: "error.server"), lang, nil)
        }
        await throttle.finished()
        guard let (token, _) = result else {
            return await loginPage(request, context, problem: lang.text("login.failed"), status: .unauthorized)
        }
        await throttle.succeeded(account: keys[0], address: keys[1])
        // Sessions nobody used within the idle time are gone anyway; drop their rows now and then.
        _ = try? store.accounts.purgeSessions(idle: sessionIdle)
        var r = Response.redirect(to: "/", type: .found)
        r.setCookie(
            Cookie(name: Self.sessionCookie, value: token, path: "/", secure: tls != nil, httpOnly: true, sameSite: .strict))
        r.setCookie(Cookie(name: Self.loginCookie, value: "", maxAge: 0, path: "/login", httpOnly: true, sameSite: .strict))
        Self.secure(&r)
        return r
    }

    func logout(_ v: Visit) throws -> Response {
        try store.accounts.signOut(token: v.token)
        var r = Response.redirect(to: "/login", type: .found)
        r.setCookie(Cookie(name: Self.sessionCookie, value: "", maxAge: 0, path: "/", httpOnly: true, sameSite: .strict))
        return r
    }

    func language(_ request: Request) -> Response {
        let to = ConsoleLanguage(rawValue: request.uri.queryParameters["to"].map(String.init) ?? "") ?? .vi
        var r = Response.redirect(to: "/", type: .found)
        r.setCookie(
            Cookie(
                name: Self.languageCookie, value: to.rawValue, maxAge: 365 * 86400, path: "/", httpOnly: true, sameSite: .strict))
        Self.secure(&r)
        return r
    }
}

// MARK: - Today

extension SchoolConsole {
    /// The day's classes this user sees, as the Today template's data.
    func todayData(_ v: Visit) throws -> [String: Any] {
        let day = today
        let report = try reports.daily(day)
        let visible = Set(v.user.visibleClasses(of: report.classes.map(\.classCode)))
        let classes: [[String: Any]] = report.classes.filter { visible.contains($0.classCode) }.map { c in
            [
                "code": c.classCode, "href": Self.segment(c.classCode), "students": c.students, "present": c.present,
                "late": c.late, "absent": c.absent,
                "excused": c.excused,
                "rows": report.rows.filter { $0.classCode == c.classCode }.map { row -> [String: Any] in
                    [
                        "href": Self.segment(row.studentCode), "name": row.fullName,
                        "status": v.language.status(row.status), "statusKey": row.status.rawValue,
                        "firstSeen": time(row.firstSeen),
                    ]
                },
            ]
        }
        var data: [String: Any] = [
            "heading": v.language.text("today.title", Self.display(day)), "schoolDay": report.isSchoolDay,
            "classes": classes,
        ]
        // Unknown faces are a school-wide count: staff who see the whole school see it.
        data["unknown"] = v.user.may(.viewSchool) ? String(try store.events.unknownFaceCount(on: day, timeZone: timeZone)) : "–"
        return data
    }

    func today(_ v: Visit) async throws -> Response {
        try await pull(from: today, to: today)
        var data = try todayData(v)
        data["outbox"] = (try? store.events.outboxDepth()) ?? 0
        if let health {
            let h = await health()
            data["gate"] = [
                "cameras": h.cameras.map { c -> [String: Any] in
                    [
                        "id": c.id, "state": c.capture,
                        "lastFrame": c.secondsSinceLastFrame.map { String(format: "%.0f s", $0) } ?? "–",
                    ]
                },
                "outbox": h.outboxDepth ?? 0,
                "clock": h.clockSynchronised ? v.language.text("yes") : v.language.text("no"),
            ]
        }
        return page(
            v.language, title: v.language.text("nav.today"), template: "today", session: v.session, live: true, data: data)
    }

    func todayFragment(_ v: Visit) throws -> Response {
        var data = try todayData(v)
        data["t"] = Self.nested(v.language.texts)
        let html = library.render(data, withTemplate: "today-classes") ?? ""
        return Response(
            status: .ok, headers: [.contentType: "text/html; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: html)))
    }

    /// Server-Sent Events: `update` whenever the day's records change (checked every second), a comment
    /// every 15 s so proxies keep the stream open; ends when the session does.
    func todayEvents(_ v: Visit) throws -> Response {
        let store = self.store
        let school = self.school
        let reports = self.reports
        let idle = sessionIdle
        let token = v.token
        let body = ResponseBody { writer in
            var last = ""
            var ticks = 0
            // Ends on cancellation and on the server's graceful shutdown, which waits for open responses.
            while !Task.isCancelled && !Task.isShuttingDownGracefully {
                // postgresql mode: the other gates' records of today, every 5 s (a failure keeps the copy as it is).
                if let school, ticks % 5 == 0 { _ = try? await school.pullEvents(from: reports.today, to: reports.today) }
                let mark = (try? store.events.changeMark(on: reports.today)) ?? last
                if mark != last {
                    if !last.isEmpty || ticks == 0 {
                        try await writer.write(ByteBuffer(string: "event: update\ndata: \(mark)\n\n"))
                    }
                    last = mark
                }
                ticks += 1
                if ticks % 15 == 0 {
                    try await writer.write(ByteBuffer(string: ": still here\n\n"))
                    if (try? store.accounts.session(token: token, idle: idle, touch: false)) == nil { break }
                }
                try await Task.sleep(for: .seconds(1))
            }
            try await writer.finish(nil)
        }
        return Response(
            status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-store"], body: body)
    }
}

// MARK: - Classes and students

extension SchoolConsole {
    func classPage(_ v: Visit, _ code: String) throws -> Response {
        try require(v, .viewClass(code))
        let report = try reports.daily(today, classCode: code)
        guard !report.rows.isEmpty else { throw ConsoleRefusal.notFound }
        let counts = try store.enrolments.counts()
        let rows: [[String: Any]] = try report.rows.map { row in
            let consented = try store.consent.active(student: row.studentCode) != nil
            return [
                "code": row.studentCode, "href": Self.segment(row.studentCode), "name": row.fullName,
                "status": v.language.status(row.status),
                "consent": consented ? v.language.text("yes") : v.language.text("no"),
                "faces": counts[row.studentCode] ?? 0,
            ]
        }
        return page(
            v.language, title: v.language.text("class.title", code), template: "class", session: v.session,
            data: ["heading": v.language.text("class.title", code), "rows": rows])
    }

    func classJSON(_ v: Visit, _ code: String) throws -> Response {
        guard v.user.may(.viewClass(code)) else {
            return Response(
                status: .forbidden, headers: [.contentType: "application/json"],
                body: .init(byteBuffer: ByteBuffer(string: #"{"error":"forbidden"}"#)))
        }
        let report = try reports.daily(today, classCode: code)
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.sortedKeys]
        return Response(
            status: .ok, headers: [.contentType: "application/json"],
            body: .init(byteBuffer: ByteBuffer(bytes: try encoder.encode(report))))
    }

    /// The student, if this user may see them (404 for an unknown code, 403 for another class's student).
    func visibleStudent(_ v: Visit, _ code: String) throws -> Student {
        guard let s = try store.roster.student(code: code) else { throw ConsoleRefusal.notFound }
        try require(v, .viewClass(s.classCode))
        return s
    }

    func studentPage(_ v: Visit, _ code: String, flash: (title: String, lines: [String])? = nil) throws -> Response {
        let s = try visibleStudent(v, code)
        let to = v.field("to").flatMap(LocalDate.init) ?? today
        var from = v.field("from").flatMap(LocalDate.init) ?? to.adding(days: -13)
        if from > to { from = to }
        if to.adding(days: -200) > from { from = to.adding(days: -200) }
        let days: [[String: Any]] = try reports.history(of: s, from: from, to: min(to, today)).map { d, row in
            [
                "date": Self.display(d), "status": v.language.status(row.status), "statusKey": row.status.rawValue,
                "firstSeen": time(row.firstSeen),
            ]
        }
        let lang = v.language
        var data: [String: Any] = [
            "heading": lang.text("student.title", s.fullName), "code": s.code, "href": Self.segment(s.code),
            "classCode": s.classCode, "classHref": Self.segment(s.classCode),
            "from": from.description, "to": to.description, "today": today.description, "days": days,
            "enrolCount": lang.text(
                "enrol.count", try store.enrolments.list(student: code).count, config.recognition.maxEmbeddingsPerStudent),
            "photosLabel": lang.text("enrol.photos", config.console.maxPhotoBytes / (1024 * 1024)),
            "canBiometrics": v.user.may(.changeBiometrics(classCode: s.classCode)),
            "canAttendance": v.user.may(.changeAttendance(classCode: s.classCode)),
            "canErase": v.user.may(.eraseStudent),
            "statuses": AttendanceStatus.allCases.map { ["value": $0.rawValue, "label": lang.status($0)] },
        ]
        if let c = try store.consent.active(student: code) {
            data["consent"] = lang.text("consent.inForce", c.guardianName, c.relation, Self.display(c.consentDate))
        }
        if let flash { data["flash"] = ["title": flash.title, "lines": flash.lines] }
        return page(lang, title: s.fullName, template: "student", session: v.session, data: data)
    }

    func studentAction(_ v: Visit, _ code: String, action: String) async throws -> Response {
        let s = try visibleStudent(v, code)
        let lang = v.language
        func need(_ name: String) throws -> String {
            guard let value = v.field(name) else { throw ConsoleRefusal.bad(name) }
            return value
        }
        func day(_ name: String) throws -> LocalDate {
            let text = try need(name)
            guard let d = LocalDate(text) ?? RosterParser.parseDate(text) else {
                throw ConsoleRefusal.bad(name)
            }
            return d
        }
        switch action {
        case "consent":
            try require(v, .changeBiometrics(classCode: s.classCode))
            guard let date = RosterParser.parseDate(try need("date")) else { throw ConsoleRefusal.bad(lang.text("consent.date")) }
            let c = try await recordConsent(
                student: code, guardian: try need("guardian"), relation: try need("relation"), date: date,
                childAgreed: v.field("child") == "1")
            return try studentPage(
                v, code,
                flash: (lang.text("consent.inForce", c.guardianName, c.relation, Self.display(c.consentDate)), []))
        case "consent/revoke":
            try require(v, .changeBiometrics(classCode: s.classCode))
            let n = try await revokeConsent(student: code, reason: v.field("reason"))
            return try studentPage(v, code, flash: (lang.text("enrol.removed", n), []))
        case "unenrol":
            try require(v, .changeBiometrics(classCode: s.classCode))
            let n = try await unenrol(student: code)
            return try studentPage(v, code, flash: (lang.text("enrol.removed", n), []))
        case "excuse":
            try require(v, .changeAttendance(classCode: s.classCode))
            let d = try day("date")
            _ = try await excuse(student: code, day: d, reason: try need("reason"))
            return try studentPage(v, code, flash: (lang.text("excuse.done", Self.display(d)), []))
        case "correct":
            try require(v, .changeAttendance(classCode: s.classCode))
            let d = try day("date")
            let reason = try need("reason")
            let status = try need("status")
            if status == "cancel" {
                _ = try await cancelEvent(student: code, day: d, reason: reason)
            } else {
                guard let st = AttendanceStatus(rawValue: status) else { throw ConsoleRefusal.bad("status") }
                let change = try await correct(student: code, day: d, status: st, reason: reason)
                if change == nil { return try studentPage(v, code, flash: (lang.text("correct.nothing"), [])) }
            }
            return try studentPage(v, code, flash: (lang.text("correct.done", Self.display(d)), []))
        case "erase":
            try require(v, .eraseStudent)
            try await erase(student: code, reason: try need("reason"))
            return done(v, lang.text("erase.done"), back: "/classes/" + Self.segment(s.classCode))
        default:
            throw ConsoleRefusal.notFound
        }
    }

    func enrol(_ v: Visit, _ code: String) async throws -> Response {
        let s = try visibleStudent(v, code)
        try require(v, .changeBiometrics(classCode: s.classCode))
        let photos = v.parts.filter { $0.filename != nil && !$0.bytes.isEmpty }
        guard !photos.isEmpty else { throw ConsoleRefusal.bad(v.language.text("enrol.photos", "")) }
        if photos.contains(where: { $0.bytes.count > config.console.maxPhotoBytes }) {
            throw ConsoleRefusal.tooLarge(config.console.maxPhotoBytes)
        }
        let enroller = Enroller(store: store)
        // The photos stay in memory: decoded, measured, and dropped; only the sealed embeddings are kept.
        let outcomes = try await engine.enrol(
            enroller, student: code,
            images: photos.enumerated().map { (name: $0.element.filename ?? "photo \($0.offset + 1)", bytes: $0.element.bytes) },
            force: v.field("force") == "1", school: school)
        let lang = v.language
        let lines = outcomes.map { o in
            o.rejection.map { lang.text("enrol.rejected", o.source, lang.reason($0)) } ?? lang.text("enrol.accepted", o.source)
        }
        let total = try store.enrolments.list(student: code).count
        let summary = lang.text(
            "enrol.summary", outcomes.filter(\.accepted).count, outcomes.count, total, config.recognition.maxEmbeddingsPerStudent)
        return try studentPage(v, code, flash: (summary, lines))
    }
}

// MARK: - Roster import

extension SchoolConsole {
    func rosterPage(
        _ v: Visit, flash: (title: String, lines: [String])? = nil, pending: (bytes: String, file: String)? = nil,
        whole: Bool = false
    ) throws -> Response {
        try require(v, .importRoster)
        var data: [String: Any] = [
            "fileLabel": v.language.text("roster.file", config.console.maxRosterBytes / (1024 * 1024))
        ]
        if let flash { data["flash"] = ["title": flash.title, "lines": flash.lines] }
        if let pending {
            data["pending"] = pending.bytes
            data["pendingFile"] = pending.file
            data["whole"] = whole ? "1" : ""
        }
        return page(v.language, title: v.language.text("roster.title"), template: "roster", session: v.session, data: data)
    }

    /// Parses and dry-runs the uploaded file: every problem as line: reason, or what would change.
    func rosterCheck(_ v: Visit) async throws -> Response {
        try require(v, .importRoster)
        guard let file = v.parts.first(where: { $0.name == "file" && $0.filename != nil }) else {
            throw ConsoleRefusal.bad("file")
        }
        if file.bytes.count > config.console.maxRosterBytes { throw ConsoleRefusal.tooLarge(config.console.maxRosterBytes) }
        return try await runRoster(
            v, bytes: Data(file.bytes), file: Self.safeFileName(file.filename ?? "roster.csv"),
            whole: v.field("whole") == "1", dryRun: true)
    }

    func rosterConfirm(_ v: Visit) async throws -> Response {
        try require(v, .importRoster)
        // The checked file comes back as it was uploaded (base64 in the form), and is checked again.
        guard let encoded = v.form["pending"], let bytes = Data(base64Encoded: encoded), !bytes.isEmpty else {
            throw ConsoleRefusal.bad("pending")
        }
        if bytes.count > config.console.maxRosterBytes { throw ConsoleRefusal.tooLarge(config.console.maxRosterBytes) }
        let file = Self.safeFileName(v.field("file") ?? "roster.csv")
        return try await runRoster(v, bytes: bytes, file: file, whole: v.field("whole") == "1", dryRun: false)
    }

    /// The file's bytes go through the CLI's own decoding (UTF-8 with or without BOM, UTF-16 from Excel;
    /// anything else is refused with a reason) and parser: the same file gives the same answer.
    func runRoster(_ v: Visit, bytes: Data, file: String, whole: Bool, dryRun: Bool) async throws -> Response {
        let lang = v.language
        let roster: Roster
        do {
            roster = try RosterParser.parse(bytes, file: file, today: today)
        } catch let e as RosterErrors {
            return try rosterPage(v, flash: (lang.text("roster.errors"), e.errors.map { "\(file):\($0.line): \($0.reason)" }))
        }
        let r = try await importRoster(roster, options: RosterImportOptions(dryRun: dryRun, wholeSchool: whole))
        let summary = lang.text(
            dryRun ? "roster.dryRun" : "roster.done", roster.entries.count, r.added.count, r.changed.count, r.unchanged,
            r.deactivated.count)
        return try rosterPage(
            v, flash: (summary, []), pending: dryRun ? (bytes.base64EncodedString(), file) : nil, whole: whole)
    }

    /// A path segment (a class or student code) percent-encoded for a link.
    static func segment(_ code: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return code.addingPercentEncoding(withAllowedCharacters: allowed) ?? code
    }

    /// A file name safe in a page, a header and a log: letters, digits, . _ - only.
    static func safeFileName(_ name: String) -> String {
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
        let cleaned = String(name.split(separator: "/").last.map(String.init)?.filter { allowed.contains($0) }.prefix(80) ?? "")
        return cleaned.isEmpty ? "roster.csv" : cleaned
    }
}

// MARK: - Exports, audit, accounts

extension SchoolConsole {
    var exportClasses: [String] { ((try? store.roster.classes()) ?? []).map(\.code) }

    func exportsPage(_ v: Visit) throws -> Response {
        let classes = v.user.visibleClasses(of: exportClasses)
        guard v.user.may(.export(classCode: nil)) || !classes.isEmpty else { throw ConsoleRefusal.forbidden }
        let t = today
        let semester = LocalDate(year: t.month >= 8 ? t.year : t.year - 1, month: 9, day: 1)
        return page(
            v.language, title: v.language.text("exports.title"), template: "exports", session: v.session,
            data: [
                "classes": classes, "schoolOption": v.user.may(.export(classCode: nil)), "today": t.description,
                "semesterStart": (semester > t ? t : semester).description,
            ])
    }

    /// Writes the export with the CLI's own code (same bytes, same audit) into a private temporary
    /// folder, answers with the file, and deletes it.
    func download(_ v: Visit, name: String, format: ExportFormat, write: (String) throws -> Void) throws -> Response {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("attendance-export-\(SecretToken.make())")
        try FileManager.default.createDirectory(
            at: dir, withIntermediateDirectories: false, attributes: [.posixPermissions: 0o700])
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("\(name).\(format.rawValue)").path
        try write(path)
        guard let bytes = FileManager.default.contents(atPath: path) else { throw ConsoleRefusal.bad("export") }
        let type =
            switch format {
            case .csv: "text/csv; charset=utf-8"
            case .xlsx: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
            case .json: "application/json"
            }
        let file = Self.safeFileName("\(name).\(format.rawValue)")
        return Response(
            status: .ok,
            headers: [.contentType: type, .contentDisposition: "attachment; filename=\"\(file)\""],
            body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
    }

    func exportRequest(_ v: Visit) throws -> (classCode: String?, format: ExportFormat) {
        let classCode = v.field("class")
        try require(v, .export(classCode: classCode))
        if let classCode, !exportClasses.contains(classCode) { throw ConsoleRefusal.notFound }
        guard let format = ExportFormat(rawValue: v.field("format") ?? "xlsx"), format != .json else {
            throw ConsoleRefusal.bad("format")
        }
        return (classCode, format)
    }

    func exportDaily(_ v: Visit) async throws -> Response {
        let (classCode, format) = try exportRequest(v)
        guard let day = v.field("date").flatMap(LocalDate.init) else { throw ConsoleRefusal.bad(v.language.text("col.date")) }
        try await pull(from: day, to: day, required: true)
        return try download(v, name: "diem-danh-\(day)\(classCode.map { "-\($0)" } ?? "")", format: format) { path in
            _ = try reports.exportDaily(day, classCode: classCode, format: format, to: path)
        }
    }

    func exportAbsences(_ v: Visit) async throws -> Response {
        let (classCode, format) = try exportRequest(v)
        guard let from = v.field("from").flatMap(LocalDate.init) else {
            throw ConsoleRefusal.bad(v.language.text("student.from"))
        }
        let to = v.field("to").flatMap(LocalDate.init)
        try await pull(from: from, to: to ?? today, required: true)
        return try download(v, name: "nghi-\(from)\(classCode.map { "-\($0)" } ?? "")", format: format) { path in
            _ = try reports.exportAbsences(from: from, to: to, classCode: classCode, format: format, to: path)
        }
    }

    func auditPage(_ v: Visit) throws -> Response {
        try require(v, .readAudit)
        let day = v.field("date").flatMap(LocalDate.init)
        let user = v.field("user")
        let action = v.field("action")
        let since = day.map { $0.at(LocalTime(hour: 0, minute: 0), in: timeZone) }
        var entries = try store.auditLog.entries(since: since)
        if let day {
            let end = day.adding(days: 1).at(LocalTime(hour: 0, minute: 0), in: timeZone)
            entries = entries.filter { (Timestamp.date($0.at) ?? .distantFuture) < end }
        }
        if let user { entries = entries.filter { $0.osUser.localizedCaseInsensitiveContains(user) } }
        if let action { entries = entries.filter { $0.action.localizedCaseInsensitiveContains(action) } }
        let rows: [[String: Any]] = entries.suffix(500).reversed().map { e in
            [
                "at": dateTime(e.at), "who": e.osUser, "action": e.action,
                "subject": e.studentCode.map { "\($0) (\(e.subject ?? ""))" } ?? e.subject ?? "", "detail": e.detail ?? "",
            ]
        }
        return page(
            v.language, title: v.language.text("audit.title"), template: "audit", session: v.session,
            data: ["entries": rows, "date": day?.description ?? "", "user": user ?? "", "action": action ?? ""])
    }

    func usersPage(_ v: Visit, flash: String? = nil) throws -> Response {
        try require(v, .manageUsers)
        let lang = v.language
        let accounts: [[String: Any]] = try store.accounts.users().map { u in
            [
                "name": u.name, "href": Self.segment(u.name), "role": lang.role(u.role),
                "classes": u.classes.joined(separator: ", "),
                "state": lang.text(u.disabled ? "users.disabled" : "users.active"),
                "toggle": u.disabled ? "enable" : "disable",
                "toggleLabel": lang.text(u.disabled ? "users.enable" : "users.disable"),
            ]
        }
        var data: [String: Any] = [
            "accounts": accounts, "roles": ConsoleRole.allCases.map { ["value": $0.rawValue, "label": lang.role($0)] },
        ]
        if let flash { data["flash"] = ["title": flash] }
        return page(lang, title: lang.text("users.title"), template: "users", session: v.session, data: data)
    }

    func addUser(_ v: Visit) throws -> Response {
        try require(v, .manageUsers)
        guard let name = v.field("name"), let role = v.field("role").flatMap(ConsoleRole.init), let password = v.form["password"]
        else { throw ConsoleRefusal.bad(v.language.text("users.add")) }
        let classes = (v.field("classes") ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty }
        try store.accounts.add(name: name, role: role, classes: classes, password: password)
        return try usersPage(v, flash: v.language.text("users.added", name))
    }

    func setPassword(_ v: Visit, _ name: String) throws -> Response {
        try require(v, .manageUsers)
        guard let password = v.form["password"] else { throw ConsoleRefusal.bad(v.language.text("login.password")) }
        try store.accounts.setPassword(name, password)
        return try usersPage(v, flash: v.language.text("users.passwordSet", name))
    }

    func toggleUser(_ v: Visit, _ name: String, disable: Bool) throws -> Response {
        try require(v, .manageUsers)
        try store.accounts.setDisabled(name, disable)
        return try usersPage(v)
    }
}

// MARK: - Check-ins held by the liveness check

extension SchoolConsole {
    /// The pending held check-ins of the classes this user sees.
    func reviewsVisible(to user: ConsoleUser) async throws -> [HeldRecord] {
        try await heldCheckIns().filter { user.may(.viewClass($0.classCode)) }
    }

    func reviewPage(_ v: Visit, flash: String? = nil) async throws -> Response {
        let lang = v.language
        let rows: [[String: Any]] = try await reviewsVisible(to: v.user).map { h in
            [
                "id": String(h.id), "date": Self.display(h.event.schoolDay), "time": time(h.event.occurredAt),
                "classCode": h.classCode, "name": h.studentName, "href": Self.segment(h.event.studentCode),
                "session": h.event.session, "status": lang.status(h.event.status), "camera": h.event.camera,
                "real": h.liveness.map { String(format: "%.2f", $0) } ?? "–",
                "reason": lang.text(h.reason == .spoof ? "review.spoof" : "review.notCheckable"),
                "canDecide": v.user.may(.changeAttendance(classCode: h.classCode)),
            ]
        }
        var data: [String: Any] = ["rows": rows, "any": !rows.isEmpty]
        if let flash { data["flash"] = ["title": flash] }
        return page(lang, title: lang.text("review.title"), template: "review", session: v.session, data: data)
    }

    func decideReview(_ v: Visit, _ id: String, accept: Bool) async throws -> Response {
        guard let id = Int64(id), let held = try await heldCheckIn(id: id) else { throw ConsoleRefusal.notFound }
        try require(v, .changeAttendance(classCode: held.classCode))
        let lang = v.language
        if accept {
            let recorded = try await acceptHeld(id: id)
            return try await reviewPage(v, flash: lang.text(recorded ? "review.recorded" : "review.already", held.studentName))
        }
        try await rejectHeld(id: id, reason: v.field("reason").flatMap { $0.isEmpty ? nil : $0 })
        return try await reviewPage(v, flash: lang.text("review.rejected", held.studentName))
    }
}
