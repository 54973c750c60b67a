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
  - With O(strategy=restart), or O(strategy=auto) where the relup has no down path, the node is restarted into the
    older release instead (its in-memory state is not kept), with a rollback when it does not come up.
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
    description:
      - Runs C(check_install_release) only; for a restart, lists the steps it would take in RV(would).
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

- name: Go back to 1.0.0 by a restart, as the relup of 3.0.0 has no down path to it
  otp.release.downgrade:
    root: /opt/kvstore
    version: 1.0.0
    strategy: restart
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
