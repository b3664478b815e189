// The gateway as a swift-service-lifecycle Service: runs the loop thread, drains on graceful shutdown.
import Logging
import ServiceLifecycle
import Shared

/// Sendable; `run()` returns when the loop ended (after a drain), so the process exits 0.
struct GatewayService: Service {
    let config: AppConfig
    let heartbeat: Heartbeat
    let control = GatewayControl()

    struct StartFailure: Error, CustomStringConvertible {
        let description: String
    }

    func run() async throws {
        let config = self.config
        let control = self.control
        let heartbeat = self.heartbeat
        try await withGracefulShutdownHandler {
            try await withTaskCancellationHandler {
                try await withCheckedThrowingContinuation { (ended: CheckedContinuation<Void, any Error>) in
                    let spawned = OSThread.spawn(name: "gw-loop") {
                        let app: GatewayApp
                        do {
                            app = try GatewayApp(config: config, control: control, heartbeat: heartbeat)
                        } catch {
                            ended.resume(throwing: StartFailure(description: "gateway start-up failed: \(error)"))
                            return
                        }
                        app.run()
                        ended.resume()
                    }
                    if !spawned { ended.resume(throwing: StartFailure(description: "cannot start the loop thread")) }
                }
            } onCancel: {
                control.requestDrain()
            }
        } onGracefulShutdown: {
            control.requestDrain()
        }
    }
}
