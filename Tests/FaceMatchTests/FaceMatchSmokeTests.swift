import XCTest
@testable import FaceMatch
