// The record key an event is produced under (generator and POST /events agree on it).

enum EventKey {
    /// Chasers are keyed by their `id` (one stream per device); billing events by `billId`.
    static func key(for event: InputEvent) -> String {
        switch event {
        case .chaser(let c): c.id
        case .bill(let b): b.billId
        case .paymentRequest(let p): p.billId
        case .paymentFailed(let f): f.billId
        }
    }
}
