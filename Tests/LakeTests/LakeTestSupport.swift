import XCTest
@testable import Lake
