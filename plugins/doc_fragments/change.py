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
  relup_review:
    description:
      - Review the relup path before trusting it, from the files of both versions in the root and the node. It finds
        modules whose code changed but that the relup never loads (C(not_loaded)), new modules it never adds
        (C(added_not_loaded)), gone modules it never deletes (C(removed_not_deleted)), applications added or removed
        without being started or stopped (C(app_added_not_started), C(app_removed_not_stopped)), changed supervisors
        without C({update, Sup, supervisor}) (C(supervisor_not_updated)), C(update)s of modules that export no
        C(code_change) (C(update_without_code_change)), processes that a purge of the relup would kill
        (C(purge_kills)) and old code still loaded (C(old_code_present)). Code is compared by its MD5 (as
        C(beam_lib:md5/1)), not by file bytes.
      - V(strict) refuses the change before anything is done when the review finds anything, naming the modules and
        what to add to the appup.
      - V(warn) changes anyway and reports the findings in RV(relup_review) and as warnings.
      - V(off) skips the review.
      - After the change (V(strict) and V(warn)), the code each changed module runs is checked against the target's,
        in the same call that installs; a module still on the old code is reported with kind C(still_old_code).
      - Check mode reviews too.
      - The review reads the beams of the applications whose version differs and asks the node once, only when the
        relup loads or purges modules.
    type: str
    choices: [strict, warn, "off"]
    default: warn
  strategy:
    description:
      - V(hot) changes the version through the relup, in the running node (same OS process, in-memory state kept).
      - V(restart) stops the node with C(init:stop()), makes the version the one a cold start boots, starts the node
        again as its OS user with its environment (see O(start_command)), waits until it runs the version, checks
        its C(health) function when given (M(otp.release.upgrade)), and makes the version permanent through the node (release_handler then lists the
        version permanent and the one before C(old), so a later downgrade works). In-memory state is not kept.
        When the node does not come up on the version within O(start_timeout), or is unhealthy, it is started
        again on the version it ran (RV(rolled_back)); nothing is deleted. The version must be unpacked.
      - V(auto) picks per host, before any change - V(hot) when the relup has a path from the running version
        (and, when that path restarts the emulator, the node runs with heart), else V(restart) - and says which in
        RV(method) and why in RV(method_reason).
    type: str
    choices: [hot, restart, auto]
    default: hot
  start_command:
    description:
      - For a restart, the command that starts the node, run with C(/bin/sh -c) as the node's OS user, in the root,
        with the node's environment (for example C(systemctl start kvstore) when systemd starts the node).
      - By default the node is started the way it was started when its parent is C(run_erl) running the root's
        C(bin/<name>) (what relx's C(daemon) and Distillery's C(start) do), else as its producer starts it in the
        background (relx and mix C(bin/<name> daemon), Distillery C(bin/<name> start)).
    type: str
  start_timeout:
    description:
      - Seconds a restarted node has to run the version (and, for the start command, to return).
    type: int
    default: 60
  stop_timeout:
    description:
      - Seconds a node has to exit after C(init:stop()) for a restart; it is killed after that.
    type: int
    default: 30
"""
