"""Time of the relup review from the files of an extracted release root: reading both versions' .rel,
the relup, the beams of the applications whose version changes, and the review itself (no node facts),
for each path of the kvstore world; medians over --runs, in ms. Compare them with an upgrade's
duration_ms (bench/upgrade_vs_relx.py) for the review's share of a plan."""

import argparse
import importlib.util
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def load(name, path):
    spec = importlib.util.spec_from_file_location(name, str(path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


load("otp_release_tests_conftest", HERE.parent / "tests" / "conftest.py")
world = load("otp_release_test_review", HERE.parent / "tests" / "unit" / "plugins" / "module_utils" / "test_review.py")

PATHS = [
    ("1.0.0", "2.0.0", True), ("2.0.0", "3.0.0", True), ("3.0.0", "2.0.0", False), ("2.0.0", "1.0.0", False),
    ("1.0.0", "2.0.0-forgets", True), ("1.0.0", "2.0.0-unadded", True), ("1.0.0", "2.0.0-supervisor", True),
    ("1.0.0", "2.0.0-nocodechange", True), ("2.0.0-ticker", "2.0.0-ticker-purge", True),
]


def timed_review(base, from_version, to_version, upgrade):
    """A fresh Release per run, so that .rel files and beams are read each time."""
    started = time.perf_counter()
    releases = {v: world.Release(base / v, v) for v in (from_version, to_version)}
    findings = world.review_path(releases, from_version, to_version, upgrade)
    return (time.perf_counter() - started) * 1000, findings


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--runs", type=int, default=21, help="reviews per path (at least 5)")
    runs = max(5, parser.parse_args().runs)
    tarballs = world.build_world()
    with tempfile.TemporaryDirectory(prefix="relup-review-bench-") as work:
        base = Path(work)
        for version in {v for path in PATHS for v in path[:2]}:
            world.extract(tarballs[version], base / version)
        print("{0:<42} {1:>9} {2:>9}  findings".format("path", "median ms", "max ms"))
        medians = []
        for from_version, to_version, upgrade in PATHS:
            times, findings = [], None
            for _run in range(runs):
                elapsed, findings = timed_review(base, from_version, to_version, upgrade)
                times.append(elapsed)
            medians.append(statistics.median(times))
            label = "{0} -> {1} ({2})".format(from_version, to_version, "up" if upgrade else "down")
            print("{0:<42} {1:>9.2f} {2:>9.2f}  {3}".format(
                label, medians[-1], max(times), ", ".join(f["kind"] for f in findings) or "-"))
        print("largest median: {0:.2f} ms".format(max(medians)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
