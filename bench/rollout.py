"""Wall time of the 3-node `ansible-playbook otp.release.migrate_then_upgrade` run (1.0.0 -> 2.0.0 with the
migration) and of its no-op re-run, against a baseline playbook with one `ping` task on the same three
hosts, all from one Python process. Each run gets three fresh nodes on 1.0.0; medians over --runs."""

import argparse
import importlib.util
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("otp_release_tests_conftest", str(HERE.parent / "tests" / "conftest.py"))
_spec.loader.exec_module(importlib.util.module_from_spec(_spec))
sys.path.insert(0, str(HERE.parent / "tests" / "integration"))
import world as kvworld  # noqa: E402
from ansible_cli import run_playbook  # noqa: E402

PING = [{"hosts": "otp_release", "gather_facts": False, "tasks": [{"name": "ping", "ansible.builtin.ping": {}}]}]


def timed(playbook, extra_vars, inventory):
    started = time.perf_counter()
    rc, output = run_playbook(playbook, extra_vars, inventory=inventory)
    elapsed = time.perf_counter() - started
    if rc != 0:
        sys.exit(output[-3000:])
    return elapsed


def one_run(tarballs, work):
    database = work / "kvstore.db"
    nodes = {}
    try:
        for index in range(1, 4):
            node = kvworld.Node(kvworld.deploy(kvworld.tarball_path(tarballs, "1.0.0")), env={"KVSTORE_DB": str(database)})
            node.start()
            nodes["app%d" % index] = node
        inventory = work / "inventory.ini"
        inventory.write_text("[otp_release]\n" + "".join(
            "%s ansible_connection=local otp_release_root=%s otp_release_cookie_file=%s\n" % (host, node.root, node.cookie_file)
            for host, node in nodes.items()))
        ping = work / "ping.yml"
        ping.write_text(repr(PING).replace("'", '"'))
        extra = dict(otp_release_src=str(kvworld.tarball_path(tarballs, "2.0.0")), otp_release_version="2.0.0",
                     otp_release_migrate_mfa=dict(module="kv_migrate", function="run"),
                     otp_release_health_mfa=dict(module="kvstore", function="health"),
                     otp_release_environment=dict(KVSTORE_DB=str(database)))
        baseline = timed(ping, {}, inventory)
        rollout = timed("otp.release.migrate_then_upgrade", extra, inventory)
        rerun = timed("otp.release.migrate_then_upgrade", extra, inventory)
        return baseline, rollout, rerun
    finally:
        for node in nodes.values():
            node.stop()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--runs", type=int, default=5, help="rollouts (at least 3)")
    runs = max(3, parser.parse_args().runs)
    tarballs = kvworld.build_world()
    epmd = kvworld.Epmd()
    os.environ["ERL_EPMD_PORT"] = str(epmd.port)
    samples = []
    try:
        for _run in range(runs):
            with tempfile.TemporaryDirectory(prefix="otp-release-bench-") as work:
                samples.append(one_run(tarballs, Path(work)))
    finally:
        epmd.stop()
    baseline = statistics.median(s[0] for s in samples)
    for label, index in (("ping play (baseline)", 0), ("migrate_then_upgrade", 1), ("no-op re-run", 2)):
        median = statistics.median(s[index] for s in samples)
        print("%-22s median %6.2f s  ratio to baseline %5.1f  (n=%d)" % (label, median, median / baseline, len(samples)))


if __name__ == "__main__":
    main()
