"""Median downtime of a restart (otp.release.upgrade / downgrade with strategy: restart) of one kvstore node, relx
release 1.0.0 <-> 3.0.0 (no relup path between them), per node and run. See bench/README.md.

The downtime is the module's own `downtime_ms`: from the old node's last answer (to init:stop()) to the new node's
first answer with every application started. Also printed, for context: the module's whole `duration_ms` and the
wall time of the ansible-playbook run. The runs alternate up and down on the same nodes."""

import argparse
import importlib.util
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
# tests/conftest.py makes this checkout the otp.release collection for ansible (ANSIBLE_COLLECTIONS_PATH)
_spec = importlib.util.spec_from_file_location("otp_release_tests_conftest", str(HERE.parent / "tests" / "conftest.py"))
_spec.loader.exec_module(importlib.util.module_from_spec(_spec))
sys.path.insert(0, str(HERE.parent / "tests" / "integration"))
import world as kvworld  # noqa: E402
from ansible_cli import run_module  # noqa: E402


def restart(node, module, version):
    started = time.monotonic()
    rc, result = run_module(module, dict(root=str(node.root), version=version, strategy="restart"))
    wall_ms = (time.monotonic() - started) * 1000
    if rc != 0 or result.get("method") != "restart" or result.get("to_version") != version:
        sys.exit("%s to %s failed: %s" % (module, version, result.get("msg", result)))
    return result["downtime_ms"], result["duration_ms"], wall_ms


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="restarts per node (at least 2: up, then down)")
    parser.add_argument("--nodes", type=int, default=2)
    args = parser.parse_args()
    world = kvworld.build_world()
    epmd = kvworld.Epmd()
    os.environ["ERL_EPMD_PORT"] = str(epmd.port)
    work = Path(tempfile.mkdtemp(prefix="restart-bench-"))
    nodes = []
    try:
        for index in range(args.nodes):
            root = kvworld.deploy(world["1.0.0"], work / ("node%d" % index) / "root")
            node = kvworld.Node(root, env={"KVSTORE_DB": str(work / ("kv%d.db" % index))})
            nodes.append(node)
            node.start()
            rc, result = run_module("unpack", dict(root=str(root), src=world["3.0.0"]))
            if rc != 0:
                sys.exit("unpack failed: %s" % result.get("msg"))
        samples = dict((node.name, []) for node in nodes)
        for run in range(max(args.runs, 2)):
            module, version = ("upgrade", "3.0.0") if run % 2 == 0 else ("downgrade", "1.0.0")
            for node in nodes:
                samples[node.name].append(restart(node, module, version))
        print("%-28s %14s %14s %14s" % ("node", "downtime ms", "module ms", "playbook ms"))
        for name, runs in samples.items():
            print("%-28s %14.0f %14.0f %14.0f" % (name, statistics.median(r[0] for r in runs),
                                                  statistics.median(r[1] for r in runs), statistics.median(r[2] for r in runs)))
        every = [r[0] for runs in samples.values() for r in runs]
        print("median downtime over %d restarts of %d nodes: %.0f ms (min %d, max %d)"
              % (len(every), len(nodes), statistics.median(every), min(every), max(every)))
    finally:
        for node in nodes:
            node.stop()
        epmd.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
