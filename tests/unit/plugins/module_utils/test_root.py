"""The release root (_root) and the node identity found from its files (_identity): producer, cold-start version,
states, node name and cookie, without a running node."""

import pytest

import socket

from ansible_collections.otp.release.plugins.module_utils import _identity
from ansible_collections.otp.release.plugins.module_utils._errors import OtpReleaseError
from ansible_collections.otp.release.plugins.module_utils._identity import NodeProcess, discover, read_vm_args
from ansible_collections.otp.release.plugins.module_utils._relfiles import vm_args_options
from ansible_collections.otp.release.plugins.module_utils._root import ReleaseRoot

RELEASES = """[{release,"kvstore","2.0.0","13.1.5",[{kernel,"8.5.3","lib/kernel-8.5.3"}],permanent},
 {release,"kvstore","1.0.0","13.1.5",[{kernel,"8.5.3","/abs/lib/kernel-8.5.3"}],old}].
"""


def make_root(tmp_path, producer):
    root = tmp_path / producer
    for version in ("1.0.0", "2.0.0"):
        (root / "releases" / version).mkdir(parents=True)
        (root / "releases" / version / "kvstore.rel").write_text(
            '{release,{"kvstore","%s"},{erts,"13.1.5"},[{kernel,"8.5.3"}]}.\n' % version)
        (root / "releases" / version / "vm.args").write_text(
            "## comment\n-name kvstore@127.0.0.1\n-setcookie file-cookie-%s\n" % version)
    (root / "bin").mkdir()
    (root / "releases" / "start_erl.data").write_text("13.1.5 2.0.0\n")
    if producer == "relx":
        (root / "releases" / "RELEASES").write_text(RELEASES)
        (root / "bin" / "kvstore").write_text('#!/bin/sh\nREL_NAME="kvstore"\nREL_VSN="1.0.0"\n')
    elif producer == "distillery":
        (root / "releases" / "RELEASES").write_text(RELEASES)
        (root / "var").mkdir()
        (root / "var" / "start_erl.data").write_text("13.1.5 1.0.0\n")
        (root / "bin" / "kvstore").write_text("#!/bin/sh\n# distillery boot script\n")
    else:
        (root / "releases" / "COOKIE").write_text("mix-cookie\n")
        (root / "bin" / "kvstore").write_text('#!/bin/sh\nexport RELEASE_VSN="${RELEASE_VSN:-2.0.0}"\n')
    return root


@pytest.fixture(autouse=True)
def no_running_node(monkeypatch):
    monkeypatch.setattr(_identity, "find_node_process", lambda root: None)


@pytest.mark.parametrize("producer, start_version", [("relx", "1.0.0"), ("distillery", "1.0.0"), ("mix", "2.0.0")])
def test_producer_and_what_a_cold_start_boots(tmp_path, producer, start_version):
    release = ReleaseRoot(str(make_root(tmp_path, producer)))
    assert release.name == "kvstore"
    assert release.producer == producer
    assert release.start_version() == start_version


def test_states_come_from_releases_else_from_start_erl_data(tmp_path):
    relx = ReleaseRoot(str(make_root(tmp_path, "relx")))
    assert [(e["version"], e["state"]) for e in relx.release_states()] == [("1.0.0", "old"), ("2.0.0", "permanent")]
    mix = ReleaseRoot(str(make_root(tmp_path, "mix")))
    assert mix.release_states() == [dict(version="2.0.0", state="permanent", erts="13.1.5")]


def test_relative_and_absolute_lib_paths_of_releases(tmp_path):
    root = make_root(tmp_path, "relx")
    libs = dict((e["version"], e["libs"]) for e in ReleaseRoot(str(root)).releases_file())
    assert libs["2.0.0"] == [("kernel", "8.5.3", str(root / "lib" / "kernel-8.5.3"))]
    assert libs["1.0.0"] == [("kernel", "8.5.3", "/abs/lib/kernel-8.5.3")]


def test_identity_of_a_stopped_relx_root_comes_from_the_start_versions_vm_args(tmp_path):
    identity = discover(ReleaseRoot(str(make_root(tmp_path, "relx"))))
    assert identity.node == "kvstore@127.0.0.1" and identity.node_source.endswith("releases/1.0.0/vm.args")
    assert identity.cookie == "file-cookie-1.0.0" and identity.os_pid is None


def test_explicit_options_win_and_say_so(tmp_path):
    cookie_file = tmp_path / "cookie"
    cookie_file.write_text("from-file\n")
    identity = discover(ReleaseRoot(str(make_root(tmp_path, "relx"))), node="other@127.0.0.1", cookie_file=str(cookie_file))
    assert (identity.node, identity.node_source) == ("other@127.0.0.1", "option node")
    assert (identity.cookie, identity.cookie_source) == ("from-file", "cookie_file %s" % cookie_file)


def test_a_mix_cookie_comes_from_releases_cookie(tmp_path):
    root = make_root(tmp_path, "mix")
    for version in ("1.0.0", "2.0.0"):
        (root / "releases" / version / "vm.args").unlink()
    identity = discover(ReleaseRoot(str(root)))
    assert (identity.cookie, identity.cookie_source) == ("mix-cookie", str(root / "releases" / "COOKIE"))


def test_the_running_process_wins_over_files(tmp_path, monkeypatch):
    root = make_root(tmp_path, "relx")
    home = tmp_path / "home"
    home.mkdir()
    (home / ".erlang.cookie").write_text("home-cookie")
    process = NodeProcess(4242, ["kvstore", "-root", str(root), "-home", str(home), "-epmd_port", "4999",
                                 "--", "-sname", "kv"])
    monkeypatch.setattr(process, "environ", lambda: {})
    monkeypatch.setattr(_identity, "find_node_process", lambda r: process)
    monkeypatch.delenv("ERL_EPMD_PORT", raising=False)
    identity = discover(ReleaseRoot(str(root)))
    assert identity.node == "kv@%s" % socket.gethostname().split(".")[0] and identity.node_source == "command line of process 4242"
    assert (identity.cookie, identity.cookie_source) == ("home-cookie", str(home / ".erlang.cookie"))
    assert identity.env == {"ERL_EPMD_PORT": "4999"} and identity.os_pid == 4242


def test_vm_args_follow_args_file(tmp_path):
    inner = tmp_path / "inner.args"
    inner.write_text("-setcookie inner\n")
    outer = tmp_path / "vm.args"
    outer.write_text("-name a@127.0.0.1\n-args_file %s\n# -setcookie commented\n" % inner)
    assert read_vm_args(str(outer)) == [("-name", "a@127.0.0.1"), ("-setcookie", "inner")]


def test_vm_args_options_of_a_text_hand_included_files_to_the_reader():
    included = []

    def read_included(path):
        included.append(path)
        return [("-setcookie", "inner")]

    text = "## comment\n-name a@127.0.0.1\n  -args_file /etc/inner.args\n+K true\n-env  X  y z\n"
    assert vm_args_options(text, read_included) == [("-name", "a@127.0.0.1"), ("-setcookie", "inner"), ("-env", "X  y z")]
    assert included == ["/etc/inner.args"]


def test_an_ambiguous_root_asks_for_the_name(tmp_path):
    root = tmp_path / "two"
    for name in ("a", "b"):
        (root / "releases" / "1.0.0").mkdir(parents=True, exist_ok=True)
        (root / "releases" / "1.0.0" / ("%s.rel" % name)).write_text('{release,{"%s","1.0.0"},{erts,"13.1.5"},[]}.\n' % name)
    with pytest.raises(OtpReleaseError, match="pass name"):
        assert not ReleaseRoot(str(root)).name
