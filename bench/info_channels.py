"""Median time of one otp.release.info call (Session.gather(): RELEASES, process discovery and one round
trip to the node) through the bundled erl_call against the hidden control VM fallback, on the same node,
in turns, from one Python process. The erl_call run is the baseline: the ratio is hidden_vm / erl_call."""

import argparse
import importlib.util
import os
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("otp_release_tests_conftest", str(HERE.parent / "tests" / "conftest.py"))
_spec.loader.exec_module(importlib.util.module_from_spec(_spec))
sys.path.insert(0, str(HERE.parent / "tests" / "integration"))
import world as kvworld  # noqa: E402
from ansible_collections.otp.release.plugins.module_utils._session import Session  # noqa: E402


def timed_gather(root, cookie_file, channel):
    started = time.perf_counter()
    facts = Session(str(root), cookie_file=str(cookie_file), channel=channel).gather()
    elapsed_ms = (time.perf_counter() - started) * 1000
    assert facts["running"] and facts["channel"] == channel, facts
    return elapsed_ms


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--runs", type=int, default=9, help="calls through each channel (at least 5)")
    runs = max(5, parser.parse_args().runs)
    tarballs = kvworld.build_world()
    epmd = kvworld.Epmd()
    os.environ["ERL_EPMD_PORT"] = str(epmd.port)
    node = None
    try:
        node = kvworld.Node(kvworld.deploy(kvworld.tarball_path(tarballs, "1.0.0")))
        node.start()
        times = {"erl_call": [], "hidden_vm": []}
        for _round in range(runs):
            for channel in times:
                times[channel].append(timed_gather(node.root, node.cookie_file, channel))
        baseline = statistics.median(times["erl_call"])
        for channel, samples in times.items():
            median = statistics.median(samples)
            print("%-9s median %7.1f ms  (min %6.1f, max %6.1f, n=%d)  ratio to erl_call %5.1f"
                  % (channel, median, min(samples), max(samples), len(samples), median / baseline))
    finally:
        if node:
            node.stop()
        epmd.stop()


if __name__ == "__main__":
    main()
