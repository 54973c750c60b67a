"""otp.release.eval and otp.release.remove on real kvstore releases and nodes, through ansible-playbook."""

import shutil
import sqlite3
import time

import pytest

from ansible_cli import run_module
from ansible_collections.otp.release.plugins.module_utils._errors import OtpReleaseError
from ansible_collections.otp.release.plugins.module_utils._remove import removal_candidates


def unpack_by_hand(world, node, version):
    """Place the version's tarball where release_handler wants it and unpack it on the node."""
    (node.root / "releases" / version).mkdir(parents=True, exist_ok=True)
    shutil.copy(world[version], node.root / "releases" / version / "kvstore.tar.gz")
    assert node.rpc('release_handler:unpack_release("%s/kvstore")' % version) == '{ok,"%s"}' % version


def install_by_hand(node, version, permanent=True):
    assert node.rpc('release_handler:install_release("%s", [{update_paths, true}])' % version).startswith("{ok,")
    if permanent:
        assert node.rpc('release_handler:make_permanent("%s")' % version) == "ok"


def kv_columns(root):
    with sqlite3.connect(str(root / "data" / "kvstore.db")) as db:
        return [row[1] for row in db.execute("PRAGMA table_info(kv)")]


def states(node):
    text = node.rpc("[{V, S} || {_, V, _, S} <- release_handler:which_releases()]")
    return dict(pair.strip("{}").replace('"', "").split(",") for pair in text.strip("[]").split("},{"))


@pytest.fixture
def node_with_2_unpacked(world, deploy, start_node):
    """A running 1.0.0 node holding one key in its memory, with 2.0.0 unpacked next to it."""
    node = start_node(deploy("1.0.0"))
    assert node.rpc('kvstore:put(<<"greeting">>, <<"hello">>)') == "ok"
    unpack_by_hand(world, node, "2.0.0")
    return node


def test_migration_runs_the_new_code_in_a_one_off_vm_and_leaves_the_node_alone(node_with_2_unpacked, epmd):
    node = node_with_2_unpacked
    pid = node.os_pid()
    assert "updated_at" not in kv_columns(node.root)
    args = dict(root=str(node.root), cookie_file=str(node.cookie_file), version="2.0.0", module="kv_migrate", function="run")

    started = time.monotonic()
    rc, result = run_module("eval", args)
    elapsed = time.monotonic() - started

    assert rc == 0, result
    assert result["result"] == ["ok", ["add_kv_updated_at"]] and result["result_text"] == "{ok,[add_kv_updated_at]}"
    assert result["changed"] is True and result["version"] == "2.0.0" and result["call"] == "kv_migrate:run()"
    assert "updated_at" in kv_columns(node.root)
    # the node: same OS process, still 1.0.0, its in-memory state intact, and it works on the new schema
    assert node.os_pid() == pid
    assert node.rpc("kvstore:version()") == '"1.0.0"'
    assert node.rpc("kvstore:memory_keys()") == '[<<"greeting">>]'
    assert node.rpc('kvstore:put(<<"after">>, <<"migration">>)') == "ok"
    # the one-off VM never registered with epmd
    assert epmd.names() == [node.name.split("@")[0]]
    print("\neval kv_migrate:run(): VM boot %s ms, call %s ms, module %s ms, ansible-playbook %.2f s"
          % (result["boot_ms"], result["call_ms"], result["duration_ms"], elapsed))

    rc, again = run_module("eval", args)
    assert rc == 0 and again["result"] == ["ok", []]


def test_a_raising_function_fails_with_its_stack(node_with_2_unpacked):
    node = node_with_2_unpacked
    rc, result = run_module("eval", dict(root=str(node.root), version="2.0.0", module="kv_migrate", function="fail"))
    assert rc == 2 and result["failed"]
    assert result["msg"].startswith("kv_migrate:fail/0 raised error:{migration_failed,deliberately} (version 2.0.0 of ")
    assert result["erlang_class"] == "error" and result["erlang_reason"] == "{migration_failed,deliberately}"
    assert result["erlang_stack"].splitlines()[0].startswith("kv_migrate:fail/0 (")
    assert "erl_eval" not in result["erlang_stack"]


def test_eval_arguments_results_and_refusals_without_a_node(deploy):
    root = deploy("2.0.0")
    base = dict(root=str(root))

    rc, result = run_module("eval", dict(base, module="kv_migrate", function="run"), check=True)
    assert rc == 0 and result["skipped"] and result["skipped_in_check_mode"] and not result["changed"]
    assert not (root / "data").exists(), "check mode ran nothing"

    rc, result = run_module("eval", dict(base, module="lists", function="reverse",
                                         args=[["text", 7, {"atom": "ok"}, {"tuple": [1, {"charlist": "ab"}]}]]))
    assert rc == 0 and result["result_text"] == '[{1,"ab"},ok,7,<<"text">>]'
    assert result["version"] == "2.0.0", "the default version is the one RELEASES names"

    rc, result = run_module("eval", dict(base, module="erlang", function="list_to_tuple", args=[[{"atom": "error"}, "x"]]))
    assert rc == 2 and "a failure by failed_when_result" in result["msg"] and result["result"] == ["error", "x"]

    rc, result = run_module("eval", dict(base, version="9.9.9", module="kv_migrate", function="run"))
    assert rc == 2 and "Version 9.9.9 of kvstore is not unpacked in %s (versions there: 2.0.0)" % root in result["msg"]

    rc, result = run_module("eval", dict(base, module="kv_migrate", function="run", args=[1]))
    assert rc == 2 and "kv_migrate:run/1 is not exported in version 2.0.0" in result["msg"] and "run/0" in result["msg"]

    rc, result = run_module("eval", dict(base, module="kvstore", function="health"))
    assert rc == 2 and result["erlang_class"] == "exit" and "noproc" in result["erlang_reason"], "loaded, not started"
    rc, result = run_module("eval", dict(base, module="kvstore", function="health", start_apps=["kvstore"]))
    assert rc == 0 and result["result"] == "ok"

    rc, result = run_module("eval", dict(base, module="timer", function="sleep", args=[10000], timeout=2))
    assert rc == 2 and "did not finish within 2 s: the one-off VM of version 2.0.0 was killed" in result["msg"]


def test_remove_keeps_the_newest_old_releases_and_refuses_current_and_permanent(world, deploy, start_node):
    node = start_node(deploy("1.0.0"))
    root = node.root
    for version in ("2.0.0", "3.0.0"):
        unpack_by_hand(world, node, version)
        install_by_hand(node, version)
    assert states(node) == {"1.0.0": "old", "2.0.0": "old", "3.0.0": "permanent"}
    base = dict(root=str(root), cookie_file=str(node.cookie_file))

    rc, result = run_module("remove", base, check=True)
    assert rc == 0 and result["changed"] and result["removed"] == ["1.0.0"]
    assert result["removed_files"] == [str(root / "bin" / "kvstore-1.0.0")]
    assert (root / "lib" / "kvstore-1.0.0").is_dir() and "1.0.0" in states(node)

    rc, result = run_module("remove", base)
    assert rc == 0 and result["changed"] and result["removed"] == ["1.0.0"]
    assert states(node) == {"2.0.0": "old", "3.0.0": "permanent"}
    assert [r["version"] for r in result["releases"]] == ["2.0.0", "3.0.0"]
    assert not (root / "lib" / "kvstore-1.0.0").exists() and not (root / "releases" / "1.0.0").exists()
    assert not (root / "bin" / "kvstore-1.0.0").exists() and (root / "bin" / "kvstore-2.0.0").exists()
    assert (root / "lib" / "kvstore-2.0.0").is_dir()

    rc, result = run_module("remove", base)
    assert rc == 0 and not result["changed"] and result["removed"] == []

    rc, result = run_module("remove", dict(base, version="3.0.0"))
    assert rc == 2 and "Version 3.0.0 is the permanent release of node %s, so it cannot be removed" % node.name in result["msg"]

    # back to 2.0.0 without making it permanent: 2.0.0 is current, 3.0.0 stays permanent
    install_by_hand(node, "2.0.0", permanent=False)
    rc, result = run_module("remove", dict(base, version="2.0.0"))
    assert rc == 2 and "Version 2.0.0 is the current release" in result["msg"]
    assert states(node) == {"2.0.0": "current", "3.0.0": "permanent"}

    rc, result = run_module("remove", dict(base, keep=0))
    assert rc == 0 and not result["changed"], "current and permanent are never old"
    assert node.rpc("kvstore:health()") == "ok"


def test_remove_the_version_a_failed_upgrade_left_unpacked(node_with_2_unpacked):
    node = node_with_2_unpacked
    base = dict(root=str(node.root), cookie_file=str(node.cookie_file))
    rc, result = run_module("remove", base)
    assert rc == 0 and not result["changed"], "an unpacked release is kept unless named"

    rc, result = run_module("remove", dict(base, version="2.0.0"))
    assert rc == 0 and result["changed"] and result["removed"] == ["2.0.0"]
    assert states(node) == {"1.0.0": "permanent"}
    assert not (node.root / "lib" / "kvstore-2.0.0").exists() and (node.root / "lib" / "kvstore-1.0.0").is_dir()
    assert not (node.root / "bin" / "kvstore-2.0.0").exists()

    rc, result = run_module("remove", dict(base, version="2.0.0"))
    assert rc == 0 and not result["changed"], "a version already gone is no change"


@pytest.mark.parametrize("states_now, keep, version, expected", [
    ({"1.0.0": "old", "1.10.0": "old", "1.9.0": "old", "2.0.0": "permanent"}, 1, None, ["1.0.0", "1.9.0"]),
    ({"1.0.0": "old", "2.0.0": "permanent"}, 1, None, []),
    ({"1.0.0": "old", "2.0.0": "permanent", "3.0.0": "unpacked"}, 0, None, ["1.0.0"]),
    ({"1.0.0": "old", "2.0.0": "permanent", "3.0.0": "unpacked"}, 0, "3.0.0", ["3.0.0"]),
    ({"1.0.0": "permanent"}, 1, "2.0.0", []),
])
def test_removal_candidates(states_now, keep, version, expected):
    assert removal_candidates(states_now, keep, version, "kv@127.0.0.1") == expected


@pytest.mark.parametrize("state", ["current", "permanent"])
def test_removal_candidates_refuse_the_running_releases(state):
    with pytest.raises(OtpReleaseError, match="is the %s release of node kv@127.0.0.1, so it cannot be removed" % state):
        removal_candidates({"1.0.0": state}, 1, "1.0.0", "kv@127.0.0.1")
