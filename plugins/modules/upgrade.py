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
  - With O(strategy=restart), or O(strategy=auto) where the relup has no path from the running version, the node is
    restarted into the version instead (its in-memory state is not kept), with a rollback to the version it ran when
    it does not come up healthy.
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
      - Runs C(check_install_release) only; for a restart, lists the steps it would take in RV(would).
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

- name: Upgrade hot where the relup allows it, else restart the node into 3.0.0 (state is not kept)
  otp.release.upgrade:
    root: /opt/kvstore
    src: dist/kvstore-3.0.0.tar.gz
    strategy: auto
    health:
      module: kvstore
      function: health

- name: Upgrade, giving each process 30 s for code_change
  otp.release.upgrade:
    root: /opt/kvstore
    version: 2.0.0
    code_change_timeout: 30

- name: Upgrade only when the relup loads every changed module (refuse otherwise, naming what the appup lacks)
  otp.release.upgrade:
    root: /opt/kvstore
    version: 2.0.0
    relup_review: strict
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
  description: Whether the emulator restarted (V(node) for a restart of the whole node, see O(strategy)).
  returned: success
  type: str
  choices: [none, emulator, new_emulator, node]
method:
  description:
    - How the version changed, V(hot) or V(restart) (see O(strategy)), V(none) when nothing was to do with O(strategy)
      V(restart) or V(auto).
  returned: success
  type: str
  sample: restart
method_reason:
  description: Why RV(method) was chosen.
  returned: success
  type: str
  sample: /opt/kvstore/releases/3.0.0/relup has no path 1.0.0 -> 3.0.0
state_kept:
  description: Whether the node's in-memory state was kept (false for a restart).
  returned: when the version changed
  type: bool
state_note:
  description: "For a restart, the sentence C(restart: in-memory state is not kept)."
  returned: when RV(method) is V(restart)
  type: str
os_pid_before:
  description: For a restart, the OS pid of the node before.
  returned: when RV(method) is V(restart)
  type: int
os_pid_after:
  description: For a restart, the OS pid of the node after (null in check mode).
  returned: when RV(method) is V(restart)
  type: int
downtime_ms:
  description:
    - For a restart, milliseconds from the old node's last answer (to C(init:stop())) to the new node's first answer
      with every application started.
  returned: when RV(method) is V(restart) and not in check mode
  type: int
rolled_back:
  description: For a restart, true when the node did not come up healthy on the version and was started again on the one it ran.
  returned: when RV(method) is V(restart)
  type: bool
start_command:
  description: For a restart, the command that started (in check mode, would start) the node.
  returned: when RV(method) is V(restart)
  type: str
would:
  description: In check mode, for a restart, the steps it would take.
  returned: when RV(method) is V(restart) in check mode
  type: list
  elements: str
instructions:
  description: Counts of the relup instructions that ran, by kind.
  returned: success
  type: dict
  sample: {load_object_code: 1, suspend: 1, load: 2, code_change: 1, resume: 1, point_of_no_return: 1}
relup_review:
  description:
    - The findings of the relup review (see O(relup_review)), before the change and, after it, C(still_old_code) for
      each module that does not run the target's code. Empty when the review found nothing, was V(off), or there was
      nothing to change.
    - With O(relup_review=strict) a refusal carries the findings too.
  returned: success, and with a refusal of the review
  type: list
  elements: dict
  contains:
    kind:
      description: >-
        V(not_loaded), V(added_not_loaded), V(removed_not_deleted), V(app_added_not_started),
        V(app_removed_not_stopped), V(supervisor_not_updated), V(update_without_code_change), V(purge_kills),
        V(old_code_present) or V(still_old_code).
      type: str
    app:
      description: The application, or V(null) when unknown (C(still_old_code)).
      type: str
    module:
      description: The module, or V(null) for a finding about a whole application.
      type: str
    detail:
      description: The fact found, short.
      type: str
    msg:
      description: One sentence for an operator that says what to add to the appup (also shown as a warning).
      type: str
  sample:
    - kind: not_loaded
      app: kvstore
      module: kv_server
      detail: "kv_server changed its code (md5 5d41... -> 7d79...), the relup never loads it"
      msg: "Module kv_server (kvstore 1.0.0 -> 2.0.0) changed its code (md5 5d41... -> 7d79...) but the relup never
        loads it, so the node would keep running the old code after a successful upgrade; add
        {update, kv_server, {advanced, []}} to kvstore.appup."
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
