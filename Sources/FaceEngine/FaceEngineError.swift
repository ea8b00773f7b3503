import COpenCV

/// An error from the face engine, carrying the operation and the shim's message.
public struct FaceEngineError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        case argument, io, decode, tooLarge, model, video, endOfStream, internalError, uncheckable
        case noFace, severalFaces
    }
    public let kind: Kind
    public let operation: String
    public let message: String

    public init(kind: Kind, operation: String, message: String) {
        self.kind = kind
        self.operation = operation
        self.message = message
    }

    init(status: cv_status, operation: String) {
        let kind: Kind
        switch status {
        case CV_ERR_ARGUMENT: kind = .argument
        case CV_ERR_IO: kind = .io
        case CV_ERR_DECODE: kind = .decode
        case CV_ERR_TOO_LARGE: kind = .tooLarge
        case CV_ERR_MODEL: kind = .model
        case CV_ERR_VIDEO: kind = .video
        case CV_ERR_END: kind = .endOfStream
        case CV_ERR_UNCHECKABLE: kind = .uncheckable
        default: kind = .internalError
        }
        self.init(kind: kind, operation: operation, message: String(cString: cv_last_error()))
    }

    public var description: String { message.isEmpty ? operation : "\(operation): \(message)" }
}

@inline(__always)
func check(_ status: cv_status, _ operation: @autoclosure () -> String) throws(FaceEngineError) {
    if status != CV_OK { throw FaceEngineError(status: status, operation: operation()) }
}
