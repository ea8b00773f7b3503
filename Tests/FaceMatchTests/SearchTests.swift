import AttendanceTesting
import CSimdKernels
import XCTest

@testable import FaceMatch

final class SearchTests: XCTestCase {
    /// Exact-arithmetic data: every kernel, storage, batch size and k must give
    /// exactly the naive answer, ties included.
    func testExactAgreementWithNaiveReferenceIncludingTies() throws {
        var rng = SplitMix64(state: 7)
        let d = 128
        let rowCount = 613 // not a multiple of 8: the tail path runs
        var rows: [[Float]] = [], owners: [String] = []
        for _ in 0..<rowCount {
            rows.append(rng.exactUnitVector(d))
            owners.append("student-\(rng.int(157))")
        }
        // Exact duplicates of earlier rows for other students: equal scores, the earlier row must win.
        for r in 0..<20 {
            rows.append(rows[r * 3])
            owners.append("dup-\(r % 7)")
        }
        let queries = (0..<24).map { i in i % 3 == 0 ? rows[rng.int(rows.count)] : rng.exactUnitVector(d) }
        let expected = [1, 2, 5, 16].map { k in queries.map { naiveSearch(rows: rows, students: owners, query: $0, k: k) } }
        var sawTie = false
        for list in expected[3] {
            for i in 1..<list.count where list[i].distance == list[i - 1].distance { sawTie = true }
        }
        XCTAssertTrue(sawTie, "the data must contain ties for this test to mean anything")

        for storage in GalleryStorage.allCases {
            let gallery = try Gallery(dimension: d, storage: storage)
            try gallery.add(zip(owners, rows).map { GalleryEntry(student: $0, embedding: Embedding($1)) })
            let snap = gallery.snapshot()
            XCTAssertEqual(snap.count, rows.count)
            try forEachSimdLevel { level in
                for (ki, k) in [1, 2, 5, 16].enumerated() {
                    for (qi, q) in queries.enumerated() {
                        XCTAssertEqual(
                            try snap.search(Embedding(q), k: k), expected[ki][qi], "\(storage) \(level) k=\(k) q=\(qi)")
                    }
                    for batch in [2, 3, 4, 5, 8, 11] {
                        let got = try snap.search(batch: Array(queries.prefix(batch)).map(Embedding.init), k: k)
                        XCTAssertEqual(got, Array(expected[ki].prefix(batch)), "\(storage) \(level) k=\(k) batch=\(batch)")
                    }
                }
            }
        }
    }

    /// Galleries past 4 MB take the prefetching, row-after-row path of the kernels.
    func testLargeGalleryPathAgreesWithNaiveReference() throws {
        var rng = SplitMix64(state: 17)
        let d = 128, n = 9_003 // 4.6 MB of floats
        var rows: [[Float]] = [], owners: [String] = []
        for _ in 0..<n {
            rows.append(rng.exactUnitVector(d))
            owners.append("s\(rng.int(2_000))")
        }
        let gallery = try Gallery(dimension: d)
        try gallery.add(zip(owners, rows).map { GalleryEntry(student: $0, embedding: Embedding($1)) })
        let snap = gallery.snapshot()
        let queries = (0..<6).map { i in i % 2 == 0 ? rows[rng.int(n)] : rng.exactUnitVector(d) }
        let expected = queries.map { naiveSearch(rows: rows, students: owners, query: $0, k: 3) }
        try forEachSimdLevel { level in
            for (i, q) in queries.enumerated() {
                XCTAssertEqual(try snap.search(Embedding(q), k: 3), expected[i], "\(level) query \(i)")
            }
            XCTAssertEqual(try snap.search(batch: queries.map(Embedding.init), k: 3), expected, "\(level) batch")
        }
    }

    /// Random float data: the answer matches a Double-precision reference wherever
    /// the reference is not a near-tie, and the portable kernels agree bit for bit.
    func testRandomDataMatchesReferenceAndKernelsAgree() throws {
        var rng = SplitMix64(state: 11)
        let d = 128
        var rows: [[Float]] = [], owners: [String] = []
        for _ in 0..<1_001 {
            rows.append(rng.gaussianVector(d))
            owners.append("s\(rng.int(300))")
        }
        let gallery = try Gallery(dimension: d)
        try gallery.add(zip(owners, rows).map { GalleryEntry(student: $0, embedding: Embedding($1)) })
        let snap = gallery.snapshot()
        let queries = (0..<40).map { _ in Embedding(rng.gaussianVector(d)) }
        let k = 8
        for q in queries {
            let reference = naiveSearch(rows: rows, students: owners, query: q.values, k: k)
            let got = try snap.search(q, k: k)
            XCTAssertEqual(got.count, reference.count)
            for i in 0..<got.count {
                XCTAssertEqual(got[i].distance, reference[i].distance, accuracy: 2e-5)
                let nearTie =
                    (i > 0 && abs(reference[i].distance - reference[i - 1].distance) < 1e-4)
                    || (i + 1 < reference.count && abs(reference[i + 1].distance - reference[i].distance) < 1e-4)
                if !nearTie { XCTAssertEqual(got[i].student, reference[i].student) }
            }
        }
        // scalar, AVX2 and NEON use one summation order: identical results.
        let baseline = try queries.map { q -> [Match] in
            SimdLevel.force(.scalar)
            defer { SimdLevel.force(nil) }
            return try snap.search(q, k: k)
        }
        try forEachSimdLevel { level in
            guard level != .avx512 else { return } // its own (wider) summation order
            XCTAssertEqual(try queries.map { try snap.search($0, k: k) }, baseline, "\(level)")
            XCTAssertEqual(try snap.search(batch: queries, k: k), baseline, "\(level) batch")
        }
    }

    func testEmptyGalleryAnswersNoMatch() throws {
        let snap = try Gallery().snapshot()
        XCTAssertEqual(snap.count, 0)
        XCTAssertEqual(snap.studentCount, 0)
        XCTAssertEqual(try snap.search(Embedding([Float](repeating: 0.5, count: 128)), k: 3), [])
        XCTAssertEqual(try snap.search(batch: [Embedding([Float](repeating: 1, count: 128))], k: 1), [[]])
        XCTAssertEqual(try snap.search(batch: [], k: 1), [])
        for storage in GalleryStorage.allCases {
            XCTAssertEqual(try Gallery(storage: storage).snapshot().search(Embedding([Float](repeating: 1, count: 128))), [])
        }
    }

    func testInvalidInputsAreErrors() throws {
        let gallery = try Gallery(dimension: 128)
        try gallery.add(student: "a", embedding: Embedding([Float](repeating: 1, count: 128)))
        let snap = gallery.snapshot()
        XCTAssertThrowsError(try snap.search(Embedding([Float](repeating: 1, count: 127)))) {
            XCTAssertEqual($0 as? FaceMatchError, .dimensionMismatch(expected: 128, actual: 127))
        }
        XCTAssertThrowsError(try snap.search(batch: [Embedding([Float](repeating: 1, count: 128)), Embedding([1, 2])], k: 1)) {
            XCTAssertEqual($0 as? FaceMatchError, .dimensionMismatch(expected: 128, actual: 2))
        }
        XCTAssertThrowsError(try snap.search(Embedding([Float](repeating: 1, count: 128)), k: 0)) {
            XCTAssertEqual($0 as? FaceMatchError, .invalidK(0))
        }
        XCTAssertThrowsError(try snap.search(Embedding([Float](repeating: 0, count: 128)))) {
            XCTAssertEqual($0 as? FaceMatchError, .zeroVector)
        }
        XCTAssertThrowsError(try gallery.add(student: "b", embedding: Embedding([Float](repeating: 1, count: 64)))) {
            XCTAssertEqual($0 as? FaceMatchError, .dimensionMismatch(expected: 128, actual: 64))
        }
        var nan = [Float](repeating: 1, count: 128)
        nan[5] = .nan
        XCTAssertThrowsError(try gallery.add(student: "b", embedding: Embedding(nan))) {
            XCTAssertEqual($0 as? FaceMatchError, .notFinite)
        }
        XCTAssertThrowsError(try gallery.add(student: "b", embedding: Embedding([Float](repeating: 1e17, count: 128)))) {
            XCTAssertEqual($0 as? FaceMatchError, .notFinite, "a length whose square leaves float's range")
        }
        XCTAssertEqual(gallery.snapshot().count, 1, "a failed change publishes nothing")
        // Values beyond half precision's range: the fp16 gallery scans its floats instead, and still answers.
        let wide = try Gallery(dimension: 4, storage: .float16)
        try wide.add([
            GalleryEntry(student: "big", embedding: Embedding([1e5, 0, 0, 0])),
            GalleryEntry(student: "small", embedding: Embedding([1, 0, 0, 0])),
        ])
        XCTAssertEqual(try wide.snapshot().search(Embedding([9e4, 0, 0, 0]), k: 2).map(\.student), ["big", "small"])
        XCTAssertThrowsError(try Gallery(dimension: 0))
    }

    /// Several rows per student: the best row represents the student; margins and
    /// distances have the documented meaning.
    func testStudentsWithSeveralEmbeddingsAndMargins() throws {
        let gallery = try Gallery(dimension: 4)
        try gallery.add([
            GalleryEntry(student: "an", embedding: Embedding([1, 0, 0, 0])),
            GalleryEntry(student: "binh", embedding: Embedding([0, 1, 0, 0])),
            GalleryEntry(student: "an", embedding: Embedding([0, 0, 1, 0])),
            GalleryEntry(student: "chi", embedding: Embedding([0.6, 0.8, 0, 0])),
        ])
        let snap = gallery.snapshot()
        XCTAssertEqual(snap.count, 4)
        XCTAssertEqual(snap.studentCount, 3)
        let m = try snap.search(Embedding([0, 0, 1, 0]), k: 5) // an's second row; binh and chi tie (binh enrolled first)
        XCTAssertEqual(m.map(\.student), ["an", "binh", "chi"])
        XCTAssertEqual(m[0].distance, 0)
        XCTAssertEqual(m[1].distance, Float(2).squareRoot(), accuracy: 1e-6)
        XCTAssertEqual(m[0].margin, m[1].distance - m[0].distance)
        XCTAssertEqual(m[1].margin, m[0].distance - m[1].distance)
        // Distances are between the vectors as given, not their directions.
        let far = try snap.search(Embedding([0, 0, 2, 0]), k: 1)
        XCTAssertEqual(far.first?.student, "an")
        XCTAssertEqual(far.first?.distance ?? 0, 1, accuracy: 1e-6)
        XCTAssertEqual(try snap.search(Embedding([0.6, 0.8, 0, 0]), k: 1).map(\.student), ["chi"])

        XCTAssertEqual(gallery.remove(student: "an"), 2)
        XCTAssertEqual(gallery.remove(student: "nobody"), 0)
        let after = gallery.snapshot()
        XCTAssertEqual(after.studentCount, 2)
        XCTAssertEqual(try after.search(Embedding([0, 0, 1, 0]), k: 5).map(\.student).sorted(), ["binh", "chi"])
        XCTAssertEqual(snap.count, 4, "an old snapshot never changes")

        try gallery.replaceAll([GalleryEntry(student: "dung", embedding: Embedding([0, 0, 0, 1]))])
        let only = try gallery.snapshot().search(Embedding([0, 0, 0, 1]), k: 3)
        XCTAssertEqual(only, [Match(student: "dung", distance: 0, margin: .infinity)])
        XCTAssertGreaterThan(gallery.snapshot().version, after.version)
        XCTAssertEqual(gallery.snapshot().embeddings(of: "dung"), [Embedding([0, 0, 0, 1])])
    }

    /// int8 and fp16 scans return exactly the float32 answer, and find the enrolled
    /// student for every genuine query (an enrolled embedding plus noise).
    func testCompactStorageRecallAndExactness() throws {
        var rng = SplitMix64(state: 3)
        let d = 128, n = 4_000
        var entries: [GalleryEntry] = []
        for r in 0..<n { entries.append(GalleryEntry(student: "s\(r / 2)", embedding: Embedding(rng.dlibLikeVector(d)))) }
        let float = try Gallery(dimension: d)
        try float.replaceAll(entries)
        let fsnap = float.snapshot()
        var queries: [Embedding] = [], truth: [String] = []
        for _ in 0..<200 {
            let r = rng.int(n)
            let x = entries[r].embedding.values
            let sigma: Float = 0.4 / Float(d).squareRoot() // distance about 0.4: dlib's same-person range
            queries.append(Embedding((0..<d).map { x[$0] + sigma * rng.gaussian() }))
            truth.append(entries[r].student)
        }
        // Strangers too (no enrolled face): the exactness must hold for them as well.
        for _ in 0..<50 { queries.append(Embedding(rng.dlibLikeVector(d))) }
        for storage in [GalleryStorage.int8, .float16] {
            let g = try Gallery(dimension: d, storage: storage)
            try g.replaceAll(entries)
            let snap = g.snapshot()
            try forEachSimdLevel { level in
                var hits = 0
                for (i, q) in queries.enumerated() {
                    let got = try snap.search(q, k: 5)
                    XCTAssertEqual(got, try fsnap.search(q, k: 5), "\(storage) \(level) query \(i)")
                    if i < truth.count, got.first?.student == truth[i] { hits += 1 }
                }
                XCTAssertEqual(hits, truth.count, "recall@1 of \(storage) on \(level)")
            }
        }
    }

    /// The answer is in the raw metric even where the directions say otherwise: a longer row at a
    /// smaller angle loses to a shorter one that is nearer (dlib's descriptors differ in norm by a
    /// few per cent, enough to reorder close students), and a student is represented by their
    /// nearest row in that metric.
    func testAnswersInTheRawMetricWhereDirectionsDisagree() throws {
        let a: [Float] = [1, 0], b: [Float] = [3, 1], q: [Float] = [1.2, 0.3]
        for storage in GalleryStorage.allCases {
            let g = try Gallery(dimension: 2, storage: storage)
            try g.add([
                GalleryEntry(student: "b", embedding: Embedding(b)), GalleryEntry(student: "a", embedding: Embedding(a)),
                GalleryEntry(student: "a", embedding: Embedding([0.5, 0.5])),
            ])
            let got = try g.snapshot().search(Embedding(q), k: 2)
            XCTAssertEqual(got.map(\.student), ["a", "b"], "\(storage)")
            XCTAssertEqual(got[0].distance, try Embedding.distance(Embedding(q), Embedding(a)), accuracy: 1e-6)
            XCTAssertEqual(got[1].distance, try Embedding.distance(Embedding(q), Embedding(b)), accuracy: 1e-6)
            XCTAssertEqual(got[0].margin, got[1].distance - got[0].distance, accuracy: 1e-6)
        }
        // The unit directions rank b first: the old behaviour this replaces.
        let unitQ = try Embedding(q).normalized(), unitA = try Embedding(a).normalized(), unitB = try Embedding(b).normalized()
        XCTAssertLessThan(try Embedding.distance(unitQ, unitB), try Embedding.distance(unitQ, unitA))
    }

    func testOtherDimensionsArePadded() throws {
        var rng = SplitMix64(state: 5)
        for d in [2, 3, 33, 512] { // (d = 1 would make every vector +-1: all ties)
            var rows: [[Float]] = [], owners: [String] = []
            for i in 0..<37 {
                rows.append(rng.gaussianVector(d))
                owners.append("p\(i % 13)")
            }
            for storage in GalleryStorage.allCases {
                let g = try Gallery(dimension: d, storage: storage)
                try g.add(zip(owners, rows).map { GalleryEntry(student: $0, embedding: Embedding($1)) })
                let q = rows[5]
                let got = try g.snapshot().search(Embedding(q), k: 3)
                XCTAssertEqual(got.first?.student, owners[5], "d=\(d) \(storage)")
                XCTAssertEqual(got.first?.distance ?? 1, 0, accuracy: 1e-3)
            }
        }
    }

    func testHalfConversion() {
        var h: [UInt16] = [0]
        fm_f32_to_f16([1.0], &h, 1)
        XCTAssertEqual(h[0], 0x3C00)
        fm_f32_to_f16([65504], &h, 1)
        XCTAssertEqual(h[0], 0x7BFF)
        fm_f32_to_f16([-0.5], &h, 1)
        XCTAssertEqual(h[0], 0xB800)
        fm_f32_to_f16([1e-9], &h, 1)
        XCTAssertEqual(h[0], 0)
        // Every finite half survives half -> float -> half.
        let all = (0...UInt16.max).filter { ($0 & 0x7C00) != 0x7C00 }
        var f = [Float](repeating: 0, count: all.count)
        var back = [UInt16](repeating: 0, count: all.count)
        fm_f16_to_f32(all, &f, all.count)
        fm_f32_to_f16(f, &back, all.count)
        XCTAssertEqual(back, all)
        XCTAssertEqual(f[Int(all.firstIndex(of: 0x0001)!)], Float(0x1p-24))
    }
}
