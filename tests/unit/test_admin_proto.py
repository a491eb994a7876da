"""The checked-in admin API code is what protoc makes from proto/keystream/admin/v1/admin.proto now,
and its ACL enums carry Kafka's wire codes (the services map them one to one)."""

from __future__ import annotations

import pytest

from keystream.auth.acl import Operation, PatternType, Permission, ResourceType

pytest.importorskip("grpc_tools")


def test_generated_code_is_current():
    from keystream.broker.admin import gen

    assert gen.main(["--check"]) == 0, "broker/admin/v1 is stale: run `make gen`"


@pytest.mark.parametrize("enum, prefix", [(ResourceType, "RESOURCE_TYPE_"), (PatternType, "PATTERN_TYPE_"),
                                          (Operation, "OPERATION_"), (Permission, "PERMISSION_")])
def test_acl_enums_use_kafka_codes(enum, prefix):
    from keystream.broker.admin.v1 import admin_pb2 as pb

    proto_enum = pb.DESCRIPTOR.enum_types_by_name[enum.__name__]
    for member in enum:
        name = prefix + ("UNSPECIFIED" if member.name == "UNKNOWN" else member.name)
        assert proto_enum.values_by_name[name].number == member.value
    assert len(proto_enum.values) == len(enum)
