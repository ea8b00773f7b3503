import Foundation

/// A guardian's consent given in a roster's optional consent columns.
public struct RosterConsent: Sendable, Equatable {
    public var guardian: String
    public var relation: String
    public var date: LocalDate
    public var scope: String?
    public var childAgreed: Bool
}

/// One valid roster line.
public struct RosterEntry: Sendable, Equatable {
    public var line: Int
    public var code: String
    /// NFC, spaces trimmed and collapsed.
    public var fullName: String
    public var classCode: String
    public var gradeCode: String
    public var dateOfBirth: LocalDate?
    /// "male" or "female" (or "other"), nil when not given.
    public var gender: String?
    public var consent: RosterConsent?
}

/// A parsed roster: every line valid, or nothing (see `RosterErrors`).
public struct Roster: Sendable, Equatable {
    public var file: String
    public var entries: [RosterEntry]
    /// Whether the file has these columns at all: a roster without them leaves the stored values alone.
    public var hasDateOfBirth = true
    public var hasGender = true
    public var classes: [SchoolClass] {
        var seen: [String: SchoolClass] = [:]
        for e in entries where seen[e.classCode] == nil {
            seen[e.classCode] = SchoolClass(code: e.classCode, gradeCode: e.gradeCode)
        }
        return seen.values.sorted { $0.code < $1.code }
    }
}

/// Every problem found in a roster, one per line (or more), in line order.
public struct RosterErrors: Error, Sendable, CustomStringConvertible {
    public var errors: [LineError]
    public var description: String { errors.map(\.description).joined(separator: "\n") }
}

/// Reads the class list a school exports: the columns are found by their header, in Vietnamese or
/// English, wherever they are; title rows above the header and columns it does not know are skipped.
public enum RosterParser {
    public enum Column: String, CaseIterable, Sendable {
        case code, fullName, classCode, grade, dateOfBirth, gender, guardian, relation, consentDate, scope, childAgrees

        /// Header names, compared after removing diacritics, case, spaces and punctuation.
        var names: [String] {
            switch self {
            case .code:
                return [
                    "Mã định danh", "Mã định danh học sinh", "Mã định danh BGD", "Mã học sinh", "Mã HS",
                    "Mã số học sinh", "student_code", "student code", "student id", "code",
                ]
            case .fullName:
                return [
                    "Họ và tên", "Họ tên", "Họ và tên học sinh", "Họ tên học sinh", "Tên học sinh",
                    "full_name", "full name", "name", "student name",
                ]
            case .classCode: return ["Lớp", "Tên lớp", "Mã lớp", "Lớp học", "class", "class_code", "class name"]
            case .grade: return ["Khối", "Khối lớp", "Mã khối", "grade", "grade_code"]
            case .dateOfBirth:
                return ["Ngày sinh", "Ngày tháng năm sinh", "date_of_birth", "date of birth", "dob", "birth date", "birthday"]
            case .gender: return ["Giới tính", "Phái", "gender", "sex"]
            case .guardian:
                return [
                    "Người giám hộ", "Phụ huynh", "Tên phụ huynh", "Họ tên phụ huynh", "Người đại diện",
                    "guardian", "guardian_name", "guardian name", "parent", "parent name",
                ]
            case .relation: return ["Quan hệ", "Mối quan hệ", "Quan hệ với học sinh", "relation", "relationship"]
            case .consentDate: return ["Ngày đồng ý", "Ngày chấp thuận", "consent_date", "consent date"]
            case .scope: return ["Phạm vi", "Phạm vi đồng ý", "consent_scope", "scope"]
            case .childAgrees: return ["Học sinh đồng ý", "child_agrees", "child agrees", "child consent"]
            }
        }

        static let required: [Column] = [.code, .fullName, .classCode]

        var label: String { names[0] + " / " + names.first(where: { $0.allSatisfy(\.isASCII) })! }
    }

    /// Lower-case ASCII letters and digits of a header: "Mã định danh" -> "madinhdanh".
    static func fold(_ s: String) -> String {
        var out = ""
        for u in s.lowercased().decomposedStringWithCanonicalMapping.unicodeScalars {
            if u == "đ" { out.append("d"); continue }
            if u.isASCII, u.properties.isAlphabetic || ("0"..."9").contains(u) { out.unicodeScalars.append(u) }
        }
        return out
    }

    static let lookup: [String: Column] = {
        var m: [String: Column] = [:]
        for c in Column.allCases { for n in c.names { m[fold(n)] = c } }
        return m
    }()

    /// Parses a roster file (CSV). Throws `RosterErrors` listing every bad line, or a `LineError`
    /// when the file itself cannot be read.
    public static func parse(contentsOf path: String, today: LocalDate = LocalDate(Date(), in: .current)) throws -> Roster {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw LineError(file: path, line: 0, reason: "cannot read the file (does it exist?)")
        }
        if data.starts(with: [0x50, 0x4B, 0x03, 0x04]) {
            throw LineError(
                file: path, line: 1, reason: "this is an Excel (.xlsx) file; save it as \"CSV UTF-8\" and import the .csv")
        }
        return try parse(data, file: path, today: today)
    }

    public static func parse(_ data: Data, file: String, today: LocalDate = LocalDate(Date(), in: .current)) throws -> Roster {
        let text: String
        do { text = try CSVReader.decode(data, file: file) } catch let e as LineError { throw RosterErrors(errors: [e]) }
        return try parse(text: text, file: file, today: today)
    }

    public static func parse(text: String, file: String, today: LocalDate = LocalDate(Date(), in: .current)) throws -> Roster {
        let (records, csvErrors) = CSVReader.parse(text, file: file)
        var errors = csvErrors
        func fail(_ line: Int, _ reason: String) { errors.append(LineError(file: file, line: line, reason: reason)) }

        // The header: the first of the top rows naming the three required columns.
        var headerIndex: Int?
        var columns: [Int: Column] = [:]
        var best: (line: Int, found: Set<Column>) = (records.first?.line ?? 1, [])
        for (i, record) in records.prefix(15).enumerated() {
            var map: [Int: Column] = [:]
            var duplicate: (Column, Int)?
            for (j, name) in record.fields.enumerated() {
                guard let c = lookup[fold(name)] else { continue }
                if let k = map.first(where: { $0.value == c })?.key { duplicate = (c, k); continue }
                map[j] = c
            }
            let found = Set(map.values)
            if Column.required.allSatisfy(found.contains) {
                if let (c, k) = duplicate {
                    fail(record.line, "two columns mean \(c.label): column \(k + 1) and another; keep one")
                }
                headerIndex = i
                columns = map
                break
            }
            if found.count > best.found.count { best = (record.line, found) }
        }
        guard let headerIndex else {
            let missing = Column.required.filter { !best.found.contains($0) }.map(\.label)
            fail(
                best.line,
                "no header row with the columns \(missing.joined(separator: ", ")) "
                    + "(the first rows must name at least the student code, full name and class)")
            throw RosterErrors(errors: errors.sorted { $0.line < $1.line })
        }
        let width = records[headerIndex].fields.count
        let hasConsent = columns.values.contains(.guardian)
        if !hasConsent, let j = columns.first(where: { [.relation, .consentDate].contains($0.value) })?.key {
            fail(
                records[headerIndex].line,
                "column \(j + 1) is part of consent but there is no guardian column (Người giám hộ / guardian)")
        }

        var entries: [RosterEntry] = []
        var seenCodes: [String: Int] = [:]
        var classGrades: [String: (grade: String, line: Int)] = [:]
        for record in records[(headerIndex + 1)...] {
            let line = record.line
            if record.fields.allSatisfy({ $0.trimmingCharacters(in: .whitespaces).isEmpty }) { continue }
            if record.fields.count > width,
                record.fields[width...].contains(where: { !$0.trimmingCharacters(in: .whitespaces).isEmpty })
            {
                fail(line, "\(record.fields.count) fields but the header has \(width) (a comma inside a name must be in quotes)")
                continue
            }
            var v: [Column: String] = [:]
            for (j, c) in columns where j < record.fields.count {
                let s = record.fields[j].normalizedText
                if !s.isEmpty { v[c] = s }
            }
            let before = errors.count

            let code = v[.code] ?? ""
            if code.isEmpty {
                fail(line, "the student code (mã định danh) is empty")
            } else if let reason = codeProblem(code) {
                fail(line, reason)
            } else if let first = seenCodes[code] {
                fail(line, "student code \(code) is also on line \(first)")
            } else {
                seenCodes[code] = line
            }

            let name = v[.fullName] ?? ""
            if name.isEmpty {
                fail(line, "the full name (họ và tên) is empty")
            } else if name.count > 200 {
                fail(line, "the full name is longer than 200 characters")
            }

            let classCode = SchoolClass.normalisedCode(v[.classCode] ?? "") // "Lớp 6a1" -> "6A1"
            var grade: String?
            if classCode.isEmpty {
                fail(line, "the class (lớp) is empty")
            } else {
                if let g = v[.grade] {
                    let digits = g.filter { $0.isASCII && $0.isNumber }
                    grade = digits.isEmpty ? g : String(Int(digits) ?? 0)
                } else if let g = SchoolClass.gradeCode(fromClass: classCode) {
                    grade = g
                } else {
                    fail(
                        line,
                        "cannot tell the grade of class '\(classCode)' (it does not start with digits); add a grade column (Khối / grade)"
                    )
                }
                if let grade {
                    if let known = classGrades[classCode], known.grade != grade {
                        fail(line, "class \(classCode) is in grade \(grade) here but grade \(known.grade) on line \(known.line)")
                    } else if classGrades[classCode] == nil {
                        classGrades[classCode] = (grade, line)
                    }
                }
            }

            var dob: LocalDate?
            if let text = v[.dateOfBirth] {
                if let d = parseDate(text) {
                    if d > today {
                        fail(line, "the date of birth \(text) is in the future")
                    } else if d.year < 1900 {
                        fail(line, "the date of birth \(text) is too early")
                    } else {
                        dob = d
                    }
                } else {
                    fail(line, "the date of birth '\(text)' is not a date like 05/09/2012 (dd/MM/yyyy) or 2012-09-05")
                }
            }

            var gender: String?
            if let text = v[.gender] {
                if let g = parseGender(text) {
                    gender = g
                } else {
                    fail(line, "gender '\(text)' is not one of Nam, Nữ, male, female")
                }
            }

            var consent: RosterConsent?
            if hasConsent {
                let guardian = v[.guardian], relation = v[.relation], dateText = v[.consentDate]
                let childText = v[.childAgrees]
                if let guardian {
                    var date: LocalDate?
                    if relation == nil { fail(line, "consent: the guardian's relation (quan hệ) is empty") }
                    if let dateText {
                        date = parseDate(dateText)
                        if date == nil {
                            fail(line, "consent: the date '\(dateText)' is not a date like 05/09/2024")
                        } else if date! > today {
                            fail(line, "consent: the date \(dateText) is in the future")
                        }
                    } else {
                        fail(line, "consent: the consent date (ngày đồng ý) is empty")
                    }
                    var child = false
                    if let childText {
                        if let b = parseYesNo(childText) {
                            child = b
                        } else {
                            fail(line, "consent: '\(childText)' in the child-agrees column is not Có/Không or yes/no")
                        }
                    }
                    if let dob, let date, Consent.age(of: dob, on: date) >= Consent.childConsentAge, !child {
                        fail(
                            line,
                            "consent: the student is \(Consent.childConsentAge) or older, so the child's own agreement "
                                + "is needed too (Decree 13/2023); add a column \"Học sinh đồng ý\" with Có")
                    }
                    if let relation, let date {
                        consent = RosterConsent(
                            guardian: guardian, relation: relation, date: date, scope: v[.scope], childAgreed: child)
                    }
                } else if relation != nil || dateText != nil {
                    fail(line, "consent: a relation or date is given but the guardian's name is empty")
                }
            }

            if errors.count == before, let grade {
                entries.append(
                    RosterEntry(
                        line: line, code: code, fullName: name, classCode: classCode, gradeCode: grade,
                        dateOfBirth: dob, gender: gender, consent: consent))
            }
        }
        if errors.isEmpty && entries.isEmpty {
            fail(records[headerIndex].line, "the roster has a header but no students")
        }
        if !errors.isEmpty { throw RosterErrors(errors: errors.sorted { $0.line < $1.line }) }
        return Roster(
            file: file, entries: entries, hasDateOfBirth: columns.values.contains(.dateOfBirth),
            hasGender: columns.values.contains(.gender))
    }

    /// Why a student code is unusable, or nil. Codes are the sector's fixed identifiers: letters,
    /// digits, `-`, `_`, `.`; up to 32 characters.
    static func codeProblem(_ code: String) -> String? {
        if code.range(of: #"^[0-9]+(\.[0-9]+)?[eE]\+[0-9]+$"#, options: .regularExpression) != nil {
            return "the student code \(code) was turned into a number by the spreadsheet; "
                + "format that column as Text and export again"
        }
        if code.count > 32 { return "the student code '\(code)' is longer than 32 characters" }
        let ok = code.unicodeScalars.allSatisfy {
            $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || "-_.".unicodeScalars.contains($0))
        }
        return ok ? nil : "the student code '\(code)' may only hold letters, digits, '-', '_' and '.'"
    }

    /// dd/MM/yyyy (also d/M/yyyy, with - or .), yyyy-MM-dd, or an Excel serial day number.
    public static func parseDate(_ text: String) -> LocalDate? {
        let t = text.trimmingCharacters(in: .whitespaces)
        if let d = LocalDate(t) { return d }
        let parts = t.split(whereSeparator: { $0 == "/" || $0 == "-" || $0 == "." }).map(String.init)
        if parts.count == 3, parts[2].count == 4, (1...2).contains(parts[0].count), (1...2).contains(parts[1].count),
            let d = Int(parts[0]), let m = Int(parts[1]), let y = Int(parts[2])
        {
            return LocalDate(String(format: "%04d-%02d-%02d", y, m, d))
        }
        if t.count == 5, let serial = Int(t), (10_000...80_000).contains(serial) {
            return LocalDate(year: 1899, month: 12, day: 30).adding(days: serial)
        }
        return nil
    }

    static func parseGender(_ text: String) -> String? {
        switch fold(text) {
        case "nam", "male", "m", "trai", "boy": return "male"
        case "nu", "female", "f", "gai", "girl": return "female"
        case "khac", "other": return "other"
        default: return nil
        }
    }

    static func parseYesNo(_ text: String) -> Bool? {
        switch fold(text) {
        case "x", "co", "yes", "y", "true", "1", "dongy": return true
        case "", "khong", "no", "n", "false", "0": return false
        default: return nil
        }
    }
}
