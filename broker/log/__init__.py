"""Keystream's storage: Kafka's on-disk log model (segments, indexes, recovery, retention, compaction)
behind PartitionLog and LogManager, which the Produce/Fetch/admin handlers call.
"""

from keystream.broker.log.config import ConfigEntry, ConfigSource, ConfigSynonym, ConfigType, LogConfig
from keystream.broker.log.manager import LogManager, Topic
from keystream.broker.log.partition import AppendResult, PartitionLog, ReadResult

__all__ = [
    "AppendResult", "ConfigEntry", "ConfigSource", "ConfigSynonym", "ConfigType", "LogConfig", "LogManager",
    "PartitionLog", "ReadResult", "Topic",
]
