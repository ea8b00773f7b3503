// match-bench: our exact search against the memory-bandwidth floor, one thread.
// scripts/bench-match.sh runs it next to faiss and prints the joined table.
//
// Output lines (machine-readable, one per measurement; times are medians):
//   floor bytes=B ns_per_vector=X gbps=G
//   ours storage=S n=N batch=B k=K ns=X          (ns per query x vector)
//   recall storage=S n=N k=K recall1=R exact=E   (vs the enrolled row; vs the float32 answer)
import CSimdKernels
import FaceMatch
import SeededRandom

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

extension SplitMix64 {
    /// Shaped like a dlib descriptor: a random direction, a norm around 1.38 varying by a few per cent.
    mutating func descriptor(_ d: Int) -> [Float] {
        let g = gaussianVector(d)
        let n = g.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
        let norm = 1.38 + 0.05 * Double(gaussian())
        return g.map { Float(Double($0) / n * norm) }
    }
}

func now() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

func median(_ xs: [Double]) -> Double {
    let s = xs.sorted()
    return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
}

// MARK: - Arguments

var sizes = [1_000, 10_000, 100_000, 1_000_000]
var batches = [1, 8]
var ks = [1, 5]
var reps = 7
var storages: [GalleryStorage] = [.float32, .int8, .float16]
var args = CommandLine.arguments.dropFirst()
while let a = args.popFirst() {
    switch a {
    case "--sizes": sizes = args.popFirst()!.split(separator: ",").map { Int($0)! }
    case "--reps": reps = Int(args.popFirst()!)!
    case "--storage":
        storages = args.popFirst()!.split(separator: ",").map {
            switch $0 {
            case "float32": return .float32
            case "int8": return .int8
            case "float16": return .float16
            default: fatalError("unknown storage \($0)")
            }
        }
    case "--isa":
        let name = args.popFirst()!
        guard let level = SimdLevel.allCases.first(where: { $0.description == name }), SimdLevel.force(level) else {
            fatalError("cannot run \(name) here")
        }
    default:
        print("usage: match-bench [--sizes 1000,10000] [--reps 7] [--storage float32,int8,float16] [--isa avx2]")
        exit(2)
    }
}
let d = 128
print("isa active=\(SimdLevel.active) detected=\(SimdLevel.detected)")

// MARK: - Memory-bandwidth floor: stream a 512 MB array (= 1e6 rows of 128 floats)

do {
    let bytes = 1_000_000 * d * 4
    let p = fm_alloc(bytes)!
    memset(p, 1, bytes)
    var times: [Double] = []
    var sink: Float = 0
    for _ in 0..<reps {
        let t0 = now()
        sink += fm_stream_read(p, bytes)
        times.append(Double(now() - t0))
    }
    fm_free(p)
    let t = median(times)
    print(
        "floor bytes=\(bytes) ns_per_vector=\(String(format: t / 1e6)) gbps=\(String(format: Double(bytes) / t)) sink=\(sink.isNaN ? 0 : 1)"
    )
}

func String(format x: Double) -> String {
    let r = (x * 1000).rounded() / 1000
    return "\(r)"
}

// MARK: - Search

for n in sizes {
    var rng = SplitMix64(seed: 42 &+ UInt64(n))
    // One student per row, as faiss's rows; several rows per student change nothing in the scan.
    var entries: [GalleryEntry] = []
    entries.reserveCapacity(n)
    for r in 0..<n { entries.append(GalleryEntry(student: "s\(r)", embedding: Embedding(rng.descriptor(d)))) }
    // Genuine queries: an enrolled row plus noise (distance about 0.35, dlib's same-person range).
    let queryCount = max(16, min(512, 2_000_000 / n))
    var sources: [Int] = []
    var queries: [Embedding] = []
    for _ in 0..<queryCount {
        let src = Int(rng.next() % UInt64(n))
        let x = entries[src].embedding.values
        let noise = rng.gaussianVector(d)
        let sigma: Float = 0.35 / Float(d).squareRoot()
        queries.append(Embedding((0..<d).map { x[$0] + sigma * noise[$0] }))
        sources.append(src)
    }
    var floatAnswers: [Int: [[Match]]] = [:]
    for storage in storages {
        let gallery = try! Gallery(dimension: d, storage: storage)
        try! gallery.replaceAll(entries)
        let snap = gallery.snapshot()
        for k in ks {
            for batch in batches {
                if storage != .float32 && batch != 1 { continue } // batches scan the float32 matrix anyway
                let groups = stride(from: 0, to: queryCount - batch + 1, by: batch).map { Array(queries[$0..<($0 + batch)]) }
                var times: [Double] = []
                var answers: [[Match]] = []
                for rep in 0..<reps {
                    let t0 = now()
                    var out: [[Match]] = []
                    for g in groups { out += try! snap.search(batch: g, k: k) }
                    let t = Double(now() - t0)
                    times.append(t / Double(groups.count * batch * n))
                    if rep == 0 { answers = out }
                }
                print("ours storage=\(storage) n=\(n) batch=\(batch) k=\(k) ns=\(String(format: median(times)))")
                if batch == 1 {
                    if storage == .float32 { floatAnswers[k] = answers }
                    var genuine = 0, exact = 0
                    for (i, a) in answers.enumerated() {
                        if a.first?.student == "s\(sources[i])" { genuine += 1 }
                        if let f = floatAnswers[k], f[i] == a { exact += 1 }
                    }
                    let exactText = floatAnswers[k] == nil ? "na" : String(format: Double(exact) / Double(answers.count))
                    print(
                        "recall storage=\(storage) n=\(n) k=\(k) recall1=\(String(format: Double(genuine) / Double(answers.count))) exact=\(exactText) queries=\(answers.count)"
                    )
                }
            }
        }
    }
}
