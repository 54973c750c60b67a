"""The restart's pure parts: hot or restart and why (strategy auto), the start command, the environment kept, and
RELEASES with the target tmp_current."""

import os

import pytest

from ansible_collections.otp.release.plugins.module_utils import _restart
from ansible_collections.otp.release.plugins.module_utils._change import plan_change
from ansible_collections.otp.release.plugins.module_utils._errors import OtpReleaseError
from ansible_collections.otp.release.plugins.module_utils._identity import NodeProcess
from ansible_collections.otp.release.plugins.module_utils._relfiles import parse_releases, read_terms
from ansible_collections.otp.release.plugins.module_utils._session import Live

RELUP_2 = """{"2.0.0", [{"1.0.0",[],[point_of_no_return]}], [{"1.0.0",[],[point_of_no_return]}]}.\n"""
RELUP_3 = """{"3.0.0", [{"2.0.0",[],[point_of_no_return]}], [{"2.0.0",[],[point_of_no_return]}]}.\n"""
RELUP_RESTART = """{"1.2.0", [{"1.0.0",[],[point_of_no_return,restart_emulator]}], [{"1.0.0",[],[restart_emulator]}]}.\n"""
NODE = "kv@127.0.0.1"


class FakeSession(object):
    def __init__(self, release):
        self.release = release


@pytest.fixture
def release(tmp_path, relup_root):
    release = relup_root(tmp_path, {"1.0.0": None, "2.0.0": RELUP_2, "3.0.0": RELUP_3, "1.2.0": RELUP_RESTART})
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "kvstore").write_text('#!/bin/sh\nREL_VSN="1.0.0"\n')
    return release


def live(states, heart=False):
    return Live(NODE, 42, "13.1.5", [(v, s, []) for v, s in states.items()], heart=heart)


@pytest.mark.parametrize("target, heart, method, words", [
    ("2.0.0", False, "hot", "the relup has a path 1.0.0 -> 2.0.0 (restart: none)"),
    ("3.0.0", False, "restart", "3.0.0/relup has no path 1.0.0 -> 3.0.0"),
    ("1.2.0", False, "restart", "restarts the emulator (emulator) and node kv@127.0.0.1 runs without heart"),
    ("1.2.0", True, "hot", "the relup has a path 1.0.0 -> 1.2.0 (restart: emulator)"),
])
def test_auto_chooses_per_host_and_says_why(release, target, heart, method, words):
    node = live({"1.0.0": "permanent", target: "unpacked"}, heart)
    plan = plan_change(release, NODE, node.states, target, "up", need_relup=False)
    chosen, why = _restart.choose_method(FakeSession(release), node, plan, "auto")
    assert chosen == method and why.endswith(words)
    assert _restart.choose_method(FakeSession(release), node, plan, "restart") == ("restart", "strategy restart")


def test_a_missing_relup_file_means_restart(release, tmp_path):
    (tmp_path / "releases" / "2.0.0" / "relup").unlink()
    node = live({"1.0.0": "permanent", "2.0.0": "unpacked"})
    plan = plan_change(release, NODE, node.states, "2.0.0", "up", need_relup=False)
    method, why = _restart.choose_method(FakeSession(release), node, plan, "auto")
    assert method == "restart" and why.endswith("2.0.0/relup is missing, so there is no relup path 1.0.0 -> 2.0.0")


def test_plan_without_relup_still_refuses_what_no_strategy_can_do(release):
    with pytest.raises(OtpReleaseError, match="is not unpacked"):
        plan_change(release, NODE, {"1.0.0": "permanent"}, "2.0.0", "up", need_relup=False)


def test_the_environment_kept_drops_what_the_old_start_derived_from_its_version(release):
    env = dict(HOME="/home/kv", RELEASE_VSN="1.0.0", RELEASE_COOKIE="secret", VMARGS_PATH="/etc/kv/vm.args", ERL_EPMD_PORT="4400",
               RELEASE_SYS_CONFIG=release.path("releases", "1.0.0", "sys"), ROOTDIR=release.root, PROGNAME="erl", EMU="beam")
    assert _restart.start_environment(env, release, "1.0.0") == dict(
        HOME="/home/kv", RELEASE_COOKIE="secret", VMARGS_PATH="/etc/kv/vm.args", ERL_EPMD_PORT="4400")


def test_start_command_repeats_run_erl_when_it_runs_the_roots_script(release, monkeypatch):
    run_erl = ["/r/erts-13.1.5/bin/run_erl", "-daemon", "/tmp/pipe/", "/tmp/log/", "exec %s console" % release.path("bin", "kvstore")]
    monkeypatch.setattr(_restart, "parent_command", lambda pid: run_erl)
    assert _restart.start_command(release, NodeProcess(7, []), None) == (run_erl, "run_erl, as the node was started")
    assert _restart.start_command(release, NodeProcess(7, []), "systemctl start kv") == (
        ["/bin/sh", "-c", "systemctl start kv"], "start_command")


def test_start_command_falls_back_to_the_producers_own(release, monkeypatch):
    versioned = ["/r/bin/run_erl", "-daemon", "/p/", "/l/", "exec /r/erts/bin/erl -boot /r/releases/0.1.0/start"]
    monkeypatch.setattr(_restart, "parent_command", lambda pid: versioned)
    assert _restart.start_command(release, NodeProcess(7, []), None) == ([release.path("bin", "kvstore"), "daemon"], "relx daemon")
    os.unlink(release.path("bin", "kvstore"))
    with pytest.raises(OtpReleaseError, match="Give start_command. Nothing was changed"):
        _restart.start_command(release, NodeProcess(7, []), None)


def test_the_target_is_marked_tmp_current_and_the_rest_kept(release, tmp_path):
    (tmp_path / "releases" / "RELEASES").write_text(
        '[{release,"kvstore","1.0.0","13.1.5",[{kernel,"8.5.3","lib/kernel-8.5.3"}],permanent},\n'
        ' {release,"kvstore","3.0.0","13.1.5",[{kernel,"8.5.3","lib/kernel-8.5.3"}],unpacked}].\n')
    _restart.mark_tmp_current(release, "3.0.0", None)
    entries = parse_releases(read_terms(str(tmp_path / "releases" / "RELEASES")))
    assert [(e["version"], e["state"], e["libs"]) for e in entries] == [
        ("1.0.0", "permanent", [("kernel", "8.5.3", "lib/kernel-8.5.3")]),
        ("3.0.0", "tmp_current", [("kernel", "8.5.3", "lib/kernel-8.5.3")])]
