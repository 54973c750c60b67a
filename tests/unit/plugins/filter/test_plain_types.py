# -*- coding: utf-8 -*-
# Copyright (c) otp.release contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

from ansible.parsing.dataloader import DataLoader
from ansible.utils.unsafe_proxy import AnsibleUnsafeText

from ansible_collections.otp.release.plugins.plugin_utils._plain import to_plain

TAGGED_YAML = """
current: '2.0.0'
running: true
os_pid: 4242
load: 0.5
missing: null
releases:
  - {version: '2.0.0', state: permanent, erts: '13.2'}
"""


def _exact_types(value):
    """Every type found in value, containers included."""
    found = {type(value)}
    if isinstance(value, dict):
        for key, item in value.items():
            found |= _exact_types(key) | _exact_types(item)
    elif isinstance(value, list):
        for item in value:
            found |= _exact_types(item)
    return found


def test_tagged_values_become_plain():
    tagged = DataLoader().load(TAGGED_YAML)
    assert tagged["current"].__class__ is not str  # the input really is tagged on this ansible-core

    plain = to_plain(tagged)

    assert plain == tagged
    assert _exact_types(plain) <= {dict, list, str, int, float, bool, type(None)}


def test_unsafe_text_bytes_tuples_and_sets():
    assert to_plain(AnsibleUnsafeText("1.0.0")).__class__ is str
    assert to_plain(b"1.0.0") == "1.0.0"
    assert to_plain(("a", ("b",))) == ["a", ["b"]]
    assert to_plain(frozenset(["x"])) == ["x"]


def test_other_values_are_kept():
    marker = object()
    assert to_plain(marker) is marker
