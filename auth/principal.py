"""Who is asking: the principal authentication produced, and the session it lives in."""

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Principal:
    """Kafka's `Type:name` principal (User:alice, Group:acme-devs)."""

    type: str
    name: str

    def __str__(self) -> str:
        return f"{self.type}:{self.name}"

    @classmethod
    def parse(cls, text: str) -> "Principal":
        kind, sep, name = text.partition(":")
        if not sep or not kind or not name:
            raise ValueError(f"principal {text!r} is not of the form Type:name")
        return cls(kind, name)


ANONYMOUS = Principal("User", "ANONYMOUS")


@dataclass(slots=True)
class Session:
    """One authenticated connection; `groups` are extra principals (LDAP groups) ACLs may name."""

    principal: Principal
    client_host: str
    listener: str = "PLAINTEXT"
    security_protocol: str = "PLAINTEXT"
    groups: tuple[Principal, ...] = ()
