# -*- coding: utf-8 -*-
# Copyright (c) otp.release contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


class ModuleDocFragment(object):

    DOCUMENTATION = r"""
options:
  root:
    description:
      - The release root on the target host, the directory holding C(bin/), C(erts-<vsn>/), C(lib/) and C(releases/).
      - New versions are unpacked into this same root, next to the running one.
    type: path
    required: true
  name:
    description:
      - The release name (the C(<name>) of C(releases/<vsn>/<name>.rel)).
      - Found from the root when omitted.
    type: str
  node:
    description:
      - The Erlang node name serving O(root), for example V(kvstore@127.0.0.1) or V(kvstore@host) for a short name.
      - When omitted it is taken from the running C(beam.smp) whose C(-root) is O(root), else from the
        release's own files (C(vm.args), C(RELEASE_NODE) of a mix release).
    type: str
  cookie:
    description:
      - The Erlang distribution cookie of the node.
      - It reaches the Erlang tools only through a private temporary C(.erlang.cookie) file, never through a command line.
      - When neither O(cookie) nor O(cookie_file) is given it is found in the running node's C(vm.args),
        C(releases/COOKIE) of a mix release, or the C(.erlang.cookie) in the node's home directory.
    type: str
  cookie_file:
    description:
      - A file on the target host holding the cookie, as an alternative to O(cookie).
    type: path
  timeout:
    description:
      - Seconds to wait for the node to answer one call, and for a restarted node to come back.
    type: int
    default: 60
  epmd_port:
    description:
      - The port of the epmd that the node registers with, when it is not the default 4369.
      - When omitted it is taken from the running node (its C(-epmd_port) flag or C(ERL_EPMD_PORT)), else from
        C(ERL_EPMD_PORT) of the task's environment.
      - It matters most for a node that is down, whose diagnosis asks epmd.
    type: int
  channel:
    description:
      - How to reach the node.
      - V(erl_call) uses the release's bundled C(erts-<vsn>/bin/erl_call) (OTP 23 and later), the fast path.
      - V(hidden_vm) boots a hidden control VM from the release's own C(start_clean) boot file and calls the node with C(rpc).
      - V(auto) takes V(erl_call) when the release bundles it, else V(hidden_vm).
    type: str
    default: auto
    choices: [auto, erl_call, hidden_vm]
"""
