# -*- coding: utf-8 -*-
# Copyright (c) otp.release contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The argument spec of every module, in one place: the module and its action plugin use the same object.
The options are documented in the doc fragments common, unpack and change, and in each module."""

from __future__ import annotations

COMMON = dict(
    root=dict(type="path", required=True),
    name=dict(type="str"),
    node=dict(type="str"),
    cookie=dict(type="str", no_log=True),
    cookie_file=dict(type="path"),
    timeout=dict(type="int", default=60),
    epmd_port=dict(type="int"),
    channel=dict(type="str", default="auto", choices=["auto", "erl_call", "hidden_vm"]),
)
SOURCE = dict(
    src=dict(type="path"),
    remote_src=dict(type="bool", default=False),
    version=dict(type="str"),
    checksum=dict(type="str"),
    signature=dict(type="path"),
    public_key=dict(type="str", no_log=False),
    allow_missing_erts=dict(type="bool", default=False),
    max_unpacked_size=dict(type="int"),
    owner=dict(type="str"),
    group=dict(type="str"),
)
CHANGE = dict(
    version=dict(type="str"),
    permanent=dict(type="bool", default=True),
    purge=dict(type="bool", default=False),
    code_change_timeout=dict(type="int"),
    suspend_timeout=dict(type="int"),
    relup_review=dict(type="str", default="warn", choices=["strict", "warn", "off"]),
    strategy=dict(type="str", default="hot", choices=["hot", "restart", "auto"]),
    start_command=dict(type="str"),
    stop_timeout=dict(type="int", default=30),
    start_timeout=dict(type="int", default=60),
)
# Checked by the action plugin on the controller; never sent to the host.
CONTROLLER_ONLY = ("signature", "public_key")


class ModuleSpec(object):
    """Options and their rules for one module."""

    def __init__(self, *option_sets, **rules):
        self.argument_spec = dict(COMMON)
        for options in option_sets:
            self.argument_spec.update(options)
        self.mutually_exclusive = [("cookie", "cookie_file")] + rules.get("mutually_exclusive", [])
        self.required_together = rules.get("required_together", [])
        self.required_one_of = rules.get("required_one_of", [])

    def rules(self):
        """Keyword arguments for ActionBase.validate_argument_spec."""
        return dict(argument_spec=self.argument_spec, mutually_exclusive=self.mutually_exclusive,
                    required_together=self.required_together, required_one_of=self.required_one_of)

    def module_kwargs(self):
        """Keyword arguments for AnsibleModule."""
        return dict(self.rules(), supports_check_mode=True)


SPECS = dict(
    info=ModuleSpec(),
    unpack=ModuleSpec(SOURCE, required_together=[("signature", "public_key")]),
    verify_erts=ModuleSpec(dict(version=dict(type="str"), src=dict(type="path")), required_one_of=[("version", "src")]),
    upgrade=ModuleSpec(SOURCE, CHANGE, dict(health=dict(type="dict"), health_timeout=dict(type="int", default=10),
                                            keep=dict(type="int")),
                       required_together=[("signature", "public_key")], required_one_of=[("version", "src")]),
    downgrade=ModuleSpec(CHANGE),
    remove=ModuleSpec(dict(keep=dict(type="int", default=1), version=dict(type="str"))),
    eval=ModuleSpec(dict(
        version=dict(type="str"),
        module=dict(type="str", required=True),
        function=dict(type="str", required=True),
        args=dict(type="list", elements="raw", default=[]),
        strings_as=dict(type="str", default="binary", choices=["binary", "charlist"]),
        start_apps=dict(type="list", elements="str", default=[]),
        failed_when_result=dict(type="list", elements="str", default=["error"]),
        max_output=dict(type="int", default=1048576),
    )),
)
