// libFuzzer entry for the YAML config loader with secret references: any config file either loads or is
// rejected with its issues; it never crashes, and the secret's content never shows in the effective config
// printed by --print-config nor in any error message (unless the file itself contains it). The file's text
// goes in from memory (ConfigLoader.loadWithSecrets(configText:), which the file path version calls); the
// secrets are files, read as in production.
// Built by scripts/fuzz.sh (swiftc -sanitize=fuzzer,address over Sources/Shared/Config, libyaml).
import Glibc

private let secret = "Fz-s3cret-Vq7-not-in-output"
private let workDir: String = {
    var template = Array("/tmp/k8s-micro-config-fuzz-XXXXXX".utf8CString)
    let dir = template.withUnsafeMutableBufferPointer { buffer in
        buffer.baseAddress.flatMap { mkdtemp($0) }.map { String(cString: $0) }
    }
    guard let dir else { fatalError("mkdtemp failed") }
    mkdir(dir + "/secrets", 0o700)
    for name in ["kafka-password", "token"] { write(dir + "/secrets/" + name, Array((secret + "\n").utf8)) }
    return dir
}()

private func write(_ path: String, _ bytes: [UInt8]) {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
    guard fd >= 0 else { fatalError("cannot write \(path)") }
    bytes.withUnsafeBytes { _ = Glibc.write(fd, $0.baseAddress, $0.count) }
    close(fd)
}

@_cdecl("LLVMFuzzerTestOneInput")
public func configYAMLFuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    // As TextFile.read turns a file's bytes into text (invalid UTF-8 repaired).
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    let containsSecret = text.containsText(secret)
    let sources = ConfigSources(config: workDir + "/config.yaml", secrets: workDir + "/secrets")
    do {
        let loaded = try ConfigLoader.loadWithSecrets(configText: text, sources: sources, environment: [:])
        let printed = ConfigPrinter.yaml(loaded)
        precondition(containsSecret || !printed.containsText(secret), "--print-config shows a secret:\n\(printed)")
    } catch {
        let message = "\(error)"
        precondition(containsSecret || !message.containsText(secret), "an error shows a secret: \(message)")
    }
    return 0
}
