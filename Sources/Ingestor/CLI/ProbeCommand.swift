// `k8s-micro-ingestor probe alive|ready`: asks the ingestor's socket for its health (exit 0 or 1).
import ArgumentParser
import Shared
import SharedCLI

#if canImport(Glibc)
    import Glibc
#endif

struct ProbeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "probe",
        abstract: "Ask the ingestor's socket whether it is alive or ready (exit 0/1).",
        discussion: "Used by the chart's exec liveness probe, so a gateway restart never restarts the ingestor.")

    enum Check: String, ExpressibleByArgument, CaseIterable {
        case alive
        case ready
    }

    @OptionGroup var options: ConfigOptions

    @Argument(help: "What to check: alive or ready.")
    var check: Check = .alive

    @Option(help: "Seconds to wait for the answer.")
    var timeout: Double = 2

    func run() async throws {
        let config = try ProcessBootstrap.start(options, role: .ingestor, announce: false)
        let path = config.ingestor.socket
        let milliseconds = max(1, Int(timeout * 1000))
        let response: SocketResponse
        do {
            let client = try SocketClient(path: path, timeoutMilliseconds: milliseconds)
            defer { client.close() }
            response = try client.request(.health)
        } catch {
            throw Self.failure("\(check.rawValue): \(path): \(error)")
        }
        guard case .health(let report) = response else {
            throw Self.failure("\(check.rawValue): unexpected answer from \(path): \(response)")
        }
        let ok = check == .alive ? report.alive : report.ready
        print(Self.line(check: check, ok: ok, report: report))
        if !ok { throw ExitCode(1) }
    }

    /// One line: the answer first, then what it rests on (kubelet keeps a failing probe's output as the reason).
    static func line(check: Check, ok: Bool, report: HealthReport) -> String {
        var words = ["\(check.rawValue)=\(ok)"]
        if check == .alive { words.append("ready=\(report.ready)") }
        words.append("joinedGroup=\(report.joinedGroup)")
        words.append("assigned=\(report.partitionsAssigned.map(String.init).joined(separator: ","))")
        if !report.partitionsRestoring.isEmpty {
            words.append("restoring=\(report.partitionsRestoring.map(String.init).joined(separator: ","))")
        }
        // Only the checks that fail: the passing ones repeat the words above.
        words += report.details.filter { !$0.valid }.map { "\($0.name)=false" }
        return words.joined(separator: " ")
    }

    /// Writes `message` to stderr and returns the exit code to throw.
    private static func failure(_ message: String) -> ExitCode {
        var line = message + "\n"
        line.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
        return ExitCode(1)
    }
}
