import ArgumentParser

@main
struct Tributary: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tributary",
        abstract: "A single-binary, Kafka-wire-compatible streaming log.",
        subcommands: [Serve.self, Topics.self, Groups.self, Produce.self, Consume.self, Weather.self, Demo.self, LakeCommand.self]
    )
}
