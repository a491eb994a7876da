"""ApiVersions: advertises exactly the versions the handler table implements."""

import re

from keystream.broker.errors import ErrorCode
from keystream.broker.handlers.registry import HANDLERS, api
from keystream.broker.protocol.messages.api_versions_request import ApiVersionsRequest
from keystream.broker.protocol.messages.api_versions_response import ApiVersion, ApiVersionsResponse

# KIP-511: client software name and version must look like this, as Kafka enforces.
_SOFTWARE = re.compile(r"[a-zA-Z0-9](?:[a-zA-Z0-9\-.]*[a-zA-Z0-9])?")


@api(ApiVersionsRequest)
async def api_versions(ctx, req: ApiVersionsRequest) -> ApiVersionsResponse:
    keys = [ApiVersion(k, h.min_version, h.max_version) for k, h in sorted(HANDLERS.items())]
    if ctx.version >= 3 and not (
        _SOFTWARE.fullmatch(req.client_software_name) and _SOFTWARE.fullmatch(req.client_software_version)
    ):
        return ApiVersionsResponse(ErrorCode.INVALID_REQUEST, keys)
    return ApiVersionsResponse(ErrorCode.NONE, keys)
