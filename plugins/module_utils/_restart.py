# -*- coding: utf-8 -*-
# Copyright (c) otp.release contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A change of version by a restart of the node, and the choice between hot and restart (strategy).

A restart stops the node cleanly, makes the target the version a cold start boots, starts the node again the way
it was started (as its OS user, with its environment), waits until it runs the target, checks its health and makes
the target permanent through the node. The target is marked tmp_current in RELEASES before the start: release_handler
then takes a boot of the target as `current` (as after an emulator restart), and a boot of anything else as nothing
new. When the node does not come up on the target, or is unhealthy, it is started again on the version it ran."""

from __future__ import annotations

import os
import pwd
import shlex
import signal
import time

from ansible_collections.otp.release.plugins.module_utils._errors import NodeError, OtpReleaseError
from ansible_collections.otp.release.plugins.module_utils._files import write_text
from ansible_collections.otp.release.plugins.module_utils._identity import find_node_process
from ansible_collections.otp.release.plugins.module_utils._proc import launch
from ansible_collections.otp.release.plugins.module_utils._relfiles import (
    parse_releases,
    read_terms,
    releases_file_text,
    relup_owner,
)
from ansible_collections.otp.release.plugins.module_utils._session import states_text, states_yaml
from ansible_collections.otp.release.plugins.module_utils._audit import audit_change
from ansible_collections.otp.release.plugins.module_utils._change import change, make_permanent, plan_change, refuse_code_mismatch

STRATEGIES = ("hot", "restart", "auto")
STATE_NOTE = "restart: in-memory state is not kept"
# Variables the launcher and the start scripts set for the VM they start: a new start sets them again.
LAUNCHER_ENV = ("ROOTDIR", "BINDIR", "EMU", "PROGNAME", "PWD", "OLDPWD", "SHLVL", "_")
# How each producer's own script starts a node in the background, when the node's start cannot be repeated.
PRODUCER_START = dict(relx="daemon", mix="daemon", distillery="start")


class RestartOptions(object):
    """How to restart: a start command of the user's (run with /bin/sh as the node's user), seconds to stop and to
    come up, and the health check: a function returning ({call, ok, answer}, the answer as Erlang text), or None."""

    def __init__(self, start_command=None, stop_timeout=30, start_timeout=60, health=None):
        self.permanent = True
        self.start_command = start_command
        self.stop_timeout = stop_timeout
        self.start_timeout = start_timeout
        self.health = health


def relup_gap(release, plan):
    """Why there is no relup path for the plan, or None when there is one."""
    owner = relup_owner(plan.from_version, plan.to_version)
    relup = release.relup(owner)
    relup_path = release.path("releases", owner, "relup")
    if relup is None:
        return "%s is missing, so there is no relup path %s -> %s" % (relup_path, plan.from_version, plan.to_version)
    if relup.path(plan.from_version, plan.to_version) is None:
        return "%s has no path %s -> %s" % (relup_path, plan.from_version, plan.to_version)
    return None


def choose_method(session, live, plan, strategy, review_mode="warn"):
    """(hot|restart, why) for one host, before any change (strategy restart or auto): auto goes hot only along a relup
    path the node can take and whose review (unless off) finds nothing."""
    if strategy == "restart":
        return "restart", "strategy restart"
    gap = relup_gap(session.release, plan)
    if gap:
        return "restart", gap
    full = plan_change(session.release, live.node, live.states, plan.to_version, plan.direction, live.broken_versions)
    if full.restart != "none" and not live.heart:
        return "restart", "the relup %s -> %s restarts the emulator (%s) and node %s runs without heart" % (
            plan.from_version, plan.to_version, full.restart, live.node)
    findings = audit_change(session, plan.from_version, plan.to_version, full.instructions).findings if review_mode != "off" else []
    if findings:
        return "restart", "the relup review found %s" % ", ".join(sorted(set(
            "%s %s" % (f["kind"], f["module"] or f["app"]) for f in findings)))
    return "hot", "the relup has a path %s -> %s (restart: %s)" % (plan.from_version, plan.to_version, full.restart)


def change_by_strategy(session, to_version, direction, options, strategy="hot", restart_options=None, check_mode=False):
    """Upgrade or downgrade hot or by a restart, as strategy (hot|restart|auto) says; the result says which and why."""
    if strategy == "hot":
        return dict(change(session, to_version, direction, options, check_mode), method="hot", method_reason="strategy hot",
                    state_kept=True)
    live = session.live("change the release of")
    refuse_code_mismatch(live)
    plan = plan_change(session.release, live.node, live.states, to_version, direction, live.broken_versions, need_relup=False)
    if plan.direction == "none":
        return dict(change(session, plan.to_version, direction, options, check_mode), method="none",
                    method_reason="node %s runs %s already" % (live.node, plan.to_version))
    method, reason = choose_method(session, live, plan, strategy, options.relup_review)
    if method == "hot":
        result = dict(change(session, plan.to_version, direction, options, check_mode), state_kept=True)
    else:
        restart_options = restart_options or RestartOptions()
        restart_options.permanent = options.permanent
        result = restart(session, live, plan, restart_options, check_mode, reason)
    result.update(method=method, method_reason=reason)
    return result


def start_environment(node_env, release, running_version):
    """The node's environment without what its start derived from the version it runs (RELEASE_VSN, paths into
    releases/<running>/), which would make the new start boot the old version again."""
    version_dir = release.path("releases", running_version)
    return dict((name, value) for name, value in node_env.items()
                if name not in LAUNCHER_ENV and value != running_version and version_dir not in value)


def parent_command(pid):
    """argv of the parent of pid, or []."""
    try:
        with open("/proc/%d/stat" % pid) as handle:
            parent = int(handle.read().rsplit(")", 1)[1].split()[1])
        with open("/proc/%d/cmdline" % parent, "rb") as handle:
            return [a.decode("utf-8", "replace") for a in handle.read().split(b"\0") if a]
    except (OSError, ValueError, IndexError):
        return []


def start_command(release, process, user_command=None):
    """(argv, how) that starts the node again: the user's command; else the run_erl that started it, when it runs the
    root's own bin/<name> (relx `daemon`, Distillery `start`); else the producer's own background start."""
    if user_command:
        return ["/bin/sh", "-c", user_command], "start_command"
    script = release.path("bin", release.name)
    parent = parent_command(process.pid)
    if parent and os.path.basename(parent[0]) == "run_erl" and "-daemon" in parent:
        words = shlex.split(parent[-1]) if len(parent) > 1 else []
        if any(os.path.realpath(word) == os.path.realpath(script) for word in words if word.startswith("/")):
            return parent, "run_erl, as the node was started"
    action = PRODUCER_START.get(release.producer)
    if not action:
        raise OtpReleaseError("Cannot tell how to start node %s of %s again (producer %s, not started by run_erl with bin/%s). "
                              "Give start_command. Nothing was changed." % (process.pid, release.root, release.producer,
                                                                            release.name))
    return [script, action], "%s %s" % (release.producer, action)


def pid_running(pid):
    """True while the process exists and is not a zombie."""
    try:
        with open("/proc/%d/stat" % pid) as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (OSError, IndexError):
        return False


def wait_gone(pid, seconds):
    deadline = time.monotonic() + seconds
    while pid_running(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


def stop_node(session, pid, seconds):
    """init:stop() through the channel, then wait for the OS pid to exit; SIGKILL when it does not within seconds.
    Returns (monotonic time of the node's last answer, how it stopped)."""
    try:
        session.call("init:stop()")
        last_answer = time.monotonic()
    except NodeError:
        last_answer = time.monotonic()
    if wait_gone(pid, seconds):
        return last_answer, "init:stop()"
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    wait_gone(pid, 10)
    return last_answer, "killed after %d s" % seconds


def wait_running(session, version, old_pid, seconds):
    """Wait until a new OS pid serves the root, has started (init), booted version and release_handler says it runs
    it. Returns (Live, monotonic time of its first answer); raises saying what was seen last."""
    deadline = time.monotonic() + seconds
    last, seen_pid = "no node process yet", None
    while time.monotonic() < deadline:
        time.sleep(0.1)
        process = find_node_process(session.release.root)
        if process is None or process.pid == old_pid:
            if seen_pid is not None:
                raise OtpReleaseError("the node (OS pid %s) exited while it booted %s" % (seen_pid, version))
            continue
        seen_pid = process.pid
        session.rediscover()
        try:
            if session.call("init:get_status()") != ("started", "started"):
                last = "OS pid %s is still booting" % process.pid
                continue
            answered = time.monotonic()
            live = session.live("read the state of")
        except (NodeError, OtpReleaseError) as exc:
            last = "OS pid %s: %s" % (process.pid, exc.msg)
            continue
        if live.script_version == version and live.running_version == version:
            return live, answered
        raise OtpReleaseError("OS pid %s booted %s (release_handler: %s), not %s"
                              % (live.os_pid, live.script_version, states_text(live.states), version))
    raise OtpReleaseError("the node did not come up on %s within %s s (%s)" % (version, seconds, last))


def mark_tmp_current(release, version, owner):
    """RELEASES with version as tmp_current: release_handler makes it current when the node boots it."""
    path = release.path("releases", "RELEASES")
    entries = parse_releases(read_terms(path))
    for entry in entries:
        if entry["version"] == version:
            entry["state"] = "tmp_current"
    write_text(path, releases_file_text(entries), owner=owner)
    release.forget()


def _read(path):
    with open(path, "r", encoding="utf-8") as handle:
        return handle.read()


class Restart(object):
    """One restart of the node of a session from plan.from_version into plan.to_version."""

    def __init__(self, session, live, plan, options):
        self.session = session
        self.release = session.release
        self.live = live
        self.plan = plan
        self.options = options
        process = session.identity.process
        if process is None:
            raise OtpReleaseError("Node %s answers, but no beam.smp with -root %s runs on this host, so it cannot be restarted "
                                  "from here. Nothing was changed." % (live.node, self.release.root))
        self.pid = process.pid
        self.node_env = session.node_env()
        self.env = start_environment(self.node_env, self.release, plan.from_version)
        self.owner = session.owner()
        self.argv, self.how = start_command(self.release, process, options.start_command)
        self.erts = dict((v, self.release.erts_of(v) or live.erts) for v in (plan.from_version, plan.to_version))
        self.releases_path = self.release.path("releases", "RELEASES")
        if not os.path.isfile(self.releases_path):
            raise OtpReleaseError("%s is missing: unpack %s with otp.release.unpack first (it writes one). Nothing was changed."
                                  % (self.releases_path, plan.to_version))

    def steps(self):
        """What a restart does, as sentences (check mode says these)."""
        return ["stop node %s (OS pid %s) with init:stop(), waiting up to %s s for it to exit"
                % (self.live.node, self.pid, self.options.stop_timeout),
                "point the cold start (%s) at %s" % (self.release.start_pointer(self.node_env), self.plan.to_version),
                "start it with %s as %s: %s" % (self.how, self.user_text(), " ".join(shlex.quote(a) for a in self.argv)),
                "wait up to %s s for it to run %s%s%s"
                % (self.options.start_timeout, self.plan.to_version, ", check its health" if self.options.health else "",
                   ", then make it permanent through the node" if self.options.permanent else
                   ", then point the cold start back at %s (permanent: false)" % self.plan.from_version),
                "on failure: point back at %s and start the node on it again" % self.plan.from_version,
                STATE_NOTE]

    def user_text(self):
        if self.owner is None:
            return "the current user"
        try:
            return pwd.getpwuid(self.owner[0]).pw_name
        except KeyError:
            return "uid %d" % self.owner[0]

    def start(self, version):
        rc, output = launch(self.argv, self.env, self.release.root, self.owner, self.options.start_timeout)
        if rc not in (0, None):
            raise OtpReleaseError("the start command (%s) exited with %s: %s" % (self.how, rc, output.strip()[-500:]))
        return wait_running(self.session, version, self.pid, self.options.start_timeout)

    def run(self):
        original = _read(self.releases_path)
        last_answer, stopped = stop_node(self.session, self.pid, self.options.stop_timeout)
        mark_tmp_current(self.release, self.plan.to_version, self.owner)
        self.release.point_cold_start(self.plan.to_version, self.erts[self.plan.to_version], self.node_env, self.owner)
        health = None
        try:
            _now, first_answer = self.start(self.plan.to_version)
            if self.options.health:
                health, answer_text = self.options.health()
                if not health["ok"]:
                    raise OtpReleaseError("its health check %s returned %s instead of ok" % (health["call"], answer_text))
            if self.options.permanent:
                make_permanent(self.session, self.plan.to_version)
        except OtpReleaseError as exc:
            self.roll_back(exc.msg, original, health)
        # release_handler rewrote start_erl.data for a permanent version; without permanent a cold start goes back
        boots = self.plan.to_version if self.options.permanent else self.plan.from_version
        self.release.point_cold_start(boots, self.erts[boots], self.node_env, self.owner)
        self.session.refresh()
        return self.session.live("read the state of"), first_answer - last_answer, stopped, health

    def roll_back(self, why, original, health):
        """Stop what runs, put RELEASES and the cold start back as they were, and start the node on the old version."""
        process = find_node_process(self.release.root)
        if process is not None:
            self.session.rediscover()
            stop_node(self.session, process.pid, self.options.stop_timeout)
        write_text(self.releases_path, original, owner=self.owner)
        self.release.forget()
        self.release.point_cold_start(self.plan.from_version, self.erts[self.plan.from_version], self.node_env, self.owner)
        fields = dict(method="restart", rolled_back=True, from_version=self.plan.from_version, to_version=self.plan.to_version,
                      os_pid_before=self.pid, state_kept=False, state_note=STATE_NOTE)
        if health is not None:
            fields["health"] = health
        try:
            back, _first = self.start(self.plan.from_version)
        except OtpReleaseError as exc:
            raise OtpReleaseError("The restart of node %s into %s failed (%s), and starting it again on %s failed too (%s). The "
                                  "node is DOWN; RELEASES and the cold start point at %s again. Start it by hand and read its "
                                  "logs." % (self.live.node, self.plan.to_version, why, self.plan.from_version, exc.msg,
                                             self.plan.from_version), **fields)
        fields.update(os_pid_after=back.os_pid, current=back.running_version)
        raise OtpReleaseError("The restart of node %s into %s failed: %s. It was rolled back: the node runs %s again (OS pid %s, "
                              "in-memory state not kept); %s stays %s and nothing was deleted. Fix the release and try again."
                              % (self.live.node, self.plan.to_version, why, back.running_version, back.os_pid,
                                 self.plan.to_version, back.states.get(self.plan.to_version, "unpacked")), **fields)


def restart(session, live, plan, options, check_mode=False, reason="strategy restart"):
    """Change the node's version by a restart (see the module's docstring); the result as data."""
    started = time.monotonic()
    if plan.states.get(plan.to_version) not in ("unpacked", "old"):
        raise OtpReleaseError("Version %s is %s on node %s: a restart boots only an unpacked or old release. Nothing was changed."
                              % (plan.to_version, plan.states.get(plan.to_version), live.node))
    if session.release.producer == "relx" and not os.path.isfile(session.release.path("bin", "%s-%s" % (session.release.name,
                                                                                                        plan.to_version))):
        raise OtpReleaseError("%s is missing, so a cold start cannot boot %s. Nothing was changed."
                              % (session.release.path("bin", "%s-%s" % (session.release.name, plan.to_version)), plan.to_version))
    job = Restart(session, live, plan, options)
    before = session.facts(live)
    common = dict(from_version=plan.from_version, to_version=plan.to_version, direction=plan.direction, restart="node",
                  instructions={}, state_kept=False, state_note=STATE_NOTE, os_pid_before=live.os_pid,
                  start_command=" ".join(shlex.quote(a) for a in job.argv), start_how=job.how)
    if check_mode:
        return dict(before, changed=True, permanent=before["permanent"] == plan.to_version, would=job.steps(),
                    os_pid_after=None, downtime_ms=None, rolled_back=False,
                    duration_ms=int((time.monotonic() - started) * 1000), **common)
    after_live, downtime, stopped, health = job.run()
    after = session.facts(after_live)
    result = dict(after, changed=True, permanent=after["permanent"] == plan.to_version, os_pid_after=after_live.os_pid,
                  downtime_ms=int(downtime * 1000), stopped_by=stopped, rolled_back=False,
                  diff=dict(before=states_yaml(dict((e["version"], e["state"]) for e in before["releases"])),
                            after=states_yaml(dict((e["version"], e["state"]) for e in after["releases"]))),
                  duration_ms=int((time.monotonic() - started) * 1000), **common)
    if health is not None:
        result["health"] = health
    return result
