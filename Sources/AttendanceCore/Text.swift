import Foundation

extension String {
    /// NFC, trimmed, inner runs of white space collapsed to one space: how names are stored.
    public var normalizedText: String {
        precomposedStringWithCanonicalMapping
            .split(whereSeparator: { $0.isWhitespace })
            .joined(separator: " ")
    }
}
