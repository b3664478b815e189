// Entry point of k8s-micro-ingestor: `run` (default), `generate`, `probe`.
import ArgumentParser
import Shared

@main
struct IngestorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "k8s-micro-ingestor",
        abstract: "Kafka aggregation topology of k8s-micro; serves its stores on a Unix socket.",
        version: Version.full,
        subcommands: [RunCommand.self, GenerateCommand.self, ProbeCommand.self, BenchSocketCommand.self],
        defaultSubcommand: RunCommand.self
    )
}
