"""Every producer for real: a `mix release` (kvex) and a Distillery-shaped release (kvstore), driven through
`ansible-playbook` like a user would, checked on the node itself (OS pid, the code that runs, the state's
shape, which_releases) and by cold starts.

Also the cases where what the node runs and what release_handler believes part ways: a node booted
from an older start pointer (init:script_id() against which_releases), a RELEASES file release_handler
wrote for a mix root (an entry with no applications), and a tarball unpacked again after it changed."""

import hashlib
import io
import re
import shutil
import socket
import sys
import tarfile
from pathlib import Path

import pytest

import world as kvworld
from ansible_cli import run_module, run_playbook
from ansible_collections.otp.release.plugins.module_utils._erlterm import parse, to_plain
from test_upgrade import change

KEYS = ["a", "b", "c"]
MIX = dict(module="'Elixir.Kvex'", memory_keys="'Elixir.Kvex':keys()", old="0.1.0", new="0.2.0")
RELX = dict(module="kvstore", memory_keys="kvstore:memory_keys()", old="1.0.0", new="2.0.0")
RELEASES_EXPR = "lists:sort([{V, S} || {_, V, _, S} <- release_handler:which_releases()])"


def snapshot(node, app):
    """(OS pid, server pid, version the code runs, state shape, keys held in memory, {version: state}),
    asked from the node."""
    os_pid, server_pid, version, shape, keys, states = to_plain(parse(node.rpc(
        "{{list_to_integer(os:getpid()), pid_to_list({0}:server_pid()), {0}:version(), {0}:state_shape(), "
        "{1}, {2}}}".format(app["module"], app["memory_keys"], RELEASES_EXPR))))
    return os_pid, server_pid, version, shape, keys, dict(map(tuple, states))


def put_keys(node, app):
    for key in KEYS:
        assert node.rpc('{0}:put(<<"{1}">>, <<"{1}{1}">>)'.format(app["module"], key)) == "ok"


def libs(node, version):
    """The applications release_handler holds for version (["kvex-0.1.0", ...]), None when it has no such release."""
    found = to_plain(parse(node.rpc('[L || {_, V, L, _} <- release_handler:which_releases(), V =:= "%s"]' % version)))
    return found[0] if found else None


def on_root(root, module, **args):
    """(rc, result) of otp.release.<module> on root, without a node object."""
    return run_module(module, dict(root=str(root), **args))


def assert_ok(rc, result):
    assert rc == 0 and not result.get("failed"), result.get("msg", result)
    assert_no_undefined_erts(result)


def assert_no_undefined_erts(result):
    """`erts` is never the string "undefined", in any result or nested result."""
    for entry in result.get("releases") or []:
        assert entry.get("erts") not in ("undefined", None), result["releases"]
    for value in result.values():
        if isinstance(value, dict) and "releases" in value:
            assert_no_undefined_erts(value)


def assert_refused(node, module, words, before=None, app=None, **args):
    """The module fails with every word in msg; the node (when before is given) is as it was."""
    rc, result = change(module, node, **args)
    assert rc != 0 and result.get("failed"), result
    for word in words:
        assert word in result["msg"], result["msg"]
    if before is not None:
        assert snapshot(node, app) == before
    return result


def hot_step(node, app, module, to, from_version, states, **args):
    """One hot upgrade or downgrade: same OS pid and server process, the state in to's shape, the keys kept."""
    os_pid, server_pid = node.os_pid(), snapshot(node, app)[1]
    rc, result = change(module, node, **args)
    assert_ok(rc, result)
    assert (result["changed"], result["from_version"], result["to_version"], result["restart"]) == \
        (True, from_version, to, "none")
    shape = "v2" if to == app["new"] else "v1"
    assert snapshot(node, app) == (os_pid, server_pid, to, shape, KEYS, states)
    assert {e["version"]: e["state"] for e in result["releases"]} == states
    return result


def cold_start_boots(node, app, version, states):
    """Stop the node, start it the producer's way again: it boots version (memory empty, keys written again)."""
    old_pid = node.pid
    new_pid = node.cold_restart()
    assert new_pid != old_pid
    os_pid, _server_pid, running, shape, keys, now = snapshot(node, app)
    assert (os_pid, running, shape, now) == (new_pid, version, "v2" if version == app["new"] else "v1", states)
    put_keys(node, app)


def round_trip(node, app, unpack_args=None):
    """unpack (unless done) -> upgrade hot -> cold start boots new -> downgrade hot -> cold start boots old."""
    if unpack_args is not None:
        rc, unpacked = change("unpack", node, **unpack_args)
        assert_ok(rc, unpacked)
        assert (unpacked["changed"], unpacked["version"]) == (True, app["new"])
    states = {app["old"]: "old", app["new"]: "permanent"}
    hot_step(node, app, "upgrade", app["new"], app["old"], states, version=app["new"])
    cold_start_boots(node, app, app["new"], states)
    states = {app["old"]: "permanent", app["new"]: "old"}
    hot_step(node, app, "downgrade", app["old"], app["new"], states)
    cold_start_boots(node, app, app["old"], states)


# mix release

def test_mix_world_upgrades_by_hand_once_releases_exists(world, deploy, start_node):
    """The mix world itself: with RELEASES written first, release_handler alone upgrades and downgrades hot
    through the relup this world's builder made."""
    node = start_node(deploy("mix-0.1.0"), kind=kvworld.MixNode)
    put_keys(node, MIX)
    os_pid, server_pid = snapshot(node, MIX)[:2]
    (node.root / "releases" / "0.2.0").mkdir()
    shutil.copy(world["mix-0.2.0"], node.root / "releases" / "0.2.0" / "kvex.tar.gz")
    assert node.rpc('release_handler:unpack_release("0.2.0/kvex")') == '{ok,"0.2.0"}'
    assert node.rpc('element(1, release_handler:install_release("0.2.0"))') == "ok"
    assert snapshot(node, MIX) == (os_pid, server_pid, "0.2.0", "v2", KEYS, {"0.1.0": "permanent", "0.2.0": "current"})
    assert node.rpc('element(1, release_handler:install_release("0.1.0"))') == "ok"
    assert snapshot(node, MIX) == (os_pid, server_pid, "0.1.0", "v1", KEYS, {"0.1.0": "permanent", "0.2.0": "old"})


def test_mix_deployed_by_extracting_upgrades_and_downgrades_hot(world, deploy, start_node):
    """Deployed the way mix users do: extract, `bin/kvex daemon`, no RELEASES. unpack must first write the
    running version's entry from its .rel, or every downgrade crashes inside release_handler."""
    root = deploy("mix-0.1.0", releases_file=False)
    assert not (root / "releases" / "RELEASES").exists()
    node = start_node(root, kind=kvworld.MixNode)
    put_keys(node, MIX)
    rc, info = change("info", node)
    assert_ok(rc, info)
    assert (info["producer"], info["current"], info["running"]) == ("mix", "0.1.0", True)

    rc, unpacked = change("unpack", node, src=world["mix-0.2.0"])
    assert_ok(rc, unpacked)
    assert (unpacked["changed"], unpacked["version"], unpacked["relup_up_from"]) == (True, "0.2.0", ["0.1.0"])
    assert "kvex-0.1.0" in libs(node, "0.1.0") and "kernel-8.5.3" in libs(node, "0.1.0")
    assert (root / "releases" / "RELEASES").exists()
    round_trip(node, MIX)


def test_mix_first_install_by_unpack_then_upgrade_with_src(world, start_node, tmp_path):
    """An empty directory made a mix root by unpack; the upgrade then takes src and does the whole path."""
    root = tmp_path / "kvex"
    root.mkdir()
    rc, installed = on_root(root, "unpack", src=world["mix-0.1.0"])
    assert_ok(rc, installed)
    assert (installed["changed"], installed["version"]) == (True, "0.1.0")
    node = start_node(root, kind=kvworld.MixNode)
    put_keys(node, MIX)
    assert "kvex-0.1.0" in libs(node, "0.1.0")
    os_pid = node.os_pid()
    rc, upgraded = change("upgrade", node, src=world["mix-0.2.0"], version="0.2.0")
    assert_ok(rc, upgraded)
    assert upgraded["unpack"]["changed"] is True
    duration_ms = upgraded["unpack"]["duration_ms"]
    assert isinstance(duration_ms, int) and duration_ms > 0, upgraded["unpack"]
    states = {"0.1.0": "old", "0.2.0": "permanent"}
    os_pid_now, _server, version, _shape, keys, states_now = snapshot(node, MIX)
    assert (os_pid_now, version, keys, states_now) == (os_pid, "0.2.0", KEYS, states)
    cold_start_boots(node, MIX, "0.2.0", states)
    states = {"0.1.0": "permanent", "0.2.0": "old"}
    hot_step(node, MIX, "downgrade", "0.1.0", "0.2.0", states)
    cold_start_boots(node, MIX, "0.1.0", states)


def test_mix_default_node_name_when_down(deploy):
    """With the node down, a mix root's node is RELEASE_NODE's default: the release name, as a short name."""
    root = deploy("mix-0.1.0", releases_file=False)
    rc, info = on_root(root, "info")
    assert_ok(rc, info)
    assert info["running"] is False
    assert info["node"] == "kvex@" + socket.gethostname().split(".")[0], info
    assert (info["current"], info["permanent"], info["start_version"]) == ("0.1.0", "0.1.0", "0.1.0")


def mix_node_unpacked_by_hand(world, deploy, start_node):
    """A mix 0.1.0 node deployed without RELEASES, with keys, on which 0.2.0 was unpacked by hand: release_handler
    then wrote its own entry for 0.1.0, with no applications."""
    root = deploy("mix-0.1.0", releases_file=False)
    node = start_node(root, kind=kvworld.MixNode)
    put_keys(node, MIX)
    (root / "releases" / "0.2.0").mkdir()
    shutil.copy(world["mix-0.2.0"], root / "releases" / "0.2.0" / "kvex.tar.gz")
    assert node.rpc('release_handler:unpack_release("0.2.0/kvex")') == '{ok,"0.2.0"}'
    return node


def test_broken_releases_is_flagged_and_repaired(world, deploy, start_node):
    """A mix root on which release_handler already wrote its own entry for the running version (no
    applications, erts undefined): info flags it, unpack repairs it and says so, and the downgrade works."""
    node = mix_node_unpacked_by_hand(world, deploy, start_node)
    assert libs(node, "0.1.0") == []  # what release_handler made of a root without RELEASES

    rc, info = change("info", node)
    assert rc == 0 and not info.get("failed"), info
    assert info["broken_releases"] == ["0.1.0"], info
    assert_no_undefined_erts(info)

    rc, unpacked = change("unpack", node, src=world["mix-0.2.0"])
    assert_ok(rc, unpacked)
    assert unpacked["repaired_releases"] == ["0.1.0"], unpacked
    assert unpacked["changed"] is True
    assert "kvex-0.1.0" in libs(node, "0.1.0")
    rc, info = change("info", node)
    assert_ok(rc, info)
    assert info["broken_releases"] == []
    round_trip(node, MIX)


def test_broken_releases_is_repaired_by_upgrade_before_any_change(world, deploy, start_node):
    node = mix_node_unpacked_by_hand(world, deploy, start_node)
    states = {"0.1.0": "old", "0.2.0": "permanent"}
    result = hot_step(node, MIX, "upgrade", "0.2.0", "0.1.0", states, version="0.2.0")
    assert result["repaired_releases"] == ["0.1.0"], result
    states = {"0.1.0": "permanent", "0.2.0": "old"}
    hot_step(node, MIX, "downgrade", "0.1.0", "0.2.0", states)


def test_downgrade_refuses_a_target_without_applications(world, deploy, start_node):
    """The downgrade preflight refuses a target whose RELEASES entry has no applications, naming the fix.
    The broken entry is made the way release_handler makes it, and the upgrade is done by hand, so that
    nothing of the collection repairs it first."""
    node = mix_node_unpacked_by_hand(world, deploy, start_node)
    assert node.rpc('element(1, release_handler:install_release("0.2.0"))') == "ok"
    before = snapshot(node, MIX)
    assert before[2:4] == ("0.2.0", "v2")
    assert_refused(node, "downgrade", ["0.1.0", "no applications", "otp.release.unpack"], before, MIX)


def test_migrate_then_upgrade_on_two_mix_hosts(world, deploy, start_node, tmp_path):
    nodes = {}
    for host in ("mix1", "mix2"):
        nodes[host] = start_node(deploy("mix-0.1.0", releases_file=False), kind=kvworld.MixNode)
        put_keys(nodes[host], MIX)
    pids = {host: snapshot(node, MIX)[:2] for host, node in nodes.items()}
    lines = ["[otp_release]"] + ["%s ansible_connection=local ansible_python_interpreter=%s otp_release_root=%s"
                                 % (host, sys.executable, node.root) for host, node in nodes.items()]
    inventory = tmp_path / "inventory.ini"
    inventory.write_text("\n".join(lines + ["", "[otp_release:vars]", "otp_release_name=kvex"]) + "\n")
    rc, output = run_playbook("otp.release.migrate_then_upgrade", dict(
        otp_release_src=str(world["mix-0.2.0"]), otp_release_version="0.2.0",
        otp_release_migrate_mfa=dict(module="Elixir.Kvex.Migrate", function="run"),
        otp_release_health_mfa=dict(module="Elixir.Kvex", function="health")), inventory=inventory)
    assert rc == 0, output
    for host, node in nodes.items():
        assert snapshot(node, MIX) == pids[host] + ("0.2.0", "v2", KEYS, {"0.1.0": "old", "0.2.0": "permanent"})
    assert re.search(r"mix1\s+0\.1\.0 -> 0\.2\.0\s+restart: none", output), output

    rc, output = run_playbook("otp.release.downgrade", inventory=inventory)
    assert rc == 0, output
    for host, node in nodes.items():
        assert snapshot(node, MIX) == pids[host] + ("0.1.0", "v1", KEYS, {"0.1.0": "permanent", "0.2.0": "old"})


# Distillery-shaped

def test_distillery_tarballs_repeat_members_byte_for_byte(world):
    """The fixture is what the tests claim it is: 11-12 names twice, the same bytes and modes; the faulty
    variants differ in content or type."""
    for name, count in (("distillery-1.0.0", 11), ("distillery-2.0.0", 12)):
        assert len(duplicates(world[name])) == count
        for copies in duplicates(world[name]).values():
            assert len(set(copies)) == 1, copies
    assert len(set(duplicates(world["distillery-2.0.0-differing"])["releases/2.0.0/sys.config"])) == 2
    assert len(set(duplicates(world["distillery-2.0.0-retyped"])["releases/2.0.0/hooks/pre_start.d"])) == 2
    with tarfile.open(world["distillery-2.0.0"]) as archive:
        names = archive.getnames()
        vm_args = archive.extractfile("releases/2.0.0/vm.args").read().decode()
    assert "var/start_erl.data" in names and "releases/COOKIE" not in names
    cookie = re.search(r"^-setcookie (\S+)$", vm_args, re.M).group(1)
    assert len(cookie) == 64 and set("$`;&|*()<>") <= set(cookie)
    assert re.search(r"^-name kvstore@127\.0\.0\.1$", vm_args, re.M)


def duplicates(tarball):
    """{name: [(type, mode, sha256) of each copy]} of the names that appear more than once."""
    seen = {}
    with tarfile.open(tarball) as archive:
        for info in archive:
            data = archive.extractfile(info).read() if info.isfile() else b""
            seen.setdefault(info.name, []).append((info.type, info.mode, hashlib.sha256(data).hexdigest()))
    return {name: copies for name, copies in seen.items() if len(copies) > 1}


@pytest.mark.parametrize("mutable_dir", [False, True], ids=["var", "RELEASE_MUTABLE_DIR"])
def test_distillery_unpack_upgrade_cold_start_downgrade(world, deploy, start_node, tmp_path, mutable_dir):
    env = {"RELEASE_MUTABLE_DIR": str(tmp_path / "mutable")} if mutable_dir else {}
    root = deploy("distillery-1.0.0")
    node = start_node(root, env=env, kind=kvworld.DistilleryNode)
    pointer = Path(env["RELEASE_MUTABLE_DIR"] if mutable_dir else root / "var") / "start_erl.data"
    assert pointer.read_text().split() == ["13.1.5", "1.0.0"]
    put_keys(node, RELX)

    rc, unpacked = change("unpack", node, src=str(node.tarball(world["distillery-2.0.0"])))
    assert_ok(rc, unpacked)
    assert (unpacked["changed"], unpacked["version"]) == (True, "2.0.0")

    states = {"1.0.0": "old", "2.0.0": "permanent"}
    result = hot_step(node, RELX, "upgrade", "2.0.0", "1.0.0", states, version="2.0.0")
    assert result["start_version"] == "2.0.0"
    assert pointer.read_text().split() == ["13.1.5", "2.0.0"]
    if mutable_dir:
        assert (root / "var" / "start_erl.data").read_text().split() == ["13.1.5", "1.0.0"]  # not the file a start reads
    cold_start_boots(node, RELX, "2.0.0", states)

    states = {"1.0.0": "permanent", "2.0.0": "old"}
    hot_step(node, RELX, "downgrade", "1.0.0", "2.0.0", states)
    assert pointer.read_text().split() == ["13.1.5", "1.0.0"]
    cold_start_boots(node, RELX, "1.0.0", states)

    rc, info = change("info", node)
    assert_ok(rc, info)
    assert (info["producer"], info["start_version"], info["start_pointer"]) == ("distillery", "1.0.0", str(pointer))


def test_distillery_node_down_is_found_from_vm_args(deploy):
    """With the node down, the name and the cookie come from releases/<vsn>/vm.args (the long name, the
    64-character cookie): info names the node and where the cookie came from."""
    root = deploy("distillery-1.0.0")
    node = kvworld.DistilleryNode(root)  # rewrites vm.args; never started
    try:
        rc, info = change("info", node)
        assert_ok(rc, info)
        assert (info["running"], info["node"], info["start_version"]) == (False, node.name, "1.0.0")
        assert info["cookie_source"].startswith(str(root / "releases" / "1.0.0" / "vm.args")), info
        assert node.cookie not in str(info)
    finally:
        shutil.rmtree(str(node.files), ignore_errors=True)


@pytest.mark.parametrize("variant, member", [("differing", "releases/2.0.0/sys.config"),
                                             ("retyped", "releases/2.0.0/hooks/pre_start.d")])
def test_duplicates_that_differ_are_refused(world, deploy, start_node, variant, member):
    node = start_node(deploy("distillery-1.0.0"), kind=kvworld.DistilleryNode)
    put_keys(node, RELX)
    before = snapshot(node, RELX)
    assert_refused(node, "unpack", [member], before, RELX,
                   src=str(node.tarball(world["distillery-2.0.0-" + variant])))
    assert not (node.root / "releases" / "2.0.0").exists() and not list((node.root / "lib").glob("kvstore-2.0.0"))


# What runs against what release_handler believes

def test_script_id_mismatch_refuses_upgrade_and_downgrade(world, deploy, start_node):
    """A Distillery root whose cold start booted 1.0.0 while RELEASES says 2.0.0 is permanent (what
    Distillery 2.1.1's own upgrade leaves): init:script_id() says 1.0.0, which_releases 2.0.0."""
    root = deploy("distillery-1.0.0")
    node = start_node(root, kind=kvworld.DistilleryNode)
    assert_ok(*change("unpack", node, src=str(node.tarball(world["distillery-2.0.0"]))))
    assert_ok(*change("upgrade", node, version="2.0.0"))
    (root / "var" / "start_erl.data").write_text("13.1.5 1.0.0")
    node.cold_restart()
    put_keys(node, RELX)
    assert node.rpc("init:script_id()") == '{"kvstore","1.0.0"}'
    before = snapshot(node, RELX)
    assert before[2:4] == ("1.0.0", "v1") and before[5] == {"1.0.0": "old", "2.0.0": "permanent"}

    rc, info = change("info", node)
    assert rc == 0 and not info.get("failed"), info
    assert (info["script_version"], info["current"], info["script_id_mismatch"]) == ("1.0.0", "2.0.0", True), info
    words = ["init:script_id()", "runs 1.0.0", "release_handler", "2.0.0", "Nothing was changed"]
    assert_refused(node, "upgrade", words, before, RELX, version="2.0.0")
    assert_refused(node, "downgrade", words, before, RELX, version="1.0.0")
    assert_refused(node, "downgrade", words, before, RELX)


def changed_copy(tarball, target, version):
    """A copy of tarball whose releases/<version>/sys.config sets kvstore's marker to `changed`."""
    with tarfile.open(tarball) as source, tarfile.open(target, "w:gz", compresslevel=1) as dest:
        for info in source:
            data = source.extractfile(info).read() if info.isfile() else None
            if info.name == "releases/{0}/sys.config".format(version):
                data = b"[{kvstore, [{marker, changed}]}].\n"
                info.size = len(data)
            dest.addfile(info, io.BytesIO(data) if data is not None else None)
    return target


def test_unpack_again_replaces_an_unpacked_version_and_refuses_an_installed_one(world, deploy, start_node, tmp_path):
    node = start_node(deploy("1.0.0"))
    put_keys(node, RELX)
    changed = changed_copy(world["2.0.0"], tmp_path / "kvstore-2.0.0-changed.tar.gz", "2.0.0")
    assert_ok(*change("unpack", node, src=world["2.0.0"]))

    rc, again = change("unpack", node, src=str(changed))
    assert_ok(rc, again)
    assert (again["changed"], again["replaced"]) == (True, True), again
    assert "marker" in (node.root / "releases" / "2.0.0" / "sys.config").read_text()
    assert snapshot(node, RELX)[5] == {"1.0.0": "permanent", "2.0.0": "unpacked"}
    rc, same = change("unpack", node, src=str(changed))
    assert_ok(rc, same)
    assert (same["changed"], same.get("replaced", False)) == (False, False)

    # current (installed, not permanent), permanent, old: each refused, with the fix named
    assert_ok(*change("upgrade", node, version="2.0.0", permanent=False))
    for state, fix in (("current", "new version"), ("permanent", "new version"), ("old", "otp.release.remove")):
        if state == "permanent":
            assert node.rpc('release_handler:make_permanent("2.0.0")') == "ok"
        if state == "old":
            assert_ok(*change("downgrade", node, version="1.0.0"))
        before = snapshot(node, RELX)
        assert before[5]["2.0.0"] == state
        assert_refused(node, "unpack", ["2.0.0", state, fix], before, RELX, src=world["2.0.0"])
        assert "marker" in (node.root / "releases" / "2.0.0" / "sys.config").read_text()
