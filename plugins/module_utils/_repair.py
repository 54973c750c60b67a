# -*- coding: utf-8 -*-
# Copyright (c) otp.release contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Bring RELEASES and release_handler in line with a root's release files before a change.

A root deployed without RELEASES (every mix release) makes release_handler invent an entry for the running
version with no applications and erts "undefined": upgrades then pass and every downgrade crashes inside
release_handler. The entry is rewritten from the version's .rel and release_handler restarted to read it."""

from __future__ import annotations

from ansible_collections.otp.release.plugins.module_utils._errors import OtpReleaseError
from ansible_collections.otp.release.plugins.module_utils._files import write_text
from ansible_collections.otp.release.plugins.module_utils._relfiles import rel_libs, releases_file_text
from ansible_collections.otp.release.plugins.module_utils._session import LIVE_EXPR, Live

RESTART_EXPR = (
    "begin ok = supervisor:terminate_child(sasl_sup, release_handler), "
    "{ok, _} = supervisor:restart_child(sasl_sup, release_handler), " + LIVE_EXPR + " end"
)


def repairable(release, live):
    """Versions release_handler knows without applications and whose .rel is in the root."""
    found = []
    for version in live.broken_versions:
        try:
            release.rel(version)
        except OtpReleaseError:
            continue
        found.append(version)
    return found


def repair_releases(session, live, check_mode=False):
    """Rewrite the entries of repairable versions from their .rel, restart release_handler; (Live after, versions)."""
    release = session.release
    versions = repairable(release, live)
    if not versions or check_mode:
        return live, versions
    on_disk = dict((e["version"], e) for e in release.releases_file())
    entries = []
    for version, state in sorted(live.states.items()):
        entry = on_disk.get(version)
        if version in versions or entry is None:
            rel = release.rel(version)
            entry = dict(name=rel["name"], version=version, erts=rel["erts"], libs=rel_libs(rel["applications"].items()))
        entries.append(dict(entry, state=state))
    write_text(release.path("releases", "RELEASES"), releases_file_text(entries), owner=session.owner())
    session.refresh()
    return session.learn(Live(*session.call(RESTART_EXPR))), versions
