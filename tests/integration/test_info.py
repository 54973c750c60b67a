"""otp.release.info on real nodes, up and down, through both control channels; the cookie stays out of
the results, the output and every process's command line."""

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from ansible_cli import CLI_ENV, run_module

ANSIBLE = str(Path(sys.executable).parent / "ansible")


def command_lines():
    lines = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open("/proc/%s/cmdline" % entry, "rb") as handle:
                    lines.append(handle.read().replace(b"\0", b" ").decode("utf-8", "replace"))
            except OSError:
                pass
    return lines


@pytest.mark.parametrize("channel", ["erl_call", "hidden_vm"])
def test_info_of_a_running_node(deploy, start_node, channel):
    node = start_node(deploy("1.0.0"))
    rc, result = run_module("info", dict(root=str(node.root), channel=channel))
    assert rc == 0, result
    assert result["running"] is True and result["channel"] == channel
    assert (result["name"], result["current"], result["permanent"], result["start_version"]) == ("kvstore", "1.0.0", "1.0.0", "1.0.0")
    assert result["releases"] == [{"version": "1.0.0", "state": "permanent", "erts": "13.1.5"}]
    assert result["node"] == node.name and result["os_pid"] == node.os_pid()
    assert result["node_source"] == "command line of process %d" % node.os_pid()
    assert result["cookie_source"] == str(node.cookie_file)
    assert result["producer"] == "relx" and result["start_version_mismatch"] is False
    assert node.cookie not in repr(result)


def test_info_of_a_stopped_node_says_running_false(deploy, start_node):
    node = start_node(deploy("1.0.0"))
    node.stop()
    rc, result = run_module("info", dict(root=str(node.root)))
    assert rc == 0, result
    assert result["running"] is False and result["os_pid"] is None
    assert (result["current"], result["permanent"], result["start_version"]) == ("1.0.0", "1.0.0", "1.0.0")
    assert result["node_source"].endswith("releases/1.0.0/vm.args") and "not running" in result["node_error"]


def test_a_cold_start_pointer_that_disagrees_is_flagged(deploy, start_node):
    node = start_node(deploy("1.0.0"))
    script = node.root / "bin" / "kvstore"
    script.write_text(script.read_text().replace('REL_VSN="1.0.0"', 'REL_VSN="0.9.0"'))
    rc, result = run_module("info", dict(root=str(node.root)))
    assert (result["start_version"], result["permanent"], result["start_version_mismatch"]) == ("0.9.0", "1.0.0", True)


def test_a_wrong_cookie_is_its_own_error_and_never_shown(deploy, start_node):
    node = start_node(deploy("1.0.0"))
    rc, result = run_module("info", dict(root=str(node.root), cookie="not-the-cookie-%s" % node.name[:6]))
    assert rc != 0
    assert "refused the connection: the cookie is wrong" in result["msg"]
    assert "not-the-cookie" not in repr(result)


def test_the_cookie_is_in_no_command_line_and_no_output_during_ad_hoc_calls(deploy, start_node):
    node = start_node(deploy("1.0.0"))
    seen = []
    done = threading.Event()

    def watch():
        while not done.is_set():
            seen.extend(line for line in command_lines() if node.cookie in line)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        outputs = []
        for channel in ("erl_call", "hidden_vm"):
            completed = subprocess.run(
                [ANSIBLE, "localhost", "-i", "localhost,", "-c", "local", "-m", "otp.release.info",
                 "-a", "root=%s channel=%s" % (node.root, channel), "-e", "ansible_python_interpreter=%s" % sys.executable],
                env=dict(os.environ, **CLI_ENV), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False)
            outputs.append(completed.stdout)
            assert completed.returncode == 0 and '"running": true' in completed.stdout, completed.stdout
    finally:
        done.set()
        watcher.join()
    assert not seen
    assert all(node.cookie not in output for output in outputs)
