# -*- coding: utf-8 -*-
# Copyright (c) otp.release contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The options every module shares (documented once in the otp.release.common doc fragment)."""

from __future__ import annotations

import copy

COMMON_ARGUMENT_SPEC = dict(
    root=dict(type="path", required=True),
    name=dict(type="str"),
    node=dict(type="str"),
    cookie=dict(type="str", no_log=True),
    cookie_file=dict(type="path"),
    timeout=dict(type="int", default=60),
    channel=dict(type="str", default="auto", choices=["auto", "erl_call", "hidden_vm"]),
)
COMMON_MUTUALLY_EXCLUSIVE = [("cookie", "cookie_file")]


def argument_spec(**extra):
    """The shared options plus a module's own ones."""
    spec = copy.deepcopy(COMMON_ARGUMENT_SPEC)
    spec.update(extra)
    return spec


def module_kwargs(supports_check_mode=True, mutually_exclusive=(), required_together=(), **extra_options):
    """Keyword arguments for AnsibleModule: the shared spec, the module's options and its rules."""
    return dict(
        argument_spec=argument_spec(**extra_options),
        supports_check_mode=supports_check_mode,
        mutually_exclusive=COMMON_MUTUALLY_EXCLUSIVE + list(mutually_exclusive),
        required_together=list(required_together),
    )
