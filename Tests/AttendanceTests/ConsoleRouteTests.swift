import AttendanceTesting
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import XCTest

@testable import Attendance
@testable import AttendanceConsole
@testable import AttendanceCore

/// The console's routes in-process (Hummingbird's router test framework): every role against every page,
/// CSRF, sign-in throttling, session expiry, uploads, exports, and the security headers.
final class ConsoleRouteTests: XCTestCase {
    /// Cheap scrypt for tests (the cost is part of each stored hash; production uses `.standard`).
    static let cheap = PasswordHash(logN: 10)
    static let password = "mat-khau-dai-du"

    var tmp: TempStore!
    var store: AttendanceStore!
    var clock: TestClock!

    override func setUpWithError() throws {
        tmp = try TempStore()
        clock = TestClock()
        let c = clock!
        self.store = try AttendanceStore(path: tmp.path, keyFile: tmp.keyFile, config: AttendanceConfig(), now: { c.now })
        try seedRoster(store, in: tmp)
        try store.accounts.add(name: "admin", role: .admin, password: Self.password, hashing: Self.cheap)
        try store.accounts.add(name: "co.lan", role: .teacher, classes: ["6A1"], password: Self.password, hashing: Self.cheap)
        try store.accounts.add(name: "thay.minh", role: .teacher, classes: ["7B2"], password: Self.password, hashing: Self.cheap)
        try store.accounts.add(name: "hieutruong", role: .principal, password: Self.password, hashing: Self.cheap)
    }

    /// Runs `test` against the console over this test's store; the closure gets the store and the clock itself (it is
    /// @Sendable, so it cannot reach them through self).
    func withConsole(_ test: @Sendable (ConsoleBrowser, AttendanceStore, TestClock) async throws -> Void) async throws {
        let console = try SchoolConsole(store: store, models: SourceTree.models)
        let app = Application(router: console.router())
        let (store, clock) = (self.store!, self.clock!)
        try await app.test(.router) { client in try await test(ConsoleBrowser(client: client), store, clock) }
    }

    // MARK: roles

    func testEveryRoleSeesOnlyWhatItMay() async throws {
        // path -> expected status per role (admin, teacher of 6A1, teacher of 7B2, principal)
        let matrix: [(String, [HTTPResponse.Status])] = [
            ("/", [.ok, .ok, .ok, .ok]),
            ("/classes/6A1", [.ok, .ok, .forbidden, .ok]),
            ("/classes/7B2", [.ok, .forbidden, .ok, .ok]),
            ("/api/classes/6A1/today", [.ok, .ok, .forbidden, .ok]),
            ("/students/0101", [.ok, .ok, .forbidden, .ok]),
            ("/students/0201", [.ok, .forbidden, .ok, .ok]),
            ("/students/9999", [.notFound, .notFound, .notFound, .notFound]),
            ("/roster", [.ok, .forbidden, .forbidden, .forbidden]),
            ("/exports", [.ok, .ok, .ok, .ok]),
            ("/exports/daily?date=2026-09-07&format=csv", [.ok, .forbidden, .forbidden, .ok]),
            ("/exports/daily?date=2026-09-07&format=csv&class=6A1", [.ok, .ok, .forbidden, .ok]),
            ("/audit", [.ok, .forbidden, .forbidden, .ok]),
            ("/users", [.ok, .forbidden, .forbidden, .forbidden]),
        ]
        try await withConsole { browser, store, clock in
            for (i, name) in ["admin", "co.lan", "thay.minh", "hieutruong"].enumerated() {
                try await browser.signIn(name, Self.password)
                for (path, expected) in matrix {
                    let r = try await browser.get(path)
                    XCTAssertEqual(r.status, expected[i], "\(name) GET \(path)")
                }
                try await browser.signOut()
            }
        }
    }

    func testTodayShowsATeacherOnlyTheirClass() async throws {
        try await withConsole { browser, store, clock in
            try await browser.signIn("co.lan", Self.password)
            let page = try await browser.get("/").text
            XCTAssertTrue(page.contains("Nguyễn Văn An"), page)
            XCTAssertFalse(page.contains("Lê Hoàng Cường"), "another class's student")
            XCTAssertTrue(page.contains("<html lang=\"vi\">") && page.contains("Hôm nay"), "Vietnamese by default")
            XCTAssertEqual(page.components(separatedBy: "<h1").count - 1, 1, "one h1")
        }
    }

    func testAPrincipalChangesNothing() async throws {
        try await withConsole { browser, store, clock in
            try await browser.signIn("hieutruong", Self.password)
            let csrf = try await browser.csrf(from: "/students/0101")
            let r = try await browser.post(
                "/students/0101/excuse", ["csrf": csrf, "date": "2026-09-07", "reason": "Ốm"])
            XCTAssertEqual(r.status, .forbidden)
            let revoke = try await browser.post("/students/0101/consent/revoke", ["csrf": csrf])
            XCTAssertEqual(revoke.status, .forbidden)
        }
        XCTAssertEqual(try countRows(store, "SELECT COUNT(*) FROM excuse"), 0)
        XCTAssertNotNil(try store.consent.active(student: "0101"))
    }

    // MARK: CSRF, sessions, sign-in

    func testAFormWithoutItsTokenChangesNothing() async throws {
        try await withConsole { browser, store, clock in
            try await browser.signIn("co.lan", Self.password)
            let missing = try await browser.post("/students/0101/excuse", ["date": "2026-09-07", "reason": "Ốm"])
            XCTAssertEqual(missing.status, .forbidden)
            XCTAssertTrue(missing.text.contains("Biểu mẫu đã hết hạn"), missing.text)
            let forged = try await browser.post(
                "/students/0101/excuse", ["csrf": "forged", "date": "2026-09-07", "reason": "Ốm"])
            XCTAssertEqual(forged.status, .forbidden)
            XCTAssertEqual(try countRows(store, "SELECT COUNT(*) FROM excuse"), 0)

            let csrf = try await browser.csrf(from: "/students/0101")
            let ok = try await browser.post("/students/0101/excuse", ["csrf": csrf, "date": "2026-09-07", "reason": "Ốm"])
            XCTAssertEqual(ok.status, .ok, ok.text)
            XCTAssertTrue(ok.text.contains("Đã ghi nhận nghỉ có phép ngày 07/09/2026"), ok.text)
            // Another class's student: refused even with a valid token.
            let other = try await browser.post("/students/0201/excuse", ["csrf": csrf, "date": "2026-09-07", "reason": "Ốm"])
            XCTAssertEqual(other.status, .forbidden)
        }
        XCTAssertEqual(try countRows(store, "SELECT COUNT(*) FROM excuse"), 1)
        // The audit log names the console user, not the OS user.
        let entry = try XCTUnwrap(try store.auditLog.entries().last { $0.action.contains("excuse") })
        XCTAssertEqual(entry.osUser, "console:co.lan")
        XCTAssertEqual(try countRows(store, "SELECT COUNT(*) FROM excuse WHERE recorded_by = 'console:co.lan'"), 1)
    }

    func testSignInIsThrottledPerAccount() async throws {
        try await withConsole { browser, store, clock in
            for attempt in 1...5 {
                let r = try await browser.attemptSignIn("co.lan", "wrong password \(attempt)")
                XCTAssertEqual(r.status, .unauthorized, "attempt \(attempt)")
                XCTAssertTrue(r.text.contains("Tên đăng nhập hoặc mật khẩu không đúng"), r.text)
            }
            let locked = try await browser.attemptSignIn("co.lan", Self.password)
            XCTAssertEqual(locked.status, .tooManyRequests, "even the right password waits")
            XCTAssertTrue(locked.text.contains("Quá nhiều lần đăng nhập sai"), locked.text)
        }
        XCTAssertEqual(try store.auditLog.entries().filter { $0.action == "console.sign_in_failed" }.count, 5)
    }

    func testAnIdleSessionExpires() async throws {
        try await withConsole { browser, store, clock in
            try await browser.signIn("co.lan", Self.password)
            let first = try await browser.get("/")
            XCTAssertEqual(first.status, .ok)
            clock.advance(31 * 60)
            let r = try await browser.get("/")
            XCTAssertEqual(r.status, .seeOther)
            XCTAssertEqual(r.headers[.location], "/login?expired=1")
            let post = try await browser.post("/students/0101/excuse", ["csrf": "x", "date": "2026-09-07", "reason": "r"])
            XCTAssertEqual(post.status, .unauthorized)
        }
        XCTAssertEqual(try countRows(store, "SELECT COUNT(*) FROM console_session"), 0, "the expired session was deleted")
    }

    func testCookiesAndHeadersProtectThePages() async throws {
        try await withConsole { browser, store, clock in
            let cookie = try await browser.signIn("admin", Self.password)
            XCTAssertTrue(cookie.contains("HttpOnly"), cookie)
            XCTAssertTrue(cookie.contains("SameSite=Strict"), cookie)
            let r = try await browser.get("/students/0101")
            XCTAssertEqual(r.headers[.cacheControl], "no-store")
            let csp = try XCTUnwrap(r.headers[.contentSecurityPolicy])
            XCTAssertTrue(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"), csp)
            XCTAssertFalse(r.text.contains("<script>"), "no inline script")
            XCTAssertFalse(r.text.contains("<img"), "no face image is served")
        }
        // Only hashes are stored: neither the password nor a session token appears in the database.
        let bytes = tmp.databaseBytes()
        XCTAssertNil(bytes.range(of: Data(Self.password.utf8)))
    }

    // MARK: changes through the console

    func testConsentRevokeAndCorrectionFollowTheCLIRules() async throws {
        try await withConsole { browser, store, clock in
            try await browser.signIn("co.lan", Self.password)
            let csrf = try await browser.csrf(from: "/students/0102")
            let revoke = try await browser.post("/students/0102/consent/revoke", ["csrf": csrf, "reason": "thư của mẹ"])
            XCTAssertEqual(revoke.status, .ok, revoke.text)
            XCTAssertNil(try store.consent.active(student: "0102"))
            let bad = try await browser.post(
                "/students/0102/consent", ["csrf": csrf, "guardian": "Trần Văn B", "relation": "father", "date": "31/02/2026"])
            XCTAssertEqual(bad.status, .badRequest, "an impossible date is refused")
            let again = try await browser.post(
                "/students/0102/consent",
                ["csrf": csrf, "guardian": "Trần Văn B", "relation": "father", "date": "01/09/2026", "child": "1"])
            XCTAssertEqual(again.status, .ok, again.text)
            XCTAssertEqual(try store.consent.active(student: "0102")?.guardianName, "Trần Văn B")
            let corrected = try await browser.post(
                "/students/0102/correct",
                ["csrf": csrf, "date": "2026-09-07", "status": "present", "reason": "camera missed her"])
            XCTAssertEqual(corrected.status, .ok, corrected.text)
        }
        XCTAssertEqual(try countRows(store, "SELECT COUNT(*) FROM attendance_event WHERE status = 'present'"), 1)
        XCTAssertEqual(try countRows(store, "SELECT COUNT(*) FROM outbox"), 1, "queued for the sector like the CLI's")
    }

    func testRosterUploadIsCheckedThenConfirmed() async throws {
        let good = "Mã định danh,Họ và tên,Lớp\n0301,Phạm Thị Dung,8C1\n0302,Hoàng Văn Em,8C1\n"
        let bad = "Mã định danh,Họ và tên,Lớp\n0301,Phạm Thị Dung,8C1\n,Không Mã,8C1\n"
        try await withConsole { browser, store, clock in
            try await browser.signIn("admin", Self.password)
            let csrf = try await browser.csrf(from: "/roster")
            let errors = try await browser.upload(
                "/roster", fields: ["csrf": csrf], file: ("file", "lop8c1.csv", Array(bad.utf8)))
            XCTAssertEqual(errors.status, .ok)
            XCTAssertTrue(errors.text.contains("lop8c1.csv:3:"), errors.text)
            XCTAssertEqual(try countRows(store, "SELECT COUNT(*) FROM student WHERE class_code = '8C1'"), 0)

            let dry = try await browser.upload("/roster", fields: ["csrf": csrf], file: ("file", "lop8c1.csv", Array(good.utf8)))
            XCTAssertTrue(dry.text.contains("chưa thay đổi gì"), dry.text)
            XCTAssertEqual(try countRows(store, "SELECT COUNT(*) FROM student WHERE class_code = '8C1'"), 0, "dry run")
            let confirmed = try await browser.post(
                "/roster/confirm", ["csrf": csrf, "pending": Data(good.utf8).base64EncodedString(), "file": "lop8c1.csv"])
            let tokenInURL = try await browser.upload(
                "/roster?csrf=\(csrf)", file: ("file", "lop8c1.csv", Array(good.utf8)))
            XCTAssertEqual(tokenInURL.status, .forbidden, "a token in the URL does not count")
            XCTAssertTrue(confirmed.text.contains("Đã nhập: 2 học sinh"), confirmed.text)

            let huge = [UInt8](repeating: UInt8(ascii: "a"), count: 3 * 1024 * 1024)
            let tooBig = try await browser.upload("/roster", fields: ["csrf": csrf], file: ("file", "big.csv", huge))
            XCTAssertEqual(tooBig.status, .contentTooLarge)
        }
        XCTAssertEqual(try countRows(store, "SELECT COUNT(*) FROM student WHERE class_code = '8C1'"), 2)
    }

    func testDownloadsAreTheCLIsBytes() async throws {
        let day = LocalDate(year: 2026, month: 9, day: 7)
        _ = try store.events.excuse(student: "0101", day: day, reason: "Ốm")
        let cli = tmp.dir + "/cli.csv"
        _ = try AttendanceReports(store: store).exportDaily(day, classCode: "6A1", format: .csv, to: cli)
        try await withConsole { browser, store, clock in
            try await browser.signIn("co.lan", Self.password)
            let r = try await browser.get("/exports/daily?date=2026-09-07&class=6A1&format=csv")
            XCTAssertEqual(r.status, .ok)
            XCTAssertEqual(Data(buffer: r.body), FileManager.default.contents(atPath: cli))
            XCTAssertTrue(r.headers[.contentDisposition]?.contains("attachment") ?? false)
            let xlsx = try await browser.get("/exports/absences?from=2026-09-01&to=2026-09-30&class=6A1&format=xlsx")
            XCTAssertEqual(xlsx.status, .ok)
            XCTAssertEqual(Array(Data(buffer: xlsx.body).prefix(2)), Array("PK".utf8), "a zip (XLSX)")
        }
        XCTAssertEqual(
            try store.auditLog.entries().filter { $0.action.hasPrefix("export.") && $0.osUser == "console:co.lan" }.count, 2)
    }

    func testAdminManagesAccounts() async throws {
        try await withConsole { browser, store, clock in
            try await browser.signIn("admin", Self.password)
            let csrf = try await browser.csrf(from: "/users")
            let added = try await browser.post(
                "/users", ["csrf": csrf, "name": "co.hoa", "role": "teacher", "classes": "7B2", "password": "mot-mat-khau-moi"])
            XCTAssertTrue(added.text.contains("Đã thêm tài khoản co.hoa"), added.text)
            let short = try await browser.post(
                "/users", ["csrf": csrf, "name": "co.ngan", "role": "principal", "password": "ngan"])
            XCTAssertEqual(short.status, .badRequest)
            let reset = try await browser.post("/users/thay.minh/password", ["csrf": csrf, "password": "mat-khau-moi-cua-thay"])
            XCTAssertTrue(reset.text.contains("Đã đặt mật khẩu mới cho thay.minh"), reset.text)
            let disabled = try await browser.post("/users/co.lan/disable", ["csrf": csrf])
            XCTAssertEqual(disabled.status, .ok)
        }
        XCTAssertNotNil(try store.accounts.user(named: "co.hoa"))
        XCTAssertNil(try store.accounts.user(named: "co.ngan"))
        XCTAssertEqual(try store.accounts.user(named: "co.lan")?.disabled, true)
        try await withConsole { browser, store, clock in
            let r = try await browser.attemptSignIn("co.lan", Self.password)
            XCTAssertEqual(r.status, .unauthorized, "a disabled account cannot sign in")
            try await browser.signIn("thay.minh", "mat-khau-moi-cua-thay")
        }
    }

    /// Issue #15: a check-in the liveness check held back waits for the homeroom teacher, who alone may decide it.
    func testAHeldCheckInWaitsForItsHomeroomTeacher() async throws {
        let event = NewAttendanceEvent(
            studentCode: "0101", schoolDay: LocalDate(year: 2026, month: 9, day: 7), session: "morning", kind: .checkIn,
            status: .present, occurredAt: Date(), camera: "gate-1", distance: 0.3)
        guard case .held(let id) = try store.reviews.hold(event, liveness: 0.12, reason: .spoof) else {
            return XCTFail("not held")
        }
        XCTAssertEqual(try store.reviews.hold(event, liveness: 0.2, reason: .spoof), .alreadyHeld)
        try await withConsole { browser, store, clock in
            try await browser.signIn("thay.minh", Self.password)
            let other = try await browser.get("/review").text
            XCTAssertFalse(other.contains("Nguyễn Văn An"), "another class's student")
            let csrf7 = try await browser.csrf(from: "/review")
            let refused = try await browser.post("/review/\(id)/accept", ["csrf": csrf7])
            XCTAssertEqual(refused.status, .forbidden)
            try await browser.signOut()

            try await browser.signIn("hieutruong", Self.password)
            let seen = try await browser.get("/review").text
            XCTAssertTrue(seen.contains("Nguyễn Văn An") && seen.contains("0.12"), seen)
            XCTAssertFalse(seen.contains("/review/\(id)/accept"), "a principal reads, does not decide")
            try await browser.signOut()

            try await browser.signIn("co.lan", Self.password)
            let page = try await browser.get("/review").text
            XCTAssertTrue(page.contains("Cần xem lại (1)") && page.contains("giống ảnh hoặc màn hình"), page)
            let csrf = try await browser.csrf(from: "/review")
            let tokenless = try await browser.post("/review/\(id)/accept", ["accept": "1"])
            XCTAssertEqual(tokenless.status, .forbidden, "no token")
            let done = try await browser.post("/review/\(id)/accept", ["csrf": csrf])
            XCTAssertEqual(done.status, .ok, done.text)
            XCTAssertTrue(done.text.contains("Đã ghi nhận điểm danh của Nguyễn Văn An"), done.text)
            XCTAssertTrue(done.text.contains("Không có lượt điểm danh nào cần xem lại"))
            let again = try await browser.post("/review/\(id)/reject", ["csrf": csrf])
            XCTAssertNotEqual(again.status, .ok, "decided once")
        }
        XCTAssertEqual(try countRows(store, "SELECT COUNT(*) FROM attendance_event WHERE student_code = '0101'"), 1)
        XCTAssertEqual(try store.reviews.list(state: .accepted).first?.decidedBy, "console:co.lan")
    }

    func testEnglishIsSelectable() async throws {
        try await withConsole { browser, store, clock in
            try await browser.signIn("admin", Self.password)
            _ = try await browser.get("/language?to=en")
            let page = try await browser.get("/").text
            XCTAssertTrue(page.contains("<html lang=\"en\">") && page.contains("Today"), page)
        }
    }

    func testLiveUpdatesDoNotKeepASessionAlive() async throws {
        try await withConsole { browser, store, clock in
            try await browser.signIn("co.lan", Self.password)
            clock.advance(20 * 60)
            let fragment = try await browser.get("/today/fragment")
            XCTAssertEqual(fragment.status, .ok)
            XCTAssertTrue(fragment.text.contains("Nguyễn Văn An"))
            clock.advance(11 * 60)
            let after = try await browser.get("/today/fragment")
            XCTAssertEqual(after.status, .unauthorized, "a 401, not the sign-in page inside the table")
            let page = try await browser.get("/")
            XCTAssertEqual(page.status, .seeOther, "the page's own updates did not keep the session alive")
        }
    }

    func testBadExportsAndRostersAreRefused() async throws {
        try await withConsole { browser, store, clock in
            try await browser.signIn("admin", Self.password)
            let unknown = try await browser.get("/exports/daily?date=2026-09-07&format=csv&class=ZZ%22%3B")
            XCTAssertEqual(unknown.status, .notFound)
            let csrf = try await browser.csrf(from: "/roster")
            // "Nguyễn" in Windows-1258 (an "ANSI" export): refused with the reason, nothing imported.
            let ansi: [UInt8] = Array("Mã định danh,Họ và tên,Lớp\n0401,Nguy".utf8) + [0xEA, 0xD2, 0x6E] + Array(" A,9A1\n".utf8)
            let r = try await browser.upload("/roster", fields: ["csrf": csrf], file: ("file", "ansi.csv", ansi))
            XCTAssertTrue(r.text.contains("ansi.csv:"), r.text)
            XCTAssertEqual(try countRows(store, "SELECT COUNT(*) FROM student WHERE class_code = '9A1'"), 0)
        }
    }

    func testThrottleCountsAttemptsWhileTheyRun() async {
        let t = LoginThrottle()
        let now = Date()
        for i in 0..<5 {
            let a = await t.begin(["user:x", "address:a"], now: now)
            XCTAssertEqual(a, .go, "attempt \(i + 1)")
            await t.finished()
        }
        let sixth = await t.begin(["user:x", "address:b"], now: now)
        XCTAssertEqual(sixth, .wait(30), "five attempts in flight or failed lock the account")
        var busy = await t.begin(["user:y", "address:c"], now: now)
        XCTAssertEqual(busy, .go)
        busy = await t.begin(["user:z", "address:d"], now: now)
        XCTAssertEqual(busy, .go)
        let third = await t.begin(["user:w", "address:e"], now: now)
        XCTAssertEqual(third, .busy, "at most two password checks at once")
        await t.finished()
        await t.succeeded(account: "user:y", address: "address:c")
        let again = await t.begin(["user:y", "address:c"], now: now)
        XCTAssertEqual(again, .go)
    }

    // MARK: the pieces

    func testPasswordHashes() throws {
        let h = try Self.cheap.hash("mot mat khau")
        XCTAssertTrue(h.hasPrefix("scrypt$10$8$1$"))
        XCTAssertTrue(PasswordHash.verify("mot mat khau", against: h))
        XCTAssertFalse(PasswordHash.verify("mot mat khaU", against: h))
        XCTAssertFalse(PasswordHash.verify("x", against: "scrypt$99$8$1$AAAA$AAAA"), "a malformed hash never verifies")
        XCTAssertNotEqual(try Self.cheap.hash("same"), try Self.cheap.hash("same"), "salted")
    }

    func testCataloguesAreCompleteAndTemplatesUseOnlyTheirKeys() {
        XCTAssertEqual(Set(ConsoleCatalogue.vi.keys), Set(ConsoleCatalogue.en.keys))
        let pattern = try! NSRegularExpression(pattern: #"\{\{t\.([a-zA-Z.]+)\}\}"#)
        for (name, text) in ConsoleTemplates.all {
            for m in pattern.matches(in: text, range: NSRange(text.startIndex..., in: text)) {
                let key = String(text[Range(m.range(at: 1), in: text)!])
                XCTAssertNotNil(ConsoleCatalogue.vi[key], "template \(name) uses \(key)")
            }
        }
    }

    func testMultipartParsing() throws {
        let body = Array(
            "--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n--XyZ\r\nContent-Disposition: form-data; name=\"f\"; filename=\"x.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n\u{0}\r\n\u{1}\r\n--XyZ--\r\n"
                .utf8)
        let parts = try Multipart.parse(body, boundary: "XyZ")
        XCTAssertEqual(parts.map(\.name), ["a", "f"])
        XCTAssertEqual(parts[1].filename, "x.jpg")
        XCTAssertEqual(parts[1].bytes, [0, 13, 10, 1])
        XCTAssertThrowsError(try Multipart.parse(Array("--XyZ\r\nbroken".utf8), boundary: "XyZ"))
        XCTAssertEqual(Multipart.boundary(contentType: "multipart/form-data; boundary=\"q\""), "q")
    }

    func testAccessRules() {
        let teacher = ConsoleUser(id: 1, name: "t", role: .teacher, classes: ["6A1"])
        XCTAssertTrue(teacher.may(.changeBiometrics(classCode: "6A1")))
        XCTAssertFalse(teacher.may(.changeBiometrics(classCode: "7B2")))
        XCTAssertFalse(teacher.may(.export(classCode: nil)))
        let principal = ConsoleUser(id: 2, name: "p", role: .principal, classes: [])
        XCTAssertFalse(principal.may(.changeBiometrics(classCode: "6A1")))
        XCTAssertTrue(principal.may(.export(classCode: nil)))
        var admin = ConsoleUser(id: 3, name: "a", role: .admin, classes: [])
        XCTAssertTrue(admin.may(.manageUsers))
        admin.disabled = true
        XCTAssertFalse(admin.may(.viewSchool))
    }
}

/// A wall clock the test moves.
final class TestClock: @unchecked Sendable {
    private let lock = NSLock()
    private var value = Date()
    var now: Date { lock.lock(); defer { lock.unlock() }; return value }
    func advance(_ seconds: TimeInterval) { lock.lock(); value += seconds; lock.unlock() }
}
