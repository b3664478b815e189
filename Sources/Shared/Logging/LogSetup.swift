// swift-log bootstrap for both processes: text or JSON lines, level changeable at run time.
import Logging

public enum LogSetup {
    public static func bootstrap(_ config: AppConfig.Log) {}
}
