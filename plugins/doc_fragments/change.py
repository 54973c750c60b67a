# -*- coding: utf-8 -*-
# Copyright (c) otp.release contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


class ModuleDocFragment(object):

    DOCUMENTATION = r"""
options:
  permanent:
    description:
      - Make the new version permanent, and make a cold start of the node boot it (relx C(bin/<name>),
        Distillery C(var/start_erl.data), mix C(releases/start_erl.data)).
      - With V(false) the version is only current; a restart of the node returns to the permanent one.
    type: bool
    default: true
  purge:
    description:
      - Purge old code that no process runs before installing (C(check_install_release/2) with C(purge)).
    type: bool
    default: false
  code_change_timeout:
    description:
      - Seconds each process may spend in C(code_change) (release_handler's C(code_change_timeout)).
    type: int
  suspend_timeout:
    description:
      - Seconds each process may take to suspend (release_handler's C(suspend_timeout)).
    type: int
"""
