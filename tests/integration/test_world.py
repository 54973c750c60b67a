"""Smoke tests of the test world itself: the builds, the fixtures and the sample app's upgrades,
driven through raw release_handler calls (no collection code)."""

import os
import shutil
import signal
import subprocess
import tarfile
from pathlib import Path

import pytest

import world as kvworld


def place_tarball(world, root, version):
    """Put a world tarball where release_handler:unpack_release("<vsn>/kvstore") looks for it."""
    (root / "releases" / version).mkdir()
    shutil.copy(world[version], root / "releases" / version / "kvstore.tar.gz")


def one_off_vm(root, version, expr):
    """Evaluate expr in a fresh VM with that version's code loaded but kvstore not started."""
    code = 'application:load(kvstore), io:format("~0p", [{0}]), halt().'.format(expr)
    command = [str(kvworld.erts_bin(root) / "erl"), "-noshell",
               "-boot", str(root / "releases" / version / "start_clean"),
               "-config", str(root / "releases" / version / "sys.config"),
               "-pa", str(root / "lib" / ("kvstore-" + version) / "ebin"),
               "-pa", str(root / "lib" / "sqlite3-1.1.14" / "ebin"),
               "-eval", code]
    return subprocess.run(command, stdout=subprocess.PIPE, text=True, check=True, timeout=60).stdout


def process_name(pid):
    with open("/proc/{0}/comm".format(pid)) as comm:
        return comm.read().strip()


def cookie_in(cmdline, cookie):
    try:
        return cookie.encode() in cmdline.read_bytes()
    except OSError:
        return False


def releases(node):
    return node.rpc("[{V, S} || {_, V, _, S} <- release_handler:which_releases()]")


def test_deploy_start_put_get_stop(deploy, start_node):
    root = deploy("1.0.0")
    assert (root / "releases" / "RELEASES").exists()
    node = start_node(root)
    pid = node.os_pid()
    assert kvworld.pid_alive(pid)

    assert node.rpc('kvstore:put(<<"greeting">>, <<"hello">>)') == "ok"
    assert node.rpc('kvstore:get(<<"greeting">>)') == '{ok,<<"hello">>}'
    assert node.rpc("kvstore:version()") == '"1.0.0"'
    assert node.rpc("kvstore:state_shape()") == "v1"
    assert node.rpc("kvstore:health()") == "ok"
    assert releases(node) == '[{"1.0.0",permanent}]'
    assert not [path for path in Path("/proc").glob("[0-9]*/cmdline") if cookie_in(path, node.cookie)]

    node.stop()
    assert not kvworld.pid_alive(pid)
    assert not node.alive()


def test_write_releases_when_the_tarball_has_none(deploy):
    root = deploy("2.0.0")
    (root / "releases" / "RELEASES").unlink()
    kvworld.write_releases(root)
    written = (root / "releases" / "RELEASES").read_text()
    assert '{release,"kvstore","2.0.0","13.1.5",' in written and "permanent}]." in written


def test_migrate_then_hot_upgrade_and_downgrade(world, deploy, start_node):
    root = deploy("1.0.0")
    node = start_node(root)
    pid = node.pid
    node.rpc('kvstore:put(<<"a">>, <<"1">>)')
    place_tarball(world, root, "2.0.0")
    assert node.rpc('release_handler:unpack_release("2.0.0/kvstore")') == '{ok,"2.0.0"}'

    assert one_off_vm(root, "2.0.0", "kv_migrate:run()") == "{ok,[add_kv_updated_at]}"
    assert one_off_vm(root, "2.0.0", "kv_migrate:run()") == "{ok,[]}"
    assert node.rpc('kvstore:put(<<"b">>, <<"2">>)') == "ok"  # 1.0.0 on the migrated schema

    assert node.rpc('release_handler:install_release("2.0.0")') == '{ok,"1.0.0",[]}'
    assert node.rpc("{kvstore:version(), kvstore:state_shape(), kvstore:memory_keys()}") == \
        '{"2.0.0",v2,[<<"a">>,<<"b">>]}'
    assert node.rpc('kvstore:put(<<"c">>, <<"3">>)') == "ok"
    node.rpc('release_handler:make_permanent("2.0.0")')

    place_tarball(world, root, "3.0.0")
    node.rpc('release_handler:unpack_release("3.0.0/kvstore")')
    assert node.rpc('release_handler:install_release("3.0.0")') == '{ok,"2.0.0",[]}'
    assert node.rpc('{kvstore:state_shape(), kvstore:get(<<"a">>), kvstore:hits()}') == \
        '{v3,{ok,<<"1">>},1}'

    assert node.rpc('release_handler:install_release("2.0.0")') == '{ok,"2.0.0",[]}'
    assert node.rpc('release_handler:install_release("1.0.0")') == '{ok,"1.0.0",[]}'
    assert node.rpc("{kvstore:version(), kvstore:state_shape(), kvstore:memory_keys(), kvstore:keys()}") == \
        '{"1.0.0",v1,[<<"a">>,<<"b">>,<<"c">>],[<<"a">>,<<"b">>,<<"c">>]}'
    assert node.os_pid() == pid


def test_no_relup_path_from_1_0_0_to_3_0_0(world, deploy, start_node):
    root = deploy("1.0.0")
    node = start_node(root)
    place_tarball(world, root, "3.0.0")
    node.rpc('release_handler:unpack_release("3.0.0/kvstore")')
    # release_handler looks for a down path in 1.0.0's relup, which does not exist
    missing = node.rpc('release_handler:check_install_release("3.0.0")')
    assert missing == '{error,{enoent,"' + str(root) + '/releases/1.0.0/relup"}}'
    assert node.rpc("kvstore:version()") == '"1.0.0"'


def test_crash_in_code_change_restarts_node_on_old_release(world, deploy, start_node):
    root = deploy("1.0.0")
    node = start_node(root)
    pid = node.pid
    node.rpc('kvstore:put(<<"a">>, <<"1">>)')
    place_tarball(world, root, "1.1.0")
    node.rpc('release_handler:unpack_release("1.1.0/kvstore")')
    assert "boom_in_code_change" in node.rpc('release_handler:install_release("1.1.0")')

    assert node.wait_booted() == pid  # init:restart(): same OS pid
    assert node.rpc("{kvstore:version(), kvstore:memory_keys(), kvstore:keys()}") == \
        '{"1.0.0",[],[<<"a">>]}'
    assert releases(node) == '[{"1.1.0",unpacked},{"1.0.0",permanent}]'


def test_cold_restart_with_heart_loses_memory_keeps_data(deploy, start_node):
    node = start_node(deploy("2.0.0"), heart=True)
    first_pid = node.pid
    node.rpc('kvstore:put(<<"a">>, <<"1">>)')
    new_pid = node.cold_restart()
    assert new_pid != first_pid and not kvworld.pid_alive(first_pid)
    assert node.rpc("{kvstore:memory_keys(), kvstore:keys()}") == '{[],[<<"a">>]}'
    heart = [pid for pid in kvworld.descendant_pids(new_pid) if process_name(pid) == "heart"]
    assert len(heart) == 1
    node.stop()
    assert not node.alive() and not kvworld.pid_alive(heart[0])


def test_stop_kills_a_node_that_does_not_answer(deploy, start_node):
    node = start_node(deploy("1.0.0"), heart=True)
    heart = [pid for pid in kvworld.descendant_pids(node.pid) if process_name(pid) == "heart"]
    os.kill(node.pid, signal.SIGSTOP)
    node.stop()
    assert not node.alive() and not kvworld.pid_alive(heart[0])


def test_fault_tarballs(world):
    assert set(world) == {"1.0.0", "2.0.0", "3.0.0", "1.1.0", "1.2.0", "2.0.0-noerts", "truncated",
                          "dotdot", "absolute", "symlink-out", "hardlink-out", "foreign-erts",
                          "missing-lib", "mix-0.1.0", "mix-0.2.0", "distillery-1.0.0", "distillery-2.0.0",
                          "distillery-2.0.0-differing", "distillery-2.0.0-retyped", "2.0.0-forgets", "2.0.0-unadded",
                          "2.0.0-supervisor", "2.0.0-nocodechange", "2.0.0-ticker", "2.0.0-ticker-purge",
                          "2.0.0-crashboot"}

    def members(name):
        with tarfile.open(world[name], "r:gz") as archive:
            return {member.name: member for member in archive}

    good = members("2.0.0")
    assert {"releases/2.0.0/relup", "releases/RELEASES", "bin/kvstore-2.0.0"} <= set(good)
    assert not [name for name in members("2.0.0-noerts") if name.startswith("erts-")]
    assert "../evil" in members("dotdot")
    assert "/tmp/evil" in members("absolute")
    assert members("symlink-out")["lib/x"].linkname == "/etc"
    assert members("hardlink-out")["lib/y"].islnk()

    with tarfile.open(world["foreign-erts"], "r:gz") as archive:
        beam_name = next(name for name in archive.getnames() if name.endswith("/bin/beam.smp"))
        beam = archive.extractfile(beam_name).read(20)
    with open("/proc/self/exe", "rb") as host:
        assert beam[18:20] != host.read(20)[18:20]
    with tarfile.open(world["missing-lib"], "r:gz") as archive:
        driver = archive.extractfile("lib/sqlite3-1.1.14/priv/sqlite3_drv.so").read()
    assert b"\0libsqliteX.so.0\0" in driver and b"libsqlite3.so.0" not in driver

    with pytest.raises((EOFError, tarfile.ReadError)):
        with tarfile.open(world["truncated"], "r:gz") as archive:
            archive.getmembers()
