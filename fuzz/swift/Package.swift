// swift-tools-version: 6.0
// libFuzzer harnesses for the roster and config parsers, built outside the main package so only the
// parsers (and what they need) get fuzzer + ASan instrumentation. Sources/AttendanceCore is a link to the
// main package's domain target (../../Sources/AttendanceCore: no OpenCV, no SQLite), so the harnesses
// fuzz exactly the code the daemon runs, with nothing copied.
// Build: scripts/fuzz.sh (swift build -c release -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library)
import PackageDescription

let package = Package(
    name: "AttendanceFuzz",
    platforms: [.macOS(.v14)],
    dependencies: [
        .package(url: "https://github.com/LebJe/TOMLKit", from: "0.6.0")
    ],
    targets: [
        .target(name: "AttendanceCore", dependencies: [.product(name: "TOMLKit", package: "TOMLKit")]),
        .executableTarget(name: "RosterFuzzer", dependencies: ["AttendanceCore"]),
        .executableTarget(name: "ConfigFuzzer", dependencies: ["AttendanceCore"]),
    ],
    swiftLanguageModes: [.v6]
)
