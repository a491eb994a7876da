"""Framing attacks: oversized and negative frame sizes, truncated and garbled bodies, unknown api
keys and versions. The broker closes the offending connection (before allocating anything for an
oversized frame) and keeps serving everyone else."""

from __future__ import annotations

import contextlib
import struct

import pytest

from keystream.broker.protocol.codec import Writer
from keystream.broker.protocol.messages.api_versions_request import ApiVersionsRequest
from keystream.broker.protocol.messages.api_versions_response import ApiVersionsResponse
from keystream.broker.protocol.messages.metadata_request import MetadataRequest, MetadataRequestTopic
from keystream.broker.protocol.messages.produce_request import (
    PartitionProduceData,
    ProduceRequest,
    TopicProduceData,
)
from keystream.broker.protocol.messages.request_header import RequestHeader
from keystream.broker.protocol.messages.response_header import ResponseHeader
from tests.fixtures.records import Record, build_batch
from tests.fixtures.waiting import Deadline
from tests.fixtures.wire import ConnectionClosed, WireClient, encode_request, unique_name

UNSUPPORTED_VERSION = 35
DEFAULT_MAX_REQUEST = 104_857_600
MiB = 1 << 20


def assert_serving(broker, *clients: WireClient) -> None:
    """Existing connections and a brand-new one still get answers."""
    for c in clients:
        assert 18 in c.api_versions()
    with WireClient(broker.address) as fresh:
        assert 18 in fresh.api_versions()
    assert broker.running


def header_bytes(api_key: int, version: int, cid: int = 1, header_version: int = 1) -> bytes:
    w = Writer()
    RequestHeader(request_api_key=api_key, request_api_version=version, correlation_id=cid, client_id="attacker").encode(
        w, header_version
    )
    return w.tobytes()


# ------------------------------------------------------------------------------ sizes
@pytest.mark.parametrize("size", [DEFAULT_MAX_REQUEST + 1, 0x7FFFFFFF], ids=["max+1", "2GiB"])
def test_oversized_frame_is_closed_before_allocation(shared_broker, size):
    with WireClient(shared_broker.address) as bystander, WireClient(shared_broker.address) as attacker:
        assert 18 in bystander.api_versions()
        rss_before = shared_broker.rss_bytes()
        # Only the size and a header: a broker that waited for the body would keep the line open.
        attacker.send_raw(struct.pack(">i", size) + header_bytes(3, 12)[:8])
        assert attacker.closed_within(5), f"a {size}-byte frame must close the connection at once"
        assert not attacker.unexpected, "no response to an oversized frame"
        assert shared_broker.rss_bytes() - rss_before < 16 * MiB
        assert_serving(shared_broker, bystander)


def test_two_gib_announced_then_streamed_does_not_grow_memory(shared_broker):
    with WireClient(shared_broker.address) as attacker:
        rss_before = shared_broker.rss_bytes()
        chunk = b"\0" * MiB
        sent = 0
        deadline = Deadline(10)
        try:
            attacker.send_raw(struct.pack(">i", 0x7FFFFFFF))
            while sent < 64 * MiB and not deadline.expired():
                attacker.send_raw(chunk)
                sent += len(chunk)
        except (ConnectionClosed, OSError):
            pass
        assert attacker.closed_within(5)
        assert shared_broker.rss_bytes() - rss_before < 16 * MiB, "the broker buffered the body of an oversized frame"
    assert_serving(shared_broker)


@pytest.mark.parametrize("size", [-1, -2_147_483_648], ids=["-1", "int-min"])
def test_negative_frame_size_is_closed(shared_broker, size):
    with WireClient(shared_broker.address) as bystander, WireClient(shared_broker.address) as attacker:
        attacker.send_raw(struct.pack(">i", size) + b"\0" * 16)
        assert attacker.closed_within(5)
        assert not attacker.unexpected
        assert_serving(shared_broker, bystander)


@pytest.fixture(scope="module")
def small_frames_broker(module_broker_factory):
    return module_broker_factory(**{"socket.request.max.bytes": MiB})


def test_socket_request_max_bytes_is_enforced(small_frames_broker):
    b = small_frames_broker
    topic = unique_name("frames")
    with WireClient(b.address) as c:
        c.create_topic(topic, 1)
        # Just under the limit: accepted and answered.
        ok = c.produce(topic, 0, build_batch([Record(value=b"x" * (900 * 1024))]))
        assert ok.error_code == 0
    with WireClient(b.address) as c:
        # Just over: a valid produce request of more than socket.request.max.bytes is refused.
        req = ProduceRequest(
            acks=1,
            timeout_ms=5000,
            topic_data=[
                TopicProduceData(
                    name=topic, partition_data=[PartitionProduceData(index=0, records=build_batch([Record(value=b"y" * MiB)]))]
                )
            ],
        )
        payload = encode_request(req, 9, 7)
        assert len(payload) > MiB
        with contextlib.suppress(ConnectionClosed):
            c.send_raw(struct.pack(">i", len(payload)) + payload[:64])
        assert c.closed_within(5)
        assert not c.unexpected
    with WireClient(b.address) as c:
        assert c.list_offset(topic, 0, -1).offset == 1, "the oversized request appended nothing"


# ------------------------------------------------------------------------------ bodies
def _metadata_payload(version: int) -> bytes:
    return encode_request(MetadataRequest(topics=[MetadataRequestTopic(name="some-topic")]), version, 3)


GARBLED = {
    # a header shorter than api key + version + correlation id
    "short-header": struct.pack(">hh", 3, 12),
    # Metadata v12 cut in the middle of its topic array
    "truncated-metadata-v12": _metadata_payload(12)[:-6],
    # Metadata v4 cut inside the header's client id string
    "truncated-client-id": _metadata_payload(4)[:12],
    # Metadata v12 whose body is a varint that never ends
    "endless-varint": header_bytes(3, 12, header_version=2) + b"\xff" * 16,
    # Metadata v4 announcing 2^31-1 topics in a 4-byte body
    "huge-array": header_bytes(3, 4) + b"\x7f\xff\xff\xff",
    # Produce v9 whose records length runs past the frame
    "records-past-frame": header_bytes(0, 9, header_version=2) + b"\x00" + b"\xff\xff" + b"\x00\x00\x13\x88"
    + b"\x02" + b"\x02t" + b"\x02" + b"\x00\x00\x00\x00" + b"\xff\xff\xff\x0f",
    # Produce v3 with a negative string length for the topic name
    "negative-string": header_bytes(0, 3) + b"\xff\xff" + b"\x00\x01" + b"\x00\x00\x13\x88" + b"\x00\x00\x00\x01" + b"\xff\xfe",
}


@pytest.mark.parametrize("name", sorted(GARBLED))
def test_truncated_or_garbled_request_closes_only_that_connection(shared_broker, name):
    with WireClient(shared_broker.address) as bystander, WireClient(shared_broker.address) as attacker:
        assert 18 in bystander.api_versions()
        attacker.send_frame(GARBLED[name])
        assert attacker.closed_within(5), f"{name}: the connection must be closed"
        assert not attacker.unexpected, f"{name}: no response to a malformed request"
        assert_serving(shared_broker, bystander)


def test_garbage_after_a_valid_request_is_not_answered_as_valid(shared_broker):
    """A pipelined valid request is answered, then the garbled one closes the connection."""
    with WireClient(shared_broker.address) as c:
        cid = c.send(ApiVersionsRequest(), 0)
        c.send_frame(GARBLED["huge-array"])
        resp = c.receive(cid)
        assert resp.error_code == 0
        assert c.closed_within(5)
    assert_serving(shared_broker)


# ------------------------------------------------------------------------------ api keys / versions
def test_api_versions_unknown_version_answers_unsupported_version_with_ranges(shared_broker):
    with WireClient(shared_broker.address) as c:
        supported = c.api_versions(3)
        # A future ApiVersions version, encoded like v3 (flexible header): answered in v0 form.
        w = Writer()
        RequestHeader(request_api_key=18, request_api_version=99, correlation_id=4242, client_id="future").encode(w, 2)
        ApiVersionsRequest(client_software_name="future-client", client_software_version="9").encode(w, 3)
        c.send_frame(w.tobytes())
        payload = c.read_frame()
        header, pos = ResponseHeader.decode(payload, 0, 0)
        assert header.correlation_id == 4242
        resp, end = ApiVersionsResponse.decode(payload, pos, 0)
        assert end == len(payload)
        assert resp.error_code == UNSUPPORTED_VERSION
        ranges = {k.api_key: (k.min_version, k.max_version) for k in resp.api_keys}
        assert ranges == supported, "UNSUPPORTED_VERSION carries the supported ranges"
        assert ranges[18][0] == 0
        # The connection stays usable: the client retries with a version it now knows.
        assert c.api_versions(0) == supported


def test_every_advertised_version_of_api_versions_and_metadata_is_answered(shared_broker):
    """Advertised versions are accepted (never a closed connection): ApiVersions' and Metadata's
    full advertised ranges each get a decodable response."""
    with WireClient(shared_broker.address) as c:
        supported = c.api_versions(3)
        for v in range(supported[18][0], supported[18][1] + 1):
            assert c.request(ApiVersionsRequest(client_software_name="t", client_software_version="1"), v).error_code == 0
        lo, hi = supported[3]
        for v in range(lo, hi + 1):
            resp = c.request(MetadataRequest(topics=[]), v)
            assert resp.brokers, f"Metadata v{v} lists the broker"


@pytest.mark.parametrize(
    "api_key,version",
    [(32000, 0), (-1, 0), (57, 0), (3, 99), (0, -1), (0, 12345), (1, 99)],
    ids=["key-32000", "key-minus-1", "unimplemented-UpdateFeatures", "metadata-v99", "produce-v-1", "produce-v12345", "fetch-v99"],
)
def test_unknown_api_key_or_version_closes_the_connection(shared_broker, api_key, version):
    with WireClient(shared_broker.address) as bystander, WireClient(shared_broker.address) as attacker:
        attacker.send_frame(header_bytes(api_key, version) + b"\0" * 32)
        assert attacker.closed_within(5)
        assert not attacker.unexpected
        assert_serving(shared_broker, bystander)
