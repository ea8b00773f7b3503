import CSimdKernels

/// How a gallery keeps its rows for the scan.
///
/// The float32 matrix is always kept: the compact forms only *select candidates*
/// and the candidates are re-ranked in float32 with the same arithmetic as the
/// float scan. The candidate window is derived from a bound on the quantisation
/// error, so the answer equals the float32 search exactly (not just usually);
/// the price is 25 % (int8) or 50 % (fp16) more memory.
public enum GalleryStorage: UInt8, Sendable, CaseIterable {
    /// Scan the float32 matrix (4 bytes per value).
    case float32 = 0
    /// Scan an int8 copy (1 byte per value + a scale per row), re-rank in float32.
    case int8 = 1
    /// Scan an IEEE half copy (2 bytes per value), re-rank in float32.
    case float16 = 2
}

/// An immutable view of the gallery, safe to share between threads.
///
/// Readers (one per camera) keep a snapshot for as long as they like; enrolment
/// publishes a new one and never changes this one.
public final class GallerySnapshot: Sendable {
    public static let maxDimension = 4096

    /// Length of the embeddings.
    public let dimension: Int
    public let storage: GalleryStorage
    /// Increases by one with every snapshot a `Gallery` publishes.
    public let version: UInt64
    /// Student identifiers; `rowStudent` indexes into it.
    public let students: [String]

    /// Floats per row in the matrix (dimension rounded up to 32; the padding is 0).
    let stride: Int
    let rowStudent: [UInt32]
    /// The rows as enrolled (not normalised).
    let floats: AlignedBuffer<Float>
    /// `-|row|^2 / 2` per row: the kernels' score `q.r - |r|^2/2` ranks rows by Euclidean distance.
    let bias: AlignedBuffer<Float>
    /// The largest row norm (bounds the compact scans' error).
    let maxNorm: Float
    let compact: Compact?

    /// The int8 or fp16 copy of the matrix and its error bound.
    struct Compact: Sendable {
        let int8: AlignedBuffer<Int8>?
        let scales: [Float]
        let half: AlignedBuffer<UInt16>?
        /// Largest L2 distance between a row and its dequantised copy.
        let maxRowError: Float
    }

    /// Number of enrolled embeddings (rows).
    public var count: Int { rowStudent.count }
    /// Number of distinct students.
    public var studentCount: Int { students.count }

    /// An empty gallery.
    public convenience init(dimension: Int = Embedding.dlibDimension, storage: GalleryStorage = .float32) throws {
        try self.init(
            dimension: dimension, storage: storage, version: 0, students: [], rowStudent: [],
            floats: AlignedBuffer(count: 0))
    }

    /// `floats` must hold `rowStudent.count` finite rows of `stride(for: dimension)` floats, zero-padded.
    init(
        dimension: Int, storage: GalleryStorage, version: UInt64, students: [String], rowStudent: [UInt32],
        floats: AlignedBuffer<Float>
    ) throws {
        guard dimension >= 1, dimension <= Self.maxDimension else { throw FaceMatchError.invalidDimension(dimension) }
        self.dimension = dimension
        self.storage = storage
        self.version = version
        self.students = students
        self.rowStudent = rowStudent
        self.stride = Self.stride(for: dimension)
        self.floats = floats
        let rows = rowStudent.count, stride = self.stride
        let bias = AlignedBuffer<Float>(count: rows)
        var largest = 0.0
        for r in 0..<rows {
            let x = floats.pointer + r * stride
            var s = 0.0
            for i in 0..<stride { s += Double(x[i]) * Double(x[i]) }
            bias.pointer[r] = Float(-s / 2)
            largest = max(largest, s)
        }
        self.bias = bias
        self.maxNorm = Float(largest.squareRoot())
        self.compact = Self.makeCompact(storage, floats: floats, rows: rowStudent.count, stride: stride)
    }

    static func stride(for dimension: Int) -> Int { (dimension + 31) / 32 * 32 }

    private static func makeCompact(
        _ storage: GalleryStorage, floats: AlignedBuffer<Float>, rows: Int,
        stride: Int
    ) -> Compact? {
        switch storage {
        case .float32:
            return nil
        case .int8:
            let q = AlignedBuffer<Int8>(count: rows * stride)
            var scales = [Float](repeating: 0, count: rows)
            var worst = 0.0
            for r in 0..<rows {
                let x = floats.pointer + r * stride
                let y = q.pointer + r * stride
                var amax: Float = 0
                for i in 0..<stride { amax = max(amax, abs(x[i])) }
                let scale = amax > 0 ? amax / 127 : 1
                var err = 0.0
                for i in 0..<stride {
                    let v = Int8(max(-127, min(127, (x[i] / scale).rounded())))
                    y[i] = v
                    let e = Double(x[i]) - Double(scale) * Double(v)
                    err += e * e
                }
                scales[r] = scale
                worst = max(worst, err.squareRoot())
            }
            return Compact(int8: q, scales: scales, half: nil, maxRowError: Float(worst))
        case .float16:
            let h = AlignedBuffer<UInt16>(count: rows * stride)
            fm_f32_to_f16(floats.pointer, h.pointer, rows * stride)
            var back = [Float](repeating: 0, count: stride)
            var worst = 0.0
            for r in 0..<rows {
                fm_f16_to_f32(h.pointer + r * stride, &back, stride)
                var err = 0.0
                for i in 0..<stride {
                    let e = Double(floats.pointer[r * stride + i]) - Double(back[i])
                    err += e * e
                }
                worst = max(worst, err.squareRoot())
            }
            // Values beyond half's range (65504) become infinite: such a gallery is scanned in float32.
            guard worst.isFinite, Float(worst).isFinite else { return nil }
            return Compact(int8: nil, scales: [], half: h, maxRowError: Float(worst))
        }
    }

    /// The embeddings enrolled for a student, as enrolled, in enrolment order.
    public func embeddings(of student: String) -> [Embedding] {
        guard let s = students.firstIndex(of: student) else { return [] }
        return (0..<count).filter { rowStudent[$0] == UInt32(s) }.map { row($0) }
    }

    /// Row `r` as stored.
    func row(_ r: Int) -> Embedding {
        Embedding(Array(UnsafeBufferPointer(start: floats.pointer + r * stride, count: dimension)))
    }

    // MARK: - Search

    /// The `k` closest *students* to `query`, closest first, by Euclidean distance
    /// between the vectors as given (for dlib descriptors: dlib's own metric, the one
    /// its 0.6 threshold means).
    ///
    /// Each student is represented by its closest enrolled embedding and appears
    /// at most once; ties in distance go to the student enrolled first (lower row).
    /// An empty gallery returns `[]` ("no match").
    /// With int8 / fp16 storage the compact copy is scanned and the candidates are
    /// re-ranked in float32: the result is identical to the float32 search.
    /// - Throws: `FaceMatchError.dimensionMismatch`, `.invalidK`, `.notFinite`, `.zeroVector`.
    public func search(_ query: Embedding, k: Int = 1) throws -> [Match] {
        try search(batch: [query], k: k)[0]
    }

    /// `search(_:k:)` for several faces of one frame, in one pass over the gallery.
    /// With int8 / fp16 storage, batches of 4 or more scan the float32 matrix
    /// (one pass for all queries beats one compact pass per query).
    public func search(batch queries: [Embedding], k: Int = 1) throws -> [[Match]] {
        let compactPath = compact != nil && queries.count < 4
        return try search(batch: queries, k: k, useCompact: compactPath)
    }

    /// The float32 scan (`useCompact == false`) or the compact scan + re-rank.
    func search(batch queries: [Embedding], k: Int, useCompact: Bool) throws -> [[Match]] {
        guard k >= 1 else { throw FaceMatchError.invalidK(k) }
        for q in queries where q.dimension != dimension {
            throw FaceMatchError.dimensionMismatch(expected: dimension, actual: q.dimension)
        }
        if queries.isEmpty { return [] }
        var padded = [Float](repeating: 0, count: queries.count * stride)
        var squares = [Float](repeating: 0, count: queries.count)
        for (j, q) in queries.enumerated() {
            squares[j] = try q.validatedSquaredNorm()
            for i in 0..<dimension { padded[j * stride + i] = q.values[i] }
        }
        if count == 0 { return Array(repeating: [], count: queries.count) }
        let m = k + 1 // one more student than asked, for the margin
        var hits = [fm_hit](repeating: fm_hit(), count: queries.count * m)
        var counts = [Int](repeating: 0, count: queries.count)
        if useCompact, let compact {
            for j in 0..<queries.count {
                let n = padded.withUnsafeBufferPointer { p in
                    hits.withUnsafeMutableBufferPointer { h in
                        compactSearch(
                            compact, query: p.baseAddress! + j * stride, squaredNorm: squares[j], m: m,
                            hits: h.baseAddress! + j * m)
                    }
                }
                counts[j] = n
            }
        } else {
            rowStudent.withUnsafeBufferPointer { rs in
                fm_search_f32(
                    floats.pointer, bias.pointer, count, stride, rs.baseAddress, padded, queries.count, m,
                    &hits, &counts)
            }
        }
        return padded.withUnsafeBufferPointer { p in
            (0..<queries.count).map { j in
                matches(hits[(j * m)..<(j * m + counts[j])], k: k, query: p.baseAddress! + j * stride)
            }
        }
    }

    /// Candidates from the compact copy, re-ranked in float32. Returns the number of hits.
    private func compactSearch(
        _ c: Compact, query: UnsafePointer<Float>, squaredNorm: Float, m: Int,
        hits: UnsafeMutablePointer<fm_hit>
    ) -> Int {
        // |exact - approximate| <= eps for every row; rows within 2 eps of the m-th
        // student's approximate score may belong to the exact answer. The bias is the
        // same float in both scans, so only the dot products differ:
        // |r.q - r~.q~| <= |r - r~| |q| + |r~| |q - q~|. The slack covers float rounding
        // in both scans (about 1e-5 for d = 128 and unit vectors; it grows with the norms).
        let qn = squaredNorm.squareRoot()
        let slack: Float = (1e-4 + Float(stride) * 2e-7) * max(1, maxNorm * qn, maxNorm * maxNorm)
        let cap = min(count, 1 << 14)
        var cand = [UInt32](repeating: 0, count: cap)
        var found = -1
        rowStudent.withUnsafeBufferPointer { rs in
            if let q8 = c.int8 {
                var amax: Float = 0
                for i in 0..<stride { amax = max(amax, abs(query[i])) }
                let qscale = amax / 127
                var qi = [Int8](repeating: 0, count: stride)
                var qerr = 0.0
                for i in 0..<stride {
                    let v = Int8(max(-127, min(127, (query[i] / qscale).rounded())))
                    qi[i] = v
                    let e = Double(query[i]) - Double(qscale) * Double(v)
                    qerr += e * e
                }
                let ex = c.maxRowError, eq = Float(qerr.squareRoot())
                let eps = ex * qn + eq * (maxNorm + ex) + slack
                found = c.scales.withUnsafeBufferPointer { sc in
                    fm_scan_i8(
                        q8.pointer, sc.baseAddress, bias.pointer, count, stride, rs.baseAddress, qi, qscale, m,
                        2 * eps, &cand, cap)
                }
            } else if let h = c.half {
                let eps = c.maxRowError * qn + slack
                found = fm_scan_f16(h.pointer, bias.pointer, count, stride, rs.baseAddress, query, m, 2 * eps, &cand, cap)
            }
        }
        var n = 0
        rowStudent.withUnsafeBufferPointer { rs in
            if found < 0 { // too many near-ties for the window: scan the floats
                fm_search_f32(floats.pointer, bias.pointer, count, stride, rs.baseAddress, query, 1, m, hits, &n)
            } else {
                fm_rerank_f32(floats.pointer, bias.pointer, stride, rs.baseAddress, cand, found, query, m, hits, &n)
            }
        }
        return n
    }

    /// The Euclidean distance between the query and row `r`, summed in Double. The scan ranks by
    /// `q.r - |r|^2/2`, which is exact as an order but loses digits as a distance (|q|^2 - 2 score
    /// cancels: a face against its own row would read 0.0005 instead of 0), so the few rows returned
    /// get their distance recomputed directly.
    func distance(row r: Int, query: UnsafePointer<Float>) -> Float {
        Embedding.distance(floats.pointer + r * stride, query, count: dimension)
    }

    /// The hits (best distinct students by the scan) as matches, ordered by their exact distance (ties:
    /// the earlier row), with margins; the extra hit beyond `k` only serves the margin.
    func matches(_ hits: ArraySlice<fm_hit>, k: Int, query: UnsafePointer<Float>) -> [Match] {
        let ranked = hits.map { (hit: $0, distance: distance(row: Int($0.row), query: query)) }
            .sorted { $0.distance != $1.distance ? $0.distance < $1.distance : $0.hit.row < $1.hit.row }
        let d = ranked.map(\.distance)
        let top = min(k, ranked.count)
        return (0..<top).map { i in
            let margin: Float
            if i == 0 { margin = d.count > 1 ? d[1] - d[0] : .infinity } else { margin = d[0] - d[i] }
            return Match(student: students[Int(ranked[i].hit.student)], distance: d[i], margin: margin)
        }
    }
}
