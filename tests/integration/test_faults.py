"""Faults, races and hostile input on real kvstore nodes: nothing lost, nothing misreported.

Each test names the item of the fault list it covers (docs in README "Limits and locks"). A test drives the
modules through ansible-playbook (or runs a module's own file as Ansible runs it on a host, when the test must
signal or race the module process) and asserts on what the node and the disk say, not on what the module says
alone: which_releases, the loaded code's version, the node's memory, byte listings of the root."""

import contextlib
import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from pathlib import Path

import pytest

import world as kvworld
from ansible_cli import run_module, run_playbook
from test_unpack import listing
from test_upgrade import LOAD_CLIENT, STOP_CLIENT, UNREADABLE

RELEASES = "lists:sort([{V, S} || {_, V, _, S} <- release_handler:which_releases()])"
GIB = 1 << 30


def assert_ok(rc, result):
    assert rc == 0 and not result.get("failed"), result.get("msg", result)


def assert_failed(rc, result, *words):
    assert rc != 0 and result.get("failed"), result
    for word in words:
        assert word in result["msg"], result["msg"]
    assert "Traceback" not in json.dumps(result) and "MODULE FAILURE" not in result["msg"], result


def run(name, root, check=False, **args):
    return run_module(name, dict(root=str(root), **args), check=check)


def place_tarball(world, node, version):
    """Unpack a world version on the node by hand, as an operator's earlier run would have."""
    (node.root / "releases" / version).mkdir()
    shutil.copy(world[version], node.root / "releases" / version / "kvstore.tar.gz")
    assert node.rpc('release_handler:unpack_release("{0}/kvstore")'.format(version)) == '{{ok,"{0}"}}'.format(version)


def node_state(node):
    """(loaded kv_server version, {version: state}) as the node says."""
    text = node.rpc("{kvstore:version(), %s}" % RELEASES)
    version = text.split('"')[1]
    pairs = text[text.index("[") + 1:text.rindex("]")]
    states = {}
    for item in pairs.split("},{"):
        vsn, state = item.strip("{}").split(",")
        states[vsn.strip('"')] = state
    return version, states


def migrate(node):
    """2.0.0 writes a column its migration adds: run it with 2.0.0's code first, as the migrate role does."""
    assert_ok(*run("eval", node.root, version="2.0.0", module="kv_migrate", function="run"))


# ---------------------------------------------------------------------------------------------------
# Running a module's own file as Ansible runs it on a host: a process the test can signal or race.

def module_process(module, args, tmpdir):
    """Start plugins/modules/<module>.py with its arguments in a 0600 file (next to tmpdir, not in it); TMPDIR is tmpdir."""
    args_file = Path(tmpdir).parent / ("args-%s-%d.json" % (module, time.monotonic_ns()))
    with os.fdopen(os.open(str(args_file), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as handle:
        json.dump({"ANSIBLE_MODULE_ARGS": args}, handle)
    env = dict(os.environ, TMPDIR=str(tmpdir), PYTHONPATH=os.environ["ANSIBLE_COLLECTIONS_PATH"])
    return subprocess.Popen([sys.executable, "-m", "ansible_collections.otp.release.plugins.modules." + module, str(args_file)],
                            env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def module_result(process, timeout=120):
    out, err = process.communicate(timeout=timeout)
    try:
        return json.loads(out)
    except ValueError:
        raise AssertionError("module printed no JSON (rc %s): %s %s" % (process.returncode, out[-2000:], err[-2000:]))


def homes_and_cookies(directory, cookie):
    """Private HOMEs of ours and any file holding the cookie under directory."""
    homes = sorted(p.name for p in Path(directory).iterdir() if p.name.startswith("otp-release-home-"))
    holding = []
    for path in Path(directory).rglob("*"):
        try:
            if path.is_file() and cookie.encode() in path.read_bytes():
                holding.append(str(path))
        except OSError:
            continue
    return homes, holding


def children_of(pid, name):
    return [p for p in kvworld.descendant_pids(pid) if (Path("/proc/%d/comm" % p).read_text().strip() if Path("/proc/%d/comm" % p).exists() else "") == name]


def wait_for(predicate, timeout=30, what="condition"):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("%s not met within %s s" % (what, timeout))
        time.sleep(0.05)


@contextlib.contextmanager
def stopped(pid):
    """The process is SIGSTOPped inside the block: calls to it hang; SIGCONT afterwards, whatever happens."""
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


# ---------------------------------------------------------------------------------------------------
# Item 8: eval output is capped

def test_eval_output_and_result_are_capped(world, deploy, tmp_path):
    """Item 8: a function printing 3 MB and one returning a 2.3 MB term. Before the cap the module captured every byte
    and returned it (50 MB printed took the controller to 5.1 GB); now the module reads the VM's output through a pipe
    that keeps max_output bytes (default 1 MiB) and drops the rest, the result text is cut in the VM, and both say
    truncated. Without the cap the stdout and result_text below would be 3 MB and 2.3 MB long."""
    root = deploy("2.0.0")
    rc, printed = run("eval", root, module="io", function="format", strings_as="charlist",
                      args=["~*c", [3 * 1000 * 1000, ord("x")]])
    assert_ok(rc, printed)
    assert printed["truncated"] is True and printed["result"] == "ok"
    assert set(printed["stdout"]) == {"x"} and len(printed["stdout"]) == 1 << 20
    rc, returned = run("eval", root, module="lists", function="seq", args=[1, 300000], max_output=65536)
    assert_ok(rc, returned)
    assert returned["truncated"] is True and returned["result"] is None
    assert returned["result_text"].startswith("[1,2,3,4,5,") and "cut: " in returned["result_text"]
    assert len(returned["result_text"]) < 65536 + 100
    rc, small = run("eval", root, module="lists", function="seq", args=[1, 3])
    assert_ok(rc, small)
    assert small["result"] == [1, 2, 3] and "truncated" not in small


# ---------------------------------------------------------------------------------------------------
# Item 10: values that would leave the root, and other input the modules must refuse cleanly

def run_tasks(tasks, check=False):
    """Run tasks (module FQCN -> args, plus task keywords) in one playbook on localhost, each with ignore_errors, and
    return their registered results in order."""
    with tempfile.TemporaryDirectory(prefix="faults-play-") as work:
        out = Path(work) / "results.json"
        play_tasks = []
        for index, task in enumerate(tasks):
            play_tasks.append(dict(task, register="r%d" % index, ignore_errors=True))
        collect = "{{ [%s] | to_json }}" % ", ".join("r%d" % i for i in range(len(tasks)))
        play_tasks.append({"ansible.builtin.copy": {"content": collect, "dest": str(out)}, "check_mode": False})
        text = json.dumps([{"hosts": "all", "gather_facts": False, "tasks": play_tasks}])
        # YAML's .nan and .inf, which JSON cannot write
        text = text.replace("NaN", ".nan").replace("Infinity", ".inf")
        play = Path(work) / "play.yml"
        play.write_text(text)
        rc, output = run_playbook(play, check=check)
        assert out.exists(), output[-5000:]
        return json.loads(out.read_text())


def test_versions_and_names_that_leave_the_root_are_refused_in_every_module(world, deploy, start_node, tmp_path):
    """Item 10: version=../../x made eval and verify_erts use a boot file outside the root; every module now refuses a
    version or name that is not one path component (and NUL, and overlong values) before touching anything."""
    node = start_node(deploy("1.0.0"))
    root = node.root
    outside = tmp_path / "x"
    (outside / "releases").mkdir(parents=True)
    before = listing(root)
    escape = os.path.relpath(str(outside), str(root / "releases"))
    bad_versions = ["../../x", escape, "/etc", "..", "a\x00b", "9" * 300]
    tasks = []
    for version in bad_versions:
        tasks += [
            {"otp.release.eval": dict(root=str(root), version=version, module="erlang", function="node")},
            {"otp.release.verify_erts": dict(root=str(root), version=version)},
            {"otp.release.upgrade": dict(root=str(root), version=version)},
            {"otp.release.downgrade": dict(root=str(root), version=version)},
            {"otp.release.remove": dict(root=str(root), version=version)},
            {"otp.release.unpack": dict(root=str(root), src=world["2.0.0"], remote_src=True, version=version)},
        ]
    tasks += [{"otp.release.info": dict(root=str(root), name=name)} for name in ("../kvstore", "x" * 20000, "")]
    results = run_tasks(tasks)
    for task, result in zip(tasks, results):
        assert result.get("failed") and result.get("msg"), (task, result)
        # a NUL never reaches our code: AnsibleModule refuses it first, logging the arguments
        words = ("not a plain", "too long", "NUL", "embedded null character")
        assert any(word in result["msg"] for word in words), (task, result["msg"])
        assert "Traceback" not in json.dumps(result)
    assert listing(root) == before and sorted(os.listdir(str(outside))) == ["releases"]
    assert node_state(node) == ("1.0.0", {"1.0.0": "permanent"})


def test_eval_check_mode_nan_args_and_long_atoms(deploy):
    """Item 10: eval's check mode accepts modules ERTS preloads (erlang); .nan/.inf arguments and 20,000-character
    module names fail with a sentence, not an unhandled error or an empty message."""
    root = deploy("2.0.0")
    results = run_tasks([
        {"otp.release.eval": dict(root=str(root), module="erlang", function="node"), "check_mode": True},
        {"otp.release.eval": dict(root=str(root), module="nomodule", function="x"), "check_mode": True},
        {"otp.release.eval": dict(root=str(root), module="erlang", function="abs", args=[float("nan")])},
        {"otp.release.eval": dict(root=str(root), module="erlang", function="abs", args=[float("inf")])},
        {"otp.release.eval": dict(root=str(root), module="m" * 20000, function="run")},
        {"otp.release.eval": dict(root=str(root), module="erlang", function="f" * 20000)},
        {"otp.release.eval": dict(root=str(root), module="erlang", function="node")},
    ])
    preloaded, missing, nan, inf, long_module, long_function, ran = results
    assert not preloaded.get("failed") and preloaded["skipped_in_check_mode"], preloaded
    assert missing["failed"] and "no nomodule.beam" in missing["msg"]
    assert nan["failed"] and "not an Erlang number" in nan["msg"] and "nan" in nan["msg"]
    assert inf["failed"] and "not an Erlang number" in inf["msg"]
    assert long_module["failed"] and "module" in long_module["msg"] and "too long" in long_module["msg"]
    assert long_function["failed"] and "too long" in long_function["msg"]
    assert not ran.get("failed") and ran["result"] == "nonode@nohost"


def test_remote_src_rerun_without_the_tarball_and_failed_upgrade_after_unpack(world, deploy, start_node, tmp_path):
    """Item 10: a remote_src re-run whose tarball is gone failed although the node knows the version (now changed
    false); a failed upgrade src= that did unpack said changed false (now true, with the unpack step)."""
    node = start_node(deploy("1.0.0"))
    tarball = tmp_path / "kvstore-2.0.0.tar.gz"
    shutil.copy(world["2.0.0"], tarball)
    rc, first = run("unpack", node.root, src=str(tarball), remote_src=True)
    assert_ok(rc, first)
    assert first["changed"] is True
    tarball.unlink()
    rc, again = run("unpack", node.root, src=str(tarball), remote_src=True, version="2.0.0")
    assert_ok(rc, again)
    assert (again["changed"], again["version"], again["method"]) == (False, "2.0.0", "none")
    rc, unknown = run("unpack", node.root, src=str(tarball), remote_src=True, version="3.0.0")
    assert_failed(rc, unknown)
    assert node_state(node) == ("1.0.0", {"1.0.0": "permanent", "2.0.0": "unpacked"})

    # 2.0.0-ticker-purge's relup goes up from 2.0.0-ticker only: the unpack works, the upgrade is refused
    rc, failed = run("upgrade", node.root, src=world["2.0.0-ticker-purge"])
    assert_failed(rc, failed, "no upgrade path")
    assert failed["changed"] is True and failed["unpack"]["changed"] is True
    assert node_state(node) == ("1.0.0", {"1.0.0": "permanent", "2.0.0": "unpacked", "2.0.0-ticker-purge": "unpacked"})


def test_diff_mode_shows_the_releases_change(world, deploy, start_node):
    """Item 10: with --diff, upgrade (with src, through its action plugin) and downgrade show the RELEASES change
    (before/after) in the default callback."""
    node = start_node(deploy("1.0.0"))
    with tempfile.TemporaryDirectory(prefix="faults-diff-") as work:
        play = Path(work) / "play.yml"
        # upgrade with src goes through the action plugin, which must pass the diff on
        play.write_text(json.dumps([{"hosts": "all", "gather_facts": False, "tasks": [
            {"otp.release.upgrade": dict(root=str(node.root), src=world["2.0.0"])},
            {"otp.release.downgrade": dict(root=str(node.root))}]}]))
        rc, output = run_playbook(play, env=dict(ANSIBLE_DIFF_ALWAYS="1"))
    assert rc == 0, output[-3000:]
    upgrade_part, downgrade_part = output.split("TASK [otp.release.downgrade]")
    for line in ("-1.0.0: permanent", "+1.0.0: old", "+2.0.0: permanent"):
        assert line in upgrade_part, upgrade_part
    for line in ("-1.0.0: old", "+1.0.0: permanent", "-2.0.0: permanent", "+2.0.0: old"):
        assert line in downgrade_part, downgrade_part
    assert node_state(node) == ("1.0.0", {"1.0.0": "permanent", "2.0.0": "old"})


# ---------------------------------------------------------------------------------------------------
# Item 2: decompression bomb; item 7: unsafe member modes

class Zeros(object):
    """A file object of size zero bytes, read without holding them."""

    def __init__(self, size):
        self.left = size

    def read(self, size=-1):
        size = self.left if size is None or size < 0 else min(size, self.left)
        self.left -= size
        return bytes(size)


def tarball_variant(source, target, change=None, extra=None):
    """A copy of a release tarball, members passed through change(info) and extra [(TarInfo, fileobj)] appended,
    written as a stream (nothing held in memory)."""
    with tarfile.open(source) as src, tarfile.open(target, "w:gz", compresslevel=1) as dest:
        for info in src:
            if change:
                change(info)
            dest.addfile(info, src.extractfile(info) if info.isfile() else None)
        for info, data in extra or []:
            dest.addfile(info, data)
    return target


@pytest.fixture(scope="module")
def bomb(world, tmp_path_factory):
    """World 2.0.0 plus lib/kvstore-2.0.0/priv/zeros of 2 GiB: a tarball of a few MB."""
    member = tarfile.TarInfo("lib/kvstore-2.0.0/priv/zeros")
    member.size, member.mode = 2 * GIB, 0o644
    target = tmp_path_factory.mktemp("bomb") / "kvstore-2.0.0.tar.gz"
    tarball_variant(world["2.0.0"], target, extra=[(member, Zeros(member.size))])
    assert target.stat().st_size < 64 << 20
    return target


def node_memory(node):
    return int(node.rpc("erlang:memory(total)"))


@pytest.mark.parametrize("remote_src", [False, True], ids=["checked-on-controller", "checked-on-host"])
def test_a_decompression_bomb_is_refused_before_release_handler_sees_it(bomb, deploy, start_node, remote_src):
    """Item 2: a 2 GiB member in a tarball of a few MB. Before the limits release_handler unpacked it inside the live
    node (63 MB -> 4.29 GB of node memory, 2.1 GB written into the root); now the tarball is refused from its member
    headers, on the controller or on the host, and neither the node's memory nor the root changes."""
    node = start_node(deploy("1.0.0"))
    before_files, before_memory = listing(node.root), node_memory(node)
    started = time.monotonic()
    rc, result = run("unpack", node.root, src=str(bomb), remote_src=remote_src)
    assert_failed(rc, result, "decompression bomb", "lib/kvstore-2.0.0/priv/zeros", "Nothing was written")
    assert time.monotonic() - started < 60
    assert listing(node.root) == before_files
    assert node_state(node) == ("1.0.0", {"1.0.0": "permanent"})
    assert node_memory(node) < before_memory + (32 << 20)
    # a limit raised for a large release still holds one member to ten times the tarball's size
    rc, raised = run("unpack", node.root, src=str(bomb), remote_src=remote_src, max_unpacked_size=4 * GIB)
    assert_failed(rc, raised, "decompression bomb")
    assert listing(node.root) == before_files


def test_a_decompression_bomb_is_refused_for_a_first_install(bomb, tmp_path):
    """Item 2, first install: nothing is created, not even the root directory."""
    root = tmp_path / "fresh"
    rc, result = run("unpack", root, src=str(bomb), remote_src=True)
    assert_failed(rc, result, "decompression bomb")
    assert os.listdir(str(tmp_path)) == []


@pytest.mark.parametrize("mode", [0o6777, 0o666, 0o4755], ids=oct)
def test_unsafe_member_modes_are_refused_on_both_paths(world, deploy, start_node, tmp_path, mode):
    """Item 7: a setuid/setgid or world-writable member was installed as is next to a running node (the first install
    stripped it: the two paths disagreed). Both refuse it now, and write nothing."""
    def unsafe(info):
        if info.name == "lib/kvstore-2.0.0/ebin/kvstore.beam":
            info.mode = mode
    tarball = tarball_variant(world["2.0.0"], tmp_path / "kvstore-2.0.0.tar.gz", change=unsafe)
    node = start_node(deploy("1.0.0"))
    before = listing(node.root)
    rc, result = run("unpack", node.root, src=str(tarball))
    assert_failed(rc, result, "lib/kvstore-2.0.0/ebin/kvstore.beam", "%04o" % mode)
    assert listing(node.root) == before and node_state(node) == ("1.0.0", {"1.0.0": "permanent"})
    fresh = tmp_path / "fresh"
    rc, result = run("unpack", fresh, src=str(tarball), remote_src=True)
    assert_failed(rc, result, "lib/kvstore-2.0.0/ebin/kvstore.beam", "%04o" % mode)
    assert not fresh.exists()


# ---------------------------------------------------------------------------------------------------
# Item 3: the cookie's private HOME after SIGTERM and SIGKILL

def test_sigterm_mid_call_leaves_no_cookie_and_a_killed_runs_home_is_swept(deploy, start_node, tmp_path):
    """Item 3: the module is signalled while its call hangs on a SIGSTOPped node (the private HOME with the cookie
    exists then). Before, 7 of 7 kills left HOME/.erlang.cookie in TMPDIR and no run removed it. Now SIGTERM removes it
    (and the erl_call child) at once, and the HOME a SIGKILL leaves is removed by the next run."""
    node = start_node(deploy("1.0.0"))
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    args = dict(root=str(node.root), cookie=node.cookie, timeout=30)
    with stopped(node.pid):
        run_ = module_process("info", args, tmpdir)
        wait_for(lambda: children_of(run_.pid, "erl_call"), what="erl_call started")
        assert homes_and_cookies(tmpdir, node.cookie)[0], "the private HOME exists during the call"
        calling = children_of(run_.pid, "erl_call")
        run_.send_signal(signal.SIGTERM)
        run_.communicate(timeout=30)
        assert run_.returncode != 0
        assert homes_and_cookies(tmpdir, node.cookie) == ([], [])
        assert not any(kvworld.pid_alive(pid) for pid in calling)

        killed = module_process("info", args, tmpdir)
        wait_for(lambda: children_of(killed.pid, "erl_call"), what="erl_call started")
        orphans = children_of(killed.pid, "erl_call")
        killed.kill()
        killed.communicate(timeout=30)
        for pid in orphans:  # a SIGKILLed module cannot end its child: the test does, by its pid
            os.kill(pid, signal.SIGKILL)
        homes, holding = homes_and_cookies(tmpdir, node.cookie)
        assert homes == ["otp-release-home-%d-%s" % (killed.pid, homes[0].rsplit("-", 1)[1])] and holding
    after = module_result(module_process("info", args, tmpdir))
    assert after.get("running") is True and not after.get("failed"), after
    assert homes_and_cookies(tmpdir, node.cookie) == ([], [])


# ---------------------------------------------------------------------------------------------------
# Item 4: parallel calls to one node; item 5: parallel changes of one root

def test_six_parallel_module_runs_on_one_node_all_succeed(world, deploy, start_node, tmp_path):
    """Item 4: erl_call's fixed client name made parallel calls collide, reported as a wrong cookie (6 of 6 parallel
    unpacks). Six info runs and six unpack runs of the same version, started together, all succeed now."""
    node = start_node(deploy("1.0.0"))
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    infos = [module_process("info", dict(root=str(node.root)), tmpdir) for _index in range(6)]
    results = [module_result(p) for p in infos]
    assert all(r.get("running") is True and r["current"] == "1.0.0" and not r.get("failed") for r in results), results
    tarball = tmp_path / "kvstore-2.0.0.tar.gz"
    shutil.copy(world["2.0.0"], tarball)
    unpacks = [module_process("unpack", dict(root=str(node.root), src=str(tarball), remote_src=True), tmpdir)
               for _index in range(6)]
    results = [module_result(p) for p in unpacks]
    assert all(not r.get("failed") for r in results), [r.get("msg") for r in results]
    assert sorted(r["changed"] for r in results) == [False] * 5 + [True]
    assert node_state(node) == ("1.0.0", {"1.0.0": "permanent", "2.0.0": "unpacked"})


def test_parallel_upgrade_and_downgrade_on_one_root_report_the_truth(world, deploy, start_node, tmp_path):
    """Item 5: without a lock, parallel upgrade and downgrade runs raced and losers reported "Nothing was changed; the
    node still runs 1.0.0" or "rolled it back" while the node ran 2.0.0. With the per-root lock the runs take turns:
    in the order they finished, each one's from_version is what the one before left, and the last one's current is
    what the node runs."""
    node = start_node(deploy("1.0.0"))
    place_tarball(world, node, "2.0.0")
    migrate(node)
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    for _round in range(3):
        runs = [module_process("upgrade", dict(root=str(node.root), version="2.0.0"), tmpdir),
                module_process("downgrade", dict(root=str(node.root), version="1.0.0"), tmpdir)]
        results = [module_result(process) for process in runs]
        for result in results:
            assert not result.get("failed"), result.get("msg")
        # the lock serialises them: one of the two went first; replay both orders and keep the one that fits
        fits = []
        for order in (results, list(reversed(results))):
            version = order[0]["from_version"]
            ok = True
            for result in order:
                ok = ok and result["from_version"] == version
                version = result["to_version"]
                ok = ok and result["current"] == version
            fits.append(ok and version == node_state(node)[0])
        assert any(fits), results
        loaded, states = node_state(node)
        assert states[loaded] == "permanent"

    # a holder that does not let go: the run waits its timeout, then says who holds the lock and changes nothing
    before = node_state(node)
    fd = os.open(str(node.root / "releases"), os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        started = time.monotonic()
        rc, result = run("upgrade", node.root, version="2.0.0", timeout=2)
        waited = time.monotonic() - started
    finally:
        os.close(fd)
    assert_failed(rc, result, "Another run holds the lock of %s" % (node.root / "releases"), "pid %d" % os.getpid(),
                  "Nothing was changed")
    assert waited >= 2 and node_state(node) == before


# ---------------------------------------------------------------------------------------------------
# Item 9: a full disk after the upgrade happened; the free-space check of unpack

@contextlib.contextmanager
def small_filesystem(directory, size):
    """directory's files moved onto a tmpfs of size bytes mounted over it (unmounted afterwards)."""
    directory = Path(directory)
    saved = Path(tempfile.mkdtemp(prefix="faults-saved-"))
    for entry in directory.iterdir():
        shutil.copy2(str(entry), str(saved / entry.name)) if entry.is_file() else shutil.copytree(str(entry), str(saved / entry.name))
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%d,mode=0755" % size, "tmpfs", str(directory)],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False)
    if mounted.returncode != 0:
        shutil.rmtree(str(saved))
        pytest.skip("this machine cannot mount a small tmpfs (needs root): %s" % mounted.stdout.strip())
    try:
        for entry in saved.iterdir():
            shutil.copy2(str(entry), str(directory / entry.name)) if entry.is_file() else shutil.copytree(str(entry), str(directory / entry.name))
        yield directory
    finally:
        subprocess.run(["umount", str(directory)], check=True)
        shutil.rmtree(str(saved))


def fill(directory):
    """Write a file into directory until its file system is full; returns its path."""
    filler = Path(directory) / "filler"
    fd = os.open(str(filler), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        for size in (65536, 4096, 512, 1):
            try:
                while True:
                    os.write(fd, bytes(size))
            except OSError:
                continue
    finally:
        os.close(fd)
    return filler


def test_a_full_disk_after_the_upgrade_says_what_runs_and_what_is_left(world, deploy, start_node):
    """Item 9: bin/ on a full file system, so the cold-start pointer (bin/kvstore) cannot be switched after the node
    went to 2.0.0 permanent. Before, the run ended in a raw [Errno 28]; now it says that the node runs 2.0.0
    permanent, that only the pointer is left, and a re-run once there is space switches it."""
    node = start_node(deploy("1.0.0"))
    place_tarball(world, node, "2.0.0")
    migrate(node)
    bin_dir = node.root / "bin"
    with small_filesystem(bin_dir, 1 << 20):
        filler = fill(bin_dir)
        rc, result = run("upgrade", node.root, version="2.0.0")
        assert_failed(rc, result, "runs 2.0.0", "permanent", "cold-start pointer", "No space left on device",
                      "run the module again")
        assert result["changed"] is True and result["current"] == "2.0.0" and result["pointer_switched"] is False
        assert node_state(node) == ("2.0.0", {"1.0.0": "old", "2.0.0": "permanent"})
        assert (bin_dir / "kvstore").read_bytes() == (bin_dir / "kvstore-1.0.0").read_bytes()
        assert not [p.name for p in bin_dir.iterdir() if p.name.startswith(".otp-release-")]
        filler.unlink()
        rc, again = run("upgrade", node.root, version="2.0.0")
        assert_ok(rc, again)
        assert (again["changed"], again["direction"], again["start_version"], again["pointer_switched"]) == (True, "none", "2.0.0", True)
        assert (bin_dir / "kvstore").read_bytes() == (bin_dir / "kvstore-2.0.0").read_bytes()
        assert node_state(node) == ("2.0.0", {"1.0.0": "old", "2.0.0": "permanent"})


def test_unpack_checks_the_free_space_of_the_root(world, deploy, start_node, tmp_path):
    """Item 2, free space: a root on a file system without room for the unpacked release is refused before the
    tarball is placed, so release_handler never fills the disk under a live node."""
    mount_point = tmp_path / "fs"
    mount_point.mkdir()
    with small_filesystem(mount_point, 24 << 20):
        node = start_node(deploy("1.0.0", mount_point / "root"))
        before = listing(node.root)
        rc, result = run("unpack", node.root, src=world["2.0.0"])
        assert_failed(rc, result, "bytes", "free", "Nothing was changed")
        assert listing(node.root) == before and node_state(node) == ("1.0.0", {"1.0.0": "permanent"})
        node.stop()


# ---------------------------------------------------------------------------------------------------
# Item 1: a crash between make_permanent and the cold-start pointer; item 6: the channel cut during install

def window_crash(node, from_version):
    """What a run killed between make_permanent and the pointer switch leaves: RELEASES says the new version is
    permanent, bin/kvstore (relx's pointer) still boots from_version. The test puts the old pointer back by hand,
    which leaves exactly those files; killing a module in a window of a few microseconds is not reproducible."""
    bin_dir = node.root / "bin"
    shutil.copy(str(bin_dir / ("kvstore-" + from_version)), str(bin_dir / "kvstore"))


def test_a_crash_before_the_pointer_switch_is_repaired_by_a_rerun(world, deploy, start_node):
    """Item 1, node still up: a re-run of the same upgrade finds 2.0.0 permanent and a pointer that boots 1.0.0, and
    switches the pointer, saying so (pointer_switched); then a cold start boots 2.0.0."""
    node = start_node(deploy("1.0.0"))
    place_tarball(world, node, "2.0.0")
    migrate(node)
    assert_ok(*run("upgrade", node.root, version="2.0.0"))
    window_crash(node, "1.0.0")
    rc, info = run("info", node.root)
    assert (info["start_version"], info["start_version_mismatch"]) == ("1.0.0", True)
    rc, again = run("upgrade", node.root, version="2.0.0")
    assert_ok(rc, again)
    assert (again["changed"], again["direction"], again["pointer_switched"], again["start_version"]) == (True, "none", True, "2.0.0")
    node.cold_restart()
    assert node_state(node) == ("2.0.0", {"1.0.0": "old", "2.0.0": "permanent"})


@pytest.mark.parametrize("direction", ["upgrade", "downgrade"])
def test_a_cold_start_on_the_old_pointer_is_not_reported_as_the_new_version(world, deploy, start_node, direction):
    """Item 1, node restarted in the window: a cold start booted the old version while RELEASES says the new one is
    permanent. Before, a re-run reported changed: true, current: 2.0.0 while the node ran 1.0.0 code, and cleared
    start_version_mismatch. Now info says what the node booted (script_version, script_id_mismatch), and upgrade and
    downgrade refuse, saying which version really runs, and change nothing."""
    node = start_node(deploy("1.0.0"))
    place_tarball(world, node, "2.0.0")
    migrate(node)
    assert_ok(*run("upgrade", node.root, version="2.0.0"))
    old, new = "1.0.0", "2.0.0"
    if direction == "downgrade":
        assert_ok(*run("downgrade", node.root, version="1.0.0"))
        old, new = "2.0.0", "1.0.0"
    window_crash(node, old)
    node.cold_restart()
    states = {"1.0.0": "permanent", "2.0.0": "old"} if new == "1.0.0" else {"1.0.0": "old", "2.0.0": "permanent"}
    assert node_state(node) == (old, states)
    before = listing(node.root)
    rc, info = run("info", node.root)
    assert_ok(rc, info)
    assert (info["script_version"], info["script_id_mismatch"], info["start_version_mismatch"]) == (old, True, True)
    rc, result = run(direction, node.root, version=new)
    assert_failed(rc, result, "runs %s" % old, "init:script_id()", "Nothing was changed")
    assert result.get("changed") is not True and result.get("current") != new
    assert node_state(node) == (old, states) and listing(node.root) == before


BUSY_SERVER = "spawn(fun() -> sys:replace_state(kv_server, fun(S) -> timer:sleep(%d), S end) end), ok"


def test_a_channel_cut_during_install_reports_what_the_node_did(world, deploy, start_node):
    """Item 6: the erl_call client of the install call is killed while release_handler waits to suspend a busy
    kv_server. Before, the run said it failed before the point of no return ("rolled it back") while the node went on
    to 2.0.0 permanent with a stale bin/kvstore. Now the run asks the node again, finishes make_permanent and the
    pointer, and reports 2.0.0 because the node says so."""
    node = start_node(deploy("1.0.0"))
    place_tarball(world, node, "2.0.0")
    migrate(node)
    tmpdir = node.root.parent / "tmp"
    tmpdir.mkdir()
    assert node.rpc(BUSY_SERVER % 3000) == "ok"
    upgrade = module_process("upgrade", dict(root=str(node.root), version="2.0.0"), tmpdir)
    killed = []

    def cut_long_calls():
        """Kill the module's erl_call that has run for more than a second: the install call waiting on kv_server."""
        seen = {}
        while upgrade.poll() is None and not killed:
            for pid in children_of(upgrade.pid, "erl_call"):
                seen.setdefault(pid, time.monotonic())
                if time.monotonic() - seen[pid] > 1.0:
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
            time.sleep(0.05)

    cutter = threading.Thread(target=cut_long_calls)
    cutter.start()
    result = module_result(upgrade)
    cutter.join()
    assert killed, "no call was cut: %s" % result
    assert not result.get("failed"), result.get("msg")
    assert (result["changed"], result["current"], result["permanent"]) == (True, "2.0.0", True)
    assert node_state(node) == ("2.0.0", {"1.0.0": "old", "2.0.0": "permanent"})
    assert (node.root / "bin" / "kvstore").read_bytes() == (node.root / "bin" / "kvstore-2.0.0").read_bytes()


# ---------------------------------------------------------------------------------------------------
# Kept guarantees: no request lost under load; no injection through any string option

def test_put_and_get_under_load_across_four_hot_changes(world, deploy, start_node):
    """A client loop on the node does put + get without pause during four hot changes (up 2.0.0, up 3.0.0, down 2.0.0,
    down 1.0.0): none fails, every value written is read back afterwards, and no request waits longer than 5 s."""
    node = start_node(deploy("1.0.0"))
    place_tarball(world, node, "2.0.0")
    place_tarball(world, node, "3.0.0")
    migrate(node)
    started = time.monotonic()
    assert node.rpc(LOAD_CLIENT) == "ok"
    steps = [("upgrade", "2.0.0"), ("upgrade", "3.0.0"), ("downgrade", "2.0.0"), ("downgrade", "1.0.0")]
    results = [run(module, node.root, version=version) for module, version in steps]
    stats = node.rpc(STOP_CLIENT)
    for (module, version), (rc, result) in zip(steps, results):
        assert_ok(rc, result)
        assert (result["changed"], result["current"]) == (True, version)
    count, failed, max_pause_us = (int(x) for x in stats.strip("{}").split(","))
    lost = int(node.rpc(UNREADABLE % "{%d, 0, 0}" % count))
    print("load: %d put+get pairs over 4 hot changes, %d failed, %d lost, longest pause %.1f ms"
          % (count, failed, lost, max_pause_us / 1000.0))
    assert count > 100 and failed == 0 and lost == 0
    assert max_pause_us < 5 * 1000 * 1000 and time.monotonic() - started < 300
    assert node_state(node) == ("1.0.0", {"1.0.0": "permanent", "2.0.0": "old", "3.0.0": "old"})


def hostile_strings(marker_dir):
    """Strings that would run os:cmd (creating a file in marker_dir) if any option reached Erlang or a shell as code."""
    touch = "touch %s/%%d" % marker_dir
    texts = [
        '"), os:cmd("%s"), ("', "'), os:cmd(\"%s\"), ('", '}. os:cmd("%s"). {', "\"}.\nos:cmd(\"%s\").\n",
        "x\\\"), os:cmd(\\\"%s\\\"), (\\\"", "';%s;'", '";%s;"', "$(%s)", "`%s`", "x\n%s\n", "x' ++ os:cmd(\"%s\") ++ '",
        "<<\"x\">>, os:cmd(\"%s\")", "[os:cmd(\"%s\")]", "#{a => os:cmd(\"%s\")}", "fun() -> os:cmd(\"%s\") end()",
        "\u00e9\u263a\U0001F600 os:cmd(\"%s\")", "\\\\\\\"os:cmd(\"%s\")", "erlang:halt().%s", "x%%~p~s%s",
        "1.0.0\"}, os:cmd(\"%s\"), {\"",
    ]
    return [text % (touch % index) if "%s" in text else text for index, text in enumerate(texts, 1)]


def test_hostile_strings_in_every_string_option_never_execute(world, deploy, start_node, tmp_path):
    """Twenty strings built to break out of an Erlang term, a string, an atom or a shell command, in every string option
    of every module: none creates its marker file, no module crashes (each fails with a sentence, or does its harmless
    job, e.g. info of a node name that does not exist), and the node and its root are unchanged. The modules run as
    Ansible runs them on a host (their own file, arguments in a file), three at a time, to keep the 240 runs short."""
    node = start_node(deploy("1.0.0"))
    place_tarball(world, node, "2.0.0")
    markers = tmp_path / "markers"
    markers.mkdir()
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    root = str(node.root)
    before_files, before_state = listing(node.root), node_state(node)
    runs = []
    for text in hostile_strings(markers):
        runs += [
            ("info", dict(root=root, name=text)),
            ("info", dict(root=root, node=text)),
            ("info", dict(root=root, cookie=text)),
            ("upgrade", dict(root=root, version=text)),
            # the version it runs: nothing to change, the health MFA is called on the node
            ("upgrade", dict(root=root, version="1.0.0", health=dict(module=text, function="health"))),
            ("unpack", dict(root=root, src=world["2.0.0"], remote_src=True, checksum=text)),
            ("unpack", dict(root=root, src=text, remote_src=True)),
            ("eval", dict(root=root, version="2.0.0", module=text, function="run")),
            ("eval", dict(root=root, version="2.0.0", module="kvstore", function=text)),
            ("eval", dict(root=root, version="2.0.0", module="erlang", function="byte_size", args=[text])),
            ("eval", dict(root=root, version="2.0.0", module="erlang", function="length", args=[text], strings_as="charlist",
                          failed_when_result=[text])),
            ("eval", dict(root=root, version="2.0.0", module="erlang", function="node", start_apps=[text])),
        ]
    results = []
    for at in range(0, len(runs), 3):
        batch = [module_process(module, args, tmpdir) for module, args in runs[at:at + 3]]
        results += [module_result(process) for process in batch]
    crashed = [(run_, r) for run_, r in zip(runs, results) if "Traceback" in json.dumps(r) or "exception" in r]
    assert not crashed
    assert all(r.get("msg") for r in results if r.get("failed"))
    assert sorted(os.listdir(str(markers))) == []
    assert listing(node.root) == before_files and node_state(node) == before_state
    accepted = [(module, sorted(args)) for (module, args), r in zip(runs, results) if not r.get("failed")]
    print("injection: %d module runs with %d hostile strings: %d failed with a message, %d did their harmless job, 0 executed"
          % (len(runs), len(hostile_strings(markers)), len(runs) - len(accepted), len(accepted)))
    # the values that reach Erlang as data (eval args) are fine to accept; the rest name things that do not exist
    assert all(module == "eval" and "args" in keys or module == "info" and "node" in keys for module, keys in accepted), accepted
