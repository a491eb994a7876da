"""Consumer-group coordinator (Kafka's classic group protocol) and committed offsets."""

from keystream.broker.groups.coordinator import GroupCoordinator
from keystream.broker.groups.group import GroupState

__all__ = ["GroupCoordinator", "GroupState"]
