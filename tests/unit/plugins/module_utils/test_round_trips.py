"""How many times a module run talks to the node. Every call is one erl_call process, ~0.1-0.3 s each on a real host,
so the number of round trips is what an upgrade costs before its own work.

Only the program runner of the Session's channel is fake: it reads the Erlang expression the channel sends to
erl_call on stdin and answers as a node would (the base64 OTPREL<...>OTPREL framing the node prints), playing
release_handler on a small root on disk. Everything else (Session, ReleaseRoot, the unpack, the ERTS checks, the
change plan) is the real code. The ERTS binaries of the root are this Python interpreter: a real ELF file of this host,
so the ERTS checks pass as they do for a real release.
"""

import base64
import gzip
import io
import os
import re
import struct
import sys
import tarfile

import pytest

from ansible_collections.otp.release.plugins.module_utils._beam import read_beam
from ansible_collections.otp.release.plugins.module_utils._change import ChangeOptions
from ansible_collections.otp.release.plugins.module_utils._erlterm import Atom, format_term
from ansible_collections.otp.release.plugins.module_utils._errors import OtpReleaseError
from ansible_collections.otp.release.plugins.module_utils._pipeline import Health, upgrade
from ansible_collections.otp.release.plugins.module_utils._session import LIVE_EXPR, Session
from ansible_collections.otp.release.plugins.module_utils._tarball import inspect_file
from ansible_collections.otp.release.plugins.module_utils._unpack import Source

pytestmark = pytest.mark.usefixtures("no_node_process")

ERTS = "13.1.5"
NODE = "kv@127.0.0.1"
COOKIE = "round-trip-cookie"
REL = '{release,{"kvstore","%s"},{erts,"' + ERTS + '"},[{kernel,"8.5.3"},{kvstore,"%s"}]}.\n'
RELUP = '{"2.0.0",[{"1.0.0",[],[point_of_no_return]}],[{"1.0.0",[],[point_of_no_return]}]}.\n'
REQUEST = re.compile(r"try \{ok, begin (.*) end\} catch OtpRelClass__", re.S)


class FakeNode(object):
    """A node serving root, reached only through the runner: it answers LIVE_EXPR, the unpack, install, remove and
    health expressions, keeps its release states in RELEASES as release_handler does, and logs each request kind."""

    def __init__(self, root, states):
        self.root = root
        self.states = dict(states)
        self.requests = []
        self.loaded = {}  # module -> md5 (hex) of the code it runs, as the install call's answer reports it
        self.write_releases()

    def write_releases(self):
        entries = [(Atom("release"), "kvstore", v, ERTS, [(Atom("kernel"), "8.5.3", "lib/kernel-8.5.3"),
                                                          (Atom("kvstore"), v, "lib/kvstore-%s" % v)], Atom(s))
                   for v, s in sorted(self.states.items())]
        with open(os.path.join(self.root, "releases", "RELEASES"), "w") as handle:
            handle.write(format_term(entries) + ".\n")

    def live_text(self):
        releases = [(v, Atom(s), ["kernel-8.5.3", "kvstore-" + v]) for v, s in sorted(self.states.items())]
        return "{%s,4242,%s,%s,<0.44.0>,false,undefined}" % (format_term(Atom(NODE)), format_term(ERTS), format_term(releases))

    def __call__(self, argv, stdin_text=None, env=None, timeout=None):
        assert argv[0] == os.path.join(self.root, "erts-%s" % ERTS, "bin", "erl_call") and argv[1:3] == ["-name", NODE]
        assert COOKIE not in " ".join(argv) + stdin_text
        with open(os.path.join(env["HOME"], ".erlang.cookie")) as handle:
            assert handle.read() == COOKIE
        expression = REQUEST.search(stdin_text).group(1)
        answer = "{ok,%s}" % self.answer(expression)
        return 0, "OTPREL<%s>OTPREL" % base64.b64encode(answer.encode()).decode(), ""

    def answer(self, expression):
        if expression == LIVE_EXPR:
            self.requests.append("state")
            return self.live_text()
        if "release_handler:unpack_release(" in expression:
            self.requests.append("unpack")
            version = re.search(r'unpack_release\("([^/"]+)/kvstore"\)', expression).group(1)
            self.unpack_release(version)
            return "{{ok,%s},%s}" % (format_term(version), self.live_text())
        if "release_handler:install_release(" in expression:
            self.requests.append("install")
            version = re.search(r'check_install_release\("([^"]+)"', expression).group(1)
            running = next(v for v, s in self.states.items() if s == "permanent")
            self.states = dict((v, "old" if v == running else s) for v, s in self.states.items())
            self.states[version] = "permanent"  # installed and made permanent in the same call
            self.write_releases()
            return "{installed,%s,ok,%s,%s}" % (format_term(running), self.live_text(), self.loaded_text(expression))
        if "release_handler:remove_release(V)" in expression:
            self.requests.append("remove")
            versions = re.findall(r'"([^"]+)"', expression.split("V <- ")[1].split("]")[0])
            for version in versions:
                del self.states[version]
            self.write_releases()
            outcomes = ",".join("{%s,ok}" % format_term(v) for v in versions)
            states = ",".join("{%s,%s}" % (format_term(v), s) for v, s in sorted(self.states.items()))
            return "{[%s],[%s]}" % (outcomes, states)
        if "erlang:check_process_code(" in expression:
            self.requests.append("review")
            return "[%s]" % ",".join("{%s,false,[],[]}" % module for module in asked_modules(expression))
        if "erlang:apply(kvstore, health, [])" in expression:
            self.requests.append("health")
            return "ok"
        pytest.fail("the fake node does not know this request: %s" % expression)

    def loaded_text(self, expression):
        """The answer to _review.loaded_code_expr when the install call carries it, else []."""
        if "code:which(" not in expression:
            return "[]"
        return "[%s]" % ",".join('{%s,"/root/lib/%s.beam",<<16#%s:128>>}' % (module, module, self.loaded[module])
                                 for module in asked_modules(expression.split("code:which(")[1]))

    def unpack_release(self, version):
        """As release_handler: extract releases/<vsn>/ and lib/ from the placed tarball (this root has the ERTS
        already), delete the tarball and the .rel, and know the version as unpacked."""
        placed = os.path.join(self.root, "releases", version, "kvstore.tar.gz")
        with tarfile.open(placed) as tar:
            members = [m for m in tar.getmembers() if m.name.startswith(("lib/", "releases/%s/" % version))]
            tar.extractall(self.root, members=members, filter="data")
        os.unlink(placed)
        os.unlink(os.path.join(self.root, "releases", version, "kvstore.rel"))
        self.states[version] = "unpacked"
        self.write_releases()


def asked_modules(expression):
    """The module list of a _review expression: ... || ReviewM <- [m1,m2]]."""
    return re.search(r"ReviewM <- \[([^\]]*)\]", expression).group(1).split(",")


def write(path, data, mode=0o644):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as handle:
        handle.write(data)
    os.chmod(path, mode)


def make_root(path, unpacked):
    """A root running 1.0.0, with 2.0.0 unpacked or not."""
    root = str(path)
    python = os.path.realpath(sys.executable)
    os.makedirs(os.path.join(root, "erts-%s" % ERTS, "bin"))
    for binary in ("beam.smp", "erlexec", "epmd", "erl_call"):
        os.symlink(python, os.path.join(root, "erts-%s" % ERTS, "bin", binary))
    write(os.path.join(root, "lib/kernel-8.5.3/ebin/kernel.app"), b"{application,kernel,[]}.\n")
    versions = ("1.0.0", "2.0.0") if unpacked else ("1.0.0",)
    for version in versions:
        write(os.path.join(root, "releases", version, "kvstore.rel"), (REL % (version, version)).encode())
        write(os.path.join(root, "lib/kvstore-%s/ebin/kvstore.app" % version), b"{application,kvstore,[]}.\n")
    if unpacked:
        write(os.path.join(root, "releases/2.0.0/relup"), RELUP.encode())
    return FakeNode(root, {"1.0.0": "permanent", "2.0.0": "unpacked"} if unpacked else {"1.0.0": "permanent"})


def make_tarball(path):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data, mode in [("releases/2.0.0/kvstore.rel", (REL % ("2.0.0", "2.0.0")).encode(), 0o644),
                                 ("erts-%s/bin/beam.smp" % ERTS, b"\x7fELF", 0o755),
                                 ("releases/2.0.0/relup", RELUP.encode(), 0o644),
                                 ("lib/kvstore-2.0.0/ebin/kvstore.app", b"{application,kvstore,[]}.\n", 0o644)]:
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), mode, 1700000000
            tar.addfile(info, io.BytesIO(data))
    path.write_bytes(gzip.compress(buffer.getvalue()))
    return str(path)


def session(node):
    """What the module builds for one run."""
    return Session(node.root, "kvstore", NODE, COOKIE, runner=node)


@pytest.fixture
def tarball(tmp_path):
    return make_tarball(tmp_path / "kvstore-2.0.0.tar.gz")


def module_runs(node, tarball, health=None, keep=None):
    """The two module runs of an upgrade with src on the controller: requests of each run, and the last result.
    The first run gets the tarball's name, version and sha256 from the action plugin and asks to have it sent."""
    facts = inspect_file(tarball)
    checksum = "sha256:" + facts.sha256
    with pytest.raises(OtpReleaseError) as caught:
        upgrade(session(node), None, ChangeOptions(), Source("/controller/kvstore-2.0.0.tar.gz", False, "kvstore", "2.0.0", checksum),
                health, keep)
    assert caught.value.fields["tarball_needed"] is True
    first = list(node.requests)
    del node.requests[:]
    result = upgrade(session(node), None, ChangeOptions(), Source(tarball, True, "kvstore", "2.0.0", checksum), health, keep)
    return first, list(node.requests), result


def test_upgrade_with_a_tarball_the_host_does_not_have(tmp_path, tarball):
    """4 round trips in all. First run: 1 (the node's state, which shows 2.0.0 unknown: the tarball is needed).
    Second run: 3 (the state; unpack_release, whose answer carries the state after it; check_install_release,
    install_release and make_permanent in one call, whose answer carries the state after it). The ERTS checks and the
    relup plan read files and the state already asked."""
    node = make_root(tmp_path / "root", unpacked=False)
    first, second, result = module_runs(node, tarball)
    assert first == ["state"]
    assert second == ["state", "unpack", "install"]
    assert len(first) + len(second) == 4
    assert (result["from_version"], result["to_version"], result["permanent"], result["changed"]) == ("1.0.0", "2.0.0", True, True)
    assert result["unpack"]["method"] == "release_handler"
    assert all(check["ok"] for check in result["erts_checks"]), result["erts_checks"]
    assert node.states == {"1.0.0": "old", "2.0.0": "permanent"}
    assert {e["version"]: e["state"] for e in result["releases"]} == node.states
    assert os.path.isfile(os.path.join(node.root, "releases/2.0.0/kvstore.rel"))  # put back after release_handler


def test_upgrade_with_a_tarball_health_and_keep(tmp_path, tarball):
    """+1 for the health check and +1 for removing the old release: 6 round trips in all (1 + 5)."""
    node = make_root(tmp_path / "root", unpacked=False)
    first, second, result = module_runs(node, tarball, health=Health("kvstore", "health"), keep=0)
    assert first == ["state"]
    assert second == ["state", "unpack", "install", "health", "remove"]
    assert result["health"]["ok"] and result["removed"] == ["1.0.0"]
    assert node.states == {"2.0.0": "permanent"}


def test_upgrade_to_a_version_already_unpacked(tmp_path):
    """2 round trips: the node's state, then the install call (which answers the state after it)."""
    node = make_root(tmp_path / "root", unpacked=True)
    result = upgrade(session(node), "2.0.0", ChangeOptions())
    assert node.requests == ["state", "install"]
    assert (result["from_version"], result["to_version"], result["changed"]) == ("1.0.0", "2.0.0", True)
    assert node.states == {"1.0.0": "old", "2.0.0": "permanent"}


def test_upgrade_to_the_running_version_asks_once(tmp_path):
    """1 round trip: the state shows 2.0.0 permanent already; nothing to install."""
    node = make_root(tmp_path / "root", unpacked=True)
    node.states = {"1.0.0": "old", "2.0.0": "permanent"}
    node.write_releases()
    result = upgrade(session(node), "2.0.0", ChangeOptions())
    assert node.requests == ["state"] and result["changed"] is False


def test_check_mode_with_a_tarball_still_on_the_controller(tmp_path, tarball):
    """Check mode, first run: 1 round trip (the state) and no tarball needed: nothing is sent in check mode."""
    node = make_root(tmp_path / "root", unpacked=False)
    checksum = "sha256:" + inspect_file(tarball).sha256
    result = upgrade(session(node), None, ChangeOptions(),
                     Source("/controller/kvstore-2.0.0.tar.gz", False, "kvstore", "2.0.0", checksum), check_mode=True)
    assert node.requests == ["state"]
    assert (result["changed"], result["to_version"], result["unpack"]["changed"]) == (True, "2.0.0", True)
    assert node.states == {"1.0.0": "permanent"} and not os.path.exists(os.path.join(node.root, "releases/2.0.0"))


def beam_bytes(module, code):
    """A minimal BEAM file: the chunks _beam reads, code as the Code chunk."""
    chunks = [(b"AtU8", struct.pack(">i", 1) + bytes([len(module)]) + module.encode()), (b"Code", code), (b"StrT", b""),
              (b"ImpT", struct.pack(">I", 0)), (b"ExpT", struct.pack(">I", 0))]
    body = b"".join(name + struct.pack(">I", len(data)) + data + b"\0" * (-len(data) % 4) for name, data in chunks)
    return b"FOR1" + struct.pack(">I", len(body) + 4) + b"BEAM" + body


def reviewed_root(path, up_script):
    """A root running 1.0.0 with 2.0.0 unpacked, kv_server's code changed between them, and a relup whose way up is
    up_script. Returns the node and the md5s of kv_server in 1.0.0 and 2.0.0."""
    node = make_root(path, unpacked=True)
    md5s = []
    for version, code in (("1.0.0", b"old code"), ("2.0.0", b"new code")):
        data = beam_bytes("kv_server", code)
        write(os.path.join(node.root, "lib/kvstore-%s/ebin/kv_server.beam" % version), data)
        md5s.append(read_beam(data).md5)
    write(os.path.join(node.root, "releases/2.0.0/relup"),
          ('{"2.0.0",[{"1.0.0",[],[%s]}],[{"1.0.0",[],[point_of_no_return]}]}.\n' % up_script).encode())
    return node, md5s[0], md5s[1]


LOADS_KV_SERVER = "{load_object_code,{kvstore,\"2.0.0\",[kv_server]}},point_of_no_return,{load,{kv_server,brutal_purge,brutal_purge}}"


def test_the_review_asks_once_and_the_post_check_rides_on_the_install(tmp_path):
    """3 round trips: the state, the review's node facts (the relup loads kv_server), the install call that also reads
    the code kv_server runs afterwards."""
    node, _old, new = reviewed_root(tmp_path / "root", LOADS_KV_SERVER)
    node.loaded = {"kv_server": new}
    result = upgrade(session(node), "2.0.0", ChangeOptions(relup_review="strict"))
    assert node.requests == ["state", "review", "install"]
    assert result["relup_review"] == [] and result["warnings"] == []
    assert node.states == {"1.0.0": "old", "2.0.0": "permanent"}


def test_a_relup_that_loads_nothing_asks_nothing_more(tmp_path):
    """The relup forgets kv_server: nothing to ask the node (2 round trips, as without the review); in warn mode the
    upgrade goes on and the post-check, from the install call's answer, names kv_server still on its old code."""
    node, old, _new = reviewed_root(tmp_path / "root", "point_of_no_return")
    node.loaded = {"kv_server": old}
    result = upgrade(session(node), "2.0.0", ChangeOptions(relup_review="warn"))
    assert node.requests == ["state", "install"]
    assert [(f["kind"], f["module"]) for f in result["relup_review"]] == [("not_loaded", "kv_server"), ("still_old_code", "kv_server")]
    assert result["warnings"] == [f["msg"] for f in result["relup_review"]]


def test_strict_refuses_before_the_install(tmp_path):
    node, _old, _new = reviewed_root(tmp_path / "root", "point_of_no_return")
    with pytest.raises(OtpReleaseError) as caught:
        upgrade(session(node), "2.0.0", ChangeOptions(relup_review="strict"))
    assert node.requests == ["state"] and node.states == {"1.0.0": "permanent", "2.0.0": "unpacked"}
    assert [f["kind"] for f in caught.value.fields["relup_review"]] == ["not_loaded"]
    assert "Nothing was changed" in caught.value.msg and "{load_module, kv_server}" in caught.value.msg


def test_off_reads_and_asks_nothing(tmp_path):
    node, _old, _new = reviewed_root(tmp_path / "root", LOADS_KV_SERVER)
    write(os.path.join(node.root, "lib/kvstore-2.0.0/ebin/kv_broken.beam"), b"not a beam")
    with pytest.raises(OtpReleaseError, match="Cannot review the relup: the beams of kvstore 2.0.0 are unreadable"):
        upgrade(session(node), "2.0.0", ChangeOptions(relup_review="warn"))
    assert node.requests == ["state"]
    result = upgrade(session(node), "2.0.0", ChangeOptions(relup_review="off"))
    assert node.requests == ["state", "state", "install"] and result["relup_review"] == []
