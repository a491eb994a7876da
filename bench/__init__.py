"""Side-by-side benchmark of Keystream against a peer Kafka-compatible broker (tansu).

The runner (`python -m bench.run`) starts both brokers as separate processes, drives them with
confluent-kafka from this process, and compares them by broker CPU-seconds as well as wall clock,
because on a small machine the client itself eats most of a core.
"""
