import Foundation

// The one definition the parsers use whose file cannot be built here: Store+Students.swift
// (extension AttendanceStore, the whole store). Keep in step with Sources/Attendance/Store/Store+Students.swift.
extension String {
    /// NFC, trimmed, inner runs of white space collapsed to one space: how names are stored.
    public var normalizedText: String {
        precomposedStringWithCanonicalMapping
            .split(whereSeparator: { $0.isWhitespace })
            .joined(separator: " ")
    }
}
