import XCTest
@testable import Streams
