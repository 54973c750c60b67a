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
import os
import re
import secrets
import socket
import struct

from ansible_collections.otp.release.plugins.module_utils._erlterm import Atom, ParseError, format_term, parse
from ansible_collections.otp.release.plugins.module_utils._errors import NodeError, NodeException
from ansible_collections.otp.release.plugins.module_utils._proc import erlexec_command, private_home, run_command

DEFAULT_EPMD_PORT = 4369
_ERL_CALL_RESULT = re.compile(r"OTPREL<([A-Za-z0-9+/=]*)>OTPREL")
_VM_MARKER = "OTPREL-RESULT:"


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
        # a client name of its own: erl_call's default one is the same for every call, so parallel calls collide
        argv = [os.path.join(self.erts_bin, "erl_call"), "-name" if long_name else "-sname", self.node,
                "-h", "otprel_" + secrets.token_hex(6), "-e", "-fetch_stdout", "-no_result_term", "-timeout", str(max(1, int(self.timeout)))]
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
        argv, env = erlexec_command(self.erts_bin, self.boot, self.boot_vars, [
            "-name" if long_name else "-sname", own_name,
            "-kernel", "inet_dist_use_interface", "{127,0,0,1}" if host in ("127.0.0.1", "localhost") else "{0,0,0,0}",
            "-eval", program], env)
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
