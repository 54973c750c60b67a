# -*- coding: utf-8 -*-
# Copyright (c) otp.release contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The controller side of a module that takes a release tarball `src` (unpack, and upgrade with src).

1. The tarball on the controller is checked before any byte leaves: checksum, signature, then the same
   inspection the module does (safe members, the release inside, ERTS bundled).
2. The module runs with the tarball's name, version and sha256 (src still names the controller's file). When the
   host has the version already, that run is the whole task: nothing is sent.
3. Only when the module answers that it needs the tarball, it goes to the remote temp dir and the module runs
   once more with it; the temp dir is removed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import tempfile

from ansible import constants as C
from ansible.errors import AnsibleError
from ansible.module_utils.common.text.converters import to_bytes, to_text
from ansible.plugins.action import ActionBase

from ansible_collections.otp.release.plugins.module_utils._argspec import CONTROLLER_ONLY, SPECS
from ansible_collections.otp.release.plugins.module_utils._change import plan_change, refuse_restart_without_heart
from ansible_collections.otp.release.plugins.module_utils._errors import OtpReleaseError
from ansible_collections.otp.release.plugins.module_utils._files import sha256_file
from ansible_collections.otp.release.plugins.module_utils._relfiles import Relup, instruction_summary
from ansible_collections.otp.release.plugins.module_utils._tarball import TarballFacts, checksum_mismatch, inspect, parse_checksum
from ansible_collections.otp.release.plugins.plugin_utils._signature import SignatureError, is_inline_key, require_cryptography, verify_file

# The options a controller inspection depends on, besides the file itself.
INSPECTION_OPTIONS = ("name", "version", "checksum", "signature", "public_key", "allow_missing_erts", "max_unpacked_size")
# What the controller's inspection adds to a check-mode answer for a version the host does not have yet.
TARBALL_KEYS = ("erts_version", "relup_up_from", "relup_down_to", "sha256")


def plan_from_tarball(result, facts, label):
    """Check mode of upgrade for a version the host does not have yet: the host said where the node is, the tarball
    on the controller holds the relup, so plan as the real run will and refuse what it would refuse."""
    states = dict((e["version"], e["state"]) for e in result["releases"])
    states.setdefault(facts.version, "unpacked")
    relup = Relup.from_text(facts.relup, "%s: releases/%s/relup" % (label, facts.version), facts.version) if facts.relup else None
    relup_path = os.path.join(result["root"], "releases", facts.version, "relup")
    try:
        plan = plan_change(None, result.get("node"), states, facts.version, "up", relup_of=lambda _version: (relup, relup_path))
        refuse_restart_without_heart(plan, result.get("node"), result.get("heart"))
    except OtpReleaseError as exc:
        return dict(result, failed=True, changed=False, msg=exc.msg)
    return dict(result, from_version=plan.from_version, to_version=plan.to_version, direction=plan.direction,
                restart=plan.restart, instructions=instruction_summary(plan.instructions), plan=plan.as_data(),
                changed=plan.direction != "none" or result.get("changed"))


class ControllerSourceAction(ActionBase):
    """Checks and sends the tarball of a module that takes src. Subclasses set NAME, the module's short name."""

    TRANSFERS_FILES = False  # the remote temp dir is made only when the tarball is sent
    NAME = "unpack"

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        super(ControllerSourceAction, self).run(tmp, task_vars)
        del tmp
        _validation, params = self.validate_argument_spec(**SPECS[self.NAME].rules())
        module_args = dict((k, v) for k, v in self._task.args.items() if k not in CONTROLLER_ONLY)
        cleanup = []
        try:
            if not params.get("src"):
                return self.run_module(module_args, task_vars, transferred=False)
            if params["remote_src"]:
                return self.run_remote_src(params, module_args, task_vars, cleanup)
            return self.run_controller_src(params, module_args, task_vars, cleanup)
        except (SignatureError, OtpReleaseError) as exc:
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
            raise OtpReleaseError("The %s %s is not on the controller: %s" % (what, path, to_text(exc)))
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

    def inspected(self, local, params, cleanup):
        """Checksum, signature and inspection of the controller's tarball, done once per run for all hosts and tasks:
        the verdict is kept in the run's local temp dir, keyed by the file (path, size, mtime) and the options."""
        if params.get("signature"):
            require_cryptography()
        stat = os.stat(local)
        proofs = [hashlib.sha256(self.read_bytes(self.find_controller_file(params[option], option, cleanup))).hexdigest()
                  for option in ("signature", "public_key") if params.get(option) and not is_inline_key(params[option])]
        key = hashlib.sha256(json.dumps([os.path.realpath(local), stat.st_size, stat.st_mtime_ns] + proofs + [
            params.get(option) for option in INSPECTION_OPTIONS]).encode()).hexdigest()[:32]
        cached = os.path.join(C.DEFAULT_LOCAL_TMP, "otp-release-inspected-%s.json" % key)
        if os.path.isfile(cached):
            with open(cached) as handle:
                return TarballFacts(**json.load(handle))
        self.check_controller_copy(local, params["src"], params, cleanup)
        facts = inspect(local, params.get("name"), params.get("version"), params.get("allow_missing_erts"),
                        params.get("max_unpacked_size"))
        fd, temp = tempfile.mkstemp(dir=C.DEFAULT_LOCAL_TMP, prefix=".otp-release-inspected-")
        with os.fdopen(fd, "w") as handle:
            json.dump(dataclasses.asdict(facts), handle)
        os.rename(temp, cached)
        return facts

    @staticmethod
    def read_bytes(path):
        try:
            with open(path, "rb") as handle:
                return handle.read()
        except OSError as exc:
            raise OtpReleaseError("Cannot read %s on the controller: %s." % (path, exc.strerror or exc))

    # ---- the two ways ----

    def run_controller_src(self, params, module_args, task_vars, cleanup):
        local = self.find_controller_file(params["src"], "release tarball", cleanup)
        facts = self.inspected(local, params, cleanup)
        checked = dict(module_args, name=facts.name, version=facts.version, checksum="sha256:" + facts.sha256)
        result = self._execute_module(module_name=self.module_name(), module_args=checked, task_vars=task_vars)
        if not result.pop("tarball_needed", False):
            if self._task.check_mode and result.get("changed") and not result.get("failed"):
                inspected = dict(erts_version=facts.rel_erts_version, relup_up_from=facts.relup_up_from,
                                 relup_down_to=facts.relup_down_to, sha256=facts.sha256)
                result.update((k, inspected[k]) for k in TARBALL_KEYS)
                if result.get("restart") == "unknown":
                    return dict(plan_from_tarball(result, facts, params["src"]), transferred=False)
            return dict(result, transferred=False)
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
                raise OtpReleaseError("Cannot fetch %s from the host to check its signature: %s" % (remote, to_text(exc)))
            self.check_controller_copy(local, "%s (on the host)" % remote, params, cleanup)
        return self.run_module(module_args, task_vars, transferred=False)

    def module_name(self):
        return "otp.release.%s" % self.NAME

    def run_module(self, module_args, task_vars, transferred):
        result = self._execute_module(module_name=self.module_name(), module_args=module_args, task_vars=task_vars)
        result.pop("tarball_needed", None)
        return dict(result, transferred=transferred)
