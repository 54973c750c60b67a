"""strategy restart and auto on real nodes: a new OS pid on the target version, made permanent through the node
(which_releases right, a cold start boots it), the data in SQLite kept, in-memory state not; a version that crashes
on boot rolled back; restart downgrades for relx and mix; auto picking hot where a relup path exists; a 3-host
rollout through the migrate_then_upgrade playbook."""

import re

from ansible_cli import run_module
from ansible_collections.otp.release.plugins.module_utils._erlterm import parse, to_plain

import world as kvworld
from test_playbooks import EXPECTED_DATA, fleet, upgrade_vars  # noqa: F401  pylint: disable=unused-import

KEYS = ["a", "b", "c"]
STATE = ("{list_to_integer(os:getpid()), element(2, init:script_id()), "
         "lists:sort([{V, S} || {_, V, _, S} <- release_handler:which_releases()])}")


def state(node):
    """(OS pid, version the node booted, {version: state}) asked from the node."""
    pid, booted, states = to_plain(parse(node.rpc(STATE)))
    return pid, booted, dict(map(tuple, states))


def put_keys(node):
    for key in KEYS:
        assert node.rpc('kvstore:put(<<"{0}">>, <<"{0}{0}">>)'.format(key)) == "ok"


def stored(node):
    """(keys in SQLite, keys in kv_server's memory)."""
    return to_plain(parse(node.rpc("{kvstore:keys(), kvstore:memory_keys()}")))


def module(name, node, check=False, **args):
    rc, result = run_module(name, dict(root=str(node.root), **args), check=check)
    return rc, result


def ok(rc, result):
    assert rc == 0 and not result.get("failed"), result.get("msg", result)
    return result


def test_restart_upgrade_without_relup_path_then_restart_downgrade(world, deploy, start_node, tmp_path):
    node = start_node(deploy("1.0.0"), env={"KVSTORE_DB": str(tmp_path / "kv.db")})
    put_keys(node)
    pid_before = state(node)[0]

    rc, hot = module("upgrade", node, src=world["3.0.0"], version="3.0.0")
    assert rc != 0 and "no upgrade path from 1.0.0" in hot["msg"], hot
    assert state(node) == (pid_before, "1.0.0", {"1.0.0": "permanent", "3.0.0": "unpacked"})

    checked = ok(*module("upgrade", node, check=True, version="3.0.0", strategy="auto"))
    assert (checked["method"], checked["changed"], checked["state_kept"]) == ("restart", True, False)
    assert "has no path 1.0.0 -> 3.0.0" in checked["method_reason"], checked
    assert "in-memory state is not kept" in checked["state_note"] and any("init:stop()" in s for s in checked["would"])
    assert state(node) == (pid_before, "1.0.0", {"1.0.0": "permanent", "3.0.0": "unpacked"})

    result = ok(*module("upgrade", node, version="3.0.0", strategy="auto", health=dict(module="kvstore", function="health")))
    pid_after, booted, states = state(node)
    assert (result["method"], result["from_version"], result["to_version"], result["rolled_back"]) == ("restart", "1.0.0", "3.0.0", False)
    assert (result["os_pid_before"], result["os_pid_after"]) == (pid_before, pid_after) and pid_after != pid_before
    assert 0 < result["downtime_ms"] < 30000 and result["health"]["ok"] is True
    assert (booted, states) == ("3.0.0", {"1.0.0": "old", "3.0.0": "permanent"})
    assert (result["permanent"], result["start_version"]) == (True, "3.0.0")
    assert node.rpc("kvstore:version()") == '"3.0.0"'
    assert stored(node) == [KEYS, []]
    assert (node.root / "bin" / "kvstore").read_bytes() == (node.root / "bin" / "kvstore-3.0.0").read_bytes()

    cold_pid = node.cold_restart()
    assert state(node) == (cold_pid, "3.0.0", {"1.0.0": "old", "3.0.0": "permanent"})

    result = ok(*module("downgrade", node, version="1.0.0", strategy="restart"))
    pid_down, booted, states = state(node)
    assert (result["method"], result["direction"], pid_down != cold_pid) == ("restart", "down", True)
    assert (booted, states) == ("1.0.0", {"1.0.0": "permanent", "3.0.0": "old"})
    assert stored(node)[0] == KEYS
    cold_pid = node.cold_restart()
    assert state(node) == (cold_pid, "1.0.0", {"1.0.0": "permanent", "3.0.0": "old"})


def test_auto_goes_hot_where_the_relup_has_a_path(world, deploy, start_node, tmp_path):
    node = start_node(deploy("1.0.0"), env={"KVSTORE_DB": str(tmp_path / "kv.db")})
    put_keys(node)
    pid_before = state(node)[0]
    result = ok(*module("upgrade", node, src=world["2.0.0"], version="2.0.0", strategy="auto"))
    assert (result["method"], result["state_kept"]) == ("hot", True)
    assert "path 1.0.0 -> 2.0.0" in result["method_reason"]
    assert state(node) == (pid_before, "1.0.0", {"1.0.0": "old", "2.0.0": "permanent"})
    assert stored(node) == [KEYS, KEYS]


def test_a_version_that_crashes_on_boot_is_rolled_back(world, deploy, start_node, tmp_path):
    node = start_node(deploy("1.0.0"), env={"KVSTORE_DB": str(tmp_path / "kv.db")})
    put_keys(node)
    pid_before = state(node)[0]
    rc, result = module("upgrade", node, src=world["2.0.0-crashboot"], version="2.0.0-crashboot", strategy="auto",
                        start_timeout=20)
    assert rc != 0 and result["rolled_back"] is True, result
    assert "rolled back" in result["msg"] and "2.0.0-crashboot" in result["msg"], result["msg"]
    pid_now, booted, states = state(node)
    assert pid_now not in (pid_before, None) and result["os_pid_after"] == pid_now
    assert (booted, states) == ("1.0.0", {"1.0.0": "permanent", "2.0.0-crashboot": "unpacked"})
    assert (node.root / "releases" / "2.0.0-crashboot").is_dir()
    assert (node.root / "bin" / "kvstore").read_bytes() == (node.root / "bin" / "kvstore-1.0.0").read_bytes()
    assert stored(node)[0] == KEYS
    cold_pid = node.cold_restart()
    assert state(node)[:2] == (cold_pid, "1.0.0")


MIX_STATE = ("{list_to_integer(os:getpid()), element(2, init:script_id()), 'Elixir.Kvex':version(), "
             "lists:sort([{V, S} || {_, V, _, S} <- release_handler:which_releases()])}")


def mix_state(node):
    pid, booted, code, states = to_plain(parse(node.rpc(MIX_STATE)))
    return pid, booted, code, dict(map(tuple, states))


def test_mix_release_restart_up_and_down(world, deploy, start_node):
    node = start_node(deploy("mix-0.1.0", releases_file=False), kind=kvworld.MixNode)
    pid_before = mix_state(node)[0]
    result = ok(*module("upgrade", node, src=world["mix-0.2.0"], version="0.2.0", strategy="restart"))
    pid_up, booted, code, states = mix_state(node)
    assert (result["method"], result["start_how"], pid_up != pid_before) == ("restart", "mix daemon", True)
    assert (booted, code, states) == ("0.2.0", "0.2.0", {"0.1.0": "old", "0.2.0": "permanent"})
    assert (node.root / "releases" / "start_erl.data").read_text().split()[1] == "0.2.0"

    result = ok(*module("downgrade", node, strategy="restart"))
    pid_down, booted, code, states = mix_state(node)
    assert (result["method"], result["to_version"], pid_down != pid_up) == ("restart", "0.1.0", True)
    assert (booted, code, states) == ("0.1.0", "0.1.0", {"0.1.0": "permanent", "0.2.0": "old"})
    assert re.match(r"\S+ 0\.1\.0$", (node.root / "releases" / "start_erl.data").read_text().strip())


def started_at(pid):
    """The start time of a process, in clock ticks after boot."""
    with open("/proc/%d/stat" % pid) as handle:
        return int(handle.read().rsplit(")", 1)[1].split()[19])


def test_rollout_without_relup_path_restarts_each_host_in_turn_and_hot_refuses(fleet, world):
    fleet = fleet(upgrade_in_inventory=False)
    pids = dict((host, fleet.state(host)[2]) for host in fleet.nodes)
    to_3 = dict(otp_release_src=str(world["3.0.0"]), otp_release_version="3.0.0")

    rc, output = fleet.playbook("otp.release.migrate_then_upgrade", upgrade_vars(fleet, **to_3))
    assert rc != 0 and "no upgrade path from 1.0.0" in output, output
    assert fleet.migrations() == [] and "updated_at" not in fleet.columns()
    for host in fleet.nodes:
        version, states, pid, shape = fleet.state(host)
        assert (version, states["1.0.0"], pid) == ("1.0.0", "permanent", pids[host])

    rc, output = fleet.playbook("otp.release.migrate_then_upgrade", upgrade_vars(fleet, otp_release_strategy="auto", **to_3))
    assert rc == 0, output
    plan_at, migrate_at = output.index("Plan ("), output.index("kv_migrate")
    assert plan_at < migrate_at, output
    for host in fleet.nodes:
        assert re.search(r"%s\s+1\.0\.0 -> 3\.0\.0\s+restart\s+\S+ has no path 1\.0\.0 -> 3\.0\.0; restart: in-memory state is not kept"
                         % host, output), output
        assert re.search(r"%s\s+1\.0\.0 -> 3\.0\.0  restart: node  \d+ ms  review findings: 0  method: restart  downtime: \d+ ms" % host,
                         output), output
    assert len(fleet.migrations()) == 1
    new_pids = {}
    for host, node in fleet.nodes.items():
        version, states, pid, shape = fleet.state(host)
        assert (version, states, shape) == ("3.0.0", {"1.0.0": "old", "3.0.0": "permanent"}, "v3")
        assert pid != pids[host]
        new_pids[host] = pid
        assert state(node)[1] == "3.0.0"
    assert sorted(fleet.nodes, key=lambda host: started_at(new_pids[host])) == ["app1", "app2", "app3"]
    assert fleet.data("app2") == EXPECTED_DATA
    cold_pid = fleet.nodes["app3"].cold_restart()
    assert state(fleet.nodes["app3"]) == (cold_pid, "3.0.0", {"1.0.0": "old", "3.0.0": "permanent"})


def test_rollout_with_auto_goes_hot_and_stops_at_a_version_that_crashes_on_boot(fleet, world):
    fleet = fleet(host_vars={"app2": {"otp_release_src": str(world["2.0.0-crashboot"]), "otp_release_version": "2.0.0-crashboot"}})
    pids = dict((host, fleet.state(host)[2]) for host in fleet.nodes)
    rc, output = fleet.playbook("otp.release.migrate_then_upgrade",
                                upgrade_vars(fleet, otp_release_strategy="auto", otp_release_start_timeout=20))
    assert rc != 0
    assert re.search(r"app1\s+1\.0\.0 -> 2\.0\.0\s+hot\s+load_object_code", output), output
    assert re.search(r"app2\s+1\.0\.0 -> 2\.0\.0-crashboot\s+restart\s+\S+ is missing", output), output
    assert "rolled back" in output and "It was rolled back to 1.0.0" in output, output
    assert fleet.state("app1")[1:3] == ({"1.0.0": "old", "2.0.0": "permanent"}, pids["app1"])
    version, states, pid, shape = fleet.state("app2")
    assert (version, states, pid != pids["app2"]) == ("1.0.0", {"1.0.0": "permanent", "2.0.0-crashboot": "unpacked"}, True)
    version, states, pid, shape = fleet.state("app3")
    assert (version, states["1.0.0"], pid) == ("1.0.0", "permanent", pids["app3"])
    assert fleet.data("app2") == EXPECTED_DATA
