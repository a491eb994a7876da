"""Who may do what on the registry's REST API, decided the way the broker decides it.

Authentication: `Authorization: Basic` is checked against the broker's own users, so a team has one
password for Kafka and the registry: with `ldap.url` against the directory (LdapDirectory, with its
groups and login cache), otherwise by a real SCRAM login to the brokers' SASL listener as that user.
Successful SCRAM logins are cached (salted slow hash, never the password) so a client's requests do
not each cost a broker round trip and a PBKDF2; failures are never cached, are answered only after
`basic.auth.failure.delay.ms`, and never logged with the password. Without a header, a verified client
certificate names the principal as on the broker (ssl.principal.mapping.rules); with
`authentication.method=NONE` anything else is User:ANONYMOUS; otherwise 401.

Authorization: the broker's Kafka ACLs, fetched with DescribeAcls every `acl.refresh.ms` (and soon
after a denial, at most once a second, so a new grant works quickly), evaluated by the broker's own
Authorizer. A subject is the TOPIC it belongs to: `<t>-key` / `<t>-value` -> `<t>`, any other subject
-> the topic of the same name; global config and mode are the CLUSTER resource.

Tenants: with `admin.url` the broker's tenants are fetched with the ACLs (ListTenants, same interval),
so the Authorizer applies the broker's tenant rule to subjects: a member of `acme` gets the implicit
topic permissions on subjects whose topic starts `acme.` and nothing outside, whatever the ACLs say.
Until both copies have been fetched once, only super users are served; everyone else gets 50003 (a
5xx, which clients retry) rather than a 403 that would read as a missing permission. A failed refresh
keeps the previous copies.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import functools
import logging
import ssl
import time
from collections.abc import Callable, Iterable, Mapping
from enum import Enum
from typing import Any

from keystream.auth.acl import CLUSTER_NAME, AclBinding, Authorizer, Operation, ResourceType
from keystream.auth.ldap import LdapDirectory, check_credentials
from keystream.auth.ldap_cache import LoginCache
from keystream.auth.principal import ANONYMOUS, Principal, Session
from keystream.auth.sasl import Authenticated, SaslAuthenticationError
from keystream.auth.sasl.scram_client import Refused, Unavailable, broker_login
from keystream.auth.ssl_principal import CertificateNameError, NoMatchingRule, SslPrincipalMapper, subject_dn
from keystream.auth.static_groups import parse_static_groups
from keystream.auth.tenants import Tenant, TenantStore
from keystream.auth.tls import client_context, has_client_auth_eku
from keystream.configdef import ConfigError
from keystream.registry import errors
from keystream.registry.errors import RegistryError

log = logging.getLogger("keystream.registry.access")

AclSource = Callable[[], Iterable[AclBinding]]  # blocking; run in a worker thread
TenantSource = Callable[[], Iterable[Tenant]]  # likewise
KICK_INTERVAL_S = 1.0  # a denial refreshes the ACLs at most this often
CONCURRENT_LOGINS = 4  # SCRAM logins to the broker at once; more wait (bounds a password-guessing flood)
SESSION_LISTENER = "REGISTRY"


class Action(Enum):
    READ = "read"
    WRITE = "write"
    DELETE = "delete"
    READ_CONFIG = "read_config"
    WRITE_CONFIG = "write_config"


_SUBJECT_OPS = {Action.READ: Operation.DESCRIBE, Action.WRITE: Operation.WRITE, Action.DELETE: Operation.DELETE,
                Action.READ_CONFIG: Operation.DESCRIBE_CONFIGS, Action.WRITE_CONFIG: Operation.ALTER_CONFIGS}
# Without a subject (global config/mode, listing): the cluster. Writing or deleting "everything"
# is an administrative change of the cluster, as Kafka's ALTER is.
_CLUSTER_OPS = {Action.READ: Operation.DESCRIBE, Action.WRITE: Operation.ALTER, Action.DELETE: Operation.ALTER,
                Action.READ_CONFIG: Operation.DESCRIBE_CONFIGS, Action.WRITE_CONFIG: Operation.ALTER_CONFIGS}


def topic_of(subject: str) -> str:
    """The topic a subject's schemas belong to (TopicNameStrategy), else the subject itself."""
    for suffix in ("-key", "-value"):
        if subject.endswith(suffix) and len(subject) > len(suffix):
            return subject[: -len(suffix)]
    return subject


def resource_for(action: Action, subject: str | None) -> tuple[Operation, ResourceType, str]:
    """The Kafka (operation, resource type, resource name) an action on a subject needs."""
    if subject is None:
        return _CLUSTER_OPS[action], ResourceType.CLUSTER, CLUSTER_NAME
    return _SUBJECT_OPS[action], ResourceType.TOPIC, topic_of(subject)


class Unauthorized(RegistryError):
    """401 with the challenge a browser or client needs to send credentials."""

    def __init__(self, realm: str):
        super().__init__(401, 401, "Unauthorized")
        self.headers = {"WWW-Authenticate": f'Basic realm="{realm}"'}


class Access:
    """`await authenticate(request)` -> Session; `allowed(session, action, subject)` -> bool."""

    def __init__(self, config: Mapping[str, Any], acl_source: AclSource, tenant_source: TenantSource | None = None):
        self.method = config.get("authentication.method", "BASIC").upper()
        self.realm = config.get("authentication.realm") or "SchemaRegistry"
        self.failure_delay_s = config.get("basic.auth.failure.delay.ms", 1000) / 1000
        self.static_groups = parse_static_groups(config.get("principal.groups"))
        self.mapper = SslPrincipalMapper(config.get("ssl.principal.mapping.rules", "DEFAULT"))
        # Parsing the certificate was a quarter of a GET /schemas/ids request's CPU (bench/README.md).
        self._certificate_principals = functools.lru_cache(maxsize=1024)(self._map_certificate)
        self.tenants = TenantStore(None) if tenant_source is not None else None  # the brokers' tenants, copied
        self.authorizer = Authorizer(config, None, self.tenants)  # its ACLs are replaced by each refresh
        copies = [Copy("ACLs", acl_source, self.authorizer.replace_acls)]
        if self.tenants is not None:
            copies.append(Copy("tenants", tenant_source, self.tenants.replace))
        self.refresher = Refresher(copies, config.get("acl.refresh.ms", 5000) / 1000)
        self.ldap = LdapDirectory(config) if config.get("ldap.url") else None
        self.scram = None if self.ldap is not None or self.method == "NONE" else BrokerLogin(config)

    async def start(self) -> None:
        """Loads the ACLs (and tenants) once (failures are logged: until a load works only super users
        pass), then keeps refreshing them. Idempotent; `authenticate` calls it."""
        await self.refresher.start()

    async def close(self) -> None:
        await self.refresher.close()
        if self.ldap is not None:
            self.ldap.close()

    # ------------------------------------------------------------------ authentication

    async def authenticate(self, request) -> Session:
        await self.start()
        host, protocol = request.remote or "", "HTTPS" if request.secure else "HTTP"
        header = request.headers.get("Authorization")
        if header is not None and self.method == "BASIC":
            result = await self._basic(header, host)
            return self._session(result.principal, host, protocol, result.groups)
        principal = self._certificate_principal(request)
        if principal is not None:
            return self._session(principal, host, protocol)
        if self.method == "NONE":
            return self._session(ANONYMOUS, host, protocol)
        raise Unauthorized(self.realm)

    def _session(self, principal: Principal, host: str, protocol: str = "HTTPS",
                 groups: tuple[Principal, ...] = ()) -> Session:
        """Directory groups plus `principal.groups`, which ACLs and super.users may name."""
        groups = tuple(dict.fromkeys(groups + self.static_groups.get(principal, ())))
        return Session(principal, host, SESSION_LISTENER, protocol, groups)

    def _map_certificate(self, der: bytes) -> Principal:
        if not has_client_auth_eku(der):
            raise CertificateNameError("no clientAuth extended key usage")
        return Principal("User", self.mapper.name(subject_dn(der)))

    async def _basic(self, header: str, host: str) -> Authenticated:
        started = time.monotonic()
        username = None
        try:
            username, password = _basic_credentials(header)
            check_credentials(username, password)
            if self.ldap is not None:
                return await self.ldap.authenticate(username, password)
            return await self.scram.authenticate(username, password)
        except SaslAuthenticationError:
            shown = "(malformed header)" if username is None else repr(username[:64])
            log.info("Basic authentication failed for user %s from %s", shown, host)
            await asyncio.sleep(max(0.0, self.failure_delay_s - (time.monotonic() - started)))
            raise Unauthorized(self.realm) from None

    def _certificate_principal(self, request) -> Principal | None:
        """User:<mapped subject DN> of a client certificate the TLS layer verified, else None."""
        transport = request.transport
        ssl_object = transport.get_extra_info("ssl_object") if transport is not None else None
        der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
        if not der:
            return None
        try:
            return self._certificate_principals(der)
        except (CertificateNameError, NoMatchingRule) as exc:
            log.info("client certificate from %s not accepted: %s", request.remote, exc)
            raise Unauthorized(self.realm) from None

    # ------------------------------------------------------------------ authorization

    def allowed(self, session: Session, action: Action, subject: str | None) -> bool:
        """Whether the session may; 50003 for everyone but super users until the first fetch worked."""
        if not self.refresher.loaded:
            if self.authorizer.is_super_user(session):
                return True
            self.refresher.kick()
            raise errors.forward("Authorization data has not been fetched from the brokers yet; retry later")
        op, rtype, name = resource_for(action, subject)
        if self.authorizer.authorize(session, op, rtype, name):
            return True
        if subject is None or not self.outside_tenant(session, subject):
            self.refresher.kick()  # a grant may be on its way; outside its namespace none ever is
        return False

    def outside_tenant(self, session: Session, subject: str) -> bool:
        """The session belongs to a tenant and the subject's topic lies outside its namespace: the
        subject is answered as one that does not exist."""
        tenant = self.authorizer.tenant_of(session)
        return tenant is not None and not tenant.owns(topic_of(subject))


def _basic_credentials(header: str) -> tuple[str, str]:
    """(user, password) of an `Authorization: Basic` header; anything malformed is a failed login."""
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "basic":
        raise SaslAuthenticationError("not Basic")
    try:
        text = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        raise SaslAuthenticationError("malformed Basic credentials") from None
    username, sep, password = text.partition(":")
    if not sep:
        raise SaslAuthenticationError("malformed Basic credentials")
    return username, password


class BrokerLogin:
    """Checks a password by logging in to the brokers' SASL listener as that user (SCRAM)."""

    def __init__(self, config: Mapping[str, Any]):
        self.mechanism = config.get("basic.auth.sasl.mechanism", "SCRAM-SHA-512")
        self.timeout_s = config.get("kafkastore.timeout.ms", 10000) / 1000
        self.addresses, self.ssl_context = _login_endpoints(config)
        self.cache = LoginCache(config.get("basic.auth.cache.ttl.ms", 60000) / 1000,
                                config.get("basic.auth.cache.max.entries", 10000))
        self._slots = asyncio.Semaphore(CONCURRENT_LOGINS)
        self._down = False

    async def authenticate(self, username: str, password: str) -> Authenticated:
        digest = b""
        if self.cache.enabled:
            digest = await asyncio.to_thread(self.cache.digest, username, password)
            cached = self.cache.lookup(username, digest)
            if cached is not None:
                return cached
        async with self._slots:
            await self._login(username, password)
        result = Authenticated(Principal("User", username))
        self.cache.store(username, digest, result)
        return result

    async def _login(self, username: str, password: str) -> None:
        problems = []
        for host, port in self.addresses:
            try:
                await broker_login(host, port, self.ssl_context, self.mechanism, username, password, self.timeout_s)
            except Refused:
                self._reachable()
                raise SaslAuthenticationError("refused by the broker") from None
            except Unavailable as exc:
                problems.append(str(exc))
                continue
            self._reachable()
            return
        level = logging.DEBUG if self._down else logging.WARNING
        log.log(level, "cannot check Basic credentials with the brokers, logins fail until one answers: %s",
                "; ".join(problems))
        self._down = True
        raise SaslAuthenticationError("brokers unavailable")

    def _reachable(self) -> None:
        if self._down:
            log.info("the brokers answer SASL logins again")
        self._down = False


def _login_endpoints(config: Mapping[str, Any]) -> tuple[list[tuple[str, int]], ssl.SSLContext | None]:
    """Where SCRAM logins go: `basic.auth.bootstrap.servers` (SASL_SSL), else the kafkastore brokers
    when the registry itself reaches them over SASL_SSL or SASL_PLAINTEXT."""
    servers = config.get("basic.auth.bootstrap.servers")
    protocol = "SASL_SSL"
    if not servers:
        protocol = config.get("kafkastore.security.protocol", "SSL")
        servers = config.get("kafkastore.bootstrap.servers")
        if not protocol.startswith("SASL_") or not servers:
            raise ConfigError("authentication.method=BASIC checks passwords with ldap.url or a SASL login to the"
                              " brokers: set ldap.url, basic.auth.bootstrap.servers, or a SASL_SSL"
                              " kafkastore.security.protocol")
    addresses = []
    for entry in servers.split(",") if isinstance(servers, str) else servers:
        scheme, sep, address = entry.strip().rpartition("://")
        if sep and scheme.upper() != protocol:
            continue  # Confluent's PROTOCOL://host:port form: only endpoints of our protocol
        host, _, port = address.rpartition(":")
        addresses.append((host.strip("[]"), int(port)))
    context = None
    if protocol == "SASL_SSL":
        context = client_context(config.get("kafkastore.ssl.truststore.location"), check_hostname=config.get(
            "kafkastore.ssl.endpoint.identification.algorithm", "https") == "https")
    return addresses, context


class Copy:
    """One thing the registry keeps a copy of: fetched by `source` (blocking, in a worker thread) and
    handed whole to `install`; a failed fetch keeps what was installed before."""

    def __init__(self, what: str, source: Callable[[], Iterable[Any]], install: Callable[[list], None]):
        self.what, self.source, self.install = what, source, install
        self.loaded = False
        self._failing = False

    async def refresh(self) -> None:
        try:
            found = await asyncio.to_thread(lambda: list(self.source()))
        except Exception as exc:  # noqa: BLE001 - any failure keeps the previous copy
            level = logging.DEBUG if self._failing else logging.WARNING
            log.log(level, "cannot fetch the %s from the brokers, keeping the previous ones: %s", self.what, exc)
            self._failing = True
            return
        self.install(found)
        if self._failing:
            log.info("%s fetched from the brokers again", self.what)
        self._failing, self.loaded = False, True


class Refresher:
    """Keeps the copies (the brokers' ACLs, and tenants) recent: every `interval_s`, and soon after a
    denial."""

    def __init__(self, copies: list[Copy], interval_s: float):
        self.copies, self.interval_s = copies, interval_s
        self._task: asyncio.Task | None = None
        self._started: asyncio.Task | None = None
        self._kicked = asyncio.Event()
        self._last = 0.0

    @property
    def loaded(self) -> bool:
        return all(c.loaded for c in self.copies)

    async def start(self) -> None:
        """The first load, shared by every caller that arrives before it is done."""
        if self._started is None:
            self._started = asyncio.get_running_loop().create_task(self._first())
        await asyncio.shield(self._started)

    async def _first(self) -> None:
        await self.refresh()
        self._task = asyncio.get_running_loop().create_task(self._run())

    def kick(self) -> None:
        """After a denial: refresh soon, in case the grant (or tenant membership) is newer than our copy."""
        self._kicked.set()

    async def refresh(self) -> None:
        self._last = time.monotonic()
        await asyncio.gather(*(c.refresh() for c in self.copies))

    async def _run(self) -> None:
        while True:
            kicked = False
            with contextlib.suppress(TimeoutError):  # not wait_for: in 3.11 it can swallow a cancel
                async with asyncio.timeout(self.interval_s):
                    kicked = await self._kicked.wait()
            if kicked:
                spacing = min(KICK_INTERVAL_S, self.interval_s)  # never later than the periodic refresh
                await asyncio.sleep(max(0.0, self._last + spacing - time.monotonic()))
            self._kicked.clear()  # denials until now are answered by this refresh
            await self.refresh()

    async def close(self) -> None:
        for task in (self._started, self._task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task


def kafka_acl_source(client_conf: Mapping[str, Any], timeout_s: float = 10.0) -> AclSource:
    """DescribeAcls (every ACL) with a confluent-kafka AdminClient made from `client_conf`, the
    librdkafka settings of the registry's kafkastore connection (its principal needs DESCRIBE on the
    cluster)."""
    admin = None

    def fetch() -> list[AclBinding]:
        nonlocal admin
        from confluent_kafka import admin as ck  # noqa: PLC0415

        if admin is None:
            admin = ck.AdminClient(dict(client_conf))
        every = ck.AclBindingFilter(ck.ResourceType.ANY, None, ck.ResourcePatternType.ANY, None, None,
                                    ck.AclOperation.ANY, ck.AclPermissionType.ANY)
        found = admin.describe_acls(every, request_timeout=timeout_s).result(timeout=timeout_s)
        return [AclBinding(int(b.restype.value), b.name, int(b.resource_pattern_type.value), b.principal, b.host,
                           int(b.operation.value), int(b.permission_type.value)) for b in found]

    return fetch
