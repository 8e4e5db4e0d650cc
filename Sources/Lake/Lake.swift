/// Lake export: Kafka topics written as Parquet, CSV and JSON Lines tables into an
/// ``ObjectStore`` (a local directory or any S3-compatible store), exactly once.
public enum Lake {}
