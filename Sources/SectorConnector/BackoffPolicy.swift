import Foundation

/// Exponential backoff with "equal jitter": after the n-th failed attempt, wait a random time in
/// [d/2, d] where d = min(maximum, initial * multiplier^(n-1)). The random half spreads the retries of
/// many schools after an outage; the fixed half keeps a failing gateway from being hammered.
public struct BackoffPolicy: Sendable, Equatable {
    public var initial: Double
    public var multiplier: Double
    public var maximum: Double

    public init(initial: Double = 2, multiplier: Double = 2, maximum: Double = 900) {
        precondition(initial >= 0 && multiplier >= 1 && maximum >= initial, "invalid backoff")
        self.initial = initial; self.multiplier = multiplier; self.maximum = maximum
    }

    /// The ceiling d for the `attempts`-th failure (1-based).
    public func ceiling(attempts: Int) -> Double {
        let n = max(1, attempts)
        // Cap the exponent first: 2^1000 is inf, and inf * 0 is nan.
        let exponent = min(Double(n - 1), 64)
        return min(maximum, initial * pow(multiplier, exponent))
    }

    /// The wait in seconds after the `attempts`-th failure.
    public func delay(attempts: Int, using rng: inout some RandomNumberGenerator) -> Double {
        let d = ceiling(attempts: attempts)
        guard d > 0 else { return 0 }
        return Double.random(in: (d / 2)...d, using: &rng)
    }

    public func delay(attempts: Int) -> Double {
        var rng = SystemRandomNumberGenerator()
        return delay(attempts: attempts, using: &rng)
    }
}
