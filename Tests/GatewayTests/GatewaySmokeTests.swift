// Gateway unit tests: route matching, percent-decoding, JSON shapes, parsing edge cases, OpenAPI embed.
import Testing

@testable import Gateway
