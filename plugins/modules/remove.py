#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) otp.release contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: remove
short_description: Remove old or unpacked versions of an OTP release from a running node
version_added: 0.1.0
description:
  - Removes releases with C(release_handler:remove_release/1) on the running node, which deletes their
    C(releases/<vsn>/) directory and every C(lib/<app>-<vsn>/) directory that no remaining release uses, and drops
    them from C(releases/RELEASES).
  - By default removes the C(old) releases but the newest O(keep) ones, by version order. C(unpacked) releases (a
    version waiting for its upgrade) are kept unless named by O(version).
  - Never removes the current or the permanent release, and fails when O(version) names one.
  - For a relx release it also deletes the C(bin/<name>-<vsn>) start script of each removed version.
  - All removals are done in one call to the node.
author:
  - otp.release maintainers (!UNKNOWN)
extends_documentation_fragment:
  - otp.release.common
options:
  keep:
    description:
      - How many C(old) releases to keep, the newest ones by version order. V(0) removes every old release.
      - Ignored when O(version) is given.
    type: int
    default: 1
  version:
    description:
      - Remove exactly this version, which must be C(old) or C(unpacked), for example the version a crashed upgrade
        left behind.
      - A version the node does not know is already removed, and the module reports no change.
    type: str
attributes:
  check_mode:
    support: full
    description: Reports what would be removed in RV(removed) and RV(removed_files), and removes nothing.
  diff_mode:
    support: full
    description: Release states before and after.
notes:
  - The node must be running; release_handler does the removal.
"""

EXAMPLES = r"""
- name: Keep only the newest old release next to the running one
  otp.release.remove:
    root: /opt/kvstore

- name: Remove every old release
  otp.release.remove:
    root: /opt/kvstore
    keep: 0

- name: Remove the version a failed upgrade left unpacked
  otp.release.remove:
    root: /opt/kvstore
    version: 2.0.0
"""

RETURN = r"""
removed:
  description: The versions removed (in check mode, that would be removed), oldest first.
  returned: success
  type: list
  elements: str
  sample: [1.0.0]
removed_files:
  description: The relx start scripts C(bin/<name>-<vsn>) deleted (in check mode, that would be deleted).
  returned: success
  type: list
  elements: str
  sample: [/opt/kvstore/bin/kvstore-1.0.0]
releases:
  description: Every release of the node afterwards, oldest first, with its state.
  returned: success
  type: list
  elements: dict
  contains:
    version:
      description: The release version.
      type: str
    state:
      description: The release_handler state.
      type: str
      choices: [unpacked, current, permanent, old]
    erts:
      description: The ERTS version of the release.
      type: str
current:
  description: The version the node runs.
  returned: success
  type: str
permanent:
  description: The permanent version.
  returned: success
  type: str
name:
  description: The release name.
  returned: success
  type: str
node:
  description: The node name.
  returned: success
  type: str
os_pid:
  description: The OS pid of the node's C(beam.smp).
  returned: success
  type: int
duration_ms:
  description: Milliseconds the module spent.
  returned: success
  type: int
release_handler_error:
  description: The raw release_handler error term, when C(remove_release) failed.
  returned: failure
  type: raw
"""

from ansible_collections.otp.release.plugins.module_utils._module import run


def main():
    run("remove")


if __name__ == "__main__":
    main()
