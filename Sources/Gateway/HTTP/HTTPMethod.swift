// An HTTP request method as the parser names it (GET, POST, ...); unknown methods never get here.

/// Request method by name. Value type; any thread.
struct HTTPMethod: Hashable, Sendable, CustomStringConvertible {
    let name: String
    init(_ name: String) { self.name = name }
    var description: String { name }

    static let get = HTTPMethod("GET")
    static let head = HTTPMethod("HEAD")
    static let post = HTTPMethod("POST")
    static let put = HTTPMethod("PUT")
    static let delete = HTTPMethod("DELETE")
    static let options = HTTPMethod("OPTIONS")
    static let patch = HTTPMethod("PATCH")
    static let trace = HTTPMethod("TRACE")
    static let connect = HTTPMethod("CONNECT")
}
