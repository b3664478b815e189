// swift-service-lifecycle wrapper: the socket server thread as a Service of the ingestor's ServiceGroup.
import ServiceLifecycle

/// Runs until the server thread ends; graceful shutdown (or cancellation) asks it to stop.
/// Call `server.start()` before running the group so bind errors fail start-up.
struct SocketServerService: Service {
    let server: SocketServer

    func run() async throws {
        await withTaskCancellationOrGracefulShutdownHandler {
            await server.waitUntilStopped()
        } onCancelOrGracefulShutdown: {
            server.stop()
        }
    }
}
