// A libuv error code with the operation that failed, as a Swift error (Loop/ is the only uv user).
import CUV

/// A failed libuv call: `code` is the negative uv error number, `operation` names the call.
struct UVError: Error, CustomStringConvertible, Equatable {
    let code: Int32
    let operation: String

    var description: String {
        "\(operation): \(String(cString: uv_err_name(code))) (\(String(cString: uv_strerror(code))))"
    }

    /// Short machine name of the error, e.g. "ECONNRESET" (used as a metric label).
    var name: String { String(cString: uv_err_name(code)) }

    /// True for end-of-stream.
    var isEOF: Bool { code == Int32(UV_EOF.rawValue) }

    /// Throws when `result` is a libuv error (negative).
    static func check(_ result: Int32, _ operation: String) throws(UVError) {
        if result < 0 { throw UVError(code: result, operation: operation) }
    }
}
