import ArgumentParser
import KafkaClient

struct Topics: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Create, list, describe, alter and delete topics on any Kafka-compatible broker.",
        subcommands: [Create.self, List.self, Describe.self, Delete.self, Alter.self]
    )

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a topic.")
        @OptionGroup var connection: ConnectionOptions
        @Argument(help: "The topic name.") var topic: String
        @Option(help: "Number of partitions (default: the broker's num.partitions).") var partitions: Int32 = -1
        @Option(help: "Replication factor (default: the broker's).") var replicationFactor: Int16 = -1
        @Option(name: .long, help: "A topic config KEY=VALUE; repeatable.") var config: [String] = []
        @Flag(help: "Succeed if the topic already exists.") var ifNotExists = false

        func validate() throws {
            _ = try parseConfigs(config)
        }

        func run() async throws {
            let admin = try connection.admin()
            do {
                try await admin.createTopic(topic, partitions: partitions, replicationFactor: replicationFactor, configs: try parseConfigs(config))
                print("Created topic \(topic).")
            } catch let error as KafkaClientError where ifNotExists && error.kafkaCode == .topicAlreadyExists {
                print("Topic \(topic) already exists.")
            }
            await admin.close()
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List topic names.")
        @OptionGroup var connection: ConnectionOptions

        func run() async throws {
            let admin = try connection.admin()
            for name in try await admin.listTopics() { print(name) }
            await admin.close()
        }
    }

    struct Describe: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Describe topics (all when none are named), as kafka-topics.sh --describe does.")
        @OptionGroup var connection: ConnectionOptions
        @Argument(help: "Topic names.") var topics: [String] = []

        func run() async throws {
            let admin = try connection.admin()
            for t in try await admin.describeTopics(topics.isEmpty ? nil : topics) {
                let overrides = try await admin.describeTopicConfigs(t.name).filter { !$0.isDefault }
                let configText = overrides.map { "\($0.name)=\($0.value ?? "")" }.joined(separator: ",")
                // Brokers without DescribeLogDirs (or that refuse it) just show no tiering.
                let dirs = (try? await admin.describeLogDirs(topics: [t.name])) ?? []
                print("Topic: \(t.name)\tTopicId: \(t.topicId)\tPartitionCount: \(t.partitions.count)\tReplicationFactor: \(t.partitions.first?.replicas.count ?? 0)\tConfigs: \(configText)")
                for p in t.partitions {
                    let replicas = p.replicas.map(String.init).joined(separator: ",")
                    let isr = p.isr.map(String.init).joined(separator: ",")
                    var line = "\tTopic: \(t.name)\tPartition: \(p.partition)\tLeader: \(p.leader)\tReplicas: \(replicas)\tIsr: \(isr)"
                    // A Tributary broker that tiers reports the store as a `remote:` log dir.
                    if let remote = dirs.first(where: { $0.isRemote && $0.topic == t.name && $0.partition == p.partition }) {
                        line += "\tTiered: bytes=\(remote.sizeInBytes) segments=\(remote.segmentsTiered.map(String.init) ?? "?")"
                        line += "\tUploadLag: bytes=\(remote.offsetLag) segments=\(remote.segmentsWaiting.map(String.init) ?? "?")"
                    }
                    print(line)
                }
            }
            await admin.close()
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete topics.")
        @OptionGroup var connection: ConnectionOptions
        @Argument(help: "Topic names.") var topics: [String]

        func run() async throws {
            let admin = try connection.admin()
            try await admin.deleteTopics(topics)
            await admin.close()
            for t in topics { print("Deleted topic \(t).") }
        }
    }

    struct Alter: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Add partitions or change topic configs.")
        @OptionGroup var connection: ConnectionOptions
        @Argument(help: "The topic name.") var topic: String
        @Option(help: "The new, larger partition count.") var partitions: Int32?
        @Option(name: .long, help: "Set a topic config KEY=VALUE; repeatable.") var config: [String] = []
        @Option(name: .long, help: "Remove a topic config override; repeatable.") var deleteConfig: [String] = []

        func validate() throws {
            if partitions == nil && config.isEmpty && deleteConfig.isEmpty {
                throw ValidationError("nothing to alter: give --partitions, --config or --delete-config")
            }
            _ = try parseConfigs(config)
        }

        func run() async throws {
            let admin = try connection.admin()
            if let partitions {
                try await admin.createPartitions(topic, totalCount: partitions)
                print("Topic \(topic) now has \(partitions) partitions.")
            }
            if !config.isEmpty || !deleteConfig.isEmpty {
                try await admin.alterTopicConfigs(topic, set: try parseConfigs(config), delete: deleteConfig)
                print("Updated configs of \(topic).")
            }
            await admin.close()
        }
    }
}
