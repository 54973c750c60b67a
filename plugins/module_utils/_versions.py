# -*- coding: utf-8 -*-
# Copyright (c) otp.release contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import re

# Ordering of release versions, shared by the downgrade module and the controller filters.
#  1. A version is read as <release>[-<pre-release>][+<build>]: split at the first "+", then at the
#     first "-".
#  2. Each part is a sequence of numbers and words (runs of ASCII digits, runs of ASCII letters); dots,
#     dashes and other characters only separate them. Numbers compare as numbers (1.10.0 > 1.9.0), a
#     number sorts before a word, words compare as text (case-sensitive), and when one sequence is a
#     prefix of the other the shorter one is older (1.0 < 1.0.0 < 1.0.0.1).
#  3. Release parts compare first. With equal release parts, a pre-release is older than none
#     (2.0.0-rc1 < 2.0.0, as in SemVer) and a build part is newer than none (2.0.0 < 2.0.0+build.3 <
#     2.0.0+build.12, the form rebar3 gives a version taken from git).
# So a `git describe` version such as 1.2.3-4-gabcdef sorts BEFORE 1.2.3 (it reads as a pre-release).

_TOKEN = re.compile(r"[0-9]+|[A-Za-z]+")


def _tokens(text):
    return tuple((0, int(token)) if token.isdigit() else (1, token) for token in _TOKEN.findall(text))


def version_key(version):
    """Sort key for a release version string, by the rule above."""
    base, _plus, build = str(version).partition("+")
    release, dash, pre_release = base.partition("-")
    no_pre_release = 0 if dash else 1
    return (_tokens(release), no_pre_release, _tokens(pre_release), _tokens(build))


def current_version(releases):
    """The version the node runs: the `current` release, else the `permanent` one, else None."""
    by_state = {}
    for release in releases:
        by_state.setdefault(release.get("state"), release.get("version"))
    return by_state.get("current") or by_state.get("permanent")


def previous_version(releases):
    """The newest `old` release below the current one (see current_version), or None.

    The permanent release counts as well when the node runs a newer one that is only current.

    `releases` is the list of {version, state, erts} that every module returns.
    """
    current = current_version(releases)
    if current is None:
        return None
    current_key = version_key(current)
    old_versions = [
        release.get("version")
        for release in releases
        if release.get("state") in ("old", "permanent") and release.get("version") is not None
    ]
    older = [version for version in old_versions if version_key(version) < current_key]
    return max(older, key=version_key) if older else None
