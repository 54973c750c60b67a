#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) otp.release contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: eval
short_description: Run a function with the code of an unpacked release version, in a one-off VM
version_added: 0.1.0
description:
  - Calls O(module):O(function)(O(args)) with the code of one unpacked version of the release, in a new Erlang VM
    that the module boots for this call alone and stops afterwards. The running node is never touched.
  - This is how a migration runs the code of the NEW release before the upgrade, while the node still runs the old one.
  - The VM boots the version's bundled ERTS (C(erts-<vsn>/bin/erlexec)) with the version's C(no_dot_erlang) boot
    file (relx) or else its C(start_clean) boot file, and the version's C(releases/<vsn>/sys.config) when there is one.
    The C(ebin) directories of every application of the version (by its C(.rel) file, else its entry in
    C(releases/RELEASES)) come first in the code path.
  - The applications of the version are loaded, so their environment (from the C(.app) files and C(sys.config)) is
    there, but not started, except those in O(start_apps).
  - The VM runs without distribution (no C(-name) or C(-sname)), so it cannot clash with the running node. The
    version's C(vm.args) is not used, and neither are C(ERL_FLAGS), C(ERL_AFLAGS), C(ERL_ZFLAGS) and C(ERL_LIBS).
  - The function runs in a process of its own. An exception fails the task with the class, reason and stack. A
    result whose tag is in O(failed_when_result) fails it too.
author:
  - otp.release maintainers (!UNKNOWN)
extends_documentation_fragment:
  - otp.release.common
options:
  version:
    description:
      - The version whose code runs. It must be unpacked in O(root) (see M(otp.release.unpack)) and bundle its ERTS.
      - Defaults to the version the node runs (current, else permanent) by C(releases/RELEASES).
    type: str
  module:
    description:
      - The Erlang module, for example V(kv_migrate).
    type: str
    required: true
  function:
    description:
      - The exported function of O(module) to call, for example V(run).
    type: str
    required: true
  args:
    description:
      - The arguments of the function, one list element per argument.
      - Numbers stay numbers, V(true) and V(false) are booleans, null is the atom C(undefined), lists are lists and
        mappings are maps. Strings become binaries or charlists by O(strings_as).
      - 'A mapping with the single key V(atom) makes an atom (V({atom: dry_run})), with V(tuple) a tuple of the
        elements of its list (V({tuple: [{atom: ok}, 1]})), with V(binary) or V(charlist) that kind of string
        whatever O(strings_as) says.'
    type: list
    elements: raw
    default: []
  strings_as:
    description:
      - How strings in O(args) reach the function.
      - V(binary) gives UTF-8 binaries (C(<<"text">>)), V(charlist) gives lists of characters (C("text")).
    type: str
    default: binary
    choices: [binary, charlist]
  start_apps:
    description:
      - Applications to start (with their dependencies, by C(application:ensure_all_started/1)) before the call.
      - By default none is started. Starting one runs its supervision tree in the one-off VM, next to the running
        node, on the same files and ports.
    type: list
    elements: str
    default: []
  failed_when_result:
    description:
      - Atoms that mark a failed result. The task fails when the function returns one of these atoms, or a tuple
        whose first element is one of them, such as C({error, Reason}).
      - Give V([]) to accept any result.
    type: list
    elements: str
    default: [error]
  max_output:
    description:
      - At most this many bytes of the VM's standard output, of its standard error, and of the text of the result (or of
        the exception's reason and stack) reach the result. The rest is read and dropped, so a function that prints or
        returns gigabytes cannot exhaust the memory of the host or the controller.
      - When something was cut, RV(truncated) is true and a warning says how much there was. A cut result has RV(result)
        null and only the start of RV(result_text).
    type: int
    default: 1048576
attributes:
  check_mode:
    support: partial
    description: Check mode checks what it can without running the function.
    details:
      - The function cannot be run without its effects, so check mode does not run it. It checks that the version is
        unpacked, bundles its ERTS and has a C(<module>.beam) in its applications, then reports the task as skipped,
        with O(ignore:changed=false) and RV(skipped_in_check_mode).
  diff_mode:
    support: none
    description: What the function changes is not known to the module.
notes:
  - The module always reports O(ignore:changed=true) when the function ran, since it cannot know what the function did.
    Set C(changed_when) from RV(result) (for example a list of applied migrations that is not empty).
  - O(timeout) is the time limit of the whole VM, boot and call. On timeout the VM is killed and the task fails.
  - A C(sys.config.src) or C(vm.args.src) is not rendered; only a ready C(sys.config) is used.
  - Output the function prints goes to RV(stdout), log messages of the VM too, up to O(max_output) bytes.
  - The modules ERTS preloads (such as C(erlang), C(init), C(zlib)) count as present in check mode, although no
    application of the version holds their C(.beam).
  - Only O(root), O(name) and O(timeout) of the shared options matter here; O(node), O(cookie), O(cookie_file) and
    O(channel) are accepted (for C(module_defaults)) and not used, since the module never calls the node.
"""

EXAMPLES = r"""
- name: Migrate the database with the code of 2.0.0 before the upgrade
  otp.release.eval:
    root: /opt/kvstore
    version: 2.0.0
    module: kv_migrate
    function: run
  register: migration
  changed_when: migration.result[1] | length > 0

- name: Call a function with a binary, an atom and a tuple
  otp.release.eval:
    root: /opt/kvstore
    version: 2.0.0
    module: kv_admin
    function: import
    args:
      - /srv/import/users.csv
      - atom: dry_run
      - tuple: [{atom: batch}, 500]

- name: Check something with the running version's code, with its application started
  otp.release.eval:
    root: /opt/kvstore
    module: kvstore
    function: health
    start_apps: [kvstore]
    failed_when_result: [error, unhealthy]
  changed_when: false
"""

RETURN = r"""
result:
  description:
    - What the function returned, as plain data. Atoms and strings become strings, binaries their UTF-8 text,
      tuples lists, maps dicts, pids and references their text.
  returned: when the function returned
  type: raw
  sample: [ok, [add_kv_updated_at]]
result_text:
  description: What the function returned, as Erlang term text.
  returned: when the function returned
  type: str
  sample: "{ok,[add_kv_updated_at]}"
call:
  description: The call as Erlang text.
  returned: always
  type: str
  sample: kv_migrate:run()
version:
  description: The version whose code ran.
  returned: always
  type: str
  sample: 2.0.0
stdout:
  description: What the VM printed on standard output (the function's output and log messages).
  returned: when the VM ran
  type: str
truncated:
  description: True when the VM's output or the text of the result was longer than O(max_output) bytes and was cut.
  returned: when something was cut
  type: bool
  sample: true
stderr:
  description: What the VM printed on standard error.
  returned: when the VM stopped without a result
  type: str
duration_ms:
  description: Milliseconds from the start of the module to the end of the VM.
  returned: when the VM ran
  type: int
  sample: 240
boot_ms:
  description: Milliseconds the VM took to boot, until it started the program that loads the applications.
  returned: when the VM ran
  type: int
  sample: 190
call_ms:
  description: Milliseconds the function took.
  returned: when the function was called
  type: int
  sample: 12
erlang_class:
  description: The class of the exception the function raised.
  returned: when the function raised
  type: str
  choices: [error, exit, throw]
erlang_reason:
  description: The reason of the exception, as Erlang term text.
  returned: when the function raised
  type: str
  sample: "{migration_failed,deliberately}"
erlang_stack:
  description: The stack of the exception, one C(module:function/arity (file:line)) per line.
  returned: when the function raised
  type: str
  sample: kv_migrate:fail/0 (src/kv_migrate.erl:31)
skipped_in_check_mode:
  description: True when check mode kept the function from running.
  returned: in check mode
  type: bool
releases:
  description: Every release of the root by C(releases/RELEASES), oldest first, with its state.
  returned: success
  type: list
  elements: dict
current:
  description: The version the node runs by C(releases/RELEASES).
  returned: success
  type: str
permanent:
  description: The permanent version by C(releases/RELEASES).
  returned: success
  type: str
name:
  description: The release name.
  returned: success
  type: str
  sample: kvstore
"""

from ansible_collections.otp.release.plugins.module_utils._module import run


def main():
    run("eval")


if __name__ == "__main__":
    main()
