"""Response frames: size + response header + body, shared by the request loop and the SASL layer."""

from keystream.broker.protocol.codec import Writer, p_i32


def frame_response(response, version: int, correlation_id: int, tagged_header: bool) -> list:
    """Encodes size + response header + body; the size is patched in once the body is known."""
    w = Writer()
    w.buf += p_i32(0)
    w.buf += p_i32(correlation_id)
    if tagged_header:
        w.buf.append(0)
    response.encode(w, version)
    buffers = w.getbuffers()
    buffers[0][0:4] = p_i32(sum(map(len, buffers)) - 4)
    return buffers
