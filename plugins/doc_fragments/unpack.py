# -*- coding: utf-8 -*-
# Copyright (c) otp.release contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


class ModuleDocFragment(object):

    DOCUMENTATION = r"""
options:
  src:
    description:
      - The release tarball, as C(rebar3 tar), Distillery or C(mix release) build it (C(<name>-<vsn>.tar.gz)).
      - A path on the controller (searched like the C(src) of M(ansible.builtin.copy), vault-encrypted files are
        decrypted), or on the target host with O(remote_src=true).
      - The controller's file is checked (O(checksum), O(signature), its members) before any byte is sent, and sent
        only when the host needs it, so running the task again for a version the node knows transfers nothing.
    type: path
  remote_src:
    description:
      - With V(true), O(src) is a path on the target host.
    type: bool
    default: false
  checksum:
    description:
      - The expected checksum of O(src), as V(sha256:<hex>). A mismatch fails before anything is sent or changed.
    type: str
  signature:
    description:
      - A file on the controller holding a detached signature over O(src) (the raw bytes or their base64 text),
        checked with O(public_key) on the controller before anything is sent.
      - Ed25519 signs the file itself; ECDSA its digest that matches the curve (SHA-256 for P-256, SHA-384 for
        P-384, SHA-512 for P-521), DER-encoded as C(openssl dgst -sign) writes it; RSA its SHA-256 digest with
        PKCS#1 v1.5 or PSS padding.
      - With O(remote_src=true) the tarball is fetched from the host to the controller to check it.
    type: path
  public_key:
    description:
      - The public key that verifies O(signature), either a PEM public key (C(-----BEGIN PUBLIC KEY-----)) given inline,
        or the path of a PEM or DER file on the controller. Ed25519, ECDSA (P-256, P-384, P-521) and RSA keys.
    type: str
  allow_missing_erts:
    description:
      - Accept a tarball that does not bundle the ERTS its C(.rel) names.
      - Hot upgrades need ERTS bundled with every release; without it the release runs on whatever ERTS is on disk.
    type: bool
    default: false
  max_unpacked_size:
    description:
      - The most bytes the tarball may unpack to; checked on the controller and on the host while the tarball is
        inspected, before anything is written and before C(release_handler) (which unpacks inside the running node)
        sees it.
      - By default 25 times the tarball's size, at least 256 MiB; one member may have 10 times the tarball's size, at
        least 64 MiB. A release compresses 3 to 5 times; a decompression bomb hundreds of times.
      - The host must also have that much free space, plus the tarball's size, in the root's file system.
    type: int
  owner:
    description:
      - The user that owns the files of a first install into an empty or missing root.
      - By default the owner of the root directory (of its parent when it is missing). On a running node every
        file the module writes belongs to the node's OS user, whatever O(owner) says.
    type: str
  group:
    description:
      - The group of the files of a first install; by default O(owner)'s group, else the root directory's.
    type: str
requirements:
  - cryptography >= 3.0 on the controller, for O(signature).
"""
