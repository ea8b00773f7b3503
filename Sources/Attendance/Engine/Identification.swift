import AttendanceCore
import FaceMatch

/// Who a single face is, by the gate's own rule (`RecognitionRules.accepts`): what `attendance identify`
/// answers for a photo, so that it and the gate can never disagree about one face.
public struct Identification: Sendable, Equatable {
    /// The nearest enrolled student (nil: nobody enrolled).
    public var nearest: Match?
    /// The nearest student passes the rule: close enough and clearly closer than the next.
    public var recognised: Bool
    public var student: String? { recognised ? nearest?.student : nil }
}

extension EnrolledFaces.Index {
    public func identify(_ descriptor: [Float], rules: RecognitionRules) throws -> Identification {
        guard let best = try best(descriptor) else { return Identification(nearest: nil, recognised: false) }
        return Identification(nearest: best, recognised: rules.accepts(best, nearestOther: nearestOther[best.student]))
    }
}
