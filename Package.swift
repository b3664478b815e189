// swift-tools-version: 6.1
// k8s-micro: two processes (ingestor, gateway) built from one package. See docs/ and README.md.
import PackageDescription

let strict: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

// The ingestor's release build drops Swift's run-time exclusivity checks (the compile-time ones stay): on the
// stream thread each inout access to a class's stored property called into the runtime and a thread-local
// access set, ~5% of the ingestor's CPU at 10k keys (docs/benchmarks.md). Debug builds, which every test runs,
// keep them, so a violation still traps there.
let ingestorSettings = strict + [.unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release))]

let package = Package(
    name: "k8s-micro",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "k8s-micro-ingestor", targets: ["Ingestor"]),
        .executable(name: "k8s-micro-gateway", targets: ["Gateway"]),
        .library(name: "Shared", targets: ["Shared"]),
        .library(name: "SharedCLI", targets: ["SharedCLI"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.5.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.0.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.6.0"),
    ],
    targets: [
        // C libraries from Debian, one system-library target each (module map + shim header only).
        .systemLibrary(name: "CRdKafka", pkgConfig: "rdkafka", providers: [.apt(["librdkafka-dev"])]),
        .systemLibrary(name: "CAvro", pkgConfig: "avro-c", providers: [.apt(["libavro-dev"])]),
        .systemLibrary(name: "CUV", pkgConfig: "libuv", providers: [.apt(["libuv1-dev"])]),
        .systemLibrary(name: "CHTTPParser", providers: [.apt(["libhttp-parser-dev"])]),
        .systemLibrary(name: "CLMDB", pkgConfig: "lmdb", providers: [.apt(["liblmdb-dev"])]),
        .systemLibrary(name: "CYAML", pkgConfig: "yaml-0.1", providers: [.apt(["libyaml-dev"])]),

        .plugin(name: "BuildInfoPlugin", capability: .buildTool()),
        .plugin(name: "EmbedFilesPlugin", capability: .buildTool()),

        // What both processes need, and all the gateway links: no Foundation, ArgumentParser or
        // service-lifecycle here (each costs the gateway binary megabytes; docs/footprint.md).
        .target(
            name: "Shared",
            dependencies: [
                "CYAML",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: strict,
            plugins: ["BuildInfoPlugin"]
        ),
        // The ingestor's command-line side: ArgumentParser options and service-lifecycle around Shared.
        .target(
            name: "SharedCLI",
            dependencies: [
                "Shared",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "Ingestor",
            dependencies: [
                "Shared", "SharedCLI", "CRdKafka", "CAvro", "CLMDB",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: ingestorSettings,
            plugins: ["EmbedFilesPlugin"]
        ),
        .executableTarget(
            name: "Gateway",
            dependencies: [
                // Deliberately small: no SharedCLI (ArgumentParser, service-lifecycle), no swift-metrics'
                // Metrics module (it imports FoundationEssentials). docs/footprint.md has the figures.
                "Shared", "CUV", "CHTTPParser",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
            ],
            swiftSettings: strict,
            plugins: ["EmbedFilesPlugin"]
        ),

        .testTarget(
            name: "SharedTests",
            dependencies: ["Shared", "SharedCLI", .product(name: "Metrics", package: "swift-metrics")],
            swiftSettings: strict
        ),
        .testTarget(name: "IngestorTests", dependencies: ["Ingestor", "Shared"], swiftSettings: strict),
        .testTarget(name: "GatewayTests", dependencies: ["Gateway", "Shared"], swiftSettings: strict),
    ]
)
