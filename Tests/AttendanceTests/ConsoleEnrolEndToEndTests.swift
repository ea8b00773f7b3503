import AttendanceTesting
import Foundation
import Hummingbird
import HummingbirdTesting
import XCTest

@testable import Attendance
@testable import AttendanceConsole
@testable import AttendanceCore

/// Enrolment through the console's upload, with the real face engine: the same per-photo feedback as the
/// CLI, nothing stored for a photo that is refused, an oversized upload refused whole.
final class ConsoleEnrolEndToEndTests: XCTestCase {
    func testUploadedPhotosGetTheCLIsFeedback() async throws {
        guard FileManager.default.fileExists(atPath: SourceTree.samples + "/obama2.jpg") else {
            throw XCTSkip("run `make testdata`")
        }
        let tmp = try TempStore()
        let store = try tmp.open()
        try seedRoster(store, in: tmp)
        try store.accounts.add(
            name: "co.lan", role: .teacher, classes: ["6A1"], password: ConsoleRouteTests.password,
            hashing: ConsoleRouteTests.cheap)
        let console = try SchoolConsole(store: store, models: SourceTree.models)
        let photo = try XCTUnwrap(FileManager.default.contents(atPath: SourceTree.samples + "/obama2.jpg"))
        let limit = store.config.console.maxPhotoBytes
        try await Application(router: console.router()).test(.router) { client in
            let browser = ConsoleBrowser(client: client)
            try await browser.signIn("co.lan", ConsoleRouteTests.password)
            let csrf = try await browser.csrf(from: "/students/0101")
            let notAnImage = try await browser.upload(
                "/students/0101/enrol", fields: ["csrf": csrf], file: ("photos", "ghi-chu.jpg", Array("not a photo".utf8)))
            XCTAssertEqual(notAnImage.status, .ok)
            XCTAssertTrue(notAnImage.text.contains("Không nhận: ghi-chu.jpg: không đọc được ảnh"), notAnImage.text)
            XCTAssertEqual(try store.enrolments.list(student: "0101").count, 0)

            let good = try await browser.upload(
                "/students/0101/enrol", fields: ["csrf": csrf], file: ("photos", "an.jpg", Array(photo)))
            XCTAssertTrue(good.text.contains("Nhận: an.jpg"), good.text)
            XCTAssertEqual(try store.enrolments.list(student: "0101").count, 1)

            // The same face for another student of her class: the swapped-photo guard speaks, nothing is stored.
            let swapped = try await browser.upload(
                "/students/0102/enrol", fields: ["csrf": csrf], file: ("photos", "an.jpg", Array(photo)))
            XCTAssertTrue(swapped.text.contains("giống một học sinh khác"), swapped.text)
            XCTAssertEqual(try store.enrolments.list(student: "0102").count, 0)

            let huge = [UInt8](repeating: 0xFF, count: limit + 1)
            let tooBig = try await browser.upload(
                "/students/0101/enrol", fields: ["csrf": csrf], file: ("photos", "big.jpg", huge))
            XCTAssertEqual(tooBig.status, .contentTooLarge)
            let forged = try await browser.upload(
                "/students/0101/enrol", fields: ["csrf": "forged"], file: ("photos", "an.jpg", Array(photo)))
            XCTAssertEqual(forged.status, .forbidden)
        }
        XCTAssertEqual(try store.enrolments.list(student: "0101").count, 1, "only the accepted photo")
        XCTAssertNil(tmp.databaseBytes().range(of: photo.prefix(4096)), "the photo itself is not stored")
    }
}
