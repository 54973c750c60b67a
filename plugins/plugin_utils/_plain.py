# -*- coding: utf-8 -*-
# Copyright (c) otp.release contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

from collections.abc import Mapping, Sequence, Set

from ansible.module_utils.common.text.converters import to_text


def to_plain(value):
    """Return `value` rebuilt from plain dict, list, str, int, float, bool and None.

    Controller values are often subclasses of the plain types: ansible-core 2.19 tags strings, ints,
    floats, dicts and lists with their origin and templates containers lazily, older releases wrap text
    as AnsibleUnsafeText. Libraries that check exact types, such as jmespath, reject those.
    Any mapping (this includes HostVars and HostVarsVars, whose values are templated on access) becomes
    a dict; any other sequence (list, tuple) or set becomes a list. Only what is reached is templated:
    convert `hostvars[host][name]`, not the whole of `hostvars`. Other values are returned as they are.
    """
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, bytes):
        return to_text(value, errors="surrogate_or_strict")
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, Mapping):
        return {to_plain(key): to_plain(item) for key, item in value.items()}
    if isinstance(value, (Sequence, Set)):
        return [to_plain(item) for item in value]
    return value
