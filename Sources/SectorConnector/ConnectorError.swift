import Foundation

/// Errors of the connector's set-up (delivery problems are outcomes, not errors).
public enum ConnectorError: Error, CustomStringConvertible, Sendable {
    case configuration(String)

    public var description: String {
        switch self {
        case .configuration(let s): return "connector: \(s)"
        }
    }
}
