import AttendanceCore
import FaceMatch
import Foundation
import Logging

/// The enrolled faces as the cameras search them, kept in step with the database.
///
/// FaceMatch answers in dlib's own metric (the Euclidean distance between the raw descriptors, which
/// is what the 0.6 threshold means), so its `Match` is what `RecognitionRules` judges.
public final class EnrolledFaces: Sendable {
    /// One consistent state: the FaceMatch snapshot and each student's risk radius.
    public struct Index: Sendable {
        public let version: Int64
        public let snapshot: GallerySnapshot
        /// For each student, the distance from any of their enrolled faces to the nearest face of
        /// another student: how close the school's nearest look-alike is (absent: nobody else enrolled).
        public let nearestOther: [String: Float]
        /// Students whose enrolment could not be opened (skipped, see `EnrolmentRegister.snapshot`).
        public let unreadable: [String]

        /// Builds the index of these enrolled faces (raw dlib descriptors).
        public init(version: Int64, rows: [(student: String, embedding: [Float])], unreadable: [String] = []) throws {
            self.unreadable = unreadable
            let gallery = try Gallery()
            let entries = rows.map { GalleryEntry(student: $0.student, embedding: Embedding($0.embedding)) }
            try gallery.replaceAll(entries)
            self.version = version
            self.snapshot = gallery.snapshot()
            // Each face's two nearest students: itself, and its nearest other (or a tie with it).
            var nearest: [String: Float] = [:]
            let found = try snapshot.search(batch: entries.map(\.embedding), k: 2)
            for (r, matches) in zip(rows, found) {
                guard let other = matches.first(where: { $0.student != r.student }) else { continue }
                nearest[r.student] = min(nearest[r.student] ?? .infinity, other.distance)
            }
            self.nearestOther = nearest
        }

        /// The best student for a descriptor, with its margin over the next; nil for an empty gallery.
        public func best(_ descriptor: [Float]) throws -> Match? {
            try snapshot.search(Embedding(descriptor), k: 1).first
        }
    }

    public let store: AttendanceStore
    private let published: LockedIndex

    public init(store: AttendanceStore) throws {
        self.store = store
        published = LockedIndex(try Index(version: -1, rows: []))
    }

    /// The current state (cheap; never blocks on a reload).
    public func current() -> Index { published.get() }

    /// Loads the current embeddings from the store; returns the version loaded.
    @discardableResult
    public func reload() throws -> Int64 {
        let (version, rows, unreadable) = try store.enrolments.snapshot()
        published.set(try Index(version: version, rows: rows.map { ($0.student, $0.embedding) }, unreadable: unreadable))
        return version
    }

    /// Polls the store's gallery version (bumped in the same transaction as every enrolment
    /// change) and reloads, so new enrolments take effect within seconds without a restart.
    public func run(every interval: Duration = .seconds(2), logger: Logger) async {
        while !Task.isCancelled {
            do {
                let v = try store.enrolments.galleryVersion()
                if v != current().version {
                    let loaded = try reload()
                    let index = current()
                    logger.info("gallery loaded", metadata: ["version": "\(loaded)", "embeddings": "\(index.snapshot.count)"])
                    for student in index.unreadable {
                        logger.error(
                            "an enrolment of this student cannot be opened (damaged row?): skipped; re-enrol the student",
                            metadata: ["student": "\(store.pseudonym(of: student))"])
                    }
                    // The change may have been an erasure: fold the WAL back so its old pages go (the CLI's own
                    // checkpoint can fail while this process reads).
                    do { try store.retention.compact() } catch {
                        logger.warning(
                            "checkpoint after a gallery change failed; retrying at the next change",
                            metadata: ["error": "\(error)"])
                    }
                }
            } catch {
                logger.error("gallery reload failed", metadata: ["error": "\(error)"])
            }
            try? await Task.sleep(for: interval)
        }
    }
}

/// A reference swapped under a lock held only for the swap.
final class LockedIndex: @unchecked Sendable {
    private let lock = NSLock()
    private var value: EnrolledFaces.Index
    init(_ value: EnrolledFaces.Index) { self.value = value }
    func get() -> EnrolledFaces.Index { lock.lock(); defer { lock.unlock() }; return value }
    func set(_ v: EnrolledFaces.Index) { lock.lock(); value = v; lock.unlock() }
}
