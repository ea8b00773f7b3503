import XCTest
@testable import Attendance
