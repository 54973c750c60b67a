# -*- coding: utf-8 -*-
# Copyright (c) otp.release contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Removing releases with release_handler:remove_release/1: one version, or the old ones beyond the newest keep;
never the current or permanent one."""

from __future__ import annotations

import os
import time

from ansible_collections.otp.release.plugins.module_utils._erlterm import format_term
from ansible_collections.otp.release.plugins.module_utils._errors import OtpReleaseError, explain
from ansible_collections.otp.release.plugins.module_utils._session import states_text, states_yaml
from ansible_collections.otp.release.plugins.module_utils._versions import version_key


def removal_candidates(states, keep=1, version=None, node=None):
    """Versions to remove, from {version: state}: exactly version (old or unpacked; [] when it is already
    gone), else every old release but the newest keep. Never the current or permanent one."""
    if version:
        state = states.get(version)
        if state in ("current", "permanent"):
            raise OtpReleaseError("Version %s is the %s release of node %s, so it cannot be removed (releases: %s). Upgrade or "
                                  "downgrade the node to another version first." % (version, state, node, states_text(states)))
        return [version] if state else []
    old = sorted((v for v, s in states.items() if s == "old"), key=version_key)
    return old[:max(len(old) - max(keep, 0), 0)]


def remove_releases(session, keep=1, version=None, check_mode=False):
    """Remove releases in one call to the node; the result as data."""
    started = time.monotonic()
    live = session.live("remove releases from")
    to_remove = removal_candidates(live.states, keep, version, live.node)
    removed, failed = to_remove, []
    after_states = dict((v, s) for v, s in live.states.items() if v not in to_remove)
    if to_remove and not check_mode:
        outcomes, states = session.call(
            "{[{V, release_handler:remove_release(V)} || V <- %s], "
            "[{V, S} || {_, V, _, S} <- release_handler:which_releases()]}" % format_term(to_remove))
        session.refresh()
        after_states = dict((str(v), str(s)) for v, s in states)
        removed = [str(v) for v, outcome in outcomes if outcome == "ok"]
        failed = [(str(v), outcome) for v, outcome in outcomes if outcome != "ok"]
    removed_files = session.release.start_scripts(removed)
    if not check_mode:
        for path in removed_files:
            os.unlink(path)
    if failed:
        failed_version, outcome = failed[0]
        reason = outcome[1] if isinstance(outcome, tuple) and len(outcome) == 2 else outcome
        raise OtpReleaseError("remove_release(%s) failed on node %s: %s. Removed: %s. Releases now: %s."
                              % (failed_version, live.node, explain(reason), ", ".join(removed) or "none",
                                 states_text(after_states)), raw=outcome)
    after = session.facts(live.with_states(after_states))
    return dict(after, changed=bool(removed), removed=removed, removed_files=removed_files,
                diff=dict(before=states_yaml(live.states), after=states_yaml(after_states)),
                duration_ms=int((time.monotonic() - started) * 1000))
