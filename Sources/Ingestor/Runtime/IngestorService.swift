// swift-service-lifecycle wrapper of the stream thread: run awaits it, graceful shutdown asks it to stop.
import ServiceLifecycle

struct StreamService: Service {
    let thread: StreamThread

    func run() async throws {
        thread.start()
        try await withGracefulShutdownHandler {
            try await thread.join()
        } onGracefulShutdown: {
            thread.requestStop()
        }
    }
}
