#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) otp.release contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: downgrade
short_description: Hot-downgrade a running OTP release to an older release it ran before
version_added: 0.1.0
description:
  - Installs an C(old) release on the running node with C(release_handler:install_release/2), through the down-script
    in the running version's relup, without restarting the node.
  - Before anything changes it checks that the node answers, that the target is an older release the node knows,
    and that the running version's relup has a down path to it; it names what is missing otherwise.
  - Never touches databases. Migrations are a separate, earlier deployment, and a downgrade never rolls them back.
author:
  - otp.release maintainers (!UNKNOWN)
extends_documentation_fragment:
  - otp.release.common
  - otp.release.change
options:
  version:
    description:
      - The version to go back to.
      - Defaults to the newest C(old) release below the running one, one step back at a time.
    type: str
attributes:
  check_mode:
    support: full
    description: Runs C(check_install_release) only.
  diff_mode:
    support: full
    description: Release states before and after.
"""

EXAMPLES = r"""
- name: Go back one release
  otp.release.downgrade:
    root: /opt/kvstore

- name: Go back to 1.0.0 and keep it current only (a restart returns to the permanent release)
  otp.release.downgrade:
    root: /opt/kvstore
    version: 1.0.0
    permanent: false
"""

RETURN = r"""
from_version:
  description: The version the node ran before.
  returned: success
  type: str
  sample: 1.0.0
to_version:
  description: The version the node runs now (in check mode, would run).
  returned: success
  type: str
  sample: 2.0.0
direction:
  description: V(up), V(down), or V(none) when the node already ran O(version).
  returned: success
  type: str
permanent:
  description: Whether RV(to_version) is the permanent release.
  returned: success
  type: bool
restart:
  description: Whether the emulator restarted.
  returned: success
  type: str
  choices: [none, emulator, new_emulator]
instructions:
  description: Counts of the relup instructions that ran, by kind.
  returned: success
  type: dict
  sample: {load_object_code: 1, suspend: 1, load: 2, code_change: 1, resume: 1, point_of_no_return: 1}
releases:
  description: Every release of the node afterwards, with its state.
  returned: always
  type: list
  elements: dict
current:
  description: The version the node runs afterwards.
  returned: success
  type: str
start_version:
  description: The version a cold start would boot afterwards.
  returned: success
  type: str
pointer_switched:
  description:
    - True when the run switched the cold-start pointer (C(bin/<name>), C(start_erl.data)). On a run with nothing else
      to do, this repairs what a run stopped between C(make_permanent) and the pointer left, and a warning says so.
    - False in a failed result when the node changed but the pointer could not be switched (for example a full disk).
  returned: when the node runs the version
  type: bool
os_pid:
  description: The OS pid of the node's C(beam.smp) afterwards.
  returned: success
  type: int
duration_ms:
  description: Milliseconds the module spent.
  returned: success
  type: int
release_handler_error:
  description: The raw release_handler error term, when release_handler refused or failed.
  returned: failure
  type: raw
"""

from ansible_collections.otp.release.plugins.module_utils._module import run


def main():
    run("downgrade")


if __name__ == "__main__":
    main()
