# -*- coding: utf-8 -*-
# Copyright (c) otp.release contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What every module's main() shares: the common options (documented once in the otp.release.common doc
fragment) and the one way errors become a failed result."""

from __future__ import annotations

import copy

from ansible_collections.otp.release.plugins.module_utils._erlterm import to_plain
from ansible_collections.otp.release.plugins.module_utils._erts import ErtsCheckError
from ansible_collections.otp.release.plugins.module_utils._node import NodeError
from ansible_collections.otp.release.plugins.module_utils._release import ReleaseError
from ansible_collections.otp.release.plugins.module_utils._tarball import ReleaseTarballError

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


class OperationError(Exception):
    """A refused or failed operation. msg says what is wrong, where, the state now and what to do; raw is the
    release_handler term behind it; details go into the failed result, and a 'fields' dict is merged into it."""

    def __init__(self, msg, raw=None, **details):
        super(OperationError, self).__init__(msg)
        self.msg = msg
        self.raw = raw
        self.details = details


def failure(exc):
    """(msg, extra result fields) of any error our module_utils raise."""
    fields = {}
    if isinstance(exc, OperationError):
        if exc.raw is not None:
            fields["release_handler_error"] = to_plain(exc.raw)
        details = dict(exc.details)
        fields.update(details.pop("fields", None) or {})
        fields.update(details)
        return exc.msg, fields
    return str(exc), fields


def run_module(module, work):
    """Run work() -> result and end the module with it; our errors become a failed result, warnings warnings."""
    try:
        result = work()
    except (OperationError, ReleaseError, NodeError, ReleaseTarballError, ErtsCheckError) as exc:
        msg, fields = failure(exc)
        for warning in fields.pop("warnings", []):
            module.warn(warning)
        module.fail_json(msg=msg, **fields)
    for warning in result.pop("warnings", []):
        module.warn(warning)
    module.exit_json(**result)
