"""Kinesis Data Streams over Kafka topics: a stream is a topic, a shard is a partition."""
