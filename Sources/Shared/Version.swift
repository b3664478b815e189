// The version both processes report (`--version`, /hams/version, logs at start-up).
public enum Version {
    /// Semantic version of the product.
    public static let release = "0.1.0"
    /// `git describe` of the source the binary was built from (or K8S_MICRO_VERSION).
    public static let build = BuildInfo.gitDescribe
    /// What `--version` prints.
    public static var full: String { "\(release) (\(build))" }
}
