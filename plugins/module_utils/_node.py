# -*- coding: utf-8 -*-
# Copyright (c) otp.release contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The control channel to a running node: one Erlang expression in, one term out.

Fast path: the release's bundled erl_call. Fallback: a hidden VM booted from the release's start_clean
boot file that forwards the expression with rpc. The cookie only ever sits in a private temporary
HOME/.erlang.cookie (mode 0400) that is removed after the call.
"""

from __future__ import annotations

import base64
import contextlib
import os
import re
import secrets
import shutil
import socket
import struct
import subprocess
import tempfile
import time

from ansible_collections.otp.release.plugins.module_utils._erlterm import ParseError, format_term, parse, Atom

DEFAULT_EPMD_PORT = 4369
CHANNELS = ("auto", "erl_call", "hidden_vm")
_ERL_CALL_RESULT = re.compile(r"OTPREL<([A-Za-z0-9+/=]*)>OTPREL")
_VM_MARKER = "OTPREL-RESULT:"


class NodeError(Exception):
    """A call to the node failed. kind: not_running, not_registered, bad_cookie, timeout, no_channel, call."""

    def __init__(self, kind, msg, raw=None):
        super(NodeError, self).__init__(msg)
        self.kind = kind
        self.msg = msg
        self.raw = raw


class NodeException(NodeError):
    """The expression raised on the node: class, reason and stack as Erlang text."""

    def __init__(self, msg, error_class, reason, stack):
        super(NodeException, self).__init__("call", msg, raw=reason)
        self.error_class = error_class
        self.reason = reason
        self.stack = stack


def split_node(node):
    """'name@host' -> ('name', 'host', is_long_name)."""
    if "@" not in node:
        raise NodeError("not_registered", "Node name %r has no '@host' part: give the full name, e.g. %s@127.0.0.1." % (node, node))
    alive, host = node.split("@", 1)
    return alive, host, "." in host or _is_ip(host)


def _is_ip(host):
    try:
        socket.inet_pton(socket.AF_INET6 if ":" in host else socket.AF_INET, host)
        return True
    except OSError:
        return False


def epmd_port(env=None):
    value = (env if env is not None else os.environ).get("ERL_EPMD_PORT")
    return int(value) if value else DEFAULT_EPMD_PORT


def epmd_names(host, port, timeout=5.0):
    """Ask epmd on host:port for its registered names -> {name: dist_port}. Raises OSError if none answers."""
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(struct.pack(">HB", 1, 110))  # NAMES_REQ
        data = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    names = {}
    for line in data[4:].decode("utf-8", "replace").splitlines():
        match = re.match(r"name (\S+) at port (\d+)", line)
        if match:
            names[match.group(1)] = int(match.group(2))
    return names


@contextlib.contextmanager
def private_home(cookie):
    """A temporary HOME holding only .erlang.cookie (0400); removed on exit."""
    home = tempfile.mkdtemp(prefix="otp-release-")
    try:
        os.chmod(home, 0o700)
        cookie_path = os.path.join(home, ".erlang.cookie")
        fd = os.open(cookie_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o400)
        with os.fdopen(fd, "w") as cookie_file:
            cookie_file.write(cookie)
        yield home
    finally:
        shutil.rmtree(home, ignore_errors=True)


def run_command(argv, stdin_text=None, env=None, timeout=None):
    """The one place that runs an external program: LANG=C, absolute argv[0], returns (rc, stdout, stderr)."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    full_env["LANG"] = full_env["LC_ALL"] = "C"
    try:
        proc = subprocess.run(argv, input=stdin_text, env=full_env, timeout=timeout, check=False,  # pylint: disable=ansible-bad-function
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, encoding="utf-8", errors="replace")
    except subprocess.TimeoutExpired:
        raise NodeError("timeout", "%s did not finish within %s s." % (os.path.basename(argv[0]), timeout))
    return proc.returncode, proc.stdout, proc.stderr


def wrap(expression):
    """The expression as evaluated: inside a try, its result printed by the node itself with ~0tp into a UTF-8 binary."""
    return (
        "begin OtpRelResult__ = try {ok, begin %s end} catch OtpRelClass__:OtpRelReason__:OtpRelStack__ -> "
        "{exception, OtpRelClass__, OtpRelReason__, OtpRelStack__} end, "
        "unicode:characters_to_binary(io_lib:format(\"~0tp\", [OtpRelResult__])) end" % expression
    )


class Channel(object):
    """Calls one node from the release root's own ERTS."""

    def __init__(self, node, cookie, erts_bin, boot=None, boot_vars=None, timeout=60, channel="auto",
                 env=None, runner=run_command):
        self.node = node
        self.cookie = cookie
        self.erts_bin = erts_bin
        self.boot = boot
        self.boot_vars = boot_vars or {}
        self.timeout = timeout
        self.env = dict(env or {})
        self.runner = runner
        self.channel = self._choose(channel)

    def _choose(self, channel):
        erl_call = os.path.join(self.erts_bin or "", "erl_call")
        if channel == "erl_call" or (channel == "auto" and os.access(erl_call, os.X_OK)):
            if not os.access(erl_call, os.X_OK):
                raise NodeError("no_channel", "%s is missing: this ERTS has no erl_call (OTP 23+ bundles it); use channel=hidden_vm." % erl_call)
            return "erl_call"
        if not self.boot or not os.path.exists(self.boot + ".boot"):
            raise NodeError("no_channel", "Cannot reach the node: no erl_call in %s and no boot file %s.boot for a control VM."
                            % (self.erts_bin, self.boot))
        return "hidden_vm"

    def call(self, expression):
        """Evaluate the Erlang expression (no trailing dot) on the node and return its value as a Python term."""
        if self.cookie is None:
            raise NodeError("bad_cookie", "No cookie for node %s: none was given and none was found. Pass cookie or cookie_file." % self.node)
        with private_home(self.cookie) as home:
            env = dict(self.env, HOME=home)
            if self.channel == "erl_call":
                text = self._call_erl_call(expression, env)
            else:
                text = self._call_hidden_vm(expression, env, home)
        try:
            result = parse(text)
        except ParseError as exc:
            raise NodeError("call", "The answer of node %s could not be read (%s): %s" % (self.node, exc, text[:500]), raw=text)
        if isinstance(result, tuple) and result and result[0] == "exception":
            error_class, reason, stack = result[1:]
            raise NodeException("The call on node %s raised %s:%s" % (self.node, error_class, format_term(reason)),
                                error_class, reason, stack)
        return result[1]

    def _call_erl_call(self, expression, env):
        alive, host, long_name = split_node(self.node)
        argv = [os.path.join(self.erts_bin, "erl_call"), "-name" if long_name else "-sname", self.node,
                "-e", "-fetch_stdout", "-no_result_term", "-timeout", str(max(1, int(self.timeout)))]
        # erl_call shortens long terms it prints itself, so the node prints the answer, base64-encoded.
        request = "io:put_chars([\"OTPREL<\", base64:encode(%s), \">OTPREL\"]).\n" % wrap(expression)
        rc, out, err = self.runner(argv, stdin_text=request, env=env, timeout=self.timeout + 5)
        if rc == 142 or (rc != 0 and "timeout" in (out + err).lower()):
            raise NodeError("timeout", "Node %s did not answer within %s s." % (self.node, self.timeout))
        if rc != 0:
            self._diagnose(err or out, env)
        match = _ERL_CALL_RESULT.search(out)
        if not match:
            raise NodeError("call", "Node %s could not evaluate the request: %s" % (self.node, (out + err).strip()[:1000]), raw=out)
        return base64.b64decode(match.group(1)).decode("utf-8", "replace")

    def _call_hidden_vm(self, expression, env, home):
        alive, host, long_name = split_node(self.node)
        expr_file = os.path.join(home, "request.erl")
        with open(expr_file, "w") as request:
            request.write(wrap(expression) + ".\n")
        own_name = "otprel_%s" % secrets.token_hex(6)
        if long_name:
            own_name += "@" + ("127.0.0.1" if host in ("127.0.0.1", "localhost") else host)
        program = (
            "R = case net_kernel:connect_node(%(node)s) of "
            " true -> {ok, Toks, _} = erl_scan:string(binary_to_list(element(2, file:read_file(%(file)s)))), "
            "  {ok, Exprs} = erl_parse:parse_exprs(Toks), "
            "  case rpc:call(%(node)s, erl_eval, exprs, [Exprs, []], %(ms)d) of "
            "   {value, V, _} -> {value, V}; {badrpc, B} -> {badrpc, B} end; "
            " false -> not_connected end, "
            "io:format(\"~n%(marker)s~w~n\", [R]), halt(0)."
            % dict(node=format_term(Atom(self.node)), file=format_term(expr_file), ms=int(self.timeout * 1000),
                   marker=_VM_MARKER))
        argv = [os.path.join(self.erts_bin, "erlexec"), "-boot", self.boot]
        for var, value in sorted(self.boot_vars.items()):
            argv += ["-boot_var", var, value]
        argv += ["-hidden", "-noshell", "-noinput", "-name" if long_name else "-sname", own_name,
                 "-kernel", "inet_dist_use_interface", "{127,0,0,1}" if host in ("127.0.0.1", "localhost") else "{0,0,0,0}",
                 "-eval", program]
        root = os.path.dirname(os.path.dirname(self.erts_bin))
        env = dict(env, ROOTDIR=root, BINDIR=self.erts_bin, EMU="beam", PROGNAME="erl")
        rc, out, err = self.runner(argv, env=env, timeout=self.timeout + 10)
        marker_at = out.rfind(_VM_MARKER)
        if marker_at < 0:
            raise NodeError("call", "The control VM for node %s failed (exit %s): %s" % (self.node, rc, (out + err).strip()[-1000:]))
        answer = parse(out[marker_at + len(_VM_MARKER):].strip())
        if answer == "not_connected":
            self._diagnose("could not connect", env)
        if isinstance(answer, tuple) and answer[0] == "badrpc":
            if answer[1] == "timeout":
                raise NodeError("timeout", "Node %s did not answer within %s s." % (self.node, self.timeout))
            raise NodeError("call", "Node %s could not evaluate the request: %s" % (self.node, format_term(answer[1])), raw=answer[1])
        return bytes(answer[1]).decode("utf-8", "replace")

    def _diagnose(self, detail, env):
        """Tell apart: no epmd (nothing runs), name not registered, and registered but refused (cookie)."""
        alive, host, long_name = split_node(self.node)
        port = epmd_port(dict(os.environ, **env))
        epmd_host = "127.0.0.1" if host in ("localhost",) else host
        try:
            names = epmd_names(epmd_host, port)
        except OSError as exc:
            raise NodeError("not_running", "Node %s is not running: no epmd answers on %s:%s (%s). Start the node, or give the "
                            "right ERL_EPMD_PORT." % (self.node, epmd_host, port, exc.strerror or exc))
        if alive not in names:
            registered = ", ".join(sorted(names)) or "none"
            raise NodeError("not_registered", "Node %s is not running or the name is wrong: epmd on %s:%s does not know '%s' "
                            "(registered: %s). Start the node, or pass the right node name." % (self.node, epmd_host, port, alive, registered))
        raise NodeError("bad_cookie", "Node %s is running (epmd lists it on port %s) but refused the connection: the cookie is "
                        "wrong. Pass the node's cookie with cookie or cookie_file. (%s)" % (self.node, names[alive], detail.strip()[:300]))

    def wait_until_answers(self, expression="node()", deadline=None, interval=0.25):
        """Poll until the node answers the expression; returns its value. Raises the last NodeError at the deadline."""
        deadline = deadline or (time.monotonic() + self.timeout)
        while True:
            try:
                return self.call(expression)
            except NodeException:
                raise
            except NodeError:
                if time.monotonic() >= deadline:
                    raise
            time.sleep(interval)
