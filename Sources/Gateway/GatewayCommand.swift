// Entry point of k8s-micro-gateway.
import ArgumentParser
import Shared

@main
struct GatewayCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "k8s-micro-gateway",
        abstract: "HTTP API (8080) and health/metrics (8079) of k8s-micro, on libuv.",
        version: Version.full
    )

    @OptionGroup var options: ConfigOptions

    func run() async throws {}
}
