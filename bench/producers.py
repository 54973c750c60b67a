"""The modules' own time (duration_ms) of unpack, upgrade and downgrade for each producer: relx (kvstore 1.0.0 ->
2.0.0), a Distillery-shaped release (the same versions, Distillery's layout and tarballs) and `mix release` (kvex
0.1.0 -> 0.2.0, deployed without RELEASES as mix users do). Fresh node per run; medians over --runs."""

import argparse
import os
import shutil
import statistics

from upgrade_vs_relx import kvworld, run_module  # also puts tests/integration on sys.path

PRODUCERS = (
    ("relx", kvworld.Node, "1.0.0", "2.0.0", "1.0.0", "2.0.0", {}),
    ("distillery", kvworld.DistilleryNode, "distillery-1.0.0", "distillery-2.0.0", "1.0.0", "2.0.0", {}),
    ("mix", kvworld.MixNode, "mix-0.1.0", "mix-0.2.0", "0.1.0", "0.2.0", dict(releases_file=False)),
)


def one_run(tarballs, kind, old, new, old_version, new_version, deploy_options):
    root = kvworld.deploy(kvworld.tarball_path(tarballs, old), **deploy_options)
    node = kind(root)
    try:
        node.start()
        tarball = node.tarball(tarballs[new]) if hasattr(node, "tarball") else tarballs[new]
        times = {}
        for step, module, args in (("unpack", "unpack", dict(src=str(tarball))),
                                   ("upgrade", "upgrade", dict(version=new_version)),
                                   ("downgrade", "downgrade", dict(version=old_version))):
            rc, result = run_module(module, dict(root=str(root), **args))
            if rc != 0 or not result.get("changed"):
                raise SystemExit("%s %s failed: %s" % (kind.__name__, step, result.get("msg", result)))
            times[step] = result["duration_ms"]
        return times
    finally:
        node.stop()
        shutil.rmtree(root.parent, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--runs", type=int, default=5, help="runs per producer (at least 3)")
    runs = max(3, parser.parse_args().runs)
    tarballs = kvworld.build_world()
    epmd = kvworld.Epmd()
    os.environ["ERL_EPMD_PORT"] = str(epmd.port)
    try:
        print("module duration_ms, medians of %d runs" % runs)
        print("%-11s %8s %8s %10s" % ("producer", "unpack", "upgrade", "downgrade"))
        for name, kind, old, new, old_version, new_version, options in PRODUCERS:
            samples = [one_run(tarballs, kind, old, new, old_version, new_version, options) for _run in range(runs)]
            print("%-11s %8d %8d %10d" % (name, statistics.median(s["unpack"] for s in samples),
                                          statistics.median(s["upgrade"] for s in samples),
                                          statistics.median(s["downgrade"] for s in samples)))
    finally:
        epmd.stop()


if __name__ == "__main__":
    main()
