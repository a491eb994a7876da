"""SaslHandshake and SaslAuthenticate outside an authentication exchange: on a connection that is
not SASL (or already authenticated and not re-authenticating), Kafka's KafkaApis answers both with
ILLEGAL_SASL_STATE and keeps the connection. The exchange itself is broker/sasl_session.py's."""

from keystream.broker.errors import ErrorCode
from keystream.broker.handlers.registry import api
from keystream.broker.protocol.messages.sasl_authenticate_request import SaslAuthenticateRequest
from keystream.broker.protocol.messages.sasl_authenticate_response import SaslAuthenticateResponse
from keystream.broker.protocol.messages.sasl_handshake_request import SaslHandshakeRequest
from keystream.broker.protocol.messages.sasl_handshake_response import SaslHandshakeResponse


@api(SaslHandshakeRequest)
async def sasl_handshake(ctx, req: SaslHandshakeRequest) -> SaslHandshakeResponse:
    return SaslHandshakeResponse(ErrorCode.ILLEGAL_SASL_STATE, [])


@api(SaslAuthenticateRequest)
async def sasl_authenticate(ctx, req: SaslAuthenticateRequest) -> SaslAuthenticateResponse:
    return SaslAuthenticateResponse(ErrorCode.ILLEGAL_SASL_STATE,
                                    "SaslAuthenticate request received after successful authentication", b"")
