"""What a handler knows about the request it answers, without touching the socket."""

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from keystream.broker.broker import Broker


@dataclass(slots=True)
class RequestContext:
    broker: "Broker"
    version: int
    correlation_id: int
    client_id: str | None
    client_host: str
