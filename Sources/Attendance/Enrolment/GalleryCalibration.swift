import AttendanceCore
import FaceMatch
import Foundation

/// What a school's own enrolled faces say about its recognition: the distances between *different*
/// students (the school's impostor distribution), the threshold that distribution implies for a
/// target false-accept rate, and the look-alike pairs.
///
/// How the numbers are derived: for every pair of different students, the smallest L2 distance
/// between any enrolled face of one and any of the other (raw dlib descriptors, the metric of
/// `recognition.threshold`). That is the distance at which a photo of one would first be taken for
/// the other. The share of pairs under a threshold is the per-pair false-accept rate; a face of a
/// stranger (or a student not enrolled) is compared with every student, so the chance that it falls
/// under the threshold for someone grows with the school's size.
public struct GalleryCalibration: Sendable {
    public struct Pair: Sendable, Equatable {
        public var a: String
        public var b: String
        public var distance: Float
    }

    public let students: Int
    public let embeddings: Int
    /// Every different-student pair's distance, ascending.
    public let impostorDistances: [Float]
    /// Each student's nearest other student (their risk radius), as the gate uses it.
    public let nearestOther: [String: (student: String, distance: Float)]
    /// Pairs closer than `closePairLimit`, closest first.
    let closePairs: [Pair]
    /// Wider than any sensible threshold plus margin (dlib's 0.6 + 0.2).
    static let closePairLimit: Float = 0.8

    public init(rows: [(student: String, embedding: [Float])]) {
        var order: [String] = []
        var byStudent: [String: [[Float]]] = [:]
        for r in rows {
            if byStudent[r.student] == nil { order.append(r.student) }
            byStudent[r.student, default: []].append(r.embedding)
        }
        students = order.count
        embeddings = rows.count
        var distances: [Float] = []
        distances.reserveCapacity(order.count * max(0, order.count - 1) / 2)
        var nearest: [String: (student: String, distance: Float)] = [:]
        var close: [Pair] = []
        let faces = order.map { byStudent[$0]!.map(Embedding.init) }
        for i in 0..<order.count {
            for j in (i + 1)..<max(i + 1, order.count) {
                var d = Float.infinity
                for a in faces[i] { for b in faces[j] { d = min(d, (try? Embedding.distance(a, b)) ?? .infinity) } }
                distances.append(d)
                if d < Self.closePairLimit {
                    close.append(Pair(a: min(order[i], order[j]), b: max(order[i], order[j]), distance: d))
                }
                if d < nearest[order[i]]?.distance ?? .infinity { nearest[order[i]] = (order[j], d) }
                if d < nearest[order[j]]?.distance ?? .infinity { nearest[order[j]] = (order[i], d) }
            }
        }
        impostorDistances = distances.sorted()
        nearestOther = nearest
        closePairs = close.sorted { ($0.distance, $0.a, $0.b) < ($1.distance, $1.a, $1.b) }
    }

    /// Share of different-student pairs closer than `threshold`.
    public func falseAcceptRate(at threshold: Float) -> Double {
        guard !impostorDistances.isEmpty else { return 0 }
        var lo = 0, hi = impostorDistances.count
        while lo < hi { let m = (lo + hi) / 2; if impostorDistances[m] < threshold { lo = m + 1 } else { hi = m } }
        return Double(lo) / Double(impostorDistances.count)
    }

    /// The largest threshold whose per-pair false-accept rate stays at or under `rate` (nil: too few pairs
    /// to tell: fewer than 1 / rate).
    public func threshold(forFalseAcceptRate rate: Double) -> Float? {
        guard rate > 0, Double(impostorDistances.count) * rate >= 1 else { return nil }
        let k = Int((Double(impostorDistances.count) * rate).rounded(.down))
        return impostorDistances[min(k, impostorDistances.count - 1)]
    }

    /// The `q`-quantile of the impostor distances (0...1).
    public func quantile(_ q: Double) -> Float? {
        guard !impostorDistances.isEmpty else { return nil }
        let i = min(impostorDistances.count - 1, max(0, Int((Double(impostorDistances.count - 1) * q).rounded())))
        return impostorDistances[i]
    }

    /// Pairs of students the gate treats as look-alikes under these rules (closer than threshold + margin),
    /// closest first: siblings, twins, a photo enrolled under the wrong name.
    public func lookalikes(_ rules: RecognitionRules) -> [Pair] {
        closePairs.filter { rules.isLookalike(nearestOther: $0.distance) }
    }
}

extension GalleryCalibration {
    /// The calibration of the school's enrolled faces now. Audited (counts only): when the audit log refuses the
    /// entry, this throws and nothing is shown.
    public static func check(_ store: AttendanceStore) throws -> GalleryCalibration {
        let c = GalleryCalibration(rows: try store.enrolments.recognisable())
        let lookalikes = c.lookalikes(RecognitionRules(store.config.recognition))
        do {
            try store.auditLog.append(
                action: "gallery-check", subject: nil, detail: "students=\(c.students); lookalike_pairs=\(lookalikes.count)")
        } catch {
            throw StoreError.invalid("the audit log refused the entry, so nothing is shown: \(error)")
        }
        return c
    }
}
