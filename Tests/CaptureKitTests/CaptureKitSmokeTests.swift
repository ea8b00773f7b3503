import XCTest
@testable import CaptureKit
