"""The relup review over the real relups and beams of the kvstore world (tests/world/build.py), and its
node-side expressions against a real Erlang VM."""

import importlib.util
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from ansible_collections.otp.release.plugins.module_utils import _review
from ansible_collections.otp.release.plugins.module_utils._beam import read_ebin
from ansible_collections.otp.release.plugins.module_utils._erlterm import parse, parse_all

pytestmark = pytest.mark.skipif(
    not (shutil.which("erl") and Path("/usr/bin/rebar3").exists()),
    reason="needs Erlang and rebar3 to build the test world (tests/run.sh system)")

BUILD_SCRIPT = Path(__file__).resolve().parents[4] / "tests" / "world" / "build.py"


def build_world():
    spec = importlib.util.spec_from_file_location("kvstore_world_build", str(BUILD_SCRIPT))
    builder = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(builder)
    return builder.build_world()


def extract(tarball, root):
    """The parts of a release tarball the review reads: releases/ and the beams of lib/kvstore-*."""
    with tarfile.open(tarball) as tar:
        members = [m for m in tar if m.isfile() and (
            m.name.startswith("releases/") or (m.name.startswith("lib/kvstore-") and "/ebin/" in m.name))]
        # The "data" filter (Python 3.11.4+) refuses links and paths out of root.
        options = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
        tar.extractall(str(root), members=members, **options)


class Release(object):
    """One world release extracted into a directory of its own."""

    def __init__(self, root, version):
        self.root = Path(root)
        self.version = version
        _release, _name_vsn, _erts, apps = parse((self.root / "releases" / version / "kvstore.rel").read_text())
        self.app_vsns = {str(app[0]): str(app[1]) for app in apps}

    def apps(self, names):
        """{app: {"vsn", "modules"}}, modules read for the named apps only."""
        return {
            app: {"vsn": vsn, "modules": read_ebin(str(self.root / "lib" / "{0}-{1}".format(app, vsn) / "ebin"))
                  if app in names else {}}
            for app, vsn in self.app_vsns.items()
        }

    def relup(self):
        return parse_all((self.root / "releases" / self.version / "relup").read_text())[0]


def script(running, target, upgrade):
    """The instructions that take running to target: an up path in target's relup, a down path in
    running's."""
    _vsn, up, down = (target if upgrade else running).relup()
    entries, other = (up, running) if upgrade else (down, target)
    return next(instructions for vsn, _descr, instructions in entries if vsn == other.version)


def review_path(releases, from_version, to_version, upgrade=True, node=None):
    running, target = releases[from_version], releases[to_version]
    changed = {app for app in set(running.app_vsns) | set(target.app_vsns)
               if running.app_vsns.get(app) != target.app_vsns.get(app)}
    return _review.review(script(running, target, upgrade), running.apps(changed), target.apps(changed), node)


@pytest.fixture(scope="module")
def releases(tmp_path_factory):
    base = tmp_path_factory.mktemp("world")
    found = {}
    for name, tarball in build_world().items():
        if tarball.endswith("kvstore-{0}.tar.gz".format(name)) and (name[0].isdigit() and "noerts" not in name):
            extract(tarball, base / name)
            found[name] = Release(base / name, name)
    return found


def kinds(findings):
    return sorted((f["kind"], f["module"]) for f in findings)


@pytest.mark.parametrize("from_version, to_version, upgrade", [
    ("1.0.0", "2.0.0", True), ("2.0.0", "3.0.0", True), ("3.0.0", "2.0.0", False), ("2.0.0", "1.0.0", False),
    ("1.0.0", "2.0.0-ticker", True), ("2.0.0-ticker", "1.0.0", False),
    ("2.0.0-ticker", "2.0.0-ticker-purge", True), ("2.0.0-ticker-purge", "2.0.0-ticker", False),
])
def test_good_paths_review_clean(releases, from_version, to_version, upgrade):
    assert review_path(releases, from_version, to_version, upgrade) == []


@pytest.mark.parametrize("from_version, to_version, upgrade, expected", [
    ("1.0.0", "2.0.0-forgets", True, [("not_loaded", "kv_server")]),
    ("2.0.0-forgets", "1.0.0", False, [("not_loaded", "kv_server")]),
    ("1.0.0", "2.0.0-unadded", True, [("added_not_loaded", "kv_migrate")]),
    ("2.0.0-unadded", "1.0.0", False, [("removed_not_deleted", "kv_migrate")]),
    ("1.0.0", "2.0.0-supervisor", True, [("supervisor_not_updated", "kvstore_sup")]),
    ("2.0.0-supervisor", "1.0.0", False, [("supervisor_not_updated", "kvstore_sup")]),
    ("1.0.0", "2.0.0-nocodechange", True, [("update_without_code_change", "kv_server")]),
    ("2.0.0-nocodechange", "1.0.0", False, [("update_without_code_change", "kv_server")]),
])
def test_fault_builds_give_exactly_their_finding(releases, from_version, to_version, upgrade, expected):
    findings = review_path(releases, from_version, to_version, upgrade)
    assert kinds(findings) == expected
    finding = findings[0]
    assert finding["app"] == "kvstore" and finding["module"] in finding["msg"] and finding["detail"]


def test_forgotten_module_sentence_says_what_to_add(releases):
    [finding] = review_path(releases, "1.0.0", "2.0.0-forgets")
    assert "{update, kv_server, {advanced, []}}" in finding["msg"] and "kvstore.appup" in finding["msg"]
    assert "1.0.0 -> 2.0.0-forgets" in finding["msg"]


def erl(releases, version, prelude, expression):
    """Start a plain VM with the version's kvstore beams, run prelude, print expression's value."""
    ebin = releases[version].root / "lib" / "kvstore-{0}".format(version) / "ebin"
    return subprocess.run(
        ["erl", "-noshell", "-noinput", "-pa", str(ebin), "-eval",
         prelude + ' io:format("~0p", [' + expression + "]), halt()."],
        stdout=subprocess.PIPE, check=True, text=True, timeout=60,
    ).stdout


def test_process_running_a_fun_that_the_purge_kills(releases):
    """kv_ticker's process runs its own fun; the ticker -> ticker-purge relup loads kv_ticker again with
    brutal_purge. kvstore_db got old code by a second load (nothing runs it)."""
    modules = ["kv_ticker", "kvstore_db", "kv_server"]
    prelude = ("{ok, Ticker} = kv_ticker:start(), {module, _} = code:ensure_loaded(kvstore_db),"
               " {module, _} = code:load_file(kvstore_db), io:format(\"~p \", [Ticker]),")
    output = erl(releases, "2.0.0-ticker", prelude, _review.node_facts_expr(modules))
    ticker_pid, term = output.split(" ", 1)
    facts = _review.parse_node_facts(parse(term))
    assert facts["kv_ticker"] == {
        "old_code": False, "old_code_procs": [], "procs": [{"pid": ticker_pid, "name": "kv_ticker"}]}
    assert facts["kvstore_db"] == {"old_code": True, "old_code_procs": [], "procs": []}
    assert facts["kv_server"] == {"old_code": False, "old_code_procs": [], "procs": []}

    findings = review_path(releases, "2.0.0-ticker", "2.0.0-ticker-purge", node=facts)
    assert kinds(findings) == [("old_code_present", "kvstore_db"), ("purge_kills", "kv_ticker")]
    [killed] = [f for f in findings if f["kind"] == "purge_kills"]
    assert ticker_pid in killed["msg"] and "(kv_ticker)" in killed["msg"]


def test_process_already_on_old_code(releases):
    """A second load of kv_ticker leaves its process on old code: check_process_code/2 sees it."""
    prelude = "{ok, _} = kv_ticker:start(), {module, _} = code:load_file(kv_ticker),"
    output = erl(releases, "2.0.0-ticker", prelude, _review.node_facts_expr(["kv_ticker"]))
    facts = _review.parse_node_facts(parse(output))
    assert facts["kv_ticker"]["old_code"] is True
    assert [p["name"] for p in facts["kv_ticker"]["old_code_procs"]] == ["kv_ticker"]
    assert kinds(review_path(releases, "2.0.0-ticker", "2.0.0-ticker-purge", node=facts)) == [
        ("purge_kills", "kv_ticker")]
    # A path that leaves kv_ticker alone: the old code is reported, nobody is killed.
    assert kinds(_review.review([], {}, {}, facts)) == [("old_code_present", "kv_ticker")]


def test_post_check_names_the_module_still_on_old_code(releases):
    running, target = releases["2.0.0-ticker"], releases["2.0.0-ticker-purge"]
    expected = _review.expected_code(running.apps({"kvstore"}), target.apps({"kvstore"}))
    assert expected == {"kv_ticker": target.apps({"kvstore"})["kvstore"]["modules"]["kv_ticker"].md5}
    expression = _review.loaded_code_expr(sorted(expected) + ["kv_missing"])

    # The VM runs the running version's code, as after a relup that forgot kv_ticker.
    loaded = _review.parse_loaded_code(parse(erl(releases, "2.0.0-ticker", "{module, _} = code:ensure_loaded(kv_ticker),", expression)))
    assert loaded["kv_missing"] == {"path": None, "md5": None}
    assert loaded["kv_ticker"]["path"].endswith("lib/kvstore-2.0.0-ticker/ebin/kv_ticker.beam")
    assert kinds(_review.still_old(expected, loaded)) == [("still_old_code", "kv_ticker")]

    loaded = _review.parse_loaded_code(parse(erl(releases, "2.0.0-ticker-purge", "{module, _} = code:ensure_loaded(kv_ticker),", expression)))
    assert _review.still_old(expected, loaded) == []


# Pure cases that the world does not build: applications added and removed, high-level instructions.

def beam(md5, exports=(), behaviours=()):
    from ansible_collections.otp.release.plugins.module_utils._beam import Beam
    return Beam("m", md5, frozenset(exports), tuple(behaviours))


def app(vsn, **modules):
    return {"vsn": vsn, "modules": modules}


def test_applications_added_and_removed():
    running = {"old_app": app("1", om=beam("a")), "kernel": app("8")}
    target = {"new_app": app("1", nm=beam("b")), "kernel": app("8")}
    assert kinds(_review.review([], running, target)) == [
        ("app_added_not_started", None), ("app_removed_not_stopped", None)]
    low_level = [("apply", ("application", "stop", ["old_app"])), ("remove", ("om", "brutal_purge", "brutal_purge")),
                 ("load", ("nm", "brutal_purge", "brutal_purge")), ("apply", ("application", "start", ["new_app", "permanent"]))]
    assert _review.review(low_level, running, target) == []
    high_level = [("add_application", "new_app"), ("remove_application", "old_app")]
    assert _review.review(high_level, running, target) == []


def test_high_level_update_forms():
    running = {"a": app("1", sup=beam("s1", behaviours=["supervisor"]), srv=beam("v1", [("code_change", 3)]))}
    target = {"a": app("2", sup=beam("s2", behaviours=["supervisor"]), srv=beam("v2"))}
    findings = _review.review([("update", "sup", "supervisor"), ("update", "srv", ("advanced", []))], running, target)
    assert kinds(findings) == [("update_without_code_change", "srv")]
    assert kinds(_review.review([("update", "srv", "soft"), ("load_module", "sup")], running, target)) == [
        ("supervisor_not_updated", "sup")]


@pytest.mark.parametrize("mode, findings, decision", [
    ("strict", [{"kind": "not_loaded"}], "refuse"), ("warn", [{"kind": "not_loaded"}], "warn"),
    ("off", [{"kind": "not_loaded"}], "ok"), ("strict", [], "ok"),
])
def test_decide(mode, findings, decision):
    assert _review.decide(findings, mode) == decision


def test_decide_rejects_unknown_mode():
    with pytest.raises(ValueError, match="strict, warn, off"):
        _review.decide([], "lenient")


def test_suspended_processes_are_not_killed_by_the_load():
    """A process in kv_server's code when the node is asked: a plain load leaves it on old code and the purge kills
    it; with suspend (what update does) it waits in gen_server's loop while kv_server is loaded."""
    running, target = {"a": app("1", srv=beam("v1"))}, {"a": app("2", srv=beam("v2"))}
    facts = {"srv": {"old_code": False, "old_code_procs": [], "procs": [{"pid": "<0.90.0>", "name": "srv"}]}}
    load = ("load", ("srv", "brutal_purge", "brutal_purge"))
    assert kinds(_review.review([load], running, target, facts)) == [("purge_kills", "srv")]
    assert _review.review([("suspend", [("srv", 5000)]), load, ("resume", ["srv"])], running, target, facts) == []
    assert _review.review([("update", "srv", "soft")], running, target, facts) == []
    assert _review.purged_modules([load], running, target) == ["srv"]
    assert _review.purged_modules([("load_module", "srv", "soft_purge", "soft_purge")], running, target) == ["srv"]
    assert _review.purged_modules([("apply", ("m", "f", []))], running, target) == []
