import AttendanceCore
import FaceEngine
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

/// One face found in a photo, and who it is by the gate's rule.
public struct IdentifiedFace: Sendable {
    public var photo: String
    public var box: FaceBox
    public var identification: Identification
    /// The recognised student's name (nil: not recognised).
    public var name: String?
}

/// What `identify` found in a set of photos: the faces, and the photos that could not be read.
public struct PhotoIdentification: Sendable {
    public var faces: [IdentifiedFace]
    public var unreadable: [(photo: String, problem: String)]
    /// Photos read in which no face was found.
    public var withoutFaces: [String]
}

extension AttendanceStore {
    /// Who is in these photos, by the gate's own rule against the enrolled faces now. A look at students' faces
    /// is audited (photo and face counts, never who): when the audit log refuses the entry, this throws and
    /// nothing is shown.
    public func identify(photos: [String], engine: FaceEngine) throws -> PhotoIdentification {
        let index = try EnrolledFaces.Index(version: 0, rows: try enrolments.recognisable())
        let rules = RecognitionRules(config.recognition)
        var result = PhotoIdentification(faces: [], unreadable: [], withoutFaces: [])
        for photo in photos {
            let faces: [Face]
            do { faces = try engine.faces(inFile: photo) } catch {
                result.unreadable.append((photo, "\(error)"))
                continue
            }
            if faces.isEmpty { result.withoutFaces.append(photo) }
            for face in faces {
                guard let d = face.descriptor else { continue }
                let who = try index.identify(d.values, rules: rules)
                let name = try who.student.flatMap { try roster.student(code: $0)?.fullName }
                result.faces.append(IdentifiedFace(photo: photo, box: face.box, identification: who, name: name))
            }
        }
        do {
            try auditLog.append(action: "identify", subject: nil, detail: "photos=\(photos.count); faces=\(result.faces.count)")
        } catch {
            throw StoreError.invalid("the audit log refused the entry, so nothing is shown: \(error)")
        }
        return result
    }
}
