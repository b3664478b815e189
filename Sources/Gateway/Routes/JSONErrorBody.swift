// The JSON error body every API and health error uses.
import Shared

extension JSONText {
    /// `{"error":"<code>","message":"..."}`.
    static func error(code: String, message: String) -> String {
        "{\"error\":\(quote(code)),\"message\":\(quote(message))}"
    }
}
