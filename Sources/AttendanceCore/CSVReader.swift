import Foundation

/// A record of a delimited text file with the (1-based) line it starts on.
public struct CSVRecord: Sendable, Equatable {
    public var line: Int
    public var fields: [String]
}

/// A problem at a place in a file, printed the way compilers do: `file:line: reason`.
public struct LineError: Error, Sendable, Equatable, CustomStringConvertible {
    public var file: String
    public var line: Int
    public var reason: String
    public init(file: String, line: Int, reason: String) { self.file = file; self.line = line; self.reason = reason }
    public var description: String { "\(file):\(line): \(reason)" }
}

/// RFC 4180 CSV as spreadsheets write it: comma, semicolon or tab separated (detected from the
/// header), fields optionally in double quotes with `""` for a quote, quoted fields may span lines,
/// CRLF or LF line ends, UTF-8 with or without a BOM (UTF-16 with a BOM is decoded too).
public enum CSVReader {
    /// Decodes the file's bytes to text, or says why it cannot.
    public static func decode(_ data: Data, file: String) throws -> String {
        let bytes = [UInt8](data)
        if bytes.starts(with: [0xFF, 0xFE]) || bytes.starts(with: [0xFE, 0xFF]) {
            guard let s = String(data: data, encoding: .utf16) else {
                throw LineError(file: file, line: 1, reason: "the file starts like UTF-16 but is not valid UTF-16")
            }
            return s
        }
        let body = bytes.starts(with: [0xEF, 0xBB, 0xBF]) ? Array(bytes.dropFirst(3)) : bytes
        guard let s = String(validating: body, as: UTF8.self) else {
            // Name the line of the first bad byte so the user can look at it.
            var line = 1
            for chunk in body.split(separator: 0x0A, omittingEmptySubsequences: false) {
                if String(validating: chunk, as: UTF8.self) == nil { break }
                line += 1
            }
            throw LineError(
                file: file, line: line,
                reason: "the file is not UTF-8 text. In Excel use "
                    + "File > Save As > \"CSV UTF-8 (Comma delimited)\"; in LibreOffice choose the UTF-8 character set")
        }
        return s
    }

    /// Splits text into records. Blank lines are skipped. Errors (an unterminated quote, text after
    /// a closing quote) are collected with their line; parsing goes on where it can.
    public static func parse(_ text: String, file: String, delimiter: Unicode.Scalar? = nil) -> (
        records: [CSVRecord], errors: [LineError]
    ) {
        let scalars = Array(text.unicodeScalars)
        let sep = delimiter ?? detectDelimiter(scalars)
        var records: [CSVRecord] = []
        var errors: [LineError] = []
        var fields: [String] = []
        var field = String.UnicodeScalarView()
        var line = 1
        var recordLine = 1
        var i = 0
        var inQuotes = false
        var quoteLine = 0
        var afterQuote = false
        var reportedAfterQuote = false

        func endField() {
            fields.append(String(field))
            field = String.UnicodeScalarView()
            afterQuote = false
        }
        func endRecord() {
            endField()
            if !(fields.count == 1 && fields[0].isEmpty) {
                records.append(CSVRecord(line: recordLine, fields: fields))
            }
            fields = []
            reportedAfterQuote = false
        }

        while i < scalars.count {
            let c = scalars[i]
            if inQuotes {
                if c == "\"" {
                    if i + 1 < scalars.count, scalars[i + 1] == "\"" {
                        field.append("\"")
                        i += 2
                        continue
                    }
                    inQuotes = false
                    afterQuote = true
                } else {
                    if c == "\n" { line += 1 }
                    if c == "\r" {
                        // CRLF inside a quoted field becomes LF; a lone CR too.
                        field.append("\n")
                        if i + 1 < scalars.count, scalars[i + 1] == "\n" { i += 1 }
                        line += 1
                    } else {
                        field.append(c)
                    }
                }
                i += 1
                continue
            }
            switch c {
            case sep:
                endField()
            case "\r", "\n":
                endRecord()
                if c == "\r", i + 1 < scalars.count, scalars[i + 1] == "\n" { i += 1 }
                line += 1
                recordLine = line
            case "\"" where field.isEmpty && !afterQuote:
                inQuotes = true
                quoteLine = line
            default:
                if afterQuote {
                    if c == " " || c == "\t" { break } // spaces after a closing quote: harmless
                    if !reportedAfterQuote {
                        errors.append(
                            LineError(
                                file: file, line: line,
                                reason:
                                    "text after a closing quote in field \(fields.count + 1); a quote inside a quoted field must be doubled (\"\")"
                            ))
                        reportedAfterQuote = true
                    }
                }
                field.append(c)
            }
            i += 1
        }
        if inQuotes {
            errors.append(
                LineError(file: file, line: quoteLine, reason: "a quoted field starts here and is never closed (missing \")"))
        }
        if !field.isEmpty || !fields.isEmpty { endRecord() }
        return (records, errors)
    }

    /// The separator the first line uses most, outside quotes: `,`, `;` or tab (Excel in a
    /// Vietnamese or European locale writes `;`).
    static func detectDelimiter(_ scalars: [Unicode.Scalar]) -> Unicode.Scalar {
        var counts: [Unicode.Scalar: Int] = [",": 0, ";": 0, "\t": 0]
        var inQuotes = false
        for c in scalars {
            if c == "\"" { inQuotes.toggle(); continue }
            if inQuotes { continue }
            if c == "\n" || c == "\r" { break }
            if counts[c] != nil { counts[c]! += 1 }
        }
        let best = counts.max { a, b in a.value < b.value || (a.value == b.value && a.key != ",") }!
        return best.value == 0 ? "," : best.key
    }
}
