"""Keystream's schema registry: the Confluent Schema Registry REST API over the `_schemas` topic,
Avro compatibility, and the validator the broker uses to decode produced records."""
