import XCTest
@testable import SectorConnector
