"""The test world for integration tests: release tarballs, a private epmd, deployed roots, nodes.

Importable from any test file or benchmark (the pytest fixtures in conftest.py are thin wrappers).

A node gets its cookie from `.erlang.cookie` in a private HOME (mode 0400), never from
`-setcookie`: erlexec copies every argument of a `-args_file` (relx's vm.args) into the argv of
beam.smp, where `ps` shows it. For the same reason nodes are started and stopped without relx's
`daemon`/`stop`, which pass the cookie to erl_call with `-c`: a node runs relx's own
`bin/<name> console` under `run_erl -daemon` (what `daemon` does, minus the erl_call polling), and
is stopped with `init:stop()` over erl_call, whose cookie also comes from that HOME.

The other producers of the world are started the same way (MixNode, DistilleryNode): mix's own start
command without its `-setcookie`, and a Distillery-shaped root's own start script.
"""

import importlib.util
import os
import re
import secrets
import shlex
import signal
import socket
import subprocess
import tarfile
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = REPO / "tests" / "world" / "build.py"
SYSTEM_ERTS_BIN = Path("/usr/lib/erlang/bin")
EPMD = "/usr/bin/epmd"
REL_NAME = "kvstore"
WORLD_DIR = REPO / "tests" / "world"


class NodeError(Exception):
    """A node did not start, did not answer, or an expression failed on it."""


def build_world():
    """{short name: tarball path} of the kvstore world (built once, then cached)."""
    spec = importlib.util.spec_from_file_location("kvstore_world_build", BUILD_SCRIPT)
    builder = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(builder)
    return builder.build_world()


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Epmd:
    """An epmd of our own on 127.0.0.1 and a free port; nodes find it through ERL_EPMD_PORT."""

    def __init__(self):
        self.port = free_port()
        self.process = subprocess.Popen(
            [EPMD, "-address", "127.0.0.1", "-port", str(self.port)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.pid = self.process.pid
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise NodeError("epmd did not start on 127.0.0.1:{0}".format(self.port))
                time.sleep(0.02)

    def names(self):
        """Names of the nodes registered with this epmd."""
        result = subprocess.run(
            [EPMD, "-port", str(self.port), "-names"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, check=False,
        )
        return re.findall(r"^name (\S+) at port", result.stdout, re.M)

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def tarball_path(world, version):
    """A world key ("2.0.0", "truncated", ...) or a path to a tarball."""
    return Path(world[version]) if version in world else Path(version)


def deploy(tarball, root=None, releases_file=True):
    """Extract a release tarball into root (default: root/ in a new temp dir); return root.

    Makes sure the root has releases/RELEASES (relx tarballs ship one, mix tarballs none), unless
    releases_file is false: a mix release deployed the way its users do has none."""
    if root is None:
        root = Path(tempfile.mkdtemp(prefix="kvstore-")) / "root"
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    if any(root.iterdir()):
        raise ValueError("{0} is not empty".format(root))
    with tarfile.open(tarball, "r:gz") as archive:
        archive.extractall(root, filter="tar")
    if releases_file and not (root / "releases" / "RELEASES").exists():
        write_releases(root)
    return root


def start_data(root):
    """(erts version, release version) from releases/start_erl.data."""
    erts_version, version = (root / "releases" / "start_erl.data").read_text().split()
    return erts_version, version


def erts_bin(root):
    """The root's own erts-*/bin, or the system's for a release built without ERTS."""
    bundled = root / "erts-{0}".format(start_data(root)[0]) / "bin"
    return bundled if bundled.is_dir() else SYSTEM_ERTS_BIN


def release_name(root):
    """The release name: that of the .rel file of the version start_erl.data names (of any version when
    release_handler removed that one, as it does for a version it unpacked)."""
    rel_files = list((root / "releases" / start_data(root)[1]).glob("*.rel")) or list(root.glob("releases/*/*.rel"))[:1]
    if len(rel_files) != 1:
        raise ValueError("{0}: expected one .rel file for {1}, found {2}".format(root, start_data(root)[1], rel_files))
    return rel_files[0].stem


def write_releases(root):
    """releases/RELEASES exactly as OTP writes it, by release_handler:create_RELEASES/4."""
    version = start_data(root)[1]
    erl = erts_bin(root) / "erl"
    release_dir = root / "releases" / version
    rel_file = release_dir / "{0}.rel".format(release_name(root))
    code = 'ok = release_handler:create_RELEASES("{0}", "{0}/releases", "{1}", []), halt().'.format(
        root, rel_file)
    sasl_ebin = [str(path) for path in sorted(root.glob("lib/sasl-*/ebin"))]
    # a mix release's boot files find lib/ through the boot variable RELEASE_LIB
    subprocess.run([str(erl), "-noshell", "-boot", str(release_dir / "start_clean"),
                    "-boot_var", "RELEASE_LIB", str(root / "lib"), "-pa"] + sasl_ebin + ["-eval", code],
                   check=True, stdin=subprocess.DEVNULL, timeout=60, env=dict(os.environ, ERL_CRASH_DUMP_SECONDS="0"))


def pid_alive(pid):
    """True while the process exists and is not a zombie."""
    try:
        state = Path("/proc/{0}/stat".format(pid)).read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state not in ("Z", "X")


def descendant_pids(pid):
    """Children, grandchildren, ... of pid (beam.smp starts heart through erl_child_setup)."""
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parents[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
    found, frontier = [], [pid]
    while frontier:
        children = [child for child, parent in parents.items() if parent in frontier]
        found += children
        frontier = children
    return found


def pids_running_as(node_name):
    """OS pids of the beam.smp processes started with `-name node_name` (names are unique)."""
    pids = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if (cmdline.parent / "comm").read_text().strip() != "beam.smp":
                continue
            args = cmdline.read_bytes().split(b"\0")
        except (FileNotFoundError, ProcessLookupError):
            continue
        if any(a == b"-name" and b == node_name.encode() for a, b in zip(args, args[1:])):
            pids.append(int(cmdline.parent.name))
    return [pid for pid in pids if pid_alive(pid)]


class Node:
    """A kvstore node started from a relx release root.

    name, cookie, cookie_file (0400, in the node's private HOME), root, vm_args (the node's
    vm.args, outside releases/), env (the variables set for the node on top of os.environ),
    pid (last known OS pid of beam.smp), pids (every pid it had: heart may restart it).
    """

    name_prefix = "kv"

    def __init__(self, root, env=None, heart=False):
        self.root = Path(root)
        self.erts_bin = erts_bin(self.root)
        self.name = "{0}_{1}@127.0.0.1".format(self.name_prefix, secrets.token_hex(6))
        self.cookie = self.new_cookie()
        self.files = Path(tempfile.mkdtemp(prefix="node-", dir=self.root.parent))
        home = self.files / "home"
        home.mkdir()
        self.cookie_file = home / ".erlang.cookie"
        self.cookie_file.write_text(self.cookie)
        self.cookie_file.chmod(0o400)
        self.log_dir = self.files / "log"
        self.log_dir.mkdir()
        self.pipe_dir = self.files / "pipe"
        self.pipe_dir.mkdir()
        self.env = {"HOME": str(home)}
        self.configure(heart)
        self.env.update(env or {})
        self.pid = None
        self.pids = []

    @staticmethod
    def new_cookie():
        return secrets.token_hex(16)

    def write_vm_args(self, lines):
        """The node's own vm.args (mode 0600, outside the root) with lines and the loopback settings."""
        self.vm_args = self.files / "node.vm.args"
        lines = lines + ["-kernel inet_dist_use_interface {127,0,0,1}", "-start_epmd false"]
        self.vm_args.write_text("\n".join(lines) + "\n")
        self.vm_args.chmod(0o600)

    def run_erl(self, shell_command):
        """run_erl -daemon with this node's pipe and log directories, running shell_command."""
        return [str(self.erts_bin / "run_erl"), "-daemon", str(self.pipe_dir) + "/", str(self.log_dir) + "/",
                shell_command]

    def configure(self, heart):
        """relx: bin/kvstore console, with VMARGS_PATH naming the node's own vm.args."""
        self.write_vm_args(["-name " + self.name] + (["-heart"] if heart else []))
        self.start_command = self.run_erl("exec {0} console".format(shlex.quote(str(self.root / "bin" / REL_NAME))))
        self.env.update(VMARGS_PATH=str(self.vm_args), RUNNER_LOG_DIR=str(self.log_dir))
        if heart:
            self.env["HEART_COMMAND"] = " ".join(shlex.quote(arg) for arg in self.start_command)

    def command(self):
        """The command that starts the node (asked again at every start: it may depend on the root's files)."""
        return self.start_command

    def start(self, timeout=30):
        """Start the node and wait until it has booted; return its OS pid."""
        started = subprocess.run(
            self.command(), env=dict(os.environ, **self.env),
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False,
        )
        if started.returncode != 0:
            raise NodeError("run_erl failed for {0}: {1}".format(self.name, started.stdout))
        return self.wait_booted(timeout)

    def wait_booted(self, timeout=30):
        """Wait until the node answers and init has started everything; return its OS pid."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                status = self.rpc("{init:get_status(), list_to_integer(os:getpid())}", timeout=5)
            except NodeError:
                status = None
            match = re.fullmatch(r"\{\{started,started\},(\d+)\}", status or "")
            if match:
                self._record_pid(int(match.group(1)))
                return self.pid
            if time.monotonic() > deadline:
                raise NodeError("node {0} did not boot within {1} s; last status {2}; log:\n{3}".format(
                    self.name, timeout, status, self.log_tail()))
            time.sleep(0.05)

    def _record_pid(self, pid):
        self.pid = pid
        if pid not in self.pids:
            self.pids.append(pid)

    def rpc(self, expr_text, timeout=30):
        """Evaluate an Erlang expression (or comma-separated expressions) on the node and return
        the result printed with ~0p. Raises NodeError when the node does not answer or the
        expression raises."""
        expr = expr_text.strip()
        if expr.endswith("."):
            expr = expr[:-1]
        # erl_call prints only short binaries in full and escapes strings loosely, so the text
        # comes back hex-encoded; -e wants the form to end with a full stop and a newline.
        wrapped = ('binary_to_list(binary:encode_hex(list_to_binary(io_lib:format("~0p", [begin\n'
                   + expr + '\nend])))).\n')
        erl_call = self.erts_bin / "erl_call"
        if not erl_call.exists():
            erl_call = SYSTEM_ERTS_BIN / "erl_call"
        try:
            result = subprocess.run(
                [str(erl_call), "-name", self.name, "-timeout", str(timeout), "-e"],
                input=wrapped, env=dict(os.environ, HOME=self.env["HOME"]),
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=timeout + 5, check=False,
            )
        except subprocess.TimeoutExpired:
            raise NodeError("{0} did not answer within {1} s".format(self.name, timeout))
        if result.returncode != 0:
            raise NodeError("{0} did not answer: {1}".format(self.name, (result.stderr or result.stdout).strip()))
        match = re.fullmatch(r'\{ok, "([0-9A-F]*)"\}\s*', result.stdout)
        if not match:
            raise NodeError("{0} failed on {1}: {2}".format(expr, self.name, result.stdout.strip()))
        return bytes.fromhex(match.group(1)).decode("latin-1")

    def os_pid(self):
        """The OS pid of beam.smp, asked from the node (it changes when heart restarts it)."""
        self._record_pid(int(self.rpc("list_to_integer(os:getpid())")))
        return self.pid

    def alive(self):
        """True while any OS process this node ever had, or one running under its name, exists."""
        return any(pid_alive(pid) for pid in self.pids) or bool(pids_running_as(self.name))

    def stop(self, timeout=30):
        """init:stop() the node, wait for its OS pid to exit, and kill it if it does not
        (at once when it does not answer)."""
        try:
            self._record_pid(int(self.rpc("Pid = os:getpid(), init:stop(), list_to_integer(Pid)", timeout=5)))
            deadline = time.monotonic() + timeout
        except NodeError:
            deadline = time.monotonic()
        for pid in pids_running_as(self.name):
            self._record_pid(pid)
        while any(pid_alive(pid) for pid in self.pids) and time.monotonic() < deadline:
            time.sleep(0.05)
        for pid in self.pids:
            if pid_alive(pid):
                # deepest first: heart before beam.smp, or heart would start the node again
                for child in list(reversed(descendant_pids(pid))) + [pid]:
                    try:
                        os.kill(child, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
        deadline = time.monotonic() + 10
        while self.alive() and time.monotonic() < deadline:
            time.sleep(0.05)

    def cold_restart(self, timeout=30):
        """Stop the node and start it again from the same root; return the new OS pid."""
        self.stop()
        return self.start(timeout)

    def log_tail(self, chars=3000):
        logs = sorted(self.log_dir.glob("erlang.log.*"), key=lambda path: path.stat().st_mtime)
        return logs[-1].read_text(errors="replace")[-chars:] if logs else "(no log)"


def world_module(name):
    """A module of tests/world (build_distillery, build_mix), loaded from its file."""
    spec = importlib.util.spec_from_file_location("world_" + name, WORLD_DIR / (name + ".py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class MixNode(Node):
    """A node of a `mix release` root, started as `bin/<name> daemon` starts it, minus the cookie in argv.

    mix's script always hands the cookie to erl as `-setcookie` (from RELEASE_COOKIE or releases/COOKIE),
    and `daemon` keeps the whole command in run_erl's argv too. So the script is asked for its command
    (ELIXIR_CLI_DRY_RUN, with a stand-in cookie), the `-setcookie` pair is dropped, and the rest runs under
    run_erl as `daemon` does, with RELEASE_NODE, RELEASE_COOKIE and RELEASE_DISTRIBUTION=name in the
    environment and the cookie in the private HOME. Asked again at every start: it names the version
    releases/start_erl.data names."""

    name_prefix = "kvex"
    DRY_RUN_COOKIE = "dry-run-stand-in"

    def configure(self, heart):
        if heart:
            raise ValueError("MixNode does not start with heart")
        self.write_vm_args([])
        self.env.update(RELEASE_NODE=self.name, RELEASE_COOKIE=self.cookie, RELEASE_DISTRIBUTION="name",
                        RELEASE_VM_ARGS=str(self.vm_args), RELEASE_TMP=str(self.files / "tmp"))

    def command(self):
        script = self.root / "bin" / release_name(self.root)
        env = dict(os.environ, **dict(self.env, RELEASE_COOKIE=self.DRY_RUN_COOKIE, ELIXIR_CLI_DRY_RUN="1"))
        dry_run = subprocess.run([str(script), "start"], env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, text=True, timeout=30, check=False)
        argv = dry_run.stdout.split()
        at = argv.index("-setcookie") if "-setcookie" in argv else -1
        if dry_run.returncode != 0 or at < 0 or argv[at + 1] != self.DRY_RUN_COOKIE:
            raise NodeError("{0} start printed no command with the stand-in cookie: {1}".format(script, dry_run.stdout))
        del argv[at:at + 2]
        return self.run_erl("exec " + " ".join(shlex.quote(arg) for arg in argv))


class DistilleryNode(Node):
    """A node of a Distillery-shaped root: its bin/<name> console under run_erl (as Distillery's `start`
    does). Every releases/<vsn>/vm.args of the root is rewritten to name this node and hold its own
    64-character cookie full of shell metacharacters; tarball() makes upgrade tarballs that do the same.
    env may set RELEASE_MUTABLE_DIR (where the start script reads start_erl.data)."""

    name_prefix = "kvd"

    @staticmethod
    def new_cookie():
        return world_module("build_distillery").new_cookie()

    def configure(self, heart):
        if heart:
            raise ValueError("DistilleryNode does not start with heart")
        vm_args = world_module("build_distillery").vm_args(self.name, self.cookie)
        for path in self.root.glob("releases/*/vm.args"):
            path.write_bytes(vm_args)
        self.start_command = self.run_erl("exec {0} console".format(shlex.quote(str(self.root / "bin" / REL_NAME))))

    def tarball(self, tarball):
        """A copy of a Distillery-shaped tarball whose vm.args name this node and its cookie."""
        target = self.files / Path(tarball).name
        world_module("build_distillery").retarget(tarball, target, self.name, self.cookie)
        return target


class Nodes:
    """Every node started through it, so that all of them can be stopped and checked."""

    def __init__(self):
        self.started = []

    def start(self, root, env=None, heart=False, timeout=30, kind=Node):
        node = kind(root, env=env, heart=heart)
        self.started.append(node)
        node.start(timeout)
        return node

    def stop_all(self):
        for node in self.started:
            if node.alive():
                node.stop()

    def still_alive(self):
        return [(node.name, pid) for node in self.started
                for pid in sorted(set(node.pids + pids_running_as(node.name))) if pid_alive(pid)]
