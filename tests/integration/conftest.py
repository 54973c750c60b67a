"""Fixtures of the kvstore test world: tarballs, a private epmd, deployed roots and nodes.

The logic lives in world.py so that other test files and the benchmarks can import it."""

import os
import shutil
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import world as kvworld  # noqa: E402


@pytest.fixture(scope="session")
def world():
    """{short name: tarball path}: "1.0.0", "2.0.0", "3.0.0", "1.1.0", "1.2.0", "2.0.0-noerts",
    "truncated", "dotdot", "absolute", "symlink-out", "hardlink-out", "foreign-erts", "missing-lib";
    mix releases "mix-0.1.0", "mix-0.2.0"; Distillery-shaped "distillery-1.0.0", "distillery-2.0.0",
    "distillery-2.0.0-differing", "distillery-2.0.0-retyped"."""
    return kvworld.build_world()


@pytest.fixture(scope="session", autouse=True)
def epmd():
    """A private epmd on 127.0.0.1; ERL_EPMD_PORT points every node, erl_call and ansible run at it."""
    daemon = kvworld.Epmd()
    previous = os.environ.get("ERL_EPMD_PORT")
    os.environ["ERL_EPMD_PORT"] = str(daemon.port)
    yield daemon
    if previous is None:
        os.environ.pop("ERL_EPMD_PORT", None)
    else:
        os.environ["ERL_EPMD_PORT"] = previous
    daemon.stop()


@pytest.fixture(scope="session")
def all_nodes(epmd):
    """Every node this session started; at the end none of them may still be alive."""
    nodes = kvworld.Nodes()
    yield nodes
    nodes.stop_all()
    alive = nodes.still_alive()
    registered = [name for name in epmd.names() if name + "@127.0.0.1" in {n.name for n in nodes.started}]
    assert not alive and not registered, "nodes still alive at session end: {0} {1}".format(alive, registered)


@pytest.fixture
def deploy(world):
    """deploy(version, root=None, releases_file=True) -> root: extract a world tarball (or a tarball
    path) into a fresh temp root, or into root; the temp dirs are removed after the test."""
    made = []

    def deploy_version(version, root=None, releases_file=True):
        new_root = kvworld.deploy(kvworld.tarball_path(world, version), root, releases_file)
        if root is None:
            made.append(new_root.parent)
        return new_root

    yield deploy_version
    for path in made:
        # run_erl may still write its last log line just after the node's pid is gone
        for attempt in range(3):
            shutil.rmtree(path, ignore_errors=True)
            if not path.exists():
                break
            time.sleep(0.2 * (attempt + 1))


@pytest.fixture
def start_node(deploy, all_nodes):
    """start_node(root, env=None, heart=False, kind=Node) -> Node (or a MixNode, DistilleryNode); the
    nodes are stopped after the test, even when it fails."""
    started = []

    def start(root, env=None, heart=False, timeout=30, kind=kvworld.Node):
        node_count = len(all_nodes.started)
        try:
            return all_nodes.start(root, env=env, heart=heart, timeout=timeout, kind=kind)
        finally:
            started.extend(all_nodes.started[node_count:])

    yield start
    for node in started:
        node.stop()


@pytest.fixture(scope="session")
def ssh_machinery(world, epmd):
    """The SSH fleet's sshd, login user and app users (fleet.py), made once per session and removed after;
    skipped only where this machine cannot create users or run sshd."""
    import fleet as sshfleet

    reason = sshfleet.missing_prerequisites()
    if reason:
        pytest.skip("SSH fleet unavailable: " + reason)
    machinery = sshfleet.Fleet(world, epmd.port)
    machinery.set_up()
    sys.stderr.write("\nSSH fleet set up in %.1f s (sshd on 127.0.0.2-4:%d)\n" % (machinery.setup_seconds, machinery.port))
    yield machinery
    machinery.close()


@pytest.fixture
def ssh_fleet(ssh_machinery):
    """The SSH fleet with fresh 1.0.0 roots and no node running; every node a test starts is stopped after it."""
    ssh_machinery.reset()
    yield ssh_machinery
    ssh_machinery.stop_nodes()
