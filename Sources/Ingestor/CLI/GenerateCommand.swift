// `k8s-micro-ingestor generate`: Produce realistic IoT events to the input topic.
import ArgumentParser
import Shared

struct GenerateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "generate", abstract: "Produce realistic IoT events to the input topic.")

    @OptionGroup var options: ConfigOptions

    func run() async throws {
        throw CleanExit.message("not implemented yet")
    }
}
