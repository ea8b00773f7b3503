// swift-tools-version: 6.0
// libFuzzer harnesses for the roster and config parsers, built outside the main package so only the
// parsers (and what they need) get fuzzer + ASan instrumentation. Sources/AttendanceParsers holds
// symlinks to the real files in ../../Sources/Attendance; nothing is copied except the one
// String extension in Support.swift (its home, Store+Students.swift, extends AttendanceStore).
// Build: scripts/fuzz.sh (swift build -c release -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library)
import PackageDescription

let package = Package(
    name: "AttendanceFuzz",
    platforms: [.macOS(.v14)],
    dependencies: [
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.0.0"),
        .package(url: "https://github.com/LebJe/TOMLKit", from: "0.6.0"),
    ],
    targets: [
        .target(
            name: "AttendanceParsers",
            dependencies: [
                .product(name: "GRDB", package: "GRDB.swift"),  // Records.swift: Consent(row:)
                .product(name: "TOMLKit", package: "TOMLKit"),
            ]
        ),
        .executableTarget(name: "RosterFuzzer", dependencies: ["AttendanceParsers"]),
        .executableTarget(name: "ConfigFuzzer", dependencies: ["AttendanceParsers"]),
    ],
    swiftLanguageModes: [.v6]
)
