import Testing

@testable import Ingestor
