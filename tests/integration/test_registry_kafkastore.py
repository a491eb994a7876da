"""RegistryService over a real broker's `_schemas`-style topic (mTLS): state survives a rebuild from the topic."""

import asyncio
import json
import uuid
from contextlib import asynccontextmanager

import pytest
from confluent_kafka.admin import AdminClient, ConfigResource

from keystream.registry.errors import RegistryError
from keystream.registry.service import RegistryService

pytestmark = pytest.mark.keystream_only


def record(name: str, *fields: tuple[str, str]) -> str:
    return json.dumps({"type": "record", "name": name,
                       "fields": [{"name": n, "type": t, **({"default": None} if t == ["null", "string"] else {})}
                                  for n, t in fields]})


V1 = record("User", ("id", "long"))
V2 = record("User", ("id", "long"), ("email", ["null", "string"]))
OTHER = record("Order", ("total", "double"))


@pytest.fixture(scope="module")
def tls_broker(module_broker_factory):
    return module_broker_factory(tls=True)


@pytest.fixture
def props(tls_broker):
    tls = tls_broker.tls
    return {"kafkastore.bootstrap.servers": tls_broker.bootstrap, "kafkastore.security.protocol": "SSL",
            "kafkastore.ssl.truststore.location": str(tls.ca_cert),
            "kafkastore.ssl.keystore.location": str(tls.admin.pem),
            "kafkastore.topic": f"_schemas_{uuid.uuid4().hex[:8]}", "kafkastore.timeout.ms": 10000,
            "kafkastore.init.timeout.ms": 15000, "schema.compatibility.level": "backward"}


@asynccontextmanager
async def running(props):
    service = RegistryService(props)
    await service.start()
    try:
        yield service
    finally:
        await service.close()


async def fails(code: int, coro) -> RegistryError:
    with pytest.raises(RegistryError) as info:
        await coro
    assert info.value.error_code == code, info.value.body()
    return info.value


async def snapshot(svc: RegistryService) -> dict:
    subjects = await svc.subjects(None, deleted=True)
    return {
        "subjects": subjects,
        "live": await svc.subjects(),
        "versions": {s: [await svc.get_version(s, str(n), deleted=True) for n in await svc.versions(s, deleted=True)]
                     for s in subjects},
        "config": await svc.get_config(None),
        "mode": await svc.get_mode(None),
        "subject_config": await svc.get_config("orders-value"),
    }


def test_state_is_rebuilt_from_the_topic(props, tls_broker):
    async def scenario():
        async with running(props) as svc:
            assert await svc.register("users-value", {"schema": V1}) == {"id": 1}
            assert await svc.register("users-value", {"schema": json.dumps(json.loads(V1), indent=2)}) == {"id": 1}
            assert await svc.register("users-value", {"schema": V2}) == {"id": 2}
            assert await svc.register("copy-value", {"schema": V1}) == {"id": 1}  # same schema, same id
            assert await svc.register("orders-value", {"schema": OTHER}) == {"id": 3}
            await svc.set_config("orders-value", {"compatibility": "full"})
            await svc.set_config(None, {"compatibility": "forward"})
            assert await svc.delete_subject("copy-value") == [1]
            before = await snapshot(svc)
        async with running(props) as again:
            assert await snapshot(again) == before
            assert before["config"] == {"compatibilityLevel": "FORWARD"}
            assert before["subject_config"] == {"compatibilityLevel": "FULL"}
            assert await again.get_version("users-value", "latest") == {
                "subject": "users-value", "version": 2, "id": 2, "schema": json.dumps(json.loads(V2), separators=(",", ":"))}
            assert await again.subjects_for_id(1, True) == ["copy-value", "users-value"]
            # The next registration continues after the ids read back.
            assert await again.register("more-value", {"schema": record("More", ("x", "int"))}) == {"id": 4}

        admin = AdminClient(tls_broker.tls.confluent(tls_broker.bootstrap))
        resource = ConfigResource(ConfigResource.Type.TOPIC, props["kafkastore.topic"])
        assert admin.describe_configs([resource])[resource].result(10)["cleanup.policy"].value == "compact"

    asyncio.run(scenario())


def test_ids_are_not_reused_after_permanent_delete_and_restart(props):
    async def scenario():
        async with running(props) as svc:
            await svc.register("a-value", {"schema": V1})
            assert await svc.register("b-value", {"schema": OTHER}) == {"id": 2}
            await fails(40405, svc.delete_subject("b-value", permanent=True))  # soft delete first
            await svc.delete_subject("b-value")
            await fails(40404, svc.delete_subject("b-value"))
            assert await svc.delete_subject("b-value", permanent=True) == [1]
            await fails(40403, svc.schema_by_id(2))
        async with running(props) as again:
            assert await again.subjects(None, deleted=True) == ["a-value"]
            assert await again.register("c-value", {"schema": OTHER}) == {"id": 3}

    asyncio.run(scenario())


def test_soft_delete_rules_modes_and_references(props):
    async def scenario():
        async with running(props) as svc:
            assert await svc.register("s", {"schema": V1}) == {"id": 1}
            assert await svc.delete_version("s", "1") == 1
            await fails(40406, svc.delete_version("s", "1"))
            await fails(40401, svc.versions("s"))
            assert await svc.versions("s", deleted=True) == [1]
            assert await svc.schema_by_id(1) == {"schema": json.dumps(json.loads(V1), separators=(",", ":"))}
            # Re-registering the soft-deleted schema: a new version, the same id.
            assert await svc.register("s", {"schema": V1}) == {"id": 1}
            assert await svc.versions("s", deleted=True) == [2]
            # Incompatible under BACKWARD (new field without default), fine once the old one is soft-deleted.
            bad = record("User", ("id", "long"), ("name", "string"))
            await fails(40901, svc.register("s", {"schema": bad}))
            await fails(42201, svc.register("s", {"schemaType": "AVRO"}))
            await fails(42201, svc.register("s", {"schema": "{not json"}))
            await fails(42202, svc.get_version("s", "0"))
            await fails(42208, svc.register("bad\x00name", {"schema": V1}))
            # References: a missing target is 42201; a referenced version cannot be deleted (42206).
            ref = [{"name": "User", "subject": "s", "version": 2}]
            holder = json.dumps({"type": "record", "name": "Holder", "fields": [{"name": "u", "type": "User"}]})
            await fails(42201, svc.register("h", {"schema": holder, "references": [{**ref[0], "version": 9}]}))
            assert await svc.register("h", {"schema": holder, "references": ref}) == {"id": 2}
            assert await svc.referenced_by("s", "2") == [2]
            await fails(42206, svc.delete_version("s", "2"))
            # READONLY refuses writes; IMPORT takes an explicit id and version.
            await svc.set_mode(None, {"mode": "READONLY"})
            await fails(42205, svc.register("t", {"schema": OTHER}))
            await svc.delete_mode(None)
            await fails(42205, svc.set_mode(None, {"mode": "IMPORT"}))  # live subjects exist
            await svc.set_mode("imp", {"mode": "IMPORT"})
            assert await svc.register("imp", {"schema": OTHER, "id": 100, "version": 5}) == {"id": 100}
            assert await svc.get_version("imp", "5") | {"schema": None} == {
                "subject": "imp", "version": 5, "id": 100, "schema": None}
            await fails(42205, svc.register("imp", {"schema": V2}))  # no id in IMPORT mode
            await svc.delete_mode("imp")
            assert await svc.register("next", {"schema": record("N", ("n", "int"))}) == {"id": 101}
            assert await svc.test_compatibility("s", "latest", {"schema": bad}, verbose=True) != {"is_compatible": True}

    asyncio.run(scenario())
