# -*- coding: utf-8 -*-
# Copyright (c) otp.release contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The controller side of a module that takes a release tarball `src` (unpack, and upgrade with src).

1. The tarball on the controller is checked before any byte leaves: checksum, signature, then the same
   inspection the module does (safe members, the release inside, ERTS bundled).
2. The module runs once with preflight_only (name, version and sha256 of the tarball, no src): it says
   whether the host needs the bytes. A version the node already knows needs nothing: no transfer.
3. Only then the tarball goes to the remote temp dir and the module runs with it; the temp dir is removed.
"""

from __future__ import annotations

import os
import shutil
import tempfile

from ansible import constants as C
from ansible.errors import AnsibleError
from ansible.module_utils.common.text.converters import to_bytes, to_text
from ansible.plugins.action import ActionBase

from ansible_collections.otp.release.plugins.module_utils._module import module_kwargs
from ansible_collections.otp.release.plugins.module_utils._tarball import ReleaseTarballError, inspect, sha256_file
from ansible_collections.otp.release.plugins.module_utils._unpack import (
    CONTROLLER_ONLY_OPTIONS,
    UNPACK_OPTIONS,
    UNPACK_REQUIRED_TOGETHER,
    UnpackError,
    checksum_mismatch,
    parse_checksum,
)
from ansible_collections.otp.release.plugins.plugin_utils._signature import SignatureError, is_inline_key, require_cryptography, verify_file

# Keys of the preflight answer that only the action plugin reads.
PREFLIGHT_KEYS = ("upload_needed", "staged_src")


class ControllerSourceAction(ActionBase):
    """Checks and uploads the tarball of a module that takes src. Subclasses set MODULE and the spec."""

    TRANSFERS_FILES = False  # the remote temp dir is made only when the tarball is sent
    MODULE = "otp.release.unpack"

    def module_spec(self):
        """Keyword arguments for validate_argument_spec: the module's own argument spec."""
        spec = module_kwargs(required_together=UNPACK_REQUIRED_TOGETHER, **UNPACK_OPTIONS)
        spec.pop("supports_check_mode")
        return spec

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        super(ControllerSourceAction, self).run(tmp, task_vars)
        del tmp
        _validation, params = self.validate_argument_spec(**self.module_spec())
        module_args = dict((k, v) for k, v in self._task.args.items() if k not in CONTROLLER_ONLY_OPTIONS)
        cleanup = []
        try:
            if not params.get("src"):
                return self.run_module(module_args, task_vars, transferred=False)
            if params["remote_src"]:
                return self.run_remote_src(params, module_args, task_vars, cleanup)
            return self.run_controller_src(params, module_args, task_vars, cleanup)
        except (SignatureError, ReleaseTarballError, UnpackError) as exc:
            return dict(failed=True, changed=False, msg=to_text(exc), transferred=False)
        finally:
            for path in cleanup:
                if os.path.isdir(path):
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    self._loader.cleanup_tmp_file(path)
            self._remove_tmp_path(self._connection._shell.tmpdir)

    # ---- the controller's copy ----

    def find_controller_file(self, path, what, cleanup):
        try:
            found = self._find_needle("files", os.path.expanduser(path))
            real = self._loader.get_real_file(found, decrypt=True)
        except AnsibleError as exc:
            raise UnpackError("The %s %s is not on the controller: %s" % (what, path, to_text(exc)))
        if real != found:
            cleanup.append(real)  # a decrypted vault file
        return real

    def check_controller_copy(self, local, label, params, cleanup):
        """Checksum, then signature, of the file at local; returns its sha256."""
        expected = parse_checksum(params.get("checksum"))
        actual = sha256_file(local)
        if expected and actual != expected:
            raise checksum_mismatch(label, expected, actual)
        if params.get("signature"):
            require_cryptography()
            signature_path = self.find_controller_file(params["signature"], "signature file", cleanup)
            key = params["public_key"]
            if is_inline_key(key):
                key_data, key_source = to_bytes(key), "given inline"
            else:
                key_path = self.find_controller_file(key, "public key file", cleanup)
                key_data, key_source = self.read_bytes(key_path), key
            verify_file(local, label, self.read_bytes(signature_path), params["signature"], key_data, key_source, actual)
        return actual

    @staticmethod
    def read_bytes(path):
        try:
            with open(path, "rb") as handle:
                return handle.read()
        except OSError as exc:
            raise UnpackError("Cannot read %s on the controller: %s." % (path, exc.strerror or exc))

    # ---- the two ways ----

    def run_controller_src(self, params, module_args, task_vars, cleanup):
        local = self.find_controller_file(params["src"], "release tarball", cleanup)
        label = params["src"]
        self.check_controller_copy(local, label, params, cleanup)
        facts = inspect(local, params.get("name"), params.get("version"), params.get("allow_missing_erts"))
        checked = dict(module_args, name=facts.name, version=facts.version, checksum="sha256:" + facts.sha256)
        checked.pop("src", None)
        checked.pop("remote_src", None)
        probe = self._execute_module(module_name=self.MODULE, module_args=dict(checked, preflight_only=True), task_vars=task_vars)
        if probe.get("failed") or params.get("preflight_only"):
            return self.shape(probe, transferred=False)
        tarball_info = dict(version=facts.version, name=facts.name, erts_version=facts.rel_erts_version,
                            relup_up_from=facts.relup_up_from, relup_down_to=facts.relup_down_to, sha256=facts.sha256)
        if probe.get("staged_src"):
            return self.run_module(dict(checked, src=probe["staged_src"], remote_src=True), task_vars, transferred=False)
        if not probe.get("upload_needed"):
            return self.finish_without_upload(self.shape(probe, transferred=False), checked, task_vars)
        if self._task.check_mode:
            return self.shape(dict(probe, **tarball_info), transferred=False)
        shell = self._connection._shell
        if shell.tmpdir is None:
            self._make_tmp_path()
        remote = shell.join_path(shell.tmpdir, "%s-%s.tar.gz" % (facts.name, facts.version))
        self._transfer_file(local, remote)
        self._fixup_perms2((shell.tmpdir, remote))
        return self.run_module(dict(checked, src=remote, remote_src=True), task_vars, transferred=True)

    def run_remote_src(self, params, module_args, task_vars, cleanup):
        if params.get("signature"):
            # the signature is checked here, with cryptography: fetch the host's file first
            local_dir = tempfile.mkdtemp(prefix="otp-release-fetch-", dir=C.DEFAULT_LOCAL_TMP)
            cleanup.append(local_dir)
            local = os.path.join(local_dir, "source")
            remote = self._remote_expand_user(params["src"])
            try:
                self._connection.fetch_file(remote, local)
            except AnsibleError as exc:
                raise UnpackError("Cannot fetch %s from the host to check its signature: %s" % (remote, to_text(exc)))
            self.check_controller_copy(local, "%s (on the host)" % remote, params, cleanup)
        return self.run_module(module_args, task_vars, transferred=False)

    # ---- running the module ----

    def finish_without_upload(self, probe, module_args, task_vars):
        """The host needs no bytes: for unpack the preflight answer is the result. Upgrade overrides this to
        run its module without src."""
        return probe

    def run_module(self, module_args, task_vars, transferred):
        result = self._execute_module(module_name=self.MODULE, module_args=module_args, task_vars=task_vars)
        return self.shape(result, transferred)

    @staticmethod
    def shape(result, transferred):
        result = dict((k, v) for k, v in result.items() if k not in PREFLIGHT_KEYS)
        result["transferred"] = transferred
        return result
