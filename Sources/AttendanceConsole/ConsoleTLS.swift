import Attendance
import AttendanceCore
import Crypto
import Foundation
import NIOSSL
import SwiftASN1
import X509

/// The console's TLS identity: the certificate and key named by the config, or a self-signed pair the box
/// makes on first start (the key 0600, in the state directory) and reuses after. Its SHA-256 fingerprint
/// is logged so the admin can check, the first time, that the browser talks to this box.
public struct ConsoleTLS: Sendable {
    public let configuration: TLSConfiguration
    /// SHA-256 of the certificate (DER), as browsers show it: "AB:CD:…".
    public let fingerprint: String
    /// Set when this start made the self-signed pair.
    public let created: Bool
    public let certificatePath: String

    /// Loads (or, without configured paths, creates in `stateDirectory`) the certificate and key.
    public static func load(config: AttendanceConfig.Console, stateDirectory: String) throws -> ConsoleTLS {
        var certPath = config.tlsCertificate ?? ""
        var keyPath = config.tlsKey ?? ""
        var created = false
        if certPath.isEmpty {
            certPath = stateDirectory + "/console-tls-cert.pem"
            keyPath = stateDirectory + "/console-tls-key.pem"
            if !FileManager.default.fileExists(atPath: certPath) || !FileManager.default.fileExists(atPath: keyPath) {
                try makeSelfSigned(certificate: certPath, key: keyPath)
                created = true
            }
        }
        try FilePermissions.requirePrivate(keyPath)
        guard let certPEM = FileManager.default.contents(atPath: certPath) else {
            throw StoreError.io(path: certPath, reason: "cannot read the console's TLS certificate")
        }
        guard let keyPEM = FileManager.default.contents(atPath: keyPath) else {
            throw StoreError.io(path: keyPath, reason: "cannot read the console's TLS key")
        }
        let chain: [NIOSSLCertificate]
        let key: NIOSSLPrivateKey
        do {
            chain = try NIOSSLCertificate.fromPEMBytes(Array(certPEM))
            key = try NIOSSLPrivateKey(bytes: Array(keyPEM), format: .pem)
        } catch {
            throw StoreError.invalid("\(certPath) / \(keyPath): not a PEM certificate and key (\(error))")
        }
        guard let leaf = chain.first else { throw StoreError.invalid("\(certPath): no certificate in the file") }
        let der = try leaf.toDERBytes()
        let fingerprint = SHA256.hash(data: der).map { String(format: "%02X", $0) }.joined(separator: ":")
        var tls = TLSConfiguration.makeServerConfiguration(
            certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        tls.minimumTLSVersion = .tlsv12
        return ConsoleTLS(configuration: tls, fingerprint: fingerprint, created: created, certificatePath: certPath)
    }

    /// A P-256 key and a 10-year self-signed certificate for this box's names, written 0600 (key) and 0644.
    static func makeSelfSigned(certificate certPath: String, key keyPath: String) throws {
        let signing = P256.Signing.PrivateKey()
        let key = Certificate.PrivateKey(signing)
        let host = ProcessInfo.processInfo.hostName
        let name = try DistinguishedName {
            OrganizationName("School attendance console")
            CommonName(host.isEmpty ? "localhost" : host)
        }
        var names: [GeneralName] = [.dnsName("localhost"), .ipAddress(ASN1OctetString(contentBytes: [127, 0, 0, 1]))]
        if !host.isEmpty && host != "localhost" { names.append(.dnsName(host)) }
        let now = Date()
        let extensions = try Certificate.Extensions {
            Critical(BasicConstraints.notCertificateAuthority)
            // keyCertSign: the certificate is its own issuer, and BoringSSL (Chromium) checks the issuer may sign.
            Critical(KeyUsage(digitalSignature: true, keyCertSign: true))
            try ExtendedKeyUsage([.serverAuth])
            SubjectAlternativeNames(names)
        }
        let cert = try Certificate(
            version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: key.publicKey,
            notValidBefore: now.addingTimeInterval(-3600), notValidAfter: now.addingTimeInterval(10 * 365 * 86400),
            issuer: name, subject: name, signatureAlgorithm: .ecdsaWithSHA256, extensions: extensions,
            issuerPrivateKey: key)
        try? FileManager.default.removeItem(atPath: keyPath)
        try FilePermissions.createPrivate(keyPath, contents: Array(signing.pemRepresentation.utf8))
        try Data(try cert.serializeAsPEM().pemString.utf8).write(to: URL(fileURLWithPath: certPath), options: .atomic)
    }
}
