import FaceEngine
import FaceMatch
import Foundation
import XCTest

@testable import Attendance
@testable import AttendanceCore

/// `attendance gallery check` on the demo school, and on a school enrolled from the development set
/// (../shared/faces-dev: evaluation only, never committed; skipped when absent).
final class GalleryCheckEndToEndTests: XCTestCase {
    struct Report: Decodable {
        struct Pair: Decodable { var a: String; var b: String; var distance: Float }
        var students: Int
        var embeddings: Int
        var pairs: Int
        var threshold: Float
        var falseAcceptRateAtThreshold: Double
        var impliedThreshold: Float?
        var lookalikes: [Pair]
    }

    func check(_ db: String) throws -> (text: String, report: Report) {
        let exe = try SourceTree.executable()
        let (status, text) = try GateReplayEndToEndTests.run(exe, ["gallery", "check", "--db", db])
        XCTAssertEqual(status, 0, text)
        let (jsonStatus, json) = try GateReplayEndToEndTests.run(
            exe, ["gallery", "check", "--db", db, "--json", "--limit", "1000"])
        XCTAssertEqual(jsonStatus, 0, json)
        let report = try JSONDecoder().decode(Report.self, from: Data(json.utf8))
        return (text, report)
    }

    func testTheDemoSchool() throws {
        guard FileManager.default.fileExists(atPath: SourceTree.samples + "/obama.jpg") else {
            throw XCTSkip("run `make testdata`")
        }
        let dir = NSTemporaryDirectory() + "gallery-\(UUID().uuidString)"
        addTeardownBlock { try? FileManager.default.removeItem(atPath: dir) }
        let demo = try GateDemo.prepare(
            directory: dir, samples: SourceTree.samples, models: SourceTree.models,
            day: LocalDate(year: 2026, month: 11, day: 23))
        let (text, report) = try check(demo.config.database.path)
        XCTAssertEqual(report.students, 2)
        XCTAssertEqual(report.pairs, 1)
        XCTAssertEqual(report.threshold, AttendanceConfig().recognition.threshold)
        XCTAssertTrue(report.lookalikes.isEmpty, "Obama and Biden are no look-alikes: \(report.lookalikes)")
        XCTAssertEqual(report.falseAcceptRateAtThreshold, 0)
        XCTAssertNil(report.impliedThreshold, "one pair cannot show a rate of 1 in 1000")
        XCTAssertTrue(text.contains("2 students"), text)
        XCTAssertTrue(text.contains("look-alike pairs"), text)
    }

    /// A school of the development set's East-Asian people, two photos each, enrolled through the real
    /// enrolment (photos the swap guard refuses are forced, as a teacher who checked them would; photos
    /// that show a second person, as the set's family photos do, are refused and the next one is tried).
    func testASchoolFromTheDevelopmentSet() throws {
        let set = SourceTree.root + "/../shared/faces-dev"
        guard FileManager.default.fileExists(atPath: set + "/identities.csv") else {
            throw XCTSkip("the development set is not here (\(set)): it is for evaluation only and not part of a clone")
        }
        let people = try String(contentsOfFile: set + "/identities.csv", encoding: .utf8)
            .split(whereSeparator: \.isNewline).dropFirst()
            .map { $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init) }
            .filter { $0.count >= 3 && $0[2] == "1" }
            .prefix(30).map { $0[0] }
        XCTAssertEqual(people.count, 30)
        let tmp = try TempStore()
        let store = try tmp.open()
        var csv = "Mã định danh,Họ và tên,Lớp,Ngày sinh,Giới tính\n"
        for (i, name) in people.enumerated() {
            csv +=
                String(format: "79%08d", i + 1)
                + ",\(name.replacingOccurrences(of: "_", with: " ")),9A\(i % 3 + 1),01/01/2011,Nam\n"
        }
        _ = try store.roster.importRoster(
            try RosterParser.parse(contentsOf: try tmp.write("devset.csv", csv), today: LocalDate(year: 2026, month: 9, day: 1)))
        let engine = try FaceEngine(models: SourceTree.models)
        let enroller = Enroller(store: store)
        for (i, name) in people.enumerated() {
            let code = String(format: "79%08d", i + 1)
            try store.consent.record(
                student: code, guardian: "Phụ huynh", relation: "mother", date: LocalDate(year: 2026, month: 9, day: 1),
                childAgreed: true)
            var accepted = 0
            for n in 1...6 where accepted < 2 && FileManager.default.fileExists(atPath: set + "/\(name)/\(n).jpg") {
                let outcomes = try enroller.enrol(student: code, photos: [set + "/\(name)/\(n).jpg"], engine: engine, force: true)
                if let why = outcomes[0].rejection {
                    XCTAssertFalse(why.isForceable, "forced, yet refused: \(why)")
                } else {
                    accepted += 1
                }
            }
        }
        let (text, report) = try check(tmp.path)
        let stored = try store.enrolments.recognisable()
        let students = Set(stored.map(\.student)).count
        XCTAssertGreaterThanOrEqual(students, 28, "nearly everyone has a usable photo")
        XCTAssertEqual(report.students, students)
        XCTAssertEqual(report.embeddings, stored.count)
        XCTAssertEqual(report.pairs, students * (students - 1) / 2)
        // The report's look-alikes are exactly the pairs closer than threshold + margin, from the store's own faces.
        let rules = RecognitionRules(AttendanceConfig().recognition)
        let rows = stored
        var expected: [String] = []
        var under = 0
        let codes = Array(Set(rows.map(\.student))).sorted()
        for (i, a) in codes.enumerated() {
            for b in codes[(i + 1)...] {
                let d = rows.filter { $0.student == a }.flatMap { x in
                    rows.filter { $0.student == b }.map {
                        try! Embedding.distance(Embedding(x.embedding), Embedding($0.embedding))
                    }
                }.min()!
                if rules.isLookalike(nearestOther: d) { expected.append(a + "-" + b) }
                if d < rules.threshold { under += 1 }
            }
        }
        XCTAssertEqual(report.lookalikes.map { $0.a + "-" + $0.b }.sorted(), expected.sorted())
        for p in report.lookalikes { XCTAssertLessThan(p.distance, rules.threshold + rules.minMargin) }
        print("gallery check on \(students) East-Asian people of faces-dev:\n\(text)")
        XCTAssertEqual(report.falseAcceptRateAtThreshold, Double(under) / Double(report.pairs), accuracy: 1e-9)
        XCTAssertNil(report.impliedThreshold, "fewer than 1000 pairs cannot show a rate of 1 in 1000: the report says so")
        XCTAssertTrue(text.contains("Too few pairs"), text)
    }
}
