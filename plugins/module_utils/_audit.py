# -*- coding: utf-8 -*-
# Copyright (c) otp.release contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The relup review of one change on a session, before it (audit_change) and after it (Audit.after).

Before: the applications of both versions from the .rel files in the root, the beams of the applications whose
version differs, and the node's facts on the modules the relup path loads or purges, asked in one round trip and
only when there are such modules. After: the code the node runs, read in the call that installs (confirm_expr),
against the code the target has."""

from __future__ import annotations

import os

from ansible_collections.otp.release.plugins.module_utils._beam import BeamError, read_ebin
from ansible_collections.otp.release.plugins.module_utils._errors import OtpReleaseError
from ansible_collections.otp.release.plugins.module_utils._review import (
    decide,
    expected_code,
    loaded_code_expr,
    node_facts_expr,
    parse_loaded_code,
    parse_node_facts,
    purged_modules,
    review,
    still_old,
)


class Audit(object):
    """The review of one relup path: findings (strs and None only) and the code each changed module must run after
    it (expected: {module: md5, None for a module the target no longer has})."""

    def __init__(self, findings, expected):
        self.findings = [_plain(finding) for finding in findings]
        self.expected = expected

    def confirm_expr(self):
        """The expression that reads the loaded code of the changed modules, or None when no module changes."""
        return loaded_code_expr(self.expected) if self.expected else None

    def after(self, loaded_term):
        """still_old_code findings from the answer to confirm_expr()."""
        return [_plain(finding) for finding in still_old(self.expected, parse_loaded_code(loaded_term))]


def _plain(finding):
    return dict((key, None if value is None else str(value)) for key, value in finding.items())


def _applications(release, version):
    """{app: (vsn, lib dir)} of a version in the root."""
    contents = release.version_contents(version)
    if contents is None:
        raise OtpReleaseError("Cannot review the relup: %s has no .rel and no RELEASES entry for %s." % (release.root, version))
    return dict((app, (vsn, lib_dir)) for app, vsn, lib_dir in contents[1])


def _with_modules(applications, changed):
    """{app: {vsn, modules}} for _review, the beams read for the changed applications only."""
    apps = {}
    for app, (vsn, lib_dir) in applications.items():
        try:
            modules = read_ebin(os.path.join(lib_dir, "ebin")) if app in changed else {}
        except (OSError, BeamError) as exc:
            raise OtpReleaseError("Cannot review the relup: the beams of %s %s are unreadable (%s). Set relup_review: off "
                                  "to change without the review." % (app, vsn, exc))
        apps[app] = dict(vsn=vsn, modules=modules)
    return apps


def audit_change(session, from_version, to_version, instructions):
    """The Audit of the relup path from_version -> to_version (the node runs from_version)."""
    running, target = _applications(session.release, from_version), _applications(session.release, to_version)
    changed = set(app for app in set(running) | set(target) if running.get(app, (None,))[0] != target.get(app, (None,))[0])
    running_apps, target_apps = _with_modules(running, changed), _with_modules(target, changed)
    asked = purged_modules(instructions, running_apps, target_apps)
    node = parse_node_facts(session.call(node_facts_expr(asked))) if asked else None
    return Audit(review(instructions, running_apps, target_apps, node), expected_code(running_apps, target_apps))


def refusal(audit, mode, node, from_version, to_version):
    """The error that refuses the change (mode strict and findings), else None."""
    if decide(audit.findings, mode) != "refuse":
        return None
    modules = sorted(set(f["module"] or f["app"] for f in audit.findings))
    return OtpReleaseError(
        "The review of the relup %s -> %s of node %s found what the change would get wrong (%s). Nothing was changed; node %s "
        "still runs %s. %s Fix that (an appup: build the release again), or set relup_review: warn to change anyway."
        % (from_version, to_version, node, ", ".join(modules), node, from_version,
           " ".join(f["msg"] for f in audit.findings)), relup_review=audit.findings)
