"""What a handler knows about the request it answers, without touching the socket."""

from dataclasses import dataclass
from typing import TYPE_CHECKING

from keystream.auth.principal import Session

if TYPE_CHECKING:
    from keystream.broker.broker import Broker


@dataclass(slots=True)
class RequestContext:
    broker: "Broker"
    version: int
    correlation_id: int
    client_id: str | None
    session: Session
    # A byte-rate throttle for a request answered without a response (acks=0 produce): the server
    # mutes the connection for it all the same.
    throttle_ms: int = 0

    @property
    def client_host(self) -> str:
        return self.session.client_host

    def allowed(self, op, rtype, name: str) -> bool:
        """Whether this session may do `op` (auth.acl.Operation) on the resource (ResourceType, name)."""
        return self.broker.authorizer.authorize(self.session, op, rtype, name)
