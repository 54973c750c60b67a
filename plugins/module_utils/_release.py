# -*- coding: utf-8 -*-
# Copyright (c) otp.release contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The release root on disk: versions, states, producer, cold-start pointer and the identity of its node."""

from __future__ import annotations

import os
import re
import socket

from ansible_collections.otp.release.plugins.module_utils._erlterm import ParseError, parse_all
from ansible_collections.otp.release.plugins.module_utils._node import Channel, NodeError
from ansible_collections.otp.release.plugins.module_utils._tarball import ReleaseTarballError, parse_rel
from ansible_collections.otp.release.plugins.module_utils._versions import version_key


class ReleaseError(Exception):
    pass


def _read(path):
    with open(path, "r", encoding="utf-8", errors="replace") as handle:
        return handle.read()


def read_terms(path):
    """file:consult/1 of a file, with the file named in the error."""
    try:
        return parse_all(_read(path))
    except ParseError as exc:
        raise ReleaseError("%s cannot be read as Erlang terms: %s" % (path, exc))
    except OSError as exc:
        raise ReleaseError("%s cannot be read: %s" % (path, exc.strerror))


def vm_args_options(path, seen=None):
    """Options of a vm.args file as a list of (flag, value-string), following -args_file."""
    seen = seen if seen is not None else set()
    if path in seen or not os.path.isfile(path):
        return []
    seen.add(path)
    options = []
    for line in _read(path).splitlines():
        line = line.strip()
        if not line.startswith("-"):
            continue
        flag, value = (line.split(None, 1) + [""])[:2]
        value = value.strip()
        if flag == "-args_file":
            options.extend(vm_args_options(value, seen))
        else:
            options.append((flag, value))
    return options


def short_hostname():
    return socket.gethostname().split(".")[0]


def node_from_flag(flag, value):
    if "@" in value:
        return value
    return "%s@%s" % (value, short_hostname() if flag == "-sname" else socket.getfqdn())


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


class Identity(object):
    """Who serves a root: node name, cookie and where each came from."""

    def __init__(self, node, node_source, cookie, cookie_source, process, env):
        self.node = node
        self.node_source = node_source
        self.cookie = cookie
        self.cookie_source = cookie_source
        self.process = process
        self.env = env

    @property
    def os_pid(self):
        return self.process.pid if self.process else None


class ReleaseRoot(object):

    def __init__(self, root, name=None):
        self.root = os.path.abspath(root)
        self._name = name

    def path(self, *parts):
        return os.path.join(self.root, *parts)

    def exists(self):
        return os.path.isdir(self.path("releases"))

    def is_empty(self):
        return not os.path.exists(self.root) or not os.listdir(self.root)

    @property
    def name(self):
        if self._name:
            return self._name
        names = set(entry["name"] for entry in self.releases_file())
        if not names:
            for version in self._version_dirs():
                names.update(f[:-4] for f in os.listdir(self.path("releases", version)) if f.endswith(".rel"))
        if len(names) != 1:
            found = ", ".join(sorted(names)) or "none"
            raise ReleaseError("Cannot tell the release name in %s (found: %s): pass name." % (self.root, found))
        self._name = names.pop()
        return self._name

    def _version_dirs(self):
        releases = self.path("releases")
        if not os.path.isdir(releases):
            return []
        return [v for v in os.listdir(releases) if os.path.isdir(os.path.join(releases, v))]

    def releases_file(self):
        """Entries of releases/RELEASES: [{name, version, erts, state, libs: [(app, vsn, lib dir)]}]."""
        path = self.path("releases", "RELEASES")
        if not os.path.exists(path):
            return []
        terms = read_terms(path)
        entries = []
        for release in (terms[0] if terms else []):
            libs = [(str(lib[0]), str(lib[1]), os.path.normpath(self.path(str(lib[2])))) for lib in release[4]]
            entries.append(dict(name=str(release[1]), version=str(release[2]), erts=str(release[3]), state=str(release[5]),
                                libs=libs))
        return entries

    def start_erl_data(self, path=None):
        """(erts, version) of releases/start_erl.data (or the file given), or None."""
        path = path or self.path("releases", "start_erl.data")
        if not os.path.exists(path):
            return None
        fields = _read(path).split()
        return (fields[0], fields[1]) if len(fields) == 2 else None

    def rel(self, version):
        """The .rel of a version: {name, version, erts, applications: {app: vsn}}."""
        path = self.path("releases", version, "%s.rel" % self.name)
        if not os.path.exists(path):
            raise ReleaseError("Version %s of %s is not in %s (no %s)." % (version, self.name, self.root, path))
        try:
            name, rel_version, erts, applications = parse_rel(_read(path), path)
        except ReleaseTarballError as exc:
            raise ReleaseError(str(exc))
        return dict(name=name, version=rel_version, erts=erts, applications=dict(applications))

    def version_contents(self, version):
        """(erts, [(app, vsn, lib dir)]) of a version in .rel order: from releases/<vsn>/<name>.rel, else from the
        version's RELEASES entry (release_handler deletes that .rel when it unpacks "<vsn>/<name>"). None if unknown."""
        try:
            rel = self.rel(version)
            return rel["erts"], [(app, vsn, self.path("lib", "%s-%s" % (app, vsn))) for app, vsn in rel["applications"].items()]
        except ReleaseError:
            pass
        for entry in self.releases_file():
            if entry["version"] == version:
                return entry["erts"], entry["libs"]
        return None

    def versions(self):
        """Versions with a .rel on disk, oldest first."""
        name = self.name
        found = [v for v in self._version_dirs() if os.path.exists(self.path("releases", v, "%s.rel" % name))]
        return sorted(found, key=version_key)

    def relup(self, version):
        """releases/<version>/relup as {up: {from: instructions}, down: {to: instructions}}, or None."""
        path = self.path("releases", version, "relup")
        if not os.path.exists(path):
            return None
        terms = read_terms(path)
        if not terms:
            return None
        ups, downs = terms[0][1:]
        return dict(up=dict((str(u[0]), u[2]) for u in ups), down=dict((str(d[0]), d[2]) for d in downs))

    def release_states(self):
        """[{version, state, erts}] from RELEASES, else the one version start_erl.data names (a mix release)."""
        entries = [dict(version=e["version"], state=e["state"], erts=e["erts"]) for e in self.releases_file()]
        if not entries:
            start = self.start_erl_data()
            if start:
                entries = [dict(version=start[1], state="permanent", erts=start[0])]
        return sorted(entries, key=lambda e: version_key(e["version"]))

    @property
    def producer(self):
        script = self.path("bin", self.name)
        text = _read(script) if os.path.isfile(script) else ""
        if os.path.isdir(self.path("var")) or "distillery" in text.lower() or any(
                os.path.isdir(self.path("releases", v, "libexec")) for v in self._version_dirs()):
            return "distillery"
        if re.search(r"^REL_VSN=", text, re.M):
            return "relx"
        if os.path.exists(self.path("releases", "COOKIE")) or "RELEASE_VSN" in text:
            return "mix"
        return "unknown"

    def start_version(self):
        """The version a cold start of bin/<name> would boot, or None when it cannot be told."""
        producer = self.producer
        if producer == "relx":
            match = re.search(r'^REL_VSN="([^"]+)"', _read(self.path("bin", self.name)), re.M)
            if match:
                return match.group(1)
        if producer == "distillery":
            start = self.start_erl_data(self.path("var", "start_erl.data"))
            if start:
                return start[1]
        start = self.start_erl_data()
        return start[1] if start else None

    def erts_bin(self, erts_version):
        return self.path("erts-%s" % erts_version, "bin")

    def boot_vars(self):
        return {"RELEASE_LIB": self.path("lib")} if self.producer == "mix" else {}

    def identity(self, node=None, cookie=None, cookie_file=None):
        """Node name and cookie: explicit options first, then the running process, then the producer's files."""
        process = find_node_process(self.root)
        env = {}
        proc_env = process.environ() if process else {}
        epmd_port = (process.flag("-epmd_port") if process else None) or proc_env.get("ERL_EPMD_PORT")
        if epmd_port and "ERL_EPMD_PORT" not in os.environ:
            env["ERL_EPMD_PORT"] = epmd_port
        vm_args = []
        vm_args_source = None
        if process:
            args_file = process.flag("-args_file")
            if args_file:
                vm_args = vm_args_options(args_file)
                vm_args_source = "%s (the running node's -args_file)" % args_file
        else:
            version = self.start_version() or next((e["version"] for e in self.release_states() if e["state"] == "permanent"), None)
            path = self.path("releases", version or "", "vm.args")
            if version and os.path.isfile(path):
                vm_args = vm_args_options(path)
                vm_args_source = path

        node_source = "option node" if node else None
        if not node and process:
            for flag in ("-name", "-sname"):
                if process.flag(flag):
                    node, node_source = node_from_flag(flag, process.flag(flag)), "command line of process %d" % process.pid
                    break
        if not node:
            for flag, value in vm_args:
                if flag in ("-name", "-sname"):
                    node, node_source = node_from_flag(flag, value), vm_args_source
                    break
        if not node and proc_env.get("RELEASE_NODE"):
            node, node_source = proc_env["RELEASE_NODE"], "RELEASE_NODE of process %d" % process.pid

        cookie_source = "option cookie" if cookie is not None else None
        if cookie is None and cookie_file:
            cookie, cookie_source = self._cookie_from_file(cookie_file), "cookie_file %s" % cookie_file
        if cookie is None and process and process.flag("-setcookie"):
            cookie, cookie_source = process.flag("-setcookie"), "command line of process %d" % process.pid
        if cookie is None:
            for flag, value in vm_args:
                if flag == "-setcookie":
                    cookie, cookie_source = value, vm_args_source
        if cookie is None and proc_env.get("RELEASE_COOKIE"):
            cookie, cookie_source = proc_env["RELEASE_COOKIE"], "RELEASE_COOKIE of process %d" % process.pid
        if cookie is None and os.path.isfile(self.path("releases", "COOKIE")):
            cookie, cookie_source = self._cookie_from_file(self.path("releases", "COOKIE")), self.path("releases", "COOKIE")
        if cookie is None:
            home = (process.flag("-home") if process else None) or proc_env.get("HOME") or os.path.expanduser("~")
            path = os.path.join(home, ".erlang.cookie")
            if os.path.isfile(path):
                cookie, cookie_source = self._cookie_from_file(path), path
        return Identity(node, node_source, cookie, cookie_source, process, env)

    @staticmethod
    def _cookie_from_file(path):
        try:
            return _read(path).strip()
        except OSError as exc:
            raise ReleaseError("Cannot read the cookie file %s: %s." % (path, exc.strerror))


NODE_DOWN = ("not_running", "not_registered")
LIVE_STATE_EXPR = (
    "{node(), list_to_integer(os:getpid()), erlang:system_info(version), "
    "[{V, S, Libs} || {_, V, Libs, S} <- release_handler:which_releases()]}"
)


class Live(object):
    """What the node says of itself: node, os_pid, erts, {version: state}, {version: ["app-vsn", ...]}."""

    def __init__(self, node, os_pid, erts, releases):
        self.node = str(node)
        self.os_pid = os_pid
        self.erts = str(erts)
        self.states = dict((str(v), str(s)) for v, s, _libs in releases)
        self.libs = dict((str(v), [str(lib) for lib in libs]) for v, _s, libs in releases)

    def with_states(self, states):
        """The same node with other release states (what a change would leave, or left)."""
        return Live(self.node, self.os_pid, self.erts, [(v, s, self.libs.get(v, [])) for v, s in states.items()])


class Target(object):
    """A release root and, when it runs, its node: what every module works on."""

    def __init__(self, root, name=None, node=None, cookie=None, cookie_file=None, timeout=60, channel="auto"):
        self.release = ReleaseRoot(root, name)
        self.timeout = timeout
        self.channel_choice = channel
        self.explicit_node = node
        if not self.release.exists():
            raise ReleaseError("%s is not a release root: it has no releases/ directory. Give the directory that holds "
                               "bin/, erts-<vsn>/, lib/ and releases/." % self.release.root)
        self._explicit = (node, cookie, cookie_file)
        self.identity = self.release.identity(node, cookie, cookie_file)
        self._channel = None

    def refresh_identity(self):
        """Look for the node's process again (after an emulator restart it has a new pid, maybe a new ERTS)."""
        self.identity = self.release.identity(*self._explicit)
        self._channel = None

    @classmethod
    def from_params(cls, params):
        return cls(params["root"], params.get("name"), params.get("node"), params.get("cookie"),
                   params.get("cookie_file"), params.get("timeout") or 60, params.get("channel") or "auto")

    def channel(self):
        if self._channel is None:
            if not self.identity.node:
                raise NodeError("not_running", "No node name for %s: no running beam.smp has -root %s and the release files name "
                                "none. Start the node or pass node." % (self.release.root, self.release.root))
            erts_bin = self._erts_bin()
            version = self._channel_version()
            boot = self.release.path("releases", version, "start_clean") if version else None
            self._channel = Channel(self.identity.node, self.identity.cookie, erts_bin, boot=boot,
                                    boot_vars=self.release.boot_vars(), timeout=self.timeout,
                                    channel=self.channel_choice, env=self.identity.env)
        return self._channel

    def _channel_version(self):
        states = self.release.release_states()
        for wanted in ("current", "permanent"):
            for entry in states:
                if entry["state"] == wanted:
                    return entry["version"]
        return states[-1]["version"] if states else None

    def _erts_bin(self):
        if self.identity.process and self.identity.process.flag("-bindir"):
            return self.identity.process.flag("-bindir")
        version = self._channel_version()
        erts = next((e["erts"] for e in self.release.release_states() if e["version"] == version), None)
        return self.release.erts_bin(erts) if erts else None

    def call(self, expression):
        return self.channel().call(expression)

    def live_state(self):
        """The node's Live state, from the node itself."""
        return Live(*self.call(LIVE_STATE_EXPR))

    def live_or_down(self):
        """(Live, None) when the node answers, (None, why) when it does not run. A node that runs but refuses
        us (cookie) or hangs is an error, not a fact."""
        try:
            return self.live_state(), None
        except NodeError as exc:
            if exc.kind not in NODE_DOWN:
                raise
            return None, exc.msg

    def facts(self, live=None):
        """The facts every result carries. live: live_state() when the node answered, else None."""
        release = self.release
        states = release.release_states()
        if live:
            known = dict((e["version"], e) for e in states)
            states = []
            for version, state in live.states.items():
                erts = known[version]["erts"] if version in known else self._rel_erts(version)
                states.append(dict(version=version, state=state, erts=erts))
            states.sort(key=lambda e: version_key(e["version"]))
        current = next((e["version"] for e in states if e["state"] == "current"), None)
        permanent = next((e["version"] for e in states if e["state"] == "permanent"), None)
        start_version = release.start_version()
        return dict(
            root=release.root,
            name=release.name,
            producer=release.producer,
            releases=states,
            current=current or permanent,
            permanent=permanent,
            start_version=start_version,
            start_version_mismatch=bool(start_version and permanent and start_version != permanent),
            running=bool(live),
            node=live.node if live else self.identity.node,
            node_source=self.identity.node_source,
            cookie_source=self.identity.cookie_source,
            os_pid=live.os_pid if live else None,
            erts_running=live.erts if live else None,
        )

    def _rel_erts(self, version):
        try:
            return self.release.rel(version)["erts"]
        except ReleaseError:
            return None

    def gather(self):
        """facts() of the root, asking the node when it runs (see live_or_down)."""
        live, node_error = self.live_or_down()
        result = self.facts(live)
        if live:
            result["channel"] = self.channel().channel
        else:
            result["node_error"] = node_error
        return result
