import Foundation

/// Decree 13/2023/NĐ-CP on personal data: a child's biometric data needs a parent's or guardian's
/// consent, and from age 7 the child's own agreement as well.
extension Consent {
    public static let childConsentAge = 7
    public static let childAgreedSuffix = "; the child (7 or older) agreed"

    /// Whole years from `dateOfBirth` to `date`.
    public static func age(of dateOfBirth: LocalDate, on date: LocalDate) -> Int {
        var years = date.year - dateOfBirth.year
        if (date.month, date.day) < (dateOfBirth.month, dateOfBirth.day) { years -= 1 }
        return years
    }

    /// True when the roster gives a date of birth and the child is at least 7 on `date`.
    public static func childMustAgree(_ student: Student, on date: LocalDate) -> Bool {
        guard let dob = student.dateOfBirth else { return false }
        return age(of: dob, on: date) >= childConsentAge
    }

    public static func checkDate(_ date: LocalDate, student: Student) throws {
        let today = LocalDate(Date(), in: .current)
        if date > today.adding(days: 1) {
            throw StoreError.invalid("the consent date \(date) is in the future")
        }
        if let dob = student.dateOfBirth, date < dob {
            throw StoreError.invalid("the consent date \(date) is before the student's date of birth \(dob)")
        }
    }
}
