"""Fixtures shared by the unit tests."""

import pytest

from tests.unit.test_log_partition import Harness


@pytest.fixture
def harness(tmp_path):
    """A PartitionLog in a temp dir (test_log_partition, test_log_recovery), closed afterwards."""
    h = Harness(tmp_path)
    yield h
    if h.log is not None and not h.log.closed:
        h.log.close()
