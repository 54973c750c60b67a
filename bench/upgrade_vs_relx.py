"""Median wall time of otp.release.upgrade (its duration_ms: the module's own work) against relx's
`bin/kvstore upgrade` on the same node, 1.0.0 -> 2.0.0, and their ratio. See bench/README.md.

Both do the same work on an unpacked 2.0.0: check_install_release, install_release, make_permanent and
the bin/kvstore copy. Between runs the node goes back to 1.0.0 over rpc (not timed); the two tools
take turns, so a slow moment of the machine hits both."""

import argparse
import importlib.util
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
# tests/conftest.py makes this checkout the otp.release collection for ansible (ANSIBLE_COLLECTIONS_PATH)
_spec = importlib.util.spec_from_file_location("otp_release_tests_conftest", str(HERE.parent / "tests" / "conftest.py"))
_spec.loader.exec_module(importlib.util.module_from_spec(_spec))
sys.path.insert(0, str(HERE.parent / "tests" / "integration"))
import world as kvworld  # noqa: E402
from ansible_cli import run_module  # noqa: E402


def relx_without_cookie_in_argv(root):
    """A copy of relx's bin/kvstore and its install_upgrade.escript that read the cookie from
    $HOME/.erlang.cookie (the node's private one) instead of passing it on command lines, where
    `ps` shows it. Nothing else changes: same erl_call, same escript, same release_handler calls."""
    script = (root / "bin" / "kvstore").read_text()
    escript = (root / "bin" / "install_upgrade.escript").read_text()
    patched_script = (script.replace(' -c "${COOKIE}"', "")
                      .replace("\"{'$REL_NAME', \\\"$NAME_TYPE\\\", '$NAME', '$COOKIE'}\"",
                               "\"{'$REL_NAME', \\\"$NAME_TYPE\\\", '$NAME', from_home}\"")
                      .replace("$ROOTDIR/bin/install_upgrade.escript", "$ROOTDIR/bin/bench_install_upgrade.escript"))
    patched_escript = escript.replace("erlang:set_cookie(node(), Cookie),", "_ = Cookie,")
    # the erl_call pings and the escript are what `upgrade` runs (erl_call is there from OTP 23 on)
    if script.count(' -c "${COOKIE}"') != 4 or "'$COOKIE'" in patched_script or "set_cookie(node(), Cookie)" in patched_escript:
        sys.exit("relx's scripts changed: cannot keep the cookie out of argv, so no baseline run")
    (root / "bin" / "bench_install_upgrade.escript").write_text(patched_escript)
    bench_script = root / "bin" / "bench-kvstore"
    bench_script.write_text(patched_script)
    bench_script.chmod(0o755)
    return bench_script


def back_to_1_0_0(node):
    answer = node.rpc('{release_handler:install_release("1.0.0"), release_handler:make_permanent("1.0.0")}')
    assert answer == '{{ok,"1.0.0",[]},ok}', answer
    shutil.copy2(node.root / "bin" / "kvstore-1.0.0", node.root / "bin" / "kvstore")


def on_2_0_0(node):
    return node.rpc("[{V, S} || {_, V, _, S} <- release_handler:which_releases(), S =:= permanent]") == '[{"2.0.0",permanent}]'


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--runs", type=int, default=7, help="runs of each tool (at least 5)")
    runs = max(parser.parse_args().runs, 5)

    tarballs = kvworld.build_world()
    epmd = kvworld.Epmd()
    os.environ["ERL_EPMD_PORT"] = str(epmd.port)
    root = kvworld.deploy(tarballs["1.0.0"])
    node = kvworld.Node(root)
    try:
        node.start()
        (root / "releases" / "2.0.0").mkdir()
        shutil.copy(tarballs["2.0.0"], root / "releases" / "2.0.0" / "kvstore.tar.gz")
        assert node.rpc('release_handler:unpack_release("2.0.0/kvstore")') == '{ok,"2.0.0"}'
        relx = relx_without_cookie_in_argv(root)
        relx_env = dict(os.environ, **node.env)
        pid = node.os_pid()
        relx_ms, module_ms, ansible_ms = [], [], []
        for run_index in range(runs):  # pylint: disable=unused-variable
            started = time.monotonic()
            done = subprocess.run([str(relx), "upgrade", "2.0.0"], cwd=str(root), env=relx_env, stdin=subprocess.DEVNULL,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False)
            relx_ms.append((time.monotonic() - started) * 1000)
            assert done.returncode == 0 and on_2_0_0(node), done.stdout
            back_to_1_0_0(node)

            started = time.monotonic()
            rc, result = run_module("upgrade", dict(root=str(root), version="2.0.0"))
            ansible_ms.append((time.monotonic() - started) * 1000)
            assert rc == 0 and result["changed"] and on_2_0_0(node), result
            module_ms.append(result["duration_ms"])
            back_to_1_0_0(node)
        assert node.os_pid() == pid
    finally:
        node.stop()
        epmd.stop()
        shutil.rmtree(root.parent, ignore_errors=True)

    relx_median = statistics.median(relx_ms)
    module_median = statistics.median(module_ms)
    print("runs of each: %d (1.0.0 -> 2.0.0 on one relx node, OS pid unchanged throughout)" % runs)
    print("relx bin/kvstore upgrade, wall:           median %7.1f ms  (%s)" % (relx_median, ", ".join("%.0f" % x for x in relx_ms)))
    print("otp.release.upgrade, module duration_ms:  median %7.1f ms  (%s)  ratio %.2f" % (
        module_median, ", ".join("%d" % x for x in module_ms), module_median / relx_median))
    print("otp.release.upgrade, whole ansible-playbook run: median %7.1f ms  ratio %.2f" % (
        statistics.median(ansible_ms), statistics.median(ansible_ms) / relx_median))


if __name__ == "__main__":
    main()
