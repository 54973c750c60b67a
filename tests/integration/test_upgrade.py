"""otp.release.upgrade / downgrade on real kvstore nodes, through the `ansible` CLI.

Every step is checked on the node itself: same OS pid and kv_server pid, every key in memory in the
new state shape, which_releases, and a cold start that boots the version made permanent."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import world as kvworld
from ansible_cli import run_module, run_playbook

KEYS = ["a", "b", "c"]
SNAPSHOT = ("{list_to_integer(os:getpid()), kvstore:server_pid(), kvstore:version(), kvstore:state_shape(), "
            "kvstore:memory_keys(), kvstore:keys(), lists:sort([{V, S} || {_, V, _, S} <- release_handler:which_releases()])}")
SHAPES = {"1.0.0": "v1", "2.0.0": "v2", "3.0.0": "v3"}


def unpack(world, node, version):
    """Unpack a world tarball on the node by hand (release_handler:unpack_release)."""
    (node.root / "releases" / version).mkdir()
    shutil.copy(world[version], node.root / "releases" / version / "kvstore.tar.gz")
    assert node.rpc('release_handler:unpack_release("{0}/kvstore")'.format(version)) == '{{ok,"{0}"}}'.format(version)


def put_keys(node):
    for key in KEYS:
        assert node.rpc('kvstore:put(<<"{0}">>, <<"{0}{0}">>)'.format(key)) == "ok"


def binaries(keys):
    return "[" + ",".join('<<"{0}">>'.format(key) for key in keys) + "]"


def releases_text(states):
    return "[" + ",".join('{{"{0}",{1}}}'.format(v, s) for v, s in sorted(states.items())) + "]"


def expected_snapshot(os_pid, server_pid, version, states, memory=tuple(KEYS)):
    return '{{{0},{1},"{2}",{3},{4},{5},{6}}}'.format(os_pid, server_pid, version, SHAPES.get(version, "v1"),
                                                      binaries(memory), binaries(KEYS), releases_text(states))


def change(module, node, **args):
    """Run otp.release.<module> on the node's root; (rc, result)."""
    check = args.pop("check", False)
    return run_module(module, dict(root=str(node.root), **args), check=check)


def assert_ok(rc, result):
    assert rc == 0 and not result.get("failed"), result.get("msg", result)


def step(node, module, to, from_version, direction, states, **args):
    """One upgrade or downgrade with every check; returns the result."""
    os_pid, server_pid = node.os_pid(), node.rpc("kvstore:server_pid()")
    rc, result = change(module, node, **args)
    assert_ok(rc, result)
    assert (result["changed"], result["from_version"], result["to_version"], result["direction"], result["permanent"],
            result["restart"]) == (True, from_version, to, direction, True, "none")
    assert result["instructions"].get("code_change") == 1 and result["duration_ms"] > 0
    assert node.rpc(SNAPSHOT) == expected_snapshot(os_pid, server_pid, to, states)
    assert {e["version"]: e["state"] for e in result["releases"]} == states
    assert result["start_version"] == to
    rc, again = change(module, node, version=to)
    assert_ok(rc, again)
    assert (again["changed"], again["direction"]) == (False, "none")
    assert node.rpc(SNAPSHOT) == expected_snapshot(os_pid, server_pid, to, states)
    return result


def cold_start_boots(node, version, states):
    """Stop the node and start it again the way relx's daemon does (bin/kvstore, whose version is baked
    in): it must boot version. Memory is empty afterwards, so the keys are written again."""
    old_pid = node.pid
    new_pid = node.cold_restart()
    assert new_pid != old_pid
    assert node.rpc(SNAPSHOT) == expected_snapshot(new_pid, node.rpc("kvstore:server_pid()"), version, states, memory=[])
    put_keys(node)


def test_upgrade_up_the_chain_and_downgrade_back(world, deploy, start_node):
    node = start_node(deploy("1.0.0"))
    put_keys(node)
    unpack(world, node, "2.0.0")
    unpack(world, node, "3.0.0")
    before = node.rpc(SNAPSHOT)

    rc, checked = change("upgrade", node, version="2.0.0", check=True)
    assert_ok(rc, checked)
    assert (checked["changed"], checked["direction"], checked["to_version"]) == (True, "up", "2.0.0")
    assert node.rpc(SNAPSHOT) == before and (node.root / "bin" / "kvstore").read_bytes() == \
        (node.root / "bin" / "kvstore-1.0.0").read_bytes()

    states = {"1.0.0": "old", "2.0.0": "permanent", "3.0.0": "unpacked"}
    step(node, "upgrade", "2.0.0", "1.0.0", "up", states, version="2.0.0")
    cold_start_boots(node, "2.0.0", states)

    states = {"1.0.0": "old", "2.0.0": "old", "3.0.0": "permanent"}
    step(node, "upgrade", "3.0.0", "2.0.0", "up", states, version="3.0.0")
    cold_start_boots(node, "3.0.0", states)

    rc, checked = change("downgrade", node, check=True)
    assert_ok(rc, checked)
    assert (checked["changed"], checked["direction"], checked["to_version"]) == (True, "down", "2.0.0")

    states = {"1.0.0": "old", "2.0.0": "permanent", "3.0.0": "old"}
    step(node, "downgrade", "2.0.0", "3.0.0", "down", states)  # the default: one step back
    cold_start_boots(node, "2.0.0", states)

    states = {"1.0.0": "permanent", "2.0.0": "old", "3.0.0": "old"}
    step(node, "downgrade", "1.0.0", "2.0.0", "down", states, version="1.0.0")
    cold_start_boots(node, "1.0.0", states)


def ad_hoc(module, args_text):
    """(rc, result) of `ansible localhost -m <module> -a '<args_text>'`, printed by the ad-hoc `minimal` callback."""
    argv = [str(Path(sys.executable).parent / "ansible"), "localhost", "-i", "localhost,", "-c", "local",
            "-m", module, "-a", args_text, "-e", "ansible_python_interpreter=" + sys.executable]
    done = subprocess.run(argv, env=dict(os.environ, ANSIBLE_NOCOLOR="1"), stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=300, check=False)
    assert "=> {" in done.stdout, done.stdout
    return done.returncode, json.loads(done.stdout[done.stdout.index("=> {") + 3:])


def test_downgrade_ad_hoc_as_written(world, deploy, start_node):
    node = start_node(deploy("1.0.0"))
    put_keys(node)
    unpack(world, node, "2.0.0")
    assert_ok(*change("upgrade", node, version="2.0.0"))
    os_pid = node.os_pid()
    rc, result = ad_hoc("otp.release.downgrade", "root={0}".format(node.root))
    assert_ok(rc, result)
    assert (result["changed"], result["from_version"], result["to_version"]) == (True, "2.0.0", "1.0.0")
    assert node.rpc(SNAPSHOT) == expected_snapshot(os_pid, node.rpc("kvstore:server_pid()"), "1.0.0",
                                                   {"1.0.0": "permanent", "2.0.0": "old"})


LOAD_CLIENT = """
Loop = fun Loop(N, Failed, MaxPause) ->
    receive {stop, From} -> From ! {load_stats, N, Failed, MaxPause}
    after 0 ->
        Key = <<"load", (integer_to_binary(N))/binary>>,
        Value = integer_to_binary(N * 7),
        T0 = erlang:monotonic_time(microsecond),
        Ok = try {kvstore:put(Key, Value), kvstore:get(Key)} of {ok, {ok, Value}} -> 0; _ -> 1 catch _:_ -> 1 end,
        Pause = erlang:monotonic_time(microsecond) - T0,
        Loop(N + 1, Failed + Ok, max(MaxPause, Pause))
    end
end,
register(load_client, spawn(fun() -> Loop(0, 0, 0) end)), ok
"""
STOP_CLIENT = ("load_client ! {stop, self()}, "
               "receive {load_stats, N, Failed, MaxPause} -> {N, Failed, MaxPause} after 30000 -> no_answer end")
UNREADABLE = ("{N, _, _} = %s, length([I || I <- lists:seq(0, N - 1), "
              "kvstore:get(<<\"load\", (integer_to_binary(I))/binary>>) =/= {ok, integer_to_binary(I * 7)}])")


def test_no_request_fails_or_is_lost_under_load(world, deploy, start_node, record_property):
    node = start_node(deploy("1.0.0"))
    put_keys(node)
    unpack(world, node, "2.0.0")
    # 2.0.0 writes a column that its migration adds: run it with 2.0.0's code first, as the migrate role does
    rc, migrated = run_module("eval", dict(root=str(node.root), version="2.0.0", module="kv_migrate", function="run"))
    assert_ok(rc, migrated)
    os_pid, server_pid = node.os_pid(), node.rpc("kvstore:server_pid()")
    assert node.rpc(LOAD_CLIENT) == "ok"
    up = change("upgrade", node, version="2.0.0")
    down = change("downgrade", node)
    stats = node.rpc(STOP_CLIENT)
    assert_ok(*up)
    assert_ok(*down)
    count, failed, max_pause_us = (int(x) for x in stats.strip("{}").split(","))
    print("load: %d put+get requests during upgrade and downgrade, %d failed, longest pause %.1f ms; "
          "module work %d ms up, %d ms down" % (count, failed, max_pause_us / 1000.0, up[1]["duration_ms"],
                                                down[1]["duration_ms"]))
    record_property("load_requests", count)
    record_property("load_longest_pause_ms", max_pause_us / 1000.0)
    assert count > 100 and failed == 0
    assert node.rpc(UNREADABLE % "{%d, 0, 0}" % count) == "0"
    memory = sorted(KEYS + ["load%d" % i for i in range(count)])
    snapshot = node.rpc(SNAPSHOT.replace("kvstore:memory_keys(), kvstore:keys()",
                                         "length(kvstore:memory_keys()), length(kvstore:keys())"))
    assert snapshot == '{{{0},{1},"1.0.0",v1,{2},{2},{3}}}'.format(
        os_pid, server_pid, len(memory), releases_text({"1.0.0": "permanent", "2.0.0": "old"}))


def assert_refused(node, before, module, words, **args):
    rc, result = change(module, node, **args)
    assert rc != 0 and result.get("failed"), result
    for word in words:
        assert word in result["msg"]
    if before is not None:
        assert node.rpc(SNAPSHOT) == before
    return result


def test_refusals_change_nothing(world, deploy, start_node):
    node = start_node(deploy("1.0.0"))
    put_keys(node)
    unpack(world, node, "2.0.0")
    unpack(world, node, "3.0.0")
    before = node.rpc(SNAPSHOT)
    assert_refused(node, before, "downgrade", ["2.0.0 is newer than the running 1.0.0", "use otp.release.upgrade"],
                   version="2.0.0")
    assert_refused(node, before, "downgrade", ["runs 1.0.0 and has no old release below it"])
    assert_refused(node, before, "upgrade", ["Version 2.5.0 is not unpacked", "unpack it first"], version="2.5.0")
    assert_refused(node, before, "upgrade", ["releases/3.0.0/relup has no upgrade path from 1.0.0", "up from: 2.0.0"],
                   version="3.0.0")
    # an upgraded node refuses to "upgrade" back
    assert_ok(*change("upgrade", node, version="2.0.0"))
    after = node.rpc(SNAPSHOT)
    assert_refused(node, after, "upgrade", ["1.0.0 is older than the running 2.0.0", "use otp.release.downgrade"],
                   version="1.0.0")
    # skipping a version the relups do not connect: 3.0.0 -> 1.0.0
    assert_ok(*change("upgrade", node, version="3.0.0"))
    after = node.rpc(SNAPSHOT)
    assert_refused(node, after, "downgrade", ["releases/3.0.0/relup has no downgrade path to 1.0.0", "down to: 2.0.0"],
                   version="1.0.0")
    node.stop()
    result = assert_refused(node, None, "upgrade", ["is not running", "Nothing was changed"], version="3.0.0")
    assert "running" not in result or result["running"] is False


def test_a_wrong_cookie_is_refused_as_such(world, deploy, start_node, tmp_path):
    node = start_node(deploy("1.0.0"))
    put_keys(node)
    unpack(world, node, "2.0.0")
    before = node.rpc(SNAPSHOT)
    wrong = tmp_path / "wrong.cookie"
    wrong.write_text("not-the-cookie")
    assert_refused(node, before, "upgrade", ["refused the connection: the cookie is wrong", "Nothing was changed"],
                   version="2.0.0", cookie_file=str(wrong))


def test_crash_in_code_change_restarts_on_the_old_release(world, deploy, start_node):
    node = start_node(deploy("1.0.0"))
    put_keys(node)
    os_pid = node.os_pid()
    unpack(world, node, "1.1.0")
    rc, result = change("upgrade", node, version="1.1.0")
    assert rc != 0 and result.get("failed")
    for words in ("crashed past the point of no return", "restarted the node", "on 1.0.0",
                  "in-memory state was lost", "kv_server", "boom_in_code_change", "otp.release.remove"):
        assert words in result["msg"], result["msg"]
    assert node.wait_booted() == os_pid
    assert node.rpc(SNAPSHOT) == expected_snapshot(os_pid, node.rpc("kvstore:server_pid()"), "1.0.0",
                                                   {"1.0.0": "permanent", "1.1.0": "unpacked"}, memory=[])
    rc, removed = run_module("remove", dict(root=str(node.root), version="1.1.0"))
    assert_ok(rc, removed)
    assert not (node.root / "releases" / "1.1.0").exists() and not list((node.root / "lib").glob("kvstore-1.1.0"))
    put_keys(node)
    unpack(world, node, "2.0.0")
    step(node, "upgrade", "2.0.0", "1.0.0", "up", {"1.0.0": "old", "2.0.0": "permanent"}, version="2.0.0")


def test_a_failure_before_the_point_of_no_return_keeps_the_node_and_its_state(world, deploy, start_node):
    node = start_node(deploy("1.0.0"))
    put_keys(node)
    unpack(world, node, "2.0.0")
    (node.root / "lib" / "kvstore-2.0.0" / "ebin" / "kv_server.beam").unlink()
    before = node.rpc(SNAPSHOT)
    result = assert_refused(node, before, "upgrade", ["failed on node", "Nothing was changed", "still runs 1.0.0"],
                            version="2.0.0")
    assert "release_handler_error" in result
    assert node.rpc('kvstore:get(<<"a">>)') == '{ok,<<"aa">>}'


RESTART_PROGRAM = """#!/bin/sh
# heart runs this as: <program> <root>/releases/new_start_erl.data
read erts_vsn rel_vsn < "$1"
exec {run_erl} -daemon {pipe}/ {log}/ "exec {root}/bin/kvstore-$rel_vsn console"
"""


def heart_node(all_nodes, root, start_prg=None):
    """A node with heart, and with a {sasl, start_prg} when given."""
    node = kvworld.Node(root, heart=True)
    if start_prg:
        with open(str(node.vm_args), "a") as vm_args:
            vm_args.write("-sasl start_prg '\"{0}\"'\n".format(start_prg))
    all_nodes.started.append(node)
    node.start()
    return node


def test_restart_emulator_waits_for_the_new_emulator(world, deploy, all_nodes):
    root = deploy("1.0.0")
    program = root.parent / "restart-node"
    node = heart_node(all_nodes, root, program)
    try:
        program.write_text(RESTART_PROGRAM.format(run_erl=node.erts_bin / "run_erl", pipe=node.files / "pipe",
                                                  log=node.log_dir, root=root))
        program.chmod(0o755)
        put_keys(node)
        old_pid = node.os_pid()
        unpack(world, node, "1.2.0")
        rc, result = change("upgrade", node, version="1.2.0")
        assert_ok(rc, result)
        assert (result["changed"], result["restart"], result["to_version"], result["permanent"]) == \
            (True, "emulator", "1.2.0", True)
        new_pid = node.wait_booted()
        assert new_pid != old_pid and result["os_pid"] == new_pid
        states = {"1.0.0": "old", "1.2.0": "permanent"}
        assert node.rpc(SNAPSHOT) == expected_snapshot(new_pid, node.rpc("kvstore:server_pid()"), "1.2.0", states,
                                                       memory=[])
        rc, again = change("upgrade", node, version="1.2.0")
        assert_ok(rc, again)
        assert again["changed"] is False
        cold_start_boots(node, "1.2.0", states)
    finally:
        node.stop()


def test_restart_emulator_is_refused_without_heart_or_restart_program(world, deploy, start_node, all_nodes):
    plain = start_node(deploy("1.0.0"))
    unpack(world, plain, "1.2.0")
    before = plain.rpc(SNAPSHOT)
    assert_refused(plain, before, "upgrade", ["restarts the emulator (emulator)", "runs without heart"], version="1.2.0")

    root = deploy("1.0.0")
    node = heart_node(all_nodes, root)  # no start_prg: heart would run <root>/bin/start, which relx does not ship
    try:
        unpack(world, node, "1.2.0")
        before = node.rpc(SNAPSHOT)
        assert_refused(node, before, "upgrade", ["heart would run {0}".format(root / "bin" / "start"),
                                                 "not executable"], version="1.2.0")
    finally:
        node.stop()


def test_upgrade_with_src_does_the_whole_path_in_one_task(world, deploy, start_node):
    node = start_node(deploy("1.0.0"))
    put_keys(node)
    os_pid, server_pid = node.os_pid(), node.rpc("kvstore:server_pid()")
    args = dict(src=world["2.0.0"], health=dict(module="kvstore", function="health"), keep=0)

    rc, checked = change("upgrade", node, check=True, **args)
    assert_ok(rc, checked)
    assert (checked["changed"], checked["to_version"], checked["transferred"]) == (True, "2.0.0", False)
    assert node.rpc(SNAPSHOT) == expected_snapshot(os_pid, server_pid, "1.0.0", {"1.0.0": "permanent"})

    rc, result = change("upgrade", node, **args)
    assert_ok(rc, result)
    assert (result["changed"], result["from_version"], result["to_version"], result["transferred"]) == \
        (True, "1.0.0", "2.0.0", True)
    assert result["unpack"]["changed"] and all(check["ok"] for check in result["erts_checks"])
    assert result["health"] == dict(call="kvstore:health()", ok=True, answer="ok")
    assert result["removed"] == ["1.0.0"]
    assert node.rpc(SNAPSHOT) == expected_snapshot(os_pid, server_pid, "2.0.0", {"2.0.0": "permanent"})
    assert not (node.root / "bin" / "kvstore-1.0.0").exists()

    rc, again = change("upgrade", node, **args)
    assert_ok(rc, again)
    assert (again["changed"], again["transferred"], again["removed"]) == (False, False, [])
    assert node.rpc(SNAPSHOT) == expected_snapshot(os_pid, server_pid, "2.0.0", {"2.0.0": "permanent"})


def test_an_unhealthy_upgrade_fails_and_says_where_the_node_is(world, deploy, start_node):
    node = start_node(deploy("1.0.0"))
    put_keys(node)
    os_pid, server_pid = node.os_pid(), node.rpc("kvstore:server_pid()")
    rc, result = change("upgrade", node, src=world["2.0.0"], health=dict(module="kvstore", function="unhealthy"),
                        keep=0)
    assert rc != 0 and result["failed"] and result["health_failed"]
    assert "health check kvstore:unhealthy() returned {error,not_ready}" in result["msg"], result["msg"]
    assert "runs 2.0.0 now (permanent)" in result["msg"]
    # no removal after a failed health check: the way back is still there
    assert node.rpc(SNAPSHOT) == expected_snapshot(os_pid, server_pid, "2.0.0", {"1.0.0": "old", "2.0.0": "permanent"})


def upgrade_counting_module_runs(node, tmp_path, src):
    """(result, module runs) of one otp.release.upgrade task with src: every module run starts the hosts' Python,
    here a wrapper that counts its starts."""
    counter = tmp_path / "module-runs"
    counter.write_text("")
    python = tmp_path / "python"
    python.write_text("#!/bin/sh\necho run >> '{0}'\nexec '{1}' \"$@\"\n".format(counter, sys.executable))
    python.chmod(0o755)
    play = tmp_path / "play.yml"
    play.write_text(json.dumps([{"hosts": "all", "gather_facts": False, "tasks": [
        {"name": "upgrade", "otp.release.upgrade": dict(root=str(node.root), src=src), "register": "answer"},
        {"name": "show", "ansible.builtin.debug": {"msg": "RESULT{{ answer | to_json }}RESULT"}}]}]))
    rc, output = run_playbook(play, interpreter=str(python))
    assert rc == 0, output[-3000:]
    result = json.loads(output.split("RESULT")[1].replace('\\"', '"'))
    return result, len(counter.read_text().split())


def test_one_module_run_when_the_host_has_the_version_two_when_it_needs_the_tarball(world, deploy, start_node, tmp_path):
    node = start_node(deploy("1.0.0"))
    result, runs = upgrade_counting_module_runs(node, tmp_path, world["2.0.0"])
    assert (result["changed"], result["transferred"], result["current"], runs) == (True, True, "2.0.0", 2)
    result, runs = upgrade_counting_module_runs(node, tmp_path, world["2.0.0"])
    assert (result["changed"], result["transferred"], runs) == (False, False, 1)
    unpack(world, node, "3.0.0")
    result, runs = upgrade_counting_module_runs(node, tmp_path, world["3.0.0"])
    assert (result["changed"], result["transferred"], result["current"], runs) == (True, False, "3.0.0", 1)
    assert node.rpc("kvstore:version()") == '"3.0.0"'
