#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) otp.release contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: unpack
short_description: Unpack a release tarball next to the running release of an OTP node
version_added: 0.1.0
description:
  - Checks a release tarball, then makes its version known to the node serving O(root), ready for
    M(otp.release.upgrade), without changing what the node runs.
  - Before the root is touched the tarball is inspected in full; it is refused when a member would land outside the
    root (C(..), absolute paths, links pointing out, device files), when it lacks C(releases/<vsn>/<name>.rel), when
    it does not bundle the ERTS of its C(.rel) (unless O(allow_missing_erts)), and when it is truncated or corrupt.
  - A version the node knows already, in any state, is left alone (nothing changes, nothing is sent).
  - With the node running, the tarball is placed at C(releases/<vsn>/<name>.tar.gz) (under a temporary name, then
    renamed) and unpacked by C(release_handler:unpack_release/1). If that fails, everything the attempt created is
    removed, so the root is as before and a retry starts clean; the node keeps serving and C(RELEASES) is unchanged.
  - With no node and a missing or empty O(root), this is a first install; the tarball is extracted safely and a
    C(RELEASES) file marks its version permanent, so the root can be started and later hot-upgraded (this also
    makes an Elixir C(mix release), which ships no C(RELEASES), upgradable).
  - With no node and a non-empty root the module fails, as a tarball is never extracted over a live root; start
    the node first.
author:
  - otp.release maintainers (!UNKNOWN)
extends_documentation_fragment:
  - otp.release.common
  - otp.release.unpack
options:
  version:
    description:
      - The version expected in the tarball. It is read from the tarball; when given, it must match.
      - O(name), when given, is checked against the tarball the same way.
    type: str
attributes:
  check_mode:
    support: full
    description: Inspects the tarball and asks the node; nothing is sent to the host or written.
  diff_mode:
    support: full
    description: The release states before and after.
  action:
    support: full
    description: The action plugin checks and sends the controller's tarball.
notes:
  - The cookie is never part of the result, the command lines the module runs, or its logs.
  - C(release_handler) deletes C(releases/<vsn>/<name>.rel) after unpacking; the module puts it back, as other
    tools (and M(otp.release.verify_erts)) read it.
seealso:
  - module: otp.release.verify_erts
  - module: otp.release.upgrade
"""

EXAMPLES = r"""
- name: Unpack 2.0.0 next to the running release, checking the signature first
  otp.release.unpack:
    root: /opt/kvstore
    src: dist/kvstore-2.0.0.tar.gz
    checksum: "sha256:3410d6f00064bf7b8268bb9fea70b4f10d9e682b845ea37fa8f66558ffbc23f1"
    signature: dist/kvstore-2.0.0.tar.gz.sig
    public_key: keys/release-signing.pub.pem

- name: Unpack a tarball already on the host
  otp.release.unpack:
    root: /opt/kvstore
    src: /var/cache/releases/kvstore-2.0.0.tar.gz
    remote_src: true
    version: 2.0.0

- name: First install into an empty root
  otp.release.unpack:
    root: /opt/kvstore
    src: dist/kvstore-1.0.0.tar.gz
"""

RETURN = r"""
version:
  description: The version of the tarball.
  returned: success
  type: str
  sample: 2.0.0
name:
  description: The release name.
  returned: success
  type: str
  sample: kvstore
erts_version:
  description: The ERTS version the release runs on (its C(.rel)).
  returned: success
  type: str
  sample: 13.1.5
relup_up_from:
  description: The versions the release's relup upgrades from.
  returned: success
  type: list
  elements: str
  sample: [1.0.0]
relup_down_to:
  description: The versions the release's relup downgrades to.
  returned: success
  type: list
  elements: str
  sample: [1.0.0]
sha256:
  description: The sha256 of the tarball.
  returned: when a tarball was read
  type: str
method:
  description:
    - V(release_handler) (unpacked through the running node), V(first_install) (extracted into an empty root) or
      V(none) (the version was known already).
  returned: success
  type: str
  choices: [release_handler, first_install, none]
transferred:
  description: Whether the tarball was sent from the controller to the host.
  returned: always
  type: bool
releases:
  description: Every release of the root afterwards, oldest first.
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
running:
  description: Whether a node serves the root.
  returned: success
  type: bool
duration_ms:
  description: Milliseconds the module spent on the host.
  returned: success
  type: int
release_handler_error:
  description: The raw error term of C(release_handler:unpack_release), when it failed.
  returned: failure
  type: raw
"""

from ansible_collections.otp.release.plugins.module_utils._module import run


def main():
    run("unpack")


if __name__ == "__main__":
    main()
