# -*- coding: utf-8 -*-
# Copyright (c) otp.release contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""One root, its node's identity, the channel to it and the node's state: found and asked once per module run,
asked again only after a change (refresh)."""

from __future__ import annotations

import contextlib
import os
import pwd

from ansible_collections.otp.release.plugins.module_utils._errors import NODE_DOWN, NodeError, OtpReleaseError
from ansible_collections.otp.release.plugins.module_utils._files import hold_lock
from ansible_collections.otp.release.plugins.module_utils._identity import discover
from ansible_collections.otp.release.plugins.module_utils._node import Channel
from ansible_collections.otp.release.plugins.module_utils._root import ReleaseRoot
from ansible_collections.otp.release.plugins.module_utils._versions import current_version, version_key

# Everything a flow needs to know of the node, in one round trip. The application_controller pid changes when
# the node restarts in place (a crash past the point of no return), so it marks one boot of the node.
LIVE_EXPR = (
    "{node(), list_to_integer(os:getpid()), erlang:system_info(version), "
    "[{V, S, Libs} || {_, V, Libs, S} <- release_handler:which_releases()], "
    "whereis(application_controller), whereis(heart) =/= undefined, application:get_env(sasl, start_prg), "
    "element(2, init:script_id()), [{A, V} || {A, _, V} <- application:which_applications()]}"
)


def user_name(uid):
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return "uid %d" % uid


def states_text(states):
    """{version: state} as 'v1 state, v2 state' for messages."""
    return ", ".join("%s %s" % (v, states[v]) for v in sorted(states, key=version_key)) or "none"


def states_yaml(states):
    """{version: state} as the lines of a diff."""
    return "".join("%s: %s\n" % (v, states[v]) for v in sorted(states, key=version_key))


class Live(object):
    """What the node says of itself (LIVE_EXPR): node, os_pid, erts, {version: state}, {version: ["app-vsn"]},
    boot marker, heart running, sasl start_prg, the version it booted (init:script_id()), {app: vsn} loaded."""

    def __init__(self, node, os_pid, erts, releases, boot_marker=None, heart=False, start_prg=None, script_version=None,
                 apps=()):
        self.node = str(node)
        self.os_pid = os_pid
        self.erts = str(erts)
        self.states = dict((str(v), str(s)) for v, s, _libs in releases)
        self.libs = dict((str(v), [str(lib) for lib in libs]) for v, _s, libs in releases)
        self.boot_marker = str(boot_marker)
        self.heart = heart is True or heart == "true"
        self.start_prg = str(start_prg[1]) if isinstance(start_prg, tuple) else None
        self.script_version = str(script_version) if script_version is not None else None
        self.apps = dict((str(app), str(vsn)) for app, vsn in apps)

    @property
    def running_version(self):
        """The version the node runs according to release_handler: current, else permanent."""
        return current_version([dict(version=v, state=s) for v, s in self.states.items()])

    @property
    def broken_versions(self):
        """Versions release_handler knows without their applications (its own entry for a root without RELEASES)."""
        return sorted((v for v, libs in self.libs.items() if not libs), key=version_key)

    def _libs_match(self, version):
        wanted = dict(lib.rsplit("-", 1) for lib in self.libs.get(version, []) if "-" in lib)
        return bool(wanted) and all(wanted.get(app, vsn) == vsn for app, vsn in self.apps.items())

    def code_version(self):
        """The version whose applications are the ones loaded: release_handler's running one when they agree, else
        the one that matches, else the one the node booted. None when the node did not say (no apps)."""
        running = self.running_version
        if not self.apps or not self.libs.get(running) or self._libs_match(running):
            return running
        return next((v for v in sorted(self.libs, key=version_key) if self._libs_match(v)), self.script_version)

    @property
    def code_mismatch(self):
        """The loaded applications are not those of the version release_handler believes runs."""
        return self.code_version() != self.running_version

    def with_states(self, states):
        """The same node with other release states (what a change would leave)."""
        live = Live(self.node, self.os_pid, self.erts, [(v, s, self.libs.get(v, [])) for v, s in states.items()])
        live.boot_marker, live.heart, live.start_prg = self.boot_marker, self.heart, self.start_prg
        live.script_version, live.apps = self.script_version, self.apps
        return live


class Session(object):
    """A release root and, when it runs, its node: what every operation works on."""

    def __init__(self, root, name=None, node=None, cookie=None, cookie_file=None, timeout=60, channel="auto", runner=None,
                 epmd_port=None):
        self.release = ReleaseRoot(root, name)
        self.timeout = timeout
        self.channel_choice = channel
        self.runner = runner
        self._explicit = (node, cookie, cookie_file, epmd_port)
        self._identity = None
        self._channel = None
        self._live = None  # (Live or None, why it is down)

    def require_root(self):
        root = self.release.root
        for path in (root, self.release.path("releases")):
            if os.path.isdir(path) and not os.access(path, os.R_OK | os.X_OK):
                raise OtpReleaseError("Permission denied: user %s cannot read %s. Run the task as the owner of the release "
                                      "root (become_user: %s) or as root." % (user_name(os.geteuid()), path,
                                                                              user_name(os.stat(path).st_uid)))
        if not self.release.exists():
            raise OtpReleaseError("%s is not a release root: it has no releases/ directory. Give the directory that holds "
                                  "bin/, erts-<vsn>/, lib/ and releases/." % self.release.root)
        return self

    def owner(self):
        """(uid, gid) of what the root's files must belong to: the node's OS user (release_handler writes as it), else
        the root directory's owner; None when neither exists."""
        process = self.identity.process
        for path in (("/proc/%d" % process.pid) if process else None, self.release.root):
            try:
                found = os.stat(path) if path else None
            except OSError:
                continue
            if found:
                return found.st_uid, found.st_gid
        return None

    def require_owner(self):
        """Refuse, before any change, to work on a root as a user who would leave files the node's user cannot use."""
        owner = self.owner()
        if owner is None or os.geteuid() in (0, owner[0]):
            return owner
        raise OtpReleaseError("%s and its node belong to user %s, but this runs as %s: files written now would not be the "
                              "node's. Run the task as %s (become: true with become_user: %s) or as root. Nothing was changed."
                              % (self.release.root, user_name(owner[0]), user_name(os.geteuid()), user_name(owner[0]),
                                 user_name(owner[0])))

    @contextlib.contextmanager
    def locked(self):
        """Hold the root's lock (an flock on its releases/ directory) for a change; a root without one needs none."""
        if not self.release.exists():
            yield
            return
        with hold_lock(self.release.path("releases"), self.timeout):
            yield

    @property
    def identity(self):
        if self._identity is None:
            self._identity = discover(self.release, *self._explicit)
        return self._identity

    @property
    def node(self):
        return self.identity.node

    def rediscover(self):
        """Look for the node's process again (after an emulator restart it has a new pid, maybe a new ERTS)."""
        self._identity = None
        self._channel = None
        self.refresh()

    def refresh(self):
        """Forget what was asked and read: the node or the root changed."""
        self._live = None
        self.release.forget()

    def channel(self):
        if self._channel is None:
            if not self.identity.node:
                raise NodeError("not_running", "No node name for %s: no running beam.smp has -root %s and the release files name "
                                "none. Start the node or pass node." % (self.release.root, self.release.root))
            version = self._channel_version()
            boot = self.release.path("releases", version, "start_clean") if version else None
            options = dict(runner=self.runner) if self.runner else {}
            self._channel = Channel(self.identity.node, self.identity.cookie, self._erts_bin(version), boot=boot,
                                    boot_vars=self.release.boot_vars(), timeout=self.timeout,
                                    channel=self.channel_choice, env=self.identity.env, **options)
        return self._channel

    def _channel_version(self):
        states = self.release.release_states()
        for wanted in ("current", "permanent"):
            for entry in states:
                if entry["state"] == wanted:
                    return entry["version"]
        return states[-1]["version"] if states else None

    def _erts_bin(self, version):
        process = self.identity.process
        if process and process.flag("-bindir"):
            return process.flag("-bindir")
        erts = next((e["erts"] for e in self.release.release_states() if e["version"] == version), None)
        return self.release.erts_bin(erts) if erts else None

    def call(self, expression):
        return self.channel().call(expression)

    def live_or_down(self):
        """(Live, None) when the node answers, (None, why) when it does not run; asked once until refresh(). A node
        that runs but refuses us (cookie) or hangs is an error, not a fact."""
        if self._live is None:
            try:
                self._live = (Live(*self.call(LIVE_EXPR)), None)
            except NodeError as exc:
                if exc.kind not in NODE_DOWN:
                    raise
                self._live = (None, exc.msg)
        return self._live

    def live(self, doing):
        """The node's Live state; a node that does not answer stops the operation (doing: what it was about to do)."""
        try:
            live, why = self.live_or_down()
        except NodeError as exc:
            live, why = None, exc.msg
        if live is None:
            raise OtpReleaseError("Cannot %s %s: %s Nothing was changed." % (doing, self.release.root, why))
        return live

    def learn(self, live):
        """A call that changed the node also answered its new state: keep it instead of asking again."""
        self.release.forget()
        self._live = (live, None)
        return live

    def facts(self, live=None):
        """The facts every result carries. live: the node's Live when it answered, else None."""
        release = self.release
        states = release.release_states()
        if live:
            known = dict((e["version"], e["erts"]) for e in states)
            states = [dict(version=v, state=s, erts=known.get(v)) for v, s in live.states.items()]
            states.sort(key=lambda e: version_key(e["version"]))
        for entry in states:
            if entry["erts"] in (None, "undefined"):  # release_handler's own entry for a root without RELEASES
                entry["erts"] = release.erts_of(entry["version"])
        current = next((e["version"] for e in states if e["state"] == "current"), None)
        permanent = next((e["version"] for e in states if e["state"] == "permanent"), None)
        start_version = release.start_version(self.node_env())
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
            heart=live.heart if live else None,
            script_version=live.script_version if live else None,
            script_id_mismatch=bool(live and live.code_mismatch),
            broken_releases=live.broken_versions if live else release.broken_versions(),
            start_pointer=release.start_pointer(self.node_env()),
        )

    def node_env(self):
        """The running node's environment (its RELEASE_MUTABLE_DIR, START_ERL_DATA, ...); {} when it does not run."""
        process = self.identity.process
        return process.environ() if process else {}

    def gather(self):
        """facts() of the root, asking the node when it runs."""
        live, node_error = self.live_or_down()
        result = self.facts(live)
        if live:
            result["channel"] = self.channel().channel
        else:
            result["node_error"] = node_error
        return result
