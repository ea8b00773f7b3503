// swift-tools-version: 6.0
// Face-recognition attendance for schools: capture -> face engine -> match -> attendance.
import PackageDescription

/// Only the OpenCV libraries each shim uses: linking all 56 that pkg-config lists
/// costs ~0.15 s and 40 MB at start-up.
let openCVLibraries = ["opencv_core", "opencv_imgproc", "opencv_imgcodecs", "opencv_dnn", "opencv_objdetect"]
let openCVVideoLibraries = ["opencv_core", "opencv_imgproc", "opencv_imgcodecs", "opencv_videoio"]

/// The shim is always built optimised: dlib's templates at -O0 make one embedding take seconds.
let optimisedCxx: [CXXSetting] = [
    .unsafeFlags(["-I/usr/include/opencv4", "-O2", "-fexceptions", "-Wno-deprecated-declarations"])
]

let package = Package(
    name: "SchoolAttendance",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "attendance", targets: ["AttendanceCLI"]),
        .executable(name: "sector-gateway", targets: ["SectorGateway"]),
        .executable(name: "face-bench", targets: ["FaceBench"]),
        .executable(name: "match-bench", targets: ["MatchBench"]),
        .executable(name: "capture-bench", targets: ["CaptureBench"]),
        .executable(name: "accuracy-bench", targets: ["AccuracyBench"]),
        .executable(name: "pipeline-bench", targets: ["PipelineBench"]),
        .library(name: "FaceMatch", targets: ["FaceMatch"]),
        .library(name: "CaptureKit", targets: ["CaptureKit"]),
        .library(name: "Attendance", targets: ["Attendance"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.5.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.0"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.0.0"),
        .package(url: "https://github.com/LebJe/TOMLKit", from: "0.6.0"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.24.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.0.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.6.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.5.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.65.0"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache", from: "2.0.0"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.0.0"),
        .package(url: "https://github.com/apple/swift-certificates", from: "1.0.0"),
        .package(url: "https://github.com/apple/swift-asn1", from: "1.0.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.27.0"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
    ],
    targets: [
        // MARK: C shims (C/C++ lives only here, behind plain C headers)
        .target(
            name: "COpenCV",
            cxxSettings: optimisedCxx,
            linkerSettings: (openCVLibraries + ["dlib", "lapack", "blas"]).map { .linkedLibrary($0) }
        ),
        // Video files, RTSP and image files for capture: OpenCV alone, so capture links no dlib.
        .target(
            name: "CVideoIO",
            cxxSettings: optimisedCxx,
            linkerSettings: openCVVideoLibraries.map { .linkedLibrary($0) }
        ),
        .target(
            name: "CV4L2",
            linkerSettings: [.linkedLibrary("v4l2"), .linkedLibrary("v4lconvert")]
        ),
        // JPEG frames (MJPEG cameras and videos) decoded whole or as a grey thumbnail at 1/8 scale (libjpeg-turbo).
        .target(name: "CJPEG", cSettings: [.unsafeFlags(["-O2"])], linkerSettings: [.linkedLibrary("jpeg")]),
        .target(
            name: "CFakeV4L2", cSettings: [.unsafeFlags(["-O2"])],
            linkerSettings: [.linkedLibrary("jpeg"), .linkedLibrary("dl")]
        ),
        .target(name: "CSimdKernels", cSettings: [.unsafeFlags(["-O3"])]),
        .target(name: "CXLSXWriter", linkerSettings: [.linkedLibrary("xlsxwriter")]),
        .target(name: "CClock"),

        // MARK: Swift modules, one stage of the data flow each (ARCHITECTURE.md)
        .target(name: "FaceEngine", dependencies: ["COpenCV"]),
        .target(
            name: "CaptureKit",
            dependencies: ["CV4L2", "CVideoIO", "CJPEG", .product(name: "Logging", package: "swift-log")]
        ),
        .target(name: "FaceMatch", dependencies: ["CSimdKernels"]),
        // One seeded generator (SplitMix64) for the replays, the reference gateway's faults, benchmarks and tests.
        .target(name: "SeededRandom"),
        .target(
            name: "SectorConnector",
            dependencies: [
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The domain: time types, records, config, roster parsing, consent rules, the schedule. No OpenCV, no
        // SQLite: it builds and tests in seconds, and the fuzzers depend on it.
        .target(name: "AttendanceCore", dependencies: [.product(name: "TOMLKit", package: "TOMLKit")]),
        .target(
            name: "Attendance",
            dependencies: [
                "AttendanceCore", "FaceMatch", "FaceEngine", "CaptureKit", "SectorConnector", "CXLSXWriter", "CClock",
                "SeededRandom",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Hummingbird", package: "hummingbird"),
            ]
        ),
        // The school's web console: pages over the store, served by `attendance serve` or `attendance console`.
        .target(
            name: "AttendanceConsole",
            dependencies: [
                "Attendance", "AttendanceCore", "FaceEngine",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Mustache", package: "swift-mustache"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),

        // The school's shared database for several gate boxes (#17): the server schema, the journal sender, the
        // migration from SQLite. A separate target so `Attendance` (and a one-box school) never links PostgresNIO.
        .target(
            name: "AttendancePostgres",
            dependencies: [
                "Attendance", "AttendanceCore", "SectorConnector",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),

        // MARK: Executables
        .executableTarget(
            name: "AttendanceCLI",
            dependencies: [
                "Attendance", "AttendanceCore", "AttendanceConsole", "AttendancePostgres", "FaceEngine", "FaceMatch",
                "CaptureKit", "SectorConnector",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .executableTarget(
            name: "SectorGateway",
            dependencies: [
                "SectorConnector", "SeededRandom",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(name: "FaceBench", dependencies: ["FaceEngine"]),
        .executableTarget(name: "MatchBench", dependencies: ["FaceMatch", "CSimdKernels", "SeededRandom"]),
        .executableTarget(name: "CaptureBench", dependencies: ["CaptureKit", "CFakeV4L2"]),
        .executableTarget(name: "AccuracyBench", dependencies: ["Attendance", "AttendanceCore", "FaceEngine", "FaceMatch"]),
        .executableTarget(
            name: "PipelineBench",
            dependencies: [
                "Attendance", "AttendanceCore", "FaceEngine", "CaptureKit", .product(name: "Logging", package: "swift-log"),
            ]
        ),

        // MARK: Tests
        // One test-support module (like HummingbirdTesting): the reference gateway harness, the seeded generator.
        .target(
            name: "AttendanceTesting",
            dependencies: [
                "SectorConnector", "SeededRandom",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
            ], path: "Tests/AttendanceTesting"),
        .testTarget(name: "FaceEngineTests", dependencies: ["FaceEngine", "FaceMatch"]),
        .testTarget(name: "FaceMatchTests", dependencies: ["FaceMatch", "CSimdKernels", "AttendanceTesting"]),
        .testTarget(
            name: "CaptureKitTests",
            dependencies: ["CaptureKit", "CFakeV4L2", "CVideoIO", .product(name: "Logging", package: "swift-log")]),
        .testTarget(
            name: "SectorConnectorTests",
            dependencies: [
                "SectorConnector", "AttendanceTesting",
                .product(name: "Logging", package: "swift-log"),
            ]),
        .testTarget(
            name: "AttendanceTests",
            dependencies: [
                "Attendance", "AttendanceCore", "AttendanceConsole", "FaceEngine", "FaceMatch", "CaptureKit", "SectorConnector",
                "AttendanceTesting",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]),
        .testTarget(
            name: "AttendancePostgresTests",
            dependencies: [
                "AttendancePostgres", "Attendance", "AttendanceConsole", "AttendanceCore", "AttendanceTesting", "FaceEngine",
                "SectorConnector",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]),
    ],
    swiftLanguageModes: [.v6],
    cxxLanguageStandard: .cxx17
)
