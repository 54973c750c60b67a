"""The control channel's error mapping, with the one command runner stubbed and a fake epmd on loopback."""

import base64
import os
import socket
import stat
import struct
import threading

import pytest

from ansible_collections.otp.release.plugins.module_utils import _node
from ansible_collections.otp.release.plugins.module_utils._errors import NodeError, NodeException
from ansible_collections.otp.release.plugins.module_utils._node import Channel, wrap


def erl_call_output(text):
    return "some output of the node\nOTPREL<%s>OTPREL" % base64.b64encode(text).decode()


class FakeEpmd(object):
    """Answers NAMES_REQ with the given names, on a free loopback port."""

    def __init__(self, names):
        self.names = names
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn = self.sock.accept()[0]
            except OSError:
                return
            conn.recv(3)
            body = "".join("name %s at port %d\n" % item for item in self.names.items())
            conn.sendall(struct.pack(">I", self.port) + body.encode())
            conn.close()

    def close(self):
        self.sock.close()


@pytest.fixture
def erts_bin(tmp_path):
    path = tmp_path / "erts-13.1.5" / "bin"
    path.mkdir(parents=True)
    for name in ("erl_call", "erlexec"):
        (path / name).write_text("#!/bin/sh\n")
        (path / name).chmod(0o755)
    return str(path)


def channel(erts_bin, runner, env=None, node="kv@127.0.0.1"):
    return Channel(node, "s3cret-cookie", erts_bin, timeout=5, env=env, runner=runner)


def test_value_comes_back_parsed_and_cookie_only_in_private_home(erts_bin):
    seen = {}

    def runner(argv, stdin_text=None, env=None, timeout=None):
        seen["argv"], seen["stdin"] = argv, stdin_text
        cookie_path = os.path.join(env["HOME"], ".erlang.cookie")
        seen["cookie"] = open(cookie_path).read()
        seen["mode"] = stat.S_IMODE(os.stat(cookie_path).st_mode)
        seen["home"] = env["HOME"]
        text = b'{ok,[{"1.0.0",permanent}]}'
        return 0, erl_call_output(text), ""

    assert channel(erts_bin, runner).call("x()") == [("1.0.0", "permanent")]
    assert "s3cret-cookie" not in " ".join(seen["argv"]) and "s3cret-cookie" not in seen["stdin"]
    assert seen["cookie"] == "s3cret-cookie" and seen["mode"] == 0o400
    assert not os.path.exists(seen["home"])
    assert seen["argv"][1:3] == ["-name", "kv@127.0.0.1"]


def test_short_names_use_sname(erts_bin):
    argvs = []

    def runner(argv, stdin_text=None, env=None, timeout=None):
        argvs.append(argv)
        return 0, erl_call_output(b"{ok,ok}"), ""

    channel(erts_bin, runner, node="kv@myhost").call("ok")
    assert argvs[0][1] == "-sname"


def test_exception_on_node_is_reported_with_class_and_reason(erts_bin):
    text = b"{exception,error,badarg,[{erlang,binary_to_atom,1,[]}]}"

    def runner(argv, stdin_text=None, env=None, timeout=None):
        return 0, erl_call_output(text), ""

    with pytest.raises(NodeException) as info:
        channel(erts_bin, runner).call("x()")
    assert info.value.error_class == "error" and info.value.reason == "badarg"
    assert "raised error:badarg" in info.value.msg


@pytest.mark.parametrize("names, node, kind, words", [
    (None, "kv@127.0.0.1", "not_running", "no epmd answers"),
    ({"other": 4000}, "kv@127.0.0.1", "not_registered", "does not know 'kv' (registered: other)"),
    ({"kv": 4001}, "kv@127.0.0.1", "bad_cookie", "the cookie is wrong"),
])
def test_connection_failures_are_told_apart(erts_bin, names, node, kind, words):
    epmd = FakeEpmd(names) if names is not None else None
    if epmd is None:
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        probe.close()
    else:
        port = epmd.port

    def runner(argv, stdin_text=None, env=None, timeout=None):
        return 1, "", "erl_call: failed to connect to node %s\n" % node

    try:
        with pytest.raises(NodeError) as info:
            channel(erts_bin, runner, env={"ERL_EPMD_PORT": str(port)}, node=node).call("node()")
    finally:
        if epmd:
            epmd.close()
    assert info.value.kind == kind
    assert words in info.value.msg


def test_timeout_is_its_own_error(erts_bin):
    def runner(argv, stdin_text=None, env=None, timeout=None):
        return 142, "", ""

    with pytest.raises(NodeError) as info:
        channel(erts_bin, runner).call("timer:sleep(10000)")
    assert info.value.kind == "timeout" and "did not answer within 5 s" in info.value.msg


def test_missing_cookie_is_a_clear_error(erts_bin):
    chan = Channel("kv@127.0.0.1", None, erts_bin, runner=lambda *a, **k: pytest.fail("must not run"))
    with pytest.raises(NodeError) as info:
        chan.call("ok")
    assert info.value.kind == "bad_cookie" and "Pass cookie or cookie_file" in info.value.msg


def test_no_erl_call_and_no_boot_file_says_so(tmp_path):
    with pytest.raises(NodeError) as info:
        Channel("kv@127.0.0.1", "c", str(tmp_path), boot=str(tmp_path / "start_clean"))
    assert info.value.kind == "no_channel"


def test_wrapped_expression_is_ascii_and_catches_everything():
    text = wrap("kvstore:put(<<\"k\">>, <<\"v\">>)")
    assert "catch" in text and text.isascii()


def test_node_name_without_host_is_refused():
    with pytest.raises(NodeError) as info:
        _node.split_node("kvstore")
    assert "kvstore@127.0.0.1" in info.value.msg
