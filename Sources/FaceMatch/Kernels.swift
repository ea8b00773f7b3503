import CSimdKernels

/// The instruction set of the search kernels, chosen at run time from the CPU's features.
public enum SimdLevel: Int32, Sendable, CaseIterable, CustomStringConvertible {
    case scalar = 0
    case avx2 = 1
    case avx512 = 2
    case neon = 3

    /// The best level this CPU runs.
    public static var detected: SimdLevel { SimdLevel(rawValue: fm_detected_isa()) ?? .scalar }

    /// The level the kernels use now.
    public static var active: SimdLevel { SimdLevel(rawValue: fm_active_isa()) ?? .scalar }

    /// The levels this CPU can run (scalar always).
    public static var available: [SimdLevel] {
        allCases.filter { $0 == .scalar || $0 == detected || ($0 == .avx2 && detected == .avx512) }
    }

    /// Forces a level process-wide (tests and benchmarks); `nil` restores the detected one.
    /// Returns false when the CPU cannot run it.
    @discardableResult
    public static func force(_ level: SimdLevel?) -> Bool {
        fm_set_isa(level.map { $0.rawValue } ?? Int32(FM_ISA_AUTO)) == 0
    }

    public var description: String { String(cString: fm_isa_name(rawValue)) }
}

/// Owns a 64-byte aligned block from the C allocator (huge-page advised when large).
final class AlignedBuffer<Element>: @unchecked Sendable {
    // @unchecked: written only while the owning snapshot is being built, read-only after.
    let pointer: UnsafeMutablePointer<Element>
    let count: Int

    init(count: Int) {
        let bytes = max(count, 1) * MemoryLayout<Element>.stride
        guard let raw = fm_alloc(bytes) else { fatalError("FaceMatch: out of memory (\(bytes) bytes)") }
        raw.initializeMemory(as: UInt8.self, repeating: 0, count: bytes)
        pointer = raw.bindMemory(to: Element.self, capacity: max(count, 1))
        self.count = count
    }

    deinit { fm_free(pointer) }
}
