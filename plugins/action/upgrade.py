# -*- coding: utf-8 -*-
# Copyright (c) otp.release contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Controller side of otp.release.upgrade: with src, the tarball is checked and sent like for otp.release.unpack
(see plugin_utils/_unpack_action.py); without src the module runs as it is."""

from __future__ import annotations

from ansible_collections.otp.release.plugins.plugin_utils._unpack_action import ControllerSourceAction


class ActionModule(ControllerSourceAction):
    NAME = "upgrade"
