import FaceEngine
import Foundation
import GRDB
import XCTest

@testable import Attendance
@testable import AttendanceCore

/// Enrolment from the real test images through the real face engine.
final class EnrolmentEndToEndTests: XCTestCase {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path
    var testdata: String { Self.root + "/.testdata" }
    func image(_ name: String) -> String { testdata + "/" + name }

    var tmp: TempStore!
    var store: AttendanceStore!
    var engine: FaceEngine!
    var enroller: Enroller!

    override func setUpWithError() throws {
        let models = ModelPaths(directory: Self.root + "/Models")
        guard FileManager.default.fileExists(atPath: models.embedding), FileManager.default.fileExists(atPath: image("obama.jpg"))
        else {
            throw XCTSkip("models or test images missing: run `make models testdata`")
        }
        tmp = try TempStore()
        store = try tmp.open()
        try seedRoster(store, in: tmp) // 0101, 0102, 0201 with consent
        engine = try FaceEngine(models: models)
        enroller = Enroller(store: store)
    }

    func testEnrolFromPhotosAndFlagTheWrongPerson() throws {
        let first = try enroller.enrol(student: "0101", photos: [image("obama.jpg"), image("obama2.jpg")], engine: engine)
        XCTAssertEqual(first.map(\.accepted), [true, true], "\(first)")
        XCTAssertEqual(try store.enrolments.list(student: "0101").count, 2)
        XCTAssertTrue(try store.enrolments.list(student: "0101")[0].quality!.contains("\"sharpness\""))

        // Biden's photo filed under Obama's code: not like the student's other photos.
        let wrong = try enroller.enrol(student: "0101", photos: [image("biden.jpg")], engine: engine)
        guard case .unlikeOwnPhotos(let d, _)? = wrong[0].rejection else { return XCTFail("\(wrong)") }
        XCTAssertGreaterThan(d, 0.6)

        // Biden under his own code is fine; then Obama's third photo under Biden's code is a swap.
        XCTAssertTrue(try enroller.enrol(student: "0102", photos: [image("biden.jpg")], engine: engine)[0].accepted)
        let swapped = try enroller.enrol(student: "0201", photos: [image("obama3.jpg")], engine: engine)
        guard case .looksLikeOtherStudent(let other, let distance)? = swapped[0].rejection else { return XCTFail("\(swapped)") }
        XCTAssertEqual(other, "0101")
        XCTAssertLessThan(distance, 0.45)
        XCTAssertTrue(swapped[0].rejection!.isForceable && swapped[0].rejection!.description.contains("enrol it anyway"))
        XCTAssertEqual(try store.enrolments.list(student: "0201").count, 0)

        // --force overrides the identity checks (twins), and the record says so.
        let forced = try enroller.enrol(student: "0201", photos: [image("obama3.jpg")], engine: engine, force: true)
        XCTAssertTrue(forced[0].accepted && forced[0].forced)
        XCTAssertEqual(try store.enrolments.list(student: "0201").first?.source, "forced:photo:obama3.jpg")

        // The gallery the daemon loads now recognises Obama's photo as 0101 by a clear margin.
        let probe = try engine.faces(inFile: image("obama3.jpg"))[0].descriptor!.values
        let index = try EnrolledFaces.Index(version: 0, rows: try store.enrolments.recognisable().filter { $0.student != "0201" })
        let best = try XCTUnwrap(try index.best(probe))
        XCTAssertEqual(best.student, "0101")
        XCTAssertLessThan(best.distance, 0.6)
        XCTAssertGreaterThan(best.margin, 0.2)
    }

    /// The 3x4 ID photo a school has for every student: a close crop of the face. res10 used to see a
    /// second, phantom face in its bottom-right corner and the enrolment refused it as "2 faces".
    func testAnIDPhotoCloseUpIsEnrolled() throws {
        let full = try Image(contentsOf: image("obama.jpg"))
        let face = try XCTUnwrap(try engine.detect(in: full).first?.box)
        for padding in [0.1, 0.2, 0.3] {
            let side = Double(max(face.width, face.height)) * (1 + 2 * padding)
            let l = Int(face.centerX - side / 2), t = Int(face.centerY - side / 2)
            let crop = try full.cropped(to: FaceBox(top: t, right: l + Int(side), bottom: t + Int(side), left: l))
                .resized(width: 250, height: 250)
            let path = tmp.dir + "/id-photo-\(Int(padding * 100)).jpg"
            try crop.write(to: path)
            let faces = try engine.faces(inFile: path, descriptors: false)
            XCTAssertEqual(faces.count, 1, "padding \(padding): \(faces.map(\.box))")
        }
        let outcome = try enroller.enrol(student: "0102", photos: [tmp.dir + "/id-photo-20.jpg"], engine: engine)
        XCTAssertEqual(outcome.map(\.accepted), [true], "\(outcome)")
    }

    func testPhotosWithoutAUsableFaceAreRejectedWithTheirReason() throws {
        let blank = tmp.dir + "/blank.png"
        try Image(width: 400, height: 300, blue: 200, green: 200, red: 200).write(to: blank)
        let tiny = tmp.dir + "/tiny.jpg"
        let obama = try Image(contentsOf: image("obama.jpg"))
        try obama.resized(width: obama.width / 8, height: obama.height / 8).write(to: tiny)
        let pair = tmp.dir + "/pair.jpg"
        let biden = try Image(contentsOf: image("biden.jpg"))
        let a = try obama.resized(width: 400, height: 400 * obama.height / obama.width)
        let b = try biden.resized(width: 400, height: 400 * biden.height / biden.width)
        let canvas = try Image(width: 820, height: max(a.height, b.height) + 20)
        try canvas.paste(a, x: 0, y: 0)
        try canvas.paste(b, x: 420, y: 0)
        try canvas.write(to: pair)
        let notAnImage = try tmp.write("notes.jpg", "not a jpeg")

        let outcomes = try enroller.enrol(student: "0101", photos: [blank, tiny, pair, notAnImage], engine: engine)
        XCTAssertEqual(outcomes[0].rejection, .noFace)
        guard case .tooSmall? = outcomes[1].rejection else { return XCTFail("\(outcomes[1])") }
        XCTAssertEqual(outcomes[2].rejection, .severalFaces(2))
        guard case .unreadable? = outcomes[3].rejection else { return XCTFail("\(outcomes[3])") }
        XCTAssertEqual(try store.enrolments.list(student: "0101").count, 0, "nothing stored")
    }

    func testConsentFirstAndLimitPerStudent() throws {
        try store.consent.revoke(student: "0101")
        XCTAssertThrowsError(try enroller.enrol(student: "0101", photos: [image("obama.jpg")], engine: engine)) {
            XCTAssertEqual($0 as? StoreError, .noConsent("0101"))
            XCTAssertEqual($0 as? StoreError, .noConsent("0101"))
        }
        XCTAssertThrowsError(try enroller.enrol(student: "nobody", photos: [image("obama.jpg")], engine: engine)) {
            XCTAssertEqual($0 as? StoreError, .unknownStudent("nobody"))
        }
        var limitedConfig = AttendanceConfig()
        limitedConfig.recognition.maxEmbeddingsPerStudent = 2
        let limited = Enroller(store: try tmp.open(config: limitedConfig))
        let out = try limited.enrol(
            student: "0102", photos: [image("obama.jpg"), image("obama2.jpg"), image("obama3.jpg")], engine: engine)
        XCTAssertEqual(out.map(\.accepted), [true, true, false])
        XCTAssertEqual(out[2].rejection, .limitReached(2))
    }

    func testEnrolledImagesAreNotStored() throws {
        _ = try enroller.enrol(student: "0101", photos: [image("obama.jpg")], engine: engine)
        let jpeg = try Data(contentsOf: URL(fileURLWithPath: image("obama.jpg")))
        let bytes = tmp.databaseBytes()
        XCTAssertNil(bytes.range(of: jpeg.subdata(in: 1000..<1064)), "no image bytes in the database")
        let files = try FileManager.default.contentsOfDirectory(atPath: tmp.dir)
        XCTAssertTrue(files.allSatisfy { $0.hasPrefix("school.sqlite") || $0.hasSuffix(".csv") }, "\(files)")
    }
}
