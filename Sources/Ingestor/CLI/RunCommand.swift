// `k8s-micro-ingestor run`: Run the aggregation topology (the default).
import ArgumentParser
import Shared

struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "run", abstract: "Run the aggregation topology (the default).")

    @OptionGroup var options: ConfigOptions

    func run() async throws {
        throw CleanExit.message("not implemented yet")
    }
}
