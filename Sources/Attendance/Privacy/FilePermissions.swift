import AttendanceCore
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// The database and the key file hold children's biometric data: only their owner may read them.
public enum FilePermissions {
    /// Throws `unsafePermissions` when group or others have any access to an existing file.
    public static func requirePrivate(_ path: String) throws {
        var st = stat()
        guard stat(path, &st) == 0 else {
            if errno == ENOENT { return }
            throw StoreError.io(path: path, reason: String(cString: strerror(errno)))
        }
        let mode = UInt16(st.st_mode & 0o777)
        if mode & 0o077 != 0 { throw StoreError.unsafePermissions(path: path, mode: mode) }
    }

    /// Flushes a file or folder to disk.
    static func sync(_ path: String) throws {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw StoreError.io(path: path, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        guard Glibc.fsync(fd) == 0 else { throw StoreError.io(path: path, reason: "fsync: " + String(cString: strerror(errno))) }
    }

    /// Creates `path` (and its parents) with mode 0700, or tightens an existing folder to 0700.
    static func createPrivateDirectory(_ path: String) throws {
        do {
            try FileManager.default.createDirectory(
                atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            try FileManager.default.setAttributes([.posixPermissions: 0o700], ofItemAtPath: path)
        } catch {
            throw StoreError.io(path: path, reason: "cannot create the private folder: \(error.localizedDescription)")
        }
    }

    /// Creates an empty file readable and writable by its owner only; false if it already existed.
    @discardableResult
    public static func createPrivate(_ path: String, contents: [UInt8] = []) throws -> Bool {
        let dir = (path as NSString).deletingLastPathComponent
        if !dir.isEmpty, !FileManager.default.fileExists(atPath: dir) {
            do {
                try FileManager.default.createDirectory(
                    atPath: dir, withIntermediateDirectories: true,
                    attributes: [.posixPermissions: 0o700])
            } catch {
                throw StoreError.io(path: dir, reason: "cannot create the folder: \(error.localizedDescription)")
            }
        }
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        if fd < 0 {
            if errno == EEXIST { return false }
            throw StoreError.io(path: path, reason: "cannot create: \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        // The umask cannot widen 0600, but be explicit in case the file system ignores the mode.
        fchmod(fd, 0o600)
        var written = 0
        while written < contents.count {
            let n = contents[written...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                let reason = String(cString: strerror(errno))
                unlink(path)
                throw StoreError.io(path: path, reason: "cannot write: \(reason)")
            }
            written += n
        }
        guard fsync(fd) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(path)
            throw StoreError.io(path: path, reason: "cannot write: \(reason)")
        }
        return true
    }
}
