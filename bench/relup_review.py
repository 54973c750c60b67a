"""Time of the relup review. First inside real upgrades 1.0.0 -> 2.0.0 of one kvstore node (the module's code
in this process, on the same node, relup_review off and warn in turns): the review's own time (the .rel files,
the beams, the one round trip for node facts, the post-check's parsing; the post-check's node side rides on the
install call) against the upgrade's duration_ms, as medians and their ratio. Then from the files of extracted
releases alone (no node), for each path of the kvstore world, with its findings; medians over --runs, in ms."""

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


def load(name, path):
    spec = importlib.util.spec_from_file_location(name, str(path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


load("otp_release_tests_conftest", HERE.parent / "tests" / "conftest.py")
world = load("otp_release_test_review", HERE.parent / "tests" / "unit" / "plugins" / "module_utils" / "test_review.py")
relx_bench = load("otp_release_bench_upgrade_vs_relx", HERE / "upgrade_vs_relx.py")
kvworld = relx_bench.kvworld
from ansible_collections.otp.release.plugins.module_utils import _change  # noqa: E402  pylint: disable=wrong-import-position
from ansible_collections.otp.release.plugins.module_utils._session import Session  # noqa: E402  pylint: disable=wrong-import-position

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


class Timed(object):
    """Wraps a function of _change and adds up the time spent in it."""

    def __init__(self, name):
        self.name, self.function, self.ms = name, getattr(_change, name), 0.0
        setattr(_change, name, self)

    def __call__(self, *args):
        started = time.perf_counter()
        try:
            return self.function(*args)
        finally:
            self.ms += (time.perf_counter() - started) * 1000

    def take(self):
        spent, self.ms = self.ms, 0.0
        return spent


def upgrade_once(node, mode, timers):
    """(duration_ms, review ms) of one upgrade 1.0.0 -> 2.0.0 in this process, then back to 1.0.0 (not timed)."""
    session = Session(str(node.root), cookie_file=str(node.cookie_file))
    result = _change.change(session, "2.0.0", "up", _change.ChangeOptions(relup_review=mode))
    assert result["changed"] and result["current"] == "2.0.0" and result["relup_review"] == [], result
    review_ms = sum(timer.take() for timer in timers)
    relx_bench.back_to_1_0_0(node)
    return result["duration_ms"], review_ms


def in_upgrade(runs, tarballs):
    epmd = kvworld.Epmd()
    os.environ["ERL_EPMD_PORT"] = str(epmd.port)
    node = kvworld.Node(kvworld.deploy(tarballs["1.0.0"]))
    timers = [Timed("review_plan"), Timed("confirm")]
    samples = {"off": [], "warn": []}
    try:
        node.start()
        (node.root / "releases" / "2.0.0").mkdir()
        shutil.copy(tarballs["2.0.0"], str(node.root / "releases" / "2.0.0" / "kvstore.tar.gz"))
        assert node.rpc('release_handler:unpack_release("2.0.0/kvstore")') == '{ok,"2.0.0"}'
        pid = node.os_pid()
        for _run in range(runs):
            for mode in samples:
                samples[mode].append(upgrade_once(node, mode, timers))
        assert node.os_pid() == pid
    finally:
        node.stop()
        epmd.stop()
        shutil.rmtree(str(node.root.parent), ignore_errors=True)
    off, warn = [d for d, _r in samples["off"]], [d for d, _r in samples["warn"]]
    review = [r for _d, r in samples["warn"]]
    print("in an upgrade 1.0.0 -> 2.0.0 of one node, %d runs each (OS pid unchanged throughout):" % runs)
    print("  duration_ms, relup_review off:  median %6.1f ms  (%s)" % (statistics.median(off), ", ".join("%d" % x for x in off)))
    print("  duration_ms, relup_review warn: median %6.1f ms  (%s)" % (statistics.median(warn), ", ".join("%d" % x for x in warn)))
    print("  the review inside those upgrades: median %6.1f ms  (%s)  ratio to duration_ms (warn) %.3f" % (
        statistics.median(review), ", ".join("%.1f" % x for x in review), statistics.median(review) / statistics.median(warn)))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--runs", type=int, default=21, help="reviews per path (at least 5); upgrades per mode: a third")
    runs = max(5, parser.parse_args().runs)
    tarballs = world.build_world()
    in_upgrade(max(5, runs // 3), tarballs)
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
