# -*- coding: utf-8 -*-
# Copyright (c) otp.release contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Unpacking a release tarball into a root.

The tarball is either on this host (inspected here first: nothing in the root is touched before it passed), or
still on the controller (its action plugin inspected it and passed its name, version and sha256). Then:
- the version is known (node running: which_releases; node down: RELEASES): nothing to do;
- a node serves the root: place the tarball at releases/<vsn>/<name>.tar.gz and call unpack_release; when that
  fails, remove every path the attempt created, so that a retry starts clean;
- no node and a missing or empty root: first install by safe extraction plus a RELEASES file;
- no node and a non-empty root: refuse (never extract over a live root).
A tarball still on the controller that the host needs makes the run fail with tarball_needed, which the action
plugin answers by sending it and running the module once more.
"""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import tempfile
from dataclasses import dataclass

from ansible_collections.otp.release.plugins.module_utils._erlterm import format_term, to_plain
from ansible_collections.otp.release.plugins.module_utils._errors import NodeError, OtpReleaseError, explain_unpack
from ansible_collections.otp.release.plugins.module_utils._files import (
    copy_file,
    give_tree,
    makedirs_owned,
    new_tops,
    remove_paths,
    sha256_file,
    writable_by,
    write_text,
)
from ansible_collections.otp.release.plugins.module_utils._identity import find_node_process
from ansible_collections.otp.release.plugins.module_utils._relfiles import rel_text, releases_text
from ansible_collections.otp.release.plugins.module_utils._repair import repair_releases
from ansible_collections.otp.release.plugins.module_utils._session import LIVE_EXPR, Live, states_yaml, user_name
from ansible_collections.otp.release.plugins.module_utils._tarball import checksum_mismatch, extract_members, inspect_file, parse_checksum
from ansible_collections.otp.release.plugins.module_utils._versions import version_key

# which_releases first: unpack_release of a version whose tarball was unpacked (and deleted) before
# answers {error, {no_such_file, ...}}, not existing_release.
UNPACK_EXPR = (
    "begin Vsn = %(vsn)s, "
    "Answer = case lists:keymember(Vsn, 2, release_handler:which_releases()) of "
    " true -> {error, {existing_release, Vsn}}; "
    " false -> release_handler:unpack_release(%(rel)s) end, "
    "{Answer, " + LIVE_EXPR + "} end"
)


@dataclass
class Source:
    """The tarball to unpack: path on this host (on_host) or on the controller, with what is known of it."""

    path: str
    on_host: bool
    name: str | None = None
    version: str | None = None
    checksum: str | None = None
    allow_missing_erts: bool = False
    max_unpacked_size: int | None = None
    owner: str | None = None  # of a first install
    group: str | None = None
    facts: object = None  # TarballFacts once inspected on this host

    def inspect(self):
        """Inspect the tarball on this host (once); name and version become the tarball's."""
        if self.facts is None:
            self.facts = inspect_file(self.path, self.name, self.version, self.checksum, self.allow_missing_erts,
                                      self.max_unpacked_size)
            self.name, self.version = self.facts.name, self.facts.version
        return self.facts

    def tarball_info(self):
        """version, erts_version and relup entries of the tarball, when it was inspected here."""
        facts = self.facts
        if facts is None:
            return dict(version=self.version, name=self.name)
        return dict(version=facts.version, name=facts.name, erts_version=facts.rel_erts_version,
                    relup_up_from=facts.relup_up_from, relup_down_to=facts.relup_down_to, sha256=facts.sha256)


def tarball_needed(session, source):
    return OtpReleaseError("Version %s of %s is not on the host yet: the release tarball %s must be sent first."
                           % (source.version, source.name, source.path), tarball_needed=True,
                           root=session.release.root, name=source.name, version=source.version)


def check_release_name(release, name):
    names = set(e["name"] for e in release.releases_file())
    if names and name not in names:
        raise OtpReleaseError("The tarball holds release %r but %s serves %s: give the tarball of this release, or the right root."
                              % (name, release.root, ", ".join(repr(n) for n in sorted(names))))


def _root_info(release, version):
    """version, erts_version and relup entries of a version already in the root."""
    relup = None
    try:
        relup = release.relup(version)
    except OtpReleaseError:
        pass
    return dict(version=version, name=release.name, erts_version=release.erts_of(version),
                relup_up_from=relup.up_from() if relup else [], relup_down_to=relup.down_to() if relup else [])


def _result(session, live, before, info, changed, method, after_states=None):
    facts = session.facts(live)
    if after_states is not None:  # check mode: what the releases would be
        erts = dict((e["version"], e["erts"]) for e in facts["releases"])
        erts.setdefault(info["version"], info.get("erts_version"))
        facts["releases"] = [dict(version=v, state=s, erts=erts.get(v)) for v, s in after_states.items()]
        facts["releases"].sort(key=lambda e: version_key(e["version"]))
    after = after_states if after_states is not None else dict((e["version"], e["state"]) for e in facts["releases"])
    result = dict(facts, changed=changed, method=method, diff=dict(before=states_yaml(before), after=states_yaml(after)))
    result.update(info)
    return result


SHA256_MARKER = ".otp-release.sha256"  # in releases/<vsn>/: the sha256 of the tarball that version was unpacked from


def unpack(session, source, check_mode=False):
    """Unpack source into the session's root as the state of the root allows (see the module's docstring)."""
    if source.on_host and source.version and not os.path.exists(source.path):
        known = _known_without_tarball(session, source)
        if known is not None:
            return known
    if source.on_host:
        source.inspect()
    elif not (source.name and source.version):
        raise OtpReleaseError("A tarball on the controller is sent by the otp.release.unpack action, which passes its name "
                              "and version; run the module as a task, not on its own.")
    release = session.release
    release.assume_name(source.name)
    if not release.exists():
        return first_install(session, source, check_mode)
    check_release_name(release, source.name)
    live, _why = session.live_or_down()
    if live is None:
        return _node_down(session, source)
    before = dict(live.states)
    live, repaired = repair_releases(session, live, check_mode)
    replaced = source.version in live.states and _replaces(release, source, live.states[source.version], live.node)
    if source.version in live.states and not replaced:
        restored = restore_rel(session, source.version, check_mode)
        result = _result(session, live, before, _root_info(release, source.version), bool(repaired or restored), "none")
        return dict(result, repaired_releases=repaired, restored_files=restored)
    if not source.on_host:
        placed = release.path("releases", source.version, source.name + ".tar.gz")
        expected = parse_checksum(source.checksum)
        if expected and os.path.isfile(placed) and sha256_file(placed) == expected:
            source.path, source.on_host = placed, True
            source.inspect()
    refuse_unwritable(session)
    if source.facts is not None:
        check_free_space(release.root, source.facts, "unpack %s into %s" % (source.version, release.root))
    if check_mode or not source.on_host:
        if not replaced:
            refuse_leftovers(release, source, live)
        if not check_mode:
            raise tarball_needed(session, source)
        return dict(_result(session, live, before, source.tarball_info(), True, "release_handler",
                            after_states=dict(before, **{source.version: "unpacked"})), repaired_releases=repaired)
    if replaced:
        live = _remove_unpacked(session, source.version)
    refuse_leftovers(release, source, live)
    live = unpack_on_node(session, source)
    result = _result(session, live, before, source.tarball_info(), True, "release_handler")
    if replaced:
        result["replaced"] = True
    return dict(result, repaired_releases=repaired)


def restore_rel(session, version, check_mode=False):
    """release_handler deletes releases/<vsn>/<name>.rel when it unpacks; a run killed before it put the file back
    leaves it missing for good. Write it again from the version's RELEASES entry; [] or [its path]."""
    release = session.release
    path = release.path("releases", version, "%s.rel" % release.name)
    entry = next((e for e in release.releases_file() if e["version"] == version and e["libs"]), None)
    if os.path.exists(path) or entry is None or not os.path.isdir(os.path.dirname(path)):
        return []
    if not check_mode:
        write_text(path, rel_text(entry["name"], version, entry["erts"], [(app, vsn) for app, vsn, _dir in entry["libs"]]),
                   owner=session.owner())
    return [path]


def _unpacked_sha256(release, version):
    try:
        with open(release.path("releases", version, SHA256_MARKER)) as handle:
            return handle.read().strip()
    except OSError:
        return None


def _replaces(release, source, state, node):
    """True when source is another tarball of a version that is only unpacked; refuses it for an installed one."""
    unpacked_from = _unpacked_sha256(release, source.version)
    offered = source.facts.sha256 if source.facts is not None else parse_checksum(source.checksum)
    if not unpacked_from or not offered or offered == unpacked_from:
        return False
    if state == "unpacked":
        return True
    fix = ("remove it first with otp.release.remove (version=%s), then unpack the new tarball" % source.version
           if state == "old" else "build the changed release as a new version and upgrade to that")
    raise OtpReleaseError("Version %s is %s on node %s, and this tarball (sha256:%s) is not the one it was unpacked from "
                          "(sha256:%s): an installed version is never replaced in place. To deploy the change, %s. Nothing "
                          "was changed." % (source.version, state, node, offered, unpacked_from, fix))


def _remove_unpacked(session, version):
    """remove_release of an unpacked version, so that another tarball of it can be unpacked; the Live after."""
    answer = session.call("{release_handler:remove_release(%s), %s}" % (format_term(version), LIVE_EXPR))
    if answer[0] != "ok":
        raise OtpReleaseError("Cannot replace unpacked version %s on node %s: remove_release failed: %s. Nothing was changed."
                              % (version, session.node, explain_unpack(answer[0][1] if isinstance(answer[0], tuple)
                                                                       else answer[0])), raw=answer[0])
    return session.learn(Live(*answer[1]))


def _known_without_tarball(session, source):
    """A re-run whose tarball is gone: nothing to do when the node (RELEASES when it is down) knows the version."""
    release = session.release
    if not release.exists():
        return None
    live, _why = session.live_or_down()
    states = dict(live.states) if live else dict((e["version"], e["state"]) for e in release.release_states())
    if source.version not in states:
        return None
    return _result(session, live, states, _root_info(release, source.version), False, "none")


def _node_down(session, source):
    """No node answers for a non-empty root: a known version is fine, anything else needs the node."""
    release = session.release
    states = dict((e["version"], e["state"]) for e in release.release_states())
    if source.version in states:
        return _result(session, None, states, _root_info(release, source.version), False, "none")
    raise OtpReleaseError("No node answers for %s (node %s), and the root is not empty: version %s is unpacked through the "
                          "running node only, never by extracting over a live root. Start the node and run again."
                          % (release.root, session.node or "unknown", source.version))


def refuse_leftovers(release, source, live):
    """Paths an unfinished earlier unpack left: release_handler would keep those files and mix them into the new version."""
    found = []
    version_dir = release.path("releases", source.version)
    if os.path.isdir(version_dir) and set(os.listdir(version_dir)) - set([source.name + ".tar.gz"]):
        found.append(version_dir + "/")
    used = set(lib for libs in live.libs.values() for lib in libs)
    if used and source.facts is not None:
        for app, app_vsn in source.facts.applications:
            lib_dir = "%s-%s" % (app, app_vsn)
            if lib_dir not in used and os.path.isdir(release.path("lib", lib_dir)):
                found.append(release.path("lib", lib_dir) + "/")
    if found:
        raise OtpReleaseError("Cannot unpack %s on node %s: %s already exist%s although the node does not know version %s. "
                              "They are left from an unpack that did not finish, and release_handler would keep their files "
                              "inside %s. Remove them and run again. Nothing was changed."
                              % (source.version, live.node, ", ".join(found), "s" if len(found) == 1 else "", source.version,
                                 source.version))


def _member_paths(source, private_dir):
    """Physical paths of every member (relative to the root); also writes the .rel to private_dir and proves
    that the file still holds the inspected bytes."""
    facts = source.facts
    rel_member = "releases/%s/%s.rel" % (facts.version, facts.name)
    paths = []

    def wanted(relative):
        paths.append(relative)
        return relative == rel_member

    extract_members(source.path, private_dir, wanted, facts)
    return paths


def refuse_unwritable(session):
    """release_handler unpacks inside the node, as its OS user: that user must be able to write lib/ and releases/."""
    owner = session.owner()
    if owner is None:
        return
    for directory in ("lib", "releases"):
        path = session.release.path(directory)
        if os.path.isdir(path) and not writable_by(path, owner[0]):
            found = os.stat(path)
            raise OtpReleaseError("The node of %s runs as %s, who cannot write %s (owner %s, group %d, mode %04o): release_handler "
                                  "would fail to unpack there. Give %s that directory back (chown -R) and run again. Nothing was "
                                  "changed." % (session.release.root, user_name(owner[0]), path, user_name(found.st_uid),
                                                found.st_gid, found.st_mode & 0o7777, user_name(owner[0])))


def check_free_space(directory, facts, doing):
    """The file system of directory must hold the unpacked release and a copy of its tarball."""
    needed = facts.unpacked_size + facts.size
    free = shutil.disk_usage(directory).free
    if free < needed:
        raise OtpReleaseError("Cannot %s: it needs %d bytes (%d unpacked plus the %d-byte tarball) but the file system of %s "
                              "has %d free. Free some space (e.g. otp.release.remove of old releases) and run again. Nothing was "
                              "changed." % (doing, needed, facts.unpacked_size, facts.size, directory, free))


def _place_tarball(source, dest, owner):
    """Copy the tarball to dest through a temporary name; the copy must hash to the inspected sha256."""
    copy_file(source.path, dest, 0o644, owner)
    copied = sha256_file(dest)
    if copied != source.facts.sha256:
        os.unlink(dest)
        raise checksum_mismatch(source.path, source.facts.sha256, copied)


def unpack_on_node(session, source):
    """Place the tarball and call release_handler:unpack_release on the node; returns the Live state after.

    On a failure every path this attempt created is removed (the root is as before) and the error raised."""
    release = session.release
    root = release.root
    facts = source.facts
    dest = release.path("releases", facts.version, facts.name + ".tar.gz")
    check_free_space(root, facts, "unpack %s into %s" % (facts.version, root))
    private_dir = tempfile.mkdtemp(prefix="otp-release-unpack-")
    try:
        members = _member_paths(source, private_dir)
        placed_by_us = os.path.realpath(source.path) != os.path.realpath(dest)
        created = new_tops(root, members + [os.path.relpath(dest, root)])
        owner = session.owner()
        try:
            makedirs_owned(os.path.dirname(dest), owner)
            if placed_by_us:
                _place_tarball(source, dest, owner)
        except OSError as exc:
            raise OtpReleaseError("Cannot place the release tarball at %s: %s. %s" % (dest, exc, _undo(root, created)))
        except OtpReleaseError as exc:
            raise OtpReleaseError("%s %s" % (exc.msg, _undo(root, created)))
        outcome, live = _call_unpack(session, facts, root, created)
        if outcome[0] == "ok":
            # release_handler deletes releases/<vsn>/<name>.rel after unpacking; other tools read it
            rel_path = release.path("releases", facts.version, facts.name + ".rel")
            if not os.path.exists(rel_path):
                copy_file(os.path.join(private_dir, "releases", facts.version, facts.name + ".rel"), rel_path, owner=owner)
            write_text(release.path("releases", facts.version, SHA256_MARKER), facts.sha256 + "\n", owner=owner)
            return live
        reason = outcome[1]
        if to_plain(reason) == ["existing_release", facts.version]:
            # unpacked by someone else in the meantime: only our own tarball is ours to remove
            if placed_by_us and os.path.exists(dest):
                os.unlink(dest)
            return live
        raise OtpReleaseError("release_handler:unpack_release(\"%s/%s\") failed on node %s: %s. %s The node still runs %s and "
                              "RELEASES is unchanged; run again once the cause is fixed."
                              % (facts.version, facts.name, live.node, explain_unpack(reason), _undo(root, created),
                                 live.running_version), raw=reason)
    finally:
        shutil.rmtree(private_dir, ignore_errors=True)


def _call_unpack(session, facts, root, created):
    """(outcome, Live) of the unpack call. When the call itself breaks, ask the node again: which_releases is
    answered by release_handler only after an unpack in progress has finished."""
    expression = UNPACK_EXPR % dict(vsn=format_term(facts.version), rel=format_term("%s/%s" % (facts.version, facts.name)))
    try:
        answer = session.call(expression)
        return answer[0], session.learn(Live(*answer[1]))
    except NodeError as exc:
        problem = exc.msg
    session.refresh()
    try:
        live, why = session.live_or_down()
    except NodeError as exc:
        live, why = None, exc.msg
    if live is None:
        raise OtpReleaseError("The unpack_release call on node %s broke off (%s) and the node does not answer since (%s). "
                              "Nothing was removed, as the unpack may still be running: check the node, then run again."
                              % (session.node, problem, why))
    if facts.version in live.states:
        return ("ok", facts.version), live
    raise OtpReleaseError("The unpack_release call on node %s broke off (%s) and the node does not know version %s. %s"
                          % (live.node, problem, facts.version, _undo(root, created)))


def _undo(root, created):
    """Remove what an attempt created; one sentence saying what happened."""
    removed, left = remove_paths(root, created)
    if left:
        return "Could not remove %s: remove it by hand before the next attempt." % ", ".join(left)
    if removed:
        return "What the attempt created was removed (%s)." % ", ".join(removed)
    return "Nothing was left behind."


# ---- first install ------------------------------------------------------------------------------------

STAGING_PREFIX = ".otp-release-unpacking-"


def refuse_first_install(release):
    """A first install needs a missing or empty directory that no process runs from (our own staging directory left
    by a killed attempt aside, which is removed)."""
    root = release.root
    if os.path.islink(root):
        raise OtpReleaseError("%s is a symlink: give the real directory (%s) as the root." % (root, os.path.realpath(root)))
    if os.path.isdir(root):
        if not os.access(root, os.R_OK | os.X_OK):
            raise permission_denied(root, "read")
        for entry in os.listdir(root):
            if entry.startswith(STAGING_PREFIX):
                shutil.rmtree(os.path.join(root, entry), ignore_errors=True)
    if not release.is_empty():
        raise OtpReleaseError("%s is not empty but holds no releases/ directory: it is not a release root. A first install "
                              "needs a missing or empty directory." % root)
    process = find_node_process(root) if os.path.isdir(root) else None
    if process:
        raise OtpReleaseError("%s is empty but process %d runs with it as its root: stop it first." % (root, process.pid))


def install_owner(root, owner=None, group=None):
    """(uid, gid) of a first install: the options', else the root directory's (its parent's when it is missing)."""
    directory = root if os.path.isdir(root) else os.path.dirname(root)
    while not os.path.isdir(directory):
        directory = os.path.dirname(directory)
    found = os.stat(directory)
    try:
        uid = pwd.getpwnam(owner).pw_uid if owner else found.st_uid
        gid = grp.getgrnam(group).gr_gid if group else (pwd.getpwnam(owner).pw_gid if owner else found.st_gid)
    except KeyError as exc:
        raise OtpReleaseError("No such user or group on this host: %s. Give an existing owner and group." % exc)
    return uid, gid


def first_install(session, source, check_mode=False):
    """Extract the tarball into a missing or empty root, with a RELEASES file marking its version permanent. The files
    are staged inside the root and moved into place; the root directory keeps its owner and mode."""
    release = session.release
    refuse_first_install(release)
    if not source.on_host and not check_mode:
        raise tarball_needed(session, source)
    root = release.root
    info = source.tarball_info()
    result = dict(info, root=root, changed=True, method="first_install", running=False, current=source.version,
                  permanent=source.version, releases=[dict(version=source.version, state="permanent",
                                                           erts=info.get("erts_version"))],
                  diff=dict(before="", after=states_yaml({source.version: "permanent"})))
    owner = install_owner(root, source.owner, source.group)
    if check_mode:
        return result
    facts = source.facts
    try:
        makedirs_owned(root, owner)
        check_free_space(root, facts, "install %s into %s" % (facts.version, root))
        staging = tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=root)
    except PermissionError:
        raise permission_denied(root, "write into")
    moved = []
    try:
        extract_members(source.path, staging, None, facts)
        os.makedirs(os.path.join(staging, "releases"), exist_ok=True)
        write_text(os.path.join(staging, "releases", "RELEASES"),
                   releases_text(facts.name, facts.version, facts.rel_erts_version, facts.applications))
        give_tree(staging, owner)
        # releases/ last: until it is there, the root is not a release root
        for entry in sorted(os.listdir(staging), key=lambda name: name == "releases"):
            os.rename(os.path.join(staging, entry), os.path.join(root, entry))
            moved.append(entry)
        os.rmdir(staging)
    except BaseException as exc:
        remove_paths(root, moved)
        shutil.rmtree(staging, ignore_errors=True)
        if isinstance(exc, OSError):
            raise OtpReleaseError("Cannot extract %s into %s: %s. %s was left empty." % (source.path, root, exc, root))
        raise
    session.refresh()
    result.update(session.facts(None))
    result.update(info)
    return result


def permission_denied(path, doing):
    return OtpReleaseError("Permission denied: user %s cannot %s %s. Run the task as the owner of the release root "
                           "(become_user) or as root." % (user_name(os.geteuid()), doing, path))
