"""The compatibility corpus (tests/fixtures/compat_corpus.py) through the REST API of a live registry.

Every distinct schema of the corpus is registered once, as the first version of a subject of its own.
Under global BACKWARD, POST /compatibility/subjects/{writer's subject}/versions/latest with the reader
asks "can the new schema read the registered one's data"; under global FORWARD the roles swap (the
reader's subject, the writer as the new schema). Both must give the corpus's answer for every pair.
The module owns its registry, so each test sets the global level it needs.
"""

from __future__ import annotations

import pytest

from tests.fixtures.compat_corpus import CORPUS

pytestmark = pytest.mark.keystream_only


@pytest.fixture(scope="module")
def registry(module_broker_factory, registry_factory):
    return registry_factory(module_broker_factory(tls=True))


@pytest.fixture(scope="module")
def subjects(registry) -> dict[str, str]:
    """Schema text -> the subject whose only version it is (a first version is never checked)."""
    texts = sorted({w for w, _, _, _ in CORPUS} | {r for _, r, _, _ in CORPUS})
    found = {}
    for n, text in enumerate(texts):
        reply = registry.http("POST", f"/subjects/corpus{n}/versions", {"schema": text})
        assert reply.status == 200, (text, reply.body)
        found[text] = f"corpus{n}"
    return found


def _check_all(registry, subjects, level: str, registered, new) -> None:
    assert registry.http("PUT", "/config", {"compatibility": level}).json() == {"compatibility": level}
    wrong = []
    for case in CORPUS:
        writer, reader, expected, note = case
        reply = registry.http("POST", f"/compatibility/subjects/{subjects[registered(case)]}/versions/latest"
                              "?verbose=true", {"schema": new(case)})
        assert reply.status == 200, (note, reply.body)
        body = reply.json()
        # verbose: reasons exactly when incompatible
        if body["is_compatible"] is not expected or bool(body.get("messages")) is expected:
            wrong.append(f"{note}: expected {expected}, got {body}")
    assert not wrong, f"{len(wrong)} of {len(CORPUS)} pairs answered wrongly under {level}:\n" + "\n".join(wrong)


def test_corpus_is_large_enough():
    assert len(CORPUS) >= 100


def test_backward_new_schema_reads_the_registered_one(registry, subjects):
    _check_all(registry, subjects, "BACKWARD", registered=lambda c: c[0], new=lambda c: c[1])


def test_forward_registered_schema_reads_the_new_one(registry, subjects):
    _check_all(registry, subjects, "FORWARD", registered=lambda c: c[1], new=lambda c: c[0])
