// `k8s-micro-ingestor probe`: Ask the ingestor's socket whether it is alive or ready (exit 0/1).
import ArgumentParser
import Shared

struct ProbeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "probe", abstract: "Ask the ingestor's socket whether it is alive or ready (exit 0/1).")

    @OptionGroup var options: ConfigOptions

    func run() async throws {
        throw CleanExit.message("not implemented yet")
    }
}
