"""The SASL mechanisms a broker offers, built once at start-up: one factory per mechanism enabled on
any SASL listener, each imported only then, so a broker without LDAP or Kerberos configured never
needs python-ldap or gssapi at runtime."""

from __future__ import annotations

import logging
from typing import Any

from keystream.auth.sasl import SaslExchange

log = logging.getLogger("keystream.sasl")

SCRAM = ("SCRAM-SHA-256", "SCRAM-SHA-512")


def _factory(mechanism: str, config, broker) -> Any:
    """The mechanism's factory (an object with new_exchange(client_host) and close())."""
    if mechanism in SCRAM:
        from keystream.auth.sasl.scram import ScramMechanism  # noqa: PLC0415

        return ScramMechanism(broker.scram, mechanism)
    if mechanism == "PLAIN":
        from keystream.auth.ldap import LdapDirectory  # noqa: PLC0415
        from keystream.auth.sasl.plain import PlainMechanism  # noqa: PLC0415

        return PlainMechanism(LdapDirectory(config))
    if mechanism == "GSSAPI":
        from keystream.auth.sasl.kerberos import GssapiMechanism  # noqa: PLC0415

        return GssapiMechanism(config)
    raise ValueError(f"unknown SASL mechanism {mechanism}")


class SaslRegistry:
    """Enabled mechanisms per SASL listener, and their factories."""

    def __init__(self, config, broker):
        self.enabled: dict[str, list[str]] = {
            lst.name: list(config.for_listener(lst.name, "sasl.enabled.mechanisms"))
            for lst in config.listeners if lst.security_protocol.startswith("SASL_")
        }
        self._factories: dict[str, Any] = {}
        try:
            for mechanism in sorted({m for ms in self.enabled.values() for m in ms}):
                self._factories[mechanism] = _factory(mechanism, config, broker)
        except BaseException:
            self.close()
            raise
        for listener, mechanisms in self.enabled.items():
            log.info("SASL listener %s offers %s", listener, ", ".join(mechanisms))

    def new_exchange(self, listener: str, mechanism: str, client_host: str) -> SaslExchange | None:
        """A fresh server side of `mechanism` for one connection, or None if the listener does not offer it."""
        if mechanism not in self.enabled.get(listener, ()):
            return None
        return self._factories[mechanism].new_exchange(client_host)

    def close(self) -> None:
        for factory in self._factories.values():
            factory.close()
        self._factories.clear()
