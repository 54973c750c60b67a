# -*- coding: utf-8 -*-
# Copyright (c) otp.release contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Controller side of otp.release.unpack: checksum and signature checked before any byte is sent, sent only when the
host needs it (see plugin_utils/_unpack_action.py)."""

from __future__ import annotations

from ansible_collections.otp.release.plugins.plugin_utils._unpack_action import ControllerSourceAction


class ActionModule(ControllerSourceAction):
    NAME = "unpack"
