#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) otp.release contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: upgrade
short_description: Hot-upgrade a running OTP release to an unpacked newer version
version_added: 0.1.0
description:
  - Installs an unpacked newer release on the running node with C(release_handler:install_release/2), through the
    up-script of the new version's relup, without restarting the node, then makes it permanent so that a cold
    start boots it too.
  - Before anything changes it checks that the node answers, that the version is unpacked and newer than the
    running one, and that the relup has a path from the running version; it names what is missing otherwise.
  - A failure before the point of no return is rolled back by release_handler and the node keeps its state. A crash
    past it (for example in C(code_change)) makes release_handler restart the node on the old release; the module
    waits for the node and says so.
  - A relup that restarts the emulator needs the node to run with heart and a restart program; the module refuses
    it before any change otherwise, and else waits for the new emulator and then makes the version permanent.
  - With O(src) it does the whole path in one invocation, one task per host - unpack (as M(otp.release.unpack)),
    the ERTS checks of M(otp.release.verify_erts), the upgrade, the O(health) check, and the removal of old releases
    beyond O(keep) (as M(otp.release.remove)) - and stops at the first step that fails.
author:
  - otp.release maintainers (!UNKNOWN)
extends_documentation_fragment:
  - otp.release.common
  - otp.release.change
  - otp.release.unpack
options:
  version:
    description:
      - The version to upgrade to. Without O(src) it must be unpacked already (see M(otp.release.unpack)).
      - Required unless O(src) is given; with O(src) it must be the tarball's version.
    type: str
  health:
    description:
      - A function called on the node after the upgrade, in a process of its own; it must return C(ok) within
        O(health_timeout), else the task fails with RV(health_failed) set and the node stays on the new version.
      - A dictionary with C(module), C(function) and optional C(args) (a list of arguments).
    type: dict
  health_timeout:
    description:
      - Seconds O(health) has to answer.
    type: int
    default: 10
  keep:
    description:
      - After a successful upgrade (and health check), remove the C(old) releases but the newest O(keep) ones, as
        M(otp.release.remove) does. By default nothing is removed.
    type: int
attributes:
  check_mode:
    support: full
    description:
      - Runs C(check_install_release) only.
      - With O(src) for a version the host does not have yet, inspects the tarball and runs its ERTS checks, but does
        not unpack it, so release_handler is not asked.
  diff_mode:
    support: full
    description: Release states before and after.
"""

EXAMPLES = r"""
- name: Upgrade the node to 2.0.0 (unpacked before)
  otp.release.upgrade:
    root: /opt/kvstore
    version: 2.0.0

- name: Unpack, verify, upgrade, check health and remove all old releases but one, in one task
  otp.release.upgrade:
    root: /opt/kvstore
    src: dist/kvstore-2.0.0.tar.gz
    checksum: "sha256:{{ kvstore_sha256 }}"
    health:
      module: kvstore
      function: health
    keep: 1

- name: Upgrade, giving each process 30 s for code_change
  otp.release.upgrade:
    root: /opt/kvstore
    version: 2.0.0
    code_change_timeout: 30
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
unpack:
  description: What the unpack step did (with O(src)).
  returned: when O(src) was given
  type: dict
erts_checks:
  description: The ERTS checks of the version before the upgrade, one entry per check (with O(src)).
  returned: when the checks ran
  type: list
  elements: dict
health:
  description: The O(health) call, whether it answered C(ok), and its answer.
  returned: when O(health) was given and the task did not run in check mode
  type: dict
  sample: {call: "kvstore:health()", ok: true, answer: ok}
health_failed:
  description: True when the upgrade succeeded but O(health) did not answer C(ok).
  returned: failure
  type: bool
removed:
  description: The old releases removed because of O(keep).
  returned: when O(keep) was given
  type: list
  elements: str
transferred:
  description: Whether the tarball was sent to the host.
  returned: always
  type: bool
release_handler_error:
  description: The raw release_handler error term, when release_handler refused or failed.
  returned: failure
  type: raw
"""

from ansible_collections.otp.release.plugins.module_utils._module import run


def main():
    run("upgrade")


if __name__ == "__main__":
    main()
