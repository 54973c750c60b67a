# -*- coding: utf-8 -*-
# Copyright (c) otp.release contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Who serves a root: the node's process, name, cookie and epmd port, each with where it came from.

Explicit options win; then the running beam.smp whose -root is this root (its argv and environment); then the
producer's files (vm.args, releases/COOKIE, ~/.erlang.cookie)."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass

from ansible_collections.otp.release.plugins.module_utils._errors import OtpReleaseError
from ansible_collections.otp.release.plugins.module_utils._relfiles import read_text, vm_args_options


def read_vm_args(path, seen=None):
    """Options of a vm.args file as [(flag, value)], following -args_file."""
    seen = seen if seen is not None else set()
    if path in seen or not os.path.isfile(path):
        return []
    seen.add(path)
    return vm_args_options(read_text(path), lambda included: read_vm_args(included, seen))


def node_from_flag(flag, value):
    if "@" in value:
        return value
    return "%s@%s" % (value, socket.gethostname().split(".")[0] if flag == "-sname" else socket.getfqdn())


class NodeProcess(object):
    """A beam.smp process serving a root, read from /proc."""

    def __init__(self, pid, argv):
        self.pid = pid
        self.argv = argv

    def flag(self, name):
        for index, arg in enumerate(self.argv[:-1]):
            if arg == name:
                return self.argv[index + 1]
        return None

    def environ(self):
        try:
            with open("/proc/%d/environ" % self.pid, "rb") as handle:
                pairs = handle.read().split(b"\0")
        except OSError:
            return {}
        return dict(p.decode("utf-8", "replace").split("=", 1) for p in pairs if b"=" in p)


def _is_beam(pid, argv):
    """relx and others rename argv[0] (exec -a), so look at the executable where we may."""
    try:
        return os.path.basename(os.readlink("/proc/%s/exe" % pid)).startswith("beam")
    except OSError:
        return os.path.basename(argv[0]).startswith("beam") or "-progname" in argv


def find_node_process(root):
    """The beam.smp whose -root is this root and that runs distributed (not one of our hidden control VMs)."""
    real_root = os.path.realpath(root)
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % entry, "rb") as handle:
                argv = [a.decode("utf-8", "replace") for a in handle.read().split(b"\0")]
        except OSError:
            continue
        if "-root" not in argv or not _is_beam(entry, argv):
            continue
        process = NodeProcess(int(entry), argv)
        proc_root = process.flag("-root")
        distributed = "-name" in argv or "-sname" in argv
        if proc_root and os.path.realpath(proc_root) == real_root and distributed and "-hidden" not in argv:
            found.append(process)
    return min(found, key=lambda p: p.pid) if found else None


@dataclass
class Identity:
    """Node name, cookie and the environment for calls (ERL_EPMD_PORT), with their sources."""

    node: str | None
    node_source: str | None
    cookie: str | None
    cookie_source: str | None
    process: NodeProcess | None
    env: dict

    @property
    def os_pid(self):
        return self.process.pid if self.process else None


def _cookie_from_file(path):
    try:
        return read_text(path).strip()
    except OSError as exc:
        raise OtpReleaseError("Cannot read the cookie file %s: %s." % (path, exc.strerror))


def _vm_args(release, process):
    """(options, source) of the vm.args the node runs with, or would start with."""
    if process:
        args_file = process.flag("-args_file")
        if args_file:
            return read_vm_args(args_file), "%s (the running node's -args_file)" % args_file
        return [], None
    states = release.release_states()
    version = release.start_version() or next((e["version"] for e in states if e["state"] == "permanent"), None)
    path = release.path("releases", version or "", "vm.args")
    if version and os.path.isfile(path):
        return read_vm_args(path), path
    return [], None


def _node_name(release, node, process, proc_env, vm_args, vm_args_source):
    if node:
        return node, "option node"
    if process:
        for flag in ("-name", "-sname"):
            if process.flag(flag):
                return node_from_flag(flag, process.flag(flag)), "command line of process %d" % process.pid
    for flag, value in vm_args:
        if flag in ("-name", "-sname"):
            return node_from_flag(flag, value), vm_args_source
    if proc_env.get("RELEASE_NODE"):
        return proc_env["RELEASE_NODE"], "RELEASE_NODE of process %d" % process.pid
    if release.producer == "mix":
        return node_from_flag("-sname", release.name), "mix default (RELEASE_NODE unset: the release name, short names)"
    return None, None


def _cookie(release, cookie, cookie_file, process, proc_env, vm_args, vm_args_source):
    if cookie is not None:
        return cookie, "option cookie"
    if cookie_file:
        return _cookie_from_file(cookie_file), "cookie_file %s" % cookie_file
    if process and process.flag("-setcookie"):
        return process.flag("-setcookie"), "command line of process %d" % process.pid
    found = [(value, vm_args_source) for flag, value in vm_args if flag == "-setcookie"]
    if found:
        return found[-1]
    if proc_env.get("RELEASE_COOKIE"):
        return proc_env["RELEASE_COOKIE"], "RELEASE_COOKIE of process %d" % process.pid
    if os.path.isfile(release.path("releases", "COOKIE")):
        return _cookie_from_file(release.path("releases", "COOKIE")), release.path("releases", "COOKIE")
    home = (process.flag("-home") if process else None) or proc_env.get("HOME") or os.path.expanduser("~")
    path = os.path.join(home, ".erlang.cookie")
    if os.path.isfile(path):
        return _cookie_from_file(path), path
    return None, None


def discover(release, node=None, cookie=None, cookie_file=None, epmd_port=None):
    """The Identity of the node serving release (a ReleaseRoot). epmd_port: the option, which wins over the node's
    own -epmd_port or ERL_EPMD_PORT, which win over this process's ERL_EPMD_PORT."""
    process = find_node_process(release.root)
    proc_env = process.environ() if process else {}
    env = {}
    found_port = (process.flag("-epmd_port") if process else None) or proc_env.get("ERL_EPMD_PORT")
    if epmd_port:
        env["ERL_EPMD_PORT"] = str(epmd_port)
    elif found_port and "ERL_EPMD_PORT" not in os.environ:
        env["ERL_EPMD_PORT"] = found_port
    vm_args, vm_args_source = _vm_args(release, process)
    node, node_source = _node_name(release, node, process, proc_env, vm_args, vm_args_source)
    cookie, cookie_source = _cookie(release, cookie, cookie_file, process, proc_env, vm_args, vm_args_source)
    return Identity(node, node_source, cookie, cookie_source, process, env)
