# -*- coding: utf-8 -*-
# Copyright (c) otp.release contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import pytest

from ansible_collections.otp.release.plugins.module_utils._versions import current_version, previous_version, version_key


@pytest.mark.parametrize(
    "older, newer",
    [
        ("1.9.0", "1.10.0"),
        ("1.0.0", "2.0.0"),
        ("0.9", "0.10"),
        ("1.0", "1.0.0"),
        ("1.0.0", "1.0.0.1"),
        ("2.0.0-rc1", "2.0.0"),
        ("2.0.0-rc2", "2.0.0-rc10"),
        ("2.0.0-alpha", "2.0.0-beta"),
        ("2.0.0-1", "2.0.0-alpha"),
        ("1.9.9", "2.0.0-rc1"),
        ("2.0.0", "2.0.0+build.3"),
        ("2.0.0+build.3", "2.0.0+build.12"),
        ("2.0.0+build.12", "2.0.1-rc1"),
        ("2.0.0-4-gabc123", "2.0.0"),
        ("20240101", "20240201"),
    ],
)
def test_version_order(older, newer):
    assert version_key(older) < version_key(newer)
    assert sorted([newer, older], key=version_key) == [older, newer]


def test_equal_versions_have_equal_keys():
    assert version_key("1.2.3") == version_key("1.2.3")


def _releases(*pairs):
    return [{"version": version, "state": state, "erts": "13.2"} for version, state in pairs]


@pytest.mark.parametrize(
    "releases, current, previous",
    [
        (_releases(("2.0.0", "permanent"), ("1.0.0", "old")), "2.0.0", "1.0.0"),
        (_releases(("1.9.0", "old"), ("2.0.0", "permanent"), ("1.10.0", "old"), ("1.2.0", "old")), "2.0.0", "1.10.0"),
        # only `old` releases (and a permanent one under a newer current) below the current one count
        (_releases(("2.0.0", "permanent"), ("3.0.0", "old"), ("1.0.0", "unpacked")), "2.0.0", None),
        # the current release wins over the permanent one
        (_releases(("3.0.0", "current"), ("2.0.0", "permanent"), ("1.0.0", "old")), "3.0.0", "2.0.0"),
        (_releases(("2.0.0", "permanent"), ("2.0.0-rc1", "old"), ("1.0.0", "old")), "2.0.0", "2.0.0-rc1"),
        (_releases(("2.0.0", "permanent")), "2.0.0", None),
        (_releases(("1.0.0", "old"), ("2.0.0", "unpacked")), None, None),
        ([], None, None),
    ],
)
def test_previous_version(releases, current, previous):
    assert current_version(releases) == current
    assert previous_version(releases) == previous
