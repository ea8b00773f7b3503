import Foundation

/// A small seeded generator (SplitMix64), so a randomised test can be replayed from its seed.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    public var state: UInt64
    public init(state: UInt64) { self.state = state }
    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    public mutating func int(_ n: Int) -> Int { Int(next() % UInt64(n)) }
    public mutating func uniform() -> Double { Double(next() >> 11) * 0x1p-53 }
    public mutating func gaussian() -> Float {
        let u = max(uniform(), 1e-300), v = uniform()
        return Float((-2 * log(u)).squareRoot() * cos(2 * Double.pi * v))
    }
    public mutating func gaussianVector(_ d: Int) -> [Float] { (0..<d).map { _ in gaussian() } }
}
