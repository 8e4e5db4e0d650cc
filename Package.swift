// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "Tributary",
    platforms: [.macOS(.v14)],
    products: [
        .library(name: "KafkaProtocol", targets: ["KafkaProtocol"]),
        .library(name: "LogStore", targets: ["LogStore"]),
        .library(name: "Broker", targets: ["Broker"]),
        .library(name: "KafkaClient", targets: ["KafkaClient"]),
        .library(name: "KafkaCompression", targets: ["KafkaCompression"]),
        .library(name: "ObjectStore", targets: ["ObjectStore"]),
        .library(name: "Tiering", targets: ["Tiering"]),
        .library(name: "Lake", targets: ["Lake"]),
        .library(name: "Streams", targets: ["Streams"]),
        .executable(name: "tributary", targets: ["tributary"]),
        .executable(name: "kafka-codegen", targets: ["kafka-codegen"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
    ],
    targets: [
        // SSE4.2 / portable CRC32C. Kept in C so the hot loop can use the crc32 instruction.
        .target(name: "CCRC32C"),
        .target(
            name: "KafkaProtocol",
            dependencies: [
                "CCRC32C",
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
        .target(
            name: "LogStore",
            dependencies: [
                "KafkaProtocol",
                "KafkaCompression",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // Tiered storage: segment upload, manifests and remote reads over an ObjectStore.
        .target(
            name: "Tiering",
            dependencies: [
                "KafkaProtocol", "KafkaCompression", "LogStore", "ObjectStore",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "Broker",
            dependencies: [
                "KafkaProtocol",
                "LogStore",
                "ObjectStore",
                "Tiering",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .target(
            name: "KafkaClient",
            dependencies: [
                "KafkaProtocol",
                "KafkaCompression",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // gzip and zstd through the system's libz/libzstd loaded at run time; snappy and lz4 in Swift.
        .target(
            name: "KafkaCompression",
            dependencies: ["KafkaProtocol", .product(name: "NIOCore", package: "swift-nio")]
        ),
        // Object storage for tiered segments: a local directory and S3 (SigV4 over async-http-client).
        .target(
            name: "ObjectStore",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        // Lake export: topics to Parquet/CSV/JSONL tables in an ObjectStore, exactly once.
        .target(
            name: "Lake",
            dependencies: [
                "KafkaClient", "KafkaProtocol", "KafkaCompression", "ObjectStore",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The stream layer: sources, windows, aggregations and exactly-once sinks over KafkaClient.
        .target(
            name: "Streams",
            dependencies: [
                "KafkaClient", "KafkaProtocol", "ObjectStore", "Lake",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(
            name: "tributary",
            dependencies: [
                "Broker",
                "KafkaClient",
                "ObjectStore",
                "Lake",
                "Streams",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // The code generator: a library so tests can check the committed output is current.
        .target(name: "KafkaCodegen"),
        .executableTarget(name: "kafka-codegen", dependencies: ["KafkaCodegen"]),
        .executableTarget(
            name: "protocol-benchmarks",
            dependencies: ["KafkaProtocol", .product(name: "NIOCore", package: "swift-nio")],
            path: "Benchmarks/ProtocolBenchmarks"
        ),
        .executableTarget(
            name: "client-benchmarks",
            dependencies: [
                "KafkaClient", "Broker", "KafkaProtocol",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Benchmarks/ClientBenchmarks"
        ),
        .executableTarget(
            name: "log-benchmarks",
            dependencies: ["LogStore", "KafkaProtocol", .product(name: "Logging", package: "swift-log"), .product(name: "NIOCore", package: "swift-nio")],
            path: "Benchmarks/LogBenchmarks"
        ),
        .executableTarget(
            name: "lake-benchmarks",
            dependencies: ["Lake", .product(name: "NIOCore", package: "swift-nio")],
            path: "Benchmarks/LakeBenchmarks"
        ),
        // A readable example of the Streams API: the tutorial's monthly consumer in a page.
        .executableTarget(
            name: "weather-example",
            dependencies: ["Streams"],
            path: "Examples/WeatherStream"
        ),
        // What the test targets share: an in-process broker on a free loopback port.
        .target(
            name: "TributaryTestSupport",
            dependencies: ["Broker", "KafkaClient", .product(name: "Logging", package: "swift-log")],
            path: "Tests/TributaryTestSupport"
        ),
        .testTarget(
            name: "KafkaProtocolTests",
            dependencies: ["KafkaProtocol", "KafkaCodegen", .product(name: "NIOCore", package: "swift-nio")],
            resources: [.copy("Fixtures")]
        ),
        .testTarget(
            name: "KafkaCompressionTests",
            dependencies: ["KafkaCompression", "KafkaProtocol", .product(name: "NIOCore", package: "swift-nio")]
        ),
        .testTarget(
            name: "LogStoreTests",
            dependencies: ["LogStore", "KafkaProtocol", "KafkaCompression"]
        ),
        .testTarget(
            name: "ObjectStoreTests",
            dependencies: [
                "ObjectStore",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            // Run by the moto tests as a separate program.
            exclude: ["fault_proxy.py"]
        ),
        .testTarget(
            name: "KafkaClientTests",
            dependencies: [
                "TributaryTestSupport",
                "KafkaClient", "Broker", "KafkaProtocol", "KafkaCompression",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "LakeTests",
            dependencies: [
                "TributaryTestSupport",
                "Lake", "KafkaClient", "Broker", "KafkaProtocol", "ObjectStore",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "StreamsTests",
            dependencies: [
                "TributaryTestSupport",
                "Streams", "KafkaClient", "Broker", "KafkaProtocol", "ObjectStore",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "BrokerTests",
            dependencies: [
                "TributaryTestSupport",
                "Broker", "KafkaProtocol", "KafkaClient", "LogStore", "Tiering",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
    ]
)
