// libFuzzer harness: the roster import's parser, from the file's bytes (encoding detection, CSV,
// header search, per-line checks). Any crash, trap or ASan report is a finding; thrown errors are fine.
import AttendanceCore
import Foundation

private let today = LocalDate(year: 2025, month: 9, day: 5)

@_cdecl("LLVMFuzzerTestOneInput")
public func rosterFuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = Data(UnsafeBufferPointer(start: data, count: data == nil ? 0 : size))
    do {
        let roster = try RosterParser.parse(bytes, file: "fuzz.csv", today: today)
        // A parsed roster has no empty codes, names or classes, and no duplicate codes.
        var seen = Set<String>()
        for e in roster.entries {
            precondition(!e.code.isEmpty && !e.fullName.isEmpty && !e.classCode.isEmpty, "empty field accepted")
            precondition(seen.insert(e.code).inserted, "duplicate code accepted")
        }
        _ = roster.classes
    } catch let e as RosterErrors {
        precondition(!e.errors.isEmpty, "RosterErrors without an error")
        _ = e.description
    } catch {
        _ = "\(error)"
    }
    return 0
}

// SwiftPM links executables on Linux with `--defsym main=RosterFuzzer_main`; with -parse-as-library
// there is no Swift main, so this one hands control to libFuzzer's driver.
@_silgen_name("LLVMFuzzerRunDriver")
private func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt

@_cdecl("RosterFuzzer_main")
public func fuzzerMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var argc = argc
    var argv = argv
    return LLVMFuzzerRunDriver(&argc, &argv, rosterFuzz)
}
