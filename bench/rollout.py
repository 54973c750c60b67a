"""A rollout 1.0.0 -> 2.0.0 on N local nodes (N = 4, 8, 16 by default), five ways, all from one Python process;
fresh nodes on 1.0.0 for every run, the ways taking turns; medians over --runs. See bench/README.md.

(a) relx: a shell loop of relx's own `bin/kvstore upgrade 2.0.0` per node, the tarball copied into releases/ first
(b) plain: the playbook users write today: copy the tarball, `command: bin/kvstore upgrade 2.0.0`, serial 1
(c) ours: `otp.release.migrate_then_upgrade` (check, stage and plan in parallel, migrate, switch serial 1)
(d) ours again: its no-op re-run on the upgraded nodes
(e) plain again: the plain playbook's re-run on the upgraded nodes"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from upgrade_vs_relx import kvworld, relx_without_cookie_in_argv  # also puts tests/integration on sys.path
from ansible_cli import run_playbook  # noqa: E402  pylint: disable=wrong-import-order

PLAIN = [{"hosts": "otp_release", "gather_facts": False, "serial": 1, "tasks": [
    {"name": "Make the version's directory", "ansible.builtin.file": {
        "path": "{{ otp_release_root }}/releases/{{ otp_release_version }}", "state": "directory", "mode": "0755"}},
    {"name": "Copy the new release's tarball", "ansible.builtin.copy": {
        "src": "{{ otp_release_src }}", "dest": "{{ otp_release_root }}/releases/{{ otp_release_version }}/kvstore.tar.gz",
        "mode": "0644"}},
    {"name": "Upgrade with relx's script", "ansible.builtin.command": {
        "argv": ["{{ otp_release_root }}/bin/bench-kvstore", "upgrade", "{{ otp_release_version }}"],
        "chdir": "{{ otp_release_root }}"},
     "environment": "{{ otp_release_node_env }}",
     "register": "upgraded", "changed_when": "'already installed' not in upgraded.stdout"}]}]


def fleet(tarballs, work, size, database):
    nodes = {}
    for index in range(1, size + 1):
        node = kvworld.Node(kvworld.deploy(kvworld.tarball_path(tarballs, "1.0.0")), env={"KVSTORE_DB": str(database)})
        node.start()
        relx_without_cookie_in_argv(node.root)
        nodes["app%d" % index] = node
    inventory = work / "inventory.ini"
    inventory.write_text("[otp_release]\n" + "".join(
        "%s ansible_connection=local ansible_python_interpreter=%s otp_release_root=%s otp_release_cookie_file=%s "
        "otp_release_node_env='%s'\n" % (host, sys.executable, node.root, node.cookie_file, json.dumps(node.env))
        for host, node in nodes.items()))
    return nodes, inventory


def timed(step):
    started = time.perf_counter()
    step()
    return time.perf_counter() - started


def relx_loop(nodes, tarball):
    for node in nodes.values():
        (node.root / "releases" / "2.0.0").mkdir(exist_ok=True)
        shutil.copy(tarball, node.root / "releases" / "2.0.0" / "kvstore.tar.gz")
        done = subprocess.run([str(node.root / "bin" / "bench-kvstore"), "upgrade", "2.0.0"], cwd=str(node.root),
                              env=dict(os.environ, **node.env), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, check=False)
        if done.returncode != 0:
            sys.exit(done.stdout)


def playbook(path, extra, inventory):
    rc, output = run_playbook(path, extra, inventory=inventory, interpreter=None)
    if rc != 0:
        sys.exit(output[-3000:])


def one_run(tarballs, size, way):
    """Seconds of one way on fresh nodes; ways c and b also time their re-runs (d, e)."""
    with tempfile.TemporaryDirectory(prefix="otp-release-bench-") as work:
        work = Path(work)
        database = work / "kvstore.db"
        nodes, inventory = fleet(tarballs, work, size, database)
        try:
            src = str(kvworld.tarball_path(tarballs, "2.0.0"))
            if way == "relx":
                return {"a": timed(lambda: relx_loop(nodes, src))}
            if way == "plain":
                plain = work / "plain.yml"
                plain.write_text(json.dumps(PLAIN))
                extra = dict(otp_release_src=src, otp_release_version="2.0.0")
                return {"b": timed(lambda: playbook(plain, extra, inventory)), "e": timed(lambda: playbook(plain, extra, inventory))}
            extra = dict(otp_release_src=src, otp_release_version="2.0.0", otp_release_name="kvstore",
                         otp_release_migrate_mfa=dict(module="kv_migrate", function="run"),
                         otp_release_health_mfa=dict(module="kvstore", function="health"),
                         otp_release_environment=dict(KVSTORE_DB=str(database)))
            first = timed(lambda: playbook("otp.release.migrate_then_upgrade", extra, inventory))
            return {"c": first, "d": timed(lambda: playbook("otp.release.migrate_then_upgrade", extra, inventory))}
        finally:
            for node in nodes.values():
                node.stop()
                shutil.rmtree(node.root.parent, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--runs", type=int, default=3, help="runs of each way per size (at least 3)")
    parser.add_argument("--sizes", default="4,8,16", help="numbers of nodes")
    options = parser.parse_args()
    runs = max(3, options.runs)
    sizes = [int(size) for size in options.sizes.split(",")]
    tarballs = kvworld.build_world()
    epmd = kvworld.Epmd()
    os.environ["ERL_EPMD_PORT"] = str(epmd.port)
    medians = {}
    try:
        for size in sizes:
            samples = {}
            for _run in range(runs):
                for way in ("relx", "plain", "ours"):
                    for key, seconds in one_run(tarballs, size, way).items():
                        samples.setdefault(key, []).append(seconds)
            medians[size] = dict((key, statistics.median(values)) for key, values in samples.items())
    finally:
        epmd.stop()
    print("medians of %d runs, seconds (a relx loop, b plain playbook, c ours, d ours re-run, e plain re-run)" % runs)
    print("%4s %7s %7s %7s %7s %7s   %6s %6s %6s" % ("N", "a", "b", "c", "d", "e", "c/b", "c/a", "d/e"))
    for size, m in sorted(medians.items()):
        print("%4d %7.2f %7.2f %7.2f %7.2f %7.2f   %6.2f %6.2f %6.2f" % (
            size, m["a"], m["b"], m["c"], m["d"], m["e"], m["c"] / m["b"], m["c"] / m["a"], m["d"] / m["e"]))
    if len(medians) > 1:
        low, high = min(medians), max(medians)
        print("cost per added host (%d -> %d): %s" % (low, high, ", ".join(
            "%s %.2f s" % (key, (medians[high][key] - medians[low][key]) / (high - low)) for key in "abcde")))


if __name__ == "__main__":
    main()
