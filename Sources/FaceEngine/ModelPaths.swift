import Foundation

/// Where the model files are. `Models/` of the checkout by default (see Models/manifest.tsv).
public struct ModelPaths: Sendable {
    public var detectorPrototxt: String
    public var detectorWeights: String
    /// YuNet 2022mar (ONNX), the other detector.
    public var yunet: String
    public var landmarks: String
    public var embedding: String
    /// The passive-liveness networks (ONNX graphs `make models` builds from the MiniFASNet weights).
    public var livenessA: String
    public var livenessB: String

    public init(directory: String) {
        detectorPrototxt = directory + "/deploy.prototxt.txt"
        detectorWeights = directory + "/res10_300x300_ssd_iter_140000.caffemodel"
        yunet = directory + "/face_detection_yunet_2022mar.onnx"
        landmarks = directory + "/shape_predictor_5_face_landmarks.dat"
        embedding = directory + "/dlib_face_recognition_resnet_model_v1.dat"
        livenessA = directory + "/2.7_80x80_MiniFASNetV2.onnx"
        livenessB = directory + "/4_0_0_80x80_MiniFASNetV1SE.onnx"
    }

    /// `ATTENDANCE_MODELS` if set; else `Models/` next to the executable's checkout, else `./Models`,
    /// else `/usr/share/attendance/models`.
    public static func discover() -> ModelPaths {
        let env = ProcessInfo.processInfo.environment
        if let dir = env["ATTENDANCE_MODELS"], !dir.isEmpty { return ModelPaths(directory: dir) }
        var candidates: [String] = []
        // .../checkout/.build/<config>/attendance -> .../checkout/Models
        let exe = URL(fileURLWithPath: CommandLine.arguments.first ?? ".").resolvingSymlinksInPath()
        var dir = exe.deletingLastPathComponent()
        for _ in 0..<5 {
            candidates.append(dir.appendingPathComponent("Models").path)
            dir = dir.deletingLastPathComponent()
        }
        candidates.append(FileManager.default.currentDirectoryPath + "/Models")
        candidates.append("/usr/share/attendance/models")
        for c in candidates where FileManager.default.fileExists(atPath: c + "/shape_predictor_5_face_landmarks.dat") {
            return ModelPaths(directory: c)
        }
        return ModelPaths(directory: FileManager.default.currentDirectoryPath + "/Models")
    }
}

/// Which face detector finds the boxes. Both sit behind the shim's detector interface.
public enum DetectorKind: String, Sendable, CaseIterable {
    /// OpenCV dnn res10 SSD: finds small and partial faces; boxes refined with dlib HOG before landmarks.
    case res10
    /// dlib's HOG frontal detector: no extra model, misses small and turned faces.
    case hog
    /// YuNet 2022mar (OpenCV's FaceDetectorYN): about a tenth of res10's cost on a gate frame; boxes refined
    /// with dlib HOG like res10's.
    case yunet
}
