#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) otp.release contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: info
short_description: Facts of an OTP release root and of the node serving it
version_added: 0.1.0
description:
  - Reads the versions and states of a release root (C(releases/RELEASES), the C(.rel) files, C(start_erl.data))
    and, when its node runs, asks the node itself with C(release_handler:which_releases/0).
  - Works with the node down, and then says O(ignore:running=false).
  - Tells what a cold start of C(bin/<name>) would boot (RV(start_version)) and flags when that is not the permanent release.
  - Never changes anything.
author:
  - otp.release maintainers (!UNKNOWN)
extends_documentation_fragment:
  - otp.release.common
attributes:
  check_mode:
    support: full
    description: The module only reads.
  diff_mode:
    support: none
    description: The module only reads.
notes:
  - The cookie is never part of the result, the command lines the module runs, or its logs.
"""

EXAMPLES = r"""
- name: Facts of the kvstore release
  otp.release.info:
    root: /opt/kvstore
  register: kvstore_info

- name: Fail when a cold start would boot something else than the permanent release
  ansible.builtin.assert:
    that: not kvstore_info.start_version_mismatch
    fail_msg: "A restart of {{ inventory_hostname }} would boot {{ kvstore_info.start_version }}, not {{ kvstore_info.permanent }}"
"""

RETURN = r"""
root:
  description: The release root, absolute.
  returned: always
  type: str
  sample: /opt/kvstore
name:
  description: The release name.
  returned: always
  type: str
  sample: kvstore
producer:
  description: What built the release, told from its start script and files.
  returned: always
  type: str
  sample: relx
  choices: [relx, distillery, mix, unknown]
releases:
  description: Every release the root knows, oldest first, with its state as the node (or, when it is down, C(RELEASES)) says.
  returned: always
  type: list
  elements: dict
  contains:
    version:
      description: The release version.
      type: str
      sample: 1.0.0
    state:
      description: The release_handler state.
      type: str
      choices: [unpacked, current, permanent, old]
    erts:
      description: The ERTS version the release was built for.
      type: str
      sample: 13.1.5
current:
  description: The version the node runs (the permanent one when no other is current).
  returned: always
  type: str
  sample: 2.0.0
permanent:
  description: The permanent version.
  returned: always
  type: str
  sample: 2.0.0
start_version:
  description: The version a cold start of C(bin/<name>) would boot, or null when it cannot be told.
  returned: always
  type: str
  sample: 2.0.0
start_version_mismatch:
  description: True when RV(start_version) differs from RV(permanent).
  returned: always
  type: bool
running:
  description: Whether the node answered.
  returned: always
  type: bool
node:
  description: The node name, whether or not it runs.
  returned: always
  type: str
  sample: kvstore@127.0.0.1
node_source:
  description: Where the node name came from.
  returned: always
  type: str
  sample: command line of process 4242
cookie_source:
  description: Where the cookie came from (never the cookie itself).
  returned: always
  type: str
  sample: /srv/kvstore/vm.args (the running node's -args_file)
os_pid:
  description: The OS pid of the node's C(beam.smp), when it runs.
  returned: always
  type: int
  sample: 4242
erts_running:
  description: The ERTS version of the running node.
  returned: always
  type: str
  sample: 13.1.5
node_error:
  description: Why the node did not answer, when it did not.
  returned: when the node is down
  type: str
channel:
  description: How the node was reached.
  returned: when the node answered
  type: str
  sample: erl_call
duration_ms:
  description: Milliseconds the module spent.
  returned: always
  type: int
"""

from ansible_collections.otp.release.plugins.module_utils._module import run


def main():
    run("info")


if __name__ == "__main__":
    main()
