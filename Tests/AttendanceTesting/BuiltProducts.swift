import Foundation

/// The package's built executables (`attendance`, `sector-gateway`, ...) as the tests find them: in
/// `$ATTENDANCE_PRODUCTS_DIR`, else in the products folder holding the test binary (on Linux the test
/// binary sits in it; macOS-style bundles nest it deeper, so the folders above are searched too).
public enum BuiltProducts {
    public static var directory: URL {
        if let dir = ProcessInfo.processInfo.environment["ATTENDANCE_PRODUCTS_DIR"] { return URL(fileURLWithPath: dir) }
        var dir = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent()
        while dir.path != "/" && !FileManager.default.fileExists(atPath: dir.appendingPathComponent("sector-gateway").path) {
            dir = dir.deletingLastPathComponent()
        }
        return dir
    }

    /// The path of a built executable, or an error that says how to build it.
    public static func executable(_ name: String) throws -> URL {
        let url = directory.appendingPathComponent(name)
        guard FileManager.default.isExecutableFile(atPath: url.path) else {
            throw HarnessError("\(name) is not built at \(url.path): run `swift build --build-tests` (make test does)")
        }
        return url
    }
}
