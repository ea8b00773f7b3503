import AttendanceCore
import Foundation
import GRDB

// Students and classes (`AttendanceStore.roster`); the import itself is in Roster/RosterImport.swift.

extension AttendanceStore {
    static func student(_ db: Database, code: String) throws -> Student? {
        try Student.fetchOne(db, sql: Student.selectSQL + " WHERE s.code = ?", arguments: [code])
    }
}

extension Student {
    /// Class-list order: class, given name (last word), then the full name.
    public static func classListOrder(_ a: Student, _ b: Student) -> Bool {
        if a.classCode != b.classCode { return a.classCode.localizedStandardCompare(b.classCode) == .orderedAscending }
        let ga = a.fullName.split(separator: " ").last.map(String.init) ?? a.fullName
        let gb = b.fullName.split(separator: " ").last.map(String.init) ?? b.fullName
        let vi = Locale(identifier: "vi_VN")
        let c = ga.compare(gb, options: [.caseInsensitive], range: nil, locale: vi)
        if c != .orderedSame { return c == .orderedAscending }
        let f = a.fullName.compare(b.fullName, options: [.caseInsensitive], range: nil, locale: vi)
        if f != .orderedSame { return f == .orderedAscending }
        return a.code < b.code
    }
}

extension RosterBook {
    public func student(code: String) throws -> Student? {
        try store.writer.read { db in try AttendanceStore.student(db, code: code) }
    }

    /// Students of one class (or all), in class-list order: class, then given name (the last word,
    /// as Vietnamese class lists sort), then full name.
    public func students(classCode: String? = nil, activeOnly: Bool = true) throws -> [Student] {
        let rows = try store.writer.read { db in
            var sql = Student.selectSQL + " WHERE 1"
            var args: StatementArguments = []
            if let classCode { sql += " AND s.class_code = ?"; args += [SchoolClass.normalisedCode(classCode)] }
            if activeOnly { sql += " AND s.active = 1" }
            return try Student.fetchAll(db, sql: sql, arguments: args)
        }
        return rows.sorted(by: Student.classListOrder)
    }

    public func classes() throws -> [SchoolClass] {
        try store.writer.read { db in
            try SchoolClass.fetchAll(db, sql: "SELECT code, grade_code, name FROM school_class ORDER BY grade_code, code")
        }
    }
}
