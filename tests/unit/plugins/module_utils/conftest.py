"""Fixtures shared by the module_utils tests."""

import pytest

from ansible_collections.otp.release.plugins.module_utils import _identity, _unpack


@pytest.fixture
def no_node_process(monkeypatch, tmp_path):
    """No beam.smp serves any root of the test (the node is found by the name and cookie given, or not at all), and
    no ~/.erlang.cookie of the user running the tests is read."""
    monkeypatch.setattr(_identity, "find_node_process", lambda root: None)
    monkeypatch.setattr(_unpack, "find_node_process", lambda root: None)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
