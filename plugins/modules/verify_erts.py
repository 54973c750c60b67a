#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) otp.release contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: verify_erts
short_description: Check that the ERTS of an OTP release will run here and suits the running node
version_added: 0.1.0
description:
  - release_handler never looks at C(erts-*); this module does, for a version unpacked in O(root) or for a release
    tarball O(src) on the host, before an upgrade.
  - Each check is returned as C({check, ok, detail}) in RV(checks). C(erts_bundled) and C(erts_matches_rel) the ERTS
    the C(.rel) names is bundled, and its C(beam.smp) is that version; C(binaries) C(beam.smp), C(erlexec), C(epmd)
    and, from OTP 23 on, C(erl_call) are there and executable; C(elf_arch) C(beam.smp) and the NIF and driver
    libraries under C(lib/*/priv) are built for this host's machine (ELF class, byte order, machine); C(libc) the
    C library (glibc or musl, by the program interpreter) and the glibc version fit this host;
    C(shared_libraries) every shared library they need resolves here; C(erts_vs_running) the running node has the
    same ERTS (a true hot upgrade), or the relup from the running version restarts the emulator.
  - Reads ELF headers and the loader's cache; runs nothing from the release.
  - Never changes anything. Fails, listing every failed check, when one fails.
author:
  - otp.release maintainers (!UNKNOWN)
extends_documentation_fragment:
  - otp.release.common
options:
  version:
    description:
      - An unpacked version in O(root) to check. One of O(version) and O(src) is needed.
      - With O(src), the version expected in the tarball.
    type: str
  src:
    description:
      - A release tarball on the target host to check, instead of an unpacked version. Only the ERTS binaries and
        the NIF/driver libraries are extracted, into a private temporary directory that is removed afterwards.
      - O(root) may then be missing; when its node runs, C(erts_vs_running) compares with it.
    type: path
attributes:
  check_mode:
    support: full
    description: The module only reads.
  diff_mode:
    support: none
    description: The module only reads.
notes:
  - The cookie is never part of the result, the command lines the module runs, or its logs.
seealso:
  - module: otp.release.unpack
"""

EXAMPLES = r"""
- name: Check the ERTS of the unpacked 2.0.0 before upgrading
  otp.release.verify_erts:
    root: /opt/kvstore
    version: 2.0.0

- name: Check a tarball on the host before unpacking it
  otp.release.verify_erts:
    root: /opt/kvstore
    src: /var/cache/releases/kvstore-2.0.0.tar.gz
"""

RETURN = r"""
checks:
  description: Every check, in order, also on failure.
  returned: always
  type: list
  elements: dict
  contains:
    check:
      description: The check.
      type: str
      choices: [erts_bundled, erts_matches_rel, binaries, elf_arch, libc, shared_libraries, erts_vs_running]
    ok:
      description: Whether it passed.
      type: bool
    detail:
      description: What was found, in one sentence.
      type: str
  sample:
    - {check: erts_bundled, ok: true, detail: "erts-13.1.5 is bundled with the release."}
failed_checks:
  description: The names of the checks that failed.
  returned: always
  type: list
  elements: str
  sample: [shared_libraries]
ok:
  description: Whether every check passed.
  returned: always
  type: bool
name:
  description: The release name.
  returned: always
  type: str
version:
  description: The version checked.
  returned: always
  type: str
erts_version:
  description: The ERTS version the release's C(.rel) names.
  returned: always
  type: str
erts_running:
  description: The ERTS version of the running node, or null when no node runs.
  returned: always
  type: str
running_version:
  description: The version the node runs, or null when no node runs.
  returned: always
  type: str
releases:
  description: The releases of the root, when O(root) is a release root.
  returned: when O(root) is a release root
  type: list
  elements: dict
current:
  description: The version the node runs (the permanent one when none is current).
  returned: when O(root) is a release root
  type: str
permanent:
  description: The permanent version.
  returned: when O(root) is a release root
  type: str
duration_ms:
  description: Milliseconds the module spent.
  returned: always
  type: int
"""

from ansible_collections.otp.release.plugins.module_utils._module import run


def main():
    run("verify_erts")


if __name__ == "__main__":
    main()
