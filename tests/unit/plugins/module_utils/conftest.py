"""Fixtures shared by the module_utils tests."""

import pytest

from ansible_collections.otp.release.plugins.module_utils import _identity, _unpack
from ansible_collections.otp.release.plugins.module_utils._root import ReleaseRoot


@pytest.fixture
def no_node_process(monkeypatch, tmp_path):
    """No beam.smp serves any root of the test (the node is found by the name and cookie given, or not at all), and
    no ~/.erlang.cookie of the user running the tests is read."""
    monkeypatch.setattr(_identity, "find_node_process", lambda root: None)
    monkeypatch.setattr(_unpack, "find_node_process", lambda root: None)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


@pytest.fixture
def relup_root():
    """relup_root(root, relups): see write_relup_root."""
    return write_relup_root


def write_relup_root(root, relups):
    """A kvstore root with releases/<vsn>/kvstore.rel for each version of relups ({version: relup text or None}) and
    its relup; the ReleaseRoot of it."""
    for version, relup in relups.items():
        directory = root / "releases" / version
        directory.mkdir(parents=True)
        (directory / "kvstore.rel").write_text('{release,{"kvstore","%s"},{erts,"13.1.5"},[{kernel,"8.5.3"}]}.\n' % version)
        if relup:
            (directory / "relup").write_text(relup)
    return ReleaseRoot(str(root), "kvstore")
