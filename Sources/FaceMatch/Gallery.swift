#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// One enrolled embedding and its student.
public struct GalleryEntry: Sendable, Equatable {
    public let student: String
    public let embedding: Embedding

    public init(student: String, embedding: Embedding) {
        self.student = student
        self.embedding = embedding
    }
}

/// The enrolled students' embeddings, shared by every camera.
///
/// Reads go through `snapshot()`: an immutable `GallerySnapshot` that stays valid
/// and unchanged however the gallery changes afterwards. Each change builds a
/// complete new snapshot off to the side and then publishes it with one pointer
/// swap, so a reader sees the old state or the new one, never a mix. The lock
/// that guards the swap is held only to copy or replace one reference (never
/// during a rebuild or a search), so readers never wait for enrolment work.
///
/// A change copies the matrix (O(rows x dimension)); enrol many embeddings with
/// one `add(_:)` or `replaceAll(_:)` rather than one by one.
public final class Gallery: Sendable {
    public let dimension: Int
    public let storage: GalleryStorage
    private let published: Locked<GallerySnapshot>
    /// Serialises writers so that two changes never build from the same base.
    private let writer = Locked<Void>(())

    public init(dimension: Int = Embedding.dlibDimension, storage: GalleryStorage = .float32) throws {
        self.dimension = dimension
        self.storage = storage
        published = Locked(try GallerySnapshot(dimension: dimension, storage: storage))
    }

    /// A gallery that starts from a snapshot (for example one read from a `GalleryFile`).
    public init(snapshot: GallerySnapshot) {
        dimension = snapshot.dimension
        storage = snapshot.storage
        published = Locked(snapshot)
    }

    /// The current state; cheap (one reference copy under a short lock).
    public func snapshot() -> GallerySnapshot { published.withLock { $0 } }

    /// Enrols one more embedding for `student` (a student may have several).
    public func add(student: String, embedding: Embedding) throws {
        try add([GalleryEntry(student: student, embedding: embedding)])
    }

    /// Enrols several embeddings in one change.
    public func add(_ entries: [GalleryEntry]) throws {
        try change { base in try Self.build(base: base, removing: nil, adding: entries, storage: storage) }
    }

    /// Removes every embedding of `student`; returns how many rows were removed.
    @discardableResult
    public func remove(student: String) -> Int {
        var removed = 0
        try? change { base in
            removed = base.rowStudent.indices.filter { base.students[Int(base.rowStudent[$0])] == student }.count
            if removed == 0 { return nil }
            return try Self.build(base: base, removing: student, adding: [], storage: storage)
        }
        return removed
    }

    /// Replaces the whole gallery in one change (a re-import of the roster).
    public func replaceAll(_ entries: [GalleryEntry]) throws {
        try change { base in
            try Self.build(
                base: try GallerySnapshot(dimension: dimension, storage: storage), removing: nil,
                adding: entries, storage: storage, version: base.version + 1)
        }
    }

    /// Publishes `snapshot` (for example one read from a file) as the new state.
    public func publish(_ snapshot: GallerySnapshot) throws {
        guard snapshot.dimension == dimension else {
            throw FaceMatchError.dimensionMismatch(expected: dimension, actual: snapshot.dimension)
        }
        try change { base in
            try GallerySnapshot(
                dimension: dimension, storage: storage, version: base.version + 1,
                students: snapshot.students, rowStudent: snapshot.rowStudent, floats: snapshot.floats)
        }
    }

    private func change(_ make: (GallerySnapshot) throws -> GallerySnapshot?) throws {
        try writer.withLock { _ in
            let base = snapshot()
            guard let next = try make(base) else { return }
            published.withLock { $0 = next }
        }
    }

    /// A new snapshot: `base` without `removing`'s rows, plus `adding` as given.
    static func build(
        base: GallerySnapshot, removing: String?, adding: [GalleryEntry],
        storage: GalleryStorage, version: UInt64? = nil
    ) throws -> GallerySnapshot {
        let d = base.dimension, stride = base.stride
        let added = try adding.map { entry -> Embedding in
            guard entry.embedding.dimension == d else {
                throw FaceMatchError.dimensionMismatch(expected: d, actual: entry.embedding.dimension)
            }
            _ = try entry.embedding.validatedSquaredNorm()
            return entry.embedding
        }
        var students: [String] = []
        var index: [String: UInt32] = [:]
        func studentIndex(_ s: String) -> UInt32 {
            if let i = index[s] { return i }
            let i = UInt32(students.count)
            students.append(s)
            index[s] = i
            return i
        }
        let removedIndex = removing.flatMap { base.students.firstIndex(of: $0) }.map { UInt32($0) }
        let kept = (0..<base.count).filter { base.rowStudent[$0] != removedIndex }
        let rows = kept.count + added.count
        guard rows < Int(UInt32.max) else { throw FaceMatchError.tooManyRows(rows) }
        let floats = AlignedBuffer<Float>(count: rows * stride)
        var rowStudent: [UInt32] = []
        rowStudent.reserveCapacity(rows)
        for (r, old) in kept.enumerated() {
            (floats.pointer + r * stride).update(from: base.floats.pointer + old * stride, count: stride)
            rowStudent.append(studentIndex(base.students[Int(base.rowStudent[old])]))
        }
        for (i, embedding) in added.enumerated() {
            let r = kept.count + i
            embedding.values.withUnsafeBufferPointer { (floats.pointer + r * stride).update(from: $0.baseAddress!, count: d) }
            rowStudent.append(studentIndex(adding[i].student))
        }
        return try GallerySnapshot(
            dimension: d, storage: storage, version: version ?? base.version + 1, students: students,
            rowStudent: rowStudent, floats: floats)
    }
}

/// A value behind a pthread mutex (portable to every platform the package names).
final class Locked<Value>: @unchecked Sendable {
    // @unchecked: `value` is only touched while `mutex` is held.
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private var value: Value

    init(_ value: Value) {
        self.value = value
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        pthread_mutex_init(mutex, nil)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    func withLock<R>(_ body: (inout Value) throws -> R) rethrows -> R {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(&value)
    }
}
