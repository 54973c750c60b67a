"""otp.release.verify_erts through ansible-playbook: good releases pass, and each fault fails naming its
check: no ERTS, an ERTS for another machine, a missing shared library, an ERTS change without an
emulator restart."""

import io
import shutil
import tarfile
import tempfile
import time
from pathlib import Path

import pytest

import world as kvworld
from ansible_cli import run_module

ALL_CHECKS = ["erts_bundled", "erts_matches_rel", "binaries", "elf_arch", "libc", "shared_libraries", "erts_vs_running"]


def verify(root, check=False, **args):
    started = time.monotonic()
    rc, result = run_module("verify_erts", dict(root=str(root), **args), check=check)
    result["wall_s"] = time.monotonic() - started
    return rc, result


def assert_ok(rc, result):
    assert rc == 0 and not result["failed"], result.get("msg", result)
    assert [c["check"] for c in result["checks"]] == ALL_CHECKS
    assert all(c["ok"] for c in result["checks"]) and result["failed_checks"] == [] and result["changed"] is False


def rebuild(src, dest, rename=lambda name: name, edit=lambda name, data: data):
    """A copy of the tarball src with member names and file contents changed."""
    with tarfile.open(src, "r:gz") as old, tarfile.open(dest, "w:gz", compresslevel=1) as new:
        for member in old:
            data = old.extractfile(member).read() if member.isreg() else None
            member.name = rename(member.name)
            if data is not None:
                data = edit(member.name, data)
                member.size = len(data)
            new.addfile(member, io.BytesIO(data) if data is not None else None)
    return str(dest)


def other_erts(src, dest, restart):
    """2.0.0 on a (pretend) ERTS 13.1.6: the erts directory, the .rel and beam.smp's version string say so;
    with restart, the relup from 1.0.0 starts with restart_new_emulator, as systools writes it."""
    def edit(name, data):
        if name.endswith("/beam.smp"):
            return data.replace(b"emulator version 13.1.5", b"emulator version 13.1.6")
        if name.endswith((".rel", "RELEASES", "start_erl.data")):
            return data.replace(b'"13.1.5"', b'"13.1.6"').replace(b"13.1.5 ", b"13.1.6 ")
        if name == "releases/2.0.0/relup" and restart:
            return data.replace(b"[{load_object_code", b"[restart_new_emulator,{load_object_code", 1)
        return data
    return rebuild(src, dest, rename=lambda name: name.replace("erts-13.1.5/", "erts-13.1.6/"), edit=edit)


@pytest.fixture(scope="module")
def serving(world, all_nodes):
    base = Path(tempfile.mkdtemp(prefix="verify-erts-"))
    node = all_nodes.start(kvworld.deploy(world["1.0.0"], base / "root"))
    yield node
    node.stop()
    shutil.rmtree(str(base), ignore_errors=True)


def test_good_releases_pass(world, serving):
    rc, tarball = verify(serving.root, src=world["2.0.0"])
    assert_ok(rc, tarball)
    assert (tarball["version"], tarball["erts_version"], tarball["erts_running"], tarball["running_version"]) == \
        ("2.0.0", "13.1.5", "13.1.5", "1.0.0")
    shared = next(c for c in tarball["checks"] if c["check"] == "shared_libraries")
    assert "1 NIF/driver library" in shared["detail"]  # the SQLite driver, which needs libsqlite3

    rc, running = verify(serving.root, version="1.0.0", check=True)
    assert_ok(rc, running)

    rc, unpacked = run_module("unpack", dict(root=str(serving.root), src=world["2.0.0"]))
    assert rc == 0, unpacked
    rc, by_version = verify(serving.root, version="2.0.0")
    assert_ok(rc, by_version)
    # a version unpacked by another tool has no releases/<vsn>/<name>.rel (release_handler deletes it): RELEASES serves
    (serving.root / "releases" / "2.0.0" / "kvstore.rel").unlink()
    rc, from_releases = verify(serving.root, version="2.0.0")
    assert_ok(rc, from_releases)
    print("\nMEASURED verify_erts: tarball %d ms on the host (%.2f s task), unpacked version %d ms (%.2f s task)"
          % (tarball["duration_ms"], tarball["wall_s"], by_version["duration_ms"], by_version["wall_s"]))


def test_no_node_no_root(world, tmp_path):
    rc, result = verify(tmp_path / "nothing-here", src=world["2.0.0"])
    assert_ok(rc, result)
    assert result["erts_running"] is None
    assert next(c for c in result["checks"] if c["check"] == "erts_vs_running")["detail"] == "No running node to compare ERTS with."


FAULTS = [
    ("2.0.0-noerts", "erts_bundled", ["no erts-13.1.5/", "include_erts"]),
    ("foreign-erts", "elf_arch", ["erts-13.1.5/bin/beam.smp is", "but this host is x86_64"]),
    ("missing-lib", "shared_libraries", ["libsqliteX.so.0 needed by lib/sqlite3-1.1.14/priv/sqlite3_drv.so is not found"]),
]


@pytest.mark.parametrize("fault, check, words", FAULTS, ids=[f[0] for f in FAULTS])
def test_fault_fails_naming_the_check(world, serving, fault, check, words):
    rc, result = verify(serving.root, src=world[fault])
    assert rc != 0 and result["failed"] and not result["ok"]
    assert check in result["failed_checks"]
    assert "%s: " % check in result["msg"] and world[fault] in result["msg"]
    for word in words:
        assert word in result["msg"]
    assert [c["check"] for c in result["checks"]] == ALL_CHECKS


def test_erts_change_needs_an_emulator_restart(world, serving, tmp_path):
    without = other_erts(world["2.0.0"], tmp_path / "kvstore-2.0.0-erts-13.1.6.tar.gz", restart=False)
    rc, result = verify(serving.root, src=without)
    assert rc != 0 and result["failed_checks"] == ["erts_vs_running"]
    assert "ERTS changes from 13.1.5 to 13.1.6 but the relup from 1.0.0 does not restart the emulator" in result["msg"]

    with_restart = other_erts(world["2.0.0"], tmp_path / "kvstore-2.0.0-erts-13.1.6-restart.tar.gz", restart=True)
    rc, result = verify(serving.root, src=with_restart)
    assert_ok(rc, result)
    assert "restart_new_emulator" in next(c for c in result["checks"] if c["check"] == "erts_vs_running")["detail"]
