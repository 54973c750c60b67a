# -*- coding: utf-8 -*-
# Copyright (c) otp.release contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A release root on disk: its versions and their states, the producer that built it, and the cold-start
pointer (what a cold start of bin/<name> boots), read and switched."""

from __future__ import annotations

import os
import re

from ansible_collections.otp.release.plugins.module_utils._errors import OtpReleaseError
from ansible_collections.otp.release.plugins.module_utils._files import copy_file, same_bytes, write_if_changed
from ansible_collections.otp.release.plugins.module_utils._relfiles import (
    Relup,
    parse_rel,
    parse_releases,
    parse_start_erl_data,
    read_terms,
    read_text,
)
from ansible_collections.otp.release.plugins.module_utils._versions import version_key


class ReleaseRoot(object):
    """The files of one root. What it reads from RELEASES is kept until forget() (after a change)."""

    def __init__(self, root, name=None):
        self.root = os.path.abspath(root)
        self._name = name
        self._entries = None

    def path(self, *parts):
        return os.path.join(self.root, *parts)

    def exists(self):
        return os.path.isdir(self.path("releases"))

    def is_empty(self):
        return not os.path.exists(self.root) or not os.listdir(self.root)

    def forget(self):
        """Read RELEASES again next time: it changed."""
        self._entries = None

    def assume_name(self, name):
        """The release name when none was given: the tarball's."""
        self._name = self._name or name

    @property
    def name(self):
        if self._name:
            return self._name
        names = set(entry["name"] for entry in self.releases_file())
        if not names:
            for version in self._version_dirs():
                names.update(f[:-4] for f in os.listdir(self.path("releases", version)) if f.endswith(".rel"))
        if len(names) != 1:
            found = ", ".join(sorted(names)) or "none"
            raise OtpReleaseError("Cannot tell the release name in %s (found: %s): pass name." % (self.root, found))
        self._name = names.pop()
        return self._name

    def _version_dirs(self):
        releases = self.path("releases")
        if not os.path.isdir(releases):
            return []
        return [v for v in os.listdir(releases) if os.path.isdir(os.path.join(releases, v))]

    def releases_file(self):
        """Entries of releases/RELEASES: [{name, version, erts, state, libs: [(app, vsn, absolute lib dir)]}]."""
        if self._entries is None:
            path = self.path("releases", "RELEASES")
            entries = parse_releases(read_terms(path)) if os.path.exists(path) else []
            for entry in entries:
                entry["libs"] = [(app, vsn, os.path.normpath(self.path(lib_dir))) for app, vsn, lib_dir in entry["libs"]]
            self._entries = entries
        return self._entries

    def start_erl_data(self, path=None):
        """(erts, version) of releases/start_erl.data (or the file given), or None."""
        path = path or self.path("releases", "start_erl.data")
        return parse_start_erl_data(read_text(path)) if os.path.exists(path) else None

    def rel(self, version):
        """The .rel of a version: {name, version, erts, applications: {app: vsn}}."""
        path = self.path("releases", version, "%s.rel" % self.name)
        if not os.path.exists(path):
            raise OtpReleaseError("Version %s of %s is not in %s (no %s)." % (version, self.name, self.root, path))
        name, rel_version, erts, applications = parse_rel(read_text(path), path)
        return dict(name=name, version=rel_version, erts=erts, applications=dict(applications))

    def version_contents(self, version):
        """(erts, [(app, vsn, lib dir)]) of a version in .rel order: from releases/<vsn>/<name>.rel, else from the
        version's RELEASES entry (release_handler deletes that .rel when it unpacks "<vsn>/<name>"). None if unknown."""
        try:
            rel = self.rel(version)
            return rel["erts"], [(app, vsn, self.path("lib", "%s-%s" % (app, vsn))) for app, vsn in rel["applications"].items()]
        except OtpReleaseError:
            pass
        for entry in self.releases_file():
            if entry["version"] == version:
                return entry["erts"], entry["libs"]
        return None

    def erts_of(self, version):
        """The ERTS version of a version (None when unknown; never release_handler's "undefined")."""
        contents = self.version_contents(version)
        return contents[0] if contents and contents[0] != "undefined" else None

    def broken_versions(self):
        """Versions whose RELEASES entry has no applications (release_handler's own entry for a root without one)."""
        return [e["version"] for e in self.releases_file() if not e["libs"]]

    def versions(self):
        """Versions with a .rel on disk, oldest first."""
        name = self.name
        found = [v for v in self._version_dirs() if os.path.exists(self.path("releases", v, "%s.rel" % name))]
        return sorted(found, key=version_key)

    def relup(self, version):
        """The Relup of releases/<version>/relup, or None when there is none."""
        path = self.path("releases", version, "relup")
        if not os.path.exists(path):
            return None
        return Relup.from_text(read_text(path), path)

    def release_states(self):
        """[{version, state, erts}] from RELEASES, else the one version start_erl.data names (a mix release)."""
        entries = [dict(version=e["version"], state=e["state"], erts=e["erts"]) for e in self.releases_file()]
        if not entries:
            start = self.start_erl_data()
            if start:
                entries = [dict(version=start[1], state="permanent", erts=start[0])]
        return sorted(entries, key=lambda e: version_key(e["version"]))

    @property
    def producer(self):
        script = self.path("bin", self.name)
        text = read_text(script) if os.path.isfile(script) else ""
        if os.path.isdir(self.path("var")) or "distillery" in text.lower() or any(
                os.path.isdir(self.path("releases", v, "libexec")) for v in self._version_dirs()):
            return "distillery"
        if re.search(r"^REL_VSN=", text, re.M):
            return "relx"
        if os.path.exists(self.path("releases", "COOKIE")) or "RELEASE_VSN" in text:
            return "mix"
        return "unknown"

    def start_pointer(self, env=None):
        """The file a cold start reads to pick its version: relx's bin/<name>, Distillery's start_erl.data in
        $RELEASE_MUTABLE_DIR (default <root>/var) or $START_ERL_DATA, mix's releases/start_erl.data. env: the
        running node's environment, which a start script of the same deployment gets too. None: unknown producer."""
        env = env or {}
        producer = self.producer
        if producer == "relx":
            return self.path("bin", self.name)
        if producer == "distillery":
            if env.get("START_ERL_DATA"):
                return env["START_ERL_DATA"]
            return os.path.join(env.get("RELEASE_MUTABLE_DIR") or self.path("var"), "start_erl.data")
        if producer == "mix":
            return self.path("releases", "start_erl.data")
        return None

    def start_version(self, env=None):
        """The version a cold start of bin/<name> would boot, or None when it cannot be told."""
        pointer = self.start_pointer(env)
        if self.producer == "relx":
            match = re.search(r'^REL_VSN="([^"]+)"', read_text(pointer), re.M)
            if match:
                return match.group(1)
        elif pointer:
            start = self.start_erl_data(pointer)
            if start:
                return start[1]
        start = self.start_erl_data()
        return start[1] if start else None

    def point_cold_start(self, version, erts, env=None, owner=None):
        """Make a cold start of bin/<name> boot this version, whatever built the release. True when a file changed."""
        pointer = self.start_pointer(env)
        if self.producer == "relx":
            versioned = self.path("bin", "%s-%s" % (self.name, version))
            if os.path.isfile(versioned) and not same_bytes(versioned, pointer):
                copy_file(versioned, pointer, owner=owner)
                return True
            return False
        if pointer:
            return write_if_changed(pointer, "%s %s" % (erts, version), owner=owner)
        return False

    def start_scripts(self, versions):
        """relx leaves a bin/<name>-<vsn> per version: those of the given versions that exist."""
        if self.producer != "relx":
            return []
        paths = [self.path("bin", "%s-%s" % (self.name, v)) for v in versions]
        return [path for path in paths if os.path.isfile(path)]

    def erts_bin(self, erts_version):
        return self.path("erts-%s" % erts_version, "bin")

    def boot_vars(self):
        return {"RELEASE_LIB": self.path("lib")} if self.producer == "mix" else {}
