/// The stream layer: a typed pipeline over ``KafkaConsumer`` and ``KafkaProducer`` with
/// windows, aggregations and sinks whose output stays consistent with the source offsets.
public enum Streams {}
