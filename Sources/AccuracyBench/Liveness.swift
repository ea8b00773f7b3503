// The liveness section of accuracy-bench (`accuracy-bench --liveness [DIR]` runs it alone): where the combined real
// score of FaceEngine's LivenessChecker falls on gate frames composed from the set's photos (ReplayScript.still: as
// the person, on a phone screen, as a print), per group and presentation, and what each threshold accepts through
// RecognitionRules.verdict. Then the test photos and the models' reference samples, and a recommended threshold.

import Attendance
import AttendanceCore
import FaceEngine
import Foundation

enum LivenessBench {
    static let presentations: [(name: String, presentation: ReplayScript.Presentation)] = [
        ("person", .person), ("phone", .phoneScreen), ("print", .print),
    ]
    static let thresholds: [Float] = (1...9).map { Float($0) / 10 }

    /// One composed frame's outcome: the check's result, or why there is none.
    enum Outcome: Sendable {
        case checked(LivenessResult)
        case noFaceInPhoto
        case noFaceInFrame
        case notCheckable(String)
        case failed(String)

        var result: LivenessResult? {
            if case .checked(let r) = self { return r }
            return nil
        }

        /// Why the frame has no score: "photo", "frame", "shim" or "failed" (nil: it has one).
        var unchecked: String? {
            switch self {
            case .checked: return nil
            case .noFaceInPhoto: return "photo"
            case .noFaceInFrame: return "frame"
            case .notCheckable: return "shim"
            case .failed: return "failed"
            }
        }
    }

    final class Results: @unchecked Sendable {
        let lock = NSLock()
        /// Per photo, one outcome per presentation (in `presentations`' order).
        var outcomes: [String: [Outcome]] = [:]
        var failures: [String] = []
    }

    /// Accepted of checked frames, per presentation, for one group at one threshold.
    struct Rates {
        var person: (accepted: Int, of: Int)
        var phone: (accepted: Int, of: Int)
        var print: (accepted: Int, of: Int)
        var spoofs: (accepted: Int, of: Int) { (phone.accepted + print.accepted, phone.of + print.of) }
    }

    static func cpuName() -> String {
        let info = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        guard let line = info.split(separator: "\n").first(where: { $0.hasPrefix("model name") }),
            let name = line.split(separator: ":", maxSplits: 1).last
        else { return "unknown CPU" }
        return name.trimmingCharacters(in: .whitespaces)
    }

    static func engines(_ models: ModelPaths) throws -> (FaceEngine, LivenessChecker) {
        var options = engineOptions
        options.embeddings = false // the gate's detector and box refinement; no descriptors needed
        return (try FaceEngine(models: models, options: options), try LivenessChecker(models: models))
    }

    /// The liveness of the largest face in `image`.
    static func check(_ image: Image, engine: FaceEngine, checker: LivenessChecker) throws -> Outcome {
        guard let face = try engine.detect(in: image).max(by: { $0.box.area < $1.box.area })?.box else { return .noFaceInFrame }
        switch try checker.check(face, foundBy: engine.detector, in: image) {
        case .checked(let r): return .checked(r)
        case .notCheckable(let why): return .notCheckable(why)
        }
    }

    /// The photo at `path` composed into a gate frame as `presentation`, then checked.
    static func composed(
        _ path: String, _ presentation: ReplayScript.Presentation, engine: FaceEngine, checker: LivenessChecker
    ) -> Outcome {
        let frame: Image
        do {
            frame = try ReplayScript(duration: 1, passages: []).still(of: path, presentation: presentation, engine: engine)
        } catch let e as FaceEngineError where e.kind == .noFace {
            return .noFaceInPhoto
        } catch {
            return .failed("\(error)")
        }
        do { return try check(frame, engine: engine, checker: checker) } catch { return .failed("\(error)") }
    }

    static func checkAsIs(_ path: String, engine: FaceEngine, checker: LivenessChecker) -> Outcome {
        do { return try check(try Image(contentsOf: path), engine: engine, checker: checker) } catch {
            return .failed("\(error)")
        }
    }

    /// The value at fraction `p` of the sorted values (linear between neighbours).
    static func percentile(_ sorted: [Float], _ p: Double) -> Float? {
        guard !sorted.isEmpty else { return nil }
        let x = p * Double(sorted.count - 1)
        let i = Int(x), f = Float(x - Double(i))
        return i + 1 < sorted.count ? sorted[i] * (1 - f) + sorted[i + 1] * f : sorted[i]
    }

    static func rate(_ r: (accepted: Int, of: Int)) -> Double { r.of == 0 ? 0 : Double(r.accepted) / Double(r.of) }
    static func pct(_ r: (accepted: Int, of: Int)) -> String {
        r.of == 0 ? "     -  " : String(format: "%5.1f %%", rate(r) * 100)
    }
    static func score(_ x: Float?) -> String { x.map { String(format: "%.3f", $0) } ?? "  -  " }
    static func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s : s + String(repeating: " ", count: n - s.count) }

    static func describe(_ o: Outcome, rules: RecognitionRules) -> String {
        switch o {
        case .checked(let r):
            return String(
                format: "real %.3f (A %.3f, B %.3f)  argmax %@  at %.1f: %@", r.real, r.probA[1], r.probB[1],
                r.looksReal ? "real " : "spoof", rules.livenessThreshold, rules.verdict(.checked(r)).label)
        case .noFaceInPhoto: return "no face in the photo"
        case .noFaceInFrame: return "no face found"
        case .notCheckable(let why): return "not checkable: \(why)"
        case .failed(let why): return "failed: \(why)"
        }
    }

    static func run(people: [Person], setDir: String, root: String) throws {
        let workers = max(1, min(2, ProcessInfo.processInfo.activeProcessorCount))
        print("\nliveness: CPU \(cpuName()), \(ProcessInfo.processInfo.activeProcessorCount) cores, \(workers) engines")
        print("Every photo composed into a 640x480 gate frame (ReplayScript.still) as the person (cut out under a soft")
        print(
            "oval), on a phone screen and as a print; the frame's largest face (the configured detector) checked by LivenessChecker."
        )
        print("Rates are of the checked frames; frames without a score are counted apart (no face in the photo, none")
        print("found in the frame, or not checkable by the shim: the gate holds such a track whatever the threshold).")

        let models = ModelPaths(directory: root + "/Models")
        let all = people.flatMap(\.files)
        let results = Results()
        let started = Date()
        DispatchQueue.concurrentPerform(iterations: workers) { worker in
            let engine: FaceEngine, checker: LivenessChecker
            do { (engine, checker) = try engines(models) } catch {
                results.lock.lock(); results.failures.append("engine: \(error)"); results.lock.unlock()
                return
            }
            var i = worker
            while i < all.count {
                let file = all[i]
                let outcomes = presentations.map {
                    composed(setDir + "/" + file, $0.presentation, engine: engine, checker: checker)
                }
                results.lock.lock(); results.outcomes[file] = outcomes; results.lock.unlock()
                if worker == 0 && (i / workers) % 50 == 0 {
                    FileHandle.standardError.write(
                        Data("  liveness \(i + 1) of \(all.count) photos (\(Int(Date().timeIntervalSince(started))) s)\n".utf8))
                }
                i += workers
            }
        }
        for f in results.failures { print("  not run: \(f)") }
        let seconds = Date().timeIntervalSince(started)
        print(
            String(
                format:
                    "%d photos x 3 presentations in %.0f s with %d engines (%.0f ms per frame per engine:"
                    + " compose, detect, check)",
                all.count, seconds, workers, seconds * 1000 * Double(workers) / Double(max(1, all.count * 3))))
        for (file, outcomes) in results.outcomes.sorted(by: { $0.key < $1.key }) {
            for (p, o) in zip(presentations, outcomes) {
                if case .failed(let why) = o { print("  failed: \(file) as \(p.name): \(why)") }
            }
        }

        let eastAsian = Set(people.filter(\.eastAsian).flatMap(\.files))
        let groups: [(name: String, files: [String])] = [
            ("East-Asian", all.filter { eastAsian.contains($0) }), ("other", all.filter { !eastAsian.contains($0) }),
            ("all", all),
        ]
        func outcomes(_ files: [String], _ p: Int) -> [Outcome] { files.compactMap { results.outcomes[$0]?[p] } }

        print("\nreal score per group and presentation (of the checked frames)")
        print("group       as      | photos  no score (no face in photo / in frame / shim) | real: p5     median  p95")
        for g in groups {
            for (p, pr) in presentations.enumerated() {
                let o = outcomes(g.files, p)
                let scores = o.compactMap(\.result).map(\.real).sorted()
                func n(_ why: String) -> Int { o.filter { $0.unchecked == why }.count }
                let failed = n("failed") > 0 ? ", \(n("failed")) failed" : ""
                let unchecked = "\(o.count - scores.count) (\(n("photo")) / \(n("frame")) / \(n("shim"))\(failed))"
                print(
                    "\(pad(g.name, 11)) \(pad(pr.name, 7)) | \(pad(String(format: "%5d", g.files.count), 7))"
                        + " \(pad(unchecked, 47))"
                        + " |       \(score(percentile(scores, 0.05)))  \(score(percentile(scores, 0.5)))"
                        + "  \(score(percentile(scores, 0.95)))")
            }
        }

        // The pipeline's own rule at each threshold, and the models' argmax for comparison.
        let defaults = AttendanceConfig().recognition
        func rules(_ t: Float) -> RecognitionRules {
            var r = RecognitionRules(defaults)
            r.livenessThreshold = t
            return r
        }
        func rates(_ files: [String], _ accepts: (LivenessResult) -> Bool) -> Rates {
            func count(_ p: Int) -> (accepted: Int, of: Int) {
                let checked = outcomes(files, p).compactMap(\.result)
                return (checked.filter(accepts).count, checked.count)
            }
            return Rates(person: count(0), phone: count(1), print: count(2))
        }
        let ea = groups[0].files, other = groups[1].files
        print("\naccepted per threshold (RecognitionRules.verdict: real when the real score >= the threshold)")
        print("threshold | people accepted: EA      other    all     | spoofs passed: phone EA  other     print EA  other")
        print("          |                                            |                all spoofs EA  other")
        func row(_ label: String, _ accepts: (LivenessResult) -> Bool) -> (ea: Rates, other: Rates) {
            let a = rates(ea, accepts), o = rates(other, accepts), everyone = rates(all, accepts)
            print(
                "  \(pad(label, 7)) |                  \(pct(a.person))  \(pct(o.person))  \(pct(everyone.person))"
                    + "  |                \(pct(a.phone))  \(pct(o.phone))  \(pct(a.print))  \(pct(o.print))")
            print("          |                                            |                \(pct(a.spoofs))  \(pct(o.spoofs))")
            return (a, o)
        }
        var table: [(t: Float, ea: Rates, other: Rates)] = []
        for t in thresholds {
            let r = rules(t)
            let (a, o) = row(String(format: "%.1f", t)) { r.verdict(.checked($0)) == .real }
            table.append((t, a, o))
        }
        _ = row("argmax") { $0.looksReal }
        do {
            let a = rates(ea) { _ in true }, o = rates(other) { _ in true }
            print(
                "  (checked frames: East-Asian person \(a.person.of), phone \(a.phone.of), print \(a.print.of);"
                    + " other person \(o.person.of), phone \(o.phone.of), print \(o.print.of))")
        }

        // The photos of the tests, as they are and composed as a person; the reference samples as they are.
        let (engine, checker) = try engines(models)
        let shown = rules(defaults.livenessThreshold)
        let testdata = root + "/.testdata"
        let photos = ((try? FileManager.default.contentsOfDirectory(atPath: testdata)) ?? []).filter {
            ["jpg", "jpeg", "png"].contains(($0 as NSString).pathExtension.lowercased())
        }.sorted()
        print("\n.testdata photos, as they are and composed as a person (verdict at the default \(defaults.livenessThreshold))")
        if photos.isEmpty { print("  none: run `make testdata`") }
        for name in photos {
            let path = testdata + "/" + name
            print("  \(name)")
            print("    as it is:  \(describe(checkAsIs(path, engine: engine, checker: checker), rules: shown))")
            print("    as person: \(describe(composed(path, .person, engine: engine, checker: checker), rules: shown))")
        }

        let samples =
            ProcessInfo.processInfo.environment["LIVENESS_SAMPLES"].flatMap { $0.isEmpty ? nil : $0 }
            ?? (root + "/../shared/models/liveness/samples")
        var reference: [String: String] = [:]
        if let data = FileManager.default.contents(atPath: samples + "/expected.json"),
            let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
            let images = json["images"] as? [[String: Any]]
        {
            for im in images {
                if let name = im["image"] as? String, let decision = im["decision"] as? String { reference[name] = decision }
            }
        }
        print("\nreference samples (\(samples)), as they are")
        var sampleResults: [(name: String, outcome: Outcome)] = []
        for name in ["image_F1.jpg", "image_F2.jpg", "image_T1.jpg"] {
            guard FileManager.default.fileExists(atPath: samples + "/" + name) else {
                print("  \(name): missing")
                continue
            }
            let o = checkAsIs(samples + "/" + name, engine: engine, checker: checker)
            sampleResults.append((name, o))
            print("  \(name) (reference \(reference[name] ?? "?")): \(describe(o, rules: shown))")
        }

        // The largest threshold that keeps 99 % of real people on both groups, unless 0.5 passes no more spoofs.
        func keeps(_ row: (t: Float, ea: Rates, other: Rates)) -> Bool {
            rate(row.ea.person) >= 0.99 && rate(row.other.person) >= 0.99
        }
        let half = table.first { abs($0.t - 0.5) < 0.01 }!
        let pick: (t: Float, ea: Rates, other: Rates)
        let why: String
        if let best = table.last(where: keeps) {
            if best.t > half.t && half.ea.spoofs.accepted == best.ea.spoofs.accepted
                && half.other.spoofs.accepted == best.other.spoofs.accepted
            {
                pick = half
                why = String(
                    format: "0.5, the models' own rule: the spoofs separate so well that it passes no more of them than %.1f,"
                        + " the largest threshold keeping 99 %% of real people on both groups", best.t)
            } else {
                pick = best
                why =
                    String(format: "%.1f, the largest threshold keeping 99 %% of real people on both groups", best.t)
                    + (best.t == half.t
                        ? " (0.5 itself)"
                        : best.t < half.t
                            ? "; 0.5 would refuse more than 1 % of one group" : "; it passes fewer spoofs than 0.5")
            }
        } else {
            pick = table[0]
            why = "none: no threshold keeps 99 % of real people on both groups, not even 0.1 (shown)"
        }
        let picked = rules(pick.t)
        print(String(format: "\nsamples at %.1f:", pick.t))
        for s in sampleResults {
            let verdict = s.outcome.result.map { picked.verdict(.checked($0)).label } ?? "not checkable"
            let expected = reference[s.name].map { $0 == "REAL" ? "real" : "spoof" }
            let differs = expected.map { $0 != verdict } ?? false
            let note = differs ? "  <- not the reference decision" : ""
            print("  \(s.name): \(verdict) (reference \(reference[s.name] ?? "?"))\(note)")
        }
        print("recommended: \(why)")
        func pc(_ r: (accepted: Int, of: Int)) -> String { String(format: "%.1f%%", rate(r) * 100) }
        print(
            String(format: "liveness threshold=%.1f", pick.t)
                + " real_accept_EA=\(pc(pick.ea.person)) real_accept_other=\(pc(pick.other.person))"
                + " spoof_pass_EA=\(pc(pick.ea.spoofs)) spoof_pass_other=\(pc(pick.other.spoofs))")
    }
}
