#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// The gallery's file format, version 2 (all integers little-endian):
///
///     offset  size  field
///     0       8     magic "FMGALLRY"
///     8       4     format version (2)
///     12      4     dimension
///     16      4     student count S
///     20      8     row count R
///     28      1     storage (GalleryStorage raw value), then 3 zero bytes
///     32      8     total file length in bytes, checksum included
///     40      ...   S x (UInt32 byte length + UTF-8 student identifier)
///             4R    row -> student index (UInt32)
///             4RD   the rows as enrolled (Float32), row after row
///
/// Version 1 had the same layout with normalised rows. It is refused, not read: its distances would be
/// in another metric than the queries' (build the file again from the enrolled embeddings).
///     end-4   4     CRC-32 (IEEE 802.3) of every byte before it
///
/// The length field tells a truncated file from a corrupted one; the checksum
/// catches any other change. Files are written atomically (temporary + rename).
public enum GalleryFile {
    public static let magic: [UInt8] = Array("FMGALLRY".utf8)
    public static let formatVersion: UInt32 = 2
    static let headerSize = 40

    /// The file's bytes for `snapshot`.
    public static func encode(_ snapshot: GallerySnapshot) -> [UInt8] {
        let names = snapshot.students.map { Array($0.utf8) }
        let rows = snapshot.count, d = snapshot.dimension
        let total = headerSize + names.reduce(0) { $0 + 4 + $1.count } + 4 * rows + 4 * rows * d + 4
        var out = [UInt8]()
        out.reserveCapacity(total)
        out += magic
        out.appendLE(formatVersion)
        out.appendLE(UInt32(d))
        out.appendLE(UInt32(names.count))
        out.appendLE(UInt64(rows))
        out += [snapshot.storage.rawValue, 0, 0, 0]
        out.appendLE(UInt64(total))
        for n in names {
            out.appendLE(UInt32(n.count))
            out += n
        }
        for s in snapshot.rowStudent { out.appendLE(s) }
        for r in 0..<rows {
            let row = UnsafeBufferPointer(start: snapshot.floats.pointer + r * snapshot.stride, count: d)
            #if _endian(little)
                out.append(contentsOf: UnsafeRawBufferPointer(row))
            #else
                for v in row { out.appendLE(v.bitPattern) }
            #endif
        }
        out.appendLE(CRC32.checksum(out))
        precondition(out.count == total)
        return out
    }

    /// A snapshot from a file's bytes.
    /// - Throws: `GalleryFileError` saying what is wrong: not a gallery file, a newer
    ///   format, truncated, checksum mismatch, or inconsistent contents.
    public static func decode(_ bytes: [UInt8]) throws -> GallerySnapshot {
        guard bytes.count >= 8, Array(bytes[0..<8]) == magic else { throw GalleryFileError.notAGalleryFile }
        guard bytes.count >= headerSize + 4 else {
            throw GalleryFileError.truncated(expectedBytes: headerSize + 4, actualBytes: bytes.count)
        }
        var reader = Reader(bytes: bytes, offset: 8)
        let version: UInt32 = try reader.read()
        guard version == formatVersion else { throw GalleryFileError.unsupportedVersion(version) }
        let dimension: UInt32 = try reader.read()
        let studentCount: UInt32 = try reader.read()
        let rowCount: UInt64 = try reader.read()
        let storageByte: UInt8 = try reader.read()
        reader.offset += 3
        let total: UInt64 = try reader.read()
        guard total <= UInt64(Int.max), Int(total) <= bytes.count else {
            throw GalleryFileError.truncated(expectedBytes: Int(clamping: total), actualBytes: bytes.count)
        }
        guard Int(total) == bytes.count else {
            throw GalleryFileError.malformed("\(bytes.count - Int(total)) bytes after the end of the gallery")
        }
        var stored: UInt32 = 0
        for i in 0..<4 { stored |= UInt32(bytes[Int(total) - 4 + i]) << (8 * i) }
        let computed = bytes.withUnsafeBufferPointer { CRC32.checksum(UnsafeBufferPointer(rebasing: $0[0..<(Int(total) - 4)])) }
        guard stored == computed else { throw GalleryFileError.checksumMismatch(stored: stored, computed: computed) }

        guard let storage = GalleryStorage(rawValue: storageByte) else {
            throw GalleryFileError.malformed("unknown storage \(storageByte)")
        }
        let d = Int(dimension)
        guard d >= 1, d <= GallerySnapshot.maxDimension else { throw GalleryFileError.malformed("dimension \(d)") }
        let body = Int(total) - 4 - headerSize
        guard rowCount <= UInt64(body / (4 + 4 * d)), studentCount <= UInt32(body / 4) else {
            throw GalleryFileError.malformed("\(rowCount) rows and \(studentCount) students do not fit in the file")
        }
        var students: [String] = []
        students.reserveCapacity(Int(studentCount))
        var seen = Set<String>()
        for _ in 0..<studentCount {
            let length: UInt32 = try reader.read()
            let raw = try reader.take(Int(length))
            guard let name = String(validating: raw, as: UTF8.self) else {
                throw GalleryFileError.malformed("student \(students.count) is not UTF-8")
            }
            guard seen.insert(name).inserted else { throw GalleryFileError.malformed("student \(name) appears twice") }
            students.append(name)
        }
        let rows = Int(rowCount)
        var rowStudent = [UInt32](repeating: 0, count: rows)
        for r in 0..<rows {
            let s: UInt32 = try reader.read()
            guard s < studentCount else { throw GalleryFileError.malformed("row \(r) names student \(s) of \(studentCount)") }
            rowStudent[r] = s
        }
        let stride = GallerySnapshot.stride(for: d)
        let floats = AlignedBuffer<Float>(count: rows * stride)
        for r in 0..<rows {
            let dst = floats.pointer + r * stride
            #if _endian(little)
                let raw = try reader.take(4 * d)
                raw.withUnsafeBytes { src in UnsafeMutableRawPointer(dst).copyMemory(from: src.baseAddress!, byteCount: 4 * d) }
            #else
                for i in 0..<d { dst[i] = Float(bitPattern: try reader.read()) }
            #endif
            for i in 0..<d where !dst[i].isFinite {
                throw GalleryFileError.malformed("row \(r) holds a non-finite value")
            }
        }
        guard reader.offset == Int(total) - 4 else {
            throw GalleryFileError.malformed("\(Int(total) - 4 - reader.offset) unexplained bytes before the checksum")
        }
        return try GallerySnapshot(
            dimension: d, storage: storage, version: 0, students: students,
            rowStudent: rowStudent, floats: floats)
    }

    /// Writes `snapshot` to `url` atomically.
    public static func write(_ snapshot: GallerySnapshot, to url: URL) throws {
        try Data(encode(snapshot)).write(to: url, options: .atomic)
    }

    /// Reads a gallery file.
    public static func read(from url: URL) throws -> GallerySnapshot {
        try decode([UInt8](try Data(contentsOf: url)))
    }

    private struct Reader {
        let bytes: [UInt8]
        var offset: Int

        mutating func take(_ n: Int) throws -> ArraySlice<UInt8> {
            guard n >= 0, offset + n <= bytes.count - 4 else {
                throw GalleryFileError.malformed("a field runs past the end of the data at byte \(offset)")
            }
            defer { offset += n }
            return bytes[offset..<(offset + n)]
        }

        mutating func read<T: FixedWidthInteger>() throws -> T {
            let raw = try take(MemoryLayout<T>.size)
            var v: T = 0
            for (i, b) in raw.enumerated() { v |= T(b) << (8 * i) }
            return v
        }
    }
}

extension GallerySnapshot {
    /// Writes this snapshot as a `GalleryFile`.
    public func write(to url: URL) throws { try GalleryFile.write(self, to: url) }

    /// Reads a `GalleryFile`.
    public static func read(from url: URL) throws -> GallerySnapshot { try GalleryFile.read(from: url) }
}

/// Why a gallery file was refused.
public enum GalleryFileError: Error, Equatable, Sendable, CustomStringConvertible {
    case notAGalleryFile
    case unsupportedVersion(UInt32)
    case truncated(expectedBytes: Int, actualBytes: Int)
    case checksumMismatch(stored: UInt32, computed: UInt32)
    case malformed(String)

    public var description: String {
        switch self {
        case .notAGalleryFile: return "not a FaceMatch gallery file (bad magic)"
        case let .unsupportedVersion(v):
            return "gallery file format \(v) is not supported (this build reads \(GalleryFile.formatVersion))"
        case let .truncated(e, a): return "gallery file is truncated: \(a) bytes of \(e)"
        case let .checksumMismatch(s, c):
            return "gallery file is corrupted: CRC-32 is \(String(c, radix: 16)), the file says \(String(s, radix: 16))"
        case let .malformed(why): return "gallery file is malformed: \(why)"
        }
    }
}

/// CRC-32 (IEEE 802.3, reflected 0xEDB88320), slicing by 8.
enum CRC32 {
    /// table[k * 256 + i]: the CRC of byte i followed by k zero bytes.
    static let table: [UInt32] = {
        var t = [UInt32](repeating: 0, count: 8 * 256)
        for i in 0..<256 {
            var c = UInt32(i)
            for _ in 0..<8 { c = c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
            t[i] = c
        }
        for k in 1..<8 {
            for i in 0..<256 { t[k * 256 + i] = (t[(k - 1) * 256 + i] >> 8) ^ t[Int(t[(k - 1) * 256 + i] & 0xff)] }
        }
        return t
    }()

    static func checksum(_ bytes: [UInt8]) -> UInt32 { bytes.withUnsafeBufferPointer { checksum($0) } }

    static func checksum(_ p: UnsafeBufferPointer<UInt8>) -> UInt32 {
        table.withUnsafeBufferPointer { t in
            var c: UInt32 = 0xFFFF_FFFF
            var i = 0
            let n = p.count
            while i + 8 <= n {
                var lo = c
                for j in 0..<4 { lo ^= UInt32(p[i + j]) << (8 * j) }
                var hi: UInt32 = 0
                for j in 0..<4 { hi |= UInt32(p[i + 4 + j]) << (8 * j) }
                var x = t[7 * 256 + Int(lo & 0xff)] ^ t[6 * 256 + Int((lo >> 8) & 0xff)]
                x ^= t[5 * 256 + Int((lo >> 16) & 0xff)] ^ t[4 * 256 + Int(lo >> 24)]
                x ^= t[3 * 256 + Int(hi & 0xff)] ^ t[2 * 256 + Int((hi >> 8) & 0xff)]
                x ^= t[256 + Int((hi >> 16) & 0xff)] ^ t[Int(hi >> 24)]
                c = x
                i += 8
            }
            while i < n {
                c = t[Int((c ^ UInt32(p[i])) & 0xff)] ^ (c >> 8)
                i += 1
            }
            return c ^ 0xFFFF_FFFF
        }
    }
}

extension Array where Element == UInt8 {
    mutating func appendLE<T: FixedWidthInteger>(_ v: T) {
        for i in 0..<MemoryLayout<T>.size { append(UInt8(truncatingIfNeeded: v >> (8 * i))) }
    }
}
