import AttendanceTesting
import Dispatch
import Foundation
import XCTest

@testable import FaceMatch

final class GalleryConcurrencyTests: XCTestCase {
    /// Readers search while a writer keeps publishing whole new generations. Every
    /// snapshot a reader gets must be one complete generation: all its students carry
    /// the same generation tag, its size is that generation's, and a query equal to
    /// one of its rows finds that row's student at distance 0.
    func testReadersNeverSeeTornStateDuringSwaps() throws {
        let d = 128, perGeneration = 64
        func generation(_ g: Int) -> [GalleryEntry] {
            var rng = SplitMix64(state: UInt64(g))
            let size = perGeneration + g % 5 // each generation has its own size
            return (0..<size).map { i in GalleryEntry(student: "g\(g)-s\(i)", embedding: Embedding(rng.gaussianVector(d))) }
        }
        let generations = 40
        let data = (0..<generations).map(generation)
        let gallery = try Gallery(dimension: d, storage: .int8)
        try gallery.replaceAll(data[0])
        let failures = Locked<[String]>([])
        let done = Locked(false)
        let readers = 3

        runOnThreads(readers + 1) { worker in
            if worker == readers { // the writer
                for g in 1..<generations {
                    do {
                        if g % 3 == 0 {
                            try gallery.replaceAll(Array(data[g].prefix(10)))
                            try gallery.add(Array(data[g].dropFirst(10)))
                        } else {
                            try gallery.replaceAll(data[g])
                        }
                    } catch { failures.withLock { $0.append("writer: \(error)") } }
                }
                done.withLock { $0 = true }
                return
            }
            var lastVersion: UInt64 = 0
            var searches = 0
            while !done.withLock({ $0 }) || searches < 50 {
                let snap = gallery.snapshot()
                if snap.version < lastVersion { failures.withLock { $0.append("version went back") } }
                lastVersion = snap.version
                let tags = Set(snap.students.map { $0.split(separator: "-")[0] })
                guard tags.count == 1, let tag = tags.first, let g = Int(tag.dropFirst()) else {
                    failures.withLock { $0.append("mixed generations \(tags)") }
                    continue
                }
                // A generation built in two steps (g % 3 == 0) is published at 10 rows, then complete.
                let full = data[g].count
                guard snap.count == full || (g % 3 == 0 && snap.count == 10) else {
                    failures.withLock { $0.append("generation \(g) has \(snap.count) rows") }
                    continue
                }
                let row = (searches * 7 + worker) % snap.count
                do {
                    let m = try snap.search(data[g][row].embedding, k: 2)
                    if m.first?.student != data[g][row].student || m.first!.distance > 1e-3 {
                        failures.withLock { $0.append("generation \(g) row \(row) found \(m)") }
                    }
                } catch { failures.withLock { $0.append("reader: \(error)") } }
                searches += 1
            }
        }
        XCTAssertEqual(failures.withLock { $0 }, [])
        XCTAssertEqual(gallery.snapshot().students.first, "g\(generations - 1)-s0")
    }
}

/// Runs body(0..<count) on `count` dedicated threads and waits for all of them
/// (a thread pool such as concurrentPerform may run fewer at once, which would
/// starve the writer this test needs).
func runOnThreads(_ count: Int, _ body: @escaping @Sendable (Int) -> Void) {
    let finished = DispatchSemaphore(value: 0)
    for i in 0..<count {
        let thread = Thread {
            body(i)
            finished.signal()
        }
        thread.start()
    }
    for _ in 0..<count { finished.wait() }
}
