# -*- coding: utf-8 -*-
# Copyright (c) otp.release contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Unpacking a release tarball into a root, and the ERTS checks of a release: the flows behind the unpack
and verify_erts modules, callable as plain functions (the upgrade module runs them in the same invocation).

Unpack, in order: inspect the tarball (nothing in the root is touched before it passed), then
- the version is known (node running: which_releases; node down: RELEASES): nothing to do;
- a node serves the root: place the tarball at releases/<vsn>/<name>.tar.gz and call unpack_release;
  when that fails, remove every path the attempt created, so that a retry starts clean;
- no node and a missing or empty root: first install by safe extraction plus a RELEASES file;
- no node and a non-empty root: refuse (never extract over a live root).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time

from ansible_collections.otp.release.plugins.module_utils._erlterm import Atom, format_term, parse_all, to_plain
from ansible_collections.otp.release.plugins.module_utils._erts import (
    ErtsCheckError,
    erts_vs_running,
    relup_restart_kind,
    run_checks,
    verify_tarball,
)
from ansible_collections.otp.release.plugins.module_utils._install import explain, replace_file
from ansible_collections.otp.release.plugins.module_utils._module import OperationError
from ansible_collections.otp.release.plugins.module_utils._node import NodeError
from ansible_collections.otp.release.plugins.module_utils._release import (
    Live,
    ReleaseError,
    ReleaseRoot,
    Target,
    find_node_process,
)
from ansible_collections.otp.release.plugins.module_utils._tarball import (
    ReleaseTarballError,
    extract_members,
    inspect,
    sha256_file,
)
from ansible_collections.otp.release.plugins.module_utils._versions import current_version, version_key

# The unpack options on top of the shared ones; the unpack module and its action plugin both use them.
UNPACK_OPTIONS = dict(
    src=dict(type="path"),
    remote_src=dict(type="bool", default=False),
    version=dict(type="str"),
    checksum=dict(type="str"),
    signature=dict(type="path"),
    public_key=dict(type="str", no_log=False),
    allow_missing_erts=dict(type="bool", default=False),
    preflight_only=dict(type="bool", default=False),
)
UNPACK_REQUIRED_TOGETHER = [("signature", "public_key")]
# Checked by the action plugin on the controller; never sent to the host.
CONTROLLER_ONLY_OPTIONS = ("signature", "public_key")

VERIFY_OPTIONS = dict(
    version=dict(type="str"),
    src=dict(type="path"),
)
VERIFY_REQUIRED_ONE_OF = [("version", "src")]

CHECKSUM_RE = re.compile(r"sha256:([0-9a-fA-F]{64})$")

# which_releases first: unpack_release of a version whose tarball was unpacked (and deleted) before
# answers {error, {no_such_file, ...}}, not existing_release.
UNPACK_EXPR = (
    "begin Vsn = %(vsn)s, "
    "Answer = case lists:keymember(Vsn, 2, release_handler:which_releases()) of "
    " true -> {error, {existing_release, Vsn}}; "
    " false -> release_handler:unpack_release(%(rel)s) end, "
    "{Answer, node(), list_to_integer(os:getpid()), erlang:system_info(version), "
    " [{V, S, Libs} || {_, V, Libs, S} <- release_handler:which_releases()]} end"
)


class UnpackError(OperationError):
    """A refused or failed unpack or check; the message says what is wrong, the state and what to do."""


def parse_checksum(checksum):
    """'sha256:<hex>' -> the lower-case hex digest; None stays None."""
    if not checksum:
        return None
    match = CHECKSUM_RE.match(checksum.strip())
    if not match:
        raise UnpackError("checksum must be 'sha256:' followed by 64 hex digits, not %r." % checksum)
    return match.group(1).lower()


def checksum_mismatch(path, expected, actual):
    return UnpackError("%s does not match its checksum: expected sha256:%s, actual sha256:%s. The file is damaged or "
                       "not the one meant; copy or download it again. Nothing was changed." % (path, expected, actual))


def inspect_source(src, name=None, version=None, checksum=None, allow_missing_erts=False):
    """Check the tarball at src (on this host) and return its TarballFacts; checksum is 'sha256:<hex>' or None."""
    expected = parse_checksum(checksum)
    if not os.path.isfile(src):
        raise UnpackError("The release tarball %s does not exist on this host (or is not a file)." % src)
    if expected:
        actual = sha256_file(src)
        if actual != expected:
            raise checksum_mismatch(src, expected, actual)
    return inspect(src, name, version, allow_missing_erts)


# ---- the state of a root --------------------------------------------------------------------------------

def ask_node(target):
    """Live state of the node serving the root, or None when no node runs (a refusing node is an error)."""
    return target.live_or_down()[0]


def disk_states(release):
    return dict((e["version"], e["state"]) for e in release.release_states())


def check_release_name(release, name):
    names = set(e["name"] for e in release.releases_file())
    if names and name not in names:
        raise UnpackError("The tarball holds release %r but %s serves %s: give the tarball of this release, or the right root."
                          % (name, release.root, ", ".join(repr(n) for n in sorted(names))))


def _states_text(states):
    return "".join("%s: %s\n" % (v, states[v]) for v in sorted(states, key=version_key))


def _release_info(release, version, facts=None):
    """version, erts_version and relup paths, from the tarball when inspected, else from the root."""
    if facts is not None:
        return dict(version=facts.version, name=facts.name, erts_version=facts.rel_erts_version,
                    relup_up_from=facts.relup_up_from, relup_down_to=facts.relup_down_to, sha256=facts.sha256)
    erts = next((e["erts"] for e in release.release_states() if e["version"] == version), None)
    try:
        relup = release.relup(version) or dict(up={}, down={})
    except ReleaseError:
        relup = dict(up={}, down={})
    return dict(version=version, name=release.name, erts_version=erts,
                relup_up_from=sorted(relup["up"], key=version_key), relup_down_to=sorted(relup["down"], key=version_key))


def _result(target, live, before, info, changed, method, after_states=None):
    facts = target.facts(live)
    if after_states is not None:  # check mode: what the releases would be
        erts = dict((e["version"], e["erts"]) for e in facts["releases"])
        erts.setdefault(info["version"], info.get("erts_version"))
        facts["releases"] = [dict(version=v, state=s, erts=erts.get(v)) for v, s in
                             sorted(after_states.items(), key=lambda item: version_key(item[0]))]
    after = after_states if after_states is not None else dict((e["version"], e["state"]) for e in facts["releases"])
    result = dict(facts, changed=changed, method=method, diff=dict(before=_states_text(before), after=_states_text(after)))
    result.update(info)
    return result


# ---- unpack ---------------------------------------------------------------------------------------------

def run_unpack(params, check_mode=False):
    """The unpack module: params are the module's (shared options plus UNPACK_OPTIONS). Returns the result."""
    started = time.monotonic()
    for option in CONTROLLER_ONLY_OPTIONS:
        if params.get(option):
            raise UnpackError("%s is checked on the controller by the otp.release.unpack action plugin; it cannot be checked "
                              "on the host. Run the module through its action (the usual task form)." % option)
    if params.get("preflight_only"):
        result = preflight(params)
    else:
        if not params.get("src"):
            raise UnpackError("src is required: the release tarball to unpack.")
        facts = inspect_source(params["src"], params.get("name"), params.get("version"), params.get("checksum"),
                               params.get("allow_missing_erts"))
        result = unpack(params, facts, params["src"], check_mode)
    result["duration_ms"] = int((time.monotonic() - started) * 1000)
    return result


def unpack(params, facts, src, check_mode=False):
    """Unpack the inspected tarball at src into params['root'] as the state of the root allows (see above)."""
    release = ReleaseRoot(params["root"], params.get("name") or facts.name)
    if not release.exists():
        return first_install(release, facts, src, check_mode)
    check_release_name(release, facts.name)
    target = Target.from_params(dict(params, name=params.get("name") or facts.name))
    live = ask_node(target)
    if live is None:
        return _node_down(target, facts.version, facts)
    before = dict(live.states)
    if facts.version in live.states:
        return _result(target, live, before, _release_info(release, facts.version, facts), False, "none")
    refuse_leftovers(release, facts.name, facts.version, list(facts.applications), live)
    if check_mode:
        return _result(target, live, before, _release_info(release, facts.version, facts), True, "release_handler",
                       after_states=dict(before, **{facts.version: "unpacked"}))
    live = unpack_on_node(target, facts, src)
    return _result(target, live, before, _release_info(release, facts.version, facts), True, "release_handler")


def _node_down(target, version, facts=None):
    """No node answers for a non-empty root: a known version is fine, anything else needs the node."""
    release = target.release
    states = disk_states(release)
    if version in states:
        return _result(target, None, states, _release_info(release, version, facts), False, "none")
    raise UnpackError("No node answers for %s (node %s), and the root is not empty: version %s is unpacked through the "
                      "running node only, never by extracting over a live root. Start the node and run again."
                      % (release.root, target.identity.node or "unknown", version))


def refuse_leftovers(release, name, version, applications, live):
    """Paths an unfinished earlier unpack left: release_handler would keep those files and mix them into the new version."""
    found = []
    version_dir = release.path("releases", version)
    if os.path.isdir(version_dir) and set(os.listdir(version_dir)) - set([name + ".tar.gz"]):
        found.append(version_dir + "/")
    used = set(lib for libs in live.libs.values() for lib in libs)
    if used:
        for app, app_vsn in applications:
            lib_dir = "%s-%s" % (app, app_vsn)
            if lib_dir not in used and os.path.isdir(release.path("lib", lib_dir)):
                found.append(release.path("lib", lib_dir) + "/")
    if found:
        raise UnpackError("Cannot unpack %s on node %s: %s already exist%s although the node does not know version %s. They are "
                          "left from an unpack that did not finish, and release_handler would keep their files inside %s. "
                          "Remove them and run again. Nothing was changed."
                          % (version, live.node, ", ".join(found), "s" if len(found) == 1 else "", version, version))


def _member_paths(src, facts, private_dir):
    """Physical paths of every member (relative to the root); also writes the .rel to private_dir and proves
    that src still holds the inspected bytes."""
    rel_member = "releases/%s/%s.rel" % (facts.version, facts.name)
    paths = []

    def wanted(relative):
        paths.append(relative)
        return relative == rel_member

    extract_members(src, private_dir, wanted, facts)
    return paths


def _new_tops(root, relative_paths):
    """For each path, its first component that does not exist yet: what to remove to undo creating it."""
    tops = set()
    for relative in relative_paths:
        parts = relative.split("/")
        for depth in range(1, len(parts) + 1):
            prefix = "/".join(parts[:depth])
            if not os.path.lexists(os.path.join(root, prefix)):
                tops.add(prefix)
                break
    return sorted(tops)


def remove_paths(root, relative_paths):
    """Remove what an attempt created; returns (removed, could not remove)."""
    removed, left = [], []
    for relative in sorted(relative_paths, key=lambda p: -p.count("/")):
        path = os.path.join(root, relative)
        try:
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path)
            elif os.path.lexists(path):
                os.unlink(path)
            else:
                continue
            removed.append(relative)
        except OSError:
            left.append(path)
    return sorted(removed), left


def place_file(src, dest, sha256):
    """Copy src to dest through a temporary name in dest's directory; the copy must hash to sha256."""
    directory = os.path.dirname(dest)
    fd, temp = tempfile.mkstemp(dir=directory, prefix=".otp-release-")
    os.close(fd)
    try:
        shutil.copyfile(src, temp)
        os.chmod(temp, 0o644)
        copied = sha256_file(temp)
        if copied != sha256:
            raise checksum_mismatch(src, sha256, copied)
        os.rename(temp, dest)
    finally:
        if os.path.exists(temp):
            os.unlink(temp)


def unpack_on_node(target, facts, src):
    """Place the tarball and call release_handler:unpack_release on the node; returns the Live state after.

    On a failure every path this attempt created is removed (the root is as before) and UnpackError raised.
    """
    release = target.release
    root = release.root
    dest = release.path("releases", facts.version, facts.name + ".tar.gz")
    private_dir = tempfile.mkdtemp(prefix="otp-release-unpack-")
    try:
        members = _member_paths(src, facts, private_dir)
        placed_by_us = os.path.realpath(src) != os.path.realpath(dest)
        created = _new_tops(root, members + [os.path.relpath(dest, root)])
        try:
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            if placed_by_us:
                place_file(src, dest, facts.sha256)
        except OSError as exc:
            raise UnpackError("Cannot place the release tarball at %s: %s. %s" % (dest, exc, _undo(root, created)))
        except UnpackError as exc:
            raise UnpackError("%s %s" % (exc.msg, _undo(root, created)))
        outcome, live = _call_unpack(target, facts, root, created)
        if outcome[0] == "ok":
            # release_handler deletes releases/<vsn>/<name>.rel after unpacking; other tools read it
            rel_path = release.path("releases", facts.version, facts.name + ".rel")
            if not os.path.exists(rel_path):
                replace_file(rel_path, os.path.join(private_dir, "releases", facts.version, facts.name + ".rel"))
            return live
        reason = outcome[1]
        if to_plain(reason) == ["existing_release", facts.version]:
            # unpacked by someone else in the meantime: only our own tarball is ours to remove
            if placed_by_us and os.path.exists(dest):
                os.unlink(dest)
            return live
        raise UnpackError("release_handler:unpack_release(\"%s/%s\") failed on node %s: %s. %s The node still runs %s and "
                          "RELEASES is unchanged; run again once the cause is fixed."
                          % (facts.version, facts.name, live.node, explain_unpack(reason), _undo(root, created),
                             current_version([dict(version=v, state=s) for v, s in live.states.items()])),
                          raw=reason)
    finally:
        shutil.rmtree(private_dir, ignore_errors=True)


def _call_unpack(target, facts, root, created):
    """(outcome, Live) of the unpack call. When the call itself breaks, ask the node again: which_releases is
    answered by release_handler only after an unpack in progress has finished."""
    expression = UNPACK_EXPR % dict(vsn=format_term(facts.version), rel=format_term("%s/%s" % (facts.version, facts.name)))
    try:
        answer = target.call(expression)
        return answer[0], Live(*answer[1:])
    except NodeError as exc:
        problem = exc.msg
    try:
        live = target.live_state()
    except NodeError as exc:
        raise UnpackError("The unpack_release call on node %s broke off (%s) and the node does not answer since (%s). Nothing "
                          "was removed, as the unpack may still be running: check the node, then run again."
                          % (target.identity.node, problem, exc.msg))
    if facts.version in live.states:
        return ("ok", facts.version), live
    raise UnpackError("The unpack_release call on node %s broke off (%s) and the node does not know version %s. %s"
                      % (live.node, problem, facts.version, _undo(root, created)))


def _undo(root, created):
    """Remove what an attempt created; one sentence saying what happened."""
    removed, left = remove_paths(root, created)
    if left:
        return "Could not remove %s: remove it by hand before the next attempt." % ", ".join(left)
    if removed:
        return "What the attempt created was removed (%s)." % ", ".join(removed)
    return "Nothing was left behind."


def _is_stack(term):
    return isinstance(term, list) and bool(term) and all(isinstance(f, tuple) and len(f) == 4 for f in term)


def explain_unpack(reason):
    """One sentence for an unpack_release error term."""
    plain = to_plain(reason)
    if isinstance(plain, list) and len(plain) == 3 and plain[0] == "cannot_extract_file":
        return "it could not write %s (%s)" % (plain[1], format_term(reason[2]))
    if isinstance(reason, tuple) and len(reason) == 2 and _is_stack(reason[1]):
        # release_handler caught a crash, e.g. {case_clause, {error, eperm}} when erl_tar cannot write a file
        module, function, arity = reason[1][0][:3]
        return "release_handler crashed with %s in %s:%s/%s" % (format_term(reason[0]), module, function, arity)
    if isinstance(plain, list) and plain and not isinstance(plain[0], str):
        return "release_handler returned %s" % format_term(reason)
    return explain(reason)


# ---- first install ------------------------------------------------------------------------------------

def releases_text(facts, state="permanent"):
    """RELEASES as release_handler writes it, for the one version of the tarball."""
    libs = [(Atom(app), vsn, "lib/%s-%s" % (app, vsn)) for app, vsn in facts.applications]
    entry = (Atom("release"), facts.name, facts.version, facts.rel_erts_version, libs, Atom(state))
    return "%% coding: utf-8\n" + format_term([entry]) + ".\n"


def refuse_first_install(release):
    """A first install needs a missing or empty directory that no process runs from."""
    root = release.root
    if os.path.islink(root):
        raise UnpackError("%s is a symlink: give the real directory (%s) as the root." % (root, os.path.realpath(root)))
    if not release.is_empty():
        raise UnpackError("%s is not empty but holds no releases/ directory: it is not a release root. A first install "
                          "needs a missing or empty directory." % root)
    process = find_node_process(root) if os.path.isdir(root) else None
    if process:
        raise UnpackError("%s is empty but process %d runs with it as its root: stop it first." % (root, process.pid))


def first_install(release, facts, src, check_mode=False):
    """Extract the tarball into a missing or empty root, with a RELEASES file marking its version permanent."""
    refuse_first_install(release)
    root = release.root
    info = _release_info(release, facts.version, facts)
    states = {facts.version: "permanent"}
    result = dict(info, root=root, changed=True, method="first_install", running=False, current=facts.version,
                  permanent=facts.version, releases=[dict(version=facts.version, state="permanent", erts=facts.rel_erts_version)],
                  diff=dict(before="", after=_states_text(states)))
    if check_mode:
        return result
    parent = os.path.dirname(root)
    mode = os.stat(root).st_mode & 0o7777 if os.path.isdir(root) else 0o755
    try:
        os.makedirs(parent, exist_ok=True)
        staging = tempfile.mkdtemp(prefix=".%s.unpacking-" % os.path.basename(root), dir=parent)
    except OSError as exc:
        raise UnpackError("Cannot create a directory next to %s: %s." % (root, exc))
    try:
        extract_members(src, staging, None, facts)
        os.makedirs(os.path.join(staging, "releases"), exist_ok=True)
        with open(os.path.join(staging, "releases", "RELEASES"), "w", encoding="utf-8") as handle:
            handle.write(releases_text(facts))
        os.chmod(staging, mode)
        os.rename(staging, root)  # replaces a missing or empty directory in one step
    except BaseException as exc:
        shutil.rmtree(staging, ignore_errors=True)
        if isinstance(exc, OSError):
            raise UnpackError("Cannot extract %s into %s: %s. %s was left as it was." % (src, root, exc, root))
        raise
    target = Target(root, facts.name)
    result.update(target.facts(None))
    result.update(info)
    return result


# ---- preflight (the action plugin asks before it uploads) ------------------------------------------------

def preflight(params):
    """Everything unpack decides before it needs the tarball's bytes. name, version and checksum come from the
    controller's inspection. Returns the unpack result shape with upload_needed; when the version is known that
    result is final (changed false)."""
    name, version = params.get("name"), params.get("version")
    if not name or not version:
        raise UnpackError("preflight_only needs name and version (the action plugin passes those of the tarball).")
    expected = parse_checksum(params.get("checksum"))
    release = ReleaseRoot(params["root"], name)
    if not release.exists():
        refuse_first_install(release)
        return dict(root=release.root, name=name, version=version, changed=True, method="first_install", upload_needed=True)
    check_release_name(release, name)
    target = Target.from_params(dict(params, name=name))
    live = ask_node(target)
    if live is None:
        return dict(_node_down(target, version), upload_needed=False)
    if version in live.states:
        return dict(_result(target, live, live.states, _release_info(release, version), False, "none"), upload_needed=False)
    refuse_leftovers(release, name, version, [], live)
    result = _result(target, live, live.states, dict(version=version, name=name), True, "release_handler",
                     after_states=dict(live.states, **{version: "unpacked"}))
    placed = release.path("releases", version, name + ".tar.gz")
    if expected and os.path.isfile(placed) and sha256_file(placed) == expected:
        result.update(upload_needed=False, staged_src=placed)
    else:
        result.update(upload_needed=True)
    return result


# ---- verify_erts ----------------------------------------------------------------------------------------

def _checks_for_unpacked(release, version, name):
    contents = release.version_contents(version)
    if contents is None:
        raise UnpackError("Version %s of %s is not unpacked in %s: no releases/%s/%s.rel and no entry in RELEASES."
                          % (version, name, release.root, version, name))
    erts, libs = contents
    return run_checks(release.root, erts, [(app, vsn) for app, vsn, _lib_dir in libs]), erts


def _relup_entry(relup, from_version, to_version):
    """Instructions that take the node from from_version to to_version, from the relup that holds them."""
    if relup is None:
        return None
    if version_key(to_version) >= version_key(from_version):
        return relup["up"].get(from_version)
    return relup["down"].get(to_version)


def _relup_from_text(text, version):
    if not text:
        return None
    term = parse_all(text)[0]
    return dict(up=dict((str(u[0]), u[2]) for u in term[1]), down=dict((str(d[0]), d[2]) for d in term[2]))


def running_of(live):
    """The version the node runs, from a Live."""
    return current_version([dict(version=v, state=s) for v, s in live.states.items()])


def verify_release(release, version=None, src=None, name=None, live=None):
    """Every ERTS check of the unpacked version in release (a ReleaseRoot), or of the tarball src on this host,
    against the running node's Live (None: no node). Returns the result; raises UnpackError (details: result)
    listing every failed check."""
    try:
        if src:
            facts = inspect_source(src, name, version, allow_missing_erts=True)
            name, version, release_erts = facts.name, facts.version, facts.rel_erts_version
            checks = verify_tarball(src, name, version)
            subject = "%s %s in %s" % (name, version, src)
        else:
            name = name or release.name
            checks, release_erts = _checks_for_unpacked(release, version, name)
            subject = "%s %s in %s" % (name, version, release.root)
    except (ErtsCheckError, ReleaseTarballError) as exc:
        raise UnpackError(str(exc))

    running_erts, running = (live.erts, running_of(live)) if live else (None, None)
    restart = "none"
    if running and running_erts != release_erts:
        upgrade = version_key(version) >= version_key(running)
        if not upgrade:
            relup = release.relup(running)  # a downgrade runs the running version's down-script
        elif src:
            relup = _relup_from_text(facts.relup, version)
        else:
            relup = release.relup(version)
        restart = relup_restart_kind(_relup_entry(relup, running, version))
    checks.append(erts_vs_running(running_erts, release_erts, running, restart))

    failed = [c["check"] for c in checks if not c["ok"]]
    result = dict(changed=False, name=name, version=version, erts_version=release_erts, erts_running=running_erts,
                  running_version=running, checks=checks, failed_checks=failed, ok=not failed)
    if failed:
        raise UnpackError("ERTS checks failed for %s: %s." % (subject, "; ".join(
            "%s: %s" % (c["check"], c["detail"]) for c in checks if not c["ok"])), fields=result)
    return result


def run_verify(params):
    """The verify_erts module: verify_release() for the module's params, with the root's facts added."""
    started = time.monotonic()
    release = ReleaseRoot(params["root"], params.get("name"))
    target, live = None, None
    if release.exists():
        target = Target.from_params(params)
        live = ask_node(target)
    try:
        result = verify_release(release, params.get("version"), params.get("src"), params.get("name"), live)
    except UnpackError as exc:
        result = exc.details.get("fields")
        if result is not None:
            _add_root_facts(result, target, live, started)
        raise
    return _add_root_facts(result, target, live, started)


def _add_root_facts(result, target, live, started):
    if target is not None:
        facts = target.facts(live)
        result.update(releases=facts["releases"], current=facts["current"], permanent=facts["permanent"])
    result["duration_ms"] = int((time.monotonic() - started) * 1000)
    return result
