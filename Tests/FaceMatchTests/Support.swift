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

/// The obvious algorithm the kernels must reproduce: the Euclidean distance from the query to
/// every row as given (in Double), each student's closest row (the earliest on ties), ordered by
/// distance then row, take k.
func naiveSearch(rows: [[Float]], students: [String], query: [Float], k: Int) -> [Match] {
    var best: [String: (distance: Double, row: Int)] = [:]
    for (r, row) in rows.enumerated() {
        let d = zip(row, query).reduce(0.0) { $0 + (Double($1.0) - Double($1.1)) * (Double($1.0) - Double($1.1)) }
        if let b = best[students[r]], b.distance <= d { continue }
        best[students[r]] = (d, r)
    }
    let ranked = best.map { (student: $0.key, distance: $0.value.distance, row: $0.value.row) }
        .sorted { $0.distance != $1.distance ? $0.distance < $1.distance : $0.row < $1.row }
    let dist = ranked.map { Float($0.distance.squareRoot()) }
    return (0..<min(k, ranked.count)).map { i in
        let margin: Float = i == 0 ? (dist.count > 1 ? dist[1] - dist[0] : .infinity) : dist[0] - dist[i]
        return Match(student: ranked[i].student, distance: dist[i], margin: margin)
    }
}

extension SplitMix64 {
    /// A vector shaped like a dlib descriptor: a random direction with a norm around 1.38
    /// (measured on dlib's ResNet) that varies by a few per cent, so unit-vector and raw
    /// rankings can differ.
    mutating func dlibLikeVector(_ d: Int) -> [Float] {
        let g = gaussianVector(d)
        let n = g.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
        let norm = 1.38 + 0.05 * Double(gaussian())
        return g.map { Float(Double($0) / n * norm) }
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
