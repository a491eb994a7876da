"""Fixtures shared by the unit tests."""

import pytest

from keystream.broker.log import LogManager
from tests.unit.test_log_partition import Harness


@pytest.fixture
def harness(tmp_path):
    """A PartitionLog in a temp dir (test_log_partition, test_log_recovery), closed afterwards."""
    h = Harness(tmp_path)
    yield h
    if h.log is not None and not h.log.closed:
        h.log.close()


@pytest.fixture
def logs(tmp_path):
    """make() -> a loaded LogManager on one data dir (reopened by calling it again), closed afterwards."""
    made = []

    def make() -> LogManager:
        m = LogManager([str(tmp_path / "data")], {})
        m.load()
        made.append(m)
        return m

    yield make
    for m in made:
        m.close()
