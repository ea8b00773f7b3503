/// A conservative pass over config text before it reaches toml++.
///
/// toml++ (bundled by TOMLKit 0.6.0) aborts the process on some malformed input instead of
/// throwing: a table header such as `[.` or a date literal followed by junk (`a = 2026-01-01 8`),
/// found by the config fuzzer (`make fuzz`). The config needs neither exotic headers nor date
/// literals, so this refuses them with a line number: table headers must be dotted bare or quoted
/// keys, and dates and times must be written as strings ("2026-09-02", "07:00").
enum TOMLPrecheck {
    static func check(_ text: String) -> (line: Int, reason: String)? {
        var lineNumber = 1
        // Split on scalars: Swift reads "\r\n" as one Character, so a CRLF file would be one line.
        for rawLine in text.unicodeScalars.split(separator: "\n", omittingEmptySubsequences: false) {
            defer { lineNumber += 1 }
            let line = String(String.UnicodeScalarView(rawLine)).drop { $0 == " " || $0 == "\t" }
            if line.first == "[" && !isHeader(Substring(line)) {
                return (lineNumber, "malformed table header (expected [name] or [[name]], names joined by dots)")
            }
        }
        // Unquoted dates and times, outside strings and comments.
        var inString: Character?
        var multiline = false
        var inComment = false
        var line = 1
        let chars = Array(text.unicodeScalars)
        var i = 0
        while i < chars.count {
            let c = chars[i]
            if c == "\n" { line += 1; inComment = false; if !multiline { inString = nil }; i += 1; continue }
            if inComment { i += 1; continue }
            if let q = inString {
                if q == "\"" && c == "\\" { i += 2; continue }
                if Character(c) == q {
                    if multiline {
                        if i + 2 < chars.count && Character(chars[i + 1]) == q && Character(chars[i + 2]) == q {
                            inString = nil; multiline = false; i += 3; continue
                        }
                    } else {
                        inString = nil
                    }
                }
                i += 1
                continue
            }
            if c == "#" { inComment = true; i += 1; continue }
            if c == "\"" || c == "'" {
                let q = Character(c)
                if i + 2 < chars.count && Character(chars[i + 1]) == q && Character(chars[i + 2]) == q {
                    multiline = true; inString = q; i += 3; continue
                }
                inString = q
                i += 1
                continue
            }
            if isDigit(c) && (i == 0 || !isBareKeyChar(chars[i - 1])) {
                var j = i
                while j < chars.count && isDigit(chars[j]) { j += 1 }
                if j < chars.count && (chars[j] == "-" && j - i == 4 || chars[j] == ":" && j - i == 2) {
                    // Inside a value (a bare key like 2026-x is not a date: keys sit left of '=').
                    if lineHasEquals(before: i, chars) {
                        return (line, "write dates and times as quoted strings, e.g. \"2026-09-02\" or \"07:00\"")
                    }
                }
                i = j
                continue
            }
            i += 1
        }
        return nil
    }

    static func lineHasEquals(before index: Int, _ chars: [Unicode.Scalar]) -> Bool {
        var k = index - 1
        while k >= 0 && chars[k] != "\n" {
            if chars[k] == "=" { return true }
            k -= 1
        }
        // A continuation line of a multi-line array value has no '=' but is still a value.
        return k >= 0
            && !(chars[(k + 1)..<index].contains { !($0 == " " || $0 == "\t") && !isDigit($0) && $0 != "," && $0 != "[" })
    }

    static func isDigit(_ c: Unicode.Scalar) -> Bool { c >= "0" && c <= "9" }
    static func isBareKeyChar(_ c: Unicode.Scalar) -> Bool {
        (c >= "a" && c <= "z") || (c >= "A" && c <= "Z") || isDigit(c) || c == "_" || c == "-" || c == "."
    }

    /// `[a.b]`, `[[a]]`, `["quoted".b]`, with spaces around dots and an optional trailing comment.
    static func isHeader(_ line: Substring) -> Bool {
        var s = line
        let double = s.hasPrefix("[[")
        s = s.dropFirst(double ? 2 : 1)
        var expectKey = true
        while let c = s.first {
            if c == " " || c == "\t" { s = s.dropFirst(); continue }
            if expectKey {
                if c == "\"" || c == "'" {
                    guard let end = s.dropFirst().firstIndex(of: c) else { return false }
                    let key = s[s.index(after: s.startIndex)..<end]
                    if c == "\"" && key.contains("\\") { return false }
                    s = s[s.index(after: end)...]
                } else {
                    let key = s.prefix { isBareKeyChar($0.unicodeScalars.first!) && $0 != "." }
                    guard !key.isEmpty else { return false }
                    s = s.dropFirst(key.count)
                }
                expectKey = false
                continue
            }
            if c == "." { expectKey = true; s = s.dropFirst(); continue }
            if c == "]" {
                s = s.dropFirst()
                if double { guard s.first == "]" else { return false }; s = s.dropFirst() }
                let rest = s.drop { $0 == " " || $0 == "\t" || $0 == "\r" }.filter { $0 != "\r" }
                return rest.isEmpty || rest.first == "#"
            }
            return false
        }
        return false
    }
}
