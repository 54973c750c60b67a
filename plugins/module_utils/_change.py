# -*- coding: utf-8 -*-
# Copyright (c) otp.release contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Upgrade or downgrade a running node to an unpacked version through release_handler: preflight, install, make
permanent, the cold-start pointer, and the truth after a crash or a cut call."""

from __future__ import annotations

import os
import time

from ansible_collections.otp.release.plugins.module_utils._audit import audit_change, refusal
from ansible_collections.otp.release.plugins.module_utils._erlterm import Atom, format_term
from ansible_collections.otp.release.plugins.module_utils._errors import NodeError, NodeException, OtpReleaseError, explain
from ansible_collections.otp.release.plugins.module_utils._relfiles import instruction_summary, relup_owner, restart_kind
from ansible_collections.otp.release.plugins.module_utils._session import LIVE_EXPR, Live, states_text, states_yaml
from ansible_collections.otp.release.plugins.module_utils._versions import previous_version, version_key


class ChangeOptions(object):
    """How to change: make the version permanent, purge old code, release_handler's timeouts (seconds), and what to do
    with the findings of the relup review (strict: refuse, warn: report, off: no review)."""

    def __init__(self, permanent=True, purge=False, code_change_timeout=None, suspend_timeout=None, relup_review="warn"):
        self.permanent = permanent
        self.purge = purge
        self.code_change_timeout = code_change_timeout
        self.suspend_timeout = suspend_timeout
        self.relup_review = relup_review


class Plan(object):
    """The change a node would go through: from, to, direction (up|down|none) and the relup instructions."""

    def __init__(self, from_version, to_version, direction, instructions, states):
        self.from_version = from_version
        self.to_version = to_version
        self.direction = direction
        self.instructions = instructions
        self.restart = restart_kind(instructions)
        self.states = states

    def as_data(self):
        """What the plan table shows: action, from, to, instruction counts, the modules whose processes are suspended."""
        if self.direction == "none":
            action = "nothing to do"
        else:
            action = "hot" if self.restart == "none" else "hot, emulator restart"
        suspended = [str(m[0] if isinstance(m, tuple) else m) for i in self.instructions
                     if isinstance(i, tuple) and len(i) == 2 and i[0] == "suspend" for m in i[1]]
        return dict(action=action, from_version=self.from_version, to_version=self.to_version,
                    instructions=instruction_summary(self.instructions), suspend_modules=suspended)


def plan_change(release, node, states, to_version, direction, broken=(), relup_of=None, need_relup=True):
    """Preflight of an upgrade or downgrade from {version: state}; raises naming what is wrong and what to do.
    relup_of(version) -> (Relup or None, its path): by default the root's; the controller passes the relup of a
    tarball that is not on the host yet, so that check mode refuses with the same words. need_relup=False: every
    check but the relup path's (a restart needs none); the Plan has no instructions."""
    releases = [dict(version=v, state=s) for v, s in states.items()]
    running = Live("", 0, "", [(v, s, []) for v, s in states.items()]).running_version
    if to_version is None:
        to_version = previous_version(releases)
        if to_version is None:
            raise OtpReleaseError("Node %s runs %s and has no old release below it to go back to (releases: %s)."
                                  % (node, running, states_text(states)))
    if to_version == running:
        return Plan(running, to_version, "none", [], states)
    if to_version not in states:
        raise OtpReleaseError("Version %s is not unpacked on node %s (releases: %s): unpack it first with otp.release.unpack."
                              % (to_version, node, states_text(states)))
    newer = version_key(to_version) > version_key(running)
    if direction == "up" and not newer:
        raise OtpReleaseError("%s is older than the running %s on node %s: use otp.release.downgrade to go back." % (to_version, running, node))
    if direction == "down" and newer:
        raise OtpReleaseError("%s is newer than the running %s on node %s: use otp.release.upgrade to go forward." % (to_version, running, node))
    if direction == "down" and to_version in broken:
        raise OtpReleaseError("Version %s is known to release_handler on node %s with no applications (its own entry for a root "
                              "deployed without RELEASES), so a downgrade to it would crash inside release_handler. Run "
                              "otp.release.unpack (or otp.release.upgrade) once: it rewrites that entry from releases/%s/%s.rel. "
                              "Nothing was changed." % (to_version, node, to_version, release.name))
    if direction == "down" and states[to_version] not in ("old", "permanent"):
        raise OtpReleaseError("Version %s is %s on node %s, not an old release: a downgrade goes back to a release this node ran "
                              "before." % (to_version, states[to_version], node))
    if not need_relup:
        return Plan(running, to_version, direction, [], states)
    owner = relup_owner(running, to_version)
    relup, relup_path = (relup_of or (lambda version: (release.relup(version), release.path("releases", version, "relup"))))(owner)
    way = "upgrade" if direction == "up" else "downgrade"
    if relup is None:
        raise OtpReleaseError("%s is missing, so there is no %s path from %s to %s. Build the release with a relup (rebar3 relup, "
                              "mix with an appup tool, Distillery --upgrade) and unpack it again." % (relup_path, way, running, to_version))
    instructions = relup.path(running, to_version)
    if instructions is None:
        covered = relup.up_from() if direction == "up" else relup.down_to()
        raise OtpReleaseError("%s has no %s path %s %s (it has %s: %s). Build a relup that covers %s -> %s, or go through the "
                              "versions in between." % (relup_path, way, "from" if direction == "up" else "to",
                                                        running if direction == "up" else to_version,
                                                        "up from" if direction == "up" else "down to",
                                                        ", ".join(covered) or "nothing", running, to_version))
    return Plan(running, to_version, direction, instructions, states)


def refuse_code_mismatch(live):
    """The node must run the code release_handler believes it runs, or the relup would be applied to other code."""
    if not live.code_mismatch:
        return
    runs = live.code_version()
    believed = live.running_version
    raise OtpReleaseError("Node %s runs %s (init:script_id() says it booted %s, and its loaded applications are %s's), but "
                          "release_handler believes %s runs (%s): a relup would be applied to code it was not made for. "
                          "Nothing was changed. Bring them in line first: point the cold start at %s and restart the node, "
                          "or make %s permanent again with release_handler:make_permanent/1."
                          % (live.node, runs, live.script_version, runs, believed, states_text(live.states), believed, runs))


def refuse_restart_without_heart(plan, node, heart):
    if plan.restart != "none" and not heart:
        raise OtpReleaseError("The relup %s -> %s restarts the emulator (%s), but node %s runs without heart, so release_handler "
                              "would restart it in place on %s and lose its state. Start the node with -heart, or do a rolling "
                              "restart instead." % (plan.from_version, plan.to_version, plan.restart, node, plan.from_version))


def check_restart_program(session, live, plan):
    """A relup that restarts the emulator needs heart and a restart program that boots the new version."""
    if plan.restart == "none":
        return
    refuse_restart_without_heart(plan, live.node, live.heart)
    program = live.start_prg or session.release.path("bin", "start")
    executable = program.split()[0] if program.split() else program
    if not os.access(executable, os.X_OK):
        raise OtpReleaseError("The relup %s -> %s restarts the emulator (%s) and heart would run %s, which does not exist or is "
                              "not executable here, so node %s would not come back. Set {sasl, [{start_prg, \"...\"}]} to a "
                              "program that boots the release named in the given start_erl.data file."
                              % (plan.from_version, plan.to_version, plan.restart, executable, live.node))


def _install_expression(plan, options, make_permanent_now, confirm_expr=None):
    install_options = [(Atom("update_paths"), True)]
    if options.code_change_timeout:
        install_options.append((Atom("code_change_timeout"), options.code_change_timeout * 1000))
    if options.suspend_timeout:
        install_options.append((Atom("suspend_timeout"), options.suspend_timeout * 1000))
    check_options = [Atom("purge")] if options.purge else []
    return (
        "case release_handler:check_install_release(%(to)s, %(check_options)s) of "
        " {ok, _, _} -> case release_handler:install_release(%(to)s, %(options)s) of "
        "   {ok, From, _} -> {installed, From, case %(perm)s of true -> release_handler:make_permanent(%(to)s); false -> ok end, "
        "                     %(live)s, %(confirm)s}; "
        "   {continue_after_restart, From, _} -> {restarting, From}; "
        "   {error, R} -> {install_failed, R}; "
        "   Other -> {install_failed, Other} end; "
        " {error, R} -> {check_failed, R} "
        "end"
        % dict(to=format_term(plan.to_version), check_options=format_term(check_options), options=format_term(install_options),
               perm="true" if make_permanent_now else "false", live=LIVE_EXPR, confirm=confirm_expr or "[]"))


def check_install(session, plan):
    """Check mode: release_handler:check_install_release only."""
    answer = session.call("release_handler:check_install_release(%s)" % format_term(plan.to_version))
    if isinstance(answer, tuple) and answer[0] == "error":
        raise OtpReleaseError("check_install_release(%s) failed on node %s: %s. Nothing was changed."
                              % (plan.to_version, session.node, explain(answer[1])), raw=answer[1])


def install(session, live, plan, options, confirm_expr=None):
    """check_install_release, install_release and make_permanent for the plan in one call. Returns the Live after and
    the answer to confirm_expr, evaluated in the same call right after the install (None when the call did not get
    there, or the emulator restarted)."""
    node = live.node
    make_permanent_now = options.permanent and plan.restart == "none"
    try:
        answer = session.call(_install_expression(plan, options, make_permanent_now, confirm_expr))
    except NodeException:
        raise
    except NodeError as exc:
        if plan.restart != "none":  # the emulator restart can cut the call: wait for the new one
            return _after_restart(session, live, plan, options), None
        now = recover(session, live, plan, "the call was cut off (%s)" % exc.msg)
        if make_permanent_now and now.states.get(plan.to_version) != "permanent":
            make_permanent(session, plan.to_version)
            session.refresh()
            now = session.live("read the state of")
        return now, None
    outcome = str(answer[0])
    if outcome == "check_failed":
        raise OtpReleaseError("check_install_release(%s) failed on node %s: %s. Nothing was changed; the node still runs %s."
                              % (plan.to_version, node, explain(answer[1]), plan.from_version), raw=answer[1])
    if outcome == "install_failed":
        return recover(session, live, plan, explain(answer[1]), raw=answer[1]), None
    if outcome == "installed" and answer[2] != "ok" and make_permanent_now:
        raise OtpReleaseError("Node %s now runs %s but make_permanent failed: %s. A restart would boot %s; run the module again."
                              % (node, plan.to_version, explain(answer[2][1] if isinstance(answer[2], tuple) else answer[2]),
                                 plan.from_version), raw=answer[2])
    if plan.restart != "none" or outcome == "restarting":
        return _after_restart(session, live, plan, options), None
    return session.learn(Live(*answer[3])), (answer[4] if confirm_expr else None)


def _after_restart(session, live, plan, options):
    wait_for_new_emulator(session, live, plan)
    if options.permanent:
        make_permanent(session, plan.to_version)
    session.refresh()
    return session.live("read the state of")


def wait_for_new_emulator(session, live, plan):
    """After an emulator restart: a NEW OS pid that shows the target version current."""
    deadline = time.monotonic() + max(session.timeout, 10)
    last = "no answer yet"
    while time.monotonic() < deadline:
        time.sleep(0.5)
        session.rediscover()
        try:
            now, why = session.live_or_down()
        except NodeError as exc:  # e.g. release_handler not started yet
            now, why = None, exc.msg
        if now is None:
            last = why
            continue
        if now.os_pid != live.os_pid and now.running_version == plan.to_version:
            return
        last = "pid %s runs %s" % (now.os_pid, now.running_version)
    raise OtpReleaseError("Node %s restarted its emulator for %s -> %s but did not come back on %s within %s s (%s). Check the "
                          "node's logs and its heart restart program."
                          % (live.node, plan.from_version, plan.to_version, plan.to_version, max(session.timeout, 10), last))


def recover(session, live, plan, reason, raw=None):
    """install_release failed or its call broke: ask the node whether it rolled back in place or restarted on the old
    release, and say only that."""
    node = live.node
    deadline = time.monotonic() + session.timeout
    while True:
        try:
            status = session.call("init:get_status()")
            if status == ("started", "started"):
                session.refresh()
                now = session.live("read the state of")
                break
        except (NodeError, OtpReleaseError):
            pass
        if time.monotonic() >= deadline:
            raise OtpReleaseError("install_release(%s) failed on node %s (%s) and the node has not answered since, for %s s. "
                                  "Check it: it may be restarting on %s." % (plan.to_version, node, reason, session.timeout,
                                                                             plan.from_version), raw=raw)
        time.sleep(0.25)
    if now.boot_marker != live.boot_marker:
        raise OtpReleaseError("The %s %s -> %s of node %s crashed past the point of no return (%s): release_handler restarted the "
                              "node in place (OS pid %s) on %s, and its in-memory state was lost. Version %s stays %s and can be "
                              "removed with otp.release.remove; fix the build (appup/code_change) and try again."
                              % ("upgrade" if plan.direction == "up" else "downgrade", plan.from_version, plan.to_version, node,
                                 reason, now.os_pid, now.running_version, plan.to_version,
                                 now.states.get(plan.to_version, "gone")), raw=raw)
    if now.running_version == plan.to_version:
        return now
    raise OtpReleaseError("install_release(%s) failed on node %s before the point of no return: %s. release_handler rolled it "
                          "back; the node still runs %s with its state." % (plan.to_version, node, reason, now.running_version),
                          raw=raw)


def make_permanent(session, version):
    answer = session.call("release_handler:make_permanent(%s)" % format_term(version))
    if answer != "ok":
        reason = answer[1] if isinstance(answer, tuple) else answer
        raise OtpReleaseError("make_permanent(%s) failed on node %s: %s." % (version, session.node, explain(reason)), raw=answer)


def review_plan(session, plan, mode):
    """The Audit of the plan's relup path (None with mode off); refuses the change in mode strict when it finds
    anything."""
    if mode == "off":
        return None
    audit = audit_change(session, plan.from_version, plan.to_version, plan.instructions)
    error = refusal(audit, mode, session.node, plan.from_version, plan.to_version)
    if error is not None:
        raise error
    return audit


def confirm(session, audit, plan, loaded):
    """still_old_code findings after the change, from the install's answer (loaded), else from one more call. Nothing
    to confirm after an emulator restart: the node booted the target's code."""
    if audit is None or not audit.expected or plan.restart != "none":
        return []
    if loaded is None:
        loaded = session.call(audit.confirm_expr())
    return audit.after(loaded)


def reviewed_install(session, live, plan, options, check_mode):
    """The preflight and the review of the plan, then its install (only checked in check mode). Returns the Live after
    and the findings of the review, before and after the install."""
    check_restart_program(session, live, plan)
    audit = review_plan(session, plan, options.relup_review)
    findings = list(audit.findings) if audit else []
    if check_mode:
        check_install(session, plan)
        return live, findings
    try:
        after_live, loaded = install(session, live, plan, options, audit.confirm_expr() if audit else None)
    except OtpReleaseError as exc:  # what the review warned of may be why
        exc.fields.setdefault("relup_review", findings)
        exc.fields.setdefault("warnings", [finding["msg"] for finding in findings])
        raise
    return after_live, findings + confirm(session, audit, plan, loaded)


def switch_pointer(session, live, version, erts, changed):
    """point_cold_start after the node changed; returns the version a cold start booted before when the pointer was
    switched, else None. A failure (a full disk) says what the node runs and what is left."""
    booted = session.release.start_version(session.node_env())
    try:
        return (booted or "unknown") if session.release.point_cold_start(version, erts, session.node_env(), session.owner()) else None
    except OSError as exc:
        raise OtpReleaseError("Node %s runs %s now and release_handler holds it %s, but switching the cold-start pointer of %s "
                              "failed: %s. A cold start would still boot %s. Fix the cause (free space) and run the module "
                              "again: it will only switch the pointer." % (
                                  live.node, version, live.states.get(version, "unknown"), session.release.root,
                                  exc, session.release.start_version(session.node_env()) or "the version it booted before"),
                              changed=changed, current=live.running_version, permanent=version, pointer_switched=False)


def change(session, to_version, direction, options, check_mode=False):
    """Upgrade or downgrade the node to to_version (None: the previous release) and report it as data."""
    started = time.monotonic()
    live = session.live("change the release of")
    refuse_code_mismatch(live)
    plan = plan_change(session.release, live.node, live.states, to_version, direction, live.broken_versions)
    before = session.facts(live)
    changed = False
    restart = "none"
    after_live = live
    findings = []
    pointer_was = None
    if plan.direction == "none":
        if options.permanent and plan.states.get(plan.to_version) != "permanent":
            changed = True
            if not check_mode:
                make_permanent(session, plan.to_version)
                session.refresh()
                after_live = session.live("read the state of")
    else:
        after_live, findings = reviewed_install(session, live, plan, options, check_mode)
        changed = True
        restart = plan.restart
    if not check_mode:
        if after_live.running_version != plan.to_version:
            raise OtpReleaseError("Node %s reports %s as running after the change to %s: the change did not take. Releases: %s."
                                  % (live.node, after_live.running_version, plan.to_version, states_text(after_live.states)))
        if options.permanent:
            erts = session.release.erts_of(plan.to_version) or after_live.erts
            pointer_was = switch_pointer(session, after_live, plan.to_version, erts, changed)
            changed = changed or pointer_was is not None
    after = session.facts(after_live)
    plan_data = plan.as_data()
    if plan.direction == "none" and changed:
        plan_data["action"] = "make permanent"
    warnings = [finding["msg"] for finding in findings]
    if plan.direction == "none" and pointer_was is not None:
        warnings.append("A cold start of %s would have booted %s although %s was permanent (an earlier run stopped before "
                        "switching the cold-start pointer): it boots %s now."
                        % (session.release.root, pointer_was, plan.to_version, plan.to_version))
    return dict(after, changed=changed, from_version=plan.from_version, to_version=plan.to_version, plan=plan_data,
                direction=plan.direction, permanent=after["permanent"] == plan.to_version, restart=restart,
                instructions=instruction_summary(plan.instructions), relup_review=findings,
                diff=dict(before=states_yaml(dict((e["version"], e["state"]) for e in before["releases"])),
                          after=states_yaml(dict((e["version"], e["state"]) for e in after["releases"]))),
                pointer_switched=pointer_was is not None, warnings=warnings,
                duration_ms=int((time.monotonic() - started) * 1000))
