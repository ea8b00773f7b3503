import Foundation

/// One part of a `multipart/form-data` body (RFC 7578): a form field or an uploaded file.
struct FormPart: Sendable {
    var name: String
    var filename: String?
    var bytes: [UInt8]
    var text: String { String(decoding: bytes, as: UTF8.self) }
}

enum MultipartError: Error, Equatable {
    case notMultipart
    case malformed
}

/// Splits a multipart/form-data body into its parts. The boundary comes from the Content-Type header.
enum Multipart {
    static func boundary(contentType: String?) -> String? {
        guard let contentType, contentType.lowercased().hasPrefix("multipart/form-data") else { return nil }
        for piece in contentType.split(separator: ";") {
            let p = piece.trimmingCharacters(in: .whitespaces)
            if p.lowercased().hasPrefix("boundary=") {
                var b = String(p.dropFirst("boundary=".count))
                if b.hasPrefix("\""), b.hasSuffix("\""), b.count >= 2 { b = String(b.dropFirst().dropLast()) }
                return b.isEmpty || b.count > 70 ? nil : b
            }
        }
        return nil
    }

    static func parse(_ body: [UInt8], boundary: String) throws(MultipartError) -> [FormPart] {
        let delimiter = Array("--\(boundary)".utf8)
        var parts: [FormPart] = []
        guard var start = find(delimiter, in: body, from: 0) else { throw .malformed }
        while true {
            var cursor = start + delimiter.count
            // "--" after the delimiter closes the body.
            if cursor + 1 < body.count, body[cursor] == UInt8(ascii: "-"), body[cursor + 1] == UInt8(ascii: "-") { break }
            guard cursor + 1 < body.count, body[cursor] == 13, body[cursor + 1] == 10 else { throw .malformed }
            cursor += 2
            guard let headerEnd = find([13, 10, 13, 10], in: body, from: cursor) else { throw .malformed }
            let headers = String(decoding: body[cursor..<headerEnd], as: UTF8.self)
            let contentStart = headerEnd + 4
            guard let next = find([13, 10] + delimiter, in: body, from: contentStart) else { throw .malformed }
            var name: String?
            var filename: String?
            for line in headers.components(separatedBy: "\r\n")
            where line.lowercased().hasPrefix("content-disposition:") {
                name = parameter("name", in: line)
                filename = parameter("filename", in: line)
            }
            guard let name else { throw .malformed }
            parts.append(FormPart(name: name, filename: filename, bytes: Array(body[contentStart..<next])))
            start = next + 2
        }
        return parts
    }

    private static func parameter(_ key: String, in line: String) -> String? {
        for piece in line.split(separator: ";") {
            let p = piece.trimmingCharacters(in: .whitespaces)
            guard p.hasPrefix("\(key)=") else { continue }
            var v = String(p.dropFirst(key.count + 1))
            if v.hasPrefix("\""), v.hasSuffix("\""), v.count >= 2 { v = String(v.dropFirst().dropLast()) }
            return v
        }
        return nil
    }

    private static func find(_ needle: [UInt8], in hay: [UInt8], from: Int) -> Int? {
        guard !needle.isEmpty, hay.count >= needle.count, from <= hay.count - needle.count else { return nil }
        let first = needle[0]
        var i = from
        let last = hay.count - needle.count
        while i <= last {
            if hay[i] == first {
                var j = 1
                while j < needle.count && hay[i + j] == needle[j] { j += 1 }
                if j == needle.count { return i }
            }
            i += 1
        }
        return nil
    }
}

/// Sign-in throttling, per account and per address: after 5 failures within 15 minutes, each further
/// attempt waits out a delay that doubles (30 s, 60 s, … up to 15 minutes). An attempt counts as a failure
/// from the moment it starts (parallel guesses cannot slip past the limit) until it succeeds; at most two
/// password checks run at once (each is 32 MB of scrypt on a box that also runs the cameras).
actor LoginThrottle {
    private struct Record { var failures: [Date] = []; var lockedUntil: Date? }
    private var byKey: [String: Record] = [:]
    private var checking = 0
    let window: TimeInterval = 15 * 60
    let freeFailures = 5
    let concurrentChecks = 2

    enum Answer: Equatable { case go, wait(Int), busy }

    /// Starts an attempt for `keys` (account, address): `.go` counts it as a failure until `succeeded`,
    /// and the caller must call `finished` when the check is done.
    func begin(_ keys: [String], now: Date = Date()) -> Answer {
        var wait: TimeInterval = 0
        for k in keys { if let until = byKey[k]?.lockedUntil, until > now { wait = max(wait, until.timeIntervalSince(now)) } }
        if wait > 0 { return .wait(Int(wait.rounded(.up))) }
        if checking >= concurrentChecks { return .busy }
        checking += 1
        for k in keys {
            var r = byKey[k] ?? Record()
            r.failures = r.failures.filter { now.timeIntervalSince($0) < window } + [now]
            let over = r.failures.count - freeFailures
            if over >= 0 { r.lockedUntil = now.addingTimeInterval(min(window, 30 * pow(2, Double(min(over, 10))))) }
            byKey[k] = r
        }
        if byKey.count > 10_000 { byKey = byKey.filter { $0.value.lockedUntil.map { $0 > now } ?? false } }
        return .go
    }

    func finished() { checking = max(0, checking - 1) }

    /// The attempt was right: the account starts afresh, and the address loses the failure it was counted.
    func succeeded(account: String, address: String) {
        byKey[account] = nil
        if var r = byKey[address] {
            if !r.failures.isEmpty { r.failures.removeLast() }
            if r.failures.count < freeFailures { r.lockedUntil = nil }
            byKey[address] = r
        }
    }
}
