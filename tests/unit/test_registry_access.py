"""The registry's access decisions: subject -> Kafka resource mapping, the broker's ACL semantics over
ACLs fetched from an AclSource, their refresh, Basic parsing, the client side of SCRAM against the
broker's server side, and the 401 path through a real aiohttp server."""

from __future__ import annotations

import asyncio
import base64
import logging
import socket
import time

import aiohttp
import pytest
from aiohttp import web

from keystream.auth.acl import AclBinding, Operation, PatternType, Permission, ResourceType
from keystream.auth.principal import Principal, Session
from keystream.auth.sasl import SaslAuthenticationError
from keystream.auth.sasl.scram import ScramExchange, make_credential
from keystream.auth.sasl.scram_client import ScramClient, Unavailable
from keystream.configdef import ConfigError
from keystream.registry.access import (
    Access,
    Action,
    _basic_credentials,
    _login_endpoints,
    resource_for,
    topic_of,
)
from keystream.registry.config import RegistryConfig
from keystream.registry.errors import RegistryError
from tests.fixtures.slapd import PASSWORDS
from tests.fixtures.waiting import Deadline

TOPIC, CLUSTER = ResourceType.TOPIC, ResourceType.CLUSTER
UNAUTHORIZED = {"error_code": 401, "message": "Unauthorized"}
BASE = {"listeners": "http://127.0.0.1:8081", "listeners.allow.insecure": "true", "authentication.method": "NONE"}


def acl(principal: str, op: Operation, name: str, *, rtype=TOPIC, pattern=PatternType.LITERAL,
        permission=Permission.ALLOW, host="*") -> AclBinding:
    return AclBinding(rtype, name, pattern, principal, host, op, permission)


def session(name: str, host: str = "127.0.0.1", groups: tuple[str, ...] = ()) -> Session:
    return Session(Principal("User", name), host, groups=tuple(Principal("Group", g) for g in groups))


def decide(bindings, checks, **config):
    """[(session, action, subject)] -> [bool], with an Access over `bindings`."""
    async def run():
        access = Access(RegistryConfig({**BASE, **config}), lambda: bindings)
        await access.start()
        try:
            return [access.allowed(s, a, subject) for s, a, subject in checks]
        finally:
            await access.close()
    return asyncio.run(run())


def test_subjects_map_to_their_topic():
    assert topic_of("orders-value") == "orders"
    assert topic_of("orders-key") == "orders"
    assert topic_of("a-key-value") == "a-key"
    assert topic_of("orders") == "orders"
    assert topic_of("com.acme.Order") == "com.acme.Order"
    assert topic_of("orders-com.acme.Order") == "orders-com.acme.Order"
    assert topic_of("-value") == "-value" and topic_of("-key") == "-key"


def test_actions_map_to_kafka_operations():
    assert resource_for(Action.READ, "orders-value") == (Operation.DESCRIBE, TOPIC, "orders")
    assert resource_for(Action.WRITE, "orders-value") == (Operation.WRITE, TOPIC, "orders")
    assert resource_for(Action.DELETE, "x") == (Operation.DELETE, TOPIC, "x")
    assert resource_for(Action.READ_CONFIG, "orders-key") == (Operation.DESCRIBE_CONFIGS, TOPIC, "orders")
    assert resource_for(Action.WRITE_CONFIG, "orders-key") == (Operation.ALTER_CONFIGS, TOPIC, "orders")
    assert resource_for(Action.READ_CONFIG, None) == (Operation.DESCRIBE_CONFIGS, CLUSTER, "kafka-cluster")
    assert resource_for(Action.WRITE_CONFIG, None) == (Operation.ALTER_CONFIGS, CLUSTER, "kafka-cluster")


def test_write_on_a_topic_registers_its_subjects_only():
    alice = session("alice")
    bindings = [acl("User:alice", Operation.WRITE, "orders")]
    checks = [(alice, Action.WRITE, "orders-value"), (alice, Action.WRITE, "orders-key"),
              (alice, Action.READ, "orders-value"),  # WRITE implies DESCRIBE, as on the broker
              (alice, Action.WRITE, "payments-value"), (alice, Action.READ, "payments-value"),
              (alice, Action.DELETE, "orders-value"), (alice, Action.READ_CONFIG, "orders-value"),
              (session("bob"), Action.READ, "orders-value")]
    assert decide(bindings, checks) == [True, True, True, False, False, False, False, False]


def test_broker_semantics_deny_prefix_wildcard_host_groups():
    bindings = [
        acl("User:alice", Operation.ALL, "team-", pattern=PatternType.PREFIXED),
        acl("User:alice", Operation.DELETE, "team-core", permission=Permission.DENY),
        acl("User:*", Operation.READ, "public"),
        acl("User:carol", Operation.WRITE, "lab", host="10.0.0.1"),
        acl("Group:devs", Operation.WRITE, "shared"),
    ]
    alice, bob = session("alice"), session("bob")
    checks = [(alice, Action.DELETE, "team-x-value"), (alice, Action.DELETE, "team-core-value"),
              (alice, Action.WRITE, "team-core-value"), (bob, Action.READ, "public-value"),
              (bob, Action.WRITE, "public-value"), (session("carol", "10.0.0.1"), Action.WRITE, "lab-value"),
              (session("carol", "10.0.0.2"), Action.WRITE, "lab-value"),
              (session("dave", groups=("devs",)), Action.WRITE, "shared-value"), (alice, Action.WRITE, "shared-value")]
    assert decide(bindings, checks) == [True, False, True, True, False, True, False, True, False]


def test_static_groups_and_super_users():
    async def run():
        config = RegistryConfig({**BASE, "principal.groups": "devs=User:erin", "super.users": "User:root;Group:ops"})
        access = Access(config, lambda: [acl("Group:devs", Operation.WRITE, "shared")])
        await access.start()
        erin = access._session(Principal("User", "erin"), "127.0.0.1")
        assert erin.groups == (Principal("Group", "devs"),)
        assert access.allowed(erin, Action.WRITE, "shared-value")
        for who in (session("root"), session("x", groups=("ops",))):
            assert all(access.allowed(who, a, s) for a in Action for s in ("any-value", None))
        assert not access.allowed(erin, Action.WRITE_CONFIG, None)
        await access.close()
    asyncio.run(run())


def test_global_config_is_the_cluster_resource():
    alter = acl("User:ops", Operation.ALTER_CONFIGS, "kafka-cluster", rtype=CLUSTER)
    ops, alice = session("ops"), session("alice")
    checks = [(ops, Action.READ_CONFIG, None), (ops, Action.WRITE_CONFIG, None),
              (ops, Action.WRITE_CONFIG, "orders-value"), (alice, Action.READ_CONFIG, None)]
    assert decide([alter], checks) == [True, True, False, False]


def test_allow_everyone_if_no_acl_found():
    bindings = [acl("User:alice", Operation.WRITE, "orders")]
    bob = session("bob")
    checks = [(bob, Action.WRITE, "free-value"), (bob, Action.WRITE, "orders-value")]
    assert decide(bindings, checks, **{"allow.everyone.if.no.acl.found": "true"}) == [True, False]


def test_until_acls_load_only_super_users_pass_even_when_everyone_is_allowed():
    state = {"fail": True}

    def source():
        if state["fail"]:
            raise ConnectionError("brokers down")
        return []

    async def run():
        config = RegistryConfig({**BASE, "super.users": "User:root", "allow.everyone.if.no.acl.found": "true",
                                 "acl.refresh.ms": "100"})
        access = Access(config, source)
        await access.start()
        with pytest.raises(RegistryError) as info:
            access.allowed(session("bob"), Action.READ, "x")
        assert info.value.error_code == 50003
        assert access.allowed(session("root"), Action.WRITE, "x")
        state["fail"] = False
        await _until(lambda: access.refresher.loaded and access.allowed(session("bob"), Action.READ, "x"), 5)
        await access.close()
    asyncio.run(run())


def test_a_denial_refreshes_soon_and_revocations_follow_the_refresh_interval():
    bindings: list[AclBinding] = []
    calls = []

    def source():
        calls.append(time.monotonic())
        return list(bindings)

    async def run(refresh_ms: int):
        access = Access(RegistryConfig({**BASE, "acl.refresh.ms": str(refresh_ms)}), source)
        await access.start()
        alice = session("alice")
        assert not access.allowed(alice, Action.WRITE, "orders-value")
        bindings.append(acl("User:alice", Operation.WRITE, "orders"))
        # the grant shows within the one-second kick interval although the refresh interval is a minute
        await _until(lambda: access.allowed(alice, Action.WRITE, "orders-value"), 3)
        bindings.clear()
        return access

    async def scenario():
        access = await run(60_000)
        count = len(calls)
        for _ in range(2):  # floods of denials cost at most one fetch a second
            for _ in range(50):
                access.allowed(session("mallory"), Action.WRITE, "orders-value")
            count += 1
            await _until(lambda n=count: len(calls) >= n, 3)
        assert len(calls) == count and all(b - a >= 0.9 for a, b in zip(calls[-3:-1], calls[-2:], strict=True))
        await access.close()
        calls.clear()
        access = await run(200)
        assert await _until(lambda: not access.allowed(session("alice"), Action.WRITE, "orders-value"), 2)
        await access.close()
    asyncio.run(scenario())


async def _until(condition, timeout: float):
    deadline = Deadline(timeout)
    while not condition():
        assert not deadline.expired(), "condition not met in time"
        await asyncio.sleep(0.02)
    return True


def test_basic_header_parsing():
    def header(text: str) -> str:
        return "Basic " + base64.b64encode(text.encode()).decode()

    assert _basic_credentials(header("alice:pa:ss word")) == ("alice", "pa:ss word")
    assert _basic_credentials("basic  " + base64.b64encode(b"u:p").decode()) == ("u", "p")
    for bad in ("Bearer abc", "Basic !!!", header("no-colon"), "Basic " + base64.b64encode(b"\xff:x").decode()):
        with pytest.raises(SaslAuthenticationError):
            _basic_credentials(bad)


def test_login_endpoints_come_from_the_sasl_kafkastore_connection():
    sasl = RegistryConfig({**BASE, "kafkastore.security.protocol": "SASL_SSL",
                           "kafkastore.bootstrap.servers": "SSL://127.0.0.1:9093,SASL_SSL://127.0.0.1:9094"})
    addresses, context = _login_endpoints(sasl)
    assert addresses == [("127.0.0.1", 9094)] and context.check_hostname
    with pytest.raises(ConfigError, match="ldap.url"):
        _login_endpoints(RegistryConfig({**BASE, "kafkastore.bootstrap.servers": "127.0.0.1:9093"}))


class _Store:
    def __init__(self, **passwords):
        self.creds = {u: make_credential(p, "SCRAM-SHA-512") for u, p in passwords.items()}

    def lookup(self, user, mechanism):
        return self.creds.get(user)


def _exchange(client: ScramClient, server: ScramExchange, tamper=None) -> bool:
    async def run():
        first = await server.step(client.first())
        final = await server.step(client.final(first))
        client.verify(tamper(final) if tamper else final)
        return server.result.principal == Principal("User", "a,b=c")
    return asyncio.run(run())


def test_scram_client_against_the_broker_side():
    store = _Store(**{"a,b=c": "sécret"})
    assert _exchange(ScramClient("SCRAM-SHA-512", "a,b=c", "sécret"), ScramExchange("SCRAM-SHA-512", store, "h"))
    with pytest.raises(SaslAuthenticationError):
        _exchange(ScramClient("SCRAM-SHA-512", "a,b=c", "wrong"), ScramExchange("SCRAM-SHA-512", store, "h"))
    with pytest.raises(Unavailable, match="signature"):  # a server that does not know the key cannot fake success
        _exchange(ScramClient("SCRAM-SHA-512", "a,b=c", "sécret"), ScramExchange("SCRAM-SHA-512", store, "h"),
                  tamper=lambda final: b"v=" + base64.b64encode(bytes(64)))
    client = ScramClient("SCRAM-SHA-512", "u", "p", nonce="abc")
    with pytest.raises(Unavailable, match="nonce"):
        client.final(b"r=xyz,s=AAAA,i=4096")
    with pytest.raises(Unavailable, match="iteration"):
        client.final(b"r=abcdef,s=AAAA,i=100000000")


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def serve(config: RegistryConfig, requests: list[dict[str, str]]) -> list[tuple[int, dict, dict, float]]:
    """GETs with each header dict against a real aiohttp server that authenticates with an Access:
    [(status, body, headers, seconds)], the body naming the session's principal and groups."""
    async def run():
        access = Access(config, list)

        async def handler(request):
            try:
                s = await access.authenticate(request)
            except RegistryError as exc:
                return web.json_response(exc.body(), status=exc.status, headers=getattr(exc, "headers", None))
            return web.json_response({"principal": str(s.principal), "groups": [str(g) for g in s.groups]})

        app = web.Application()
        app.router.add_get("/", handler)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        url = f"http://127.0.0.1:{runner.addresses[0][1]}/"
        answers = []
        try:
            async with aiohttp.ClientSession() as http:
                for headers in requests:
                    started = time.monotonic()
                    async with http.get(url, headers=headers) as r:
                        answers.append((r.status, await r.json(), dict(r.headers), time.monotonic() - started))
        finally:
            await runner.cleanup()
            await access.close()
        return answers
    return asyncio.run(run())


def test_unanswered_basic_logins_are_401_after_the_delay_and_never_log_the_password(caplog):
    """Nothing listens where the broker should be (the injected fault): the login fails closed."""
    config = RegistryConfig({**BASE, "authentication.method": "BASIC", "authentication.realm": "Schemas",
                             "kafkastore.security.protocol": "SASL_SSL",
                             "kafkastore.bootstrap.servers": f"127.0.0.1:{_closed_port()}"})
    with caplog.at_level(logging.DEBUG, logger="keystream"):
        (none, none_body, none_headers, _), (bad, _, _, seconds) = serve(config, [{}, _basic("alice", "hunter2-pw")])
    assert none == 401 and none_body == {"error_code": 401, "message": "Unauthorized"}
    assert none_headers["WWW-Authenticate"] == 'Basic realm="Schemas"'
    assert bad == 401 and seconds >= 0.9  # basic.auth.failure.delay.ms default: 1000
    assert "alice" in caplog.text and "hunter2" not in caplog.text


def test_authentication_method_none_is_anonymous_and_ignores_basic():
    answers = serve(RegistryConfig({**BASE, "principal.groups": "guests=User:ANONYMOUS"}), [{}, _basic("a", "b")])
    assert [(status, body) for status, body, _, _ in answers] == \
        [(200, {"principal": "User:ANONYMOUS", "groups": ["Group:guests"]})] * 2


def test_ldap_users_get_their_directory_and_static_groups(slapd):
    config = RegistryConfig({**BASE, **slapd.properties(), "authentication.method": "BASIC",
                             "basic.auth.failure.delay.ms": "0", "principal.groups": "auditors=User:alice"})
    answers = serve(config, [_basic("alice", PASSWORDS["alice"]), _basic("alice", "wrong"),
                             _basic("nobody", "x"), _basic("alice", PASSWORDS["alice"])])
    ok = (200, {"principal": "User:alice", "groups": ["Group:producers", "Group:auditors"]})
    assert [(status, body) for status, body, _, _ in answers] == [ok, (401, UNAUTHORIZED), (401, UNAUTHORIZED), ok]
