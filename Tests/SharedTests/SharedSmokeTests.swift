import Testing
@testable import Shared
