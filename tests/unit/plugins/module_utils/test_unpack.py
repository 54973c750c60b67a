"""The unpack and verify flows without Erlang: member-path rules, first install, cleanup after a failed
release_handler unpack (a fake node), preflight answers, RELEASES text."""

import gzip
import hashlib
import io
import os
import sys
import tarfile

import pytest

from ansible_collections.otp.release.plugins.module_utils import _identity, _module, _unpack
from ansible_collections.otp.release.plugins.module_utils._erlterm import Atom, parse_all
from ansible_collections.otp.release.plugins.module_utils._errors import NodeError, OtpReleaseError
from ansible_collections.otp.release.plugins.module_utils._relfiles import Relup, parse_rel, rel_libs, releases_file_text, releases_text
from ansible_collections.otp.release.plugins.module_utils._root import ReleaseRoot
from ansible_collections.otp.release.plugins.module_utils._session import LIVE_EXPR, Session
from ansible_collections.otp.release.plugins.module_utils._tarball import inspect_file, parse_checksum
from ansible_collections.otp.release.plugins.module_utils._unpack import Source, first_install, restore_rel, unpack, unpack_on_node
from ansible_collections.otp.release.plugins.module_utils._verify import verify

pytestmark = pytest.mark.usefixtures("no_node_process")

REL = '{release,{"kvstore","%s"},{erts,"13.1.5"},[{kernel,"8.5.3"},{stdlib,"4.2"},{kvstore,"%s"}]}.\n'
RELUP = '{"2.0.0",[{"1.0.0",[],[point_of_no_return]}],[{"1.0.0",[],[point_of_no_return]}]}.\n'


def member(name, data=b"", kind=tarfile.REGTYPE, link="", mode=0o644):
    return dict(name=name, data=data, kind=kind, link=link, mode=mode)


def release_members(version="2.0.0"):
    return [
        member("lib/kvstore-%s/ebin/kvstore.app" % version, b"{application,kvstore,[]}.\n"),
        member("lib/kernel-8.5.3/ebin/kernel.app", b"{application,kernel,[]}.\n"),
        member("releases/%s/kvstore.rel" % version, (REL % (version, version)).encode()),
        member("releases/%s/start.boot" % version, b"boot"),
        member("releases/%s/relup" % version, RELUP.encode() if version == "2.0.0" else b'{"1.0.0",[],[]}.\n'),
        member("releases/RELEASES", b"[].\n"),
        member("releases/start_erl.data", ("13.1.5 %s\n" % version).encode()),
        member("erts-13.1.5/bin/beam.smp", b"\x7fELF", mode=0o755),
        member("bin/kvstore", b"#!/bin/sh\n", mode=0o755),
        member("bin/kvstore-%s" % version, b"#!/bin/sh\n", mode=0o755),
    ]


def write_tarball(path, members):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for item in members:
            info = tarfile.TarInfo(item["name"])
            info.type, info.mode, info.linkname, info.mtime = item["kind"], item["mode"], item["link"], 1700000000
            if item["kind"] == tarfile.REGTYPE:
                info.size = len(item["data"])
                tar.addfile(info, io.BytesIO(item["data"]))
            else:
                tar.addfile(info)
    path.write_bytes(gzip.compress(buffer.getvalue()))
    return str(path)


def tree(root):
    """{relative path: bytes or 'dir'} of everything under root."""
    found = {}
    for directory, dirs, files in os.walk(str(root)):
        for name in dirs:
            found[os.path.relpath(os.path.join(directory, name), str(root))] = "dir"
        for name in files:
            with open(os.path.join(directory, name), "rb") as handle:
                found[os.path.relpath(os.path.join(directory, name), str(root))] = handle.read()
    return found


@pytest.fixture
def tarball(tmp_path):
    return write_tarball(tmp_path / "kvstore-2.0.0.tar.gz", release_members())


def on_host(path):
    """A Source on this host, inspected as unpack() does first."""
    source = Source(path, True)
    source.inspect()
    return source


# ---- checksum and member paths ----

def test_checksum_option():
    digest = "AB" * 32
    assert parse_checksum("sha256:" + digest) == digest.lower()
    assert parse_checksum(None) is None
    for bad in ("md5:" + digest, digest, "sha256:" + digest[:-1], "sha256:" + "zz" * 32):
        with pytest.raises(OtpReleaseError, match="checksum must be 'sha256:' followed by 64 hex digits"):
            parse_checksum(bad)


def test_checksum_mismatch_names_the_file_and_both_values(tarball):
    actual = hashlib.sha256(open(tarball, "rb").read()).hexdigest()
    with pytest.raises(OtpReleaseError) as caught:
        inspect_file(tarball, checksum="sha256:" + "0" * 64)
    assert "%s does not match its checksum: expected sha256:%s, actual sha256:%s" % (tarball, "0" * 64, actual) in caught.value.msg
    assert inspect_file(tarball, checksum="sha256:" + actual.upper()).sha256 == actual


REFUSED = [
    (member("a/../../b"), "leads outside the release root"),
    (member("lib/../../etc/passwd"), "leads outside the release root"),
    (member("releases/2.0.0/../../../x"), "leads outside the release root"),
    (member("/etc/passwd"), "is an absolute path"),
    (member("lib/out", kind=tarfile.SYMTYPE, link="/etc"), "symlink with an absolute or empty target"),
    (member("lib/up", kind=tarfile.SYMTYPE, link="../../.."), "leads outside the release root"),
    (member("lib/pw", kind=tarfile.LNKTYPE, link="/etc/passwd"), "hard link to an absolute path"),
    (member("lib/pw", kind=tarfile.LNKTYPE, link="../../etc/passwd"), "leads outside the release root"),
    (member("lib/tty", kind=tarfile.CHRTYPE), "is a device or FIFO"),
    (member("lib/pipe", kind=tarfile.FIFOTYPE), "is a device or FIFO"),
]


@pytest.mark.parametrize("bad, words", REFUSED, ids=[refused[0]["name"] + ":" + refused[0]["kind"].decode() for refused in REFUSED])
def test_unsafe_members_are_refused(tmp_path, bad, words):
    path = write_tarball(tmp_path / "t.tar.gz", release_members() + [bad])
    with pytest.raises(OtpReleaseError) as caught:
        inspect_file(path)
    assert repr(bad["name"]) in str(caught.value) and words in str(caught.value)


def test_a_link_then_a_member_through_it_is_judged_where_it_lands(tmp_path):
    members = release_members() + [member("lib/here", kind=tarfile.SYMTYPE, link=".."), member("lib/here/../x")]
    with pytest.raises(OtpReleaseError, match="leads outside the release root"):
        inspect_file(write_tarball(tmp_path / "t.tar.gz", members))


ACCEPTED = ["./x", "lib/kvstore-2.0.0/priv/données/ünïcödé.txt", "lib/kvstore-2.0.0/priv/日本語", "a\\..\\b",
            "lib/kvstore-2.0.0/../kvstore-2.0.0/priv/again"]


def test_tricky_but_safe_names_are_accepted_and_installed(tmp_path):
    members = release_members() + [member(name, name.encode("utf-8")) for name in ACCEPTED] + [
        member("lib/kvstore-2.0.0/priv/link", kind=tarfile.SYMTYPE, link="../ebin")]
    path = write_tarball(tmp_path / "t.tar.gz", members)
    root = tmp_path / "root"
    first_install(Session(str(root)), on_host(path))
    assert (root / "x").read_bytes() == b"./x"
    assert (root / "lib/kvstore-2.0.0/priv/données/ünïcödé.txt").is_file()
    assert (root / "lib/kvstore-2.0.0/priv/日本語").is_file()
    assert (root / "a\\..\\b").is_file()  # a backslash is part of a POSIX name, not a separator
    assert (root / "lib/kvstore-2.0.0/priv/again").is_file()
    assert os.readlink(str(root / "lib/kvstore-2.0.0/priv/link")) == "../ebin"


# ---- first install ----

def test_releases_text_marks_the_version_permanent(tarball):
    facts = inspect_file(tarball)
    term = parse_all(releases_text(facts.name, facts.version, facts.rel_erts_version, facts.applications))[0]
    assert term == [("release", "kvstore", "2.0.0", "13.1.5",
                     [("kernel", "8.5.3", "lib/kernel-8.5.3"), ("stdlib", "4.2", "lib/stdlib-4.2"),
                      ("kvstore", "2.0.0", "lib/kvstore-2.0.0")], "permanent")]


def test_first_install_into_a_missing_root(tmp_path, tarball):
    root = tmp_path / "srv" / "kvstore"
    source = on_host(tarball)
    facts = source.facts
    checked = first_install(Session(str(root)), source, check_mode=True)
    assert checked["changed"] and checked["method"] == "first_install" and not root.exists()
    result = first_install(Session(str(root)), source)
    assert (result["changed"], result["method"], result["version"], result["running"]) == (True, "first_install", "2.0.0", False)
    assert [(e["version"], e["state"]) for e in result["releases"]] == [("2.0.0", "permanent")]
    # the tarball's own RELEASES is replaced
    assert (root / "releases" / "RELEASES").read_text() == releases_text("kvstore", "2.0.0", "13.1.5", facts.applications)
    assert (root / "bin" / "kvstore").stat().st_mode & 0o777 == 0o755
    assert sorted(os.listdir(str(root.parent))) == ["kvstore"]  # no staging directory left


def test_first_install_into_an_empty_directory_keeps_its_mode(tmp_path, tarball):
    root = tmp_path / "kvstore"
    root.mkdir(mode=0o750)
    root.chmod(0o750)
    first_install(Session(str(root)), on_host(tarball))
    assert root.stat().st_mode & 0o777 == 0o750 and (root / "releases" / "RELEASES").is_file()


def test_first_install_refusals(tmp_path, tarball):
    source = on_host(tarball)
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes").write_text("mine")
    with pytest.raises(OtpReleaseError, match="is not empty but holds no releases/ directory"):
        first_install(Session(str(busy)), source)
    assert os.listdir(str(busy)) == ["notes"]
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    with pytest.raises(OtpReleaseError, match="is a symlink"):
        first_install(Session(str(tmp_path / "link")), source)


def test_first_install_refuses_an_empty_root_a_process_runs_from(tmp_path, tarball, monkeypatch):
    root = tmp_path / "kvstore"
    root.mkdir()
    monkeypatch.setattr(_unpack, "find_node_process", lambda path: _identity.NodeProcess(4242, ["beam.smp", "-root", path]))
    with pytest.raises(OtpReleaseError, match="is empty but process 4242 runs with it as its root: stop it first"):
        first_install(Session(str(root)), on_host(tarball))
    assert os.listdir(str(root)) == []


def test_host_side_signature_is_refused(tarball, tmp_path):
    params = dict(root=str(tmp_path / "r"), src=tarball, remote_src=True, signature="/x.sig", public_key="k")
    with pytest.raises(OtpReleaseError, match="signature is checked on the controller"):
        _module.OPERATIONS["unpack"](params, False)
    assert not (tmp_path / "r").exists()


# ---- a running node (fake) ----

class FakeNode(Session):
    """A Session whose node is played here: answers LIVE_EXPR and UNPACK_EXPR like a node; `on_unpack(root)` plays
    release_handler. down: the node does not run (every call fails with NodeError(down))."""

    def __init__(self, root, on_unpack, states=None, erts="13.1.5", down=None):
        super(FakeNode, self).__init__(str(root), "kvstore", node="kv@127.0.0.1", cookie="test-cookie")
        self.on_unpack = on_unpack
        self.states = states or {"1.0.0": "permanent"}
        self.erts = erts
        self.down = down
        self.calls = []

    def answer(self):
        return ("kv@127.0.0.1", 4242, self.erts, [(v, s, ["kernel-8.5.3", "kvstore-" + v]) for v, s in self.states.items()],
                "<0.44.0>", False, Atom("undefined"))

    def call(self, expression):
        self.calls.append(expression)
        if self.down:
            raise NodeError(self.down, "Node kv@127.0.0.1 is not running.")
        if expression == LIVE_EXPR:
            return self.answer()
        outcome = self.on_unpack(self.release.root)
        if isinstance(outcome, Exception):
            raise outcome
        return (outcome, self.answer())


@pytest.fixture
def running_root(tmp_path):
    root = tmp_path / "root"
    for path, data in {"releases/RELEASES": '[{release,"kvstore","1.0.0","13.1.5",[{kernel,"8.5.3","lib/kernel-8.5.3"}],permanent}].\n',
                       "releases/1.0.0/kvstore.rel": REL % ("1.0.0", "1.0.0"), "lib/kernel-8.5.3/ebin/kernel.app": "x",
                       "lib/kvstore-1.0.0/ebin/kvstore.app": "x", "bin/kvstore": "x", "erts-13.1.5/bin/beam.smp": "x",
                       "data/kvstore.db": "x"}.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(data)
    return root


def release_handler_unpacks(node):
    def unpack(root):
        assert os.path.isfile(os.path.join(root, "releases/2.0.0/kvstore.tar.gz"))
        for path in ("lib/kvstore-2.0.0/ebin/kvstore.app", "releases/2.0.0/start.boot", "bin/kvstore-2.0.0"):
            os.makedirs(os.path.dirname(os.path.join(root, path)), exist_ok=True)
            open(os.path.join(root, path), "w").close()
        os.unlink(os.path.join(root, "releases/2.0.0/kvstore.tar.gz"))  # as release_handler does, with the .rel
        node.states["2.0.0"] = "unpacked"
        return ("ok", "2.0.0")
    return unpack


def test_unpack_on_node_places_calls_and_puts_the_rel_back(running_root, tarball):
    node = FakeNode(running_root, None)
    node.on_unpack = release_handler_unpacks(node)
    source = on_host(tarball)
    live = unpack_on_node(node, source)
    assert live.states == {"1.0.0": "permanent", "2.0.0": "unpacked"}
    assert (running_root / "releases/2.0.0/kvstore.rel").read_text() == REL % ("2.0.0", "2.0.0")
    assert not (running_root / "releases/2.0.0/kvstore.tar.gz").exists()
    assert 'release_handler:unpack_release("2.0.0/kvstore")' in node.calls[-1]
    assert len(node.calls) == 1  # the unpack call answers the state after it too
    assert [p for p in os.listdir(str(running_root / "releases/2.0.0")) if p.startswith(".")] == [".otp-release.sha256"]
    assert (running_root / "releases/2.0.0/.otp-release.sha256").read_text().strip() == source.facts.sha256


def test_failed_unpack_removes_what_it_created(running_root, tarball):
    before = tree(running_root)

    def partial_then_error(root):
        os.makedirs(os.path.join(root, "lib/kvstore-2.0.0/ebin"))
        open(os.path.join(root, "lib/kvstore-2.0.0/ebin/half.beam"), "w").close()
        return (Atom("error"), (Atom("cannot_extract_file"), "bin/kvstore-2.0.0", Atom("eperm")))

    node = FakeNode(running_root, partial_then_error)
    with pytest.raises(OtpReleaseError) as caught:
        unpack_on_node(node, on_host(tarball))
    message = caught.value.msg
    assert "it could not write bin/kvstore-2.0.0 (eperm)" in message
    assert "What the attempt created was removed (lib/kvstore-2.0.0, releases/2.0.0)" in message
    assert "still runs 1.0.0 and RELEASES is unchanged" in message
    assert caught.value.raw == ("cannot_extract_file", "bin/kvstore-2.0.0", "eperm")
    assert tree(running_root) == before


def test_a_crash_inside_release_handler_is_told(running_root, tarball):
    stack = [(Atom("release_handler"), Atom("extract_tar"), 2, []), (Atom("release_handler"), Atom("do_unpack_release"), 4, [])]
    crash = (Atom("case_clause"), (Atom("error"), Atom("eperm")))
    node = FakeNode(running_root, lambda root: (Atom("error"), (crash, stack)))
    with pytest.raises(OtpReleaseError, match=r"release_handler crashed with \{case_clause,\{error,eperm\}\} in release_handler:extract_tar/2"):
        unpack_on_node(node, on_host(tarball))


def test_a_broken_call_asks_the_node_again(running_root, tarball):
    node = FakeNode(running_root, None)
    done = release_handler_unpacks(node)

    def unpacked_but_answer_lost(root):
        done(root)
        return NodeError("timeout", "Node kv@127.0.0.1 did not answer within 60 s.")

    node.on_unpack = unpacked_but_answer_lost
    assert "2.0.0" in unpack_on_node(node, on_host(tarball)).states
    assert node.calls[-1] == LIVE_EXPR
    assert (running_root / "releases/2.0.0/kvstore.rel").is_file()


@pytest.mark.parametrize("kind", ["timeout", "not_running"])
def test_a_broken_call_and_a_silent_node_leave_things_alone(running_root, tarball, kind):
    node = FakeNode(running_root, lambda root: NodeError("timeout", "no answer"))
    original = node.call

    def silent_after_unpack(expression):
        if expression == LIVE_EXPR and len(node.calls) > 0:
            raise NodeError(kind, "still no answer")
        return original(expression)

    node.call = silent_after_unpack
    with pytest.raises(OtpReleaseError, match="Nothing was removed, as the unpack may still be running"):
        unpack_on_node(node, on_host(tarball))
    assert (running_root / "releases/2.0.0/kvstore.tar.gz").is_file()


def test_unpacked_meanwhile_by_someone_else(running_root, tarball):
    node = FakeNode(running_root, lambda root: ("error", ("existing_release", "2.0.0")))
    unpack_on_node(node, on_host(tarball))
    assert os.listdir(str(running_root / "releases/2.0.0")) == []


def test_leftovers_of_an_unfinished_unpack_are_refused(running_root, tarball):
    (running_root / "releases/2.0.0").mkdir()
    (running_root / "releases/2.0.0/start.boot").write_text("stale")
    (running_root / "lib/kvstore-2.0.0").mkdir()
    node = FakeNode(running_root, None)
    live = node.live("unpack into")
    with pytest.raises(OtpReleaseError) as caught:
        _unpack.refuse_leftovers(node.release, on_host(tarball), live)
    assert "releases/2.0.0/, " in caught.value.msg and "lib/kvstore-2.0.0/ already exist" in caught.value.msg
    assert "lib/kernel-8.5.3" not in caught.value.msg  # used by 1.0.0


# ---- a tarball still on the controller: the module's first run ----

def controller_source(tarball, name="kvstore", version="2.0.0", checksum=None):
    """What the action plugin passes: the controller's path (not readable here), name, version and sha256."""
    if checksum is None:
        checksum = "sha256:" + hashlib.sha256(open(tarball, "rb").read()).hexdigest()
    return Source("/controller/files/kvstore-2.0.0.tar.gz", False, name, version, checksum)


def test_known_version_needs_no_tarball(running_root, tarball):
    node = FakeNode(running_root, None, states={"1.0.0": "permanent", "2.0.0": "unpacked"})
    result = unpack(node, controller_source(tarball, checksum="sha256:" + "0" * 64))
    assert (result["changed"], result["method"], result["version"]) == (False, "none", "2.0.0")
    assert node.calls == [LIVE_EXPR]


def test_unknown_version_needs_the_tarball_unless_placed(running_root, tarball):
    node = FakeNode(running_root, None)
    with pytest.raises(OtpReleaseError) as caught:
        unpack(node, controller_source(tarball))
    assert caught.value.fields["tarball_needed"] is True
    assert "Version 2.0.0 of kvstore is not on the host yet" in caught.value.msg
    assert not (running_root / "releases/2.0.0").exists()

    checked = unpack(FakeNode(running_root, None), controller_source(tarball), check_mode=True)
    assert (checked["changed"], checked["method"]) == (True, "release_handler")
    assert {e["version"]: e["state"] for e in checked["releases"]} == {"1.0.0": "permanent", "2.0.0": "unpacked"}

    placed = running_root / "releases/2.0.0/kvstore.tar.gz"
    placed.parent.mkdir()
    placed.write_bytes(open(tarball, "rb").read())
    node = FakeNode(running_root, None)
    node.on_unpack = release_handler_unpacks(node)
    result = unpack(node, controller_source(tarball))
    assert (result["changed"], result["method"], result["erts_version"]) == (True, "release_handler", "13.1.5")
    assert {e["version"]: e["state"] for e in result["releases"]} == {"1.0.0": "permanent", "2.0.0": "unpacked"}


def test_a_placed_tarball_with_other_bytes_is_not_used(running_root, tarball):
    placed = running_root / "releases/2.0.0/kvstore.tar.gz"
    placed.parent.mkdir()
    placed.write_bytes(b"not the same tarball")
    with pytest.raises(OtpReleaseError) as caught:
        unpack(FakeNode(running_root, None), controller_source(tarball))
    assert caught.value.fields["tarball_needed"] is True


def test_other_release_name_is_refused(running_root, tarball):
    node = FakeNode(running_root, None)
    with pytest.raises(OtpReleaseError, match="holds release 'other' but .* serves 'kvstore'"):
        unpack(node, controller_source(tarball, name="other"))
    assert node.calls == []


def test_a_stopped_node_and_an_unknown_version_are_refused(running_root, tarball):
    node = FakeNode(running_root, None, down="not_running")
    with pytest.raises(OtpReleaseError, match="No node answers for .* version 2.0.0 is unpacked through the running node only"):
        unpack(node, controller_source(tarball))
    assert unpack(node, controller_source(tarball, version="1.0.0"))["method"] == "none"


def test_first_install_from_the_controller_needs_the_tarball(tmp_path, tarball):
    with pytest.raises(OtpReleaseError) as caught:
        unpack(Session(str(tmp_path / "new")), controller_source(tarball, version="2.0.0"))
    assert caught.value.fields["tarball_needed"] is True and not (tmp_path / "new").exists()
    checked = unpack(Session(str(tmp_path / "new")), controller_source(tarball), check_mode=True)
    assert (checked["changed"], checked["method"]) == (True, "first_install")


def test_a_controller_source_needs_name_and_version(tmp_path):
    with pytest.raises(OtpReleaseError, match="run the module as a task"):
        unpack(Session(str(tmp_path / "new")), Source("/controller/x.tar.gz", False))


# ---- verify helpers ----

def test_relup_path_by_direction():
    relup = Relup("2.0.0", up={"1.0.0": ["restart_new_emulator"]}, down={"1.0.0": ["point_of_no_return"]})
    assert relup.path("1.0.0", "2.0.0") == ["restart_new_emulator"]
    assert relup.path("2.0.0", "1.0.0") == ["point_of_no_return"]
    assert relup.path("1.5.0", "2.0.0") is None


def test_release_data_from_releases_when_the_rel_is_gone(running_root):
    release = ReleaseRoot(str(running_root), "kvstore")
    (running_root / "releases" / "1.0.0" / "kvstore.rel").unlink()
    erts, libs = release.version_contents("1.0.0")
    assert (erts, [lib[:2] for lib in libs]) == ("13.1.5", [("kernel", "8.5.3")])
    assert release.version_contents("9.9.9") is None


@pytest.fixture
def erts_root(tmp_path):
    """A root whose 2.0.0 runs on ERTS 13.1.6 and 1.0.0 on 13.1.5; the ERTS binaries are this Python (a real ELF
    file for this host)."""
    root = tmp_path / "root"
    python = os.path.realpath(sys.executable)
    for erts in ("13.1.5", "13.1.6"):
        (root / ("erts-" + erts) / "bin").mkdir(parents=True)
        for binary in ("beam.smp", "erlexec", "epmd", "erl_call"):
            os.symlink(python, str(root / ("erts-" + erts) / "bin" / binary))
    for version, erts in (("1.0.0", "13.1.5"), ("2.0.0", "13.1.6")):
        (root / "releases" / version).mkdir(parents=True)
        (root / "releases" / version / "kvstore.rel").write_text(
            '{release,{"kvstore","%s"},{erts,"%s"},[{kernel,"8.5.3"}]}.\n' % (version, erts))
    return root


def write_relup(root, restart):
    first = "restart_new_emulator," if restart else ""
    (root / "releases/2.0.0/relup").write_text(
        '{"2.0.0",[{"1.0.0",[],[%spoint_of_no_return]}],[{"1.0.0",[],[point_of_no_return]}]}.\n' % first)


def live_on(root, version, erts):
    """A session whose node runs version on ERTS erts; version None: no node runs."""
    if version is None:
        return FakeNode(root, None, down="not_running")
    return FakeNode(root, None, states={version: "permanent"}, erts=erts)


def test_verify_an_erts_change_needs_a_restarting_relup(erts_root):
    write_relup(erts_root, restart=False)
    with pytest.raises(OtpReleaseError) as caught:
        verify(live_on(erts_root, "1.0.0", "13.1.5"), "2.0.0")
    result = caught.value.fields
    assert result["failed_checks"] == ["erts_vs_running"], result["checks"]
    assert "erts_vs_running: ERTS changes from 13.1.5 to 13.1.6 but the relup from 1.0.0 does not restart" in caught.value.msg

    write_relup(erts_root, restart=True)
    result = verify(live_on(erts_root, "1.0.0", "13.1.5"), "2.0.0")
    assert result["ok"] and result["running_version"] == "1.0.0"
    assert "restart_new_emulator" in result["checks"][-1]["detail"]


def test_verify_a_downgrade_reads_the_running_versions_relup(erts_root):
    write_relup(erts_root, restart=True)  # the down-script to 1.0.0 does not restart
    with pytest.raises(OtpReleaseError, match="ERTS changes from 13.1.6 to 13.1.5 but the relup from 2.0.0"):
        verify(live_on(erts_root, "2.0.0", "13.1.6"), "1.0.0")
    assert verify(live_on(erts_root, "1.0.0", "13.1.5"), "1.0.0")["ok"]
    assert verify(live_on(erts_root, None, None), "2.0.0")["erts_running"] is None  # no node


def test_a_rel_lost_in_a_killed_unpack_is_written_again_from_releases(tmp_path, no_node_process):
    """release_handler deletes releases/<vsn>/<name>.rel when it unpacks, and a run killed before it was put back
    leaves it missing: the next unpack of the known version writes it again from the version's RELEASES entry."""
    apps = [("kernel", "8.5.3"), ("kvstore", "2.0.0")]
    (tmp_path / "releases" / "2.0.0").mkdir(parents=True)
    (tmp_path / "releases" / "RELEASES").write_text(releases_file_text([
        dict(name="kvstore", version="2.0.0", erts="13.1.5", libs=rel_libs(apps), state="unpacked")]))
    session = Session(str(tmp_path), "kvstore")
    assert restore_rel(session, "2.0.0", check_mode=True) == [str(tmp_path / "releases" / "2.0.0" / "kvstore.rel")]
    assert not (tmp_path / "releases" / "2.0.0" / "kvstore.rel").exists()
    assert restore_rel(session, "2.0.0") == [str(tmp_path / "releases" / "2.0.0" / "kvstore.rel")]
    rel = (tmp_path / "releases" / "2.0.0" / "kvstore.rel").read_text()
    assert parse_rel(rel, "kvstore.rel") == ("kvstore", "2.0.0", "13.1.5", apps)
    assert restore_rel(session, "2.0.0") == []
