# -*- coding: utf-8 -*-
# Copyright (c) otp.release contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Placing files in a release root: always through a temporary name in the same directory and one rename, and a
replaced file keeps its owner, group and mode."""

from __future__ import annotations

import contextlib
import fcntl
import grp
import hashlib
import os
import pwd
import shutil
import tempfile
import time

from ansible_collections.otp.release.plugins.module_utils._errors import OtpReleaseError

BLOCK_SIZE = 1 << 20


def sha256_file(path):
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(BLOCK_SIZE), b""):
                digest.update(block)
    except OSError as exc:
        raise OtpReleaseError("Cannot read {0}: {1}".format(path, exc.strerror or exc))
    return digest.hexdigest()


def same_bytes(a, b):
    if not os.path.exists(b):
        return False
    with open(a, "rb") as first, open(b, "rb") as second:
        return first.read() == second.read()


def chown_to(path, owner):
    """Give path the owner (uid, gid), when one is given and it is not path's already (only root can)."""
    if owner is None:
        return
    current = os.lstat(path)
    if (current.st_uid, current.st_gid) != tuple(owner):
        os.lchown(path, owner[0], owner[1])


def give_tree(top, owner):
    """chown_to every file and directory under top (top included)."""
    if owner is None:
        return
    chown_to(top, owner)
    for directory, dirs, files in os.walk(top):
        for name in dirs + files:
            chown_to(os.path.join(directory, name), owner)


def makedirs_owned(path, owner, mode=0o755):
    """os.makedirs, giving each directory it creates the owner."""
    missing = []
    while path and not os.path.isdir(path):
        missing.append(path)
        path = os.path.dirname(path)
    for directory in reversed(missing):
        os.mkdir(directory, mode)
        chown_to(directory, owner)


def _take_over(temp, path, mode, owner):
    """Give temp the owner, group and mode of the file at path (when there is one, else owner and mode), then rename
    it there."""
    if os.path.exists(path):
        existing = os.stat(path)
        mode = existing.st_mode & 0o7777
        owner = (existing.st_uid, existing.st_gid)
    chown_to(temp, owner)
    os.chmod(temp, mode)
    os.rename(temp, path)


def _temp_in(directory):
    fd, temp = tempfile.mkstemp(dir=directory, prefix=".otp-release-")
    os.close(fd)
    return temp


def place(path, write, mode=0o644, owner=None):
    """Atomically make path hold what write(temp_path) writes to a temporary file next to it. A new file gets owner
    (uid, gid) and mode; a replaced one keeps its own."""
    temp = _temp_in(os.path.dirname(path))
    try:
        write(temp)
        _take_over(temp, path, mode, owner)
    finally:
        if os.path.exists(temp):
            os.unlink(temp)


def copy_file(source, path, mode=None, owner=None):
    """Atomically put a copy of source at path (mode: source's unless path exists or mode is given)."""
    place(path, lambda temp: shutil.copyfile(source, temp),
          mode if mode is not None else os.stat(source).st_mode & 0o7777, owner)


def write_text(path, text, mode=0o644, owner=None):
    def write(temp):
        with open(temp, "w", encoding="utf-8") as handle:
            handle.write(text)
    place(path, write, mode, owner)


def write_if_changed(path, text, owner=None):
    """Write text (plus a newline) to path unless it holds it already; True when the file changed."""
    if os.path.exists(path):
        with open(path, encoding="utf-8", errors="replace") as handle:
            if handle.read().strip() == text:
                return False
    makedirs_owned(os.path.dirname(path), owner)
    write_text(path, text + "\n", owner=owner)
    return True


def new_tops(root, relative_paths):
    """For each path, its first component that does not exist yet: what to remove to undo creating it."""
    tops = set()
    for relative in relative_paths:
        parts = relative.split("/")
        for depth in range(1, len(parts) + 1):
            prefix = "/".join(parts[:depth])
            if not os.path.lexists(os.path.join(root, prefix)):
                tops.add(prefix)
                break
    return sorted(tops)


def remove_paths(root, relative_paths):
    """Remove paths under root (deepest first); returns (removed, could not remove)."""
    removed, left = [], []
    for relative in sorted(relative_paths, key=lambda p: -p.count("/")):
        path = os.path.join(root, relative)
        try:
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path)
            elif os.path.lexists(path):
                os.unlink(path)
            else:
                continue
            removed.append(relative)
        except OSError:
            left.append(path)
    return sorted(removed), left


def writable_by(path, uid):
    """Whether user uid may create files in the directory path, by its mode bits (root may always)."""
    if uid == 0:
        return True
    found = os.stat(path)
    if found.st_uid == uid:
        return found.st_mode & 0o300 == 0o300
    try:
        user = pwd.getpwuid(uid)
        gids = set([user.pw_gid] + [g.gr_gid for g in grp.getgrall() if user.pw_name in g.gr_mem])
    except KeyError:
        gids = set()
    if found.st_gid in gids:
        return found.st_mode & 0o030 == 0o030
    return found.st_mode & 0o003 == 0o003


def lock_holder(path):
    """'pid N since T' of the process holding an flock on path, from /proc/locks; None when not found."""
    inode = os.stat(path).st_ino
    try:
        with open("/proc/locks") as handle:
            lines = handle.read().splitlines()
    except OSError:
        return None
    for line in lines:
        fields = line.split()
        if len(fields) >= 6 and fields[1] == "FLOCK" and fields[5].rsplit(":", 1)[-1] == str(inode):
            pid = int(fields[4])
            try:
                since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(os.stat("/proc/%d" % pid).st_mtime))
            except OSError:
                since = "an unknown time"
            return "pid %d since %s" % (pid, since)
    return None


@contextlib.contextmanager
def hold_lock(directory, wait_seconds):
    """flock the directory itself (nothing is written) for the duration; wait at most wait_seconds for another holder."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        deadline = time.monotonic() + wait_seconds
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise OtpReleaseError("Another run holds the lock of %s (%s) and did not finish within %s s. Nothing was "
                                          "changed; run again when it is done." % (directory, lock_holder(directory) or
                                                                                   "holder unknown", wait_seconds))
                time.sleep(0.1)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock
