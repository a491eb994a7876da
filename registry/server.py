"""`keystream registry serve`: read the `_schemas` topic, then serve the REST API until SIGTERM.

TLS comes from the broker's own context builder (same versions, ciphers, CRL checks and error
texts), fed with the registry's Confluent-named properties. Nothing listens before the store has
read the topic to the end, so a client never sees a half-loaded registry.
"""

from __future__ import annotations

import asyncio
import logging
import signal

from aiohttp import web

from keystream.auth.tls import build_server_context
from keystream.configdef import ConfigError
from keystream.registry.access import Access, kafka_acl_source
from keystream.registry.app import build_app
from keystream.registry.config import RegistryConfig
from keystream.registry.kafkastore import KafkaStoreError, client_config
from keystream.registry.service import RegistryService
from keystream.registry.tenant_source import admin_tenant_source
from keystream.service_loop import run_service

log = logging.getLogger("keystream.registry")

SHUTDOWN_TIMEOUT_S = 5.0
# aiohttp's default request-line limit (8190) answers a long URL with a bare-text 400 from its parser;
# past it, over-long subjects reach the app and get Confluent's JSON error (42208).
MAX_LINE_BYTES = 64 * 1024
ACCESS_LOG_FORMAT = '%a "%r" %s %b %Tf'  # yarl keeps the path percent-encoded: no raw newlines


async def serve(config: RegistryConfig, on_started=None) -> None:
    """Runs until SIGTERM or SIGINT, then stops accepting, lets requests finish and closes the store."""
    context = build_server_context(config.tls_properties()) if _needs_tls(config) else None
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    service = RegistryService(config)
    tenants = admin_tenant_source(config) if config["admin.url"] else None
    if tenants is None:
        # a warning: with allow.everyone.if.no.acl.found=true a tenant member may touch every subject
        log.warning("admin.url is unset: the registry does not know the brokers' tenants, so tenant members"
                    " get exactly what ACLs grant on subjects, without their namespace's confinement")
    access = Access(config, kafka_acl_source(client_config(config)), tenants)
    runner = web.AppRunner(build_app(service, access, config), access_log_format=ACCESS_LOG_FORMAT,
                           shutdown_timeout=SHUTDOWN_TIMEOUT_S, max_line_size=MAX_LINE_BYTES)
    try:
        await service.start()
        await runner.setup()
        for lst in config.http_listeners:
            tls = context if lst.scheme == "https" else None
            await web.TCPSite(runner, lst.host or None, lst.port, ssl_context=tls).start()
            log.info("registry listening on %s", lst)
        if on_started is not None:
            on_started()
        await stopping.wait()
        log.info("shutting down")
    finally:
        await runner.cleanup()
        await access.close()
        await service.close()
    log.info("stopped cleanly")


def _needs_tls(config: RegistryConfig) -> bool:
    return any(lst.scheme == "https" for lst in config.http_listeners)


def run(config: RegistryConfig, on_started=None) -> int:
    """Entry point of `keystream registry serve`: blocks until shut down; returns the exit code."""
    # e.g. an unreadable keystore, brokers unreachable: one clear line, no traceback
    return run_service(serve(config, on_started), log, (ConfigError, KafkaStoreError))
