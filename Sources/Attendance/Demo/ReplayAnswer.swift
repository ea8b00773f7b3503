import AttendanceCore
import Foundation

/// A replay's records against its known answer (`make bench-pipeline` and the end-to-end tests).
///
/// A record is wrong when its student did not walk past that camera around the record's time (from the
/// first frame of their passage to `slack` seconds after its last): a stranger taken for a student, or one
/// student for another.
public struct ReplayAnswer: Sendable, Equatable {
    /// Everyone enrolled who passes some camera.
    public var expected: Set<String>
    /// The students recorded, once each at most (the store's unique key).
    public var recorded: Set<String>
    /// Records of a student who was not in front of that camera then.
    public var wrong: Int
    /// Expected students nobody recorded.
    public var missed: Set<String> { expected.subtracting(recorded) }

    /// - Parameters:
    ///   - scripts: each camera's script, by camera id.
    ///   - events: the records made (`PipelineEvent.recorded`).
    ///   - start, timeScale: how the replay dated frames (`PipelineClock.replay`): frame time t is `start + t * timeScale`.
    public init(
        scripts: [String: ReplayScript], events: [NewAttendanceEvent], start: Date, timeScale: Double, slack: Double = 2
    ) {
        expected = scripts.values.reduce(into: Set<String>()) { $0.formUnion($1.expectedStudents) }
        recorded = Set(events.map(\.studentCode))
        wrong =
            events.filter { e in
                guard let script = scripts[e.camera] else { return true }
                let t = e.occurredAt.timeIntervalSince(start) / max(timeScale, 1e-9)
                return !script.passages(near: t, slack: slack).contains { $0.student == e.studentCode }
            }.count
    }
}
