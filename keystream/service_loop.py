"""How a Keystream server process (broker, registry) runs: uvloop where installed, and a start-up
failure (bad config, unreachable dependency) as one clear log line and exit code 1, not a traceback."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


def run_service(main: Coroutine, log: logging.Logger, fatal: tuple[type[BaseException], ...]) -> int:
    """Run `main` until it returns; the exit code."""
    try:
        import uvloop
    except ImportError:
        uvloop = None
    try:
        if uvloop is not None:
            uvloop.run(main)
        else:
            asyncio.run(main)
    except fatal as exc:
        log.error("cannot start: %s", exc)
        return 1
    return 0
