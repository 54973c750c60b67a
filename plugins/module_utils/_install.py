# -*- coding: utf-8 -*-
# Copyright (c) otp.release contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""release_handler flows on a running node: preflight, install, make permanent, cold-start pointer, remove."""

from __future__ import annotations

import os
import shutil
import tempfile
import time

from ansible_collections.otp.release.plugins.module_utils._erlterm import Atom, format_term, to_plain
from ansible_collections.otp.release.plugins.module_utils._erts import relup_restart_kind
from ansible_collections.otp.release.plugins.module_utils._module import OperationError, run_module
from ansible_collections.otp.release.plugins.module_utils._node import NodeError, NodeException
from ansible_collections.otp.release.plugins.module_utils._release import Target
from ansible_collections.otp.release.plugins.module_utils._versions import current_version, previous_version, version_key


class InstallError(OperationError):
    """A refused or failed change; the message says where the node is now and what to do."""


def explain(reason):
    """One sentence for a release_handler error term."""
    if isinstance(reason, tuple) and len(reason) == 5 and reason[0] == "code_change_failed":
        _kind, process, module, version, error = reason
        return "code_change of module %s (version %s) crashed in process %s: %s" % (
            module, version, process, show_term(crash_reason(error)))
    plain = to_plain(reason)
    kind = plain[0] if isinstance(plain, list) and plain else plain
    texts = {
        "no_such_release": "release_handler does not know version %s: unpack it first",
        "already_installed": "version %s is already installed",
        "enoent": "a file is missing: %s",
        "no_matching_relup": "the relup has no path to %s from %s",
        "bad_relup_file": "the relup file %s cannot be read",
        "existing_release": "version %s is already unpacked",
        "no_such_directory": "the directory %s is missing",
        "bad_rel_file": "the .rel file %s cannot be read",
    }
    if isinstance(kind, str) and kind in texts and isinstance(plain, list):
        args = plain[1:]
        template = texts[kind]
        needed = template.count("%s")
        args = (args + [""] * needed)[:needed]
        return template % tuple(format_term(a) if not isinstance(a, str) else a for a in args)
    return "release_handler returned %s" % show_term(reason)


def show_term(term):
    """Erlang text of a term from the node; pids and other opaque values as the node printed them."""
    try:
        return format_term(term)
    except TypeError:
        return str(to_plain(term))


def crash_reason(error):
    """{'EXIT', {Reason, Stack}} -> Reason: the stack says little to an operator and hides the reason."""
    if isinstance(error, tuple) and len(error) == 2 and error[0] == "EXIT":
        error = error[1]
        if isinstance(error, tuple) and len(error) == 2 and isinstance(error[1], list):
            error = error[0]
    return error


def instruction_summary(instructions):
    """Counts of relup instructions by kind, e.g. {'load': 3, 'suspend': 1, 'code_change': 1}."""
    counts = {}
    for instruction in instructions or []:
        kind = str(instruction[0]) if isinstance(instruction, tuple) else str(instruction)
        counts[kind] = counts.get(kind, 0) + 1
    return counts


class Plan(object):
    def __init__(self, from_version, to_version, direction, instructions, states):
        self.from_version = from_version
        self.to_version = to_version
        self.direction = direction
        self.instructions = instructions
        self.restart = relup_restart_kind(instructions) if instructions else "none"
        self.states = states


def _releases(states):
    return [dict(version=v, state=s) for v, s in states.items()]


def running_version(states):
    """The version the node runs, from {version: state}."""
    return current_version(_releases(states))


def plan_change(target, states, to_version, direction):
    """Preflight for an upgrade or downgrade; raises InstallError naming what is wrong and what to do."""
    release = target.release
    node = target.identity.node
    running = running_version(states)
    if to_version is None:
        to_version = previous_version(_releases(states))
        if to_version is None:
            raise InstallError("Node %s runs %s and has no old release below it to go back to (releases: %s)."
                               % (node, running, _states_text(states)))
    if to_version == running:
        return Plan(running, to_version, "none", [], states)
    if to_version not in states:
        raise InstallError("Version %s is not unpacked on node %s (releases: %s): unpack it first with otp.release.unpack."
                           % (to_version, node, _states_text(states)))
    newer = version_key(to_version) > version_key(running)
    if direction == "up" and not newer:
        raise InstallError("%s is older than the running %s on node %s: use otp.release.downgrade to go back." % (to_version, running, node))
    if direction == "down" and newer:
        raise InstallError("%s is newer than the running %s on node %s: use otp.release.upgrade to go forward." % (to_version, running, node))
    if direction == "down" and states[to_version] not in ("old", "permanent"):
        raise InstallError("Version %s is %s on node %s, not an old release: a downgrade goes back to a release this node ran before."
                           % (to_version, states[to_version], node))
    relup_version, key, other = (to_version, "up", running) if direction == "up" else (running, "down", to_version)
    relup_path = release.path("releases", relup_version, "relup")
    relup = release.relup(relup_version)
    if relup is None:
        raise InstallError("%s is missing, so there is no %s path from %s to %s. Build the release with a relup (rebar3 relup, "
                           "mix with an appup tool, Distillery --upgrade) and unpack it again."
                           % (relup_path, "upgrade" if direction == "up" else "downgrade", running, to_version))
    if other not in relup[key]:
        raise InstallError("%s has no %s path %s %s (it has %s: %s). Build a relup that covers %s -> %s, or go through the versions in between."
                           % (relup_path, "upgrade" if direction == "up" else "downgrade", "from" if key == "up" else "to", other,
                              "up from" if key == "up" else "down to", ", ".join(sorted(relup[key], key=version_key)) or "nothing",
                              running, to_version))
    return Plan(running, to_version, direction, relup[key][other], states)


def _states_text(states):
    return ", ".join("%s %s" % (v, states[v]) for v in sorted(states, key=version_key)) or "none"


BOOT_MARKER = "whereis(application_controller)"


def check_restart_program(target, plan):
    """A relup that restarts the emulator needs heart and a restart program that boots the new version."""
    if plan.restart == "none":
        return
    heart, start_prg = target.call("{whereis(heart) =/= undefined, application:get_env(sasl, start_prg)}")
    node = target.identity.node
    if not is_true(heart):
        raise InstallError("The relup %s -> %s restarts the emulator (%s), but node %s runs without heart, so release_handler would "
                           "restart it in place on %s and lose its state. Start the node with -heart, or do a rolling restart instead."
                           % (plan.from_version, plan.to_version, plan.restart, node, plan.from_version))
    program = str(start_prg[1]) if isinstance(start_prg, tuple) else target.release.path("bin", "start")
    executable = program.split()[0] if program.split() else program
    if not os.access(executable, os.X_OK):
        raise InstallError("The relup %s -> %s restarts the emulator (%s) and heart would run %s, which does not exist or is not "
                           "executable here, so node %s would not come back. Set {sasl, [{start_prg, \"...\"}]} to a program that "
                           "boots the release named in the given start_erl.data file."
                           % (plan.from_version, plan.to_version, plan.restart, executable, node))


def is_true(term):
    return term is True or term == "true"


def install(target, plan, permanent=True, purge=False, code_change_timeout=None, suspend_timeout=None, check_mode=False):
    """Run check_install_release and install_release (and make_permanent) for the plan. Returns the restart kind seen."""
    node = target.identity.node
    check_options = [Atom("purge")] if purge and not check_mode else []
    check = "release_handler:check_install_release(%s, %s)" % (format_term(plan.to_version), format_term(check_options))
    if check_mode:
        answer = target.call(check)
        if isinstance(answer, tuple) and answer[0] == "error":
            raise InstallError("check_install_release(%s) failed on node %s: %s. Nothing was changed."
                               % (plan.to_version, node, explain(answer[1])), raw=answer[1])
        return
    options = [(Atom("update_paths"), True)]
    if code_change_timeout:
        options.append((Atom("code_change_timeout"), code_change_timeout * 1000))
    if suspend_timeout:
        options.append((Atom("suspend_timeout"), suspend_timeout * 1000))
    make_permanent_now = permanent and plan.restart == "none"
    expression = (
        "begin Marker = %(marker)s, "
        "case %(check)s of "
        " {ok, _, _} -> case release_handler:install_release(%(to)s, %(options)s) of "
        "   {ok, From, _} -> {installed, Marker, From, case %(perm)s of true -> release_handler:make_permanent(%(to)s); false -> ok end}; "
        "   {continue_after_restart, From, _} -> {restarting, Marker, From}; "
        "   {error, R} -> {install_failed, Marker, R}; "
        "   Other -> {install_failed, Marker, Other} end; "
        " {error, R} -> {check_failed, Marker, R} "
        "end end"
        % dict(marker=BOOT_MARKER, check=check, to=format_term(plan.to_version), options=format_term(options),
               perm="true" if make_permanent_now else "false"))
    marker = target.call(BOOT_MARKER)
    try:
        answer = target.call(expression)
    except NodeException:
        raise
    except NodeError as exc:
        return recover(target, plan, marker, "the call was cut off (%s)" % exc.msg)
    outcome = str(answer[0])
    if outcome == "check_failed":
        raise InstallError("check_install_release(%s) failed on node %s: %s. Nothing was changed; the node still runs %s."
                           % (plan.to_version, node, explain(answer[2]), plan.from_version), raw=answer[2])
    if outcome == "install_failed":
        return recover(target, plan, marker, explain(answer[2]), raw=answer[2])
    if outcome == "installed" and answer[3] != "ok" and make_permanent_now:
        raise InstallError("Node %s now runs %s but make_permanent failed: %s. A restart would boot %s; run the module again."
                           % (node, plan.to_version, explain(answer[3][1] if isinstance(answer[3], tuple) else answer[3]),
                              plan.from_version), raw=answer[3])
    if plan.restart != "none" or outcome == "restarting":
        wait_for_new_emulator(target, plan)
        if permanent:
            make_permanent(target, plan.to_version)
    return plan.restart


def wait_for_new_emulator(target, plan):
    """After an emulator restart: a NEW OS pid that shows the target version current."""
    old_pid = target.identity.os_pid
    deadline = time.monotonic() + max(target.timeout, 10)
    last = "no answer yet"
    while time.monotonic() < deadline:
        time.sleep(0.5)
        target.refresh_identity()
        try:
            live = target.live_state()
        except NodeError as exc:
            last = exc.msg
            continue
        if live.os_pid != old_pid and running_version(live.states) == plan.to_version:
            return
        last = "pid %s runs %s" % (live.os_pid, running_version(live.states))
    raise InstallError("Node %s restarted its emulator for %s -> %s but did not come back on %s within %s s (%s). Check the "
                       "node's logs and its heart restart program."
                       % (target.identity.node, plan.from_version, plan.to_version, plan.to_version, max(target.timeout, 10), last))


def recover(target, plan, marker, reason, raw=None):
    """install_release failed: find out whether the node rolled back in place or restarted on the old release."""
    node = target.identity.node
    deadline = time.monotonic() + target.timeout
    while True:
        try:
            now_marker, status = target.call("{%s, init:get_status()}" % BOOT_MARKER)
            if status == ("started", "started"):
                live = target.live_state()
                break
        except NodeError:
            pass
        if time.monotonic() >= deadline:
            raise InstallError("install_release(%s) failed on node %s (%s) and the node has not answered since, for %s s. "
                               "Check it: it may be restarting on %s." % (plan.to_version, node, reason, target.timeout, plan.from_version), raw=raw)
        time.sleep(0.25)
    running = running_version(live.states)
    if str(now_marker) != str(marker):
        raise InstallError("The %s %s -> %s of node %s crashed past the point of no return (%s): release_handler restarted the "
                           "node in place (OS pid %s) on %s, and its in-memory state was lost. Version %s stays %s and can be removed "
                           "with otp.release.remove; fix the build (appup/code_change) and try again."
                           % ("upgrade" if plan.direction == "up" else "downgrade", plan.from_version, plan.to_version, node,
                              reason, live.os_pid, running, plan.to_version,
                              live.states.get(plan.to_version, "gone")), raw=raw)
    raise InstallError("install_release(%s) failed on node %s before the point of no return: %s. release_handler rolled it back; the "
                       "node still runs %s with its state." % (plan.to_version, node, reason, running), raw=raw)


def make_permanent(target, version):
    answer = target.call("release_handler:make_permanent(%s)" % format_term(version))
    if answer != "ok":
        reason = answer[1] if isinstance(answer, tuple) else answer
        raise InstallError("make_permanent(%s) failed on node %s: %s." % (version, target.identity.node, explain(reason)), raw=answer)


def point_cold_start(release, version, erts):
    """Make a cold start of bin/<name> boot this version, whatever built the release. Returns True when a file changed."""
    producer = release.producer
    if producer == "relx":
        versioned = release.path("bin", "%s-%s" % (release.name, version))
        script = release.path("bin", release.name)
        if os.path.isfile(versioned) and not _same_bytes(versioned, script):
            replace_file(script, versioned)
            return True
        return False
    if producer == "distillery":
        return write_if_changed(release.path("var", "start_erl.data"), "%s %s" % (erts, version))
    if producer == "mix":
        return write_if_changed(release.path("releases", "start_erl.data"), "%s %s" % (erts, version))
    return False


def _same_bytes(a, b):
    if not os.path.exists(b):
        return False
    with open(a, "rb") as first, open(b, "rb") as second:
        return first.read() == second.read()


def replace_file(path, source):
    """Atomically put a copy of source at path (temp name in the same directory, then rename)."""
    directory = os.path.dirname(path)
    fd, temp = tempfile.mkstemp(dir=directory, prefix=".otp-release-")
    os.close(fd)
    try:
        shutil.copy2(source, temp)
        os.rename(temp, path)
    finally:
        if os.path.exists(temp):
            os.unlink(temp)


def write_if_changed(path, text):
    if os.path.exists(path):
        with open(path) as handle:
            if handle.read().strip() == text:
                return False
    directory = os.path.dirname(path)
    if not os.path.isdir(directory):
        os.makedirs(directory)
    fd, temp = tempfile.mkstemp(dir=directory, prefix=".otp-release-")
    with os.fdopen(fd, "w") as handle:
        handle.write(text + "\n")
    os.chmod(temp, 0o644)
    os.rename(temp, path)
    return True


CHANGE_OPTIONS = dict(
    permanent=dict(type="bool", default=True),
    purge=dict(type="bool", default=False),
    code_change_timeout=dict(type="int"),
    suspend_timeout=dict(type="int"),
)


def live_states(target):
    """The node's live state; a node that does not answer stops a change with a clear error."""
    try:
        return target.live_state()
    except NodeError as exc:
        raise InstallError("Cannot change the release of %s: %s Nothing was changed." % (target.release.root, exc.msg))


def change(target, to_version, direction, params, check_mode=False):
    """Upgrade or downgrade the node to to_version (None: the previous release) and report it as data."""
    started = time.monotonic()
    live = live_states(target)
    plan = plan_change(target, live.states, to_version, direction)
    before = target.facts(live)
    permanent = params.get("permanent", True)
    changed = False
    restart = "none"
    if plan.direction == "none":
        if permanent and plan.states.get(plan.to_version) != "permanent":
            changed = True
            if not check_mode:
                make_permanent(target, plan.to_version)
    else:
        check_restart_program(target, plan)
        restart = install(target, plan, permanent, params.get("purge"), params.get("code_change_timeout"),
                          params.get("suspend_timeout"), check_mode)
        changed = True
    after_live = live if check_mode else target.live_state()
    if not check_mode:
        running = running_version(after_live.states)
        if running != plan.to_version:
            raise InstallError("Node %s reports %s as running after the change to %s: the change did not take. Releases: %s."
                               % (target.identity.node, running, plan.to_version, _states_text(after_live.states)))
        if permanent:
            erts = next((e["erts"] for e in target.facts(after_live)["releases"] if e["version"] == plan.to_version), None)
            changed = point_cold_start(target.release, plan.to_version, erts) or changed
    after = target.facts(after_live)
    result = dict(after, changed=changed, from_version=plan.from_version, to_version=plan.to_version,
                  direction=plan.direction, permanent=after["permanent"] == plan.to_version, restart=restart or "none",
                  instructions=instruction_summary(plan.instructions),
                  diff=dict(before=_states_yaml(before), after=_states_yaml(after)))
    if check_mode:
        result["restart"] = plan.restart
    result["duration_ms"] = int((time.monotonic() - started) * 1000)
    return result


def _states_yaml(facts):
    return "".join("%s: %s\n" % (e["version"], e["state"]) for e in facts["releases"])


def run_change_module(module, direction):
    """main() of the upgrade and downgrade modules."""
    run_module(module, lambda: change(Target.from_params(module.params), module.params.get("version"), direction,
                                      module.params, module.check_mode))


# ---------------------------------------------------------------------------------------------------
# The whole path in one invocation: upgrade with src, health and keep

HEALTH_OPTIONS = dict(
    health=dict(type="dict"),
    health_timeout=dict(type="int", default=10),
    keep=dict(type="int"),
    verify_erts=dict(type="bool", default=False),
)


def upgrade_module_kwargs():
    """AnsibleModule keyword arguments of the upgrade module, shared with its action plugin."""
    # _unpack imports this module, so its names are imported when called, not at load time.
    from ansible_collections.otp.release.plugins.module_utils._module import module_kwargs
    from ansible_collections.otp.release.plugins.module_utils._unpack import UNPACK_OPTIONS, UNPACK_REQUIRED_TOGETHER

    options = dict(UNPACK_OPTIONS, **CHANGE_OPTIONS)
    options.update(HEALTH_OPTIONS)
    kwargs = module_kwargs(required_together=UNPACK_REQUIRED_TOGETHER, **options)
    kwargs["required_one_of"] = [("version", "src")]
    return kwargs


def check_health(target, health, timeout):
    """Call the health MFA on the node in a process of its own; (True, answer) when it returned ok in time."""
    module, function, args = health.get("module"), health.get("function"), health.get("args") or []
    if not module or not function:
        raise InstallError("health needs module and function (and optional args), e.g. {module: kvstore, function: health}.")
    expression = (
        "begin Ref = make_ref(), "
        "{Pid, MRef} = spawn_monitor(fun() -> exit({Ref, catch erlang:apply(%s, %s, %s)}) end), "
        "receive {'DOWN', MRef, process, Pid, {Ref, Answer}} -> Answer; {'DOWN', MRef, process, Pid, Why} -> {crashed, Why} "
        "after %d -> exit(Pid, kill), {no_answer_within_ms, %d} end end"
        % (format_term(Atom(module)), format_term(Atom(function)), format_term(list(args)), timeout * 1000, timeout * 1000))
    answer = target.call(expression)
    call = "%s:%s(%s)" % (module, function, ", ".join(show_term(a) for a in args))
    return answer == "ok", call, answer


def upgrade_all(params, check_mode=False):
    """upgrade with src: unpack -> verify_erts -> upgrade -> health -> remove, in one invocation. Without src it is
    the plain upgrade, plus health and keep when given."""
    from ansible_collections.otp.release.plugins.module_utils._unpack import inspect_source, run_verify, unpack

    started = time.monotonic()
    params = dict(params)
    unpacked = None
    if params.get("src"):
        facts = inspect_source(params["src"], params.get("name"), params.get("version"), params.get("checksum"),
                               params.get("allow_missing_erts"))
        params.update(name=params.get("name") or facts.name, version=facts.version)
        unpacked = unpack(params, facts, params["src"], check_mode)
    version = params["version"]
    target = Target.from_params(params)
    if unpacked and unpacked["changed"] and check_mode:
        # Not unpacked yet, so release_handler cannot check the install: check the tarball and the relup instead.
        checks = run_verify(dict(params, version=None))
        live = live_states(target)
        return dict(target.facts(live), changed=True, from_version=running_version(live.states), to_version=version,
                    direction="up", permanent=bool(params.get("permanent")), restart="unknown", instructions={},
                    unpack=_step(unpacked), erts_checks=checks["checks"], duration_ms=int((time.monotonic() - started) * 1000))
    erts_checks = None
    if (params.get("src") or params.get("verify_erts")) and running_version(live_states(target).states) != version:
        erts_checks = run_verify(dict(params, src=None))["checks"]
    result = change(target, version, "up", params, check_mode)
    if unpacked:
        result["unpack"] = _step(unpacked)
        result["changed"] = result["changed"] or unpacked["changed"]
    if erts_checks is not None:
        result["erts_checks"] = erts_checks
    if params.get("health") and not check_mode:
        healthy, call, answer = check_health(target, params["health"], params.get("health_timeout") or 10)
        result["health"] = dict(call=call, ok=healthy, answer=to_plain(answer))
        if not healthy:
            raise InstallError("Node %s runs %s now (%s), but its health check %s returned %s instead of ok. Downgrade it "
                               "with otp.release.downgrade if it must go back."
                               % (target.identity.node, version, "permanent" if result["permanent"] else "current only",
                                  call, show_term(answer)), fields=dict(result, health_failed=True))
    if params.get("keep") is not None and not check_mode:
        removed = remove_releases(target, params["keep"])
        result.update(releases=removed["releases"], removed=removed["removed"])
        result["changed"] = result["changed"] or removed["changed"]
    result["duration_ms"] = int((time.monotonic() - started) * 1000)
    return result


def _step(step_result):
    return dict((k, step_result.get(k)) for k in ("changed", "method", "version", "erts_version", "duration_ms"))


def run_upgrade_module(module):
    """main() of the upgrade module."""
    from ansible_collections.otp.release.plugins.module_utils._unpack import preflight

    def work():
        if not module.params.get("preflight_only"):
            return upgrade_all(module.params, module.check_mode)
        # the action plugin's question before it sends src; in check mode this is the whole answer
        probe = preflight(module.params)
        version = module.params["version"]
        return dict(probe, from_version=probe.get("current"), to_version=version,
                    direction="none" if probe.get("current") == version else "up")

    run_module(module, work)

# ---------------------------------------------------------------------------------------------------
# Removing releases (the remove module, and upgrade's keep)


def removal_candidates(states, keep=1, version=None, node=None):
    """Versions to remove, from {version: state}: exactly version (old or unpacked; [] when it is already
    gone), else every old release but the newest keep. Never the current or permanent one."""
    if version:
        state = states.get(version)
        if state in ("current", "permanent"):
            raise InstallError("Version %s is the %s release of node %s, so it cannot be removed (releases: %s). Upgrade or "
                               "downgrade the node to another version first." % (version, state, node, _states_text(states)))
        return [version] if state else []
    old = sorted((v for v, s in states.items() if s == "old"), key=version_key)
    return old[:max(len(old) - max(keep, 0), 0)]


def remove_releases(target, keep=1, version=None, check_mode=False):
    """Remove releases with release_handler:remove_release/1 in one call to the node; the result as data."""
    started = time.monotonic()
    node = target.identity.node
    live = live_states(target)
    to_remove = removal_candidates(live.states, keep, version, node)
    removed, failed = to_remove, []
    after_states = dict((v, s) for v, s in live.states.items() if v not in to_remove)
    if to_remove and not check_mode:
        outcomes, states = target.call(
            "{[{V, release_handler:remove_release(V)} || V <- %s], "
            "[{V, S} || {_, V, _, S} <- release_handler:which_releases()]}" % format_term(to_remove))
        after_states = dict((str(v), str(s)) for v, s in states)
        removed = [str(v) for v, outcome in outcomes if outcome == "ok"]
        failed = [(str(v), outcome) for v, outcome in outcomes if outcome != "ok"]
    removed_files = remove_start_scripts(target.release, removed, check_mode)
    if failed:
        failed_version, outcome = failed[0]
        reason = outcome[1] if isinstance(outcome, tuple) and len(outcome) == 2 else outcome
        raise InstallError("remove_release(%s) failed on node %s: %s. Removed: %s. Releases now: %s."
                           % (failed_version, node, explain(reason), ", ".join(removed) or "none",
                              _states_text(after_states)), raw=outcome)
    before = target.facts(live)
    after = target.facts(live.with_states(after_states))
    return dict(after, changed=bool(removed), removed=removed, removed_files=removed_files,
                diff=dict(before=_states_yaml(before), after=_states_yaml(after)),
                duration_ms=int((time.monotonic() - started) * 1000))


def remove_start_scripts(release, versions, check_mode=False):
    """relx leaves a bin/<name>-<vsn> per version; the one of a removed version boots nothing any more."""
    if release.producer != "relx":
        return []
    paths = [release.path("bin", "%s-%s" % (release.name, v)) for v in versions]
    paths = [path for path in paths if os.path.isfile(path)]
    if not check_mode:
        for path in paths:
            os.unlink(path)
    return paths


def run_remove_module(module):
    """main() of the remove module."""
    run_module(module, lambda: remove_releases(Target.from_params(module.params), module.params["keep"],
                                               module.params.get("version"), module.check_mode))
