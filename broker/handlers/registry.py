"""The one table of API handlers, keyed by api key; ApiVersions is computed from it."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from keystream.broker.protocol.messages import RESPONSES


@dataclass(frozen=True, slots=True)
class Handler:
    fn: Callable[..., Awaitable]
    request_cls: type
    response_cls: type
    min_version: int
    max_version: int
    flexible_min: int | None  # first version with flexible (tagged) headers, if any

    def supports(self, version: int) -> bool:
        return self.min_version <= version <= self.max_version

    def flexible(self, version: int) -> bool:
        return self.flexible_min is not None and version >= self.flexible_min


HANDLERS: dict[int, Handler] = {}


def api(request_cls: type, *, min_version: int | None = None, max_version: int | None = None):
    """Registers an `async def handler(ctx, request) -> response | None` for every version in range.

    The range defaults to the spec's valid versions, minus a latest version Kafka marks unstable.
    """
    lo, hi = request_cls.VALID_VERSIONS
    if request_cls.LATEST_UNSTABLE:
        hi -= 1

    def register(fn):
        key = request_cls.API_KEY
        if key in HANDLERS:
            raise RuntimeError(f"api key {key} registered twice")
        HANDLERS[key] = Handler(
            fn, request_cls, RESPONSES[key],
            lo if min_version is None else max(lo, min_version),
            hi if max_version is None else min(hi, max_version),
            request_cls.FLEXIBLE_MIN,
        )
        return fn

    return register
