# -*- coding: utf-8 -*-
# Copyright (c) otp.release contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The ERTS checks of one version, unpacked in the root or still in its tarball on this host, against this host
and the running node. Changes nothing."""

from __future__ import annotations

from ansible_collections.otp.release.plugins.module_utils._erts import erts_vs_running, run_checks, verify_tarball
from ansible_collections.otp.release.plugins.module_utils._errors import OtpReleaseError
from ansible_collections.otp.release.plugins.module_utils._relfiles import Relup, relup_owner, restart_kind
from ansible_collections.otp.release.plugins.module_utils._tarball import inspect_file


def _unpacked_checks(release, version):
    contents = release.version_contents(version)
    if contents is None:
        raise OtpReleaseError("Version %s of %s is not unpacked in %s: no releases/%s/%s.rel and no entry in RELEASES."
                              % (version, release.name, release.root, version, release.name))
    erts, libs = contents
    return run_checks(release.root, erts, [(app, vsn) for app, vsn, _lib_dir in libs]), erts


def _relup_for(release, running, version, facts):
    """The relup that holds the path running -> version: the tarball's own when it is the owner and not unpacked."""
    owner = relup_owner(running, version)
    if facts is not None and owner == facts.version:
        return Relup.from_text(facts.relup, facts.version) if facts.relup else None
    return release.relup(owner)


def verify(session, version=None, src=None, facts=None, name=None):
    """Every ERTS check of the unpacked version, or of the tarball src on this host (facts: its inspection when
    done already), against the running node when there is one. Returns the result; raises OtpReleaseError (with
    the result's fields) listing every failed check."""
    release = session.release
    if src:
        facts = facts or inspect_file(src, name, version, allow_missing_erts=True)
        version, release_erts = facts.version, facts.rel_erts_version
        checks = verify_tarball(src, facts=facts)
        name, subject = facts.name, "%s %s in %s" % (facts.name, facts.version, src)
    else:
        facts = None
        checks, release_erts = _unpacked_checks(release, version)
        name, subject = release.name, "%s %s in %s" % (release.name, version, release.root)
    live = session.live_or_down()[0] if release.exists() else None
    running_erts, running = (live.erts, live.running_version) if live else (None, None)
    restart = "none"
    if running and running_erts != release_erts:
        relup = _relup_for(release, running, version, facts)
        restart = restart_kind(relup.path(running, version) if relup else None)
    checks.append(erts_vs_running(running_erts, release_erts, running, restart))
    failed = [c["check"] for c in checks if not c["ok"]]
    result = dict(changed=False, name=name, version=version, erts_version=release_erts, erts_running=running_erts,
                  running_version=running, checks=checks, failed_checks=failed, ok=not failed)
    if release.exists():
        facts_now = session.facts(live)
        result.update(releases=facts_now["releases"], current=facts_now["current"], permanent=facts_now["permanent"])
    if failed:
        raise OtpReleaseError("ERTS checks failed for %s: %s." % (subject, "; ".join(
            "%s: %s" % (c["check"], c["detail"]) for c in checks if not c["ok"])), **result)
    return result
