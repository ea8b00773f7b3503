import ArgumentParser
import Attendance
import AttendanceCore
import Foundation

struct GalleryCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gallery",
        abstract: "The enrolled faces as the gate sees them.",
        subcommands: [GalleryCheckCommand.self]
    )
}

struct GalleryCheckCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract:
            "Kiểm tra thư viện khuôn mặt / Check the school's own gallery: impostor distances, the threshold they imply, look-alike students.",
        discussion: """
            The school knows every enrolled student's faces, so it knows how close *different* students of this school are. For every pair of students, the smallest distance between a face of one and a face of the other is measured; the share of pairs under the threshold is the per-pair false-accept rate, and a face of someone not enrolled is compared with every student, so its chance of being taken for someone grows with the number of students.

            Look-alike pairs (siblings, twins, or a photo enrolled under the wrong name) are students closer than recognition.threshold + recognition.min_margin. The gate demands more of them: a margin of recognition.lookalike_margin and recognition.lookalike_extra_votes more votes. Check each pair: if one photo is of the wrong child, `attendance unenrol` and enrol again.

            Examples:
              attendance gallery check
              attendance gallery check --target-far 0.0001 --json
            """
    )
    @OptionGroup var global: GlobalOptions
    @Option(help: "Target per-pair false-accept rate for the implied threshold.") var targetFar: Double = 0.001
    @Option(help: "Show at most this many look-alike pairs.") var limit: Int = 50
    @Flag(help: "Print JSON.") var json = false

    struct Report: Encodable {
        struct Pair: Encodable { var a: String; var aName: String?; var b: String; var bName: String?; var distance: Float }
        var students: Int
        var embeddings: Int
        var pairs: Int
        var threshold: Float
        var falseAcceptRateAtThreshold: Double
        var expectedFalseMatchesPerStranger: Double
        var targetFalseAcceptRate: Double
        var impliedThreshold: Float?
        var quantiles: [String: Float]
        var lookalikes: [Pair]
        var lookalikeStudents: Int
    }

    func run() async throws {
        guard targetFar > 0, targetFar < 1 else { throw failLine("--target-far must be between 0 and 1, e.g. 0.001") }
        let (store, config) = try global.openStore()
        let c = try storeCall { try GalleryCalibration.check(store) }
        let rules = RecognitionRules(config.recognition)
        let far = c.falseAcceptRate(at: rules.threshold)
        let lookalikes = c.lookalikes(rules)
        func name(_ code: String) -> String? { (try? store.roster.student(code: code))??.fullName }
        let report = Report(
            students: c.students, embeddings: c.embeddings, pairs: c.impostorDistances.count, threshold: rules.threshold,
            falseAcceptRateAtThreshold: far, expectedFalseMatchesPerStranger: far * Double(c.students),
            targetFalseAcceptRate: targetFar, impliedThreshold: c.threshold(forFalseAcceptRate: targetFar),
            quantiles: Dictionary(
                uniqueKeysWithValues: [("min", 0.0), ("p01", 0.01), ("p05", 0.05), ("median", 0.5)].compactMap { k, q in
                    c.quantile(q).map { (k, $0) }
                }),
            lookalikes: lookalikes.prefix(limit).map {
                .init(a: $0.a, aName: name($0.a), b: $0.b, bName: name($0.b), distance: $0.distance)
            },
            lookalikeStudents: Set(lookalikes.flatMap { [$0.a, $0.b] }).count)
        if json { return try printJSON(report) }

        func f(_ x: Float?) -> String { x.map { String(format: "%.3f", $0) } ?? "—" }
        print(
            "Thư viện khuôn mặt / gallery: \(c.students) students, \(c.embeddings) enrolled faces, \(c.impostorDistances.count) pairs of different students"
        )
        guard c.students >= 2 else {
            print("Fewer than two students enrolled: nothing to compare yet.")
            return
        }
        print(
            "Distances between different students (smallest per pair): min \(f(report.quantiles["min"])), 1 % \(f(report.quantiles["p01"])), 5 % \(f(report.quantiles["p05"])), median \(f(report.quantiles["median"]))"
        )
        print(
            String(
                format:
                    "At the threshold %.3f: %.3f %% of pairs are under it; a face of someone not enrolled would fall under it for about %.2f students.",
                rules.threshold, far * 100, far * Double(c.students)))
        if let t = report.impliedThreshold {
            print(
                String(
                    format:
                        "Implied threshold for a per-pair false-accept rate of %g: %.3f (the school's own faces; compare with recognition.threshold).",
                    targetFar, t))
        } else {
            print(
                String(
                    format:
                        "Too few pairs (%d) to estimate a threshold for a false-accept rate of %g: enrol more students or raise --target-far.",
                    c.impostorDistances.count, targetFar))
        }
        print(
            "Học sinh giống nhau / look-alike pairs (closer than \(f(rules.threshold + rules.minMargin))): \(lookalikes.count), \(report.lookalikeStudents) students"
        )
        if lookalikes.isEmpty { return }
        print(
            String(
                format: "The gate asks these students for a margin of %.2f and %d votes (instead of %.2f and %d).",
                rules.lookalikeMargin, rules.votes + rules.lookalikeExtraVotes, rules.minMargin, rules.votes))
        for p in report.lookalikes {
            print("  \(f(p.distance))  \(p.a) \(p.aName ?? "")  ~  \(p.b) \(p.bName ?? "")")
        }
        if lookalikes.count > limit { print("  … \(lookalikes.count - limit) more (--limit)") }
    }
}
