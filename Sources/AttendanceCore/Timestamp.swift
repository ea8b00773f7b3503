import Foundation

/// Instants as the schema stores them: ISO-8601 in UTC with milliseconds, `2024-09-05T00:31:07.250Z`.
/// Text of this fixed shape sorts chronologically, so SQL can compare it directly.
public enum Timestamp {
    public static func string(_ date: Date) -> String {
        let ms = (date.timeIntervalSince1970 * 1000).rounded(.down)
        var seconds = time_t((ms / 1000).rounded(.down))
        let millis = Int(ms - Double(seconds) * 1000)
        var t = tm()
        gmtime_r(&seconds, &t)
        return String(
            format: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
            Int(t.tm_year) + 1900, Int(t.tm_mon) + 1, Int(t.tm_mday),
            Int(t.tm_hour), Int(t.tm_min), Int(t.tm_sec), millis)
    }

    /// Parses what `string(_:)` writes (milliseconds optional).
    public static func date(_ text: String) -> Date? {
        let s = Array(text.utf8)
        guard s.count >= 20, s.last == UInt8(ascii: "Z") else { return nil }
        func num(_ from: Int, _ len: Int) -> Int? {
            guard from + len <= s.count else { return nil }
            var v = 0
            for c in s[from..<(from + len)] {
                guard (48...57).contains(c) else { return nil }
                v = v * 10 + Int(c - 48)
            }
            return v
        }
        guard let y = num(0, 4), let mo = num(5, 2), let d = num(8, 2), let h = num(11, 2),
            let mi = num(14, 2), let sec = num(17, 2)
        else { return nil }
        var ms = 0
        if s.count == 24, s[19] == UInt8(ascii: "."), let m = num(20, 3) { ms = m }
        var t = tm()
        t.tm_year = Int32(y - 1900); t.tm_mon = Int32(mo - 1); t.tm_mday = Int32(d)
        t.tm_hour = Int32(h); t.tm_min = Int32(mi); t.tm_sec = Int32(sec)
        let epoch = timegm(&t)
        return Date(timeIntervalSince1970: Double(epoch) + Double(ms) / 1000)
    }
}
