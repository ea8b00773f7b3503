import AttendanceTesting
import CSimdKernels
import Foundation
@testable import FaceMatch

/// Test data from the shared seeded generator (AttendanceTesting).
extension SplitMix64 {
    /// A unit vector whose dot products with its kind are exact in float in any
    /// summation order: 16 components of +-0.25, the rest 0. Dots are multiples of
    /// 1/16, so ties are frequent and every kernel must agree bit for bit.
    mutating func exactUnitVector(_ d: Int, support: Int = 32) -> [Float] {
        var v = [Float](repeating: 0, count: d)
        var placed = 0
        while placed < 16 {
            let i = int(min(support, d))
            if v[i] == 0 {
                v[i] = next() & 1 == 0 ? 0.25 : -0.25
                placed += 1
            }
        }
        return v
    }
}

/// The obvious algorithm the kernels must reproduce: score every row, keep each
/// student's best row (the earliest on ties), order by score then row, take k.
func naiveSearch(rows: [[Float]], students: [String], query: [Float], k: Int) -> [Match] {
    func dot(_ a: [Float], _ b: [Float]) -> Double { zip(a, b).reduce(0.0) { $0 + Double($1.0) * Double($1.1) } }
    let qn = dot(query, query).squareRoot()
    let q = query.map { Float(Double($0) / qn) }
    var best: [String: (score: Float, row: Int)] = [:]
    for (r, raw) in rows.enumerated() {
        let rn = dot(raw, raw).squareRoot()
        let row = raw.map { Float(Double($0) / rn) }
        let s = Float(dot(row, q))
        if let b = best[students[r]], b.score >= s { continue }
        best[students[r]] = (s, r)
    }
    let ranked = best.map { (student: $0.key, score: $0.value.score, row: $0.value.row) }
        .sorted { $0.score != $1.score ? $0.score > $1.score : $0.row < $1.row }
    let dist = ranked.map { GallerySnapshot.distance(score: $0.score) }
    return (0..<min(k, ranked.count)).map { i in
        let margin: Float = i == 0 ? (dist.count > 1 ? dist[1] - dist[0] : .infinity) : dist[0] - dist[i]
        return Match(student: ranked[i].student, distance: dist[i], margin: margin)
    }
}

/// Runs `body` once per instruction set this CPU has, restoring the default after.
func forEachSimdLevel(_ body: (SimdLevel) throws -> Void) rethrows {
    defer { SimdLevel.force(nil) }
    for level in SimdLevel.available {
        precondition(SimdLevel.force(level))
        try body(level)
    }
}
